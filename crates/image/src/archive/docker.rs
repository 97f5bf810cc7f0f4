//! The docker-archive format (`docker save`): `manifest.json` naming a config and
//! uncompressed layer tars per image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ArchiveError;
use super::image::{LoadedImage, MAX_JSON, check_diff_id, parse_config, parse_json, read_small};
use super::layer::store_layer;
use crate::store::Store;
use crate::unpack::parse_path;
use crate::{ImageError, UnpackLimits};

pub(super) const MANIFEST_JSON: &str = "manifest.json";

/// One image of `manifest.json`; fields in the order `docker save` writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DockerImage {
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

pub(super) fn read_manifest(dir: &Path, archive: &Path) -> Result<Vec<DockerImage>, ImageError> {
    let bytes = read_small(archive, &dir.join(MANIFEST_JSON), MANIFEST_JSON, MAX_JSON)?;
    parse_json(archive, MANIFEST_JSON, &bytes)
}

/// `manifest.json` and `repositories` for one image.
pub(super) fn manifest_files(
    image: &DockerImage,
    name: &str,
    tag: &str,
    top: &str,
) -> (Vec<u8>, Vec<u8>) {
    let manifest = serde_json::to_vec(&[image]).expect("a docker manifest always serializes");
    let repositories = BTreeMap::from([(name, BTreeMap::from([(tag, top)]))]);
    let repositories =
        serde_json::to_vec(&repositories).expect("a repositories map always serializes");
    (manifest, repositories)
}

/// A path `manifest.json` names, which must stay inside the archive.
fn archive_path(archive: &Path, path: &str) -> Result<PathBuf, ImageError> {
    let problem = match parse_path(path.as_bytes()) {
        Ok(p) if !p.as_os_str().is_empty() => return Ok(p),
        Ok(_) => "names the archive root".to_string(),
        Err(problem) => problem.to_string(),
    };
    Err(ArchiveError::Entry {
        archive: archive.to_path_buf(),
        entry: path.to_string(),
        problem: format!("{MANIFEST_JSON} names a bad path: {problem}"),
    }
    .into())
}

/// Reads one image of a docker-archive extracted at `dir`, checking and storing its
/// layers.
pub(super) fn load(
    store: &Store,
    dir: &Path,
    archive: &Path,
    image: &DockerImage,
    limits: &UnpackLimits,
) -> Result<LoadedImage, ImageError> {
    let config_path = dir.join(archive_path(archive, &image.config)?);
    let config_bytes = read_small(archive, &config_path, &image.config, MAX_JSON)?;
    let config = parse_config(archive, &image.config, &config_bytes, image.layers.len())?;
    let mut layers = Vec::with_capacity(image.layers.len());
    for (layer, diff_id) in image.layers.iter().zip(&config.rootfs.diff_ids) {
        let path = dir.join(archive_path(archive, layer)?);
        let stored = store_layer(store, archive, &path, layer, None, limits)?;
        check_diff_id(archive, layer, diff_id, &stored.diff_id)?;
        layers.push(stored.descriptor);
    }
    Ok(LoadedImage {
        config,
        config_bytes,
        layers,
        verbatim_manifest: None,
        annotations: BTreeMap::new(),
    })
}
