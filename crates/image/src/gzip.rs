//! One pinned, deterministic, parallel gzip: the only compressor layers are written with.
//!
//! The input is cut into fixed [`BLOCK_SIZE`] blocks. Each block is compressed on its
//! own (no shared dictionary) as raw deflate at level 6 and ended with a sync flush, so
//! every block's output is byte-aligned and non-final and the blocks can simply be
//! concatenated. The stream closes with an empty final block, and the whole is wrapped
//! in one gzip member with a fixed header (mtime 0, no name, OS "unknown"). The output
//! therefore depends only on the input bytes and [`COMPRESSOR`], never on the number of
//! threads, their timing, or how the input was split into `write` calls.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Names the compressor; part of every layer digest, so any change here is deliberate.
pub const COMPRESSOR: &str = "gzip: flate2 1.1.11 + zlib-rs 0.6.8, level 6, 1 MiB blocks";

/// The uncompressed size of every block but the last.
pub const BLOCK_SIZE: usize = 1 << 20;

const LEVEL: u32 = 6;

/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final fixed-Huffman block: BFINAL=1, BTYPE=01, end-of-block, zero padding.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Blocks queued or being compressed per worker before the writer waits for output.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// A block of input on its way to a worker.
struct Job {
    input: Vec<u8>,
}

/// A compressed block on its way back, with the input buffer for reuse.
struct Done {
    input: Vec<u8>,
    output: io::Result<Vec<u8>>,
    crc: crc32fast::Hasher,
}

struct Worker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// A gzip writer compressing [`BLOCK_SIZE`] blocks on a pool of worker threads.
///
/// Blocks are handed to the workers round-robin and their output is written to the
/// inner writer in input order, from the calling thread, during `write` and `finish`.
/// At most a few blocks per worker are in flight, so memory stays bounded.
///
/// `flush` writes out the blocks that are complete but never cuts a partial block
/// (that would make the output depend on when it was called). Dropping the writer
/// without [`ParallelGzWriter::finish`] discards the stream.
pub struct ParallelGzWriter<W: Write> {
    inner: W,
    pool: Pool,
    /// The block being filled.
    block: Vec<u8>,
    /// Input buffers returned by the workers.
    spare: Vec<Vec<u8>>,
    /// Blocks sent to workers so far, and blocks whose output was written.
    sent: u64,
    written: u64,
    crc: crc32fast::Hasher,
    /// Input bytes taken so far.
    total_in: u64,
    header_written: bool,
}

/// The worker threads; dropping it closes their job channels and joins them.
struct Pool {
    workers: Vec<Worker>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            worker.jobs = None;
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                // A worker that panicked has already failed the stream through its channel.
                let _ = thread.join();
            }
        }
    }
}

impl<W: Write> std::fmt::Debug for ParallelGzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzWriter")
            .field("workers", &self.pool.workers.len())
            .field("sent", &self.sent)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ParallelGzWriter<W> {
    /// A writer with one worker per available CPU.
    pub fn new(inner: W) -> io::Result<Self> {
        let threads = thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(inner, threads)
    }

    /// A writer with `threads` workers (at least one); the output does not depend on it.
    pub fn with_threads(inner: W, threads: usize) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(threads.max(1));
        for i in 0..threads.max(1) {
            let (job_tx, job_rx) = mpsc::channel::<Job>();
            let (done_tx, done_rx) = mpsc::channel::<Done>();
            let thread = thread::Builder::new()
                .name(format!("kiln-gzip-{i}"))
                .spawn(move || work(job_rx, done_tx))?;
            workers.push(Worker {
                jobs: Some(job_tx),
                done: done_rx,
                thread: Some(thread),
            });
        }
        Ok(ParallelGzWriter {
            inner,
            pool: Pool { workers },
            block: Vec::with_capacity(BLOCK_SIZE),
            spare: Vec::new(),
            sent: 0,
            written: 0,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            header_written: false,
        })
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() {
            self.send_block()?;
        }
        self.drain_all()?;
        self.write_header()?;
        self.inner.write_all(&FINAL_BLOCK)?;
        let ParallelGzWriter {
            mut inner,
            pool,
            crc,
            total_in,
            ..
        } = self;
        drop(pool);
        inner.write_all(&crc.finalize().to_le_bytes())?;
        // ISIZE is the input length modulo 2^32 (RFC 1952): truncation is intended.
        inner.write_all(&(total_in as u32).to_le_bytes())?;
        inner.flush()?;
        Ok(inner)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        usize::try_from(self.sent - self.written).expect("in-flight blocks are bounded")
    }

    fn worker_of(&self, block: u64) -> &Worker {
        let workers = &self.pool.workers;
        let i = usize::try_from(block % workers.len() as u64)
            .expect("worker index is below the worker count");
        &workers[i]
    }

    /// Hands the current block to the next worker, waiting for output if too many are out.
    fn send_block(&mut self) -> io::Result<()> {
        while self.in_flight() >= self.pool.workers.len() * IN_FLIGHT_PER_WORKER {
            self.write_next(true)?;
        }
        let fresh = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_SIZE));
        let input = std::mem::replace(&mut self.block, fresh);
        let jobs = self.worker_of(self.sent).jobs.as_ref();
        jobs.and_then(|tx| tx.send(Job { input }).ok())
            .ok_or_else(worker_died)?;
        self.sent += 1;
        // Write whatever is already done, without waiting.
        while self.written < self.sent && self.write_next(false)? {}
        Ok(())
    }

    /// Writes the next block's output; returns false if `wait` is false and it is not ready.
    fn write_next(&mut self, wait: bool) -> io::Result<bool> {
        let rx = &self.worker_of(self.written).done;
        let done = if wait {
            rx.recv().map_err(|_| worker_died())?
        } else {
            match rx.try_recv() {
                Ok(done) => done,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(worker_died()),
            }
        };
        let output = done.output?;
        self.write_header()?;
        self.inner.write_all(&output)?;
        self.crc.combine(&done.crc);
        self.written += 1;
        let mut input = done.input;
        input.clear();
        self.spare.push(input);
        Ok(true)
    }

    fn drain_all(&mut self) -> io::Result<()> {
        while self.written < self.sent {
            self.write_next(true)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        self.total_in += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.send_block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain_all()?;
        self.inner.flush()
    }
}

fn worker_died() -> io::Error {
    io::Error::other("a gzip worker thread died")
}

/// A worker: compresses each block it is sent, until its job channel closes.
fn work(jobs: Receiver<Job>, done: Sender<Done>) {
    let mut deflate = Compress::new(Compression::new(LEVEL), false);
    for Job { input } in jobs {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&input);
        let output = compress_block(&mut deflate, &input);
        if done.send(Done { input, output, crc }).is_err() {
            return;
        }
    }
}

/// Compresses one block as raw deflate ending in a sync flush, from a fresh state.
pub(crate) fn compress_block(deflate: &mut Compress, input: &[u8]) -> io::Result<Vec<u8>> {
    deflate.reset();
    // Stored blocks bound the output: 5 bytes per 16 KiB plus the flush marker; this
    // leaves ample room so the loop below normally runs once.
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 1024);
    loop {
        let consumed = usize::try_from(deflate.total_in()).expect("a block fits in memory");
        let status = deflate
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let all_in = deflate.total_in() == input.len() as u64;
        // The flush is complete once deflate returns with output space left over.
        if all_in && out.len() < out.capacity() {
            return Ok(out);
        }
        if status == Status::StreamEnd {
            return Err(io::Error::other("deflate ended the stream early"));
        }
        out.reserve(64 * 1024);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// Deterministic pseudo-random bytes (xorshift), mixed with compressible runs.
    pub(crate) fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(7) {
                let run = (x >> 8) as usize % 300;
                out.extend(std::iter::repeat_n(b'a', run.min(len - out.len())));
            } else {
                let bytes = x.to_le_bytes();
                let n = bytes.len().min(len - out.len());
                out.extend_from_slice(&bytes[..n]);
            }
        }
        out
    }

    fn gz(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut w = ParallelGzWriter::with_threads(Vec::new(), threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip_flate2(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gunzip_system(data: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the system `gzip` must be installed for this test");
        let mut stdin = child.stdin.take().unwrap();
        let input = data.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "gzip -dc failed: {:?}", out.status);
        out.stdout
    }

    #[test]
    fn round_trips_through_flate2_and_system_gzip() {
        let sizes = [
            0,
            1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            BLOCK_SIZE * 11 / 2, // 5.5 MiB
        ];
        for (i, &size) in sizes.iter().enumerate() {
            let data = sample(size, 42 + i as u64);
            let out = gz(&data, 2, 64 * 1024 + 3);
            assert_eq!(&out[..10], &HEADER);
            assert!(
                gunzip_flate2(&out) == data,
                "flate2 round trip, size {size}"
            );
            assert!(
                gunzip_system(&out) == data,
                "gzip -dc round trip, size {size}"
            );
        }
    }

    #[test]
    fn output_is_independent_of_threads_and_write_sizes() {
        let data = sample(BLOCK_SIZE * 11 / 2, 7);
        let one = gz(&data, 1, data.len());
        let four = gz(&data, 4, 4096);
        let odd = gz(&data, 3, 1_000_003);
        assert!(one == four, "1 vs 4 threads");
        assert!(one == odd, "1 vs 3 threads");
    }

    #[test]
    fn empty_input_is_a_fixed_byte_string() {
        let out = gz(b"", 2, 1);
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&FINAL_BLOCK);
        expected.extend_from_slice(&[0; 8]);
        assert_eq!(out, expected);
    }

    #[test]
    fn trailer_carries_crc_and_size() {
        let data = sample(BLOCK_SIZE * 2 + 17, 3);
        let out = gz(&data, 2, 8192);
        let n = out.len();
        let crc = u32::from_le_bytes(out[n - 8..n - 4].try_into().unwrap());
        let size = u32::from_le_bytes(out[n - 4..].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&data));
        assert_eq!(size as usize, data.len());
    }

    #[test]
    fn flush_does_not_change_the_output() {
        let data = sample(BLOCK_SIZE + 5000, 9);
        let plain = gz(&data, 2, data.len());
        let mut w = ParallelGzWriter::with_threads(Vec::new(), 2).unwrap();
        for piece in data.chunks(777) {
            w.write_all(piece).unwrap();
            w.flush().unwrap();
        }
        assert!(w.finish().unwrap() == plain);
    }
}
