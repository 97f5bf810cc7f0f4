//! Malicious or broken layouts and archives are refused, naming what is wrong, and
//! nothing is tagged.

use std::fs;
use std::path::Path;

use kiln_image::oci::{Index, MEDIA_TYPE_INDEX, canonical_json};
use kiln_image::{ImageError, Store, import, load_docker_archive_base, load_oci_base};
use tar::EntryType;

use crate::support::{
    HandLayout, RawTar, docker_archive, gzip, host_arch, platform, store, tar_dir,
};

fn evil_layer() -> Vec<u8> {
    RawTar::default()
        .file("ok", b"fine")
        .file("../evil", b"pwned")
        .finish()
}

fn assert_nothing_tagged(store: &Store) {
    assert!(store.images().unwrap().is_empty(), "something was tagged");
}

fn assert_names(err: &ImageError, what: &str) {
    assert!(
        err.to_string().contains(what),
        "error does not name {what}: {err}"
    );
}

#[test]
fn a_base_layout_with_an_escaping_entry_is_refused() {
    let (home, store) = store();
    let layout = HandLayout::new(&home.path().join("evil-layout"));
    let good = RawTar::default().file("a", b"a").finish();
    let manifest = layout.image(&[good, evil_layer()]);
    layout.index(&[(manifest, Some("v1"))]);

    let err = load_oci_base(&store, &layout.dir, Some("v1")).unwrap_err();
    assert_names(&err, r#"layer entry "../evil": path escapes the root"#);
    let err = import(&store, &layout.dir).unwrap_err();
    assert_names(&err, r#""../evil""#);
    assert_nothing_tagged(&store);

    // The same layout as an oci-archive.
    let archive = home.path().join("evil.tar");
    tar_dir(&layout.dir, &archive);
    let err = load_oci_base(&store, &archive, None).unwrap_err();
    assert_names(&err, r#""../evil""#);
    let err = import(&store, &archive).unwrap_err();
    assert_names(&err, r#""../evil""#);
    assert_nothing_tagged(&store);
    assert!(!home.path().join("evil").exists());
}

#[test]
fn a_docker_archive_with_bad_layers_is_refused() {
    let (home, store) = store();
    let cases = [
        (
            RawTar::default()
                .entry("link", EntryType::Symlink, "../../../etc", b"")
                .finish(),
            r#"layer entry "link": symbolic link target "../../../etc" escapes the root"#,
        ),
        (
            RawTar::default()
                .entry("dev/sda", EntryType::Block, "", b"")
                .finish(),
            r#"layer entry "dev/sda": device nodes are not allowed"#,
        ),
        (
            RawTar::default()
                .entry("passwd", EntryType::Link, "/etc/passwd", b"")
                .finish(),
            r#"layer entry "passwd": hard link target "/etc/passwd": path is absolute"#,
        ),
        (evil_layer(), r#"layer entry "../evil""#),
    ];
    for (i, (layer, message)) in cases.into_iter().enumerate() {
        let archive = home.path().join(format!("evil-{i}.tar"));
        docker_archive(&archive, &[layer], Some(&["evil:latest"]));
        let err = load_docker_archive_base(&store, &archive).unwrap_err();
        assert_names(&err, message);
        let err = import(&store, &archive).unwrap_err();
        assert_names(&err, message);
    }
    assert_nothing_tagged(&store);
}

#[test]
fn a_gzip_docker_archive_imports() {
    let (home, store) = store();
    let plain = home.path().join("plain.tar");
    let layer = RawTar::default().file("hello", b"hi").finish();
    docker_archive(&plain, std::slice::from_ref(&layer), None);
    let gz = home.path().join("My App.tar.gz");
    fs::write(&gz, gzip(&fs::read(&plain).unwrap())).unwrap();
    let imported = import(&store, &gz).unwrap();
    // No RepoTags: the file name, made a store name, and `latest`.
    assert_eq!(
        (imported[0].name.as_str(), imported[0].tag.as_str()),
        ("my-app", "latest")
    );
    let manifest = store.read_manifest(&imported[0].manifest.digest).unwrap();
    let config = store.read_config(&manifest.config.digest).unwrap();
    assert_eq!(config.rootfs.diff_ids, vec![kiln_image::Digest::of(&layer)]);
}

#[test]
fn archive_links_that_leave_the_archive_are_refused() {
    let (home, store) = store();
    let layer = RawTar::default().file("a", b"a").finish();
    let dir = home.path().join("docker");
    let archive = home.path().join("ok.tar");
    docker_archive(&archive, std::slice::from_ref(&layer), Some(&["x:y"]));
    fs::create_dir(&dir).unwrap();
    tar::Archive::new(fs::File::open(&archive).unwrap())
        .unpack(&dir)
        .unwrap();
    let layer_path = format!("{}/layer.tar", kiln_image::Digest::of(&layer).hex());
    let manifest = fs::read(dir.join("manifest.json")).unwrap();
    let config = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("manifest.json"))
        .unwrap();
    let config_name = config.file_name().unwrap().to_str().unwrap().to_string();
    let build = |dest: &Path, link_target: &str| {
        let mut tar = RawTar::default();
        tar.file("manifest.json", &manifest);
        tar.file(&config_name, &fs::read(&config).unwrap());
        tar.entry(&layer_path, EntryType::Symlink, link_target, b"");
        fs::write(dest, tar.finish()).unwrap();
    };
    // A symlink out of the archive, to a host file.
    let out = home.path().join("out.tar");
    build(&out, "../../../../../../etc/passwd");
    let err = import(&store, &out).unwrap_err();
    assert_names(&err, "escapes the archive");
    // An absolute one resolves inside the archive, where there is no such file.
    let abs = home.path().join("abs.tar");
    build(&abs, "/etc/passwd");
    let err = import(&store, &abs).unwrap_err();
    assert_names(&err, "is not a regular file of the archive");
    // manifest.json naming a path outside the archive.
    let mut tar = RawTar::default();
    let bad = String::from_utf8(manifest.clone())
        .unwrap()
        .replace(&layer_path, "../../../../etc/passwd");
    tar.file("manifest.json", bad.as_bytes());
    tar.file(&config_name, &fs::read(&config).unwrap());
    let bad_path = home.path().join("bad-path.tar");
    fs::write(&bad_path, tar.finish()).unwrap();
    let err = import(&store, &bad_path).unwrap_err();
    assert_names(&err, "manifest.json names a bad path");
    assert_nothing_tagged(&store);
}

#[test]
fn mismatched_digests_and_diff_ids_are_refused() {
    let (home, store) = store();
    // A config whose diff_id does not match its layer.
    let archive = home.path().join("lying.tar");
    let layer = RawTar::default().file("a", b"a").finish();
    docker_archive(&archive, &[layer], Some(&["lying:v1"]));
    let dir = home.path().join("lying");
    fs::create_dir(&dir).unwrap();
    tar::Archive::new(fs::File::open(&archive).unwrap())
        .unpack(&dir)
        .unwrap();
    let other = RawTar::default().file("b", b"b").finish();
    let layer_dir = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    fs::write(layer_dir.join("layer.tar"), other).unwrap();
    let err = import(&store, &dir).unwrap_err();
    assert_names(&err, "but the config lists");

    // A layout blob that does not hash to its name.
    let layout = HandLayout::new(&home.path().join("layout"));
    let manifest = layout.image(&[RawTar::default().file("a", b"a").finish()]);
    layout.index(&[(manifest.clone(), Some("v1"))]);
    let parsed: kiln_image::oci::Manifest = serde_json::from_slice(
        &fs::read(layout.dir.join("blobs/sha256").join(manifest.digest.hex())).unwrap(),
    )
    .unwrap();
    let blob = layout
        .dir
        .join("blobs/sha256")
        .join(parsed.layers[0].digest.hex());
    fs::write(&blob, gzip(&RawTar::default().file("z", b"z").finish())).unwrap();
    let err = load_oci_base(&store, &layout.dir, None).unwrap_err();
    assert_names(&err, "hashes to");
    assert_nothing_tagged(&store);
}

#[test]
fn indexes_are_followed_to_this_platform() {
    let (home, store) = store();
    let layout = HandLayout::new(&home.path().join("multi"));
    let mine = layout.image(&[RawTar::default().file("mine", b"1").finish()]);
    let theirs = layout.image(&[RawTar::default().file("theirs", b"2").finish()]);
    let other_arch = if host_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let mut entries = Vec::new();
    for (manifest, arch) in [(theirs.clone(), other_arch), (mine, host_arch())] {
        let mut d = manifest;
        d.platform = Some(platform(arch));
        entries.push(d);
    }
    let index = layout.blob(MEDIA_TYPE_INDEX, &canonical_json(&Index::new(entries)));
    layout.index(&[(index, Some("multi"))]);
    let base = load_oci_base(&store, &layout.dir, Some("multi")).unwrap();
    let layer = store.open_blob(&base.layers[0].digest).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["mine"]);

    // Only another architecture: refused, listing what there is.
    let mut only_theirs = theirs;
    only_theirs.platform = Some(platform(other_arch));
    let index = layout.blob(
        MEDIA_TYPE_INDEX,
        &canonical_json(&Index::new(vec![only_theirs])),
    );
    layout.index(&[(index, Some("multi"))]);
    let err = load_oci_base(&store, &layout.dir, None).unwrap_err();
    assert_names(&err, &format!("no image for linux/{}", host_arch()));
    assert_names(&err, &format!("the index has linux/{other_arch}"));
}

#[test]
fn several_images_need_a_reference() {
    let (home, store) = store();
    let layout = HandLayout::new(&home.path().join("several"));
    let a = layout.image(&[RawTar::default().file("a", b"a").finish()]);
    let b = layout.image(&[RawTar::default().file("b", b"b").finish()]);
    layout.index(&[(a, Some("a")), (b, Some("b"))]);
    let err = load_oci_base(&store, &layout.dir, None).unwrap_err();
    assert_names(&err, "holds several images, choose one of a, b");
    assert!(load_oci_base(&store, &layout.dir, Some("b")).is_ok());
    // Import tags both, named after the directory.
    let imported = import(&store, &layout.dir).unwrap();
    let refs: Vec<String> = imported
        .iter()
        .map(|i| format!("{}:{}", i.name, i.tag))
        .collect();
    assert_eq!(refs, ["several:a", "several:b"]);

    // Two images without names would both be several:latest.
    let unnamed = HandLayout::new(&home.path().join("unnamed"));
    let a = unnamed.image(&[RawTar::default().file("a", b"a").finish()]);
    let b = unnamed.image(&[RawTar::default().file("b", b"b").finish()]);
    unnamed.index(&[(a, None), (b, None)]);
    let (_home2, fresh) = crate::support::store();
    let err = import(&fresh, &unnamed.dir).unwrap_err();
    assert_names(&err, "two images would be tagged unnamed:latest");
    assert_nothing_tagged(&fresh);
}

#[test]
fn not_an_archive() {
    let (home, store) = store();
    let junk = home.path().join("junk.tar");
    fs::write(&junk, RawTar::default().file("hello", b"x").finish()).unwrap();
    let err = import(&store, &junk).unwrap_err();
    assert_names(&err, "not an OCI layout, oci-archive or docker-archive");
    let text = home.path().join("notes.txt");
    fs::write(&text, "just some text\n").unwrap();
    let err = import(&store, &text).unwrap_err();
    assert_names(&err, "notes.txt: not a readable tar archive");
    assert_nothing_tagged(&store);
}
