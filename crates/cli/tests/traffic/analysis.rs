//! The analysis judging a canary: a bad version aborted at its first step, and no
//! verdict without traffic.

use std::time::{Duration, Instant};

use super::harness::{Spec, World, canary, render_events, streams};
use super::load::{Config, Load, Report};

#[test]
fn canary_bad_version_aborts_at_first_step() {
    let spec = |port| Spec::new(port).strategy(canary(&[10, 50, 100], "3s", 0.05, 50));
    let w = World::deployed(3, &[], spec);
    let load = Load::start(&w.route(), Config::on("/cgi-bin/flaky"));
    std::thread::sleep(Duration::from_secs(1));

    w.write_spec(&spec(w.route_port).greeting("v2").fail_percent(30));
    let out = w.apply_output();
    let text = streams(&out);
    let status = w.wait_rollout(Duration::from_secs(30), "the aborted canary done", |r| {
        r.phase == "aborted" && r.done
    });
    let done_at = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let report = load.stop();
    eprintln!("{}", report.summary());

    w.check(!out.status.success() && text.contains("aborted"), || {
        format!(
            "kiln apply should fail saying the rollout aborted: {}\n{text}",
            out.status
        )
    });
    w.check(status.step == 1 && status.weight == 0, || {
        format!(
            "aborted at step 1 with the traffic back on stable: {status:#?}\nevents:\n{}",
            render_events(&w.events())
        )
    });
    let failed = report.failed().len();
    let share = failed as f64 / report.total() as f64;
    w.check(report.rps() >= 200.0, || {
        format!(
            "the load reached only {:.0} req/s\n{}",
            report.rps(),
            report.summary()
        )
    });
    w.check(failed > 0 && share < 0.08, || {
        format!(
            "failures should be bounded by the first step's share (and the bad version seen): {failed}/{} = {share:.3}\n{}",
            report.total(),
            report.summary()
        )
    });
    let after = report.between(done_at, report.stopped);
    w.check(
        !after.is_empty()
            && after
                .iter()
                .all(|s| !s.failed() && s.version.as_deref() == Some("v1")),
        || {
            format!(
                "after the abort, no errors and only v1: {} requests, versions {:?}\n{}",
                after.len(),
                Report::versions(&after),
                report.summary()
            )
        },
    );
    let ps = w.ps();
    w.check(
        ps.iter().all(|i| i.version != status.canary) && ps.len() == 3,
        || {
            format!(
                "no instance of {} should remain, 3 of {}: {ps:#?}",
                status.canary, status.stable
            )
        },
    );
}

#[test]
fn too_little_traffic_is_inconclusive() {
    let spec = |port| Spec::new(port).strategy(canary(&[50, 100], "1s", 0.01, 50));
    let w = World::deployed(4, &[], spec);

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply_detach();
    w.wait_rollout(Duration::from_secs(30), "the canary at step 1, 50 %", |r| {
        r.step == 1 && r.weight == 50
    });
    std::thread::sleep(Duration::from_secs(5));
    let r = w.rollout().unwrap_or_else(|e| w.fail(&e));
    w.check(
        r.phase == "progressing" && r.step == 1 && r.weight == 50 && r.reason.contains("inconclusive"),
        || format!("after 5 s without traffic: progressing at step 1, 50 %, inconclusive: {r:#?}\nevents:\n{}", render_events(&w.events())),
    );

    w.ok(&["rollout", "abort", "web"]);
    let r = w.wait_rollout(Duration::from_secs(30), "the aborted canary done", |r| {
        r.phase == "aborted" && r.done
    });
    w.wait_for(
        Duration::from_secs(30),
        "the canary's instances gone",
        || {
            let ps = w.ps();
            if ps.iter().any(|i| i.version == r.canary) || ps.len() != 3 {
                Err(format!("{ps:#?}"))
            } else {
                Ok(())
            }
        },
    );
    w.wait_serving("v1", Duration::from_secs(5));
}
