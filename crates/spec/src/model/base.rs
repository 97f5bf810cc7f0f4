//! What an image starts from.

use std::path::PathBuf;

/// The base of an image (`from`). Paths are already resolved against the
/// build context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Base {
    /// An empty filesystem (`from = "scratch"`, the default).
    Scratch,
    /// An OCI image layout directory, optionally choosing one image of its
    /// index by reference (`oci:PATH[:REF]`).
    Oci {
        path: PathBuf,
        reference: Option<String>,
    },
    /// A `docker save` tarball (`docker-archive:PATH`).
    DockerArchive { path: PathBuf },
    /// A root filesystem: a directory, `.tar` or `.tar.gz` (`rootfs:PATH`).
    Rootfs { path: PathBuf },
}
