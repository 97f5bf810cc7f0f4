//! Unpacked layers on disk: `home/layers/<diffid>/`, extracted once, verified, and
//! shared read-only by builds (overlay lowerdirs of RUN steps) and by instances.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use flate2::read::GzDecoder;

use super::Store;
use crate::oci::Descriptor;
use crate::{Digest, HashingReader, ImageError, UnpackLimits, unpack_layer};

impl Store {
    /// Makes sure the layer `diff_id` is unpacked under `home/layers` and returns its
    /// dir. The blob is verified against its digest and the tar against `diff_id`; a
    /// layer that fails either is never moved into place, so a layer dir that exists is
    /// complete and correct.
    pub fn ensure_unpacked(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<PathBuf, ImageError> {
        let dir = self.layer_dir(diff_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp_root = self.tmp_dir();
        fs::create_dir_all(&tmp_root).map_err(ImageError::io(&tmp_root))?;
        let tmp = tempfile::Builder::new()
            .prefix("unpack-")
            .tempdir_in(&tmp_root)
            .map_err(ImageError::io(&tmp_root))?;
        let target = tmp.path().join("layer");
        fs::create_dir(&target).map_err(ImageError::io(&target))?;
        // The layer root is the image's `/`: never the caller's umask.
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
            .map_err(ImageError::io(&target))?;
        let blob = self.open_blob(&layer.digest)?;
        let inner: Box<dyn Read> = if layer.media_type.ends_with("gzip") {
            Box::new(GzDecoder::new(blob))
        } else {
            Box::new(blob)
        };
        let mut reader = HashingReader::new(inner);
        unpack_layer(&mut reader, &target, &UnpackLimits::from_env())?;
        // Read to the end so that both the blob digest and the diff_id are checked.
        reader
            .drain()
            .map_err(ImageError::io(self.blob_path(&layer.digest)))?;
        let (actual, _, _) = reader.finish();
        if actual != *diff_id {
            return Err(ImageError::DigestMismatch {
                path: self.blob_path(&layer.digest),
                expected: diff_id.clone(),
                actual,
            });
        }
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(ImageError::io(parent))?;
        }
        match fs::rename(&target, &dir) {
            Ok(()) => Ok(dir),
            // Another process unpacked the same layer first: theirs is identical.
            Err(_) if dir.is_dir() => Ok(dir),
            Err(e) => Err(ImageError::io(&dir)(e)),
        }
    }

    /// The unpacked layer dirs of the image whose manifest is `manifest`, topmost
    /// first (the order of overlay `lowerdir`), unpacking what is missing.
    pub fn unpacked_layers(&self, manifest: &Digest) -> Result<Vec<PathBuf>, ImageError> {
        let parsed = self.read_manifest(manifest)?;
        let config = self.read_config(&parsed.config.digest)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != parsed.layers.len() {
            return Err(ImageError::InvalidImage(format!(
                "manifest {manifest} has {} layers but its config lists {} diff_ids",
                parsed.layers.len(),
                diff_ids.len()
            )));
        }
        let mut dirs = parsed
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| self.ensure_unpacked(layer, diff_id))
            .collect::<Result<Vec<_>, _>>()?;
        dirs.reverse();
        Ok(dirs)
    }
}
