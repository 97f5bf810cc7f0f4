//! Export then import, through every format: the image comes back identical.

use std::fs;
use std::os::unix::fs::MetadataExt;

use kiln_image::oci::{ANNOTATION_REF_NAME, Index, MEDIA_TYPE_LAYER_GZIP};
use kiln_image::{
    ExportFormat, ImageError, ImportedImage, UnpackLimits, export, import,
    load_docker_archive_base, load_oci_base, unpack_layer,
};

use crate::support::{NAME, TAG, demo_image, store};

const FORMATS: [ExportFormat; 3] = [
    ExportFormat::OciDir,
    ExportFormat::OciArchive,
    ExportFormat::DockerArchive,
];

#[test]
fn formats_parse_and_print() {
    for format in FORMATS {
        assert_eq!(format.to_string().parse::<ExportFormat>().unwrap(), format);
    }
    let err = "tarball".parse::<ExportFormat>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown export format `tarball`: use oci-dir, oci-archive or docker-archive"
    );
}

#[test]
fn every_format_round_trips_to_the_same_digest() {
    let (_home, store) = store();
    let manifest = demo_image(&store);
    let out = tempfile::tempdir().unwrap();
    for format in FORMATS {
        let dest = out.path().join(format!("demo-{format}"));
        export(&store, &manifest, NAME, TAG, format, &dest).unwrap();

        let (_home2, fresh) = crate::support::store();
        let imported = import(&fresh, &dest).unwrap();
        assert_eq!(
            imported,
            vec![ImportedImage {
                name: NAME.into(),
                tag: TAG.into(),
                manifest: imported[0].manifest.clone(),
            }],
            "{format}"
        );
        // Gzip layers are kept, uncompressed ones recompressed with the same pinned
        // compressor: even the docker-archive comes back with the same digest.
        assert_eq!(imported[0].manifest.digest, manifest.digest, "{format}");
        let resolved = fresh.resolve("demo:v1").unwrap();
        assert_eq!(resolved.manifest.digest, manifest.digest, "{format}");
        // Importing into the store it came from just tags it again.
        let again = import(&store, &dest).unwrap();
        assert_eq!(again[0].manifest.digest, manifest.digest, "{format}");
    }
}

#[test]
fn archives_are_deterministic() {
    let (_home, store) = store();
    let manifest = demo_image(&store);
    let out = tempfile::tempdir().unwrap();
    for format in [ExportFormat::OciArchive, ExportFormat::DockerArchive] {
        let a = out.path().join(format!("a-{format}.tar"));
        let b = out.path().join(format!("b-{format}.tar"));
        export(&store, &manifest, NAME, TAG, format, &a).unwrap();
        export(&store, &manifest, NAME, TAG, format, &b).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{format}");
        assert_eq!(fs::metadata(&a).unwrap().mode() & 0o777, 0o644, "{format}");
        // Sorted paths, owner 0, mtime 0.
        let mut archive = tar::Archive::new(fs::File::open(&a).unwrap());
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            assert_eq!(entry.header().uid().unwrap(), 0);
            paths.push(entry.path().unwrap().display().to_string());
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        // Exporting again replaces the file.
        export(&store, &manifest, NAME, TAG, format, &a).unwrap();
    }
}

#[test]
fn oci_dir_has_one_tagged_manifest_and_linked_blobs() {
    let (home, store) = store();
    let manifest = demo_image(&store);
    let dest = home.path().join("out");
    export(&store, &manifest, NAME, TAG, ExportFormat::OciDir, &dest).unwrap();
    let index: Index = serde_json::from_slice(&fs::read(dest.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let entry = &index.manifests[0];
    assert_eq!(entry.digest, manifest.digest);
    assert_eq!(entry.annotations[ANNOTATION_REF_NAME], TAG);
    assert_eq!(entry.annotations["io.containerd.image.name"], "demo:v1");
    // Same filesystem as the store: blobs are hard links.
    let blob = dest.join("blobs/sha256").join(manifest.digest.hex());
    assert_eq!(
        fs::metadata(&blob).unwrap().ino(),
        fs::metadata(store.blob_path(&manifest.digest))
            .unwrap()
            .ino()
    );
    let err = export(&store, &manifest, NAME, TAG, ExportFormat::OciDir, &dest).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // An empty directory is fine.
    let empty = home.path().join("empty");
    fs::create_dir(&empty).unwrap();
    export(&store, &manifest, NAME, TAG, ExportFormat::OciDir, &empty).unwrap();
    assert!(empty.join("oci-layout").is_file());
}

#[test]
fn corrupt_blobs_are_not_exported() {
    let (home, store) = store();
    let manifest = demo_image(&store);
    let parsed = store.read_manifest(&manifest.digest).unwrap();
    let layer = store.blob_path(&parsed.layers[1].digest);
    let mut bytes = fs::read(&layer).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    fs::remove_file(&layer).unwrap();
    fs::write(&layer, &bytes).unwrap();
    for format in FORMATS {
        let dest = home.path().join(format!("out-{format}"));
        let err = export(&store, &manifest, NAME, TAG, format, &dest).unwrap_err();
        assert!(!dest.exists(), "{format}: a partial export was left");
        let shown = err.to_string();
        assert!(
            shown.contains("corrupt") || shown.contains("crc") || shown.contains("diff_id"),
            "{format}: {shown}"
        );
    }
}

#[test]
fn base_images_load_from_every_format() {
    let (home, store) = store();
    let manifest = demo_image(&store);
    let parsed = store.read_manifest(&manifest.digest).unwrap();
    let config = store.read_config(&parsed.config.digest).unwrap();
    for format in FORMATS {
        let dest = home.path().join(format!("base-{format}"));
        export(&store, &manifest, NAME, TAG, format, &dest).unwrap();
        let (_home2, fresh) = crate::support::store();
        let base = match format {
            ExportFormat::DockerArchive => load_docker_archive_base(&fresh, &dest).unwrap(),
            _ => load_oci_base(&fresh, &dest, Some(TAG)).unwrap(),
        };
        assert_eq!(base.config, config, "{format}");
        assert_eq!(base.layers, parsed.layers, "{format}");
        assert!(
            base.layers
                .iter()
                .all(|l| l.media_type == MEDIA_TYPE_LAYER_GZIP)
        );
        assert!(base.layers.iter().all(|l| fresh.has_blob(&l.digest)));
        assert!(fresh.images().unwrap().is_empty(), "a base is not tagged");
    }
    let dest = home.path().join("base-oci-dir");
    let by_name = load_oci_base(&store, &dest, Some("demo:v1")).unwrap();
    assert_eq!(by_name.layers, parsed.layers);
    let only = load_oci_base(&store, &dest, None).unwrap();
    assert_eq!(only.layers, parsed.layers);
    let err = load_oci_base(&store, &dest, Some("v2")).unwrap_err();
    assert!(
        err.to_string()
            .contains("no image named `v2`; it has v1, demo:v1"),
        "{err}"
    );
    let docker = home.path().join("base-docker-archive");
    let err = load_oci_base(&store, &docker, None).unwrap_err();
    assert!(matches!(err, ImageError::Archive(_)), "{err}");
    assert!(err.to_string().contains("oci-layout is missing"), "{err}");
}

#[test]
fn imported_layers_unpack() {
    let (home, store) = store();
    let manifest = demo_image(&store);
    let dest = home.path().join("docker.tar");
    export(
        &store,
        &manifest,
        NAME,
        TAG,
        ExportFormat::DockerArchive,
        &dest,
    )
    .unwrap();
    let (_home2, fresh) = crate::support::store();
    let base = load_docker_archive_base(&fresh, &dest).unwrap();
    let rootfs = home.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    let blob = fresh.open_blob(&base.layers[0].digest).unwrap();
    unpack_layer(
        flate2::read::GzDecoder::new(blob),
        &rootfs,
        &UnpackLimits::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
}
