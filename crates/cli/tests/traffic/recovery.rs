//! The daemon SIGKILLed in the middle of a canary step.

use std::time::{Duration, Instant};

use super::harness::{Spec, World, canary, render_events};
use super::load::{Config, Load};

#[test]
fn daemon_sigkill_during_canary_step() {
    let spec = |port| Spec::new(port).strategy(canary(&[25, 50, 100], "3s", 0.01, 50));
    let mut w = World::deployed(5, &[], spec);
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(1));

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply_detach();
    w.wait_rollout(Duration::from_secs(30), "the canary at step 2", |r| {
        r.step == 2
    });
    w.kill_daemon();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let up = Instant::now();
    w.start_daemon();

    let mut seen = Vec::new();
    let status = w.wait_for(
        Duration::from_secs(45),
        "the canary done after the restart",
        || {
            let r = w.rollout()?;
            seen.push((r.step, r.weight, r.phase.clone()));
            if r.phase == "completed" && r.done {
                Ok(r)
            } else {
                Err(format!("{r:#?}"))
            }
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("{}", report.summary());

    let outage = report.between(down, up);
    w.check(
        outage.len() > 300 && outage.iter().all(|s| !s.failed()),
        || {
            format!(
                "while the daemon was down: {} requests, {} failed\n{}",
                outage.len(),
                outage.iter().filter(|s| s.failed()).count(),
                report.summary()
            )
        },
    );
    w.check(seen.iter().all(|(step, _, _)| *step >= 2), || {
        format!(
            "after the restart the rollout went back: {seen:?}\nevents:\n{}",
            render_events(&w.events())
        )
    });
    w.check(status.weight == 100, || format!("{status:#?}"));
    w.expect_clean_load(&report, 200.0);
}

/// The daemon supervises the proxy: a SIGKILLed proxy is started again and serves the
/// last confirmed table (persisted by the proxy), without any change being applied.
#[test]
fn killed_proxy_is_restarted_and_serves_again() {
    let w = World::deployed(9, &[], Spec::new);
    let before = w.proxy_pids();
    w.check(before.len() == 1, || {
        format!("one proxy expected, found {before:?}")
    });
    super::harness::signal(before[0], rustix::process::Signal::KILL);
    let killed = Instant::now();
    w.wait_for(Duration::from_secs(10), "a new proxy", || {
        let now = w.proxy_pids();
        if now.len() == 1 && now != before {
            Ok(())
        } else {
            Err(format!("proxies: {now:?}"))
        }
    });
    w.wait_serving("v1", Duration::from_secs(10));
    let back = killed.elapsed();
    w.check(back < Duration::from_secs(6), || {
        format!("the route served again only after {back:?}")
    });
    let events = w.events();
    w.check(events.iter().any(|e| e.kind == "proxy.started"), || {
        format!("no proxy.started event:\n{}", render_events(&events))
    });
}
