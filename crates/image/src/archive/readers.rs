//! Read adapters: copying what passes to a writer, insisting on a length.

use std::io::{self, Read, Write};

/// Writes every byte read through it to `out`.
#[derive(Debug)]
pub(super) struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    pub(super) fn new(inner: R, out: W) -> Self {
        TeeReader { inner, out }
    }

    pub(super) fn into_parts(self) -> (R, W) {
        (self.inner, self.out)
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Yields exactly `len` bytes of `inner` and fails if it has more or fewer. At the end
/// it reads `inner` to its EOF, so that a verifying reader gets to check its digest.
#[derive(Debug)]
pub(super) struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> ExactReader<R> {
    pub(super) fn new(inner: R, len: u64) -> Self {
        ExactReader {
            inner,
            remaining: len,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file is longer than its recorded size",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than its recorded size",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
