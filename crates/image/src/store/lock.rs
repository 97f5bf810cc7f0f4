//! Inter-process locks on the store: flock(2), which is per open file description, so
//! two `Store`s in one process exclude each other just as two processes do.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::Store;
use crate::ImageError;

/// An exclusive lock on the store's `.lock`, held by writers of `index.json` and gc;
/// released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// Blocks until this process holds the store's exclusive lock.
    pub fn lock(&self) -> Result<StoreLock, ImageError> {
        let path = self.layout.join(".lock");
        let file = open_lock_file(&path)?;
        lock_file(&file, FlockOperation::LockExclusive).map_err(ImageError::io(&path))?;
        Ok(StoreLock { _file: file })
    }
}

/// A shared lock held for a `Store`'s whole life, telling gc the store is in use.
#[derive(Debug)]
pub(crate) struct UsersLock {
    file: File,
    path: PathBuf,
}

impl UsersLock {
    pub(crate) fn acquire(path: &Path) -> Result<UsersLock, ImageError> {
        let file = open_lock_file(path)?;
        lock_file(&file, FlockOperation::LockShared).map_err(ImageError::io(path))?;
        Ok(UsersLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Converts the shared lock to an exclusive one if no other `Store` is open.
    ///
    /// Returns `None` when another holds it. Either way the shared lock is back in place
    /// when the returned guard (or this call, on `None`) is done.
    pub(crate) fn try_exclusive(&self) -> Result<Option<ExclusiveUse<'_>>, ImageError> {
        match lock_file(&self.file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(ExclusiveUse { users: self })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Linux drops the shared lock before trying the conversion: take it back.
                self.reshare()?;
                Ok(None)
            }
            Err(e) => Err(ImageError::Io {
                path: self.path.clone(),
                source: e,
            }),
        }
    }

    fn reshare(&self) -> Result<(), ImageError> {
        lock_file(&self.file, FlockOperation::LockShared).map_err(ImageError::io(&self.path))
    }
}

/// Sole use of the store; dropping it goes back to shared use.
#[derive(Debug)]
pub(crate) struct ExclusiveUse<'a> {
    users: &'a UsersLock,
}

impl Drop for ExclusiveUse<'_> {
    fn drop(&mut self) {
        // A failure here leaves this Store without its shared lock: a concurrent gc could
        // then run while it is in use, which is no worse than flock being unavailable.
        let _ = self.users.reshare();
    }
}

fn open_lock_file(path: &Path) -> Result<File, ImageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(ImageError::io(path))
}

fn lock_file(file: &File, op: FlockOperation) -> io::Result<()> {
    loop {
        match flock(file, op) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}
