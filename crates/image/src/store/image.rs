//! Images in the store: manifests and configs as canonical JSON blobs.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::Store;
use crate::oci::{Descriptor, ImageConfig, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest};
use crate::{Digest, ImageError};

impl Store {
    /// Reads and parses a manifest blob (verifying its digest).
    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest, ImageError> {
        self.read_json(digest, "manifest")
    }

    /// Reads and parses an image config blob (verifying its digest).
    pub fn read_config(&self, digest: &Digest) -> Result<ImageConfig, ImageError> {
        self.read_json(digest, "image config")
    }

    pub(crate) fn read_json<T: DeserializeOwned>(
        &self,
        digest: &Digest,
        what: &str,
    ) -> Result<T, ImageError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: format!("{what} {digest}"),
            source,
        })
    }

    /// Stores `config` and a manifest over `layers` (whose blobs must be in the store);
    /// returns the manifest's descriptor.
    ///
    /// `layers` must match `config.rootfs.diff_ids` one for one.
    pub fn put_image(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor, ImageError> {
        let diff_ids = config.rootfs.diff_ids.len();
        if diff_ids != layers.len() {
            return Err(ImageError::InvalidImage(format!(
                "the config lists {diff_ids} diff_ids but {} layers were given",
                layers.len()
            )));
        }
        for layer in &layers {
            self.require_blob(&layer.digest)?;
        }
        let (digest, size) = self.put_json(config)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
            config: descriptor(MEDIA_TYPE_CONFIG, digest, size),
            layers,
            annotations: BTreeMap::new(),
        };
        let (digest, size) = self.put_json(&manifest)?;
        Ok(descriptor(MEDIA_TYPE_MANIFEST, digest, size))
    }

    /// Fails with [`ImageError::MissingBlob`] unless the blob is in the store.
    pub(crate) fn require_blob(&self, digest: &Digest) -> Result<(), ImageError> {
        if self.has_blob(digest) {
            Ok(())
        } else {
            Err(ImageError::MissingBlob {
                digest: digest.clone(),
                path: self.blob_path(digest),
            })
        }
    }
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type, digest, size)
}
