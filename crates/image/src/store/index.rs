//! `index.json`: tags (`NAME:TAG` ref-name annotations) and reference resolution.

use std::collections::BTreeSet;

use super::{Store, StoreLock, fsutil};
use crate::oci::{
    ANNOTATION_REF_NAME, Descriptor, Index, MEDIA_TYPE_MANIFEST, Manifest, Platform, canonical_json,
};
use crate::{Digest, ImageError};

/// The shortest hex prefix accepted as a manifest reference.
pub const MIN_DIGEST_PREFIX: usize = 12;

/// Manifests larger than this are not believed to be manifests when resolving a digest.
const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The tag, when the reference named one (`None` for digest references).
    pub name_tag: Option<(String, String)>,
    /// The manifest (without the ref-name annotation).
    pub manifest: Descriptor,
}

/// A tagged image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
    /// The index entry, without the ref-name annotation.
    pub manifest: Descriptor,
}

impl ImageRef {
    /// `NAME:TAG`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// Image names: non-empty, `[a-z0-9._-]`.
pub fn validate_name(name: &str) -> Result<(), ImageError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::BadName(name.to_string()))
    }
}

/// Tags: 1 to 128 of `[A-Za-z0-9._-]`.
pub fn validate_tag(tag: &str) -> Result<(), ImageError> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::BadTag(tag.to_string()))
    }
}

impl Store {
    /// Tags `manifest` as `NAME:TAG`, replacing any previous image of that tag; the new
    /// entry goes last in `index.json`. The manifest, its config and its layers must be
    /// in the store. The entry gets the platform from the config unless it has one.
    pub fn tag(&self, name: &str, tag: &str, manifest: &Descriptor) -> Result<(), ImageError> {
        validate_name(name)?;
        validate_tag(tag)?;
        let lock = self.lock()?;
        let parsed = self.read_manifest(&manifest.digest)?;
        self.require_blob(&parsed.config.digest)?;
        for layer in &parsed.layers {
            self.require_blob(&layer.digest)?;
        }
        let mut entry = manifest.clone();
        if entry.platform.is_none() {
            let config = self.read_config(&parsed.config.digest)?;
            entry.platform = Some(Platform {
                architecture: config.architecture,
                os: config.os,
            });
        }
        let reference = format!("{name}:{tag}");
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_string(), reference.clone());
        let mut index = self.load_index()?;
        index
            .manifests
            .retain(|d| ref_name(d) != Some(reference.as_str()));
        index.manifests.push(entry);
        self.save_index(&lock, &index)
    }

    /// All tags, in index order (oldest first).
    pub fn images(&self) -> Result<Vec<ImageRef>, ImageError> {
        Ok(image_refs(&self.load_index()?))
    }

    /// Resolves `NAME:TAG`; `NAME` (its `latest` tag, else its most recent tag);
    /// `sha256:<hex>`; or a hex prefix of at least 12 characters of a tagged manifest.
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let index = self.load_index()?;
        let refs = image_refs(&index);
        let unknown = |hint: String| ImageError::UnknownImage {
            reference: reference.to_string(),
            hint,
        };
        if let Some(hex) = reference.strip_prefix("sha256:") {
            return self.resolve_hex(&index, reference, hex);
        }
        if let Some((name, tag)) = reference.split_once(':') {
            if let Some(r) = refs.iter().find(|r| r.name == name && r.tag == tag) {
                return Ok(tagged(r));
            }
            let tags: Vec<&str> = refs
                .iter()
                .filter(|r| r.name == name)
                .map(|r| r.tag.as_str())
                .collect();
            return Err(unknown(if tags.is_empty() {
                known_names(&refs)
            } else {
                format!("`{name}` has tags {}", tags.join(", "))
            }));
        }
        let mut named = refs.iter().filter(|r| r.name == reference);
        let latest = named.clone().find(|r| r.tag == "latest");
        if let Some(r) = latest.or_else(|| named.next_back()) {
            return Ok(tagged(r));
        }
        if reference.len() >= MIN_DIGEST_PREFIX && is_hex(reference) {
            return self.resolve_hex(&index, reference, reference);
        }
        Err(unknown(known_names(&refs)))
    }

    /// Resolves a full digest or a prefix of one.
    fn resolve_hex(
        &self,
        index: &Index,
        reference: &str,
        hex: &str,
    ) -> Result<ResolvedImage, ImageError> {
        let unknown = |hint: String| ImageError::UnknownImage {
            reference: reference.to_string(),
            hint,
        };
        if let Ok(digest) = Digest::parse(hex) {
            if let Some(d) = index.manifests.iter().find(|d| d.digest == digest) {
                return Ok(untagged(d));
            }
            return self.untagged_manifest(&digest).map_err(unknown);
        }
        if hex.len() < MIN_DIGEST_PREFIX || !is_hex(hex) {
            return Err(unknown(format!(
                "a digest reference is sha256:<hex> with at least {MIN_DIGEST_PREFIX} hex digits"
            )));
        }
        let matches: BTreeSet<&Digest> = index
            .manifests
            .iter()
            .map(|d| &d.digest)
            .filter(|d| d.hex().starts_with(hex))
            .collect();
        match matches.len() {
            0 => Err(unknown(format!(
                "no image has a digest starting with {hex}"
            ))),
            1 => {
                let digest = matches.into_iter().next().expect("one match");
                let d = index
                    .manifests
                    .iter()
                    .find(|d| d.digest == *digest)
                    .expect("the match came from the index");
                Ok(untagged(d))
            }
            _ => Err(ImageError::AmbiguousImage {
                reference: reference.to_string(),
                candidates: matches.iter().map(|d| d.to_string()).collect(),
            }),
        }
    }

    /// A manifest blob that no index entry names.
    fn untagged_manifest(&self, digest: &Digest) -> Result<ResolvedImage, String> {
        let path = self.blob_path(digest);
        let size = match path.metadata() {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => return Err(format!("no blob {digest} in the store")),
        };
        if size > MAX_MANIFEST_SIZE {
            return Err(format!("blob {digest} is not an image manifest"));
        }
        let manifest: Manifest = self
            .read_json(digest, "manifest")
            .map_err(|e| format!("blob {digest} is not a readable image manifest ({e})"))?;
        let mut d = Descriptor {
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            digest: digest.clone(),
            size,
            annotations: Default::default(),
            platform: None,
        };
        if let Some(media_type) = manifest.media_type {
            d.media_type = media_type;
        }
        Ok(ResolvedImage {
            name_tag: None,
            manifest: d,
        })
    }

    pub(crate) fn load_index(&self) -> Result<Index, ImageError> {
        let path = self.index_path();
        let bytes = std::fs::read(&path).map_err(ImageError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })
    }

    pub(crate) fn save_index(&self, _lock: &StoreLock, index: &Index) -> Result<(), ImageError> {
        fsutil::write_atomic(
            &self.tmp_dir(),
            &self.index_path(),
            &canonical_json(index),
            true,
        )
    }
}

/// The `NAME:TAG` annotation of an index entry.
pub(crate) fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str)
}

/// The entries with a `NAME:TAG` ref name, in index order.
fn image_refs(index: &Index) -> Vec<ImageRef> {
    index
        .manifests
        .iter()
        .filter_map(|d| {
            let (name, tag) = ref_name(d)?.split_once(':')?;
            Some(ImageRef {
                name: name.to_string(),
                tag: tag.to_string(),
                manifest: without_ref_name(d),
            })
        })
        .collect()
}

fn without_ref_name(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.annotations.remove(ANNOTATION_REF_NAME);
    d
}

fn tagged(r: &ImageRef) -> ResolvedImage {
    ResolvedImage {
        name_tag: Some((r.name.clone(), r.tag.clone())),
        manifest: r.manifest.clone(),
    }
}

fn untagged(d: &Descriptor) -> ResolvedImage {
    ResolvedImage {
        name_tag: None,
        manifest: without_ref_name(d),
    }
}

fn known_names(refs: &[ImageRef]) -> String {
    let mut seen = BTreeSet::new();
    let names: Vec<&str> = refs
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| seen.insert(*n))
        .collect();
    if names.is_empty() {
        "the store has no images".to_string()
    } else {
        format!("known images: {}", names.join(", "))
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
