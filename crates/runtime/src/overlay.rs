//! Mounting the overlay root of a sandbox, and unmounting it again.
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
pub(crate) struct Overlay {
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
        let plain: Vec<&[u8]> = lowerdirs
            .iter()
            .map(|dir| dir.as_os_str().as_bytes())
            .collect();
        let mut options = render(
            &plain,
            upperdir.as_os_str().as_bytes(),
            workdir.as_os_str().as_bytes(),
        );
        // Keep the descriptors open until the mount call has resolved their paths.
        let mut fds: Vec<OwnedFd> = Vec::new();
        if options.len() > MAX_OPTIONS_LEN || !all_plain(&plain, upperdir, workdir) {
            let mut names = Vec::with_capacity(lowerdirs.len() + 2);
            for dir in lowerdirs
                .iter()
                .map(PathBuf::as_path)
                .chain([upperdir, workdir])
            {
                let fd = rustix::fs::open(
                    dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| RuntimeError::io(dir, e))?;
                names.push(format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes());
                fds.push(fd);
            }
            let (lower, upper_work) = names.split_at(lowerdirs.len());
            let lower: Vec<&[u8]> = lower.iter().map(Vec::as_slice).collect();
            options = render(&lower, &upper_work[0], &upper_work[1]);
        }
        if options.len() > MAX_OPTIONS_LEN {
            return Err(RuntimeError::TooManyLayers {
                layers: lowerdirs.len(),
                len: options.len(),
            });
        }
        let data = CString::new(options).expect("paths contain no NUL bytes");
        let mounted = rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            Some(data.as_c_str()),
        );
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
fn all_plain(lower: &[&[u8]], upper: &Path, work: &Path) -> bool {
    let plain = |bytes: &[u8]| !bytes.iter().any(|b| matches!(b, b',' | b':' | b'\\'));
    lower.iter().all(|dir| plain(dir))
        && plain(upper.as_os_str().as_bytes())
        && plain(work.as_os_str().as_bytes())
}

/// `lowerdir=a:b,upperdir=u,workdir=w,` plus [`SAFE_OPTIONS`].
fn render(lower: &[&[u8]], upper: &[u8], work: &[u8]) -> Vec<u8> {
    let mut options = b"lowerdir=".to_vec();
    for (i, dir) in lower.iter().enumerate() {
        if i > 0 {
            options.push(b':');
        }
        options.extend_from_slice(dir);
    }
    options.extend_from_slice(b",upperdir=");
    options.extend_from_slice(upper);
    options.extend_from_slice(b",workdir=");
    options.extend_from_slice(work);
    options.push(b',');
    options.extend_from_slice(SAFE_OPTIONS.as_bytes());
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_layers_in_order() {
        let options = render(&[b"/l/top", b"/l/base"], b"/u", b"/w");
        assert_eq!(
            String::from_utf8_lossy(&options),
            "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w,index=off,metacopy=off,redirect_dir=off"
        );
    }

    #[test]
    fn separators_force_descriptor_names() {
        assert!(all_plain(&[b"/a/b"], Path::new("/u"), Path::new("/w")));
        assert!(!all_plain(&[b"/a:b"], Path::new("/u"), Path::new("/w")));
        assert!(!all_plain(&[b"/a"], Path::new("/u,x"), Path::new("/w")));
    }
}
