//! A service applied once: its replicas serve, run sandboxed, and log.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::{INDEX, World, alive, expect_body, ids};

#[test]
fn apply_three_replicas_serve_http() {
    let w = World::started(1, 3, "one");
    let plan = w.apply();
    assert!(plan.contains("create:"), "{plan}");
    // `kiln apply` returns once converged: nothing left to wait for.
    let ps = w
        .converged_now(3)
        .unwrap_or_else(|e| w.fail(&format!("not converged when apply returned: {e}")));

    assert_eq!(ids(&ps).len(), 3, "ids are distinct: {ps:#?}");
    let addresses: BTreeSet<_> = ps.iter().map(|i| i.address.clone()).collect();
    assert_eq!(addresses.len(), 3, "addresses are distinct: {ps:#?}");
    for i in &ps {
        assert!(i.image.starts_with("sha256:"), "{i:?}");
        assert_eq!(i.image, ps[0].image, "one image: {ps:#?}");
        assert!(
            !i.version.is_empty() && i.version == ps[0].version,
            "{ps:#?}"
        );
        assert!(i.started.is_some(), "{i:?}");
        assert!(i.address.starts_with("127.0.0.1:"), "{i:?}");
        let port: u16 = i.address["127.0.0.1:".len()..].parse().unwrap();
        assert!((w.ports.0..=w.ports.1).contains(&port), "{i:?}");
        let pid = i.pid.unwrap_or_else(|| panic!("no pid: {i:?}"));
        assert!(alive(pid), "pid {pid} of {} is not alive", i.id);
        expect_body(&i.address, "/", INDEX).unwrap_or_else(|e| w.fail(&e));
        expect_body(&i.address, "/greeting", "one\n").unwrap_or_else(|e| w.fail(&e));
    }

    let drift = w.ok(&["drift"]);
    assert!(drift.contains("No drift"), "{drift}");
    let again = w.apply();
    assert!(
        !again.contains("create:") && !again.contains("replace:"),
        "{again}"
    );
    assert_eq!(ids(&w.ps()), ids(&ps), "a second apply changes nothing");
}

#[test]
fn root_filesystem_is_read_only() {
    let (w, ps) = World::converged(2, 1, "one");
    let i = &ps[0];
    let pid = i.pid.unwrap();

    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .rfind(|f| f.get(4) == Some(&"/"))
        .unwrap_or_else(|| panic!("no `/` mount in the instance:\n{mountinfo}"));
    assert!(
        root[5].split(',').any(|o| o == "ro"),
        "the instance's `/` is mounted without `ro`: {}",
        root.join(" ")
    );

    let sh = |script: &str| {
        Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "-p", "-r", "-w", "--"])
            .args(["/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = sh("touch /x");
    assert!(
        !out.status.success(),
        "writing / inside the instance succeeded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sh("touch /tmp/x && echo written");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("written"),
        "writing /tmp inside the instance failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fs::metadata(format!("/proc/{pid}/root/tmp/x")).is_ok(),
        "/tmp/x not visible in the instance's root"
    );

    let json = fs::read_to_string(format!("/proc/{pid}/root/run/kiln/instance.json"))
        .unwrap_or_else(|e| w.fail(&format!("no /run/kiln/instance.json in {}: {e}", i.id)));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["id"], i.id.as_str(), "{json}");
    assert_eq!(doc["service"], "web", "{json}");
    assert_eq!(doc["address"], i.address.as_str(), "{json}");
    for key in ["image", "version", "environment"] {
        assert!(doc.get(key).is_some(), "no `{key}` in {json}");
    }

    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect();
    let port = i.address.rsplit(':').next().unwrap();
    for want in [
        format!("PORT={port}"),
        format!("KILN_INSTANCE={}", i.id),
        "GREETING=one".to_string(),
    ] {
        assert!(environ.contains(&want), "no {want} in {environ:?}");
    }
}

#[test]
fn logs_show_all_replicas() {
    let (w, ps) = World::converged(8, 3, "one");
    let text = w.wait_for(
        Duration::from_secs(10),
        "`started ID` of every instance in `kiln logs web`",
        || {
            let text = w.ok(&["logs", "web"]);
            let missing: Vec<_> = ps
                .iter()
                .filter(|i| {
                    !text
                        .lines()
                        .any(|l| l.contains(&format!(" {} stdout | started {}", i.id, i.id)))
                })
                .map(|i| i.id.clone())
                .collect();
            if missing.is_empty() {
                Ok(text)
            } else {
                Err(format!("no line from {missing:?} in:\n{text}"))
            }
        },
    );
    assert!(text.lines().all(|l| !l.trim().is_empty()), "{text}");

    let json = w.ok(&["logs", "web", "--output", "json"]);
    let mut seen = BTreeSet::new();
    for line in json.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad JSON log line {line:?}: {e}"));
        assert_eq!(entry["service"], "web", "{line}");
        assert!(
            entry["ts"].is_string() && entry["image"].is_string(),
            "{line}"
        );
        let id = entry["instance"].as_str().unwrap().to_string();
        if entry["stream"] == "stdout" && entry["line"] == format!("started {id}") {
            seen.insert(id);
        }
    }
    assert_eq!(seen, ids(&ps), "{json}");

    // One instance's logs are only its own.
    let one = &ps[0].id;
    let own = w.ok(&["logs", one]);
    assert!(own.contains(&format!("started {one}")), "{own}");
    for other in &ps[1..] {
        assert!(!own.contains(&other.id), "{own}");
    }
}
