//! Self-healing at scale: many instances failing at once are one failure, not a crash
//! loop; a real crash loop backs off.

use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::harness::{CONVERGE, IMAGE, World, alive, ids, signal, spec};

/// Waits until `web` has `n` ready instances, none of them in `old`, within `limit` of
/// `since`.
fn replaced_within(
    w: &World,
    n: usize,
    old: &std::collections::BTreeSet<String>,
    since: Instant,
    limit: Duration,
    what: &str,
) -> Vec<super::harness::Instance> {
    let left = limit.saturating_sub(since.elapsed());
    let now = w.wait_for(left, what, || {
        let now = w.converged_now(n)?;
        let kept: Vec<_> = ids(&now).intersection(old).cloned().collect();
        if kept.is_empty() {
            Ok(now)
        } else {
            Err(format!("old instances {kept:?} still listed: {now:#?}"))
        }
    });
    let took = since.elapsed();
    assert!(took <= limit, "{what}: took {took:?}, more than {limit:?}");
    eprintln!("{what}: {took:?}");
    now
}

#[test]
fn many_replicas_die_at_once_recover_fast() {
    let (mut w, ps) = World::converged(14, 8, "one");

    // All 8 die at once: one failure, replaced at once.
    let seq = w.last_seq();
    let killed = Instant::now();
    for i in &ps {
        signal(i.pid.unwrap(), Signal::KILL);
    }
    let now = replaced_within(
        &w,
        8,
        &ids(&ps),
        killed,
        Duration::from_secs(10),
        "8 simultaneously killed instances to be replaced",
    );
    let backoffs: Vec<_> = w
        .events()
        .into_iter()
        .filter(|e| e.seq > seq && e.kind == "service.backoff")
        .collect();
    if !backoffs.is_empty() {
        w.fail(&format!(
            "one simultaneous failure of 8 instances was taken for a crash loop: {backoffs:#?}"
        ));
    }
    w.wait_for(Duration::from_secs(10), "no leftovers", || {
        w.exactly(&ids(&now))
    });

    // The daemon is down while they all die.
    w.kill_daemon();
    for i in &now {
        signal(i.pid.unwrap(), Signal::KILL);
    }
    w.wait_for(Duration::from_secs(5), "the instances to die", || match now
        .iter()
        .find(|i| alive(i.pid.unwrap()))
    {
        Some(i) => Err(format!("{} (pid {:?}) lives", i.id, i.pid)),
        None => Ok(()),
    });
    let restarted = Instant::now();
    w.start_daemon();
    let after = replaced_within(
        &w,
        8,
        &ids(&now),
        restarted,
        Duration::from_secs(10),
        "8 instances killed while the daemon was down to be replaced after its restart",
    );
    w.wait_for(Duration::from_secs(10), "no leftovers", || {
        w.exactly(&ids(&after))
    });
}

#[test]
fn crash_loop_backs_off() {
    let mut w = World::new(15);
    let spec = format!(
        r#"{IMAGE}
[service.crash]
image = "web"
replicas = 1
args = ["/bin/sh", "-c", "exit 3"]
"#
    );
    let spec_path = w.write_spec(&spec);
    w.build();
    w.start_daemon();
    let seq = w.last_seq();
    let applied = Instant::now();
    let plan = w.ok(&["apply", "-f", spec_path.to_str().unwrap(), "--detach"]);
    assert!(plan.contains("create:"), "{plan}");
    std::thread::sleep(Duration::from_secs(6).saturating_sub(applied.elapsed()));

    let events: Vec<_> = w
        .events()
        .into_iter()
        .filter(|e| e.seq > seq && e.service.as_deref() == Some("crash"))
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    let (created, backoffs) = (count("instance.created"), count("service.backoff"));
    let status = w.status();
    let crash = w.service_status(&status, "crash");
    let text = w.ok(&["events", "--service", "crash"]);
    let report = format!(
        "in 6 s: {created} instance.created, {backoffs} service.backoff\nstatus: {crash:#}\nevents:\n{text}"
    );
    eprintln!("{report}");
    if backoffs == 0 {
        w.fail(&format!(
            "no service.backoff event in 6 s of a crash loop: {report}"
        ));
    }
    if !(1..=6).contains(&created) {
        w.fail(&format!(
            "{created} instances created in 6 s of a crash loop (expected 1 to 6): {report}"
        ));
    }
    let backoff = crash["backoff_until_ms"].as_i64();
    let failure = crash["last_failure"].as_str().unwrap_or_default();
    if backoff.is_none() && !failure.contains("code 3") {
        w.fail(&format!(
            "status shows neither backoff_until_ms nor a last_failure with code 3: {report}"
        ));
    }
    assert_ne!(crash["converged"], true, "{report}");
}

#[test]
fn a_started_instance_whose_row_cannot_be_written_is_written_again() {
    let mut w = World::new(16);
    w.daemon_env
        .push(("KILN_TEST_FAIL_STARTED_WRITES".into(), "2".into()));
    w.write_spec(&spec(2, "hello"));
    w.build();
    w.start_daemon();
    let seq = w.last_seq();
    let plan = w.apply();
    assert!(plan.contains("create:"), "{plan}");
    let instances = w.wait_converged(2, CONVERGE);
    let events: Vec<_> = w.events().into_iter().filter(|e| e.seq > seq).collect();
    for instance in &instances {
        let started = events
            .iter()
            .filter(|e| e.kind == "instance.started" && e.instance.as_deref() == Some(&instance.id))
            .count();
        if started != 1 || instance.state != "running" {
            w.fail(&format!(
                "{} is {} with {started} instance.started events, want running with 1",
                instance.id, instance.state
            ));
        }
    }
    let created = events
        .iter()
        .filter(|e| e.kind == "instance.created")
        .count();
    if created != 2 {
        w.fail(&format!(
            "{created} instances created, want 2 (no replacement)"
        ));
    }
    let log = std::fs::read_to_string(w.path().join("daemon.log")).unwrap_or_default();
    if log
        .matches("cannot persist a started instance; retrying")
        .count()
        != 2
    {
        w.fail(&format!(
            "the daemon log should show both injected failures:\n{log}"
        ));
    }
}
