//! Lexical checks and normalization of paths: in the build context, inside images, and
//! host files named relative to the spec.

use std::path::{Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Empty,
    Nul,
    /// A build-context path that is absolute.
    Absolute,
    /// A build-context path whose `..` go above the context.
    Escapes,
    /// A path inside an image that is relative.
    Relative,
    /// A glob where none is allowed.
    Glob,
    /// A malformed glob, with the reason.
    BadGlob(&'static str),
}

/// Normalizes a path relative to the build context: no `.`, no empty
/// components, `..` resolved lexically and never above the context. The
/// context itself is `.`. Globs are checked if `globs` is set, refused otherwise.
pub(crate) fn context_path(path: &str, globs: bool) -> Result<String, PathProblem> {
    check_common(path)?;
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if is_glob(path) {
        if !globs {
            return Err(PathProblem::Glob);
        }
        check_glob(path)?;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(PathProblem::Escapes)?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        Ok(".".to_owned())
    } else {
        Ok(parts.join("/"))
    }
}

/// Normalizes an absolute path inside an image (`..` stops at `/`). Globs are
/// checked lexically.
pub(crate) fn image_path(path: &str) -> Result<String, PathProblem> {
    check_common(path)?;
    if !path.starts_with('/') {
        return Err(PathProblem::Relative);
    }
    if is_glob(path) {
        check_glob(path)?;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `path` against `context` (the spec's folder) unless absolute, without `.`
/// components; `..` is kept. Used for host files a spec names: bases, certificates.
pub(crate) fn resolve(context: &Path, path: &str) -> PathBuf {
    context.join(path).components().collect()
}

fn check_common(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    Ok(())
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// `[...]` closed within one component, `**` only as a whole component.
fn check_glob(path: &str) -> Result<(), PathProblem> {
    for component in path.split('/') {
        if component.contains("**") && component != "**" {
            return Err(PathProblem::BadGlob(
                "`**` must be a whole path component, as in `a/**/b`",
            ));
        }
        let mut rest = component;
        while let Some(open) = rest.find('[') {
            let inside = &rest[open + 1..];
            // A `]` right after `[` (or `[!`) is a member of the class, not its end.
            let skip = match inside.as_bytes() {
                [b'!', b']', ..] => 2,
                [b'!', ..] | [b']', ..] => 1,
                _ => 0,
            };
            let close = inside
                .get(skip..)
                .and_then(|s| s.find(']'))
                .ok_or(PathProblem::BadGlob("unclosed `[`"))?;
            rest = &inside[skip + close + 1..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_paths_are_normalized() {
        assert_eq!(context_path("bin/busybox", false).unwrap(), "bin/busybox");
        assert_eq!(
            context_path("./bin//busybox/", false).unwrap(),
            "bin/busybox"
        );
        assert_eq!(context_path("a/../b", false).unwrap(), "b");
        assert_eq!(context_path(".", false).unwrap(), ".");
        assert_eq!(context_path("a/..", false).unwrap(), ".");
        assert_eq!(context_path("src/**/*.rs", true).unwrap(), "src/**/*.rs");
    }

    #[test]
    fn context_paths_stay_inside() {
        assert_eq!(context_path("..", false), Err(PathProblem::Escapes));
        assert_eq!(context_path("a/../../b", false), Err(PathProblem::Escapes));
        assert_eq!(
            context_path("/etc/passwd", false),
            Err(PathProblem::Absolute)
        );
        assert_eq!(context_path("", false), Err(PathProblem::Empty));
        assert_eq!(context_path("a\0b", false), Err(PathProblem::Nul));
    }

    #[test]
    fn globs() {
        assert_eq!(context_path("*.txt", false), Err(PathProblem::Glob));
        assert!(context_path("a[bc]d", true).is_ok());
        assert!(context_path("a[]]d", true).is_ok());
        assert!(context_path("a[!]x]d", true).is_ok());
        assert!(matches!(
            context_path("a[bc", true),
            Err(PathProblem::BadGlob(_))
        ));
        assert!(matches!(
            context_path("a[b/c]", true),
            Err(PathProblem::BadGlob(_))
        ));
        assert!(matches!(
            context_path("a**/b", true),
            Err(PathProblem::BadGlob(_))
        ));
    }

    #[test]
    fn image_paths() {
        assert_eq!(image_path("/out/app").unwrap(), "/out/app");
        assert_eq!(image_path("/out/./x/../app/").unwrap(), "/out/app");
        assert_eq!(image_path("/../..").unwrap(), "/");
        assert_eq!(image_path("out/app"), Err(PathProblem::Relative));
    }
}
