//! Errors of the image store and its formats.

use std::io;
use std::path::PathBuf;

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("malformed digest `{0}`: expected sha256:<64 lowercase hex>")]
    BadDigest(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is corrupt: {path} hashes to {actual}")]
    Corrupt {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
    },
    #[error("blob {digest} is not in the store (looked for {path})")]
    MissingBlob { digest: Digest, path: PathBuf },
    #[error("{path}: content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: malformed JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image name `{0}`: use lowercase letters, digits, '.', '_' and '-'")]
    BadName(String),
    #[error("invalid tag `{0}`: use up to 128 letters, digits, '.', '_' and '-'")]
    BadTag(String),
    #[error("unknown image `{reference}`: {hint}")]
    UnknownImage { reference: String, hint: String },
    #[error("ambiguous image reference `{reference}`: it matches {}", candidates.join(", "))]
    AmbiguousImage {
        reference: String,
        candidates: Vec<String>,
    },
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("invalid layer path `{path}`: {reason}")]
    BadLayerPath { path: String, reason: &'static str },
    #[error("layer path `{0}` appears more than once")]
    DuplicatePath(String),
    #[error("layer entry `{path}`: {reason}")]
    BadLayerEntry { path: String, reason: String },
    #[error("{path}: the file changed while it was archived (expected {expected} bytes, {found})")]
    InputChanged {
        path: PathBuf,
        expected: u64,
        found: String,
    },
}

impl ImageError {
    /// An I/O error about `path`, for `map_err`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { path, source }
    }
}
