//! Looking paths up in an image's layer directories as overlayfs merges them, without
//! mounting: the topmost entry wins, whiteouts (char 0/0) hide, opaque directories hide
//! what is below them, and symlinks resolve inside the image root, as runc resolves
//! mount destinations.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before giving up, as the kernel's limit.
const MAX_SYMLINKS: u32 = 40;

/// Mode bits and owner of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Attrs {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Attrs {
    /// A new directory of kiln's: `0755 root:root`.
    pub(crate) const DIR: Attrs = Attrs {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    /// A new file of kiln's: `0644 root:root`.
    pub(crate) const FILE: Attrs = Attrs {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
}

impl From<&Metadata> for Attrs {
    fn from(meta: &Metadata) -> Self {
        Attrs {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// What a path resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    Dir,
    /// A file, device, socket or fifo (symlinks are followed).
    NotDir,
}

/// A path resolved in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The existing directories on the way, root first (as `""`), with their attributes.
    pub(crate) dirs: Vec<(PathBuf, Attrs)>,
    /// The resolved path, relative to the root, symlinks replaced.
    pub(crate) path: PathBuf,
    /// What is there; `None` when missing (then so is everything after the last of
    /// `dirs`).
    pub(crate) found: Option<Found>,
}

/// Why a path cannot be resolved.
#[derive(Debug)]
pub(crate) enum Unresolvable {
    /// A file sits where a directory is needed (the path, relative to the root).
    NotADirectory(PathBuf),
    /// Too many symlinks, or `..` below a missing directory.
    Symlinks,
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for Unresolvable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolvable::NotADirectory(path) => write!(
                f,
                "/{} is a file in the image where a directory is needed",
                path.display()
            ),
            Unresolvable::Symlinks => write!(f, "too many levels of symlinks in the image"),
            Unresolvable::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

/// One entry of the merged tree.
enum Entry {
    Missing,
    /// A directory, and the layers (indices) that have it as a directory.
    Dir(Attrs, Vec<usize>),
    Symlink(PathBuf),
    NotDir,
}

/// An image: its layer directories, topmost first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Image<'a> {
    layers: &'a [PathBuf],
}

impl<'a> Image<'a> {
    pub(crate) fn new(layers: &'a [PathBuf]) -> Self {
        Image { layers }
    }

    /// The root directory's attributes (those of the topmost layer), `0755 root` when
    /// there are no layers.
    pub(crate) fn root_attrs(&self) -> Result<Attrs, Unresolvable> {
        match self.layers.first() {
            Some(top) => fs::metadata(top)
                .map(|meta| Attrs::from(&meta))
                .map_err(|e| Unresolvable::Io(top.clone(), e)),
            None => Ok(Attrs::DIR),
        }
    }

    /// Resolves the absolute `path`, following every symlink.
    pub(crate) fn resolve(&self, path: &str) -> Result<Resolved, Unresolvable> {
        let root = (
            PathBuf::new(),
            self.root_attrs()?,
            (0..self.layers.len()).collect(),
        );
        let mut stack: Vec<(PathBuf, Attrs, Vec<usize>)> = vec![root];
        let mut queue = components(Path::new(path));
        let mut symlinks = 0;
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let (parent, _, layers) = stack.last().expect("the root is never popped");
            let child = parent.join(&name);
            match self.entry(layers, &child)? {
                Entry::Dir(attrs, layers) => stack.push((child, attrs, layers)),
                Entry::Symlink(target) => {
                    symlinks += 1;
                    if symlinks > MAX_SYMLINKS {
                        return Err(Unresolvable::Symlinks);
                    }
                    if target.is_absolute() {
                        stack.truncate(1);
                    }
                    for part in components(&target).into_iter().rev() {
                        queue.push_front(part);
                    }
                }
                Entry::NotDir if queue.is_empty() => {
                    return Ok(resolved(stack, child, Some(Found::NotDir)));
                }
                Entry::NotDir => return Err(Unresolvable::NotADirectory(child)),
                Entry::Missing => {
                    let mut path = child;
                    for part in queue {
                        if part == ".." {
                            return Err(Unresolvable::Symlinks);
                        }
                        path.push(part);
                    }
                    return Ok(resolved(stack, path, None));
                }
            }
        }
        let path = stack
            .last()
            .map(|(path, ..)| path.clone())
            .unwrap_or_default();
        Ok(resolved(stack, path, Some(Found::Dir)))
    }

    /// `relative` in the merged tree, searching `layers` (where its parent is a
    /// directory), topmost first.
    fn entry(&self, layers: &[usize], relative: &Path) -> Result<Entry, Unresolvable> {
        let mut dir: Option<(Attrs, Vec<usize>)> = None;
        for &index in layers {
            let path = self.layers[index].join(relative);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Unresolvable::Io(path, e)),
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                let (_, found_in) = dir.get_or_insert_with(|| (Attrs::from(&meta), Vec::new()));
                found_in.push(index);
                if is_opaque(&path) {
                    break;
                }
            } else if dir.is_some() || (kind.is_char_device() && meta.rdev() == 0) {
                // Hidden below a directory, or a whiteout hiding everything below.
                break;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).map_err(|e| Unresolvable::Io(path, e))?;
                return Ok(Entry::Symlink(target));
            } else {
                return Ok(Entry::NotDir);
            }
        }
        Ok(match dir {
            Some((attrs, found_in)) => Entry::Dir(attrs, found_in),
            None => Entry::Missing,
        })
    }
}

fn resolved(
    stack: Vec<(PathBuf, Attrs, Vec<usize>)>,
    path: PathBuf,
    found: Option<Found>,
) -> Resolved {
    Resolved {
        dirs: stack
            .into_iter()
            .map(|(path, attrs, _)| (path, attrs))
            .collect(),
        path,
        found,
    }
}

/// The names in `path`, `..` kept, `/` and `.` dropped.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Whether overlayfs treats the directory as opaque (hiding the layers below).
/// Whether `path` is an overlay opaque directory (`trusted.overlay.opaque` is `y`).
pub fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 1];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value[..]),
        Ok(1) if value[0] == b'y'
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use rustix::fs::{CWD, FileType, Mode};

    use super::*;

    fn layers() -> (tempfile::TempDir, Vec<PathBuf>) {
        let base = tempfile::tempdir().unwrap();
        let top = base.path().join("top");
        let bottom = base.path().join("bottom");
        for dir in ["etc", "var/lib", "srv/app", "gone/sub"] {
            fs::create_dir_all(bottom.join(dir)).unwrap();
        }
        fs::write(bottom.join("etc/hosts"), "").unwrap();
        fs::write(bottom.join("etc/resolv.conf"), "").unwrap();
        symlink("/var/lib", bottom.join("data")).unwrap();
        symlink("../var/lib/nowhere", bottom.join("etc/dangling")).unwrap();
        fs::create_dir_all(top.join("srv/app")).unwrap();
        fs::set_permissions(top.join("srv/app"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(top.join("etc")).unwrap();
        rustix::fs::mknodat(
            CWD,
            top.join("etc/resolv.conf"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::mknodat(
            CWD,
            top.join("gone"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        (base, vec![top, bottom])
    }

    #[test]
    fn topmost_wins_and_whiteouts_hide() {
        let (_base, layers) = layers();
        let image = Image::new(&layers);
        assert_eq!(
            image.resolve("/etc/hosts").unwrap().found,
            Some(Found::NotDir)
        );
        assert_eq!(image.resolve("/etc/resolv.conf").unwrap().found, None);
        let gone = image.resolve("/gone/sub").unwrap();
        assert_eq!(gone.found, None);
        assert_eq!(gone.path, Path::new("gone/sub"));
        let app = image.resolve("/srv/app").unwrap();
        assert_eq!(app.found, Some(Found::Dir));
        assert_eq!(app.dirs.last().unwrap().1.mode, 0o700);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (_base, layers) = layers();
        let image = Image::new(&layers);
        let data = image.resolve("/data/cache").unwrap();
        assert_eq!(data.path, Path::new("var/lib/cache"));
        assert_eq!(data.found, None);
        let names: Vec<_> = data.dirs.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(names, [PathBuf::new(), "var".into(), "var/lib".into()]);
        let dangling = image.resolve("/etc/dangling").unwrap();
        assert_eq!(dangling.path, Path::new("var/lib/nowhere"));
        assert_eq!(dangling.found, None);
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let (_base, layers) = layers();
        let error = Image::new(&layers).resolve("/etc/hosts/x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/etc/hosts is a file in the image where a directory is needed"
        );
    }

    #[test]
    fn symlink_loops_end() {
        let base = tempfile::tempdir().unwrap();
        symlink("/b", base.path().join("a")).unwrap();
        symlink("/a", base.path().join("b")).unwrap();
        let layers = vec![base.path().to_owned()];
        assert!(matches!(
            Image::new(&layers).resolve("/a/x"),
            Err(Unresolvable::Symlinks)
        ));
    }
}
