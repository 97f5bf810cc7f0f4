//! Removing images and garbage collection.

use std::fs;

use kiln_image::{GcReport, Store};

use crate::support::{image, store};

#[test]
fn remove_untags_and_collects_what_nothing_reaches() {
    let (_home, store) = store();
    let (one, l1) = image(&store, &[("f", "1")]);
    let (two, l2) = image(&store, &[("f", "2")]);
    store.tag("app", "v1", &one).unwrap();
    store.tag("app", "v2", &two).unwrap();
    store.tag("other", "latest", &one).unwrap();
    for info in [&l1, &l2] {
        let dir = store.layer_dir(&info.diff_id);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/file"), "x").unwrap();
    }
    let m1 = store.read_manifest(&one.digest).unwrap();

    assert_eq!(store.remove("app:v1").unwrap(), ["app:v1"]);
    assert!(store.has_blob(&one.digest), "still tagged other:latest");
    assert!(store.has_blob(&l1.digest));

    assert_eq!(store.remove("app").unwrap(), ["app:v2"]);
    assert!(!store.has_blob(&two.digest));
    assert!(!store.has_blob(&l2.digest));
    assert!(!store.layer_dir(&l2.diff_id).exists());
    assert!(store.layer_dir(&l1.diff_id).exists());

    store.tag("again", "x", &one).unwrap();
    let mut removed = store.remove(&one.digest.to_string()).unwrap();
    removed.sort();
    assert_eq!(removed, ["again:x", "other:latest"]);
    for d in [&one.digest, &m1.config.digest, &l1.digest] {
        assert!(!store.has_blob(d), "{d}");
    }
    assert!(!store.layer_dir(&l1.diff_id).exists());
    assert!(store.images().unwrap().is_empty());
    assert!(store.remove("app").is_err());
}

#[test]
fn gc_ignores_foreign_names_and_keeps_fresh_temporaries() {
    let (_home, store) = store();
    let junk = store
        .blob_path(&kiln_image::Digest::of(b"x"))
        .with_file_name(".partial");
    fs::write(&junk, "partial").unwrap();
    let tmp = store.tmp_dir().join("busy");
    fs::write(&tmp, "in use").unwrap();
    let stray = store.put_blob(b"unreferenced").unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert!(!store.has_blob(&stray));
    assert!(junk.exists());
    assert!(tmp.exists());
}

#[test]
fn gc_waits_for_other_users_of_the_store() {
    let (home, store) = store();
    let stray = store.put_blob(b"built but not yet tagged").unwrap();
    let other = Store::open(home.path()).unwrap();
    let report = store.gc().unwrap();
    assert_eq!(
        report,
        GcReport {
            deferred: true,
            ..GcReport::default()
        }
    );
    assert!(other.has_blob(&stray));
    drop(other);
    let report = store.gc().unwrap();
    assert!(!report.deferred);
    assert!(!store.has_blob(&stray));
    // Deferring gave the shared lock back: a second Store still blocks gc.
    let _other = Store::open(home.path()).unwrap();
    assert!(store.gc().unwrap().deferred);
}

#[test]
fn pinned_manifests_survive_removing_their_tags() {
    let (_home, store) = store();
    let (running, layer) = image(&store, &[("f", "running")]);
    store.tag("app", "v1", &running).unwrap();
    let dir = store.layer_dir(&layer.diff_id);
    fs::create_dir_all(&dir).unwrap();
    store
        .set_pins("daemon", std::slice::from_ref(&running.digest))
        .unwrap();

    assert_eq!(store.remove("app:v1").unwrap(), ["app:v1"]);
    let config = store.read_manifest(&running.digest).unwrap().config.digest;
    for d in [&running.digest, &config, &layer.digest] {
        assert!(store.has_blob(d), "pinned {d} was collected");
    }
    assert!(
        dir.exists(),
        "the unpacked layer of a pinned image was collected"
    );

    store.set_pins("daemon", &[]).unwrap();
    store.gc().unwrap();
    assert!(!store.has_blob(&running.digest));
    assert!(!dir.exists());
    assert!(store.set_pins("../evil", &[]).is_err());
}
