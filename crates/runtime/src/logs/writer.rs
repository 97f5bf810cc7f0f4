//! Appending [`LogLine`]s to a size-rotated file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{LogLine, rotated};

/// The current log file of one instance, rotated before a line would make it exceed
/// `max_bytes` (a file holds at least one line, however long).
#[derive(Debug)]
pub(crate) struct LogWriter {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    /// Opened on first use, and again after a failure.
    file: Option<File>,
    size: u64,
}

impl LogWriter {
    pub(crate) fn new(path: &Path, max_bytes: u64, keep: u32) -> Self {
        LogWriter {
            path: path.to_owned(),
            max_bytes,
            keep,
            file: None,
            size: 0,
        }
    }

    /// Appends `line` as one JSON line.
    pub(crate) fn write(&mut self, line: &LogLine) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line)?;
        bytes.push(b'\n');
        let len = bytes.len() as u64;
        if self.file.is_none() {
            self.open()?;
        }
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(&bytes),
            None => Err(io::Error::other("log file not open")),
        };
        match result {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                // Reopen next time: the file may have been removed or the disk freed.
                self.file = None;
                Err(e)
            }
        }
    }

    fn open(&mut self) -> io::Result<()> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            absent_ok(fs::remove_file(&self.path))?;
        } else {
            absent_ok(fs::remove_file(rotated(&self.path, self.keep)))?;
            for n in (1..self.keep).rev() {
                absent_ok(fs::rename(
                    rotated(&self.path, n),
                    rotated(&self.path, n + 1),
                ))?;
            }
            absent_ok(fs::rename(&self.path, rotated(&self.path, 1)))?;
        }
        self.open()
    }
}

fn absent_ok(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::log_files;

    fn line(n: usize) -> LogLine {
        LogLine {
            ts: "2026-11-26T14:00:00.123Z".to_owned(),
            service: "web".to_owned(),
            instance: "web-1".to_owned(),
            image: "sha256:00".to_owned(),
            stream: "stdout".to_owned(),
            line: format!("line {n:04}"),
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_only_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/web/web-1.log");
        let one = serde_json::to_vec(&line(0)).unwrap().len() as u64 + 1;
        let mut writer = LogWriter::new(&path, one * 3, 2);
        for n in 0..20 {
            writer.write(&line(n)).unwrap();
        }
        let files = log_files(&path);
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(!rotated(&path, 3).exists());
        let mut all = Vec::new();
        for file in &files {
            let text = fs::read_to_string(file).unwrap();
            assert!(text.len() as u64 <= one * 3);
            all.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<LogLine>(l).unwrap().line),
            );
        }
        // Three lines a file: the current one has 18 and 19, .1 15–17, .2 12–14.
        let expected: Vec<_> = (12..20).map(|n| format!("line {n:04}")).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        LogWriter::new(&path, 1 << 20, 1).write(&line(1)).unwrap();
        LogWriter::new(&path, 1 << 20, 1).write(&line(2)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
