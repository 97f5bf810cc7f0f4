//! Building from scratch, RUN steps, the cache and copy_binary, checked with runc.

use std::fs;
use std::process::Command;

use super::harness::*;

const HELLO: &str = r#"
[image.hello]
entrypoint = ["/bin/busybox", "sh", "-c"]
cmd = ["echo hello from $GREETING; cat /etc/motd"]
env = { GREETING = "kiln" }
labels = { "org.opencontainers.image.title" = "hello" }
expose = [8080]

[[image.hello.step]]
copy = "busybox"
to = "/bin/busybox"
mode = "0755"

[[image.hello.step]]
copy = "files/motd"
to = "/etc/motd"
"#;

#[test]
fn a_scratch_busybox_image_runs_under_runc_after_export() {
    require(&["runc", "umoci", "skopeo"]);
    let w = World::new();
    let spec = w.spec(HELLO);
    w.busybox(&w.ctx());
    fs::create_dir_all(w.ctx().join("files")).unwrap();
    fs::write(w.ctx().join("files/motd"), "motd from the context\n").unwrap();

    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "v1"]));
    let digest = digest_of(&out, "hello");
    assert!(out.starts_with("hello:v1 sha256:"), "{out}");

    let oci = w.path().join("oci");
    ok(w.kiln(&[
        "export",
        "hello:v1",
        "--format",
        "oci-dir",
        "--dest",
        oci.to_str().unwrap(),
    ]));
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:v1", oci.display())));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"].as_str(), Some(digest.as_str()));
    assert_eq!(inspect["Labels"]["org.opencontainers.image.title"], "hello");

    let runc = Runc::new(&w.path().join("runc"));
    let stdout = runc.run_image(&format!("{}:v1", oci.display()), &w.path().join("bundle"));
    assert_eq!(stdout, "hello from kiln\nmotd from the context\n");

    // kiln inspect shows the config and every layer with digest, diff_id and size.
    let json = ok(w.kiln(&["inspect", "hello:v1", "--output", "json"]));
    let info: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(info["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(info["layers"].as_array().unwrap().len(), 2);
    for l in info["layers"].as_array().unwrap() {
        assert!(l["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(l["diff_id"].as_str().unwrap().starts_with("sha256:"));
        assert!(l["size"].as_u64().unwrap() > 0);
    }
    assert_eq!(info["config"]["Env"][0], "GREETING=kiln");
    let images = ok(w.kiln(&["images", "--output", "json"]));
    assert!(
        images.contains("\"hello\"") && images.contains(&digest),
        "{images}"
    );
}

#[test]
fn a_run_step_that_creates_and_deletes_files_yields_a_whiteout() {
    require(&["runc", "umoci"]);
    let w = World::new();
    let spec = w.spec(
        r#"
[image.app]
cmd = ["/bin/busybox", "sh", "-c", "ls /; cat /new.txt; test ! -e /old.txt && echo old-is-gone"]

[[image.app.step]]
copy = "busybox"
to = "/bin/busybox"

[[image.app.step]]
copy = "old.txt"
to = "/old.txt"

[[image.app.step]]
run = ["/bin/busybox", "sh", "-c", "echo new > /new.txt && rm /old.txt"]
"#,
    );
    w.busybox(&w.ctx());
    fs::write(w.ctx().join("old.txt"), "old\n").unwrap();
    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "t"]));
    let digest = digest_of(&out, "app");
    let m = manifest(&w.home(), &digest);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let run_layer = layer_entries(&blob_path(&w.home(), layers[2]["digest"].as_str().unwrap()));
    let mut names: Vec<_> = run_layer.iter().map(|(p, _, _)| p.as_str()).collect();
    names.sort();
    assert_eq!(names, vec![".wh.old.txt", "new.txt"], "{run_layer:?}");

    let oci = w.path().join("oci");
    ok(w.kiln(&[
        "export",
        "app:t",
        "--format",
        "oci-dir",
        "--dest",
        oci.to_str().unwrap(),
    ]));
    let runc = Runc::new(&w.path().join("runc"));
    let bundle = w.path().join("bundle");
    let stdout = runc.run_image(&format!("{}:t", oci.display()), &bundle);
    assert!(stdout.contains("new\nold-is-gone"), "{stdout}");
    assert!(!bundle.join("rootfs/old.txt").exists());
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/new.txt")).unwrap(),
        "new\n"
    );
    // The sandbox left nothing behind: no container, no mount.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(w.home().to_str().unwrap()), "{mounts}");
}

#[test]
fn an_unchanged_rebuild_does_no_step_work_and_prints_the_same_digest() {
    require(&["runc"]);
    let w = World::new();
    let spec = w.spec(
        r#"
[image.hello]
[[image.hello.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.hello.step]]
run = ["/bin/busybox", "sh", "-c", "echo built > /built.txt"]
"#,
    );
    w.busybox(&w.ctx());
    let first = w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "x"]);
    let first_err = String::from_utf8_lossy(&first.stderr).to_string();
    let first = ok(first);
    assert!(!first_err.contains("(cached)"), "{first_err}");

    let second = w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "x"]);
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    let second = ok(second);
    assert_eq!(first, second);
    let steps: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains(": step ") && !l.contains("step 1/"))
        .collect();
    assert_eq!(steps.len(), 2, "{stderr}");
    assert!(steps.iter().all(|l| l.ends_with("(cached)")), "{stderr}");

    // A changed input is noticed; --no-cache redoes everything and gives the same digest.
    let third = ok(w.kiln(&[
        "build",
        "-f",
        spec.to_str().unwrap(),
        "--tag",
        "x",
        "--no-cache",
    ]));
    assert_eq!(first, third);
}

#[test]
fn a_copy_binary_image_of_a_dynamic_program_runs_from_scratch() {
    require(&["runc", "umoci", "cc"]);
    let w = World::new();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.c");
    fs::create_dir_all(w.ctx().join("out")).unwrap();
    run(Command::new("cc")
        .args(["-O2", "-o"])
        .arg(w.ctx().join("out/hello"))
        .arg(src)
        .arg("-lm"));
    let ldd = run(Command::new("ldd").arg(w.ctx().join("out/hello")));
    assert!(
        ldd.contains("libm.so"),
        "the fixture must be dynamically linked: {ldd}"
    );
    let spec = w.spec(
        r#"
[image.dyn]
entrypoint = ["/app/hello"]
cmd = ["16"]

[[image.dyn.step]]
copy_binary = "out/hello"
to = "/app/hello"
"#,
    );
    ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "--tag", "t"]));
    let oci = w.path().join("oci");
    ok(w.kiln(&[
        "export",
        "dyn:t",
        "--format",
        "oci-dir",
        "--dest",
        oci.to_str().unwrap(),
    ]));
    let runc = Runc::new(&w.path().join("runc"));
    let stdout = runc.run_image(&format!("{}:t", oci.display()), &w.path().join("bundle"));
    assert_eq!(stdout, "hello from a dynamic binary: sqrt(16.0) = 4.0000\n");
}

#[test]
fn multi_stage_copy_takes_files_out_of_another_image() {
    require(&["runc"]);
    let w = World::new();
    let spec = w.spec(
        r#"
[image.builder]
[[image.builder.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.builder.step]]
run = ["/bin/busybox", "sh", "-c", "mkdir -p /out && echo artifact > /out/app && ln -s /out/app /out/link"]

[image.app]
[[image.app.step]]
copy = "/out"
from_image = "builder"
to = "/app"
"#,
    );
    w.busybox(&w.ctx());
    let out = ok(w.kiln(&["build", "-f", spec.to_str().unwrap(), "app", "--tag", "t"]));
    assert!(
        out.contains("builder:t ") && out.contains("app:t "),
        "{out}"
    );
    let m = manifest(&w.home(), &digest_of(&out, "app"));
    let entries = layer_entries(&blob_path(
        &w.home(),
        m["layers"][0]["digest"].as_str().unwrap(),
    ));
    let names: Vec<_> = entries.iter().map(|(p, t, _)| format!("{p} {t}")).collect();
    assert_eq!(
        names,
        vec!["app/ 5", "app/app 0", "app/link 2"],
        "{entries:?}"
    );
}

#[test]
fn a_failing_run_step_leaves_no_container_mount_or_temp_dir() {
    require(&["runc"]);
    let w = World::new();
    let spec = w.spec(
        r#"
[image.broken]
[[image.broken.step]]
copy = "busybox"
to = "/bin/busybox"
[[image.broken.step]]
run = ["/bin/busybox", "sh", "-c", "echo partial > /partial; exit 7"]
"#,
    );
    w.busybox(&w.ctx());
    let err = fails(w.kiln(&["build", "-f", spec.to_str().unwrap()]));
    assert!(
        err.contains("step 2") && err.contains("kiln.toml:6"),
        "{err}"
    );
    assert!(err.contains('7'), "the exit code is reported: {err}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(w.home().to_str().unwrap()), "{mounts}");
    let listed = run(Command::new("runc")
        .arg("--root")
        .arg(w.home().join("runc"))
        .args(["list", "-q"]));
    assert_eq!(listed.trim(), "");
    let leftovers: Vec<_> = fs::read_dir(w.home().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let images = ok(w.kiln(&["images", "-o", "json"]));
    assert_eq!(images.trim(), "[]");
}
