//! The shared "mountpoints" layer of read-only instance roots.
//!
//! An overlay without an upper directory is read-only, so runc cannot create missing
//! mountpoints in it. The mountpoints layer, the topmost lower layer, holds them: every
//! mount destination (and the working directory) that the image lacks, as an empty
//! directory or file, with the image's existing directories on the way copied (mode and
//! owner only, as overlayfs shows the topmost copy's attributes). Its root copies the
//! image root's attributes for the same reason.
//!
//! The layer is named after a hash of that content,
//! `layers/kiln-mountpoints-<16 hex digits>`, created atomically (a temporary directory
//! renamed into place) and shared by every instance that needs the same one. Nothing
//! removes it: it is a handful of empty inodes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::image::{Attrs, Found, Image};
use crate::RuntimeError;

/// Distinguishes this process's temporary directories.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a mountpoint has to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    /// A directory that the layer always holds, mode `1777`, even where the image has
    /// one: runc gives a tmpfs the mode of the directory it is mounted on.
    Tmpfs,
}

impl Kind {
    fn is_dir(self) -> bool {
        self != Kind::File
    }

    /// The attributes of the entry kiln creates.
    fn attrs(self) -> Attrs {
        match self {
            Kind::Dir => Attrs::DIR,
            Kind::File => Attrs::FILE,
            Kind::Tmpfs => Attrs {
                mode: 0o1777,
                uid: 0,
                gid: 0,
            },
        }
    }
}

/// The content of a mountpoints layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    root: Attrs,
    /// Relative paths (a parent sorts before its children): directory or file, and
    /// attributes.
    entries: BTreeMap<PathBuf, (bool, Attrs)>,
}

impl Layer {
    /// Plans the layer that gives `image` every mountpoint in `needed` (absolute,
    /// normalised paths). `id` is for errors.
    pub(crate) fn plan(
        image: &Image<'_>,
        needed: &[(String, Kind)],
        id: &str,
    ) -> Result<Layer, RuntimeError> {
        let fail = |mountpoint: &str, what: String| RuntimeError::Mountpoint {
            id: id.to_owned(),
            mountpoint: mountpoint.to_owned(),
            what,
        };
        let root = image.root_attrs().map_err(|e| fail("/", e.to_string()))?;
        let mut entries: BTreeMap<PathBuf, (bool, Attrs)> = BTreeMap::new();
        for (mountpoint, kind) in needed {
            let resolved = image
                .resolve(mountpoint)
                .map_err(|e| fail(mountpoint, e.to_string()))?;
            let shown = resolved.path.display();
            match resolved.found {
                Some(Found::Dir) if !kind.is_dir() => {
                    let what = format!("/{shown} is a directory in the image, a file is needed");
                    return Err(fail(mountpoint, what));
                }
                Some(Found::NotDir) if kind.is_dir() => {
                    let what = format!("/{shown} is a file in the image, a directory is needed");
                    return Err(fail(mountpoint, what));
                }
                Some(_) if *kind != Kind::Tmpfs => continue,
                _ => {}
            }
            // The image's directories on the way keep their attributes; what is
            // missing is created.
            let existing = resolved.dirs.len() - 1;
            for (path, attrs) in resolved.dirs.into_iter().skip(1) {
                entries.entry(path).or_insert((true, attrs));
            }
            let parts: Vec<_> = resolved.path.iter().collect();
            let mut path = PathBuf::new();
            for (n, name) in parts.iter().enumerate() {
                path.push(name);
                if n < existing {
                    continue;
                }
                let (is_dir, attrs) = if n + 1 == parts.len() {
                    (kind.is_dir(), kind.attrs())
                } else {
                    (true, Attrs::DIR)
                };
                match entries.get(&path) {
                    Some((other, _)) if *other != is_dir => {
                        let what = format!(
                            "/{} is needed both as a file and as a directory",
                            path.display()
                        );
                        return Err(fail(mountpoint, what));
                    }
                    Some(_) => {}
                    None => {
                        entries.insert(path.clone(), (is_dir, attrs));
                    }
                }
            }
            if *kind == Kind::Tmpfs {
                entries.insert(resolved.path.clone(), (true, kind.attrs()));
            }
        }
        Ok(Layer { root, entries })
    }

    /// `kiln-mountpoints-<hash>`: FNV-1a (64 bit) of the content.
    pub(crate) fn name(&self) -> String {
        let mut hash = Fnv::default();
        hash.write(b"kiln-mountpoints v1\n");
        hash.attrs(self.root);
        for (path, (is_dir, attrs)) in &self.entries {
            hash.write(path.as_os_str().as_bytes());
            hash.write(if *is_dir { b"\0d" } else { b"\0f" });
            hash.attrs(*attrs);
        }
        format!("kiln-mountpoints-{:016x}", hash.0)
    }

    /// The layer directory in `layers_dir`, created if it is not there yet.
    pub(crate) fn materialise(&self, layers_dir: &Path) -> Result<PathBuf, RuntimeError> {
        let name = self.name();
        let target = layers_dir.join(&name);
        if target.is_dir() {
            return Ok(target);
        }
        fs::create_dir_all(layers_dir).map_err(|e| RuntimeError::io(layers_dir, e))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = layers_dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let built = self.build(&tmp).and_then(|()| {
            fs::rename(&tmp, &target).or_else(|e| {
                // Another start made the same layer first: use it.
                if target.is_dir() {
                    Ok(())
                } else {
                    Err(RuntimeError::io(&target, e))
                }
            })
        });
        if tmp.exists() {
            // Our own temporary directory, never a mountpoint.
            let _ = fs::remove_dir_all(&tmp);
        }
        built.map(|()| target)
    }

    fn build(&self, dir: &Path) -> Result<(), RuntimeError> {
        fs::create_dir(dir).map_err(|e| RuntimeError::io(dir, e))?;
        set_attrs(dir, self.root)?;
        for (relative, (is_dir, attrs)) in &self.entries {
            let path = dir.join(relative);
            let made = if *is_dir {
                fs::create_dir(&path)
            } else {
                File::create(&path).map(drop)
            };
            made.map_err(|e| RuntimeError::io(&path, e))?;
            set_attrs(&path, *attrs)?;
        }
        Ok(())
    }
}

/// Owner first: chown clears the set-id bits.
fn set_attrs(path: &Path, attrs: Attrs) -> Result<(), RuntimeError> {
    let meta = fs::symlink_metadata(path).map_err(|e| RuntimeError::io(path, e))?;
    if (meta.uid(), meta.gid()) != (attrs.uid, attrs.gid) {
        std::os::unix::fs::lchown(path, Some(attrs.uid), Some(attrs.gid))
            .map_err(|e| RuntimeError::io(path, e))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(attrs.mode))
        .map_err(|e| RuntimeError::io(path, e))
}

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn attrs(&mut self, attrs: Attrs) {
        self.write(format!(" {:o} {} {}\n", attrs.mode, attrs.uid, attrs.gid).as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn needed(list: &[(&str, Kind)]) -> Vec<(String, Kind)> {
        list.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect()
    }

    fn walk(dir: &Path, prefix: &str, found: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            let meta = entry.metadata().unwrap();
            found.push(format!("{name} {:o}", meta.mode() & 0o7777));
            if meta.is_dir() {
                walk(&entry.path(), &format!("{name}/"), found);
            }
        }
    }

    #[test]
    fn holds_missing_mountpoints_and_copies_existing_parents() {
        let base = tempfile::tempdir().unwrap();
        let image_dir = base.path().join("image");
        fs::create_dir_all(image_dir.join("srv")).unwrap();
        fs::create_dir_all(image_dir.join("proc")).unwrap();
        fs::set_permissions(image_dir.join("srv"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(&image_dir, fs::Permissions::from_mode(0o711)).unwrap();
        let layers = vec![image_dir];
        let image = Image::new(&layers);
        let layer = Layer::plan(
            &image,
            &needed(&[
                ("/proc", Kind::Dir),
                ("/srv/app/data", Kind::Dir),
                ("/run/kiln/instance.json", Kind::File),
                ("/tmp", Kind::Tmpfs),
                ("/srv", Kind::Tmpfs),
            ]),
            "web-1",
        )
        .unwrap();
        let dir = layer.materialise(&base.path().join("layers")).unwrap();
        assert!(
            dir.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("kiln-mountpoints-")
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o711);
        let mut found = Vec::new();
        walk(&dir, "", &mut found);
        assert_eq!(
            found,
            [
                "run 755",
                "run/kiln 755",
                "run/kiln/instance.json 644",
                "srv 1777",
                "srv/app 755",
                "srv/app/data 755",
                "tmp 1777",
            ]
        );
        // Idempotent and shared: the same plan gives the same directory.
        assert_eq!(layer.materialise(&base.path().join("layers")).unwrap(), dir);
        assert_eq!(fs::read_dir(base.path().join("layers")).unwrap().count(), 1);
    }

    #[test]
    fn the_name_follows_the_content() {
        let layers = Vec::new();
        let image = Image::new(&layers);
        let a = Layer::plan(&image, &needed(&[("/tmp", Kind::Dir)]), "a").unwrap();
        let b = Layer::plan(&image, &needed(&[("/tmp", Kind::Dir)]), "b").unwrap();
        let c = Layer::plan(&image, &needed(&[("/tmp", Kind::File)]), "c").unwrap();
        assert_eq!(a.name(), b.name());
        assert_ne!(a.name(), c.name());
    }

    #[test]
    fn a_file_where_a_directory_is_needed_is_the_images_problem() {
        let base = tempfile::tempdir().unwrap();
        fs::write(base.path().join("tmp"), "").unwrap();
        let layers = vec![base.path().to_owned()];
        let error = Layer::plan(
            &Image::new(&layers),
            &needed(&[("/tmp", Kind::Dir)]),
            "web-1",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "image of instance web-1 cannot hold mountpoint /tmp: /tmp is a file in the image, a directory is needed"
        );
        let error = Layer::plan(
            &Image::new(&layers),
            &needed(&[("/tmp/x", Kind::Dir)]),
            "web-1",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("/tmp is a file in the image where a directory is needed"),
            "{error}"
        );
    }
}
