//! Reading an OCI image layout: its index, verified blobs, and the image for this
//! platform.

use std::path::{Path, PathBuf};

use super::image::{LoadedImage, MAX_JSON, check_diff_id, parse_config, parse_json, read_small};
use super::layer::store_layer;
use super::{ArchiveError, BaseImage};
use crate::oci::{
    DOCKER_MEDIA_TYPE_MANIFEST, Descriptor, Index, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST, Manifest,
};
use crate::store::Store;
use crate::{Digest, ImageError, UnpackLimits};

const DOCKER_MEDIA_TYPE_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// Indexes may nest; this deep is surely a loop.
const MAX_INDEX_DEPTH: usize = 8;

#[derive(Debug)]
pub(super) struct Layout<'a> {
    /// Where the layout is (a directory, possibly an extracted archive).
    dir: &'a Path,
    /// What the user named, for messages.
    archive: &'a Path,
}

impl<'a> Layout<'a> {
    pub(super) fn new(dir: &'a Path, archive: &'a Path) -> Self {
        Layout { dir, archive }
    }

    pub(super) fn index(&self) -> Result<Index, ImageError> {
        let bytes = read_small(
            self.archive,
            &self.dir.join("index.json"),
            "index.json",
            MAX_JSON,
        )?;
        parse_json(self.archive, "index.json", &bytes)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Reads a small blob, checking its size and digest against `descriptor`.
    fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let label = format!("blob {}", descriptor.digest);
        let limit = descriptor.size.min(MAX_JSON);
        let bytes = read_small(
            self.archive,
            &self.blob_path(&descriptor.digest),
            &label,
            limit,
        )?;
        let actual = Digest::of(&bytes);
        if actual != descriptor.digest {
            return Err(ArchiveError::DigestMismatch {
                archive: self.archive.to_path_buf(),
                file: label,
                expected: descriptor.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(bytes)
    }

    /// Follows image indexes from `entry` to the image manifest for `linux/<host
    /// architecture>`; returns its descriptor and content.
    fn image_manifest(&self, entry: &Descriptor) -> Result<(Descriptor, Vec<u8>), ImageError> {
        let mut descriptor = entry.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            match descriptor.media_type.as_str() {
                MEDIA_TYPE_MANIFEST | DOCKER_MEDIA_TYPE_MANIFEST => {
                    let bytes = self.read_blob(&descriptor)?;
                    return Ok((descriptor, bytes));
                }
                MEDIA_TYPE_INDEX | DOCKER_MEDIA_TYPE_MANIFEST_LIST => {
                    let bytes = self.read_blob(&descriptor)?;
                    let label = format!("index {}", descriptor.digest);
                    let index: Index = parse_json(self.archive, &label, &bytes)?;
                    descriptor = self.pick_platform(&index)?;
                }
                other => {
                    return Err(ArchiveError::UnsupportedMediaType {
                        archive: self.archive.to_path_buf(),
                        what: format!("manifest {}", descriptor.digest),
                        media_type: other.to_string(),
                    }
                    .into());
                }
            }
        }
        Err(ArchiveError::UnsupportedMediaType {
            archive: self.archive.to_path_buf(),
            what: format!("an index nested more than {MAX_INDEX_DEPTH} deep"),
            media_type: descriptor.media_type,
        }
        .into())
    }

    fn pick_platform(&self, index: &Index) -> Result<Descriptor, ImageError> {
        let arch = host_architecture();
        let found = index.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        });
        match found {
            Some(d) => Ok(d.clone()),
            None => Err(ArchiveError::NoPlatform {
                archive: self.archive.to_path_buf(),
                wanted: format!("linux/{arch}"),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect(),
            }
            .into()),
        }
    }

    /// Reads the image `entry` names, checking and storing its layers.
    pub(super) fn load(
        &self,
        store: &Store,
        entry: &Descriptor,
        limits: &UnpackLimits,
    ) -> Result<LoadedImage, ImageError> {
        let (descriptor, bytes) = self.image_manifest(entry)?;
        let label = format!("manifest {}", descriptor.digest);
        let manifest: Manifest = parse_json(self.archive, &label, &bytes)?;
        let config_bytes = self.read_blob(&manifest.config)?;
        let label = format!("config {}", manifest.config.digest);
        let config = parse_config(self.archive, &label, &config_bytes, manifest.layers.len())?;
        let mut verbatim = descriptor.media_type == MEDIA_TYPE_MANIFEST
            && manifest.config.media_type == MEDIA_TYPE_CONFIG;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let label = layer.digest.to_string();
            let path = self.blob_path(&layer.digest);
            let stored = store_layer(store, self.archive, &path, &label, Some(layer), limits)?;
            check_diff_id(self.archive, &label, diff_id, &stored.diff_id)?;
            verbatim &= layer.media_type == MEDIA_TYPE_LAYER_GZIP
                && stored.descriptor.digest == layer.digest;
            layers.push(stored.descriptor);
        }
        Ok(LoadedImage {
            config,
            config_bytes,
            layers,
            verbatim_manifest: verbatim.then_some(bytes),
            annotations: manifest.annotations,
        })
    }

    /// Loads a base image: the entry whose ref name is `reference`, or the only one.
    pub(super) fn load_base(
        &self,
        store: &Store,
        reference: Option<&str>,
        limits: &UnpackLimits,
    ) -> Result<BaseImage, ImageError> {
        let index = self.index()?;
        let names = |d: &Descriptor| {
            [
                d.annotations.get(crate::oci::ANNOTATION_REF_NAME),
                d.annotations.get(super::ANNOTATION_CONTAINERD_NAME),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
        };
        let available = || index.manifests.iter().flat_map(names).collect::<Vec<_>>();
        let entry = match (reference, index.manifests.as_slice()) {
            (Some(reference), manifests) => manifests
                .iter()
                .find(|d| names(d).iter().any(|n| n == reference))
                .ok_or_else(|| ArchiveError::UnknownReference {
                    archive: self.archive.to_path_buf(),
                    reference: reference.to_string(),
                    available: available(),
                })?,
            (None, [only]) => only,
            (None, []) => return Err(ArchiveError::NoImage(self.archive.to_path_buf()).into()),
            (None, _) => {
                return Err(ArchiveError::SeveralImages {
                    archive: self.archive.to_path_buf(),
                    available: available(),
                }
                .into());
            }
        };
        Ok(self.load(store, entry, limits)?.into_base())
    }
}

/// The OCI name of this machine's architecture.
pub(super) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}
