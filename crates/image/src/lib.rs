//! The content-addressed image store: an OCI image layout with canonical layers.

mod archive;
mod digest;
mod error;
mod gzip;
mod layer;
pub mod oci;
mod store;
mod unpack;

pub use archive::{
    ArchiveError, BaseImage, ExportFormat, ImportedImage, export, import, load_docker_archive_base,
    load_oci_base,
};
pub use digest::{Digest, HashingReader, HashingWriter, to_hex};
pub use error::ImageError;
pub use gzip::{BLOCK_SIZE, COMPRESSOR, ParallelGzWriter};
pub use layer::{EntryKind, FileSource, LayerEntry, LayerInfo};
pub use store::{
    BlobWriter, GcReport, ImageRef, MIN_DIGEST_PREFIX, ResolvedImage, Store, StoreLock,
    VerifiedReader, validate_name, validate_tag,
};
pub use unpack::{
    EntryProblem, PathProblem, UnpackError, UnpackLimits, UnpackStats, check_layer, unpack_layer,
};
