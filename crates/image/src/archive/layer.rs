//! One layer from an archive into the store: every entry checked, its diff_id computed;
//! gzip layers are stored as they are, uncompressed ones compressed with the store's
//! pinned compressor.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::ArchiveError;
use super::readers::TeeReader;
use crate::HashingReader;
use crate::oci::{Descriptor, MEDIA_TYPE_LAYER_GZIP};
use crate::store::{BlobWriter, Store};
use crate::{Digest, ImageError, ParallelGzWriter, UnpackLimits, check_layer};

const READ_BUF: usize = 1 << 20;

/// A layer in the store.
#[derive(Debug)]
pub(super) struct StoredLayer {
    /// The blob in the store, `tar+gzip`.
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Other(&'static str),
}

fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Other("zstd")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Other("xz")
    } else if head.starts_with(b"BZh") {
        Compression::Other("bzip2")
    } else {
        Compression::None
    }
}

/// Checks the layer in `file` and stores it.
///
/// `label` names the layer in errors; `expected` is its descriptor when the archive
/// has one (OCI), whose digest and size the file must match.
pub(super) fn store_layer(
    store: &Store,
    archive: &Path,
    file: &Path,
    label: &str,
    expected: Option<&Descriptor>,
    limits: &UnpackLimits,
) -> Result<StoredLayer, ImageError> {
    let opened = File::open(file).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            ImageError::from(ArchiveError::MissingFile {
                archive: archive.to_path_buf(),
                file: label.to_string(),
            })
        } else {
            ImageError::io(file)(e)
        }
    })?;
    let mut input = BufReader::with_capacity(READ_BUF, opened);
    let compression = sniff(input.fill_buf().map_err(ImageError::io(file))?);
    let layer_error = |source| ArchiveError::Layer {
        archive: archive.to_path_buf(),
        layer: label.to_string(),
        source,
    };
    let mismatch = |expected: &Digest, actual: Digest| ArchiveError::DigestMismatch {
        archive: archive.to_path_buf(),
        file: label.to_string(),
        expected: expected.clone(),
        actual,
    };
    match compression {
        Compression::Other(compression) => Err(ArchiveError::UnsupportedCompression {
            archive: archive.to_path_buf(),
            layer: label.to_string(),
            compression,
        }
        .into()),
        Compression::Gzip => {
            // A blob already in the store is checked again but not copied again.
            let copy = match expected {
                Some(d) if store.has_blob(&d.digest) => None,
                _ => Some(store.blob_writer()?),
            };
            let mut raw = HashingReader::new(TeeReader::new(input, MaybeBlob(copy)));
            let diff_id = {
                let mut tar = HashingReader::new(MultiGzDecoder::new(&mut raw));
                check_layer(&mut tar, limits).map_err(layer_error)?;
                tar.finish().0
            };
            raw.drain().map_err(ImageError::io(file))?;
            let (digest, size, tee) = raw.finish();
            if let Some(expected) = expected {
                if expected.digest != digest {
                    return Err(mismatch(&expected.digest, digest).into());
                }
                if expected.size != size {
                    return Err(ArchiveError::SizeMismatch {
                        archive: archive.to_path_buf(),
                        file: label.to_string(),
                        expected: expected.size,
                        actual: size,
                    }
                    .into());
                }
            }
            if let (_, MaybeBlob(Some(blob))) = tee.into_parts() {
                blob.commit()?;
            }
            Ok(StoredLayer {
                descriptor: layer_descriptor(digest, size),
                diff_id,
            })
        }
        Compression::None => {
            let tmp = store.tmp_dir();
            let gz = ParallelGzWriter::new(store.blob_writer()?).map_err(ImageError::io(&tmp))?;
            let mut tee = TeeReader::new(HashingReader::new(input), gz);
            check_layer(&mut tee, limits).map_err(layer_error)?;
            let (raw, gz) = tee.into_parts();
            let (diff_id, _, _) = raw.finish();
            // An uncompressed layer's digest is its diff_id.
            if let Some(expected) = expected
                && expected.digest != diff_id
            {
                return Err(mismatch(&expected.digest, diff_id).into());
            }
            let (digest, size) = gz.finish().map_err(ImageError::io(&tmp))?.commit()?;
            Ok(StoredLayer {
                descriptor: layer_descriptor(digest, size),
                diff_id,
            })
        }
    }
}

fn layer_descriptor(digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: MEDIA_TYPE_LAYER_GZIP.to_string(),
        digest,
        size,
        annotations: Default::default(),
        platform: None,
    }
}

/// A blob being copied into the store, or nothing when the store has it already.
struct MaybeBlob(Option<BlobWriter>);

impl Write for MaybeBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(blob) => blob.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(blob) => blob.flush(),
            None => Ok(()),
        }
    }
}
