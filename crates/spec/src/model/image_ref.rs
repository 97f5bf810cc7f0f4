//! Which image a service runs.

use std::fmt;

/// An image of the store: `web`, `web:TAG` or `web@sha256:HEX`.
///
/// Names are `[a-z0-9._-]+`, tags 1-128 of `[A-Za-z0-9._-]`, digests
/// `sha256:` and 64 lowercase hex digits. Displays as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ImageRef {
    /// The latest build of an image.
    Name(String),
    Tagged {
        name: String,
        tag: String,
    },
    /// `digest` includes its `sha256:` prefix.
    Digest {
        name: String,
        digest: String,
    },
}

impl ImageRef {
    /// The image name, without tag or digest.
    pub fn name(&self) -> &str {
        match self {
            ImageRef::Name(name)
            | ImageRef::Tagged { name, .. }
            | ImageRef::Digest { name, .. } => name,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Name(name) => f.write_str(name),
            ImageRef::Tagged { name, tag } => write!(f, "{name}:{tag}"),
            ImageRef::Digest { name, digest } => write!(f, "{name}@{digest}"),
        }
    }
}
