//! Helpers: a store with a small image in it, hand-made layouts and archives, tools.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_image::oci::{
    ANNOTATION_REF_NAME, ContainerConfig, Descriptor, ImageConfig, Index, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST, Manifest, Platform, RootFs, canonical_json,
};
use kiln_image::{Digest, EntryKind, FileSource, LayerEntry, Store};
use tar::{EntryType, Header};

pub const EPOCH: u64 = 1_700_000_000;
pub const NAME: &str = "demo";
pub const TAG: &str = "v1";

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: EPOCH - 10,
    }
}

fn bytes(path: &str, content: &str, mode: u32) -> LayerEntry {
    let source = FileSource::Bytes(content.into());
    entry(path, EntryKind::File { source }, mode)
}

pub fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

pub fn config(diff_ids: Vec<Digest>) -> ImageConfig {
    ImageConfig {
        created: None,
        author: None,
        architecture: host_arch().into(),
        os: "linux".into(),
        config: ContainerConfig {
            cmd: Some(vec!["/bin/hello".into()]),
            ..Default::default()
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history: Vec::new(),
    }
}

/// Stores and tags `demo:v1`: two layers, the second with a whiteout and an opaque
/// directory. Returns the manifest descriptor.
pub fn demo_image(store: &Store) -> Descriptor {
    let base = vec![
        entry("bin", EntryKind::Dir { opaque: false }, 0o755),
        bytes("bin/hello", "#!/bin/sh\necho hello\n", 0o755),
        bytes("etc/motd", "welcome\n", 0o644),
        bytes("etc/old", "old\n", 0o644),
        entry(
            "usr/bin/hi",
            EntryKind::Symlink {
                target: "/bin/hello".into(),
            },
            0o777,
        ),
    ];
    let top = vec![
        entry("etc/old", EntryKind::Whiteout, 0),
        entry("var/cache", EntryKind::Dir { opaque: true }, 0o755),
        bytes("var/cache/new", "new\n", 0o600),
    ];
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in [base, top] {
        let info = store.write_layer(entries, EPOCH).unwrap();
        layers.push(descriptor(MEDIA_TYPE_LAYER_GZIP, info.digest, info.size));
        diff_ids.push(info.diff_id);
    }
    let manifest = store.put_image(&config(diff_ids), layers).unwrap();
    store.tag(NAME, TAG, &manifest).unwrap();
    manifest
}

/// Panics, telling how to install it, unless `tool` is on the PATH.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{tool} not found: apt-get install -y {package}"
    );
    PathBuf::from(String::from_utf8(found.stdout).unwrap().trim())
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A layer tar with raw headers, so names the tar crate refuses can be written.
#[derive(Default)]
pub struct RawTar {
    out: Vec<u8>,
}

impl RawTar {
    pub fn entry(&mut self, name: &str, kind: EntryType, link: &str, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if !link.is_empty() {
            h.set_link_name_literal(link).unwrap();
        }
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EntryType::Regular, "", data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Writes an OCI layout by hand.
pub struct HandLayout {
    pub dir: PathBuf,
}

impl HandLayout {
    pub fn new(dir: &Path) -> HandLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        HandLayout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = Digest::of(bytes);
        fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        descriptor(media_type, digest, bytes.len() as u64)
    }

    /// Stores an image of these uncompressed layer tars (gzipped); returns its manifest.
    pub fn image(&self, tars: &[Vec<u8>]) -> Descriptor {
        let layers = tars
            .iter()
            .map(|t| self.blob(MEDIA_TYPE_LAYER_GZIP, &gzip(t)))
            .collect();
        let config = config(tars.iter().map(|t| Digest::of(t)).collect());
        let config = self.blob(MEDIA_TYPE_CONFIG, &canonical_json(&config));
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.into()),
            config,
            layers,
            annotations: BTreeMap::new(),
        };
        self.blob(MEDIA_TYPE_MANIFEST, &canonical_json(&manifest))
    }

    /// Writes `index.json` listing `entries`, each with its ref name (if any).
    pub fn index(&self, entries: &[(Descriptor, Option<&str>)]) {
        let manifests = entries
            .iter()
            .map(|(d, name)| {
                let mut d = d.clone();
                if let Some(name) = name {
                    d.annotations
                        .insert(ANNOTATION_REF_NAME.into(), name.to_string());
                }
                d
            })
            .collect();
        fs::write(
            self.dir.join("index.json"),
            canonical_json(&Index::new(manifests)),
        )
        .unwrap();
    }
}

pub fn platform(arch: &str) -> Platform {
    Platform {
        architecture: arch.into(),
        os: "linux".into(),
    }
}

/// Tars a directory (sorted, with the tar crate) into `dest`.
pub fn tar_dir(dir: &Path, dest: &Path) {
    let mut builder = tar::Builder::new(fs::File::create(dest).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

/// A docker-archive by hand: `manifest.json`, the config, uncompressed layers.
pub fn docker_archive(dest: &Path, tars: &[Vec<u8>], repo_tags: Option<&[&str]>) {
    let mut out = tar::Builder::new(fs::File::create(dest).unwrap());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        out.append(&h, data).unwrap();
    };
    let config = canonical_json(&config(tars.iter().map(|t| Digest::of(t)).collect()));
    let config_file = format!("{}.json", Digest::of(&config).hex());
    add(&config_file, &config);
    let mut layers = Vec::new();
    for tar in tars {
        let path = format!("{}/layer.tar", Digest::of(tar).hex());
        add(&path, tar);
        layers.push(path);
    }
    let mut manifest = serde_json::json!([{ "Config": config_file, "Layers": layers }]);
    if let Some(tags) = repo_tags {
        manifest[0]["RepoTags"] = serde_json::json!(tags);
    }
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    out.finish().unwrap();
}
