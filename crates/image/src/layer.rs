//! Canonical layers: a set of entries in, one reproducible `tar+gzip` blob out.
//!
//! The tar depends only on the entries' content and metadata, never on their order or
//! on the machine:
//! - entries are sorted by path components (a directory right before its children:
//!   `a`, `a/b`, `a.txt`), missing parent directories are added (0755, root, mtime =
//!   `SOURCE_DATE_EPOCH`), duplicate paths are refused;
//! - every mtime is clamped to `SOURCE_DATE_EPOCH`;
//! - of a group of hard links, the first path in that order carries the content and
//!   the others link to it, whichever path the caller called the file;
//! - headers are GNU tar headers (GNU long-name `././@LongLink` entries for names and
//!   link targets over 100 bytes), with numeric owners, empty user and group names,
//!   device numbers 0, no atime/ctime and no PAX records; directories end in `/`;
//! - a whiteout of `dir/NAME` is an empty regular file `dir/.wh.NAME`, and an opaque
//!   directory is followed by an empty `dir/.wh..wh..opq`; both have mode 0, owner
//!   0:0 and mtime `SOURCE_DATE_EPOCH` (as containerd writes them);
//! - the tar ends with two zero blocks, and is compressed with [`crate::COMPRESSOR`].
//!
//! Paths whose last component starts with `.wh.` are refused: they would read as
//! whiteouts.

mod canonical;
mod writer;

use std::path::PathBuf;

use crate::store::Store;
use crate::{Digest, HashingWriter, ImageError, ParallelGzWriter};

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Relative to the layer root: `/`-separated, no leading `/`, no `.`, `..` or empty
    /// components.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits, with setuid, setgid and sticky (at most 0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch; clamped to `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory; an opaque one hides what lower layers have in it.
    Dir {
        opaque: bool,
    },
    File {
        source: FileSource,
    },
    Symlink {
        target: String,
    },
    /// A hard link to another path of the same layer.
    Hardlink {
        target: String,
    },
    /// Deletes the path from the lower layers.
    Whiteout,
}

/// Where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file read when the layer is written; it must still be `size` bytes long.
    Path {
        path: PathBuf,
        size: u64,
    },
    Bytes(Vec<u8>),
}

/// A layer blob written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the compressed blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

impl Store {
    /// Writes `entries` as a canonical layer blob (see the module docs).
    ///
    /// The tar is produced and hashed on the calling thread while the compression runs
    /// on a pool of worker threads; the blob is written to a temporary file, fsynced
    /// and renamed into place.
    pub fn write_layer(
        &self,
        entries: Vec<LayerEntry>,
        source_date_epoch: u64,
    ) -> Result<LayerInfo, ImageError> {
        let entries = canonical::canonicalize(entries, source_date_epoch)?;
        let tmp = self.tmp_dir();
        let blob = self.blob_writer()?;
        let gz = ParallelGzWriter::new(blob).map_err(ImageError::io(&tmp))?;
        let mut tar = writer::TarWriter::new(HashingWriter::new(gz), &tmp, source_date_epoch);
        for entry in &entries {
            tar.append(entry)?;
        }
        let (diff_id, _, gz) = tar.finish()?.finish();
        let blob = gz.finish().map_err(ImageError::io(&tmp))?;
        let (digest, size) = blob.commit()?;
        Ok(LayerInfo {
            digest,
            diff_id,
            size,
        })
    }
}
