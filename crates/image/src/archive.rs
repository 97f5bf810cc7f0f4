//! Import and export of images as OCI layouts, oci-archives and docker-archives.
//!
//! Export writes one image:
//! - `oci-dir`: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) whose
//!   `index.json` holds a single manifest descriptor, annotated with
//!   `org.opencontainers.image.ref.name` = `TAG` (the OCI convention, so
//!   `skopeo inspect oci:DIR:TAG` and `umoci unpack --image DIR:TAG` work, as does
//!   `oci:DIR` without a reference) and `io.containerd.image.name` = `NAME:TAG` (as
//!   `docker save` and `ctr export` write it, so the name survives a round trip).
//!   Blobs are hard links into the store when it is on the same filesystem, else
//!   copies; either way they are verified against their digests;
//! - `oci-archive`: a tar of that layout;
//! - `docker-archive`: what `docker load` reads: `manifest.json`, the config as
//!   `<hex>.json`, each layer uncompressed as `<diff_id hex>/layer.tar` (its diff_id
//!   verified), and a legacy `repositories` file.
//!
//! Tars are deterministic: entries sorted by path, mode 0644 (directories 0755), owner
//! 0:0, mtime 0, no user or group names.
//!
//! Import takes a directory or a tar (plain or gzip) and recognizes it by content: an
//! `oci-layout` file makes it an OCI layout, a `manifest.json` a docker-archive. Tars
//! are first extracted to the store's scratch space, keeping only regular files and
//! directories (links inside the archive become hard links to the file they name;
//! anything else is refused). Every layer is checked with [`crate::check_layer`]
//! before its image is accepted, so a malicious image is refused at import, with the
//! offending entry named, and nothing is tagged. Gzip layers are stored as they are
//! (their digests kept); uncompressed layers (docker-archive, OCI `tar` layers) are
//! compressed with [`crate::COMPRESSOR`]. Each layer's diff_id is checked against the
//! config. Image indexes are followed to the `linux/<host architecture>` image.

mod docker;
mod export;
mod extract;
mod image;
mod import;
mod layer;
mod layout;
mod names;
mod readers;
mod tar_out;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::oci::{Descriptor, ImageConfig};
use crate::{Digest, UnpackError};

pub use export::export;
pub use import::{import, load_docker_archive_base, load_oci_base};

/// The annotation containerd and `docker save` give an image's full name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// How [`export`] writes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// An OCI image layout directory.
    OciDir,
    /// A tar of an OCI image layout.
    OciArchive,
    /// A tar in the format of `docker save`.
    DockerArchive,
}

impl FromStr for ExportFormat {
    type Err = ArchiveError;

    fn from_str(s: &str) -> Result<Self, ArchiveError> {
        match s {
            "oci-dir" => Ok(ExportFormat::OciDir),
            "oci-archive" => Ok(ExportFormat::OciArchive),
            "docker-archive" => Ok(ExportFormat::DockerArchive),
            other => Err(ArchiveError::UnknownFormat(other.to_string())),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportFormat::OciDir => "oci-dir",
            ExportFormat::OciArchive => "oci-archive",
            ExportFormat::DockerArchive => "docker-archive",
        })
    }
}

/// An image [`import`] tagged in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    pub name: String,
    pub tag: String,
    /// The manifest in the store.
    pub manifest: Descriptor,
}

/// A base image read from a layout or archive: its layers are in the store (gzip),
/// checked with [`crate::check_layer`] and matching the config's diff_ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("unknown export format `{0}`: use oci-dir, oci-archive or docker-archive")]
    UnknownFormat(String),
    #[error(
        "{0}: not an OCI layout, oci-archive or docker-archive (it has no oci-layout or manifest.json)"
    )]
    NotAnArchive(PathBuf),
    #[error("{archive}: not a readable tar archive: {source}")]
    BadTar {
        archive: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{archive}: {file} is missing")]
    MissingFile { archive: PathBuf, file: String },
    #[error("{archive}: {file}: malformed JSON: {source}")]
    Json {
        archive: PathBuf,
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{archive}: {file} is larger than {limit} bytes")]
    TooLarge {
        archive: PathBuf,
        file: String,
        limit: u64,
    },
    #[error("{archive}: archive entry {entry:?}: {problem}")]
    Entry {
        archive: PathBuf,
        entry: String,
        problem: String,
    },
    #[error("{archive}: layer {layer}: {source}")]
    Layer {
        archive: PathBuf,
        layer: String,
        #[source]
        source: UnpackError,
    },
    #[error("{archive}: layer {layer} is compressed with {compression}, which is not supported")]
    UnsupportedCompression {
        archive: PathBuf,
        layer: String,
        compression: &'static str,
    },
    #[error("{archive}: {file} hashes to {actual}, expected {expected}")]
    DigestMismatch {
        archive: PathBuf,
        file: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{archive}: {file} is {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        archive: PathBuf,
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("{archive}: layer {layer} has diff_id {actual}, but the config lists {expected}")]
    DiffIdMismatch {
        archive: PathBuf,
        layer: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{archive}: the image has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount {
        archive: PathBuf,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{archive}: unsupported media type `{media_type}` for {what}")]
    UnsupportedMediaType {
        archive: PathBuf,
        what: String,
        media_type: String,
    },
    #[error("{archive}: no image for {wanted}; the index has {}", available.join(", "))]
    NoPlatform {
        archive: PathBuf,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{0}: holds no image")]
    NoImage(PathBuf),
    #[error("{archive}: no image named `{reference}`; it has {}", list(available))]
    UnknownReference {
        archive: PathBuf,
        reference: String,
        available: Vec<String>,
    },
    #[error("{archive}: holds several images, choose one of {}", list(available))]
    SeveralImages {
        archive: PathBuf,
        available: Vec<String>,
    },
    #[error("{archive}: two images would be tagged {reference}")]
    DuplicateTag { archive: PathBuf, reference: String },
    #[error("{0}: already exists and is not an empty directory")]
    DestinationExists(PathBuf),
    #[error("{reference}: cannot export a manifest of type `{media_type}`")]
    NotAnImage {
        reference: String,
        media_type: String,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none (no org.opencontainers.image.ref.name annotations)".to_string()
    } else {
        items.join(", ")
    }
}
