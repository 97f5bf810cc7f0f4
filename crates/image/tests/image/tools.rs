//! External OCI tools read the store: skopeo, and umoci (whose `--image` takes the
//! ref name after the first ':', so `NAME:TAG` ref names work).

use std::fs;

use crate::support::{image, run, store};

#[test]
fn skopeo_inspects_a_tagged_image() {
    let (_home, store) = store();
    let (manifest, layer) = image(&store, &[("etc/hello", "hi"), ("bin/x", "y")]);
    store.tag("hello", "v1", &manifest).unwrap();
    let layout = store.layout_dir().to_str().unwrap().to_string();
    let out = run(
        "skopeo",
        &["inspect", &format!("oci:{layout}:hello:v1")],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], manifest.digest.to_string(), "{out}");
    assert_eq!(v["Layers"][0], layer.digest.to_string(), "{out}");
    assert_eq!(v["Architecture"], "amd64");
    let raw = run(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{layout}:hello:v1")],
        None,
    );
    assert_eq!(raw.as_bytes(), store.read_blob(&manifest.digest).unwrap());
}

#[test]
fn umoci_unpacks_a_tagged_image() {
    let (home, store) = store();
    for version in ["v1", "v2"] {
        let (manifest, _) = image(&store, &[("etc/hello", version)]);
        store.tag("hello", version, &manifest).unwrap();
    }
    let layout = store.layout_dir().to_str().unwrap().to_string();
    let listed = run("umoci", &["ls", "--layout", &layout], None);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["hello:v1", "hello:v2"]);
    for version in ["v1", "v2"] {
        let bundle = home.path().join(format!("bundle-{version}"));
        run(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{layout}:hello:{version}"),
                bundle.to_str().unwrap(),
            ],
            None,
        );
        let hello = bundle.join("rootfs/etc/hello");
        assert_eq!(fs::read_to_string(hello).unwrap(), version);
    }
}
