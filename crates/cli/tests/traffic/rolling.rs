//! A rolling replacement under load: batches of `max_surge`, never fewer ready instances
//! than `replicas - max_unavailable`, and no failed request.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::harness::{Spec, World, render_events};
use super::load::{Config, Load};

const ROLLING: &str = r#"[service.web.strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
pause = "1s"
progress_deadline = "60s"
"#;

#[test]
fn rolling_under_load_zero_failures_and_capacity_kept() {
    let spec = |port| Spec::new(port).strategy(ROLLING.to_owned());
    let w = World::deployed(11, &[], spec);
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(1));
    let before = w.events().last().map_or(0, |e| e.seq);
    let old: BTreeSet<String> = w
        .ps()
        .into_iter()
        .filter(|i| i.ready)
        .map(|i| i.id)
        .collect();
    w.check(old.len() == 3, || {
        format!("{} ready before the change, want 3", old.len())
    });

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply();
    let status = w.wait_rollout(
        Duration::from_secs(60),
        "the rolling replacement done",
        |r| r.phase == "completed" && r.done,
    );
    let done_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("{}", report.summary());

    w.check(status.kind == "rolling", || format!("{status:#?}"));
    w.expect_clean_load(&report, 200.0);
    w.expect_only_after(&report, done_at, "v2");

    // Replay the instance events of the change from the instances before it: at most
    // replicas + max_surge instances at any time, and never fewer than replicas ready.
    let events: Vec<_> = w.events().into_iter().filter(|e| e.seq > before).collect();
    let mut existing = old;
    let mut ready = existing.clone();
    let (mut most, mut fewest_ready) = (existing.len(), ready.len());
    let mut created = 0;
    for e in &events {
        let Some(id) = e.instance.clone() else {
            continue;
        };
        match e.kind.as_str() {
            "instance.created" => {
                existing.insert(id);
                created += 1;
            }
            "instance.ready" => {
                ready.insert(id);
            }
            "instance.stopping" | "instance.unready" | "instance.exited" => {
                ready.remove(&id);
                if e.kind == "instance.stopping" {
                    existing.remove(&id);
                }
            }
            _ => {}
        }
        most = most.max(existing.len());
        fewest_ready = fewest_ready.min(ready.len());
    }
    let log = || render_events(&events);
    w.check(created == 3, || {
        format!("{created} instances created, want 3\n{}", log())
    });
    w.check(most <= 4, || {
        format!("{most} instances at once, max_surge allows 4\n{}", log())
    });
    w.check(fewest_ready >= 3, || {
        format!(
            "only {fewest_ready} ready at one point, max_unavailable allows none fewer than 3\n{}",
            log()
        )
    });
}
