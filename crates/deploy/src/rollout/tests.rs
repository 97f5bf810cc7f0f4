//! One test per rule and message of the rollout state machine; the randomized
//! invariants are in [`simulation`](super::simulation).

mod blue_green;
mod canary;
mod commands;
mod rolling;

use super::*;

const MIN: i64 = 60_000;

fn params(kind: Kind) -> Params {
    Params {
        kind,
        replicas: 10,
        steps: vec![10, 50, 100],
        pause_ms: Some(30_000),
        rollback_window_ms: 600_000,
        max_surge: 1,
        max_unavailable: 0,
        progress_deadline_ms: 600_000,
        analysis: None,
    }
}

fn analysis() -> Thresholds {
    Thresholds {
        max_error_rate_ppm: Some(10_000),
        max_p99_ms: None,
        max_p99_ratio_permille: None,
        min_requests: 50,
    }
}

fn rollout(params: Params) -> Rollout {
    Rollout::new("web", params, "old", "new", 0)
}

/// Everything that runs is ready; no metrics.
fn see(now_ms: i64, stable: u32, canary: u32, confirmed: Option<u32>) -> Observation {
    Observation {
        now_ms,
        stable_ready: stable,
        canary_ready: canary,
        stable_running: stable,
        canary_running: canary,
        confirmed_weight: confirmed,
        canary_window: Window::default(),
        stable_window: Window::default(),
        canary_failed: false,
    }
}

/// The new version's window: `requests`, `errors`.
fn traffic(mut obs: Observation, requests: u64, errors: u64) -> Observation {
    obs.canary_window = Window {
        requests,
        errors,
        p99_ms: Some(100),
    };
    obs.stable_window = Window {
        requests: 1000,
        errors: 0,
        p99_ms: Some(100),
    };
    obs
}

fn targets(stable: u32, canary: u32, canary_weight: u32) -> Targets {
    Targets {
        stable,
        canary,
        canary_weight,
    }
}

#[test]
fn zero_replicas_complete_at_once() {
    let r = rollout(Params {
        replicas: 0,
        ..params(Kind::Canary)
    });
    assert_eq!(r.phase, Phase::Completed);
    assert!(r.is_finished());
    assert_eq!(r.targets(), targets(0, 0, 100));
    assert_eq!(r.reason, "completed: 0 replicas, nothing to replace");
    assert_eq!(r.deadline_ms(), None);
}

#[test]
fn canary_steps_are_normalised() {
    let steps = |steps: Vec<u32>| {
        rollout(Params {
            steps,
            ..params(Kind::Canary)
        })
        .params
        .steps
    };
    assert_eq!(steps(vec![10, 50, 100]), vec![10, 50, 100]);
    assert_eq!(steps(vec![0, 5, 5, 3, 150]), vec![0, 5, 100]);
    assert_eq!(steps(vec![25, 0, 50]), vec![25, 50, 100]);
    assert_eq!(steps(vec![]), vec![100]);
}

#[test]
fn rolling_limits_are_normalised() {
    let limits = |replicas, max_surge, max_unavailable| {
        let p = rollout(Params {
            replicas,
            max_surge,
            max_unavailable,
            ..params(Kind::Rolling)
        })
        .params;
        (p.max_surge, p.max_unavailable)
    };
    assert_eq!(limits(3, 2, 1), (2, 1));
    assert_eq!(limits(3, 0, 5), (0, 2));
    assert_eq!(limits(3, 0, 0), (1, 0));
    assert_eq!(limits(1, 0, 1), (1, 0));
}

#[test]
fn undo_is_a_fast_rollout_back() {
    let r = Rollout::undo(
        "web",
        Params {
            analysis: Some(analysis()),
            pause_ms: None,
            ..params(Kind::Canary)
        },
        "bad",
        "good",
        0,
    );
    assert!(r.is_undo);
    assert_eq!((r.stable.as_str(), r.canary.as_str()), ("bad", "good"));
    assert_eq!(r.params.steps, vec![100]);
    assert_eq!(r.params.pause_ms, Some(0));
    assert_eq!(r.params.analysis, None);
    assert_eq!(r.targets(), targets(10, 10, 0));

    let mut r = r;
    assert_eq!(r.tick(&see(1000, 10, 10, Some(0))), targets(10, 10, 100));
    assert_eq!(r.tick(&see(2000, 10, 10, Some(100))), targets(0, 10, 100));
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(
        r.reason,
        "completed (undo): all traffic on the new version, after 1 step"
    );
}

#[test]
fn the_status_json_has_the_documented_fields() {
    let r = rollout(params(Kind::Canary));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["phase"], "progressing");
    assert_eq!(json["step"], 0);
    assert_eq!(json["weight"], 0);
    assert_eq!(json["stable"], "old");
    assert_eq!(json["canary"], "new");
    assert_eq!(
        json["reason"],
        "waiting for 1 of 1 new instances to be ready for step 1 (10 %)"
    );
    assert_eq!(json["params"]["kind"], "canary");
}

#[test]
fn a_deserialized_rollout_carries_on_identically() {
    let mut r = rollout(Params {
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    r.command(Command::Pause, 3000).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    let mut copy: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(copy, r);
    for obs in [
        traffic(see(4000, 10, 1, Some(10)), 100, 0),
        traffic(see(50_000, 10, 1, Some(10)), 100, 0),
    ] {
        assert_eq!(copy.tick(&obs), r.tick(&obs));
        assert_eq!(copy, r);
    }
    assert_eq!(
        copy.command(Command::Resume, 60_000),
        r.command(Command::Resume, 60_000)
    );
    let obs = traffic(see(100_000, 10, 1, Some(10)), 100, 0);
    assert_eq!(copy.tick(&obs), r.tick(&obs));
    assert_eq!(copy, r);
}

#[test]
fn a_finished_rollout_ignores_ticks() {
    let mut r = rollout(params(Kind::BlueGreen));
    r.command(Command::Abort, 10).unwrap();
    r.tick(&see(20, 10, 0, Some(0)));
    assert!(r.is_finished());
    let before = r.clone();
    let mut obs = see(MIN, 0, 0, None);
    obs.canary_failed = true;
    assert_eq!(r.tick(&obs), targets(10, 0, 0));
    assert_eq!(r, before);
}
