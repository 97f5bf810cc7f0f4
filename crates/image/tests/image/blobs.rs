//! Blobs: layout creation, atomic writes, verified reads.

use std::fs;
use std::io::{ErrorKind, Read, Write};

use kiln_image::oci::Index;
use kiln_image::{Digest, ImageError, Store};

use crate::support::store;

#[test]
fn open_creates_an_oci_layout_and_reopens_it() {
    let (home, store) = store();
    let layout = home.path().join("store");
    assert_eq!(store.layout_dir(), layout);
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: Index =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index, Index::new(Vec::new()));
    assert!(layout.join("blobs/sha256").is_dir());
    assert!(home.path().join("layers").is_dir());
    assert_eq!(store.tmp_dir(), home.path().join("tmp"));
    let d = Digest::of(b"x");
    assert_eq!(
        store.layer_dir(&d),
        home.path().join("layers").join(d.hex())
    );
    drop(store);
    let again = Store::open(home.path()).unwrap();
    assert_eq!(again.home(), home.path());
}

#[test]
fn put_and_read_blobs() {
    let (_home, store) = store();
    let d = store.put_blob(b"hello").unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert!(store.has_blob(&d));
    assert_eq!(store.put_blob(b"hello").unwrap(), d);
    assert_eq!(store.read_blob(&d).unwrap(), b"hello");
    let mut s = String::new();
    store.open_blob(&d).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    let (jd, len) = store
        .put_json(&serde_json::json!({"b": 1, "a": [2]}))
        .unwrap();
    assert_eq!(store.read_blob(&jd).unwrap(), br#"{"a":[2],"b":1}"#);
    assert_eq!(len, 15);
    let missing = Digest::of(b"nope");
    assert!(!store.has_blob(&missing));
    let err = store.read_blob(&missing).unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    assert!(store.open_blob(&missing).is_err());
}

#[test]
fn corrupt_blobs_are_never_returned() {
    let (_home, store) = store();
    let data = vec![7u8; 300_000];
    let d = store.put_blob(&data).unwrap();
    let path = store.blob_path(&d);
    let mut bytes = fs::read(&path).unwrap();
    bytes[1234] ^= 1;
    fs::write(&path, &bytes).unwrap();

    let err = store.read_blob(&d).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&d.to_string()), "{err}");

    let mut out = Vec::new();
    let err = store
        .open_blob(&d)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains(&d.to_string()), "{err}");
}

#[test]
fn blob_writer_commits_atomically() {
    let (_home, store) = store();
    let mut w = store.blob_writer().unwrap();
    w.write_all(b"streamed ").unwrap();
    w.write_all(b"blob").unwrap();
    let (d, len) = w.commit().unwrap();
    assert_eq!(d, Digest::of(b"streamed blob"));
    assert_eq!(len, 13);
    assert_eq!(store.read_blob(&d).unwrap(), b"streamed blob");

    let mut dropped = store.blob_writer().unwrap();
    dropped.write_all(b"never committed").unwrap();
    drop(dropped);
    assert!(!store.has_blob(&Digest::of(b"never committed")));
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn import_checks_the_digest() {
    let (home, store) = store();
    let src = home.path().join("layer.tar.gz");
    fs::write(&src, b"some layer").unwrap();
    let good = Digest::of(b"some layer");
    assert_eq!(store.import_blob(&src, &good).unwrap(), 10);
    assert_eq!(store.read_blob(&good).unwrap(), b"some layer");

    let bad = Digest::of(b"other");
    let err = store.import_blob(&src, &bad).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("layer.tar.gz"), "{err}");
    assert!(!store.has_blob(&bad));
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}
