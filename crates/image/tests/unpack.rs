//! Layer extraction: malicious layers are refused and nothing lands outside `dest`;
//! valid layers unpack faithfully into an overlayfs lower directory.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use kiln_image::{EntryProblem, PathProblem, UnpackError, UnpackLimits, check_layer, unpack_layer};
use tar::{EntryType, Header};

/// Writes tar entries with raw headers, so that names the tar crate would refuse
/// (`..`, absolute) can be written too.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h
    }

    fn add(&mut self, mut h: Header, data: &[u8]) -> &mut Layer {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Layer {
        let h = Layer::header(name, EntryType::Regular, data.len() as u64, 0o644);
        self.add(h, data)
    }

    fn file_with(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        mtime: u64,
    ) -> &mut Layer {
        let mut h = Layer::header(name, EntryType::Regular, data.len() as u64, mode);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(mtime);
        self.add(h, data)
    }

    fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Layer {
        let mut h = Layer::header(name, EntryType::Directory, 0, mode);
        h.set_mtime(mtime);
        self.add(h, b"")
    }

    fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut Layer {
        let mut h = Layer::header(name, kind, 0, 0o777);
        h.set_link_name_literal(target).unwrap();
        self.add(h, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Symlink, name, target)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Link, name, target)
    }

    fn node(&mut self, name: &str, kind: EntryType) -> &mut Layer {
        let mut h = Layer::header(name, kind, 0, 0o600);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        self.add(h, b"")
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// A temporary directory holding `dest`, to show that nothing is written beside it.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("dest")).unwrap();
        Sandbox { tmp }
    }

    fn dest(&self) -> std::path::PathBuf {
        self.tmp.path().join("dest")
    }

    fn assert_only_dest(&self) {
        let names: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["dest"], "something was written beside dest");
    }
}

fn limits() -> UnpackLimits {
    UnpackLimits::default()
}

/// Unpacks and checks `tar`; both must fail with the same message, which must name
/// `entry`. Returns the unpack error.
fn refused(tar: &[u8], entry: &str) -> UnpackError {
    let sandbox = Sandbox::new();
    let err = unpack_layer(tar, &sandbox.dest(), &limits()).unwrap_err();
    let checked = check_layer(tar, &limits()).unwrap_err();
    assert_eq!(err.to_string(), checked.to_string());
    assert!(
        err.to_string().contains(&format!("layer entry {entry:?}")),
        "error does not name {entry:?}: {err}"
    );
    sandbox.assert_only_dest();
    err
}

fn problem(err: &UnpackError) -> &EntryProblem {
    match err {
        UnpackError::Refused { problem, .. } => problem,
        other => panic!("expected a refused entry, got {other}"),
    }
}

#[test]
fn parent_dir_escape_is_refused() {
    let err = refused(&Layer::new().file("../evil", b"x").bytes(), "../evil");
    assert_eq!(problem(&err), &EntryProblem::Path(PathProblem::DotDot));
    assert_eq!(
        err.to_string(),
        r#"layer entry "../evil": path escapes the root (it has a `..` component)"#
    );
    let err = refused(&Layer::new().file("a/../../x", b"x").bytes(), "a/../../x");
    assert_eq!(problem(&err), &EntryProblem::Path(PathProblem::DotDot));
    // Even a `..` that stays inside is refused.
    refused(&Layer::new().file("./a/../b", b"x").bytes(), "./a/../b");
}

#[test]
fn absolute_path_is_refused() {
    let name = format!("/tmp/kiln-unpack-abs-{}", std::process::id());
    let err = refused(&Layer::new().file(&name, b"x").bytes(), &name);
    assert_eq!(problem(&err), &EntryProblem::Path(PathProblem::Absolute));
    assert!(!Path::new(&name).exists());
}

#[test]
fn empty_name_is_refused() {
    let err = refused(&Layer::new().file("", b"x").bytes(), "");
    assert_eq!(problem(&err), &EntryProblem::Path(PathProblem::Empty));
}

#[test]
fn escaping_symlink_is_refused() {
    let tar = Layer::new()
        .symlink("link", "../../..")
        .file("link/x", b"x")
        .bytes();
    let err = refused(&tar, "link");
    assert_eq!(
        problem(&err),
        &EntryProblem::SymlinkEscapes("../../..".into())
    );
    let tar = Layer::new().symlink("a/b/link", "../../../etc").bytes();
    refused(&tar, "a/b/link");
}

#[test]
fn entry_through_a_symlink_is_refused() {
    // The absolute target is fine inside a container; writing through it is not.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let tar = Layer::new()
        .symlink("link", &target)
        .file("link/x", b"pwned")
        .bytes();
    let err = refused(&tar, "link/x");
    assert_eq!(problem(&err), &EntryProblem::ThroughSymlink("link".into()));
    assert!(
        err.to_string()
            .contains("path goes through a symbolic link"),
        "{err}"
    );
    assert!(!outside.path().join("x").exists());

    let tar = Layer::new()
        .dir("d/", 0o755, 0)
        .symlink("d/sub", "..")
        .file("d/sub/x", b"x")
        .bytes();
    refused(&tar, "d/sub/x");
    let tar = Layer::new().file("f", b"x").file("f/x", b"x").bytes();
    let err = refused(&tar, "f/x");
    assert_eq!(
        problem(&err),
        &EntryProblem::ThroughNonDirectory("f".into())
    );
}

#[test]
fn replacing_a_symlink_never_writes_through_it() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"original").unwrap();
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .symlink("a", victim.to_str().unwrap())
        .file("a", b"pwned")
        .bytes();
    unpack_layer(&tar[..], &sandbox.dest(), &limits()).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    let a = sandbox.dest().join("a");
    assert!(fs::symlink_metadata(&a).unwrap().is_file());
    assert_eq!(fs::read(&a).unwrap(), b"pwned");
    sandbox.assert_only_dest();
}

#[test]
fn bad_hard_links_are_refused() {
    let err = refused(
        &Layer::new().hardlink("passwd", "/etc/passwd").bytes(),
        "passwd",
    );
    assert_eq!(
        problem(&err),
        &EntryProblem::HardLinkTarget {
            target: "/etc/passwd".into(),
            problem: PathProblem::Absolute
        }
    );
    let err = refused(&Layer::new().hardlink("x", "../../etc/passwd").bytes(), "x");
    assert!(matches!(
        problem(&err),
        EntryProblem::HardLinkTarget {
            problem: PathProblem::DotDot,
            ..
        }
    ));
    let err = refused(&Layer::new().hardlink("x", "missing").bytes(), "x");
    assert_eq!(
        problem(&err),
        &EntryProblem::HardLinkMissing("missing".into())
    );
    // The target must come earlier, and a directory is no target.
    let tar = Layer::new().hardlink("x", "y").file("y", b"y").bytes();
    refused(&tar, "x");
    let tar = Layer::new().dir("d/", 0o755, 0).hardlink("x", "d").bytes();
    refused(&tar, "x");
    let tar = Layer::new().file("x", b"x").hardlink("x", "x").bytes();
    refused(&tar, "x");
}

#[test]
fn device_nodes_are_refused() {
    let err = refused(
        &Layer::new().node("dev/null", EntryType::Char).bytes(),
        "dev/null",
    );
    assert_eq!(problem(&err), &EntryProblem::Device);
    let err = refused(
        &Layer::new().node("dev/sda", EntryType::Block).bytes(),
        "dev/sda",
    );
    assert_eq!(problem(&err), &EntryProblem::Device);
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let zeros = vec![0u8; 10 << 20];
    let tar = Layer::new().file("bomb", &zeros).bytes();
    let small = UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };
    // Compressed, the bomb is tiny; the limit applies to what it expands to.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 100_000);
    let sandbox = Sandbox::new();
    let err = unpack_layer(
        flate2::read::GzDecoder::new(&gz[..]),
        &sandbox.dest(),
        &small,
    )
    .unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManyBytes(n) if n == 1 << 20),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "layer exceeds the unpack limit of 1048576 bytes (KILN_UNPACK_MAX_BYTES)"
    );
    assert!(
        !sandbox.dest().join("bomb").exists(),
        "the bomb was written before the check"
    );
    let err = check_layer(flate2::read::GzDecoder::new(&gz[..]), &small).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyBytes(_)), "{err}");

    // Many small entries: the headers alone pass the byte limit.
    let mut many = Layer::new();
    for i in 0..3000 {
        many.file(&format!("f{i}"), b"");
    }
    let many_entries = UnpackLimits {
        max_entries: 10_000,
        ..small
    };
    let err = check_layer(&many.bytes()[..], &many_entries).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyBytes(_)), "{err}");

    let mut many = Layer::new();
    for i in 0..101 {
        many.file(&format!("f{i}"), b"");
    }
    let err = check_layer(&many.bytes()[..], &small).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyEntries(100)), "{err}");
}

#[test]
fn truncated_tar_is_an_error() {
    let tar = Layer::new().file("a", &[7u8; 4096]).bytes();
    let err = check_layer(&tar[..1500], &limits()).unwrap_err();
    assert!(matches!(err, UnpackError::Read(_)), "{err}");
}

#[test]
fn whiteouts_modes_links_and_owners_unpack_faithfully() {
    let sandbox = Sandbox::new();
    let dest = sandbox.dest();
    let long_name = format!("deep/{}/file", "n".repeat(150));
    let mut layer = Layer::new();
    layer
        .dir("./", 0o755, 42)
        .dir("etc/", 0o750, 1_600_000_000)
        .file_with("etc/passwd", b"old", 0o600, 0, 5)
        .file_with("etc/passwd", b"root:x:0:0\n", 0o644, 1000, 1_700_000_000)
        .file_with("bin/su", b"su", 0o4755, 0, 7)
        .hardlink("bin/su2", "bin/su")
        .symlink("bin/sh", "/bin/busybox")
        .symlink("lib", "usr/lib")
        .file(".wh.gone", b"")
        .file("etc/.wh.shadow", b"")
        .file("var/.wh..wh..opq", b"")
        .dir("var/", 0o1777, 9)
        .file("var/new", b"new")
        .file(".wh..wh.plnk/123.456", b"aufs");
    let mut fifo = Layer::header("run/fifo", EntryType::Fifo, 0, 0o640);
    fifo.set_mtime(11);
    layer.add(fifo, b"");
    let mut tar = layer.bytes();
    // A GNU long name, written by the tar crate's own builder.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    builder
        .append_data(&mut h, &long_name, &b"long"[..])
        .unwrap();
    let long = builder.into_inner().unwrap();
    tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks
    tar.extend_from_slice(&long);

    let stats = unpack_layer(&tar[..], &dest, &limits()).unwrap();
    assert_eq!(stats.entries, 16);
    assert_eq!(stats.bytes, tar.len() as u64);
    assert_eq!(check_layer(&tar[..], &limits()).unwrap(), stats);

    let meta = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap();
    assert_eq!(fs::read(dest.join("etc/passwd")).unwrap(), b"root:x:0:0\n");
    let passwd = meta("etc/passwd");
    assert_eq!(passwd.permissions().mode() & 0o7777, 0o644);
    assert_eq!((passwd.uid(), passwd.gid()), (1000, 1001));
    assert_eq!(passwd.mtime(), 1_700_000_000);
    assert_eq!(meta("etc").permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        meta("etc").mtime(),
        1_600_000_000,
        "dir mtime set after its children"
    );
    assert_eq!(meta("").mtime(), 42);
    assert_eq!(meta("bin/su").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(meta("bin/su").ino(), meta("bin/su2").ino());
    assert_eq!(
        fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::read_link(dest.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert!(meta("run/fifo").file_type().is_fifo());
    assert_eq!(meta("run/fifo").permissions().mode() & 0o7777, 0o640);
    for whiteout in ["gone", "etc/shadow"] {
        let m = meta(whiteout);
        assert!(m.file_type().is_char_device(), "{whiteout} is no whiteout");
        assert_eq!(m.rdev(), 0);
    }
    assert!(!dest.join(".wh.gone").exists());
    assert!(
        !dest.join(".wh..wh.plnk").exists(),
        "aufs metadata is skipped"
    );
    let mut value = [0u8; 8];
    let n = rustix::fs::getxattr(dest.join("var"), "trusted.overlay.opaque", &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
    assert_eq!(meta("var").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(fs::read(dest.join(&long_name)).unwrap(), b"long");
    sandbox.assert_only_dest();
}

/// The unpacked directory works as an overlayfs lower layer: its whiteouts hide files
/// of the layer below and its opaque directory hides that layer's directory contents.
#[test]
fn unpacked_layers_stack_in_overlayfs() {
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, mnt) = (
        tmp.path().join("l1"),
        tmp.path().join("l2"),
        tmp.path().join("m"),
    );
    for d in [&lower, &upper, &mnt] {
        fs::create_dir(d).unwrap();
    }
    let base = Layer::new()
        .file("etc/shadow", b"secret")
        .file("etc/hosts", b"hosts")
        .file("var/old", b"old")
        .bytes();
    unpack_layer(&base[..], &lower, &limits()).unwrap();
    let top = Layer::new()
        .file("etc/.wh.shadow", b"")
        .file("var/.wh..wh..opq", b"")
        .file("var/new", b"new")
        .bytes();
    unpack_layer(&top[..], &upper, &limits()).unwrap();

    let options = format!("lowerdir={}:{}", upper.display(), lower.display());
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&mnt)
        .status()
        .expect("mount not found");
    assert!(status.success(), "mounting overlayfs failed (needs root)");
    let seen = (
        mnt.join("etc/shadow").exists(),
        mnt.join("etc/hosts").exists(),
        mnt.join("var/old").exists(),
        fs::read(mnt.join("var/new")).ok(),
    );
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(seen, (false, true, false, Some(b"new".to_vec())));
}
