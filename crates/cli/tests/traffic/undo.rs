//! `kiln rollout undo`: back to the previous version the same way, traffic first.

use std::time::Duration;

use super::harness::{Spec, World, canary};
use super::load::{Config, Load};

#[test]
fn undo_returns_to_the_previous_version_under_load() {
    let spec = |port| Spec::new(port).strategy(canary(&[50, 100], "1s", 0.01, 20));
    let w = World::deployed(10, &[], spec);
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(1));

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply();
    w.wait_rollout(Duration::from_secs(30), "v2 completed", |r| {
        r.phase == "completed" && r.done && !r.is_undo
    });
    w.wait_serving("v2", Duration::from_secs(5));

    w.ok(&["rollout", "undo", "web"]);
    let status = w.wait_rollout(Duration::from_secs(30), "the undo completed", |r| {
        r.is_undo && r.phase == "completed" && r.done
    });
    w.wait_serving("v1", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("{}", report.summary());
    w.expect_clean_load(&report, 200.0);
    for _ in 0..10 {
        let v = w.version_via_route(None);
        w.check(v == "v1", || {
            format!("after undo: {v}, want v1; {status:#?}")
        });
    }
    // The undone version goes (after its stop grace), the previous one runs as many
    // replicas as before.
    w.wait_for(
        Duration::from_secs(15),
        "3 instances after the undo",
        || {
            let ps = w.ps();
            if ps.len() == 3 && ps.iter().all(|i| i.state == "running") {
                Ok(())
            } else {
                Err(format!("{ps:#?}"))
            }
        },
    );
}
