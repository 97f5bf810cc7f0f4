//! Names and tags for imported images, from references, annotations and file names.
//!
//! Store names are `[a-z0-9._-]+` and tags `[A-Za-z0-9._-]{1,128}`; what an archive
//! offers is made to fit: only the last path component of a repository is kept
//! (`docker.io/library/alpine:3.19` is `alpine:3.19`) and other characters become `-`.

use std::path::Path;

use crate::oci::{ANNOTATION_REF_NAME, Descriptor};

use super::ANNOTATION_CONTAINERD_NAME;

pub(super) const DEFAULT_TAG: &str = "latest";

/// Splits a reference (`[registry/]repo[:tag][@digest]`) into a store name and tag.
pub(super) fn split_reference(reference: &str) -> (String, Option<String>) {
    let reference = reference.split('@').next().unwrap_or(reference);
    let (repo, tag) = match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (reference, None),
    };
    let name = repo.rsplit('/').next().unwrap_or(repo);
    (sanitize_name(name), tag.map(sanitize_tag))
}

/// The name and tag of an OCI index entry: from `io.containerd.image.name`, else from
/// `org.opencontainers.image.ref.name` (a tag, or a `NAME:TAG` as the store writes),
/// else `stem:latest`.
pub(super) fn oci_entry_name(entry: &Descriptor, stem: &str) -> (String, String) {
    if let Some(full) = entry.annotations.get(ANNOTATION_CONTAINERD_NAME) {
        let (name, tag) = split_reference(full);
        return (name, tag.unwrap_or_else(|| DEFAULT_TAG.to_string()));
    }
    match entry.annotations.get(ANNOTATION_REF_NAME) {
        Some(reference) if reference.contains([':', '/']) => {
            let (name, tag) = split_reference(reference);
            (name, tag.unwrap_or_else(|| DEFAULT_TAG.to_string()))
        }
        Some(tag) => (stem.to_string(), sanitize_tag(tag)),
        None => (stem.to_string(), DEFAULT_TAG.to_string()),
    }
}

/// A store name from a file or directory name: `demo.tar.gz` is `demo`.
pub(super) fn stem(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = file.as_str();
    for ext in [".gz", ".tgz", ".tar"] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    sanitize_name(stem)
}

fn sanitize_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "image".to_string()
    } else {
        name
    }
}

fn sanitize_tag(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if tag.is_empty() {
        DEFAULT_TAG.to_string()
    } else {
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_store_names() {
        let split = |r: &str| split_reference(r);
        assert_eq!(split("demo:v1"), ("demo".into(), Some("v1".into())));
        assert_eq!(
            split("docker.io/library/alpine:3.19"),
            ("alpine".into(), Some("3.19".into()))
        );
        assert_eq!(split("localhost:5000/x/App"), ("app".into(), None));
        assert_eq!(
            split("demo:v1@sha256:0123"),
            ("demo".into(), Some("v1".into()))
        );
    }

    #[test]
    fn stems_drop_archive_extensions() {
        assert_eq!(stem(Path::new("/tmp/My Image.tar.gz")), "my-image");
        assert_eq!(stem(Path::new("out/layout")), "layout");
        assert_eq!(stem(Path::new("/")), "image");
    }
}
