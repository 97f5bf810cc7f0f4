//! Failures: an instance killed, the daemon killed (at rest and mid-replace), a reboot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;

use super::harness::{
    CONVERGE, INDEX, World, alive, expect_body, http_get, ids, mounts_under, random_between,
    signal, spec,
};

/// The liveness probe's interval in `spec`.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(500);

#[test]
fn killed_instance_is_replaced() {
    let (w, ps) = World::converged(3, 3, "one");
    let victim = ps[1].clone();
    let killed = Instant::now();
    signal(victim.pid.unwrap(), Signal::KILL);

    // Acceptance 3: ready within 2× the liveness interval plus its start.
    let allowance = 2 * LIVENESS_INTERVAL + Duration::from_secs(3);
    let now = w.wait_for(
        allowance,
        &format!("the killed {} to be replaced", victim.id),
        || {
            let now = w.converged_now(3)?;
            if ids(&now).contains(&victim.id) {
                return Err(format!("{} is still listed: {now:#?}", victim.id));
            }
            Ok(now)
        },
    );
    let took = killed.elapsed();
    assert!(
        took <= allowance,
        "the replacement was ready {took:?} after the SIGKILL, more than {allowance:?}"
    );
    let old = ids(&ps);
    let new: Vec<_> = ids(&now).difference(&old).cloned().collect();
    assert_eq!(new.len(), 1, "exactly one new instance: {now:#?}");
    let kept: BTreeSet<_> = old.iter().filter(|id| **id != victim.id).cloned().collect();
    assert!(
        kept.is_subset(&ids(&now)),
        "the others kept running: {now:#?}"
    );
    for i in &now {
        expect_body(&i.address, "/", INDEX).unwrap_or_else(|e| w.fail(&e));
    }

    let events = w.events();
    let exited = events
        .iter()
        .find(|e| e.kind == "instance.exited" && e.instance.as_deref() == Some(&victim.id))
        .unwrap_or_else(|| panic!("no instance.exited event for {}: {events:#?}", victim.id));
    assert!(!exited.message.is_empty(), "{exited:?}");
    assert!(
        events.iter().any(|e| e.kind == "instance.created"
            && e.instance.as_deref() == Some(&new[0])
            && e.service.as_deref() == Some("web")),
        "no instance.created event for {}: {events:#?}",
        new[0]
    );
    assert_eq!(w.runc_ids(), ids(&now), "runc has exactly the instances");
}

#[test]
fn daemon_sigkill_in_steady_state() {
    let (mut w, ps) = World::converged(4, 3, "one");
    let pids: BTreeMap<_, _> = ps.iter().map(|i| (i.id.clone(), i.pid)).collect();

    w.kill_daemon();
    assert!(
        !w.kiln(&["status"]).status.success(),
        "kiln status succeeded with the daemon killed"
    );
    for _ in 0..3 {
        for i in &ps {
            expect_body(&i.address, "/", INDEX)
                .unwrap_or_else(|e| w.fail(&format!("while the daemon is down: {e}")));
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    w.start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    let now = w.ps();
    assert_eq!(now.len(), 3, "no duplicates after adoption: {now:#?}");
    assert_eq!(ids(&now), ids(&ps), "the same instances: {now:#?}");
    let now_pids: BTreeMap<_, _> = now.iter().map(|i| (i.id.clone(), i.pid)).collect();
    assert_eq!(now_pids, pids, "the same processes");
    assert_eq!(w.runc_ids(), ids(&ps), "runc has exactly the instances");
    w.converged_now(3)
        .unwrap_or_else(|e| w.fail(&format!("not converged after adoption: {e}")));
    for i in &now {
        expect_body(&i.address, "/", INDEX).unwrap_or_else(|e| w.fail(&e));
    }
}

#[test]
fn daemon_sigkill_mid_replace() {
    let (mut w, ps) = World::converged(5, 3, "one");
    let old = ids(&ps);
    let spec_path = w.write_spec(&spec(3, "two"));
    let plan = w.ok(&["apply", "-f", spec_path.to_str().unwrap(), "--detach"]);
    assert!(plan.contains("replace:"), "{plan}");

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let delay = Duration::from_millis(100 + u64::from(nanos % 301));
    std::thread::sleep(delay);
    w.kill_daemon();
    let context = format!("(daemon SIGKILLed {delay:?} after apply --detach)");

    w.start_daemon();
    w.apply();
    let now = w.wait_converged(3, CONVERGE);
    let now_ids = ids(&now);
    assert!(
        now_ids.is_disjoint(&old),
        "every instance is new {context}: old {old:?}, now {now:#?}"
    );
    for i in &now {
        expect_body(&i.address, "/greeting", "two\n")
            .unwrap_or_else(|e| w.fail(&format!("{e} {context}")));
    }

    let instances_dir = w.home().join("instances");
    w.wait_for(
        Duration::from_secs(10),
        &format!("no leftover containers, dirs or mounts {context}"),
        || {
            let runc = w.runc_ids();
            let dirs: BTreeSet<String> = fs::read_dir(&instances_dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.'))
                .collect();
            let mounts = mounts_under(&instances_dir);
            if runc == now_ids && dirs == now_ids && mounts.len() == 3 {
                Ok(())
            } else {
                Err(format!(
                    "instances {now_ids:?}\nrunc list {runc:?}\ndirs {dirs:?}\nmounts {mounts:#?}"
                ))
            }
        },
    );
}

#[test]
fn daemon_sigkill_during_apply_request() {
    let (mut w, ps) = World::converged(13, 3, "one");
    let mut accepted = "one".to_string();
    let mut before = ids(&ps);
    for greeting in ["a", "b", "c"] {
        let spec_path = w.write_spec(&spec(3, greeting));
        let mut apply = w
            .command(&[
                "apply",
                "-f",
                spec_path.to_str().unwrap(),
                "--timeout",
                "90s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = random_between(Duration::from_millis(30), Duration::from_millis(150));
        std::thread::sleep(delay);
        w.kill_daemon();

        // The apply must notice the daemon's death rather than hang.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = apply.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = apply.kill();
                let _ = apply.wait();
                w.fail(&format!(
                    "kiln apply GREETING={greeting} still runs 30 s after the daemon's SIGKILL"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        let mut err = String::new();
        apply
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        apply
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let context = format!(
            "(daemon SIGKILLed {delay:?} after spawning apply GREETING={greeting}; apply {status}\nstdout:\n{out}\nstderr:\n{err})"
        );

        w.start_daemon();
        let now = w.wait_converged(3, CONVERGE);
        let now_ids = ids(&now);
        let mut seen = BTreeSet::new();
        for i in &now {
            match http_get(&i.address, "/greeting") {
                Ok((200, body)) => {
                    seen.insert(body.trim_end().to_string());
                }
                other => w.fail(&format!("GET /greeting on {}: {other:?} {context}", i.id)),
            }
        }
        let value = seen.iter().next().cloned().unwrap_or_default();
        assert!(
            seen.len() == 1 && (value == accepted || value == greeting),
            "the instances serve {seen:?}, expected all {accepted:?} or all {greeting:?} {context}"
        );
        if value == greeting {
            assert!(
                now_ids.is_disjoint(&before),
                "a new GREETING on an old instance: before {before:?}, now {now:#?} {context}"
            );
        } else {
            assert_eq!(now_ids, before, "replaced without a change {context}");
        }
        w.wait_for(
            Duration::from_secs(10),
            &format!("no leftover containers, dirs, mounts or shims {context}"),
            || w.exactly(&now_ids),
        );
        eprintln!(
            "round GREETING={greeting}: daemon killed {delay:?} after spawning apply (apply {status}), serving {value:?}"
        );
        accepted = value;
        before = now_ids;
    }
}

#[test]
fn reboot_brings_desired_state_back() {
    let (mut w, ps) = World::converged(9, 3, "one");

    // A reboot: the daemon, the shims and the containers die, the mounts go.
    w.kill_daemon();
    w.kill_shims();
    let runc = |args: &[&str]| {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(w.runc_root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    for id in w.runc_ids() {
        runc(&["kill", &id, "KILL"]);
        runc(&["delete", "--force", &id]);
    }
    w.kill_shims();
    let instances_dir = w.home().join("instances");
    w.unmount_under(&instances_dir);
    assert!(w.runc_ids().is_empty(), "{:?}", w.runc_ids());
    assert!(mounts_under(&instances_dir).is_empty());
    w.wait_for(
        Duration::from_secs(5),
        "the old processes to die",
        || match ps.iter().find(|i| alive(i.pid.unwrap())) {
            Some(i) => Err(format!("{} (pid {:?}) lives", i.id, i.pid)),
            None => Ok(()),
        },
    );

    w.start_daemon();
    let now = w.wait_converged(3, CONVERGE);
    for i in &now {
        assert!(alive(i.pid.unwrap()), "{i:?}");
        expect_body(&i.address, "/", INDEX).unwrap_or_else(|e| w.fail(&e));
    }
    assert_eq!(w.runc_ids(), ids(&now), "runc has exactly the instances");
    let drift = w.ok(&["drift"]);
    assert!(drift.contains("No drift"), "{drift}");
}
