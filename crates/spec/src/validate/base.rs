//! Parses `from`: what an image starts from.

use std::path::Path;

use crate::model::Base;
use crate::raw::Field;
use crate::report::Report;
use crate::suggest::did_you_mean;
use crate::validate::path::resolve;

const FORMS: &str =
    "valid forms: \"scratch\", \"oci:PATH[:REF]\", \"docker-archive:PATH\", \"rootfs:PATH\"";
const SCHEMES: &[&str] = &["oci", "docker-archive", "rootfs"];

/// Relative paths are resolved against `context`.
pub(crate) fn base(from: &Field<String>, context: &Path, report: &mut Report) -> Option<Base> {
    let text = from.value.as_str();
    if text == "scratch" {
        return Some(Base::Scratch);
    }
    let Some((scheme, rest)) = text.split_once(':').filter(|(s, _)| SCHEMES.contains(s)) else {
        unknown(from, report);
        return None;
    };
    let (path, reference) = match scheme {
        "oci" => match rest.rsplit_once(':') {
            Some((path, reference)) if !reference.contains('/') => (path, Some(reference)),
            _ => (rest, None),
        },
        _ => (rest, None),
    };
    if path.is_empty() || path.contains('\0') {
        let problem = if path.is_empty() {
            "missing"
        } else {
            "invalid"
        };
        report
            .error(&from.span, format!("{problem} path in `from`: `{text}`"))
            .hint(FORMS);
        return None;
    }
    if reference.is_some_and(str::is_empty) {
        report
            .error(&from.span, format!("empty reference in `from`: `{text}`"))
            .hint("write oci:PATH to use the layout's only image, or oci:PATH:REF to choose one");
        return None;
    }
    let path = resolve(context, path);
    Some(match scheme {
        "oci" => Base::Oci {
            path,
            reference: reference.map(str::to_owned),
        },
        "docker-archive" => Base::DockerArchive { path },
        _ => Base::Rootfs { path },
    })
}

fn unknown(from: &Field<String>, report: &mut Report) {
    let text = from.value.as_str();
    let diagnostic = report.error(&from.span, format!("unknown base `{text}` in `from`"));
    let suggestion = match text.split_once(':') {
        Some((scheme, rest)) => {
            did_you_mean(scheme, SCHEMES.iter().copied()).map(|s| format!("{s}:{rest}"))
        }
        None => did_you_mean(text, ["scratch"]).map(str::to_owned),
    };
    match suggestion {
        Some(suggestion) => {
            diagnostic.hint(format!("did you mean `{suggestion}`?"));
        }
        None if !text.starts_with(['.', '/']) => {
            diagnostic.hint("kiln does not pull from registries: save the image as an OCI layout or docker archive and name that file");
        }
        None => {}
    }
    diagnostic.hint(FORMS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Base> {
        let field = Field {
            key: 0..4,
            span: 7..7 + text.len(),
            value: text.to_owned(),
        };
        let mut report = Report::new("", Path::new("kiln.toml"));
        base(&field, Path::new("/ctx"), &mut report)
    }

    #[test]
    fn forms() {
        assert_eq!(parse("scratch"), Some(Base::Scratch));
        assert_eq!(
            parse("oci:images/alpine"),
            Some(Base::Oci {
                path: "/ctx/images/alpine".into(),
                reference: None
            })
        );
        assert_eq!(
            parse("oci:./images/alpine:3.19"),
            Some(Base::Oci {
                path: "/ctx/images/alpine".into(),
                reference: Some("3.19".into())
            })
        );
        assert_eq!(
            parse("oci:/abs/layout"),
            Some(Base::Oci {
                path: "/abs/layout".into(),
                reference: None
            })
        );
        assert_eq!(
            parse("oci:host:dir/layout"),
            Some(Base::Oci {
                path: "/ctx/host:dir/layout".into(),
                reference: None
            })
        );
        assert_eq!(
            parse("docker-archive:img.tar"),
            Some(Base::DockerArchive {
                path: "/ctx/img.tar".into()
            })
        );
        assert_eq!(
            parse("rootfs:../rootfs.tar.gz"),
            Some(Base::Rootfs {
                path: "/ctx/../rootfs.tar.gz".into()
            })
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "alpine",
            "docker://alpine",
            "oci:",
            "oci::latest",
            "oci:x:",
            "rootfs:",
            "Scratch",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
