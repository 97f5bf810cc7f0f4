//! Writes validated layer entries below a directory without ever following a symlink.
//!
//! Every directory is reached from the root one component at a time with
//! `O_DIRECTORY|O_NOFOLLOW`, every entry is created relative to its parent's file
//! descriptor, and files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::Timespec;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags};
use rustix::io::Errno;

use super::EntryProblem;
use super::rules::{Action, Meta};

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug)]
pub(super) enum WriteError {
    Problem(EntryProblem),
    Io(&'static str, io::Error),
    /// Reading the entry's data from the tar stream failed.
    Read(io::Error),
}

type Result<T> = std::result::Result<T, WriteError>;

fn io_err(op: &'static str) -> impl FnOnce(Errno) -> WriteError {
    move |e| WriteError::Io(op, e.into())
}

#[derive(Debug)]
pub(super) struct Writer {
    root: OwnedFd,
    /// The parent directory of the previous entry; entries usually come grouped by
    /// directory. Only the entry's leaf is ever removed, never this directory or one
    /// of its ancestors, so the descriptor stays valid for its path.
    parent: Option<(PathBuf, OwnedFd)>,
    /// Modes and mtimes of directory entries, applied by [`Writer::finish`].
    dirs: BTreeMap<PathBuf, Meta>,
}

impl Writer {
    pub(super) fn open(dest: &Path) -> io::Result<Writer> {
        Ok(Writer {
            root: rfs::open(dest, DIR_FLAGS, Mode::empty())?,
            parent: None,
            dirs: BTreeMap::new(),
        })
    }

    pub(super) fn apply(&mut self, action: &Action, data: &mut dyn Read) -> Result<()> {
        let path = match action {
            Action::Skip => return Ok(()),
            Action::Opaque { dir } => {
                let fd = walk(&self.root, dir, true)?;
                return rfs::fsetxattr(&fd, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(io_err("setting the opaque xattr"));
            }
            Action::Dir { path, meta } if path.as_os_str().is_empty() => {
                chown(&self.root, meta)?;
                self.dirs.insert(PathBuf::new(), *meta);
                return Ok(());
            }
            Action::Dir { path, .. }
            | Action::File { path, .. }
            | Action::Symlink { path, .. }
            | Action::HardLink { path, .. }
            | Action::Fifo { path, .. }
            | Action::Whiteout { path, .. } => path,
        };
        let name = path.file_name().unwrap_or_default();
        let parent = parent_fd(&self.root, &mut self.parent, path)?;
        let kept_dir = clear(parent, name, matches!(action, Action::Dir { .. }))?;
        match action {
            Action::Dir { path, meta } => {
                if !kept_dir {
                    rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                        .map_err(io_err("creating the directory"))?;
                }
                let fd = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())
                    .map_err(io_err("opening the directory"))?;
                chown(&fd, meta)?;
                self.dirs.insert(path.clone(), *meta);
            }
            Action::File { meta, .. } => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rfs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
                    .map_err(io_err("creating the file"))?;
                let mut file = File::from(fd);
                copy(data, &mut file)?;
                set_meta(&file, meta)?;
            }
            Action::Symlink { target, meta, .. } => {
                rfs::symlinkat(target, parent, name).map_err(io_err("creating the symlink"))?;
                set_meta_at(parent, name, meta)?;
            }
            Action::HardLink { target, .. } => {
                let target_dir = target.parent().unwrap_or(Path::new(""));
                let target_parent = walk(&self.root, target_dir, false)?;
                let target_name = target.file_name().unwrap_or_default();
                rfs::linkat(&target_parent, target_name, parent, name, AtFlags::empty())
                    .map_err(io_err("creating the hard link"))?;
            }
            Action::Fifo { meta, .. } => {
                rfs::mknodat(parent, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(io_err("creating the fifo"))?;
                // Opening a fifo for reading without O_NONBLOCK would wait for a writer.
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rfs::openat(parent, name, flags, Mode::empty())
                    .map_err(io_err("opening the fifo"))?;
                set_meta(&fd, meta)?;
            }
            Action::Whiteout { meta, .. } => {
                let dev = rfs::makedev(0, 0);
                rfs::mknodat(parent, name, FileType::CharacterDevice, Mode::empty(), dev)
                    .map_err(io_err("creating the whiteout device"))?;
                set_meta_at(parent, name, meta)?;
            }
            Action::Skip | Action::Opaque { .. } => {}
        }
        Ok(())
    }

    /// Applies directory modes and mtimes, deepest first, now that their children are
    /// written. A directory replaced by a later entry is skipped.
    /// On error, returns the directory's path with it.
    pub(super) fn finish(self) -> std::result::Result<(), (String, WriteError)> {
        for (path, meta) in self.dirs.iter().rev() {
            let fd = match walk(&self.root, path, false) {
                Ok(fd) => fd,
                Err(WriteError::Problem(_)) => continue,
                Err(WriteError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err((path.display().to_string(), e)),
            };
            let shown = || path.display().to_string();
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .map_err(|e| (shown(), io_err("setting the directory mode")(e)))?;
            rfs::futimens(&fd, &timestamps(meta))
                .map_err(|e| (shown(), io_err("setting the directory mtime")(e)))?;
        }
        Ok(())
    }
}

/// The descriptor of `path`'s parent directory, reusing the previous one if it is the
/// same directory.
fn parent_fd<'c>(
    root: &OwnedFd,
    cache: &'c mut Option<(PathBuf, OwnedFd)>,
    path: &Path,
) -> Result<&'c OwnedFd> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let entry = match cache.take() {
        Some((cached, fd)) if cached == dir => (cached, fd),
        _ => (dir.to_path_buf(), walk(root, dir, true)?),
    };
    Ok(&cache.insert(entry).1)
}

/// Opens `dir` (relative to `root`) one component at a time without following
/// symlinks, creating missing directories (mode 0755) when `create` is set.
fn walk(root: &OwnedFd, dir: &Path, create: bool) -> Result<OwnedFd> {
    let mut fd = rfs::openat(root, c".", DIR_FLAGS, Mode::empty())
        .map_err(io_err("opening the layer root"))?;
    let mut so_far = PathBuf::new();
    for name in dir.iter() {
        so_far.push(name);
        fd = match rfs::openat(&fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) if create => {
                match rfs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err("creating a parent directory")(e)),
                }
                let next = rfs::openat(&fd, name, DIR_FLAGS, Mode::empty())
                    .map_err(io_err("opening a parent directory"))?;
                // Not subject to the umask.
                rfs::fchmod(&next, Mode::from_raw_mode(0o755))
                    .map_err(io_err("setting a parent directory's mode"))?;
                next
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let shown = so_far.display().to_string();
                let stat = rfs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("inspecting a parent directory"))?;
                return Err(WriteError::Problem(
                    if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
                        EntryProblem::ThroughSymlink(shown)
                    } else {
                        EntryProblem::ThroughNonDirectory(shown)
                    },
                ));
            }
            Err(e) => return Err(io_err("opening a parent directory")(e)),
        };
    }
    Ok(fd)
}

/// Removes whatever is at `name` in `parent`, unless both it and the new entry are
/// directories (they merge). Returns whether an existing directory was kept.
fn clear(parent: &OwnedFd, name: &OsStr, new_is_dir: bool) -> Result<bool> {
    let stat = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(io_err("inspecting the existing entry")(e)),
    };
    let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
    if is_dir && new_is_dir {
        return Ok(true);
    }
    if is_dir {
        remove_tree(parent, &os_to_cstring(name))
            .map_err(io_err("removing the existing directory"))?;
    } else {
        rfs::unlinkat(parent, name, AtFlags::empty())
            .map_err(io_err("removing the existing entry"))?;
    }
    Ok(false)
}

fn os_to_cstring(name: &OsStr) -> CString {
    use std::os::unix::ffi::OsStrExt;
    // Entry names never contain NUL (the rules refuse them).
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// Removes the directory `name` and everything below it, without following symlinks.
fn remove_tree(parent: &OwnedFd, name: &CStr) -> std::result::Result<(), Errno> {
    let fd = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    let mut children = Vec::new();
    for child in rfs::Dir::read_from(&fd)? {
        let child = child?;
        let child_name = child.file_name();
        if child_name != c"." && child_name != c".." {
            children.push((child_name.to_owned(), child.file_type()));
        }
    }
    for (child, file_type) in children {
        let is_dir = match file_type {
            FileType::Directory => true,
            FileType::Unknown => {
                let stat = rfs::statat(&fd, &child, AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(stat.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if is_dir {
            remove_tree(&fd, &child)?;
        } else {
            rfs::unlinkat(&fd, &child, AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn copy(data: &mut dyn Read, file: &mut File) -> Result<()> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WriteError::Read(e)),
        };
        file.write_all(&buf[..n])
            .map_err(|e| WriteError::Io("writing the file", e))?;
    }
}

fn ids(meta: &Meta) -> (Option<rfs::Uid>, Option<rfs::Gid>) {
    (
        Some(rfs::Uid::from_raw(meta.uid)),
        Some(rfs::Gid::from_raw(meta.gid)),
    )
}

fn chown(fd: &OwnedFd, meta: &Meta) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::fchown(fd, uid, gid).map_err(io_err("setting the owner"))
}

/// Owner, then mode (chown clears setuid), then mtime, through an open descriptor.
fn set_meta(fd: impl std::os::fd::AsFd, meta: &Meta) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::fchown(&fd, uid, gid).map_err(io_err("setting the owner"))?;
    rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(io_err("setting the mode"))?;
    rfs::futimens(&fd, &timestamps(meta)).map_err(io_err("setting the mtime"))
}

/// Owner and mtime of a symlink or device, which cannot be opened.
fn set_meta_at(parent: &OwnedFd, name: &OsStr, meta: &Meta) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io_err("setting the owner"))?;
    rfs::utimensat(parent, name, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io_err("setting the mtime"))
}

fn timestamps(meta: &Meta) -> Timestamps {
    let t = Timespec {
        tv_sec: meta.mtime.secs,
        tv_nsec: meta.mtime.nanos.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
