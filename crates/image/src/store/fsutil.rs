//! Atomic file creation: write a temporary file, fsync it, rename it, fsync the directory.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::ImageError;

/// A new temporary file in `tmp_dir`, readable by all (blobs are not secret).
pub(crate) fn temp_file(tmp_dir: &Path) -> Result<NamedTempFile, ImageError> {
    tempfile::Builder::new()
        .prefix(".kiln-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(tmp_dir)
        .map_err(ImageError::io(tmp_dir))
}

/// Fsyncs a directory, making renames into it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io(dir))
}

/// Renames a complete, fsynced temporary file to `dest`.
///
/// With `replace` false an existing `dest` is kept (and the temporary file dropped):
/// used for content-addressed files, where an existing file has the same content.
pub(crate) fn persist(tmp: NamedTempFile, dest: &Path, replace: bool) -> Result<(), ImageError> {
    let result = if replace {
        tmp.persist(dest).map(drop)
    } else {
        match tmp.persist_noclobber(dest) {
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other.map(drop),
        }
    };
    result.map_err(|e| ImageError::Io {
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `dest` atomically, through a temporary file in `tmp_dir`.
pub(crate) fn write_atomic(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
    replace: bool,
) -> Result<(), ImageError> {
    let mut tmp = temp_file(tmp_dir)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(ImageError::io(tmp.path()))?;
    persist(tmp, dest, replace)
}

/// Creates `dest` with `bytes` unless it exists.
pub(crate) fn create_if_missing(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
) -> Result<(), ImageError> {
    match fs::symlink_metadata(dest) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_atomic(tmp_dir, dest, bytes, false),
        Err(e) => Err(ImageError::Io {
            path: dest.to_path_buf(),
            source: e,
        }),
    }
}
