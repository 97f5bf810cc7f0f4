//! Blobs: atomic writes, verified reads.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::{Store, fsutil};
use crate::oci::canonical_json;
use crate::{Digest, HashingWriter, ImageError};

/// Buffer size for streaming blob I/O.
pub(crate) const IO_BUF: usize = 1 << 20;

impl Store {
    /// Stores `bytes` as a blob and returns its digest; an existing blob is kept.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            fsutil::write_atomic(&self.tmp_dir(), &self.blob_path(&digest), bytes, false)?;
        }
        Ok(digest)
    }

    /// Serializes `value` as canonical JSON and stores it; returns its digest and size.
    pub fn put_json<T: Serialize>(&self, value: &T) -> Result<(Digest, u64), ImageError> {
        let bytes = canonical_json(value);
        let digest = self.put_blob(&bytes)?;
        Ok((digest, bytes.len() as u64))
    }

    /// A writer for a blob whose digest is known only at the end; see [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter, ImageError> {
        let tmp = fsutil::temp_file(&self.tmp_dir())?;
        Ok(BlobWriter {
            out: HashingWriter::new(BufWriter::with_capacity(IO_BUF, tmp)),
            blobs: self.blobs.clone(),
        })
    }

    /// Copies the file `src` into the store, checking that its digest is `expected`;
    /// returns its size. On a mismatch nothing is stored. An existing blob is kept
    /// (and `src` not read).
    pub fn import_blob(&self, src: &Path, expected: &Digest) -> Result<u64, ImageError> {
        let existing = self.blob_path(expected);
        if let Ok(meta) = existing.metadata()
            && meta.is_file()
        {
            return Ok(meta.len());
        }
        let mut file = File::open(src).map_err(ImageError::io(src))?;
        let mut writer = self.blob_writer()?;
        let mut buf = vec![0; IO_BUF];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ImageError::io(src)(e)),
            };
            writer.write_all(&buf[..n]).map_err(ImageError::io(src))?;
        }
        let (actual, size, tmp) = writer.finish_temp()?;
        if actual != *expected {
            return Err(ImageError::DigestMismatch {
                path: src.to_path_buf(),
                expected: expected.clone(),
                actual,
            });
        }
        fsutil::persist(tmp, &existing, false)?;
        Ok(size)
    }

    /// Reads a whole blob, verifying its digest: corrupt content is never returned.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|e| self.open_error(digest, &path, e))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(ImageError::Corrupt {
                digest: digest.clone(),
                path,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming; the reader fails at the end if the digest is wrong.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifiedReader, ImageError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| self.open_error(digest, &path, e))?;
        Ok(VerifiedReader {
            inner: BufReader::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            expected: digest.clone(),
            path,
            verdict: None,
        })
    }

    fn open_error(&self, digest: &Digest, path: &Path, e: io::Error) -> ImageError {
        if e.kind() == io::ErrorKind::NotFound {
            ImageError::MissingBlob {
                digest: digest.clone(),
                path: path.to_path_buf(),
            }
        } else {
            ImageError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    }
}

/// Writes a new blob to a temporary file, hashing as it goes.
#[derive(Debug)]
pub struct BlobWriter {
    out: HashingWriter<BufWriter<NamedTempFile>>,
    blobs: PathBuf,
}

impl BlobWriter {
    /// Fsyncs the blob and renames it into place; returns its digest and size.
    /// Dropping the writer instead discards it.
    pub fn commit(self) -> Result<(Digest, u64), ImageError> {
        let blobs = self.blobs.clone();
        let (digest, size, tmp) = self.finish_temp()?;
        fsutil::persist(tmp, &blobs.join(digest.hex()), false)?;
        Ok((digest, size))
    }

    /// Flushes and fsyncs the temporary file without renaming it.
    fn finish_temp(self) -> Result<(Digest, u64, NamedTempFile), ImageError> {
        let (digest, size, buffered) = self.out.finish();
        let tmp = buffered.into_inner().map_err(|e| {
            let (source, buffered) = e.into_parts();
            ImageError::Io {
                path: buffered.get_ref().path().to_path_buf(),
                source,
            }
        })?;
        tmp.as_file()
            .sync_all()
            .map_err(ImageError::io(tmp.path()))?;
        Ok((digest, size, tmp))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a blob and checks its digest at the end of the stream: the read that reaches
/// EOF fails with [`io::ErrorKind::InvalidData`] if the content does not match.
#[derive(Debug)]
pub struct VerifiedReader {
    inner: BufReader<File>,
    hasher: Sha256,
    expected: Digest,
    path: PathBuf,
    /// Set at EOF: `Ok` if the digest matched, else the error message.
    verdict: Option<Result<(), String>>,
}

impl VerifiedReader {
    /// The digest the blob is expected to have.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// The blob's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn at_eof(&mut self) -> io::Result<usize> {
        let verdict = self.verdict.get_or_insert_with(|| {
            let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
            if actual == self.expected {
                Ok(())
            } else {
                Err(format!(
                    "blob {} is corrupt: {} hashes to {actual}",
                    self.expected,
                    self.path.display()
                ))
            }
        });
        match verdict {
            Ok(()) => Ok(0),
            Err(msg) => Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone())),
        }
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.verdict.is_some() {
            return self.at_eof();
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return self.at_eof();
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
