//! Extracting an image archive (a tar, plain or gzip) into a fresh directory.
//!
//! Only regular files and directories are created, never a symlink, so nothing read
//! from the directory afterwards can lead outside it. Symlinks and hard links of the
//! archive (skopeo's docker-archives link `<id>/layer.tar` to `../<hex>.tar`) become
//! hard links to the regular file they resolve to inside the archive; a link that
//! resolves to anything else, devices and other special entries are refused. Paths
//! follow the layer rules: no absolute paths, no `..`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::ArchiveError;
use crate::unpack::parse_path;
use crate::{ImageError, UnpackError, UnpackLimits};

/// A link waiting for its target to be extracted.
struct Link {
    entry: String,
    path: PathBuf,
    target: PathBuf,
}

pub(super) fn extract_archive(
    src: &Path,
    dir: &Path,
    limits: &UnpackLimits,
) -> Result<(), ImageError> {
    let mut input =
        BufReader::with_capacity(1 << 20, File::open(src).map_err(ImageError::io(src))?);
    let gzip = input
        .fill_buf()
        .map_err(ImageError::io(src))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let refuse = |entry: &str, problem: String| -> ImageError {
        ArchiveError::Entry {
            archive: src.to_path_buf(),
            entry: entry.to_string(),
            problem,
        }
        .into()
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeSet::new();
    let mut links = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    let bad_tar = |source| -> ImageError {
        ArchiveError::BadTar {
            archive: src.to_path_buf(),
            source,
        }
        .into()
    };
    for entry in archive.entries().map_err(bad_tar)? {
        let mut entry = entry.map_err(bad_tar)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        count += 1;
        bytes = bytes.saturating_add(entry.size());
        if count > limits.max_entries {
            let limit = UnpackError::TooManyEntries(limits.max_entries);
            return Err(refuse(&name, limit.to_string()));
        }
        if bytes > limits.max_bytes {
            let limit = UnpackError::TooManyBytes(limits.max_bytes);
            return Err(refuse(&name, limit.to_string()));
        }
        let path = parse_path(&entry.path_bytes()).map_err(|p| refuse(&name, p.to_string()))?;
        let entry_type = entry.header().entry_type();
        if path.as_os_str().is_empty() {
            if entry_type.is_dir() {
                continue;
            }
            return Err(refuse(&name, "the archive root must be a directory".into()));
        }
        let full = dir.join(&path);
        match entry_type {
            EntryType::Directory => fs::create_dir_all(&full).map_err(ImageError::io(&full))?,
            EntryType::Regular | EntryType::Continuous => {
                create_parent(&full)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&full)
                    .map_err(ImageError::io(&full))?;
                copy(&mut entry, &mut file, &full).map_err(|e| match e {
                    CopyError::Read(e) => bad_tar(e),
                    CopyError::Write(e) => e,
                })?;
                files.insert(path);
            }
            EntryType::Symlink | EntryType::Link => {
                let Some(raw) = entry.link_name_bytes() else {
                    return Err(refuse(&name, "link entry has no target".into()));
                };
                let target = if entry_type == EntryType::Link {
                    parse_path(&raw).ok()
                } else {
                    resolve_symlink(&path, &raw)
                };
                let Some(target) = target else {
                    let shown = String::from_utf8_lossy(&raw);
                    return Err(refuse(
                        &name,
                        format!("link target {shown:?} escapes the archive"),
                    ));
                };
                links.push(Link {
                    entry: name,
                    path,
                    target,
                });
            }
            EntryType::XGlobalHeader => {}
            other => {
                let kind = char::from(other.as_byte());
                return Err(refuse(
                    &name,
                    format!("unsupported entry type {kind:?} in an image archive"),
                ));
            }
        }
    }
    // A link to a link resolves once the link it names has.
    while !links.is_empty() {
        let before = links.len();
        let mut waiting = Vec::new();
        for link in links {
            if !files.contains(&link.target) {
                waiting.push(link);
                continue;
            }
            let full = dir.join(&link.path);
            create_parent(&full)?;
            fs::hard_link(dir.join(&link.target), &full).map_err(ImageError::io(&full))?;
            files.insert(link.path);
        }
        if waiting.len() == before {
            let link = &waiting[0];
            let target = link.target.display();
            return Err(refuse(
                &link.entry,
                format!("link target {target:?} is not a regular file of the archive"),
            ));
        }
        links = waiting;
    }
    Ok(())
}

enum CopyError {
    Read(io::Error),
    Write(ImageError),
}

/// Copies an entry's data to `file`, telling read errors (a broken archive) from write
/// errors.
fn copy(entry: &mut impl Read, file: &mut File, path: &Path) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        file.write_all(&buf[..n])
            .map_err(|e| CopyError::Write(ImageError::io(path)(e)))?;
    }
}

fn create_parent(path: &Path) -> Result<(), ImageError> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(ImageError::io(parent)),
        None => Ok(()),
    }
}

/// Resolves a symlink target lexically inside the archive (absolute targets from its
/// root); `None` if it climbs above the root.
fn resolve_symlink(link: &Path, target: &[u8]) -> Option<PathBuf> {
    if target.is_empty() || target.contains(&0) {
        return None;
    }
    let mut resolved: Vec<&OsStr> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        link.parent()
            .map(|p| p.iter().collect())
            .unwrap_or_default()
    };
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                resolved.pop()?;
            }
            name => resolved.push(OsStr::from_bytes(name)),
        }
    }
    Some(resolved.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_archive() {
        let r = |link: &str, target: &str| resolve_symlink(Path::new(link), target.as_bytes());
        assert_eq!(
            r("abc/layer.tar", "../0c64.tar"),
            Some(PathBuf::from("0c64.tar"))
        );
        assert_eq!(r("abc/layer.tar", "/x/y"), Some(PathBuf::from("x/y")));
        assert_eq!(r("abc/layer.tar", "../../etc/passwd"), None);
        assert_eq!(r("layer.tar", ".."), None);
    }
}
