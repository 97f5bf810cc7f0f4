//! Runs real steps in the sandbox: needs root, runc and Debian's static busybox.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_runtime::{RuntimeError, Sandbox, SandboxSpec};
use rustix::fs::{CWD, FileType, Mode};
use tempfile::TempDir;

const BUSYBOX: &str = "/bin/busybox";

/// Panics, saying what is missing, unless the host can run the sandbox.
fn require_host() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the sandbox tests need root: they mount overlays and run runc"
    );
    assert!(
        runc().is_some(),
        "the sandbox tests need runc: apt-get install -y runc"
    );
    let busybox = Command::new("file").arg(BUSYBOX).output().ok();
    let is_static = fs::metadata(BUSYBOX).is_ok()
        && busybox
            .is_none_or(|out| String::from_utf8_lossy(&out.stdout).contains("statically linked"));
    assert!(
        is_static,
        "the sandbox tests need a static {BUSYBOX}: apt-get install -y busybox-static"
    );
}

fn runc() -> Option<PathBuf> {
    [
        "/usr/local/sbin/runc",
        "/usr/sbin/runc",
        "/sbin/runc",
        "/usr/bin/runc",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
}

/// A per-test directory with layers, an upper directory, scratch and runc state.
struct Fixture {
    base: TempDir,
}

impl Fixture {
    fn new() -> Self {
        require_host();
        let fixture = Fixture {
            base: tempfile::tempdir().unwrap(),
        };
        fs::create_dir(fixture.upper()).unwrap();
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.base.path().join(name)
    }

    fn upper(&self) -> PathBuf {
        self.path("upper")
    }

    fn runc_root(&self) -> PathBuf {
        self.path("runc")
    }

    fn sandbox(&self) -> Sandbox {
        Sandbox::new(self.runc_root(), self.path("scratch"))
    }

    /// A lower layer `name` holding busybox as /bin/busybox.
    fn busybox_layer(&self, name: &str) -> PathBuf {
        let layer = self.path(name);
        fs::create_dir_all(layer.join("bin")).unwrap();
        fs::copy(BUSYBOX, layer.join("bin/busybox")).unwrap();
        layer
    }

    fn spec(&self, lowerdirs: Vec<PathBuf>, script: &str) -> SandboxSpec {
        SandboxSpec {
            lowerdirs,
            upperdir: self.upper(),
            args: ["busybox", "sh", "-c", script].map(str::to_owned).to_vec(),
            env: vec!["PATH=/bin".to_owned()],
            cwd: "/".to_owned(),
            user: (0, 0),
            network: false,
            hostname: "kiln-test".to_owned(),
        }
    }

    /// Every path in the upper directory, relative to it.
    fn upper_entries(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        walk(&self.upper(), "", &mut found);
        found
    }

    fn upper_file(&self, name: &str) -> String {
        fs::read_to_string(self.upper().join(name)).unwrap()
    }

    /// Asserts that no container, mount or bundle is left behind.
    fn assert_no_leaks(&self) {
        let list = Command::new(runc().unwrap())
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "--quiet"])
            .output()
            .unwrap();
        assert!(list.status.success(), "runc list failed: {list:?}");
        assert_eq!(
            String::from_utf8_lossy(&list.stdout).trim(),
            "",
            "containers left"
        );
        let base = self.base.path().to_str().unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<_> = mountinfo
            .lines()
            .filter(|line| line.contains(base))
            .collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:#?}");
        let scratch: Vec<_> = fs::read_dir(self.path("scratch")).unwrap().collect();
        assert!(scratch.is_empty(), "scratch left: {scratch:?}");
    }
}

fn walk(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            walk(&entry.path(), &format!("{name}/"), found);
        }
        found.insert(name);
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Makes an overlay whiteout (char device 0/0) at `path`.
fn whiteout(path: &Path) {
    rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
}

fn is_whiteout(path: &Path) -> bool {
    let meta = fs::symlink_metadata(path).unwrap();
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Interface names listed in a /proc/net/dev dump.
fn interfaces(net_dev: &str) -> BTreeSet<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn changes_and_deletions_land_in_the_upperdir() {
    let f = Fixture::new();
    let lower = f.busybox_layer("lower");
    fs::write(lower.join("old"), "old").unwrap();
    fs::create_dir(lower.join("etc")).unwrap();
    let spec = f.spec(vec![lower], "echo hi > /x; rm /old");
    f.sandbox().run(&spec).unwrap();
    assert_eq!(f.upper_entries(), set(&["old", "x"]));
    assert_eq!(f.upper_file("x"), "hi\n");
    assert!(is_whiteout(&f.upper().join("old")));
    f.assert_no_leaks();
}

#[test]
fn a_failing_step_reports_its_exit_code() {
    let f = Fixture::new();
    let spec = f.spec(vec![f.busybox_layer("lower")], "echo partial > /p; exit 3");
    match f.sandbox().run(&spec) {
        Err(RuntimeError::StepFailed { code, args }) => {
            assert_eq!(code, 3);
            assert_eq!(args, spec.args);
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert_eq!(f.upper_entries(), set(&["p"]));
    f.assert_no_leaks();
}

#[test]
fn a_missing_executable_is_a_runc_error() {
    let f = Fixture::new();
    // A scratch image: nothing to run.
    let spec = f.spec(Vec::new(), "true");
    match f.sandbox().run(&spec) {
        Err(RuntimeError::Runc { message, .. }) => {
            assert!(message.contains("busybox"), "unexpected message: {message}");
        }
        other => panic!("expected a runc error, got {other:?}"),
    }
    assert_eq!(f.upper_entries(), set(&[]));
    f.assert_no_leaks();
}

#[test]
fn without_network_only_loopback_exists() {
    let f = Fixture::new();
    let spec = f.spec(
        vec![f.busybox_layer("lower")],
        "cat /proc/net/dev > /net_dev; ls /sys/class/net > /sys_net; hostname > /hostname",
    );
    f.sandbox().run(&spec).unwrap();
    assert_eq!(interfaces(&f.upper_file("net_dev")), set(&["lo"]));
    assert_eq!(f.upper_file("sys_net"), "lo\n");
    assert_eq!(f.upper_file("hostname"), "kiln-test\n");
    assert_eq!(f.upper_entries(), set(&["hostname", "net_dev", "sys_net"]));
    f.assert_no_leaks();
}

#[test]
fn with_network_the_host_namespace_and_resolver_are_used() {
    let f = Fixture::new();
    let lower = f.busybox_layer("lower");
    fs::create_dir(lower.join("etc")).unwrap();
    fs::set_permissions(lower.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = f.spec(
        vec![lower],
        "cat /proc/net/dev > /net_dev; cat /etc/resolv.conf > /resolv 2>&1; touch /sys/x 2> /dev/null || echo ro > /sys_ro",
    );
    spec.network = true;
    f.sandbox().run(&spec).unwrap();
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&f.upper_file("net_dev")), interfaces(&host));
    if let Ok(resolv) = fs::read_to_string("/etc/resolv.conf") {
        assert_eq!(f.upper_file("resolv"), resolv);
    }
    assert_eq!(f.upper_file("sys_ro"), "ro\n");
    // Neither the resolv.conf mountpoint nor the copy-up of /etc is a change.
    assert_eq!(f.upper_entries(), set(&["net_dev", "resolv", "sys_ro"]));
    f.assert_no_leaks();
}

#[test]
fn lower_layers_stack_topmost_first() {
    let f = Fixture::new();
    let base = f.busybox_layer("base");
    fs::write(base.join("gone"), "base").unwrap();
    fs::write(base.join("which"), "base").unwrap();
    let top = f.path("top");
    fs::create_dir(&top).unwrap();
    whiteout(&top.join("gone"));
    fs::write(top.join("which"), "top").unwrap();
    let spec = f.spec(
        vec![top, base],
        "test -e /gone && echo present > /result || cat /which > /result",
    );
    f.sandbox().run(&spec).unwrap();
    assert_eq!(f.upper_file("result"), "top");
    f.assert_no_leaks();
}

#[test]
fn many_long_layer_paths_still_mount() {
    let f = Fixture::new();
    let mut lowerdirs = Vec::new();
    for i in 0..60 {
        let layer = f.path(&format!("layer-{i:03}-{}", "x".repeat(80)));
        fs::create_dir(&layer).unwrap();
        fs::write(layer.join(format!("f{i}")), "").unwrap();
        lowerdirs.push(layer);
    }
    lowerdirs.push(f.busybox_layer("base"));
    let total: usize = lowerdirs.iter().map(|dir| dir.as_os_str().len() + 1).sum();
    assert!(total > 4096, "the test must exceed one page of options");
    let spec = f.spec(lowerdirs, "ls / | grep -c '^f' > /count");
    f.sandbox().run(&spec).unwrap();
    assert_eq!(f.upper_file("count"), "60\n");
    f.assert_no_leaks();
}

#[test]
fn a_missing_working_directory_is_not_a_change() {
    let f = Fixture::new();
    let lower = f.busybox_layer("lower");
    let mut spec = f.spec(vec![lower.clone()], "pwd > /pwd");
    spec.cwd = "/work/dir".to_owned();
    f.sandbox().run(&spec).unwrap();
    assert_eq!(f.upper_entries(), set(&["pwd"]));
    assert_eq!(f.upper_file("pwd"), "/work/dir\n");
    f.assert_no_leaks();

    // Output written there keeps it.
    let upper = f.upper();
    fs::remove_dir_all(&upper).unwrap();
    fs::create_dir(&upper).unwrap();
    let mut spec = f.spec(vec![lower], "echo built > out");
    spec.cwd = "/work/dir".to_owned();
    f.sandbox().run(&spec).unwrap();
    assert_eq!(
        f.upper_entries(),
        set(&["work", "work/dir", "work/dir/out"])
    );
    f.assert_no_leaks();
}

#[test]
fn the_step_runs_as_the_given_user() {
    let f = Fixture::new();
    let lower = f.busybox_layer("lower");
    fs::create_dir(lower.join("out")).unwrap();
    fs::set_permissions(lower.join("out"), fs::Permissions::from_mode(0o777)).unwrap();
    let mut spec = f.spec(
        vec![lower],
        "echo $(id -u):$(id -g) > /out/id; echo $HOME,$PATH > /out/env",
    );
    spec.user = (1000, 1001);
    spec.env = vec!["HOME=/home/u".to_owned()];
    // Without PATH in env the default one is used, which includes /bin.
    f.sandbox().run(&spec).unwrap();
    assert_eq!(f.upper_file("out/id"), "1000:1001\n");
    assert_eq!(
        f.upper_file("out/env"),
        format!("/home/u,{}\n", kiln_runtime::DEFAULT_PATH)
    );
    let meta = fs::metadata(f.upper().join("out/id")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
    f.assert_no_leaks();
}
