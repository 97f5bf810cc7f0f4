//! Shared helpers: a context dir, a store, the kiln binary, and cleanup guards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub use crate::host::{busybox_path, require};

/// A test's private world: a context dir and a KILN_HOME, removed on drop.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        World {
            dir: tempfile::Builder::new()
                .prefix("kiln-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ctx(&self) -> PathBuf {
        self.path().join("ctx")
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// Writes kiln.toml (and creates the context).
    pub fn spec(&self, toml: &str) -> PathBuf {
        self.spec_in(&self.ctx(), toml)
    }

    pub fn spec_in(&self, ctx: &Path, toml: &str) -> PathBuf {
        fs::create_dir_all(ctx).unwrap();
        let p = ctx.join("kiln.toml");
        fs::write(&p, toml).unwrap();
        p
    }

    /// Copies Debian's static busybox into the context as `busybox`.
    pub fn busybox(&self, ctx: &Path) {
        fs::create_dir_all(ctx).unwrap();
        fs::copy(busybox_path(), ctx.join("busybox")).unwrap();
    }

    pub fn kiln(&self, args: &[&str]) -> Output {
        self.kiln_home(&self.home(), args)
    }

    pub fn kiln_home(&self, home: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--home")
            .arg(home)
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// Runs a kiln command and returns its stdout, failing with both streams otherwise.
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "kiln failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// The failure message of a kiln command that must fail.
pub fn fails(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "kiln succeeded but should have failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

/// The digest from a build's `NAME:TAG sha256:…` line for `name`.
pub fn digest_of(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"))
        .to_string()
}

/// Runs a command, asserting success, returning stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A runc container started by a test, deleted on drop even when the test fails.
pub struct Runc {
    pub root: PathBuf,
    pub id: String,
}

impl Runc {
    pub fn new(root: &Path) -> Runc {
        Runc {
            root: root.to_path_buf(),
            id: format!(
                "kiln-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// `umoci unpack`s `image` (`DIR:REF`) into `bundle`, turns the terminal off and runs
    /// it to completion, returning its stdout.
    pub fn run_image(&self, image: &str, bundle: &Path) -> String {
        run(Command::new("umoci")
            .args(["unpack", "--image", image])
            .arg(bundle));
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = serde_json::Value::Bool(false);
        fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        run(Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&self.id))
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The entries of a gzip layer blob: (path, type byte, size).
pub fn layer_entries(blob: &Path) -> Vec<(String, char, u64)> {
    let f = fs::File::open(blob).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).to_string(),
                e.header().entry_type().as_byte() as char,
                e.header().size().unwrap(),
            )
        })
        .collect()
}

/// The manifest (as JSON) of `digest` in the store at `home`.
pub fn manifest(home: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&fs::read(home.join("store/blobs/sha256").join(hex)).unwrap()).unwrap()
}

pub fn blob_path(home: &Path, digest: &str) -> PathBuf {
    home.join("store/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}
