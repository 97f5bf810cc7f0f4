//! `kiln build --verify-repro`: build twice into fresh stores, compare digests, and when
//! they differ say which files differ and how.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;

use flate2::read::GzDecoder;
use kiln_image::{Digest, Store};
use kiln_spec::Spec;
use sha2::{Digest as _, Sha256};

use crate::{BuildError, BuildOptions, Builder, Progress};

/// The outcome of two independent builds.
#[derive(Debug)]
pub struct ReproReport {
    /// Per image: (name, first digest, second digest).
    pub images: Vec<(String, Digest, Digest)>,
    /// Human-readable differences, empty when every image matched.
    pub differences: Vec<String>,
}

impl ReproReport {
    pub fn reproducible(&self) -> bool {
        self.images.iter().all(|(_, a, b)| a == b)
    }
}

/// Builds `selected` twice, each time into a new store under `scratch` with no cache.
pub fn verify_repro(
    spec: &Spec,
    selected: &[String],
    opts: &BuildOptions,
    scratch: &std::path::Path,
    progress: &mut Progress,
) -> Result<ReproReport, BuildError> {
    std::fs::create_dir_all(scratch).map_err(BuildError::io(scratch))?;
    let opts = BuildOptions {
        no_cache: true,
        ..opts.clone()
    };
    let mut runs = Vec::new();
    for round in 1..=2 {
        let home = tempfile::Builder::new()
            .prefix(&format!("repro-{round}-"))
            .tempdir_in(scratch)
            .map_err(BuildError::io(scratch))?;
        progress.message(&format!(
            "verify-repro: build {round} of 2 in {}",
            home.path().display()
        ));
        let store = Store::open(home.path())?;
        let built = Builder::new(spec, &store, &opts, progress)?.build(spec, selected)?;
        runs.push((home, store, built));
    }
    let (a, b) = (&runs[0], &runs[1]);
    let mut report = ReproReport {
        images: Vec::new(),
        differences: Vec::new(),
    };
    for (x, y) in a.2.iter().zip(&b.2) {
        report.images.push((
            x.name.clone(),
            x.manifest.digest.clone(),
            y.manifest.digest.clone(),
        ));
        if x.manifest.digest != y.manifest.digest {
            report.differences.extend(diff_images(
                &x.name,
                (&a.1, &x.manifest.digest),
                (&b.1, &y.manifest.digest),
            )?);
        }
    }
    // Unmount nothing: builds leave no mounts. Remove the stores.
    drop(runs);
    Ok(report)
}

fn diff_images(
    name: &str,
    (sa, da): (&Store, &Digest),
    (sb, db): (&Store, &Digest),
) -> Result<Vec<String>, BuildError> {
    let mut out = Vec::new();
    let (ma, mb) = (sa.read_manifest(da)?, sb.read_manifest(db)?);
    if ma.config.digest != mb.config.digest {
        let ca =
            serde_json::to_value(sa.read_config(&ma.config.digest)?).expect("configs serialize");
        let cb =
            serde_json::to_value(sb.read_config(&mb.config.digest)?).expect("configs serialize");
        for key in [
            "created",
            "architecture",
            "os",
            "config",
            "rootfs",
            "history",
        ] {
            if ca.get(key) != cb.get(key) {
                out.push(format!(
                    "{name}: config `{key}` differs: {} vs {}",
                    ca.get(key).map(|v| v.to_string()).unwrap_or_default(),
                    cb.get(key).map(|v| v.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    if ma.layers.len() != mb.layers.len() {
        out.push(format!(
            "{name}: {} layers vs {}",
            ma.layers.len(),
            mb.layers.len()
        ));
    }
    for (i, (la, lb)) in ma.layers.iter().zip(&mb.layers).enumerate() {
        if la.digest == lb.digest {
            continue;
        }
        let (seq_a, seq_b) = (layer_files(sa, &la.digest)?, layer_files(sb, &lb.digest)?);
        let fa: BTreeMap<_, _> = seq_a.iter().cloned().collect();
        let fb: BTreeMap<_, _> = seq_b.iter().cloned().collect();
        if fa == fb && seq_a.len() == fa.len() && seq_b.len() == fb.len() {
            if seq_a != seq_b {
                out.push(format!(
                    "{name}: layer {}: same files in a different order",
                    i + 1
                ));
                continue;
            }
            out.push(format!(
                "{name}: layer {}: same files and metadata, but the tar or gzip bytes differ ({} vs {})",
                i + 1,
                la.digest,
                lb.digest
            ));
            continue;
        }
        for (path, a) in &fa {
            match fb.get(path) {
                None => out.push(format!("{name}: layer {}: /{path} only in build 1", i + 1)),
                Some(b) if a != b => out.push(format!(
                    "{name}: layer {}: /{path}: {}",
                    i + 1,
                    describe_difference(a, b)
                )),
                _ => {}
            }
        }
        for path in fb.keys().filter(|p| !fa.contains_key(*p)) {
            out.push(format!("{name}: layer {}: /{path} only in build 2", i + 1));
        }
        for (seq, n) in [(&seq_a, 1), (&seq_b, 2)] {
            let unique: BTreeMap<_, _> = seq.iter().cloned().collect();
            if unique.len() != seq.len() {
                out.push(format!(
                    "{name}: layer {}: build {n} has duplicate entries",
                    i + 1
                ));
            }
        }
    }
    Ok(out)
}

/// What one tar entry is, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileInfo {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    size: u64,
    link: String,
    content: String,
}

fn describe_difference(a: &FileInfo, b: &FileInfo) -> String {
    let mut s = String::new();
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            if !s.is_empty() {
                s.push_str(", ");
            }
            let _ = write!(s, "{name} {x} vs {y}");
        }
    };
    field("type", a.kind.to_string(), b.kind.to_string());
    field("mode", format!("{:o}", a.mode), format!("{:o}", b.mode));
    field("uid", a.uid.to_string(), b.uid.to_string());
    field("gid", a.gid.to_string(), b.gid.to_string());
    field("mtime", a.mtime.to_string(), b.mtime.to_string());
    field("size", a.size.to_string(), b.size.to_string());
    field("link", a.link.clone(), b.link.clone());
    field("content", a.content.clone(), b.content.clone());
    s
}

/// The entries of a layer in tar order.
fn layer_files(store: &Store, digest: &Digest) -> Result<Vec<(String, FileInfo)>, BuildError> {
    let path = store.blob_path(digest);
    let mut archive = tar::Archive::new(GzDecoder::new(store.open_blob(digest)?));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(BuildError::io(&path))? {
        let mut entry = entry.map_err(BuildError::io(&path))?;
        let h = entry.header().clone();
        let name = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).to_string())
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = entry.read(&mut buf).map_err(BuildError::io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        out.push((
            name,
            FileInfo {
                kind: h.entry_type().as_byte() as char,
                mode: h.mode().unwrap_or(0),
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0),
                size: h.size().unwrap_or(0),
                link,
                content: Digest::from_hasher(hasher).to_string(),
            },
        ));
    }
    Ok(out)
}
