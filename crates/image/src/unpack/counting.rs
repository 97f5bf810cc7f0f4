//! A reader that counts the bytes it passes on and fails once they pass a limit.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The shared byte count of a [`CountingReader`], readable while the reader is owned
/// by the tar parser.
#[derive(Debug, Clone)]
pub(super) struct Counter {
    read: Rc<Cell<u64>>,
    limit: u64,
}

impl Counter {
    pub(super) fn get(&self) -> u64 {
        self.read.get()
    }

    pub(super) fn exceeded(&self) -> bool {
        self.read.get() > self.limit
    }
}

#[derive(Debug)]
pub(super) struct CountingReader<R> {
    inner: R,
    counter: Counter,
}

impl<R: Read> CountingReader<R> {
    pub(super) fn new(inner: R, limit: u64) -> Self {
        CountingReader {
            inner,
            counter: Counter {
                read: Rc::new(Cell::new(0)),
                limit,
            },
        }
    }

    pub(super) fn counter(&self) -> Counter {
        self.counter.clone()
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.counter.exceeded() {
            return Err(io::Error::other("layer exceeds the unpack limit"));
        }
        // Never read far past the limit: one byte over is enough to know.
        let room = (self.counter.limit - self.counter.get()).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.counter.read.set(self.counter.get() + n as u64);
        Ok(n)
    }
}
