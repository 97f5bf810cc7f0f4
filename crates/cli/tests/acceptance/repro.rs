//! Reproducibility: the same spec and inputs give the same digest in another folder,
//! with other mtimes, at another time, into another store; and --verify-repro says so.

use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::harness::*;

const SPEC: &str = r#"
[image.base]
entrypoint = ["/bin/busybox"]
[[image.base.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.base.step]]
copy = "site"
to = "/srv/site"

[image.built]
[[image.built.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.built.step]]
copy = "site/*.html"
to = "/www/"
[[image.built.step]]
run = ["/bin/busybox", "sh", "-c", "mkdir -p /gen && echo generated > /gen/out.txt && ls /www > /gen/list"]
[[image.built.step]]
run = ["/bin/busybox", "sh", "-c", "/bin/busybox stat -c '%Y %a %u' /gen/out.txt /www /bin > /gen/seen"]
"#;

fn make_context(w: &World, name: &str, mtime: SystemTime) -> std::path::PathBuf {
    let ctx = w.path().join(name);
    let spec = w.spec_in(&ctx, SPEC);
    w.busybox(&ctx);
    fs::create_dir_all(ctx.join("site/img")).unwrap();
    fs::write(ctx.join("site/index.html"), "<h1>kiln</h1>\n").unwrap();
    fs::write(ctx.join("site/about.html"), "<p>about</p>\n").unwrap();
    fs::write(ctx.join("site/img/logo.svg"), "<svg/>\n").unwrap();
    for f in [
        "busybox",
        "site/index.html",
        "site/about.html",
        "site/img/logo.svg",
        "site/img",
        "site",
    ] {
        fs::File::options()
            .write(f.ends_with(".html") || f.ends_with(".svg") || f == "busybox")
            .read(true)
            .open(ctx.join(f))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    spec
}

#[test]
fn the_same_spec_in_two_folders_at_two_times_gives_the_same_digests() {
    require(&["runc"]);
    let w = World::new();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let spec_a = make_context(&w, "a", old);
    let out_a = ok(w.kiln_home(
        &w.path().join("home-a"),
        &["build", "-f", spec_a.to_str().unwrap(), "--tag", "t"],
    ));
    std::thread::sleep(Duration::from_millis(1100));
    let spec_b = make_context(&w, "elsewhere/b", SystemTime::now());
    let out_b = ok(w.kiln_home(
        &w.path().join("home-b"),
        &["build", "-f", spec_b.to_str().unwrap(), "--tag", "t"],
    ));
    assert_eq!(digest_of(&out_a, "base"), digest_of(&out_b, "base"));
    assert_eq!(
        digest_of(&out_a, "built"),
        digest_of(&out_b, "built"),
        "the image with a RUN step"
    );
}

#[test]
fn verify_repro_reports_equal_digests() {
    require(&["runc"]);
    let w = World::new();
    let spec = make_context(&w, "ctx", SystemTime::now());
    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--verify-repro"]));
    assert!(out.contains("base: reproducible sha256:"), "{out}");
    assert!(out.contains("built: reproducible sha256:"), "{out}");
}

#[test]
fn verify_repro_names_the_file_that_differs() {
    require(&["runc"]);
    let w = World::new();
    let spec = w.spec(
        r#"
[image.clock]
[[image.clock.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.clock.step]]
run = ["/bin/busybox", "sh", "-c", "cat /proc/sys/kernel/random/uuid > /stamp"]
"#,
    );
    w.busybox(&w.ctx());
    let out = w.kiln(&["build", "-f", spec.to_str().unwrap(), "--verify-repro"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("clock: NOT reproducible"), "{stdout}");
    assert!(
        stdout.contains("/stamp: ") && stdout.contains("content"),
        "{stdout}"
    );
    let _ = Command::new("true").status();
}
