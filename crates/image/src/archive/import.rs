//! Importing images, and reading base images, from layouts and archives.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::docker::{self, MANIFEST_JSON};
use super::extract::extract_archive;
use super::layout::Layout;
use super::names::{DEFAULT_TAG, oci_entry_name, split_reference, stem};
use super::{ArchiveError, BaseImage, ImportedImage};
use crate::oci::Descriptor;
use crate::store::Store;
use crate::{Digest, ImageError, UnpackLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Oci,
    Docker,
}

/// A layout or docker-archive as a directory: the one given, or an archive extracted
/// to the store's scratch space (deleted when this is dropped).
#[derive(Debug)]
struct Source {
    dir: PathBuf,
    kind: Kind,
    _extracted: Option<TempDir>,
}

impl Source {
    fn open(store: &Store, path: &Path, limits: &UnpackLimits) -> Result<Source, ImageError> {
        let meta = fs::metadata(path).map_err(ImageError::io(path))?;
        let (dir, extracted) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            let scratch = store.tmp_dir();
            let tmp = tempfile::Builder::new()
                .prefix(".kiln-import-")
                .tempdir_in(&scratch)
                .map_err(ImageError::io(&scratch))?;
            extract_archive(path, tmp.path(), limits)?;
            (tmp.path().to_path_buf(), Some(tmp))
        };
        let kind = if dir.join("oci-layout").is_file() {
            Kind::Oci
        } else if dir.join(MANIFEST_JSON).is_file() {
            Kind::Docker
        } else {
            return Err(ArchiveError::NotAnArchive(path.to_path_buf()).into());
        };
        Ok(Source {
            dir,
            kind,
            _extracted: extracted,
        })
    }

    fn require(&self, kind: Kind, archive: &Path) -> Result<(), ImageError> {
        if self.kind == kind {
            return Ok(());
        }
        Err(ArchiveError::MissingFile {
            archive: archive.to_path_buf(),
            file: match kind {
                Kind::Oci => "oci-layout".to_string(),
                Kind::Docker => MANIFEST_JSON.to_string(),
            },
        }
        .into())
    }
}

/// Imports every image of an OCI layout (directory), oci-archive or docker-archive (a
/// tar, plain or gzip), recognized by content, and tags each in the store.
///
/// Names come from `io.containerd.image.name` or `org.opencontainers.image.ref.name`
/// annotations (a plain ref name is a tag) or docker `RepoTags`; without one, the name
/// is the file name without extensions and the tag `latest`. Nothing is tagged unless
/// every image is valid.
pub fn import(store: &Store, path: &Path) -> Result<Vec<ImportedImage>, ImageError> {
    let limits = UnpackLimits::from_env();
    let source = Source::open(store, path, &limits)?;
    let stem = stem(path);
    let mut found = Vec::new();
    match source.kind {
        Kind::Oci => {
            let layout = Layout::new(&source.dir, path);
            let mut stored: BTreeMap<Digest, Descriptor> = BTreeMap::new();
            for entry in layout.index()?.manifests {
                let manifest = match stored.get(&entry.digest) {
                    Some(manifest) => manifest.clone(),
                    None => {
                        let manifest = layout.load(store, &entry, &limits)?.store(store)?;
                        stored.insert(entry.digest.clone(), manifest.clone());
                        manifest
                    }
                };
                let (name, tag) = oci_entry_name(&entry, &stem);
                found.push(ImportedImage {
                    name,
                    tag,
                    manifest,
                });
            }
        }
        Kind::Docker => {
            for image in docker::read_manifest(&source.dir, path)? {
                let manifest =
                    docker::load(store, &source.dir, path, &image, &limits)?.store(store)?;
                let tags = image.repo_tags.unwrap_or_default();
                if tags.is_empty() {
                    found.push(ImportedImage {
                        name: stem.clone(),
                        tag: DEFAULT_TAG.to_string(),
                        manifest: manifest.clone(),
                    });
                }
                for reference in tags {
                    let (name, tag) = split_reference(&reference);
                    found.push(ImportedImage {
                        name,
                        tag: tag.unwrap_or_else(|| DEFAULT_TAG.to_string()),
                        manifest: manifest.clone(),
                    });
                }
            }
        }
    }
    if found.is_empty() {
        return Err(ArchiveError::NoImage(path.to_path_buf()).into());
    }
    let mut seen = BTreeSet::new();
    for image in &found {
        let reference = format!("{}:{}", image.name, image.tag);
        if !seen.insert(reference.clone()) {
            return Err(ArchiveError::DuplicateTag {
                archive: path.to_path_buf(),
                reference,
            }
            .into());
        }
    }
    for image in &found {
        store.tag(&image.name, &image.tag, &image.manifest)?;
    }
    Ok(found)
}

/// Reads a base image from an OCI layout (or an oci-archive): the index entry whose
/// `org.opencontainers.image.ref.name` (or `io.containerd.image.name`) is `reference`,
/// or with `None` the only entry. An image index is followed to `linux/<host
/// architecture>`. The layers are checked and stored; nothing is tagged.
pub fn load_oci_base(
    store: &Store,
    layout: &Path,
    reference: Option<&str>,
) -> Result<BaseImage, ImageError> {
    let limits = UnpackLimits::from_env();
    let source = Source::open(store, layout, &limits)?;
    source.require(Kind::Oci, layout)?;
    Layout::new(&source.dir, layout).load_base(store, reference, &limits)
}

/// Reads the one image of a docker-archive (or its extracted directory) as a base
/// image. The layers are checked and stored; nothing is tagged.
pub fn load_docker_archive_base(store: &Store, archive: &Path) -> Result<BaseImage, ImageError> {
    let limits = UnpackLimits::from_env();
    let source = Source::open(store, archive, &limits)?;
    source.require(Kind::Docker, archive)?;
    let images = docker::read_manifest(&source.dir, archive)?;
    let image = match images.as_slice() {
        [only] => only,
        [] => return Err(ArchiveError::NoImage(archive.to_path_buf()).into()),
        several => {
            return Err(ArchiveError::SeveralImages {
                archive: archive.to_path_buf(),
                available: several
                    .iter()
                    .flat_map(|i| i.repo_tags.iter().flatten().cloned())
                    .collect(),
            }
            .into());
        }
    };
    Ok(docker::load(store, &source.dir, archive, image, &limits)?.into_base())
}
