//! Parses a service's `image`: `NAME`, `NAME:TAG` or `NAME@sha256:HEX`.
//!
//! The rules are the image store's; whether the image exists is the daemon's business.

use crate::model::ImageRef;

/// Why a reference was refused: `reason` follows "invalid ... `VALUE`: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub reason: &'static str,
    pub hint: Option<String>,
}

pub(crate) const FORMS: &str =
    "write the name of an image (its latest build), \"NAME:TAG\" or \"NAME@sha256:DIGEST\"";

pub(crate) fn image_ref(text: &str) -> Result<ImageRef, Refused> {
    let refused = |reason, hint: Option<String>| Err(Refused { reason, hint });
    if text.contains('/') {
        return refused(
            "kiln runs images from its own store, not from registries",
            Some("declare an [image.NAME] from a saved image and name it here".to_owned()),
        );
    }
    if let Some((name, digest)) = text.split_once('@') {
        if name.contains(':') {
            return refused("a reference has a tag or a digest, not both", None);
        }
        check_name(name, text)?;
        if !is_digest(digest) {
            return refused(
                "a digest is `sha256:` and 64 lowercase hexadecimal digits",
                None,
            );
        }
        return Ok(ImageRef::Digest {
            name: name.to_owned(),
            digest: digest.to_owned(),
        });
    }
    if let Some((name, tag)) = text.split_once(':') {
        check_name(name, text)?;
        if !is_tag(tag) {
            return refused("tags are 1 to 128 letters, digits, `.`, `_` and `-`", None);
        }
        return Ok(ImageRef::Tagged {
            name: name.to_owned(),
            tag: tag.to_owned(),
        });
    }
    check_name(text, text)?;
    Ok(ImageRef::Name(text.to_owned()))
}

/// The store's rule: `[a-z0-9._-]+`. `name` begins `text`, the whole reference.
fn check_name(name: &str, text: &str) -> Result<(), Refused> {
    let valid =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if !name.is_empty() && name.chars().all(valid) {
        return Ok(());
    }
    let lower = name.to_ascii_lowercase();
    let hint = (!lower.is_empty() && lower.chars().all(valid))
        .then(|| format!("did you mean `{lower}{}`?", &text[name.len()..]));
    Err(Refused {
        reason: "image names are lowercase letters, digits, `.`, `_` and `-`",
        hint,
    })
}

fn is_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_display() {
        let digest = format!("sha256:{}", "ab12".repeat(16));
        let cases = [
            ("web", ImageRef::Name("web".into())),
            (
                "web:v1.2_RC-3",
                ImageRef::Tagged {
                    name: "web".into(),
                    tag: "v1.2_RC-3".into(),
                },
            ),
            (
                &format!("web@{digest}"),
                ImageRef::Digest {
                    name: "web".into(),
                    digest: digest.clone(),
                },
            ),
        ];
        for (text, expected) in cases {
            let parsed = image_ref(text).unwrap();
            assert_eq!(parsed, expected);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.name(), "web");
        }
    }

    #[test]
    fn refusals() {
        let long_tag = format!("web:{}", "a".repeat(129));
        let upper_digest = format!("web@sha256:{}", "AB12".repeat(16));
        for bad in [
            "",
            "Web",
            "web:",
            ":tag",
            "web:a:b",
            "web:a b",
            &long_tag,
            "web@sha256:abc",
            "web@md5:0123",
            &upper_digest,
            "web:v1@sha256:0",
            "docker.io/library/nginx",
            "web@",
        ] {
            assert!(image_ref(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            image_ref("Web:V1").unwrap_err().hint.as_deref(),
            Some("did you mean `web:V1`?")
        );
    }
}
