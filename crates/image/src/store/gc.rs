//! Removing images and collecting what no index entry or pin reaches any more.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Store, StoreLock, fsutil};
use crate::oci::{
    DOCKER_MEDIA_TYPE_MANIFEST, Descriptor, Index, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use crate::{Digest, ImageError};

const DOCKER_MEDIA_TYPE_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Temporary files younger than this are left alone: a writer may still be busy.
const TMP_GRACE: Duration = Duration::from_secs(3600);

/// What a garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// True if another `Store` was open on the same home, so nothing was collected.
    pub deferred: bool,
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    pub layer_dirs_removed: usize,
}

impl Store {
    /// Untags an image and collects garbage; returns the `NAME:TAG`s removed.
    ///
    /// `NAME[:TAG]` removes the tag it resolves to; a digest reference removes every
    /// tag of that manifest. Garbage collection is deferred while another `Store` is
    /// open on this home (see the module docs); a later `remove` or [`Store::gc`]
    /// collects it then.
    pub fn remove(&self, reference: &str) -> Result<Vec<String>, ImageError> {
        let lock = self.lock()?;
        let resolved = self.resolve(reference)?;
        let mut index = self.load_index()?;
        let mut removed = Vec::new();
        index.manifests.retain(|d| {
            let name = super::index::ref_name(d);
            let hit = match &resolved.name_tag {
                Some((n, t)) => name == Some(format!("{n}:{t}").as_str()),
                None => d.digest == resolved.manifest.digest,
            };
            if hit && let Some(name) = name {
                removed.push(name.to_string());
            }
            !hit
        });
        self.save_index(&lock, &index)?;
        self.gc_locked(&lock)?;
        Ok(removed)
    }

    /// Deletes the blobs and unpacked layers that no index entry reaches, and stale
    /// temporary files.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        let lock = self.lock()?;
        self.gc_locked(&lock)
    }

    fn gc_locked(&self, _lock: &StoreLock) -> Result<GcReport, ImageError> {
        let Some(_sole_user) = self.users.try_exclusive()? else {
            return Ok(GcReport {
                deferred: true,
                ..GcReport::default()
            });
        };
        let mut roots = self.load_index()?;
        roots.manifests.extend(self.pinned()?);
        let (blobs, diff_ids) = self.reachable(&roots)?;
        let mut report = GcReport::default();
        for (digest, path) in digest_entries(&self.blobs)? {
            if blobs.contains(&digest) {
                continue;
            }
            let size = path.metadata().map(|m| m.len()).unwrap_or(0);
            remove_path(&path)?;
            report.blobs_removed += 1;
            report.bytes_removed += size;
        }
        fsutil::sync_dir(&self.blobs)?;
        let tmp = self.tmp_dir();
        for (digest, path) in digest_entries(&self.home.join("layers"))? {
            if diff_ids.contains(&digest) {
                continue;
            }
            // Move it out of the way first, so no half-deleted layer keeps its name.
            let doomed = tmp.join(format!(".gc-{}", digest.hex()));
            remove_path(&doomed)?;
            fs::rename(&path, &doomed).map_err(ImageError::io(&path))?;
            remove_path(&doomed)?;
            report.layer_dirs_removed += 1;
        }
        remove_stale(&tmp)?;
        Ok(report)
    }

    /// The blobs and diff_ids reachable from the index.
    fn reachable(&self, index: &Index) -> Result<(HashSet<Digest>, HashSet<Digest>), ImageError> {
        let mut blobs = HashSet::new();
        let mut diff_ids = HashSet::new();
        let mut todo: Vec<Descriptor> = index.manifests.clone();
        while let Some(d) = todo.pop() {
            if !blobs.insert(d.digest.clone()) || !self.has_blob(&d.digest) {
                continue;
            }
            match d.media_type.as_str() {
                MEDIA_TYPE_MANIFEST | DOCKER_MEDIA_TYPE_MANIFEST => {
                    let manifest = self.read_manifest(&d.digest)?;
                    blobs.insert(manifest.config.digest.clone());
                    diff_ids.extend(self.diff_ids(&manifest.config.digest)?);
                    blobs.extend(manifest.layers.into_iter().map(|l| l.digest));
                }
                MEDIA_TYPE_INDEX | DOCKER_MEDIA_TYPE_LIST => {
                    let nested: Index = self.read_json(&d.digest, "image index")?;
                    todo.extend(nested.manifests);
                }
                _ => {}
            }
        }
        Ok((blobs, diff_ids))
    }

    /// The diff_ids a config lists; a config that is missing or not an image config
    /// has none.
    fn diff_ids(&self, config: &Digest) -> Result<Vec<Digest>, ImageError> {
        if !self.has_blob(config) {
            return Ok(Vec::new());
        }
        let value: serde_json::Value = self.read_json(config, "config")?;
        let ids = value
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| Digest::parse(id.as_str()?).ok())
                    .collect()
            });
        Ok(ids.unwrap_or_default())
    }
}

/// The entries of `dir` named by a digest's hex; anything else (temporary leftovers)
/// is skipped.
fn digest_entries(dir: &Path) -> Result<Vec<(Digest, std::path::PathBuf)>, ImageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(ImageError::io(dir))? {
        let entry = entry.map_err(ImageError::io(dir))?;
        let name = entry.file_name();
        if let Some(digest) = name.to_str().and_then(|n| Digest::parse(n).ok()) {
            out.push((digest, entry.path()));
        }
    }
    Ok(out)
}

/// Removes a file or a directory tree; a missing path is fine.
fn remove_path(path: &Path) -> Result<(), ImageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ImageError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Removes entries of the temporary directory not modified for [`TMP_GRACE`].
fn remove_stale(tmp: &Path) -> Result<(), ImageError> {
    let now = SystemTime::now();
    for entry in fs::read_dir(tmp).map_err(ImageError::io(tmp))? {
        let entry = entry.map_err(ImageError::io(tmp))?;
        let modified = entry.metadata().and_then(|m| m.modified());
        let stale = modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age > TMP_GRACE));
        if stale {
            remove_path(&entry.path())?;
        }
    }
    Ok(())
}
