//! `Store::write_layer`: canonical, reproducible layer tars.

use std::fs;
use std::os::unix::fs::MetadataExt;

use kiln_image::{Digest, EntryKind, FileSource, ImageError, LayerEntry};

use crate::support::{EPOCH, dir, entry, file, layer_tar, run, store};

/// A parsed tar header: the raw block and the full name (after GNU long names).
struct Hdr {
    raw: Vec<u8>,
    name: String,
    link: String,
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    u64::from_str_radix(&s, 8).unwrap_or_else(|_| panic!("octal field {field:?}"))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).unwrap()
}

/// Every header of a tar, checking that it ends with two zero blocks.
fn headers(tar: &[u8]) -> Vec<Hdr> {
    let mut out = Vec::new();
    let (mut long_name, mut long_link) = (None, None);
    let mut pos = 0;
    loop {
        let block = &tar[pos..pos + 512];
        if block.iter().all(|&b| b == 0) {
            assert!(tar[pos..].iter().all(|&b| b == 0));
            assert_eq!(tar.len() - pos, 1024, "the tar ends with two zero blocks");
            return out;
        }
        let size = octal(&block[124..136]) as usize;
        let data = &tar[pos + 512..pos + 512 + size];
        let hdr = Hdr {
            raw: block.to_vec(),
            name: cstr(&block[..100]),
            link: cstr(&block[157..257]),
        };
        match block[156] {
            b'L' => long_name = Some(cstr(data)),
            b'K' => long_link = Some(cstr(data)),
            _ => out.push(Hdr {
                name: long_name.take().unwrap_or(hdr.name),
                link: long_link.take().unwrap_or(hdr.link),
                raw: hdr.raw,
            }),
        }
        pos += 512 + size.div_ceil(512) * 512;
    }
}

fn symlink(path: &str, target: &str, mtime: u64) -> LayerEntry {
    let kind = EntryKind::Symlink {
        target: target.into(),
    };
    entry(path, kind, 0o777, mtime)
}

fn hardlink(path: &str, target: &str) -> LayerEntry {
    let kind = EntryKind::Hardlink {
        target: target.into(),
    };
    entry(path, kind, 0o644, EPOCH)
}

#[test]
fn digest_depends_on_content_not_on_order_or_mtimes_past_the_epoch() {
    let (home, store) = store();
    let src = home.path().join("src-file");
    fs::write(&src, "from disk").unwrap();
    let from_path = |mtime| {
        let source = FileSource::Path {
            path: src.clone(),
            size: 9,
        };
        entry("etc/conf", EntryKind::File { source }, 0o600, mtime)
    };
    let mut late = file("a.txt", "hello");
    late.mtime = EPOCH + 100;
    let a = vec![
        dir("usr"),
        file("usr/bin/tool", "x"),
        symlink("usr/lib", "lib64", EPOCH + 500),
        late.clone(),
        from_path(EPOCH + 7),
    ];
    late.mtime = EPOCH + 99_999;
    let mut from_bytes = from_path(EPOCH + 1);
    from_bytes.kind = EntryKind::File {
        source: FileSource::Bytes("from disk".into()),
    };
    let b = vec![
        from_bytes,
        late,
        symlink("usr/lib", "lib64", EPOCH),
        file("usr/bin/tool", "x"),
        dir("usr"),
    ];
    let info_a = store.write_layer(a.clone(), EPOCH).unwrap();
    let info_b = store.write_layer(b, EPOCH).unwrap();
    assert_eq!(info_a, info_b);

    let mut changed = a;
    changed[1] = file("usr/bin/tool", "y");
    assert_ne!(
        store.write_layer(changed, EPOCH).unwrap().digest,
        info_a.digest
    );
}

#[test]
fn blob_digest_size_and_diff_id_agree() {
    let (_home, store) = store();
    let info = store
        .write_layer(vec![file("x", &"data ".repeat(100_000))], EPOCH)
        .unwrap();
    let blob = store.read_blob(&info.digest).unwrap();
    assert_eq!(Digest::of(&blob), info.digest);
    assert_eq!(blob.len() as u64, info.size);
    assert_eq!(Digest::of(&layer_tar(&store, &info)), info.diff_id);
    let meta = fs::metadata(store.blob_path(&info.digest)).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o644);
}

#[test]
fn headers_are_gnu_with_empty_owner_names_clamped_mtimes_and_no_pax() {
    let (_home, store) = store();
    let long = format!("{}/file", "d".repeat(120));
    let mut late = file("late", "x");
    late.mtime = EPOCH + 5;
    let entries = vec![
        late,
        file(&long, "long"),
        symlink("s", &"t".repeat(150), EPOCH - 1),
        entry("w", EntryKind::Whiteout, 0o644, EPOCH + 9),
        entry("o", EntryKind::Dir { opaque: true }, 0o1777, EPOCH + 9),
    ];
    let info = store.write_layer(entries, EPOCH).unwrap();
    let tar = layer_tar(&store, &info);
    let hdrs = headers(&tar);
    for h in &hdrs {
        let raw = &h.raw;
        assert_eq!(&raw[257..265], b"ustar  \0", "{}: GNU magic", h.name);
        assert!(!b"xgX".contains(&raw[156]), "{}: PAX header", h.name);
        assert!(
            raw[265..329].iter().all(|&b| b == 0),
            "{}: uname/gname",
            h.name
        );
        assert!(octal(&raw[136..148]) <= EPOCH, "{}: mtime", h.name);
        assert_eq!(octal(&raw[329..337]), 0, "{}: devmajor", h.name);
        assert_eq!(octal(&raw[337..345]), 0, "{}: devminor", h.name);
        assert!(
            raw[345..].iter().all(|&b| b == 0),
            "{}: atime/ctime",
            h.name
        );
    }
    let names: Vec<&str> = hdrs.iter().map(|h| h.name.as_str()).collect();
    let long_dir = format!("{}/", "d".repeat(120));
    assert_eq!(
        names,
        [
            long_dir.as_str(),
            long.as_str(),
            "late",
            "o/",
            "o/.wh..wh..opq",
            "s",
            ".wh.w",
        ]
    );
    let late = &hdrs[2].raw;
    assert_eq!(octal(&late[136..148]), EPOCH, "late mtime is clamped");
    assert_eq!(octal(&late[108..116]), 1000, "numeric uid");
    let opaque_dir = &hdrs[3].raw;
    assert_eq!(octal(&opaque_dir[100..108]), 0o1777);
    assert_eq!(opaque_dir[156], b'5');
    for marker in [&hdrs[4].raw, &hdrs[6].raw] {
        assert_eq!(marker[156], b'0');
        assert_eq!(octal(&marker[100..108]), 0, "marker mode");
        assert_eq!(octal(&marker[108..116]), 0, "marker uid");
        assert_eq!(octal(&marker[124..136]), 0, "marker size");
        assert_eq!(octal(&marker[136..148]), EPOCH, "marker mtime");
    }
    assert_eq!(hdrs[5].link, "t".repeat(150));
}

#[test]
fn system_tar_lists_entries_in_canonical_order() {
    let (home, store) = store();
    let entries = vec![
        file("a.txt", "1"),
        file("a/c/d", "2"),
        file("a/b", "3"),
        file("a-b", "4"),
        file("B", "5"),
    ];
    let info = store.write_layer(entries, EPOCH).unwrap();
    let tar_path = home.path().join("layer.tar");
    fs::write(&tar_path, layer_tar(&store, &info)).unwrap();
    let listing = run("tar", &["-tf", tar_path.to_str().unwrap()], None);
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names, ["B", "a/", "a/b", "a/c/", "a/c/d", "a-b", "a.txt"]);
    let verbose = run("tar", &["-tvf", tar_path.to_str().unwrap()], None);
    let first = verbose.lines().next().unwrap();
    assert!(first.starts_with("-rw-r--r-- 1000/1000"), "{first}");
    let dir_line = verbose.lines().nth(1).unwrap();
    assert!(
        dir_line.starts_with("drwxr-xr-x 0/0"),
        "added parent: {dir_line}"
    );
}

#[test]
fn system_tar_extracts_long_names_links_and_markers() {
    let (home, store) = store();
    let long = format!("{}/{}", "p".repeat(90), "n".repeat(90));
    let target = format!("/{}", "t".repeat(200));
    let entries = vec![
        hardlink("a-link", "z-file"),
        file("z-file", "shared"),
        hardlink("m-link", "a-link"),
        file(&long, "long content"),
        symlink("sym", &target, EPOCH),
        entry("gone/x", EntryKind::Whiteout, 0, EPOCH),
        entry("opq", EntryKind::Dir { opaque: true }, 0o700, EPOCH),
    ];
    let info = store.write_layer(entries, EPOCH).unwrap();
    let tar_path = home.path().join("layer.tar");
    fs::write(&tar_path, layer_tar(&store, &info)).unwrap();
    let out = home.path().join("out");
    fs::create_dir(&out).unwrap();
    run(
        "tar",
        &[
            "-xf",
            tar_path.to_str().unwrap(),
            "-C",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(fs::read_to_string(out.join(&long)).unwrap(), "long content");
    assert_eq!(
        fs::read_link(out.join("sym")).unwrap().to_str(),
        Some(target.as_str())
    );
    let ino = |p: &str| fs::metadata(out.join(p)).unwrap().ino();
    assert_eq!(ino("a-link"), ino("z-file"));
    assert_eq!(ino("m-link"), ino("z-file"));
    assert_eq!(fs::read_to_string(out.join("z-file")).unwrap(), "shared");
    assert!(out.join("gone/.wh.x").is_file());
    assert!(out.join("opq/.wh..wh..opq").is_file());
}

#[test]
fn an_empty_layer_is_two_zero_blocks() {
    let (_home, store) = store();
    let info = store.write_layer(Vec::new(), EPOCH).unwrap();
    assert_eq!(layer_tar(&store, &info), vec![0; 1024]);
    assert_eq!(info.diff_id, Digest::of(&[0; 1024]));
}

#[test]
fn a_file_that_changed_size_is_refused() {
    let (home, store) = store();
    let src = home.path().join("input");
    fs::write(&src, "12345").unwrap();
    let source = FileSource::Path {
        path: src.clone(),
        size: 4,
    };
    let entries = vec![entry("f", EntryKind::File { source }, 0o644, 0)];
    let err = store.write_layer(entries, EPOCH).unwrap_err();
    assert!(matches!(err, ImageError::InputChanged { .. }), "{err}");
    assert!(err.to_string().contains("input"), "{err}");
    let leftovers = fs::read_dir(store.tmp_dir()).unwrap().count();
    assert_eq!(leftovers, 0, "the temporary blob is removed");
}

#[test]
fn a_symlink_is_not_followed_as_a_file_source() {
    let (home, store) = store();
    let real = home.path().join("real");
    fs::write(&real, "secret").unwrap();
    let link = home.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let source = FileSource::Path {
        path: link,
        size: 6,
    };
    let entries = vec![entry("f", EntryKind::File { source }, 0o644, 0)];
    assert!(store.write_layer(entries, EPOCH).is_err());
}

#[test]
fn duplicate_and_invalid_paths_are_refused() {
    let (_home, store) = store();
    let err = store
        .write_layer(vec![file("a/b", "1"), file("a/b", "2")], EPOCH)
        .unwrap_err();
    assert!(err.to_string().contains("`a/b`"), "{err}");
    let err = store
        .write_layer(vec![file("a/../b", "1")], EPOCH)
        .unwrap_err();
    assert!(err.to_string().contains("a/../b"), "{err}");
}

#[test]
fn layers_pass_the_unpack_rules() {
    let (_home, store) = store();
    let entries = vec![
        hardlink("a-link", "z-file"),
        file("z-file", "shared"),
        file(&format!("{}/x", "p".repeat(150)), "long"),
        symlink("usr/lib", "../lib64", EPOCH),
        entry("gone/x", EntryKind::Whiteout, 0, EPOCH),
        entry("opq", EntryKind::Dir { opaque: true }, 0o700, EPOCH),
        file("opq/inside", "kept"),
    ];
    let info = store.write_layer(entries, EPOCH).unwrap();
    let limits = kiln_image::UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };
    kiln_image::check_layer(&layer_tar(&store, &info)[..], &limits).unwrap();
}
