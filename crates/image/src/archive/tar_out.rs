//! Deterministic tars of store content: entries in path order, mode 0644 (directories
//! 0755), owner 0:0, mtime 0, no user or group names; written to a temporary file
//! beside the destination and renamed into place.

use std::collections::BTreeMap;
use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use tar::{EntryType, Header};
use tempfile::NamedTempFile;

use super::ArchiveError;
use super::readers::ExactReader;
use crate::store::Store;
use crate::{Digest, HashingWriter, ImageError};

/// What goes into one entry of the tar.
#[derive(Debug)]
pub(super) enum Content {
    Dir,
    Bytes(Vec<u8>),
    /// A store blob of this size, verified as it is copied.
    Blob {
        digest: Digest,
        size: u64,
    },
    /// A gzip layer blob, decompressed; its content must hash to `diff_id`.
    Layer {
        blob: Digest,
        diff_id: Digest,
    },
}

/// Writes `entries` (keyed by path; directories end in `/`) as a tar at `dest`,
/// replacing what is there.
pub(super) fn write_tar(
    store: &Store,
    dest: &Path,
    entries: &BTreeMap<String, Content>,
) -> Result<(), ImageError> {
    let parent = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-export-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(parent)
        .map_err(ImageError::io(parent))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));
    for (path, content) in entries {
        let written = match content {
            Content::Dir => append(&mut tar, path, EntryType::Directory, 0, io::empty()),
            Content::Bytes(bytes) => append(
                &mut tar,
                path,
                EntryType::Regular,
                bytes.len() as u64,
                &bytes[..],
            ),
            Content::Blob { digest, size } => {
                let blob = store.open_blob(digest)?;
                append(
                    &mut tar,
                    path,
                    EntryType::Regular,
                    *size,
                    ExactReader::new(blob, *size),
                )
            }
            Content::Layer { blob, diff_id } => {
                let (mut layer, size) = decompress(store, blob, diff_id)?;
                let file = layer.as_file_mut();
                file.seek(SeekFrom::Start(0))
                    .map_err(ImageError::io(layer.path()))?;
                let reader = ExactReader::new(layer.as_file(), size);
                append(&mut tar, path, EntryType::Regular, size, reader)
            }
        };
        written.map_err(ImageError::io(dest))?;
    }
    let tmp = tar
        .into_inner()
        .and_then(|buffered| {
            buffered
                .into_inner()
                .map_err(io::IntoInnerError::into_error)
        })
        .map_err(ImageError::io(dest))?;
    tmp.as_file().sync_all().map_err(ImageError::io(dest))?;
    tmp.persist(dest).map_err(|e| ImageError::Io {
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(parent)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    kind: EntryType,
    size: u64,
    data: impl io::Read,
) -> io::Result<()> {
    let mut header = Header::new_ustar();
    header.set_path(path)?;
    header.set_entry_type(kind);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    tar.append(&header, data)
}

/// Decompresses a layer blob into a temporary file, checking the blob's digest and the
/// content's diff_id; returns the file and its size.
fn decompress(
    store: &Store,
    blob: &Digest,
    diff_id: &Digest,
) -> Result<(NamedTempFile, u64), ImageError> {
    let tmp_dir = store.tmp_dir();
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-layer-")
        .tempfile_in(&tmp_dir)
        .map_err(ImageError::io(&tmp_dir))?;
    let blob_path = store.blob_path(blob);
    let mut compressed = store.open_blob(blob)?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp));
    io::copy(&mut MultiGzDecoder::new(&mut compressed), &mut out)
        .map_err(ImageError::io(&blob_path))?;
    // Read to the end of the blob: that is where its digest is checked.
    io::copy(&mut compressed, &mut io::sink()).map_err(ImageError::io(&blob_path))?;
    let (actual, size, buffered) = out.finish();
    let tmp = buffered
        .into_inner()
        .map_err(|e| ImageError::io(&tmp_dir)(e.into_error()))?;
    if actual != *diff_id {
        return Err(ArchiveError::DiffIdMismatch {
            archive: store.layout_dir().to_path_buf(),
            layer: blob.to_string(),
            expected: diff_id.clone(),
            actual,
        }
        .into());
    }
    Ok((tmp, size))
}

/// The directory `path` is in (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, making renames into it durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io(dir))
}
