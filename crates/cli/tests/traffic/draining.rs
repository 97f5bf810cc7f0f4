//! Old instances leave the proxy before they stop: a long request finishes on a
//! draining instance, and a slow proxy confirmation holds the stop back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::harness::{Spec, TableWatch, World, now_ms, render_events};
use super::load::{self, Config, Load};

#[test]
fn drained_instance_finishes_long_request() {
    let spec = |port| Spec::new(port).grace("10s").slow(4);
    let w = World::deployed(6, &[], spec);
    let old: Vec<String> = w.ps().into_iter().map(|i| i.id).collect();

    let route = w.route();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = load::get(&route, "/cgi-bin/slow", None, Duration::from_secs(20));
        (answer, started.elapsed(), now_ms())
    });
    std::thread::sleep(Duration::from_millis(500));
    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply();
    let (answer, took, finished_ms) = slow.join().unwrap();
    w.wait_for(Duration::from_secs(30), "the old instances stopped", || {
        let events = w.events();
        let stopped = events
            .iter()
            .filter(|e| e.kind == "instance.stopped")
            .filter(|e| e.instance.as_ref().is_some_and(|i| old.contains(i)))
            .count();
        if stopped == old.len() {
            Ok(())
        } else {
            Err(render_events(&events))
        }
    });
    let events = w.events();

    w.check(
        matches!(&answer, Ok((200, body)) if body.trim() == "ok")
            && took >= Duration::from_millis(3500),
        || {
            format!(
                "the slow request: {answer:?} after {took:?}, want 200 ok after 4 s\nevents:\n{}",
                render_events(&events)
            )
        },
    );
    // Not vacuous: the old instances were told to stop while the request was in
    // flight, and one of them (the one serving it) stopped only after it finished.
    let of = |kind: &str| -> BTreeMap<String, i64> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| Some((e.instance.clone()?, e.ms())))
            .filter(|(i, _)| old.contains(i))
            .collect()
    };
    let stopping = of("instance.stopping");
    let stopped = of("instance.stopped");
    w.check(
        stopping.len() == old.len() && stopping.values().all(|t| *t < finished_ms),
        || format!("every old instance should be stopping before the slow request finished (at {finished_ms}): {stopping:?}\nevents:\n{}", render_events(&events)),
    );
    w.check(stopped.values().any(|t| *t >= finished_ms), || {
        format!("the instance serving the slow request should stop after it finished (at {finished_ms}): {stopped:?}\nevents:\n{}", render_events(&events))
    });
}

#[test]
fn old_instance_outlives_unconfirmed_table() {
    let spec = Spec::new;
    let w = World::deployed(8, &[("KILN_PROXY_CONFIRM_DELAY_MS", "2000")], spec);
    let old: Vec<String> = w.ps().into_iter().map(|i| i.id).collect();
    let watch = TableWatch::start(w.home());
    let load = Load::start(&w.route(), Config::on("/"));
    std::thread::sleep(Duration::from_secs(1));
    let first_new_seq = w.events().iter().map(|e| e.seq).max().unwrap_or(0);

    w.write_spec(&spec(w.route_port).greeting("v2"));
    w.apply();
    w.wait_for(Duration::from_secs(45), "the old instances stopped", || {
        let events = w.events();
        let stopped = events
            .iter()
            .filter(|e| e.kind == "instance.stopped")
            .filter(|e| e.instance.as_ref().is_some_and(|i| old.contains(i)))
            .count();
        if stopped == old.len() {
            Ok(())
        } else {
            Err(render_events(&events))
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    eprintln!("{}", report.summary());
    let tables = watch.stop();
    let events = w.events();
    let shown = render_events(&events);

    w.expect_clean_load(&report, 200.0);
    w.check(tables.violations.is_empty(), || {
        format!(
            "routed instances refused connections: {:#?}\nevents:\n{shown}",
            tables.violations
        )
    });
    let find = |kind: &str, id: &str| {
        events
            .iter()
            .find(|e| e.kind == kind && e.instance.as_deref() == Some(id))
            .unwrap_or_else(|| w.fail(&format!("no {kind} event for {id}:\n{shown}")))
    };
    for id in &old {
        let stopping = find("instance.stopping", id);
        let stopped = find("instance.stopped", id);
        let table_between = events
            .iter()
            .any(|e| e.kind == "proxy.table" && e.seq > stopping.seq && e.seq < stopped.seq);
        w.check(table_between, || {
            format!("{id} stopped (seq {}) without a proxy.table confirmed after its stopping (seq {}):\n{shown}", stopped.seq, stopping.seq)
        });
        let last_seen = tables.last_seen(id);
        w.check(last_seen.is_some_and(|t| stopped.ms() > t), || {
            format!("{id} was last seen in the live table at {last_seen:?}, stopped at {} ({})\n{shown}", stopped.ms(), stopped.ts)
        });
    }
    // The delay took effect: the tables pushed for the change were confirmed at least
    // 2 s apart (each waits 2 s in the proxy).
    let confirmed: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "proxy.table" && e.seq > first_new_seq)
        .map(|e| e.ms())
        .collect();
    w.check(
        confirmed.len() >= 2 && confirmed.windows(2).all(|p| p[1] - p[0] >= 1900),
        || format!("proxy.table events after the apply should be ≥ 2 s apart (KILN_PROXY_CONFIRM_DELAY_MS): {confirmed:?}\n{shown}"),
    );
}
