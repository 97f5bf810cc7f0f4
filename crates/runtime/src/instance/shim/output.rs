//! The shim's log readers: one thread per stream, lines to the shared [`LogWriter`].

use std::fs::File;
use std::io::BufReader;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::pipe::PipeFlags;

use super::ShimConfig;
use crate::LogLine;
use crate::logs::{LogWriter, MAX_LINE, for_each_line, now_rfc3339};

/// The write ends of the pipes, for runc (and so the container) as stdout and stderr.
/// Still close-on-exec: `Command` duplicates them onto fds 1 and 2, which are not.
#[derive(Debug)]
pub(super) struct RuncStdio {
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
}

/// The running readers.
#[derive(Debug)]
pub(super) struct Streams {
    readers: Vec<JoinHandle<()>>,
}

impl Streams {
    /// Creates the pipes and starts a reader on each read end.
    pub(super) fn spawn(config: &ShimConfig) -> Result<(RuncStdio, Streams), String> {
        let pipe = || {
            rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(|e| format!("create a pipe: {e}"))
        };
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let writer = Arc::new(Mutex::new(LogWriter::new(
            &config.log.path,
            config.log.max_bytes,
            config.log.keep,
        )));
        let mut readers = Vec::new();
        for (fd, stream) in [(stdout_read, "stdout"), (stderr_read, "stderr")] {
            let template = LogLine {
                ts: String::new(),
                service: config.service.clone(),
                instance: config.id.clone(),
                image: config.image.clone(),
                stream: stream.to_owned(),
                line: String::new(),
            };
            let writer = Arc::clone(&writer);
            let path = config.log.path.clone();
            let reader = thread::Builder::new()
                .name(format!("log-{stream}"))
                .spawn(move || read(fd, &template, &writer, &path))
                .map_err(|e| format!("start the {stream} reader: {e}"))?;
            readers.push(reader);
        }
        let stdio = RuncStdio {
            stdout: stdout_write,
            stderr: stderr_write,
        };
        Ok((stdio, Streams { readers }))
    }

    /// Waits until both streams are closed and logged.
    pub(super) fn join(self) {
        for reader in self.readers {
            let _ = reader.join();
        }
    }

    /// Waits at most `limit` for both streams to close.
    pub(super) fn wait_for(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && !self.readers.iter().all(JoinHandle::is_finished) {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Logs every line of `fd` until it is closed.
fn read(fd: OwnedFd, template: &LogLine, writer: &Mutex<LogWriter>, path: &Path) {
    let mut failing = false;
    let reader = BufReader::with_capacity(64 * 1024, File::from(fd));
    let result = for_each_line(reader, MAX_LINE, |bytes| {
        let line = LogLine {
            ts: now_rfc3339(),
            line: String::from_utf8_lossy(bytes).into_owned(),
            ..template.clone()
        };
        let written = writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(&line);
        // Report a failing log once, not once a line.
        match written {
            Err(e) if !failing => {
                eprintln!("kiln shim: write {}: {e}", path.display());
                failing = true;
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
    });
    if let Err(e) = result {
        eprintln!("kiln shim: read {}: {e}", template.stream);
    }
}
