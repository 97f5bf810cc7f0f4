//! Unpacked layers on disk (`KILN_HOME/layers/<diffid>/`, extracted once and shared
//! read-only) and read-only overlay views of an image's layers.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_image::Store;
use kiln_runtime::Overlay;

use crate::BuildError;

/// A read-only merged view of layer dirs (topmost first), unmounted on drop.
#[derive(Debug)]
pub struct RootView {
    path: PathBuf,
    _mount: Option<Overlay>,
    _dir: Option<tempfile::TempDir>,
}

impl RootView {
    /// With no layers the view is an empty dir, with one it is that dir itself (overlay
    /// needs two lower dirs when it has no upper), otherwise a read-only overlay mount.
    pub fn new(store: &Store, lowerdirs: &[PathBuf]) -> Result<RootView, BuildError> {
        if let [one] = lowerdirs {
            return Ok(RootView {
                path: one.clone(),
                _mount: None,
                _dir: None,
            });
        }
        let tmp_root = store.tmp_dir();
        fs::create_dir_all(&tmp_root).map_err(BuildError::io(&tmp_root))?;
        let dir = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(&tmp_root)
            .map_err(BuildError::io(&tmp_root))?;
        let path = dir.path().to_path_buf();
        let mount = if lowerdirs.is_empty() {
            None
        } else {
            Some(
                Overlay::mount_read_only(lowerdirs, &path)
                    .map_err(|e| BuildError::Other(e.to_string()))?,
            )
        };
        // Fields drop in order: the mount goes before its mountpoint dir.
        Ok(RootView {
            path,
            _mount: mount,
            _dir: Some(dir),
        })
    }

    /// Resolves an absolute path inside the view, following symbolic links as the image
    /// would (absolute targets are relative to the view's root, `..` stops at the root),
    /// except for the last component, which is returned as it is.
    pub fn resolve(&self, abs: &str) -> Result<PathBuf, BuildError> {
        resolve_in_root(&self.path, abs)
    }
}

/// See [`RootView::resolve`].
pub fn resolve_in_root(root: &Path, abs: &str) -> Result<PathBuf, BuildError> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = abs.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let is_last = pending.iter().all(|p| p.is_empty() || p == ".");
        let candidate = root.join(parts.join("/")).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && !is_last => {
                hops += 1;
                if hops > 40 {
                    return Err(BuildError::Other(format!(
                        "{abs}: too many levels of symbolic links"
                    )));
                }
                let target = fs::read_link(&candidate).map_err(BuildError::io(&candidate))?;
                let target = target.to_string_lossy().to_string();
                if target.starts_with('/') {
                    parts.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
            _ => parts.push(part),
        }
    }
    Ok(root.join(parts.join("/")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_in_root_never_leaves_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        symlink("/usr", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("usr/up")).unwrap();
        assert_eq!(resolve_in_root(r, "/abs/bin").unwrap(), r.join("usr/bin"));
        assert_eq!(
            resolve_in_root(r, "/usr/up/etc/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/../../x").unwrap(), r.join("x"));
        // The last component is not followed.
        assert_eq!(resolve_in_root(r, "/abs").unwrap(), r.join("abs"));
    }
}
