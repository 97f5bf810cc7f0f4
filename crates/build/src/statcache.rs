//! Remembers the content digests of context files by their stat data, as git's index does,
//! so that an unchanged rebuild does not read large files again.
//!
//! An entry is reused only when size, mtime (ns), ctime (ns), inode and device all match;
//! anything else means the file is hashed again. The cache is one file under
//! KILN_HOME/cache, rewritten atomically; concurrent builds may overwrite each other's
//! additions, which only costs a re-hash.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_image::Digest;
use sha2::{Digest as _, Sha256};

use crate::BuildError;

/// How recent a change must be for its stat data not to be trusted.
const RACY_NS: i128 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    entries: HashMap<PathBuf, (Stamp, Digest)>,
    dirty: bool,
}

impl StatCache {
    /// Loads the cache at `file`; a missing or unreadable cache is an empty one.
    pub fn load(file: PathBuf) -> StatCache {
        let mut entries = HashMap::new();
        if let Ok(f) = File::open(&file) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Some((path, entry)) = parse_line(&line) {
                    entries.insert(path, entry);
                }
            }
        }
        StatCache {
            file,
            entries,
            dirty: false,
        }
    }

    /// The sha256 of the file at `path` (whose metadata is `meta`), from the cache when
    /// its stat data is unchanged.
    pub fn digest(&mut self, path: &Path, meta: &fs::Metadata) -> Result<Digest, BuildError> {
        let stamp = Stamp::of(meta);
        if let Some((cached, digest)) = self.entries.get(path)
            && *cached == stamp
        {
            return Ok(digest.clone());
        }
        let digest = hash_file(path)?;
        // A file modified within the last seconds could change again within the same
        // timestamp tick without its stat data changing (git's "racy clean" problem):
        // such files are not remembered, so they are hashed again next time.
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        if now_ns - stamp.mtime_ns > RACY_NS {
            self.entries
                .insert(path.to_path_buf(), (stamp, digest.clone()));
            self.dirty = true;
        }
        Ok(digest)
    }

    /// Writes the cache back if anything was added.
    pub fn save(&mut self) -> Result<(), BuildError> {
        if !self.dirty {
            return Ok(());
        }
        let dir = self.file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(BuildError::io(dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(BuildError::io(dir))?;
        {
            let mut w = io::BufWriter::new(tmp.as_file_mut());
            for (path, (s, d)) in &self.entries {
                // Paths with newlines cannot be stored in this line format; they are
                // simply hashed every time.
                let Some(p) = path.to_str().filter(|p| !p.contains('\n')) else {
                    continue;
                };
                writeln!(
                    w,
                    "{} {} {} {} {} {} {}",
                    d.hex(),
                    s.size,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.ino,
                    s.dev,
                    p
                )
                .map_err(BuildError::io(&self.file))?;
            }
            w.flush().map_err(BuildError::io(&self.file))?;
        }
        tmp.persist(&self.file)
            .map_err(|e| BuildError::io(&self.file)(e.error))?;
        self.dirty = false;
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(PathBuf, (Stamp, Digest))> {
    let mut it = line.splitn(7, ' ');
    let digest = Digest::parse(it.next()?).ok()?;
    let stamp = Stamp {
        size: it.next()?.parse().ok()?,
        mtime_ns: it.next()?.parse().ok()?,
        ctime_ns: it.next()?.parse().ok()?,
        ino: it.next()?.parse().ok()?,
        dev: it.next()?.parse().ok()?,
    };
    Some((PathBuf::from(it.next()?), (stamp, digest)))
}

/// The sha256 of a file's content.
pub fn hash_file(path: &Path) -> Result<Digest, BuildError> {
    let mut f = File::open(path).map_err(BuildError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(BuildError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_hasher(hasher))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again_and_an_unchanged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        fs::write(&f, b"one").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let cache_file = dir.path().join("cache");
        let mut c = StatCache::load(cache_file.clone());
        let d1 = c.digest(&f, &fs::metadata(&f).unwrap()).unwrap();
        assert_eq!(d1, Digest::of(b"one"));
        c.save().unwrap();

        let mut c = StatCache::load(cache_file);
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.digest(&f, &fs::metadata(&f).unwrap()).unwrap(), d1);
        assert!(!c.dirty);
        fs::write(&f, b"two!").unwrap();
        let d2 = c.digest(&f, &fs::metadata(&f).unwrap()).unwrap();
        assert_eq!(d2, Digest::of(b"two!"));
    }
}
