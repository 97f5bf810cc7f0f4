//! Hostile bases are refused with the entry named, and nothing lands outside the store.

use std::fs;
use std::io::Write;

use super::harness::*;

/// A tar with one raw header whose name is written byte for byte (the tar crate refuses
/// to write `..` or absolute names, which is exactly what we need here).
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn refused(entries: &[(&str, u8, &str, &[u8])], gzip: bool, expect: &str) {
    let w = World::new();
    let spec = w.spec(
        r#"
[image.evil]
from = "rootfs:base.tar"
"#,
    );
    let mut bytes = raw_tar(entries);
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        bytes = enc.finish().unwrap();
    }
    fs::write(w.ctx().join("base.tar"), bytes).unwrap();
    let err = fails(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(err.contains(expect), "expected {expect:?} in:\n{err}");
    // Nothing outside the store: the world holds only the context and the store.
    let mut top: Vec<_> = fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    top.sort();
    assert_eq!(top, vec!["ctx", "home"]);
    let mut ctx: Vec<_> = fs::read_dir(w.ctx())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    ctx.sort();
    assert_eq!(ctx, vec!["base.tar", "kiln.toml"]);
    assert!(!std::path::Path::new("/tmp/kiln-evil-escape").exists());
    let images = ok(w.kiln(&["images", "--output", "json"]));
    assert_eq!(images.trim(), "[]", "nothing was tagged");
}

#[test]
fn a_dot_dot_entry_is_refused() {
    refused(&[("../evil", b'0', "", b"x")], false, "../evil");
}

#[test]
fn an_absolute_entry_is_refused() {
    refused(
        &[("/tmp/kiln-evil-escape", b'0', "", b"x")],
        true,
        "/tmp/kiln-evil-escape",
    );
}

#[test]
fn a_symlink_escape_is_refused() {
    refused(
        &[
            ("link", b'2', "../../../../../../tmp", b""),
            ("link/kiln-evil-escape", b'0', "", b"x"),
        ],
        false,
        "layer entry \"link\": symbolic link target \"../../../../../../tmp\" escapes the root",
    );
}

#[test]
fn a_device_node_is_refused() {
    refused(&[("dev/sda", b'4', "", b"")], false, "dev/sda");
}

#[test]
fn a_decompression_bomb_is_capped() {
    let w = World::new();
    let spec = w.spec("[image.bomb]\nfrom = \"rootfs:bomb.tar.gz\"\n");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    enc.write_all(h.as_bytes()).unwrap();
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    fs::write(w.ctx().join("bomb.tar.gz"), enc.finish().unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--home")
        .arg(w.home())
        .args(["build", "-f", spec.to_str().unwrap()])
        .env("KILN_UNPACK_MAX_BYTES", (8u64 << 20).to_string())
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("KILN_UNPACK_MAX_BYTES"), "{err}");
}

#[test]
fn spec_errors_name_the_file_and_line() {
    let w = World::new();
    let spec = w.spec("[image.a]\nentrypont = [\"/x\"]\n");
    let err = fails(w.kiln(&["check", "-f", spec.to_str().unwrap()]));
    assert!(err.contains("kiln.toml:2:"), "{err}");
    assert!(
        err.contains("entrypoint"),
        "the hint names the right key: {err}"
    );
    let spec =
        w.spec("[image.a]\n[[image.a.step]]\ncopy = \"/x\"\nfrom_image = \"nope\"\nto = \"/y\"\n");
    let err = fails(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(
        err.contains("kiln.toml:4:") && err.contains("nope"),
        "{err}"
    );
    assert!(
        !w.home().join("store").exists() || ok(w.kiln(&["images", "-o", "json"])).trim() == "[]"
    );
}
