//! The store: an OCI image layout under `home/store`, unpacked layers and scratch space.
//!
//! ```text
//! home/
//!   store/            an OCI image layout (skopeo's `oci:home/store:NAME:TAG`)
//!     oci-layout      {"imageLayoutVersion":"1.0.0"}
//!     index.json      one entry per NAME:TAG (annotation org.opencontainers.image.ref.name)
//!     pins/OWNER.json manifests kept by gc although untagged (what the daemon runs)
//!     blobs/sha256/   content-addressed blobs, each written atomically
//!     .lock           flock: held exclusively by every writer of index.json and by gc
//!     .users.lock     flock: held shared by every open Store, exclusively by gc
//!   layers/<hex>      unpacked layers, by diff_id
//!   tmp/              temporary files (same filesystem, so they rename into place)
//! ```
//!
//! Blobs are only ever created by writing a temporary file in `tmp/`, fsyncing it and
//! renaming it to its digest, so a blob file is either absent or complete. Readers
//! verify digests ([`Store::read_blob`], [`Store::open_blob`]).
//!
//! Garbage collection deletes what no index entry or pin reaches. Blobs of an image being
//! built are not reachable until it is tagged, so gc only runs when no other [`Store`]
//! is open on the same home (any process): each `Store` holds a shared flock on
//! `.users.lock` for its whole life and gc needs it exclusively; when it cannot have
//! it, gc is deferred (nothing is deleted) and a later gc collects the garbage.

mod blob;
mod fsutil;
mod gc;
mod image;
mod index;
mod lock;
mod pins;
mod unpacked;

use std::fs;
use std::path::{Path, PathBuf};

use crate::oci::{Index, canonical_json};
use crate::{Digest, ImageError};

pub use blob::{BlobWriter, VerifiedReader};
pub use gc::GcReport;
pub use index::{ImageRef, MIN_DIGEST_PREFIX, ResolvedImage, validate_name, validate_tag};
pub use lock::StoreLock;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An image store rooted at a home directory.
#[derive(Debug)]
pub struct Store {
    home: PathBuf,
    layout: PathBuf,
    blobs: PathBuf,
    users: lock::UsersLock,
}

impl Store {
    /// Opens the store at `home`, creating the layout if it is missing.
    ///
    /// The store counts as in use (gc is deferred elsewhere) until it is dropped;
    /// opening waits while another process garbage-collects.
    pub fn open(home: &Path) -> Result<Store, ImageError> {
        let layout = home.join("store");
        let blobs = layout.join("blobs").join("sha256");
        for dir in [&blobs, &home.join("layers"), &home.join("tmp")] {
            fs::create_dir_all(dir).map_err(ImageError::io(dir))?;
        }
        let tmp = home.join("tmp");
        fsutil::create_if_missing(&tmp, &layout.join("oci-layout"), OCI_LAYOUT)?;
        let empty = canonical_json(&Index::new(Vec::new()));
        fsutil::create_if_missing(&tmp, &layout.join("index.json"), &empty)?;
        let users = lock::UsersLock::acquire(&layout.join(".users.lock"))?;
        Ok(Store {
            home: home.to_path_buf(),
            layout,
            blobs,
            users,
        })
    }

    /// The home directory the store was opened at.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The OCI image layout directory, `home/store`.
    pub fn layout_dir(&self) -> &Path {
        &self.layout
    }

    /// Scratch space on the store's filesystem, `home/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.home.join("tmp")
    }

    /// Where the unpacked layer with this diff_id lives, `home/layers/<hex>`.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.home.join("layers").join(diff_id.hex())
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Whether the blob is in the store (its content is not checked).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn index_path(&self) -> PathBuf {
        self.layout.join("index.json")
    }
}
