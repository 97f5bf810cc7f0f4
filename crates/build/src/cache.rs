//! The step cache: a step's key is the hash of its parent chain, its definition and the
//! digest of its inputs; its value is the layer it produced. An entry is used only while
//! the layer blob is still in the store.

use std::fs;
use std::path::PathBuf;

use kiln_image::{Digest, EntryKind, FileSource, LayerEntry, Store, oci::Descriptor};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::BuildError;
use crate::statcache::StatCache;

/// Bumped whenever the meaning of a cached layer changes (layer writer, walk rules, mode
/// normalization), so that old cache entries are never reused for new rules.
pub const KEY_VERSION: &str = "kiln-cache-1";

/// Builds a cache key from labelled parts, so that no two different inputs hash alike.
#[derive(Debug, Clone)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(kind: &str) -> KeyBuilder {
        let mut k = KeyBuilder(Sha256::new());
        k.part("version", KEY_VERSION.as_bytes())
            .part("kind", kind.as_bytes());
        k
    }

    pub fn part(&mut self, label: &str, value: &[u8]) -> &mut Self {
        for bytes in [label.as_bytes(), value] {
            self.0.update((bytes.len() as u64).to_le_bytes());
            self.0.update(bytes);
        }
        self
    }

    pub fn finish(&self) -> Digest {
        Digest::from_hasher(self.0.clone())
    }
}

/// What a cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedLayer {
    pub layer: Descriptor,
    pub diff_id: Digest,
}

#[derive(Debug)]
pub struct StepCache {
    dir: PathBuf,
}

impl StepCache {
    pub fn new(store: &Store) -> StepCache {
        StepCache {
            dir: store.home().join("cache").join("steps"),
        }
    }

    /// The cached result for `key`, if there is one and its blob is still stored.
    pub fn get(&self, store: &Store, key: &Digest) -> Option<CachedLayer> {
        let bytes = fs::read(self.dir.join(key.hex())).ok()?;
        let cached: CachedLayer = serde_json::from_slice(&bytes).ok()?;
        store.has_blob(&cached.layer.digest).then_some(cached)
    }

    pub fn put(&self, key: &Digest, value: &CachedLayer) -> Result<(), BuildError> {
        fs::create_dir_all(&self.dir).map_err(BuildError::io(&self.dir))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(BuildError::io(&self.dir))?;
        let json = serde_json::to_vec(value).expect("cache entries always serialize");
        std::io::Write::write_all(&mut tmp, &json).map_err(BuildError::io(&self.dir))?;
        let path = self.dir.join(key.hex());
        tmp.persist(&path)
            .map_err(|e| BuildError::io(&path)(e.error))?;
        Ok(())
    }
}

/// A digest of everything that decides a layer's content: paths, metadata (mtimes as the
/// layer writer clamps them) and file contents (through the stat cache).
pub fn entries_digest(
    entries: &[LayerEntry],
    stat: &mut StatCache,
    epoch: u64,
) -> Result<Digest, BuildError> {
    let mut k = KeyBuilder::new("entries");
    for e in entries {
        k.part("path", e.path.as_bytes()).part(
            "meta",
            format!("{:o} {} {} {}", e.mode, e.uid, e.gid, e.mtime.min(epoch)).as_bytes(),
        );
        match &e.kind {
            EntryKind::Dir { opaque } => k.part("dir", &[u8::from(*opaque)]),
            EntryKind::File {
                source: FileSource::Path { path, .. },
            } => {
                let meta = fs::metadata(path).map_err(BuildError::io(path))?;
                let d = stat.digest(path, &meta)?;
                k.part("file", d.hex().as_bytes())
            }
            EntryKind::File {
                source: FileSource::Bytes(b),
            } => k.part("file", Digest::of(b).hex().as_bytes()),
            EntryKind::Symlink { target } => k.part("symlink", target.as_bytes()),
            EntryKind::Hardlink { target } => k.part("hardlink", target.as_bytes()),
            EntryKind::Whiteout => k.part("whiteout", b""),
        };
    }
    Ok(k.finish())
}
