//! Checks for single values: names, modes, owners, users, ports.
//!
//! Each returns the reason a value is wrong, phrased to follow "invalid ... `VALUE`: ".

/// The message for a bad value of `key`: "invalid `key` `value`: reason".
pub(crate) fn invalid(key: &str, value: &str, reason: &str) -> String {
    if value.is_empty() {
        format!("empty `{key}`")
    } else {
        format!("invalid `{key}` `{value}`: {reason}")
    }
}

/// Longest image name, as for a DNS label.
const MAX_IMAGE_NAME: usize = 63;

pub(crate) const IMAGE_NAME_RULE: &str = "image names use lowercase letters, digits, `-`, `_` and `.`, start and end with a letter or digit, and are at most 63 characters";

pub(crate) fn image_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_IMAGE_NAME {
        return Err("it is longer than 63 characters");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err("it may only contain lowercase letters, digits, `-`, `_` and `.`");
    }
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("it must start and end with a lowercase letter or digit");
    }
    Ok(())
}

/// A valid image name close to an invalid one: lowercased, other characters
/// replaced by `-`.
pub(crate) fn image_name_like(name: &str) -> Option<String> {
    let like: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let like = like.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (like != name && image_name(like).is_ok()).then(|| like.to_owned())
}

pub(crate) const SERVICE_NAME_RULE: &str = "service names are DNS labels: lowercase letters, digits and `-`, starting with a letter, not ending with `-`, at most 55 characters (an instance id, NAME-xxxxxxxx, must stay a 64-character container id)";

/// The longest service name: its instances are named `NAME-` plus 8 hex digits, and a
/// container id has at most 64 characters.
const MAX_SERVICE_NAME: usize = 55;

/// A DNS label of 1-55 of `[a-z0-9-]`, starting with a letter, not ending with `-`.
pub(crate) fn service_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_SERVICE_NAME {
        return Err("it is longer than 55 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("it may only contain lowercase letters, digits and `-`");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lowercase letter");
    }
    if name.ends_with('-') {
        return Err("it must not end with `-`");
    }
    Ok(())
}

/// A valid service name close to an invalid one: lowercased, other
/// characters replaced by `-`.
pub(crate) fn service_name_like(name: &str) -> Option<String> {
    let like: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let like = like.trim_matches('-');
    (like != name && service_name(like).is_ok()).then(|| like.to_owned())
}

/// Permission bits as octal digits: "0755", "755" or "0o755"; at most 0o7777.
pub(crate) fn mode(text: &str) -> Result<u32, &'static str> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err("expected octal digits");
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err("it is more than 7777"),
    }
}

/// "UID:GID", both numeric.
pub(crate) fn owner(text: &str) -> Result<(u32, u32), &'static str> {
    let id = |part: &str| {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse::<u32>().ok()
    };
    let (uid, gid) = text.split_once(':').ok_or("expected numeric UID:GID")?;
    match (id(uid), id(gid)) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err("expected numeric UID:GID"),
    }
}

/// "UID", "UID:GID" or a name: anything not empty without whitespace.
pub(crate) fn user(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it must not contain whitespace or control characters");
    }
    Ok(())
}

pub(crate) fn env_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.contains('=') {
        return Err("it must not contain `=`");
    }
    if name.contains('\0') {
        return Err("it must not contain a NUL character");
    }
    Ok(())
}

pub(crate) fn label_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    Ok(())
}

pub(crate) fn port(number: i64) -> Result<u16, &'static str> {
    match u16::try_from(number) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("ports are 1-65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        for good in ["a", "hello", "web-2", "a.b_c", "0"] {
            assert_eq!(image_name(good), Ok(()), "{good}");
        }
        for bad in ["", "Hello", "-a", "a-", "a b", "a/b", &"a".repeat(64)] {
            assert!(image_name(bad).is_err(), "{bad}");
        }
        assert_eq!(image_name(&"a".repeat(63)), Ok(()));
    }

    #[test]
    fn service_names() {
        for good in ["a", "web", "web-2", "a1", &"a".repeat(55)] {
            assert_eq!(service_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Web",
            "2web",
            "-web",
            "web-",
            "web_2",
            "web.2",
            &"a".repeat(56),
        ] {
            assert!(service_name(bad).is_err(), "{bad}");
        }
        assert_eq!(service_name_like("Web_API").as_deref(), Some("web-api"));
        assert_eq!(service_name_like("_web_").as_deref(), Some("web"));
        assert_eq!(service_name_like("2web"), None);
        assert_eq!(service_name_like("web"), None);
        assert_eq!(service_name_like("42"), None);
    }

    #[test]
    fn modes() {
        assert_eq!(mode("0755"), Ok(0o755));
        assert_eq!(mode("755"), Ok(0o755));
        assert_eq!(mode("0o755"), Ok(0o755));
        assert_eq!(mode("7777"), Ok(0o7777));
        assert_eq!(mode("04755"), Ok(0o4755));
        for bad in ["", "0o", "0x755", "0999", "rwx", "17777", "-755", "+755"] {
            assert!(mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn owners() {
        assert_eq!(owner("0:0"), Ok((0, 0)));
        assert_eq!(owner("1000:100"), Ok((1000, 100)));
        for bad in [
            "root",
            "0",
            "0:",
            ":0",
            "a:b",
            "+1:2",
            "1:2:3",
            "99999999999:0",
        ] {
            assert!(owner(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_env_names_ports() {
        assert!(user("0:0").is_ok() && user("nobody").is_ok());
        assert!(user("").is_err() && user("a b").is_err());
        assert!(env_name("PATH").is_ok());
        assert!(env_name("").is_err() && env_name("A=B").is_err());
        assert_eq!(port(8080), Ok(8080));
        assert!(port(0).is_err() && port(65536).is_err() && port(-1).is_err());
    }
}
