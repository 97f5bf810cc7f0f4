//! Path helpers: canonical host paths and lexically normalized image paths.

use std::path::{Path, PathBuf};

use super::ElfError;

pub(super) fn canonicalize(path: &Path) -> Result<PathBuf, ElfError> {
    path.canonicalize().map_err(|source| ElfError::Io {
        path: path.to_owned(),
        source,
    })
}

pub(super) fn utf8(path: &Path) -> Result<&str, ElfError> {
    path.to_str().ok_or_else(|| ElfError::Unsupported {
        path: path.to_owned(),
        what: "path is not UTF-8".to_owned(),
    })
}

/// `path` made absolute and free of `.`, `..` and repeated slashes, lexically.
pub(super) fn normalize(path: &str) -> String {
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
    format!("/{}", parts.join("/"))
}

/// The directory part of an absolute path (`/` for a top-level name).
pub(super) fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(slash) => path[..slash].to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize("/a/./b/../c//d/"), "/a/c/d");
        assert_eq!(normalize("/../x"), "/x");
        assert_eq!(parent("/bin/ls"), "/bin");
        assert_eq!(parent("/ls"), "/");
    }
}
