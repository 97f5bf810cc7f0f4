//! Images, tags and reference resolution.

use kiln_image::oci::{
    ANNOTATION_REF_NAME, Index, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, Platform,
};
use kiln_image::{Digest, ImageError, Store};

use crate::support::{config, image, layer_descriptor, store};

fn index(store: &Store) -> Index {
    let bytes = std::fs::read(store.layout_dir().join("index.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn refs(store: &Store) -> Vec<String> {
    store
        .images()
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", r.name, r.tag))
        .collect()
}

#[test]
fn put_image_writes_a_canonical_manifest_and_config() {
    let (_home, store) = store();
    let (manifest, info) = image(&store, &[("f", "1")]);
    assert_eq!(manifest.media_type, MEDIA_TYPE_MANIFEST);
    assert_eq!(manifest.platform, None);
    let bytes = store.read_blob(&manifest.digest).unwrap();
    assert_eq!(bytes.len() as u64, manifest.size);
    let m = store.read_manifest(&manifest.digest).unwrap();
    assert_eq!(m.schema_version, 2);
    assert_eq!(m.media_type.as_deref(), Some(MEDIA_TYPE_MANIFEST));
    assert_eq!(m.config.media_type, MEDIA_TYPE_CONFIG);
    assert_eq!(m.layers, vec![layer_descriptor(&info)]);
    let c = store.read_config(&m.config.digest).unwrap();
    assert_eq!(c.rootfs.diff_ids, vec![info.diff_id.clone()]);
    assert!(!String::from_utf8(bytes).unwrap().contains(' '));
    // The same inputs give the same manifest.
    assert_eq!(image(&store, &[("f", "1")]).0, manifest);
}

#[test]
fn put_image_checks_layers() {
    let (_home, store) = store();
    let (_, info) = image(&store, &[("f", "1")]);
    let err = store
        .put_image(&config(Vec::new()), vec![layer_descriptor(&info)])
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidImage(_)), "{err}");
    let mut missing = layer_descriptor(&info);
    missing.digest = Digest::of(b"no such layer");
    let err = store
        .put_image(&config(vec![info.diff_id]), vec![missing])
        .unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
}

#[test]
fn tags_replace_and_go_last() {
    let (_home, store) = store();
    let (one, _) = image(&store, &[("f", "1")]);
    let (two, _) = image(&store, &[("f", "2")]);
    store.tag("app", "v1", &one).unwrap();
    store.tag("app", "v2", &two).unwrap();
    store.tag("base", "latest", &one).unwrap();
    assert_eq!(refs(&store), ["app:v1", "app:v2", "base:latest"]);
    store.tag("app", "v1", &two).unwrap();
    assert_eq!(refs(&store), ["app:v2", "base:latest", "app:v1"]);

    let idx = index(&store);
    let last = idx.manifests.last().unwrap();
    assert_eq!(last.annotations[ANNOTATION_REF_NAME], "app:v1");
    assert_eq!(last.digest, two.digest);
    assert_eq!(
        last.platform,
        Some(Platform {
            architecture: "amd64".into(),
            os: "linux".into()
        })
    );
    let images = store.images().unwrap();
    assert_eq!(images[2].manifest.digest, two.digest);
    assert!(images[2].manifest.annotations.is_empty());
}

#[test]
fn tag_validates_names_and_the_image() {
    let (_home, store) = store();
    let (m, _) = image(&store, &[("f", "1")]);
    for name in ["", "App", "a/b", "a:b", "a b"] {
        let err = store.tag(name, "v1", &m).unwrap_err();
        assert!(matches!(err, ImageError::BadName(_)), "{name:?}: {err}");
    }
    let long = "t".repeat(129);
    for tag in ["", "a:b", "a/b", long.as_str()] {
        let err = store.tag("app", tag, &m).unwrap_err();
        assert!(matches!(err, ImageError::BadTag(_)), "{tag:?}: {err}");
    }
    store.tag("my-app.x_1", &"T".repeat(128), &m).unwrap();
    let mut missing = m.clone();
    missing.digest = Digest::of(b"not a manifest");
    assert!(store.tag("app", "v1", &missing).is_err());
}

#[test]
fn resolve_names_tags_and_digests() {
    let (_home, store) = store();
    let (one, _) = image(&store, &[("f", "1")]);
    let (two, _) = image(&store, &[("f", "2")]);
    let (three, _) = image(&store, &[("f", "3")]);
    store.tag("app", "latest", &one).unwrap();
    store.tag("app", "v2", &two).unwrap();
    store.tag("tool", "v1", &one).unwrap();
    store.tag("tool", "v3", &three).unwrap();

    let r = store.resolve("app:v2").unwrap();
    assert_eq!(r.name_tag, Some(("app".into(), "v2".into())));
    assert_eq!(r.manifest.digest, two.digest);
    assert!(r.manifest.annotations.is_empty());
    assert_eq!(store.resolve("app").unwrap().manifest.digest, one.digest);
    let tool = store.resolve("tool").unwrap();
    assert_eq!(
        tool.name_tag,
        Some(("tool".into(), "v3".into())),
        "most recent"
    );

    let by_digest = store.resolve(&three.digest.to_string()).unwrap();
    assert_eq!(by_digest.name_tag, None);
    assert_eq!(by_digest.manifest.digest, three.digest);
    assert_eq!(by_digest.manifest.size, three.size);
    let prefix = &two.digest.hex()[..12];
    assert_eq!(store.resolve(prefix).unwrap().manifest.digest, two.digest);
    let long_prefix = format!("sha256:{}", &two.digest.hex()[..20]);
    assert_eq!(
        store.resolve(&long_prefix).unwrap().manifest.digest,
        two.digest
    );
    assert!(store.resolve(&two.digest.hex()[..11]).is_err(), "too short");

    // A manifest blob that is not tagged still resolves by digest.
    let (untagged, _) = image(&store, &[("f", "4")]);
    let r = store.resolve(&untagged.digest.to_string()).unwrap();
    assert_eq!(r.manifest, untagged);
    let (_, layer) = image(&store, &[("f", "5")]);
    assert!(
        store.resolve(&layer.digest.to_string()).is_err(),
        "not a manifest"
    );

    for unknown in ["nope", "app:v9", "sha256:00", "0123456789abcdef"] {
        let err = store.resolve(unknown).unwrap_err();
        assert!(
            matches!(err, ImageError::UnknownImage { .. }),
            "{unknown}: {err}"
        );
    }
    let hint = store.resolve("nope").unwrap_err().to_string();
    assert!(hint.contains("app, tool"), "{hint}");
    let hint = store.resolve("app:v9").unwrap_err().to_string();
    assert!(hint.contains("latest, v2"), "{hint}");
}

#[test]
fn concurrent_writers_never_lose_tags() {
    let (home, store) = store();
    let images: Vec<_> = (0..4)
        .map(|i| image(&store, &[("f", &i.to_string())]).0)
        .collect();
    std::thread::scope(|s| {
        for (t, manifest) in images.iter().enumerate() {
            let home = home.path();
            s.spawn(move || {
                // A separate Store: its own lock file descriptions, like another process.
                let store = Store::open(home).unwrap();
                for i in 0..15 {
                    store
                        .tag(&format!("t{t}"), &format!("v{i}"), manifest)
                        .unwrap();
                    store.put_blob(format!("blob {t} {i}").as_bytes()).unwrap();
                }
            });
        }
    });
    let all = refs(&store);
    assert_eq!(all.len(), 60);
    for t in 0..4 {
        for i in 0..15 {
            assert!(all.contains(&format!("t{t}:v{i}")));
            assert!(store.has_blob(&Digest::of(format!("blob {t} {i}").as_bytes())));
        }
    }
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}
