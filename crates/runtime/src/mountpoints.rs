//! Keeping the mountpoints runc creates out of the layer.
//!
//! runc creates the destination of every mount (`/proc`, `/dev`, `/sys`, and
//! `/etc/resolv.conf` with network) and the working directory inside the root when they
//! do not exist. In the overlay root those would land in the upper directory as new
//! empty directories (or an empty file), and creating them copies their existing parent
//! directories up (`/etc` for `/etc/resolv.conf`), so every layer would carry them.
//!
//! So before the run, [`Mountpoints::record`] notes which of those paths are missing from
//! the merged root, and the existing directories above them. After the run and the
//! unmount, [`Mountpoints::prune`] removes from the upper directory:
//! - each recorded missing path that is now an empty directory or an empty regular file
//!   (a mountpoint the step could not write into, or a working directory it left empty),
//!   deepest first, so that parents created only for them go as well;
//! - then each recorded parent that is an empty, non-opaque directory with unchanged
//!   mode and owner: a copy-up caused only by runc.
//!
//! Paths below a symlink in the image are not tracked: runc resolves them inside the
//! root, so where it creates them cannot be predicted here. Whiteouts are never removed.
//! A consequence: a step that runs in a missing working directory and leaves it empty
//! does not create it in the layer; `WORKDIR` has to be materialised by the builder.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::RuntimeError;

/// Mode bits and owner of a directory, to tell a pure copy-up from a real change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl From<&Metadata> for Owner {
    fn from(meta: &Metadata) -> Self {
        Owner {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Paths of a root, relative to it, that runc may create as mountpoints.
#[derive(Debug, Default)]
pub struct Mountpoints {
    /// Paths missing before the run.
    missing: Vec<PathBuf>,
    /// Existing directories above missing paths, with their mode and owner.
    parents: BTreeMap<PathBuf, Owner>,
}

impl Mountpoints {
    /// Notes which of `targets` (absolute paths inside the root) are missing in `root`.
    pub fn record<'a>(
        root: &Path,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, RuntimeError> {
        let mut recorded = Mountpoints::default();
        for target in targets {
            recorded.record_one(root, target)?;
        }
        recorded.missing.sort_by(|a, b| deepest_first(a, b));
        recorded.missing.dedup();
        Ok(recorded)
    }

    fn record_one(&mut self, root: &Path, target: &str) -> Result<(), RuntimeError> {
        let mut relative = PathBuf::new();
        let mut parents = Vec::new();
        let mut components = Path::new(target).components().peekable();
        while let Some(component) = components.next() {
            match component {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(name) => relative.push(name),
                // `..` is resolved by runc inside the root: not predictable here.
                Component::ParentDir | Component::Prefix(_) => return Ok(()),
            }
            let path = root.join(&relative);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => parents.push((relative.clone(), Owner::from(&meta))),
                // A symlink, or a file where a directory would be needed: runc decides.
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.missing.push(relative.clone());
                    for rest in components.by_ref() {
                        match rest {
                            Component::Normal(name) => relative.push(name),
                            Component::CurDir => continue,
                            _ => break,
                        }
                        self.missing.push(relative.clone());
                    }
                    self.parents.extend(parents);
                    return Ok(());
                }
                Err(e) => return Err(RuntimeError::io(path, e)),
            }
        }
        Ok(())
    }

    /// Removes the recorded mountpoints and pure copy-ups from `upper`. Run it only
    /// after the overlay is unmounted.
    pub fn prune(&self, upper: &Path) -> Result<(), RuntimeError> {
        for relative in &self.missing {
            let path = upper.join(relative);
            let removable = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => is_empty_dir(&path)?,
                Ok(meta) if meta.is_file() => meta.len() == 0,
                Ok(_) => false,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) => return Err(RuntimeError::io(path, e)),
            };
            if removable {
                remove(&path)?;
            }
        }
        let mut parents: Vec<_> = self.parents.iter().collect();
        parents.sort_by(|a, b| deepest_first(a.0, b.0));
        for (relative, owner) in parents {
            let path = upper.join(relative);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(RuntimeError::io(path, e)),
            };
            if meta.is_dir()
                && Owner::from(&meta) == *owner
                && !is_opaque(&path)
                && is_empty_dir(&path)?
            {
                remove(&path)?;
            }
        }
        Ok(())
    }
}

fn deepest_first(a: &Path, b: &Path) -> std::cmp::Ordering {
    b.components()
        .count()
        .cmp(&a.components().count())
        .then_with(|| a.cmp(b))
}

fn is_empty_dir(path: &Path) -> Result<bool, RuntimeError> {
    let mut entries = fs::read_dir(path).map_err(|e| RuntimeError::io(path, e))?;
    Ok(entries.next().is_none())
}

/// Whether overlayfs marked the directory opaque (it hides the lower layers' contents).
fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 8];
    rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value[..]).is_ok()
}

fn remove(path: &Path) -> Result<(), RuntimeError> {
    let result = if path.is_dir() {
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(RuntimeError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn records_missing_paths_and_their_parents() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::create_dir_all(root.path().join("proc")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", root.path().join("link")).unwrap();
        let recorded = Mountpoints::record(
            root.path(),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/etc/resolv.conf",
                "/link/x",
                "/a/./b",
            ],
        )
        .unwrap();
        let missing: Vec<_> = recorded
            .missing
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(missing, ["a/b", "dev/pts", "etc/resolv.conf", "a", "dev"]);
        let parents: Vec<_> = recorded
            .parents
            .keys()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(parents, ["etc"]);
    }

    #[test]
    fn prunes_only_untouched_mountpoints() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::set_permissions(root.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        let recorded = Mountpoints::record(
            root.path(),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/etc/resolv.conf",
                "/work/dir",
                "/sys",
            ],
        )
        .unwrap();

        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir_all(u.join("dev")).unwrap();
        fs::create_dir_all(u.join("proc")).unwrap();
        fs::create_dir_all(u.join("etc")).unwrap();
        fs::set_permissions(u.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(u.join("etc/resolv.conf"), "").unwrap();
        fs::create_dir_all(u.join("work/dir")).unwrap();
        fs::write(u.join("work/dir/output"), "kept").unwrap();
        fs::write(u.join("sys"), "not empty").unwrap();
        recorded.prune(u).unwrap();

        let mut left: Vec<_> = walk(u);
        left.sort();
        assert_eq!(left, ["sys", "work", "work/dir", "work/dir/output"]);
    }

    #[test]
    fn keeps_parents_whose_mode_changed() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::set_permissions(root.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        let recorded = Mountpoints::record(root.path(), ["/etc/resolv.conf"]).unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir(upper.path().join("etc")).unwrap();
        fs::set_permissions(upper.path().join("etc"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(upper.path().join("etc/resolv.conf"), "").unwrap();
        recorded.prune(upper.path()).unwrap();
        assert_eq!(walk(upper.path()), ["etc"]);
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            found.push(name.clone());
            if entry.file_type().unwrap().is_dir() {
                found.extend(
                    walk(&entry.path())
                        .into_iter()
                        .map(|sub| format!("{name}/{sub}")),
                );
            }
        }
        found
    }
}
