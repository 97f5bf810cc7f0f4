//! The store under concurrent writers, corrupted blobs, and the default tag.

use std::fs;
use std::process::Command;

use super::harness::*;

const SPEC: &str = r#"
[image.one]
[[image.one.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.one.step]]
copy = "data"
to = "/data"
"#;

#[test]
fn two_builds_at_once_into_one_store_both_succeed_and_agree() {
    let w = World::new();
    let spec = w.spec(SPEC);
    w.busybox(&w.ctx());
    fs::create_dir_all(w.ctx().join("data")).unwrap();
    for i in 0..200 {
        fs::write(w.ctx().join(format!("data/f{i}")), format!("file {i}\n")).unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_kiln");
    let spawn = |tag: &str| {
        Command::new(bin)
            .arg("--home")
            .arg(w.home())
            .args(["build", "-f", spec.to_str().unwrap(), "--tag", tag])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("a"));
        let b = s.spawn(|| spawn("b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, b) = (ok(a), ok(b));
    assert_eq!(digest_of(&a, "one"), digest_of(&b, "one"));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(w.home().join("store/index.json")).unwrap()).unwrap();
    let refs: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = refs.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["one:a", "one:b"]);
}

#[test]
fn a_corrupted_blob_is_an_error_and_never_used() {
    let w = World::new();
    let spec = w.spec(SPEC);
    w.busybox(&w.ctx());
    fs::create_dir_all(w.ctx().join("data")).unwrap();
    fs::write(w.ctx().join("data/x"), "x").unwrap();
    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "t"]));
    let m = manifest(&w.home(), &digest_of(&out, "one"));
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = blob_path(&w.home(), &layer);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let dest = w.path().join("out");
    let err = fails(w.kiln(&[
        "export",
        "one:t",
        "--format",
        "oci-dir",
        "--dest",
        dest.to_str().unwrap(),
    ]));
    assert!(err.contains(layer.trim_start_matches("sha256:")), "{err}");
}

#[test]
fn the_default_tag_is_the_git_short_commit_and_dirty_when_modified() {
    require(&["git"]);
    let w = World::new();
    let spec = w.spec("[image.g]\n[[image.g.step]]\ncopy = \"a.txt\"\nto = \"/a.txt\"\n");
    fs::write(w.ctx().join("a.txt"), "a").unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(w.ctx())
            .args(["-c", "user.name=kiln", "-c", "user.email=kiln@localhost"])
            .args(args))
    };
    let outside = ok(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(outside.starts_with("g:latest "), "{outside}");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    let short = git(&["rev-parse", "--short", "HEAD"]).trim().to_string();
    let clean = ok(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(clean.starts_with(&format!("g:{short} ")), "{clean}");
    fs::write(w.ctx().join("a.txt"), "b").unwrap();
    let dirty = ok(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(dirty.starts_with(&format!("g:{short}-dirty ")), "{dirty}");
}
