//! Mounting the overlay root of a sandbox (or a read-only overlay view), and unmounting it
//! again.
//!
//! The options always switch off the overlay features that would record changes in a
//! form other than plain files, whiteouts and opaque directories (`index`, `metacopy`,
//! `redirect_dir`): the upper directory must be a self-contained layer.
//!
//! The kernel accepts at most one page (4 KiB) of mount options. Lower layers are named
//! by their paths when that fits and the paths contain no option separators; otherwise
//! every directory is opened and named as `/proc/self/fd/N`, which is about 20 bytes a
//! layer and so allows roughly 200 layers. Deeper images fail with
//! [`RuntimeError::TooManyLayers`]; the kernel's own limit is 500 layers.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::RuntimeError;

/// Options that keep every change a plain file, whiteout or opaque directory.
const SAFE_OPTIONS: &str = "index=off,metacopy=off,redirect_dir=off";

/// Longest option string the kernel accepts: one page including the NUL.
const MAX_OPTIONS_LEN: usize = 4095;

/// A mounted overlay; dropping it detaches the mount.
#[derive(Debug)]
pub struct Overlay {
    target: PathBuf,
    mounted: bool,
}

impl Overlay {
    /// Mounts an overlay of `lowerdirs` (topmost first, at least one) and `upperdir` at
    /// `target`, with `workdir` as the overlay's work directory.
    pub(crate) fn mount(
        lowerdirs: &[PathBuf],
        upperdir: &Path,
        workdir: &Path,
        target: &Path,
    ) -> Result<Self, RuntimeError> {
        Overlay::mount_with(lowerdirs, Some((upperdir, workdir)), target)
    }

    /// Mounts a read-only overlay of `lowerdirs` (topmost first, at least two: the
    /// kernel needs two lower dirs when there is no upper) at `target`.
    pub fn mount_read_only(lowerdirs: &[PathBuf], target: &Path) -> Result<Self, RuntimeError> {
        Overlay::mount_with(lowerdirs, None, target)
    }

    fn mount_with(
        lowerdirs: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Self, RuntimeError> {
        let extra: Vec<&Path> = upper_work.map(|(u, w)| vec![u, w]).unwrap_or_default();
        let dirs: Vec<&Path> = lowerdirs
            .iter()
            .map(PathBuf::as_path)
            .chain(extra)
            .collect();
        let plain: Vec<&[u8]> = dirs.iter().map(|d| d.as_os_str().as_bytes()).collect();
        let mut options = render(&plain, lowerdirs.len());
        // Keep the descriptors open until the mount call has resolved their paths.
        let mut fds: Vec<OwnedFd> = Vec::new();
        if options.len() > MAX_OPTIONS_LEN || !all_plain(&plain) {
            let mut names = Vec::with_capacity(dirs.len());
            for dir in &dirs {
                let fd = rustix::fs::open(
                    *dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| RuntimeError::io(dir, e))?;
                names.push(format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes());
                fds.push(fd);
            }
            let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            options = render(&names, lowerdirs.len());
        }
        if options.len() > MAX_OPTIONS_LEN {
            return Err(RuntimeError::TooManyLayers {
                layers: lowerdirs.len(),
                len: options.len(),
            });
        }
        let data = CString::new(options).expect("paths contain no NUL bytes");
        let flags = if upper_work.is_some() {
            MountFlags::empty()
        } else {
            MountFlags::RDONLY
        };
        let mounted =
            rustix::mount::mount("overlay", target, "overlay", flags, Some(data.as_c_str()));
        drop(fds);
        mounted.map_err(|e| RuntimeError::Mount {
            target: target.to_owned(),
            source: e.into(),
        })?;
        Ok(Overlay {
            target: target.to_owned(),
            mounted: true,
        })
    }

    /// Where the overlay is mounted.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Leaves the overlay mounted for good: whoever owns `target` unmounts it.
    pub(crate) fn leave_mounted(mut self) {
        self.mounted = false;
    }

    /// Detaches the mount (lazily: it goes away once nothing uses it any more).
    pub(crate) fn unmount(mut self) -> Result<(), RuntimeError> {
        self.mounted = false;
        rustix::mount::unmount(&self.target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).map_err(
            |e| RuntimeError::Unmount {
                target: self.target.clone(),
                source: e.into(),
            },
        )
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted {
            // Best effort on an error path; `unmount` reports failures on the normal one.
            let _ =
                rustix::mount::unmount(&self.target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
        }
    }
}

/// Whether every path can be written into the options as it is.
fn all_plain(dirs: &[&[u8]]) -> bool {
    dirs.iter()
        .all(|dir| !dir.iter().any(|b| matches!(b, b',' | b':' | b'\\')))
}

/// `lowerdir=a:b` for the first `lowers` of `dirs`, then `,upperdir=u,workdir=w` when
/// two more follow, plus [`SAFE_OPTIONS`].
fn render(dirs: &[&[u8]], lowers: usize) -> Vec<u8> {
    let (lower, upper_work) = dirs.split_at(lowers.min(dirs.len()));
    let mut options = b"lowerdir=".to_vec();
    for (i, dir) in lower.iter().enumerate() {
        if i > 0 {
            options.push(b':');
        }
        options.extend_from_slice(dir);
    }
    if let [upper, work] = upper_work {
        options.extend_from_slice(b",upperdir=");
        options.extend_from_slice(upper);
        options.extend_from_slice(b",workdir=");
        options.extend_from_slice(work);
    }
    options.push(b',');
    options.extend_from_slice(SAFE_OPTIONS.as_bytes());
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_layers_in_order() {
        let options = render(&[b"/l/top", b"/l/base", b"/u", b"/w"], 2);
        assert_eq!(
            String::from_utf8_lossy(&options),
            "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w,index=off,metacopy=off,redirect_dir=off"
        );
        let options = render(&[b"/l/top", b"/l/base"], 2);
        assert_eq!(
            String::from_utf8_lossy(&options),
            "lowerdir=/l/top:/l/base,index=off,metacopy=off,redirect_dir=off"
        );
    }

    #[test]
    fn separators_force_descriptor_names() {
        assert!(all_plain(&[b"/a/b", b"/u", b"/w"]));
        assert!(!all_plain(&[b"/a:b", b"/u", b"/w"]));
        assert!(!all_plain(&[b"/a", b"/u,x", b"/w"]));
    }
}
