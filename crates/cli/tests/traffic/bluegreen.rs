//! A blue/green switch under load.

use std::time::{Duration, Instant};

use super::harness::{Spec, World, blue_green, render_events};
use super::load::{Config, Load, Report};

#[test]
fn blue_green_under_load_zero_failures() {
    let spec = |port| Spec::new(port).strategy(blue_green("0s", "2s"));
    let w = World::deployed(1, &[], spec);
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(2));

    w.write_spec(&spec(w.route_port).greeting("v2"));
    let applied = w.apply();
    let status = w.wait_rollout(
        Duration::from_secs(30),
        "the blue/green rollout done",
        |r| r.phase == "completed" && r.done,
    );
    let done_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("{}", report.summary());

    w.check(status.kind == "blue-green", || format!("{status:#?}"));
    w.expect_clean_load(&report, 200.0);
    let versions = Report::versions(&report.samples.iter().collect::<Vec<_>>());
    w.check(
        versions.get("v1").is_some_and(|n| *n > 0) && versions.get("v2").is_some_and(|n| *n > 0),
        || {
            format!(
                "both versions should have answered: {versions:?}\napply:\n{applied}\n{}",
                report.summary()
            )
        },
    );
    // Once the switch is seen, new requests go to v2 (slack for requests in flight).
    let first_v2 = report
        .samples
        .iter()
        .filter(|s| s.version.as_deref() == Some("v2"))
        .map(|s| s.end)
        .min()
        .unwrap();
    let late_v1: Vec<_> = report
        .samples
        .iter()
        .filter(|s| s.start > first_v2 + Duration::from_millis(500))
        .filter(|s| s.version.as_deref() != Some("v2"))
        .collect();
    w.check(late_v1.is_empty(), || {
        format!(
            "{} requests started more than 500 ms after the first v2 answer were not v2: {:?}\nevents:\n{}\n{}",
            late_v1.len(),
            late_v1.iter().take(5).collect::<Vec<_>>(),
            render_events(&w.events()),
            report.summary()
        )
    });
    w.expect_only_after(&report, done_at, "v2");
}
