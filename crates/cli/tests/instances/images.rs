//! The store and the instances: removing a tag never takes what an instance runs.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;

use super::harness::{CONVERGE, World, alive, expect_body, ids, signal, spec};

/// A second image, only there to show that `kiln rmi` really collected garbage.
const OTHER: &str = r#"
[image.other]
from = "scratch"

[[image.other.step]]
copy = "www"
to = "/other"
"#;

/// The hex of a `sha256:<hex>` digest.
fn hex(digest: &serde_json::Value) -> String {
    let d = digest
        .as_str()
        .unwrap_or_else(|| panic!("not a digest: {digest}"));
    d.strip_prefix("sha256:").unwrap_or(d).to_string()
}

#[test]
fn removed_tag_keeps_running_image() {
    let mut w = World::new(12);
    w.write_spec(&format!("{}{OTHER}", spec(2, "one")));
    w.build_tag("v1");
    w.start_daemon();
    let plan = w.apply();
    assert!(plan.contains("create:"), "{plan}");
    let ps = w.wait_converged(2, CONVERGE);

    let inspect = |reference: &str| -> serde_json::Value {
        let out = w.ok(&["inspect", reference, "--output", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect {reference}: {e}:\n{out}"))
    };
    let web = inspect("web:v1");
    let other = inspect("other:v1");
    let manifest = hex(&web["digest"]);
    assert_eq!(ps[0].image, format!("sha256:{manifest}"), "{ps:#?}");
    let home = w.home();
    let blob = |h: &str| home.join("store/blobs/sha256").join(h);
    let layer_blobs: Vec<String> = web["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| hex(&l["digest"]))
        .collect();
    let layer_dirs: Vec<String> = web["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| hex(&l["diff_id"]))
        .collect();
    assert!(!layer_dirs.is_empty(), "{web:#}");
    let other_manifest = hex(&other["digest"]);
    assert!(blob(&other_manifest).exists());

    // The daemon stops, its instances keep running; the tag goes.
    w.stop_daemon();
    for i in &ps {
        assert!(
            alive(i.pid.unwrap()),
            "{} died with the daemon's SIGTERM",
            i.id
        );
    }
    let out = w.ok(&["rmi", "web:v1", "other:v1"]);
    assert!(out.contains("web:v1") && out.contains("other:v1"), "{out}");
    let images = w.ok(&["images"]);
    assert!(
        !images
            .lines()
            .any(|l| l.starts_with("web ") || l.starts_with("other ")),
        "the tags are still listed:\n{images}"
    );
    assert!(
        !blob(&other_manifest).exists(),
        "rmi did not collect the unused image `other` (gc deferred? something holds the store)"
    );
    let missing: Vec<String> = std::iter::once(&manifest)
        .chain(&layer_blobs)
        .map(|h| blob(h))
        .chain(layer_dirs.iter().map(|h| home.join("layers").join(h)))
        .filter(|p| !Path::exists(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "rmi collected what the instances run: {missing:#?}"
    );
    for i in &ps {
        expect_body(&i.address, "/greeting", "one\n").unwrap_or_else(|e| w.fail(&e));
    }

    // Back up, the daemon adopts them, and a killed one is replaced from the pinned image.
    w.start_daemon();
    let adopted = w.wait_converged(2, Duration::from_secs(20));
    assert_eq!(ids(&adopted), ids(&ps), "the same instances after restart");
    let victim = adopted[0].clone();
    signal(victim.pid.unwrap(), Signal::KILL);
    let now = w.wait_for(
        Duration::from_secs(20),
        &format!("a replacement of the killed {}", victim.id),
        || {
            let now = w.converged_now(2)?;
            if ids(&now).contains(&victim.id) {
                return Err(format!("{} is still listed: {now:#?}", victim.id));
            }
            Ok(now)
        },
    );
    for i in &now {
        assert_eq!(i.image, format!("sha256:{manifest}"), "{now:#?}");
        expect_body(&i.address, "/greeting", "one\n").unwrap_or_else(|e| w.fail(&e));
    }
    assert!(
        blob(&manifest).exists(),
        "the running image's manifest went"
    );
}
