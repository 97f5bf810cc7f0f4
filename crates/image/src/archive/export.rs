//! Writing one image of the store as an OCI layout, an oci-archive or a docker-archive.

use std::collections::BTreeMap;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::docker::{DockerImage, MANIFEST_JSON, manifest_files};
use super::readers::ExactReader;
use super::tar_out::{Content, parent_dir, sync_dir, write_tar};
use super::{ANNOTATION_CONTAINERD_NAME, ArchiveError, ExportFormat};
use crate::oci::{
    ANNOTATION_REF_NAME, DOCKER_MEDIA_TYPE_MANIFEST, Descriptor, ImageConfig, Index,
    MEDIA_TYPE_MANIFEST, Manifest, Platform, canonical_json,
};
use crate::store::Store;
use crate::{Digest, ImageError};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes the image whose manifest is `manifest` to `dest` as `NAME:TAG`.
///
/// An `oci-dir` destination must not exist or be an empty directory; an archive file
/// is replaced. Either appears whole or not at all (it is written beside `dest` and
/// renamed). Every blob is verified as it is written.
pub fn export(
    store: &Store,
    manifest: &Descriptor,
    name: &str,
    tag: &str,
    format: ExportFormat,
    dest: &Path,
) -> Result<(), ImageError> {
    if manifest.media_type != MEDIA_TYPE_MANIFEST
        && manifest.media_type != DOCKER_MEDIA_TYPE_MANIFEST
    {
        return Err(ArchiveError::NotAnImage {
            reference: format!("{name}:{tag}"),
            media_type: manifest.media_type.clone(),
        }
        .into());
    }
    let parsed = store.read_manifest(&manifest.digest)?;
    let config_bytes = store.read_blob(&parsed.config.digest)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Json {
            what: format!("image config {}", parsed.config.digest),
            source,
        })?;
    let image = Image {
        manifest,
        parsed: &parsed,
        config: &config,
        name,
        tag,
    };
    match format {
        ExportFormat::OciDir => write_oci_dir(store, &image, dest),
        ExportFormat::OciArchive => write_tar(store, dest, &oci_entries(&image)),
        ExportFormat::DockerArchive => {
            write_tar(store, dest, &docker_entries(&image, config_bytes)?)
        }
    }
}

struct Image<'a> {
    manifest: &'a Descriptor,
    parsed: &'a Manifest,
    config: &'a ImageConfig,
    name: &'a str,
    tag: &'a str,
}

impl Image<'_> {
    /// `index.json`: the one manifest, tagged `TAG` (and named `NAME:TAG` for
    /// containerd and docker).
    fn index_json(&self) -> Vec<u8> {
        let entry = Descriptor {
            media_type: self.manifest.media_type.clone(),
            digest: self.manifest.digest.clone(),
            size: self.manifest.size,
            annotations: BTreeMap::from([
                (ANNOTATION_REF_NAME.to_string(), self.tag.to_string()),
                (
                    ANNOTATION_CONTAINERD_NAME.to_string(),
                    format!("{}:{}", self.name, self.tag),
                ),
            ]),
            platform: Some(Platform {
                architecture: self.config.architecture.clone(),
                os: self.config.os.clone(),
            }),
        };
        canonical_json(&Index::new(vec![entry]))
    }

    /// Every blob of the image, once each.
    fn blobs(&self) -> BTreeMap<Digest, u64> {
        std::iter::once(self.manifest)
            .chain(std::iter::once(&self.parsed.config))
            .chain(&self.parsed.layers)
            .map(|d| (d.digest.clone(), d.size))
            .collect()
    }
}

fn oci_entries(image: &Image<'_>) -> BTreeMap<String, Content> {
    let mut entries = BTreeMap::from([
        ("blobs/".to_string(), Content::Dir),
        ("blobs/sha256/".to_string(), Content::Dir),
        ("index.json".to_string(), Content::Bytes(image.index_json())),
        (
            "oci-layout".to_string(),
            Content::Bytes(OCI_LAYOUT.to_vec()),
        ),
    ]);
    for (digest, size) in image.blobs() {
        entries.insert(
            format!("blobs/sha256/{}", digest.hex()),
            Content::Blob { digest, size },
        );
    }
    entries
}

fn docker_entries(
    image: &Image<'_>,
    config_bytes: Vec<u8>,
) -> Result<BTreeMap<String, Content>, ImageError> {
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.parsed.layers.len() {
        return Err(ArchiveError::LayerCount {
            archive: format!("{}:{}", image.name, image.tag).into(),
            layers: image.parsed.layers.len(),
            diff_ids: diff_ids.len(),
        }
        .into());
    }
    let config_file = format!("{}.json", image.parsed.config.digest.hex());
    let mut entries = BTreeMap::new();
    let mut layer_files = Vec::new();
    for (layer, diff_id) in image.parsed.layers.iter().zip(diff_ids) {
        let file = format!("{}/layer.tar", diff_id.hex());
        entries.insert(format!("{}/", diff_id.hex()), Content::Dir);
        entries.insert(
            file.clone(),
            Content::Layer {
                blob: layer.digest.clone(),
                diff_id: diff_id.clone(),
            },
        );
        layer_files.push(file);
    }
    let reference = format!("{}:{}", image.name, image.tag);
    let docker = DockerImage {
        config: config_file.clone(),
        repo_tags: Some(vec![reference]),
        layers: layer_files,
    };
    let top = diff_ids
        .last()
        .unwrap_or(&image.parsed.config.digest)
        .hex()
        .to_string();
    let (manifest, repositories) = manifest_files(&docker, image.name, image.tag, &top);
    entries.insert(config_file, Content::Bytes(config_bytes));
    entries.insert(MANIFEST_JSON.to_string(), Content::Bytes(manifest));
    entries.insert("repositories".to_string(), Content::Bytes(repositories));
    Ok(entries)
}

fn write_oci_dir(store: &Store, image: &Image<'_>, dest: &Path) -> Result<(), ImageError> {
    let in_use = match fs::read_dir(dest) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    };
    if in_use {
        return Err(ArchiveError::DestinationExists(dest.to_path_buf()).into());
    }
    let parent = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-export-")
        .tempdir_in(parent)
        .map_err(ImageError::io(parent))?;
    let root = tmp.path();
    let blobs = root.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(ImageError::io(&blobs))?;
    write_file(&root.join("oci-layout"), OCI_LAYOUT)?;
    write_file(&root.join("index.json"), &image.index_json())?;
    for (digest, size) in image.blobs() {
        link_or_copy(store, &digest, size, &blobs.join(digest.hex()))?;
    }
    for dir in [root, &root.join("blobs"), &blobs] {
        fs::set_permissions(dir, Permissions::from_mode(0o755)).map_err(ImageError::io(dir))?;
        sync_dir(dir)?;
    }
    fs::rename(root, dest).map_err(ImageError::io(dest))?;
    // Renamed away: nothing left for the TempDir to delete.
    let _ = tmp.keep();
    sync_dir(parent)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let mut file = File::create_new(path).map_err(ImageError::io(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(ImageError::io(path))
}

/// Hard links the store's blob to `dest` (or copies it, across filesystems), verifying
/// its size and digest either way.
fn link_or_copy(store: &Store, digest: &Digest, size: u64, dest: &Path) -> Result<(), ImageError> {
    let mut blob = ExactReader::new(store.open_blob(digest)?, size);
    let verify = |e: io::Error| ImageError::Io {
        path: store.blob_path(digest),
        source: e,
    };
    if fs::hard_link(store.blob_path(digest), dest).is_ok() {
        return io::copy(&mut blob, &mut io::sink())
            .map(drop)
            .map_err(verify);
    }
    let mut file = File::create_new(dest).map_err(ImageError::io(dest))?;
    io::copy(&mut blob, &mut file).map_err(verify)?;
    file.sync_all().map_err(ImageError::io(dest))
}
