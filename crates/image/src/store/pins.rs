//! Pins: manifests that garbage collection keeps although no tag names them.
//!
//! An owner (the daemon) records the manifests it runs or is about to run in
//! `home/store/pins/<owner>.json`; every pinned manifest is a root of reachability, like
//! an index entry, so removing a tag never takes the blobs or unpacked layers of a
//! running instance (or of the version a rollback would return to).

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{Store, fsutil};
use crate::oci::{Descriptor, MEDIA_TYPE_MANIFEST};
use crate::{Digest, ImageError};

impl Store {
    fn pins_dir(&self) -> PathBuf {
        self.layout.join("pins")
    }

    /// Replaces `owner`'s pins with `manifests` (atomically; an empty list removes the
    /// file). `owner` is a plain name (`[a-z0-9._-]`).
    pub fn set_pins(&self, owner: &str, manifests: &[Digest]) -> Result<(), ImageError> {
        super::index::validate_name(owner)?;
        let dir = self.pins_dir();
        let path = dir.join(format!("{owner}.json"));
        let _lock = self.lock()?;
        if manifests.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ImageError::io(&path)(e)),
                _ => Ok(()),
            };
        }
        fs::create_dir_all(&dir).map_err(ImageError::io(&dir))?;
        let mut sorted: Vec<String> = manifests.iter().map(Digest::to_string).collect();
        sorted.sort();
        sorted.dedup();
        let bytes = serde_json::to_vec(&sorted).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })?;
        fsutil::write_atomic(&self.tmp_dir(), &path, &bytes, true)
    }

    /// Every pinned manifest, of every owner, as index-like descriptors (a pin file that
    /// cannot be read is an error: collecting on a guess could delete what runs).
    pub(crate) fn pinned(&self) -> Result<Vec<Descriptor>, ImageError> {
        let dir = self.pins_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io(&dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(ImageError::io(&dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(ImageError::io(&path))?;
            let digests: Vec<String> =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                    what: path.display().to_string(),
                    source,
                })?;
            for digest in digests {
                let digest = Digest::parse(&digest)?;
                let size = fs::metadata(self.blob_path(&digest)).map_or(0, |m| m.len());
                out.push(Descriptor::new(MEDIA_TYPE_MANIFEST, digest, size));
            }
        }
        Ok(out)
    }
}
