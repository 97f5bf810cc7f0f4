//! The OCI bundle directory of one run, and its removal.
//!
//! Layout of `<scratch>/run-<pid>-<n>`: `config.json`, `runc.log`, `rootfs` (the overlay
//! mountpoint), `work` (the overlay work directory, outside the caller's upper
//! directory) and `lower` (an empty lower layer for `scratch` images).
//!
//! Removal never recurses into `rootfs`: it is only `rmdir`ed, which fails harmlessly
//! if the overlay is somehow still mounted there.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::RuntimeError;

/// Distinguishes the runs of this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A bundle directory; dropping it removes it (best effort).
#[derive(Debug)]
pub(crate) struct Bundle {
    dir: PathBuf,
    id: String,
    removed: bool,
}

impl Bundle {
    /// Creates a fresh, uniquely named bundle directory under `scratch`.
    pub(crate) fn create(scratch: &Path) -> Result<Self, RuntimeError> {
        fs::create_dir_all(scratch).map_err(|e| RuntimeError::io(scratch, e))?;
        let pid = process::id();
        let (dir, suffix) = loop {
            let suffix = format!("{pid}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
            let dir = scratch.join(format!("run-{suffix}"));
            match fs::create_dir(&dir) {
                Ok(()) => break (dir, suffix),
                // Left behind by an earlier process with the same pid.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(RuntimeError::io(dir, e)),
            }
        };
        let bundle = Bundle {
            dir,
            id: format!("kiln-{suffix}"),
            removed: false,
        };
        for sub in [bundle.rootfs(), bundle.work(), bundle.empty_lower()] {
            fs::create_dir(&sub).map_err(|e| RuntimeError::io(sub, e))?;
        }
        Ok(bundle)
    }

    /// The bundle directory, as passed to `runc run --bundle`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container id for this run.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The overlay mountpoint, `root.path` of the config.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The overlay work directory.
    pub(crate) fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// An empty directory, the lower layer of a `scratch` image.
    pub(crate) fn empty_lower(&self) -> PathBuf {
        self.dir.join("lower")
    }

    /// Where runc writes its own log, as JSON lines.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("runc.log")
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes `config.json`.
    pub(crate) fn write_config(&self, config: &Value) -> Result<(), RuntimeError> {
        let path = self.config();
        let json = serde_json::to_vec_pretty(config).expect("a JSON value always serialises");
        fs::write(&path, json).map_err(|e| RuntimeError::io(path, e))
    }

    /// Removes the bundle. Call it only once the overlay is unmounted.
    pub(crate) fn remove(mut self) -> Result<(), RuntimeError> {
        self.removed = true;
        self.remove_all()
    }

    fn remove_all(&self) -> Result<(), RuntimeError> {
        let absent_ok = |path: PathBuf, result: std::io::Result<()>| match result {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(RuntimeError::io(path, e)),
            _ => Ok(()),
        };
        absent_ok(self.config(), fs::remove_file(self.config()))?;
        absent_ok(self.log(), fs::remove_file(self.log()))?;
        absent_ok(self.work(), fs::remove_dir_all(self.work()))?;
        absent_ok(self.empty_lower(), fs::remove_dir(self.empty_lower()))?;
        absent_ok(self.rootfs(), fs::remove_dir(self.rootfs()))?;
        absent_ok(self.dir.clone(), fs::remove_dir(&self.dir))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.removed {
            // Best effort on an error path; `remove` reports failures on the normal one.
            let _ = self.remove_all();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_unique_and_removed() {
        let scratch = tempfile::tempdir().unwrap();
        let a = Bundle::create(scratch.path()).unwrap();
        let b = Bundle::create(scratch.path()).unwrap();
        assert_ne!(a.dir(), b.dir());
        assert_ne!(a.id(), b.id());
        assert!(a.rootfs().is_dir() && a.work().is_dir() && a.empty_lower().is_dir());
        a.write_config(&serde_json::json!({ "ociVersion": "1.0.2" }))
            .unwrap();
        fs::create_dir_all(a.work().join("work")).unwrap();
        a.remove().unwrap();
        drop(b);
        assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
    }

    #[test]
    fn removal_never_empties_the_rootfs() {
        let scratch = tempfile::tempdir().unwrap();
        let bundle = Bundle::create(scratch.path()).unwrap();
        let rootfs = bundle.rootfs();
        fs::write(rootfs.join("precious"), "x").unwrap();
        assert!(bundle.remove().is_err());
        assert!(rootfs.join("precious").exists());
    }
}
