//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use kiln_image::oci::{Descriptor, ImageConfig, MEDIA_TYPE_LAYER_GZIP, RootFs};
use kiln_image::{EntryKind, FileSource, LayerEntry, LayerInfo, Store};

pub const EPOCH: u64 = 1_700_000_000;

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

pub fn entry(path: &str, kind: EntryKind, mode: u32, mtime: u64) -> LayerEntry {
    LayerEntry {
        path: path.into(),
        kind,
        mode,
        uid: 1000,
        gid: 1000,
        mtime,
    }
}

pub fn file(path: &str, content: &str) -> LayerEntry {
    entry(
        path,
        EntryKind::File {
            source: FileSource::Bytes(content.into()),
        },
        0o644,
        EPOCH - 10,
    )
}

pub fn dir(path: &str) -> LayerEntry {
    entry(path, EntryKind::Dir { opaque: false }, 0o755, EPOCH - 10)
}

/// The uncompressed tar of a layer blob.
pub fn layer_tar(store: &Store, info: &LayerInfo) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(store.open_blob(&info.digest).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

pub fn layer_descriptor(info: &LayerInfo) -> Descriptor {
    Descriptor {
        media_type: MEDIA_TYPE_LAYER_GZIP.into(),
        digest: info.digest.clone(),
        size: info.size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

pub fn config(diff_ids: Vec<kiln_image::Digest>) -> ImageConfig {
    ImageConfig {
        created: None,
        author: None,
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Default::default(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history: Vec::new(),
    }
}

/// Stores a one-layer image with these files and returns its manifest descriptor.
pub fn image(store: &Store, files: &[(&str, &str)]) -> (Descriptor, LayerInfo) {
    let entries = files.iter().map(|(p, c)| file(p, c)).collect();
    let info = store.write_layer(entries, EPOCH).unwrap();
    let manifest = store
        .put_image(
            &config(vec![info.diff_id.clone()]),
            vec![layer_descriptor(&info)],
        )
        .unwrap();
    (manifest, info)
}

/// Runs a system tool, panicking with a clear message if it is missing or fails.
pub fn run(tool: &str, args: &[&str], cwd: Option<&Path>) -> String {
    let mut cmd = std::process::Command::new(tool);
    cmd.args(args);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): install it (apt-get install -y skopeo umoci tar gzip)")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
