//! Following one log file as it grows, across rotation (renamed away and recreated) and
//! truncation.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

/// The part of a file already read, and the handle to read the rest from.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    file: File,
    ino: u64,
    /// Bytes read from `file` so far.
    offset: u64,
    /// The start of a line not yet ended by a newline.
    partial: Vec<u8>,
}

impl Tail {
    /// A file not read yet: the first `read_new` returns all of it.
    pub fn new(path: PathBuf) -> Self {
        Tail { path, open: None }
    }

    /// The complete lines written since the last call. Once the file is rotated, the rest
    /// of the old file is read before the new one, from its start.
    pub fn read_new(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        if let Some(open) = &mut self.open {
            open.drain(&mut lines)?;
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // Between rotation and the new file: keep the old handle until it appears.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(lines),
            Err(e) => return Err(e),
        };
        match &mut self.open {
            Some(open) if open.ino == meta.ino() => {
                if meta.len() < open.offset {
                    open.file.seek(SeekFrom::Start(0))?;
                    open.offset = 0;
                    open.partial.clear();
                    open.drain(&mut lines)?;
                }
            }
            _ => {
                let file = match File::open(&self.path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(lines),
                    Err(e) => return Err(e),
                };
                let ino = file.metadata()?.ino();
                let open = self.open.insert(Open {
                    file,
                    ino,
                    offset: 0,
                    partial: Vec::new(),
                });
                open.drain(&mut lines)?;
            }
        }
        Ok(lines)
    }
}

impl Open {
    /// Reads to the current end, pushing each complete line.
    fn drain(&mut self, lines: &mut Vec<String>) -> io::Result<()> {
        let mut buf = Vec::new();
        let n = self.file.read_to_end(&mut buf)?;
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        if let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(last_newline + 1);
            let done = std::mem::replace(&mut self.partial, rest);
            lines.extend(
                String::from_utf8_lossy(&done)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn follows_growth_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web-a.log");
        let mut tail = Tail::new(path.clone());
        assert!(tail.read_new().unwrap().is_empty(), "no file yet");

        append(&path, "one\ntw");
        assert_eq!(tail.read_new().unwrap(), ["one"]);
        append(&path, "o\nthree\n");
        assert_eq!(tail.read_new().unwrap(), ["two", "three"]);
        assert!(tail.read_new().unwrap().is_empty());

        // Rotated: the old file's last lines come first, then the new file from its start.
        append(&path, "four\n");
        std::fs::rename(&path, dir.path().join("web-a.log.1")).unwrap();
        assert_eq!(tail.read_new().unwrap(), ["four"]);
        append(&path, "five\n");
        assert_eq!(tail.read_new().unwrap(), ["five"]);

        // Truncated in place.
        std::fs::write(&path, "").unwrap();
        append(&path, "6\n");
        assert_eq!(tail.read_new().unwrap(), ["6"]);
    }
}
