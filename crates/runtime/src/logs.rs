//! Instance logs: each line a service writes becomes one JSON [`LogLine`], appended to a
//! file that is rotated by size (`path` → `path.1` → … → `path.keep`, the oldest
//! dropped).
//!
//! The shim writes them ([`LogWriter`], fed by [`for_each_line`]); readers find the
//! files with [`log_files`].

mod lines;
mod time;
mod writer;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use lines::{MAX_LINE, for_each_line};
pub(crate) use time::now_rfc3339;
pub use time::{rfc3339_millis, rfc3339_secs};
pub(crate) use writer::LogWriter;

/// One line of a service's output, as stored (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the shim read the line: RFC 3339 UTC with milliseconds,
    /// `2026-11-26T14:00:00.123Z`.
    pub ts: String,
    pub service: String,
    pub instance: String,
    /// The image digest the instance runs.
    pub image: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line without its newline; invalid UTF-8 replaced, lines longer than 16 KiB
    /// split.
    pub line: String,
}

/// `path.n`: the `n`th rotated file, 1 the newest.
pub(crate) fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The log files of `path` that exist, oldest first: the rotated ones (`path.N` …
/// `path.1`), then `path` itself.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(path, n))
        .take_while(|file| file.is_file())
        .collect();
    files.reverse();
    if path.is_file() {
        files.push(path.to_owned());
    }
    files
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn log_files_are_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        assert!(log_files(&path).is_empty());
        for name in ["web.log", "web.log.1", "web.log.2"] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<_> = log_files(&path)
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["web.log.2", "web.log.1", "web.log"]);
    }
}
