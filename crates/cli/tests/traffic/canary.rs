//! Canaries to a good version: under load through every step, and by hand with the
//! `X-Kiln-Canary` header at a 0 % step.

use std::time::Duration;

use super::harness::{Spec, World, canary, render_events, step_weights};
use super::load::{Config, Load, Report};

#[test]
fn canary_good_version_zero_failures() {
    let spec = |port| Spec::new(port).strategy(canary(&[25, 50, 100], "2s", 0.01, 50));
    let w = World::deployed(2, &[], spec);
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(1));

    w.write_spec(&spec(w.route_port).greeting("v2"));
    let applied = w.apply();
    let status = w.wait_rollout(Duration::from_secs(30), "the canary done", |r| {
        r.phase == "completed" && r.done
    });
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("{}", report.summary());

    let events = w.events();
    w.check(status.kind == "canary" && status.weight == 100, || {
        format!("{status:#?}")
    });
    w.expect_clean_load(&report, 200.0);
    let weights = step_weights(&events);
    w.check(
        [25, 50, 100].iter().all(|s| weights.contains(s)),
        || {
            format!(
                "rollout.step events should show 25, 50 and 100 %, saw {weights:?}\napply:\n{applied}\nevents:\n{}",
                render_events(&events)
            )
        },
    );
    let end = report.between(report.stopped - Duration::from_millis(800), report.stopped);
    w.check(
        end.iter().all(|s| s.version.as_deref() == Some("v2")),
        || {
            format!(
                "at the end every answer should be v2: {:?}\n{}",
                Report::versions(&end),
                report.summary()
            )
        },
    );
}

#[test]
fn canary_header_reaches_canary_at_zero_percent() {
    let spec = |port| Spec::new(port).strategy(canary(&[0, 100], "manual", 0.01, 50));
    let w = World::deployed(7, &[], spec);

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply_detach();
    w.wait_for(
        Duration::from_secs(30),
        "the canary at 0 % to answer pinned requests",
        || {
            let r = w.rollout()?;
            if r.step != 1 || r.weight != 0 {
                return Err(format!("{r:#?}"));
            }
            match super::load::get(
                &w.route(),
                "/",
                Some(("X-Kiln-Canary", "always")),
                Duration::from_secs(2),
            ) {
                Ok((200, body)) if super::load::version_of(&body) == "v2" => Ok(()),
                other => Err(format!("{other:?} with {r:#?}")),
            }
        },
    );
    for _ in 0..20 {
        let (none, never, always) = (
            w.version_via_route(None),
            w.version_via_route(Some("never")),
            w.version_via_route(Some("always")),
        );
        w.check(none == "v1" && never == "v1" && always == "v2", || {
            format!("at 0 %: no header → {none}, never → {never}, always → {always}; want v1, v1, v2\n{:#?}", w.rollout())
        });
    }
    let r = w.rollout().unwrap_or_else(|e| w.fail(&e));
    w.check(
        r.step == 1 && r.weight == 0 && r.phase != "completed",
        || format!("still at step 1, 0 %: {r:#?}"),
    );

    // With a manual pause every step waits for a promote, the last one included: the
    // first moves all traffic to the canary (the old set stays warm), the second ends it.
    w.ok(&["rollout", "promote", "web"]);
    w.wait_rollout(Duration::from_secs(30), "the canary at 100 %", |r| {
        r.step == 2 && r.weight == 100 && r.phase == "paused"
    });
    for _ in 0..10 {
        let v = w.version_via_route(None);
        w.check(v == "v2", || format!("at 100 %: {v}, want v2"));
    }
    w.ok(&["rollout", "promote", "web"]);
    w.wait_rollout(Duration::from_secs(30), "the promoted canary done", |r| {
        r.phase == "completed" && r.done
    });
    for _ in 0..20 {
        let v = w.version_via_route(None);
        w.check(v == "v2", || format!("after promote: {v}, want v2"));
    }
}
