//! Export and import in the formats other tools read, checked with skopeo.

use std::fs;
use std::process::Command;

use super::harness::*;

fn built_world() -> (World, String) {
    let w = World::new();
    let spec = w.spec(
        r#"
[image.hello]
cmd = ["/bin/busybox", "echo", "hi"]
[[image.hello.step]]
copy = "busybox"
to = "/bin/busybox"
"#,
    );
    w.busybox(&w.ctx());
    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "v2"]));
    let digest = digest_of(&out, "hello");
    (w, digest)
}

#[test]
fn skopeo_copies_the_exported_image_to_a_docker_archive() {
    require(&["skopeo"]);
    let (w, _) = built_world();
    let oci = w.path().join("oci");
    ok(w.kiln(&[
        "export",
        "hello:v2",
        "--format",
        "oci-dir",
        "--dest",
        oci.to_str().unwrap(),
    ]));
    let archive = w.path().join("copied.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:v2", oci.display()))
        .arg(format!("docker-archive:{}:hello:v2", archive.display())));
    assert!(fs::metadata(&archive).unwrap().len() > 100_000);

    // And the docker archive skopeo wrote imports back with the same layer contents.
    let home2 = w.path().join("home2");
    let out = ok(w.kiln_home(&home2, &["import", archive.to_str().unwrap()]));
    assert!(out.starts_with("hello:v2 sha256:"), "{out}");
    let a: serde_json::Value =
        serde_json::from_str(&ok(w.kiln(&["inspect", "hello:v2", "-o", "json"]))).unwrap();
    let b: serde_json::Value = serde_json::from_str(&ok(
        w.kiln_home(&home2, &["inspect", "hello:v2", "-o", "json"])
    ))
    .unwrap();
    let diff_ids = |v: &serde_json::Value| {
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["diff_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(diff_ids(&a), diff_ids(&b));
}

#[test]
fn every_export_format_imports_back_to_the_same_image() {
    require(&["skopeo"]);
    let (w, digest) = built_world();
    for (format, dest) in [
        ("oci-dir", "x-oci"),
        ("oci-archive", "x-oci.tar"),
        ("docker-archive", "x-docker.tar"),
    ] {
        let dest = w.path().join(dest);
        ok(w.kiln(&[
            "export",
            "hello:v2",
            "--format",
            format,
            "--dest",
            dest.to_str().unwrap(),
        ]));
        let home = w.path().join(format!("home-{format}"));
        let out = ok(w.kiln_home(&home, &["import", dest.to_str().unwrap()]));
        assert!(out.contains("hello:v2"), "{format}: {out}");
        if format != "docker-archive" {
            // OCI layouts keep the very same blobs, so the same manifest digest.
            assert_eq!(digest_of(&out, "hello"), digest, "{format}");
        }
        let transport = match format {
            "oci-dir" => format!("oci:{}:v2", dest.display()),
            "oci-archive" => format!("oci-archive:{}:v2", dest.display()),
            _ => format!("docker-archive:{}", dest.display()),
        };
        run(Command::new("skopeo").arg("inspect").arg(transport));
    }
}

#[test]
fn rmi_untags_and_collects_unreferenced_blobs() {
    let (w, digest) = built_world();
    let blob = blob_path(&w.home(), &digest);
    assert!(blob.exists());
    let out = ok(w.kiln(&["rmi", "hello:v2"]));
    assert!(out.contains("hello:v2"), "{out}");
    assert!(!blob.exists(), "the manifest blob is collected");
    let err = fails(w.kiln(&["inspect", "hello:v2"]));
    assert!(err.contains("hello"), "{err}");
}
