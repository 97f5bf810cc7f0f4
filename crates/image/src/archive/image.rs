//! An image read from an archive, its layers in the store, ready to be stored whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{ArchiveError, BaseImage};
use crate::oci::{Descriptor, ImageConfig, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Manifest};
use crate::store::Store;
use crate::{Digest, ImageError};

/// The most a JSON file of an archive (index, manifest, config) may weigh.
pub(super) const MAX_JSON: u64 = 16 << 20;

#[derive(Debug)]
pub(super) struct LoadedImage {
    pub config: ImageConfig,
    /// The config as the archive has it, stored unchanged.
    pub config_bytes: Vec<u8>,
    /// In the store, `tar+gzip`.
    pub layers: Vec<Descriptor>,
    /// The archive's manifest, when it can be stored unchanged (an OCI manifest whose
    /// config and layers were all kept as they are): the image keeps its digest.
    pub verbatim_manifest: Option<Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
}

impl LoadedImage {
    /// Stores the config and the manifest; returns the manifest's descriptor.
    pub(super) fn store(&self, store: &Store) -> Result<Descriptor, ImageError> {
        let config = store.put_blob(&self.config_bytes)?;
        if let Some(bytes) = &self.verbatim_manifest {
            let digest = store.put_blob(bytes)?;
            return Ok(descriptor(MEDIA_TYPE_MANIFEST, digest, bytes.len() as u64));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
            config: descriptor(MEDIA_TYPE_CONFIG, config, self.config_bytes.len() as u64),
            layers: self.layers.clone(),
            annotations: self.annotations.clone(),
        };
        let (digest, size) = store.put_json(&manifest)?;
        Ok(descriptor(MEDIA_TYPE_MANIFEST, digest, size))
    }

    pub(super) fn into_base(self) -> BaseImage {
        BaseImage {
            config: self.config,
            layers: self.layers,
        }
    }
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type, digest, size)
}

/// Parses an image config and checks it lists one diff_id per layer.
pub(super) fn parse_config(
    archive: &Path,
    file: &str,
    bytes: &[u8],
    layers: usize,
) -> Result<ImageConfig, ImageError> {
    let config: ImageConfig = parse_json(archive, file, bytes)?;
    let diff_ids = config.rootfs.diff_ids.len();
    if diff_ids != layers {
        return Err(ArchiveError::LayerCount {
            archive: archive.to_path_buf(),
            layers,
            diff_ids,
        }
        .into());
    }
    Ok(config)
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    archive: &Path,
    file: &str,
    bytes: &[u8],
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| {
        ArchiveError::Json {
            archive: archive.to_path_buf(),
            file: file.to_string(),
            source,
        }
        .into()
    })
}

/// Checks that a layer's diff_id is the one the config lists.
pub(super) fn check_diff_id(
    archive: &Path,
    layer: &str,
    expected: &Digest,
    actual: &Digest,
) -> Result<(), ImageError> {
    if expected == actual {
        return Ok(());
    }
    Err(ArchiveError::DiffIdMismatch {
        archive: archive.to_path_buf(),
        layer: layer.to_string(),
        expected: expected.clone(),
        actual: actual.clone(),
    }
    .into())
}

/// Reads a small file of an archive (`label` names it in errors), refusing more than
/// `limit` bytes.
pub(super) fn read_small(
    archive: &Path,
    path: &Path,
    label: &str,
    limit: u64,
) -> Result<Vec<u8>, ImageError> {
    let file = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            ArchiveError::MissingFile {
                archive: archive.to_path_buf(),
                file: label.to_string(),
            }
            .into()
        } else {
            ImageError::io(path)(e)
        }
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::io(path))?;
    if bytes.len() as u64 > limit {
        return Err(ArchiveError::TooLarge {
            archive: archive.to_path_buf(),
            file: label.to_string(),
            limit,
        }
        .into());
    }
    Ok(bytes)
}
