//! The exports work with skopeo and umoci, and what skopeo writes imports back.

use std::fs;
use std::process::Command;

use kiln_image::{ExportFormat, export, import};

use crate::support::{NAME, TAG, demo_image, require_tool, run, store};

#[test]
fn skopeo_reads_every_export() {
    let skopeo = require_tool("skopeo", "skopeo");
    let (home, store) = store();
    let manifest = demo_image(&store);
    let parsed = store.read_manifest(&manifest.digest).unwrap();
    let cases = [
        (ExportFormat::OciDir, "oci", format!(":{TAG}")),
        (ExportFormat::OciArchive, "oci-archive", format!(":{TAG}")),
        (ExportFormat::DockerArchive, "docker-archive", String::new()),
    ];
    for (format, transport, reference) in cases {
        let dest = home.path().join(format!("out-{format}"));
        export(&store, &manifest, NAME, TAG, format, &dest).unwrap();
        let image = format!("{transport}:{}{reference}", dest.display());
        let out = run(Command::new(&skopeo).args(["inspect", &image]));
        let inspected: serde_json::Value = serde_json::from_str(&out).unwrap();
        let layers = inspected["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), parsed.layers.len(), "{format}");
        if format != ExportFormat::DockerArchive {
            assert_eq!(inspected["Digest"], manifest.digest.to_string(), "{format}");
            assert_eq!(layers[0], parsed.layers[0].digest.to_string(), "{format}");
        }
        // Without a reference too: the layout has a single image.
        if format == ExportFormat::OciDir {
            let bare = format!("oci:{}", dest.display());
            run(Command::new(&skopeo).args(["inspect", &bare]));
        }
    }
}

#[test]
fn skopeo_copies_import_back_with_the_same_diff_ids() {
    let skopeo = require_tool("skopeo", "skopeo");
    let (home, store) = store();
    let manifest = demo_image(&store);
    let parsed = store.read_manifest(&manifest.digest).unwrap();
    let config = store.read_config(&parsed.config.digest).unwrap();
    let dir = home.path().join("layout");
    export(&store, &manifest, NAME, TAG, ExportFormat::OciDir, &dir).unwrap();
    let src = format!("oci:{}:{TAG}", dir.display());

    let docker = home.path().join("copied.tar");
    let dst = format!("docker-archive:{}:copied:v2", docker.display());
    run(Command::new(&skopeo).args(["copy", "-q", &src, &dst]));
    let (_home2, fresh) = crate::support::store();
    let imported = import(&fresh, &docker).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(
        (imported[0].name.as_str(), imported[0].tag.as_str()),
        ("copied", "v2")
    );
    let copied = fresh.read_manifest(&imported[0].manifest.digest).unwrap();
    let copied_config = fresh.read_config(&copied.config.digest).unwrap();
    assert_eq!(copied_config.rootfs.diff_ids, config.rootfs.diff_ids);
    // skopeo's docker-archive links <id>/layer.tar to ../<hex>.tar; recompressed with
    // the store's compressor, the layers are the very same blobs.
    assert_eq!(copied.layers, parsed.layers);

    // An OCI-to-OCI copy keeps the manifest byte for byte, and so does the import.
    let layout = home.path().join("copied-layout");
    let dst = format!("oci:{}:other", layout.display());
    run(Command::new(&skopeo).args(["copy", "-q", &src, &dst]));
    let imported = import(&fresh, &layout).unwrap();
    assert_eq!(
        (imported[0].name.as_str(), imported[0].tag.as_str()),
        ("copied-layout", "other")
    );
    assert_eq!(imported[0].manifest.digest, manifest.digest);
}

#[test]
fn umoci_unpacks_the_exported_layout() {
    let umoci = require_tool("umoci", "umoci");
    let (home, store) = store();
    let manifest = demo_image(&store);
    let dir = home.path().join("layout");
    export(&store, &manifest, NAME, TAG, ExportFormat::OciDir, &dir).unwrap();
    let bundle = home.path().join("bundle");
    let image = format!("{}:{TAG}", dir.display());
    run(Command::new(&umoci)
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "welcome\n"
    );
    assert!(
        !rootfs.join("etc/old").exists(),
        "the whiteout was not applied"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("var/cache/new")).unwrap(),
        "new\n"
    );
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/hi")).unwrap().to_str(),
        Some("/bin/hello")
    );
    assert!(bundle.join("config.json").is_file());
}
