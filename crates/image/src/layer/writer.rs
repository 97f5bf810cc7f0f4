//! Writes canonical entries as a GNU tar stream, with explicit headers.
//!
//! Headers come from [`tar::Header::new_gnu`]; names, link targets, the GNU long-name
//! entries and padding are written here directly (as the `tar` crate's builder writes
//! them), so that file data can be copied with large buffers and checked against the
//! size the header promised.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{EntryKind, FileSource, LayerEntry};
use crate::ImageError;

const BLOCK: u64 = 512;
/// The name and linkname fields of a tar header.
const NAME_FIELD: usize = 100;
const READ_BUF: usize = 1 << 20;
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Writes tar entries to `out`; errors writing to it are reported against `sink`.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    sink: PathBuf,
    epoch: u64,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, sink: &Path, epoch: u64) -> Self {
        TarWriter {
            out,
            sink: sink.to_path_buf(),
            epoch,
            buf: Vec::new(),
        }
    }

    /// Appends one canonical entry (with its whiteout or opaque marker form).
    pub(crate) fn append(&mut self, e: &LayerEntry) -> Result<(), ImageError> {
        let meta = (e.mode, e.uid, e.gid, e.mtime);
        match &e.kind {
            EntryKind::Dir { opaque } => {
                let h = header(EntryType::Directory, meta, 0);
                self.put_header(h, &format!("{}/", e.path), None)?;
                if *opaque {
                    let marker = format!("{}/{OPAQUE_MARKER}", e.path);
                    self.put_header(self.marker_header(), &marker, None)?;
                }
            }
            EntryKind::File {
                source: FileSource::Bytes(bytes),
            } => {
                let h = header(EntryType::Regular, meta, bytes.len() as u64);
                self.put_header(h, &e.path, None)?;
                self.write(bytes)?;
                self.pad(bytes.len() as u64)?;
            }
            EntryKind::File {
                source: FileSource::Path { path, size },
            } => self.put_file(&e.path, meta, path, *size)?,
            EntryKind::Symlink { target } => {
                let h = header(EntryType::Symlink, meta, 0);
                self.put_header(h, &e.path, Some(target))?;
            }
            EntryKind::Hardlink { target } => {
                let h = header(EntryType::Link, meta, 0);
                self.put_header(h, &e.path, Some(target))?;
            }
            EntryKind::Whiteout => {
                let name = match e.path.rsplit_once('/') {
                    Some((dir, base)) => format!("{dir}/{WHITEOUT_PREFIX}{base}"),
                    None => format!("{WHITEOUT_PREFIX}{}", e.path),
                };
                self.put_header(self.marker_header(), &name, None)?;
            }
        }
        Ok(())
    }

    /// Ends the archive with two zero blocks and returns the writer.
    pub(crate) fn finish(mut self) -> Result<W, ImageError> {
        self.write(&[0; 2 * BLOCK as usize])?;
        Ok(self.out)
    }

    /// Whiteouts and opaque markers: empty regular files, mode 0, root, at the epoch.
    fn marker_header(&self) -> Header {
        header(EntryType::Regular, (0, 0, 0, self.epoch), 0)
    }

    /// Writes `h` with `name` and `link`, preceded by GNU long-name entries if needed.
    fn put_header(
        &mut self,
        mut h: Header,
        name: &str,
        link: Option<&str>,
    ) -> Result<(), ImageError> {
        let old = h.as_old_mut();
        let name = name.as_bytes();
        let n = name.len().min(NAME_FIELD);
        old.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let link = link.as_bytes();
            let n = link.len().min(NAME_FIELD);
            old.linkname[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > NAME_FIELD {
            self.long_name(b'L', name)?;
        }
        if let Some(link) = link.filter(|l| l.len() > NAME_FIELD) {
            self.long_name(b'K', link.as_bytes())?;
        }
        h.set_cksum();
        self.write(h.as_bytes())
    }

    /// A GNU `././@LongLink` entry carrying a long name (`L`) or link target (`K`),
    /// exactly as the `tar` crate and GNU tar write it.
    fn long_name(&mut self, kind: u8, value: &[u8]) -> Result<(), ImageError> {
        let mut h = Header::new_gnu();
        let marker = b"././@LongLink";
        h.as_old_mut().name[..marker.len()].copy_from_slice(marker);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let size = value.len() as u64 + 1; // with a terminating NUL
        h.set_size(size);
        h.set_entry_type(EntryType::new(kind));
        h.set_cksum();
        self.write(h.as_bytes())?;
        self.write(value)?;
        self.write(&[0])?;
        self.pad(size)
    }

    /// A regular file read from disk, which must be exactly `size` bytes long.
    fn put_file(
        &mut self,
        name: &str,
        meta: (u32, u32, u32, u64),
        path: &Path,
        size: u64,
    ) -> Result<(), ImageError> {
        let changed = |found: String| ImageError::InputChanged {
            path: path.to_path_buf(),
            expected: size,
            found,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(ImageError::io(path))?;
        let stat = file.metadata().map_err(ImageError::io(path))?;
        if !stat.is_file() {
            return Err(changed("it is no longer a regular file".into()));
        }
        if stat.len() != size {
            return Err(changed(format!("it is {} bytes now", stat.len())));
        }
        self.put_header(header(EntryType::Regular, meta, size), name, None)?;
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
        let mut remaining = size;
        loop {
            // Ask for one byte more than is left, to notice a file that grew.
            let want = usize::try_from(remaining.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let n = match file.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ImageError::io(path)(e)),
            };
            if n as u64 > remaining {
                return Err(changed("it grew while it was read".into()));
            }
            if n == 0 {
                if remaining > 0 {
                    return Err(changed(format!(
                        "it ended after {} bytes",
                        size - remaining
                    )));
                }
                break;
            }
            self.out
                .write_all(&self.buf[..n])
                .map_err(ImageError::io(&self.sink))?;
            remaining -= n as u64;
            // A short read of the last bytes is the end of the file.
            if remaining == 0 && n < want {
                break;
            }
        }
        self.pad(size)
    }

    fn pad(&mut self, len: u64) -> Result<(), ImageError> {
        let rest = (BLOCK - len % BLOCK) % BLOCK;
        self.write(&[0; BLOCK as usize][..rest as usize])
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        self.out
            .write_all(bytes)
            .map_err(ImageError::io(&self.sink))
    }
}

/// A GNU header: numeric owner, empty user and group names, device 0:0.
fn header(kind: EntryType, (mode, uid, gid, mtime): (u32, u32, u32, u64), size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(mtime);
    h.set_size(size);
    h.set_device_major(0)
        .expect("GNU headers have a device major field");
    h.set_device_minor(0)
        .expect("GNU headers have a device minor field");
    h
}
