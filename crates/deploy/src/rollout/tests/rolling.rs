//! Rolling: batches within max_surge and max_unavailable, weight following readiness.

use super::*;

fn rolling(replicas: u32, max_surge: u32, max_unavailable: u32, pause_ms: Option<u64>) -> Rollout {
    rollout(Params {
        replicas,
        max_surge,
        max_unavailable,
        pause_ms,
        ..params(Kind::Rolling)
    })
}

#[test]
fn one_at_a_time_with_surge_keeps_every_replica_ready() {
    let mut r = rolling(3, 1, 0, Some(0));
    assert_eq!(r.reason, "starting the rolling update of 3 instances");
    assert_eq!(r.tick(&see(1000, 3, 0, Some(0))), targets(3, 1, 0));
    assert_eq!(
        r.reason,
        "waiting for 3 of 3 new instances to be ready; 3 old kept (max surge 1, max \
         unavailable 0)"
    );
    // One new ready: one old may go; traffic follows the instances kept.
    assert_eq!(r.tick(&see(2000, 3, 1, Some(0))), targets(2, 1, 33));
    // The old one stopped: room for the next new one.
    assert_eq!(r.tick(&see(3000, 2, 1, Some(33))), targets(2, 2, 33));
    assert_eq!(r.step, 1);
    assert_eq!(r.tick(&see(4000, 2, 2, Some(33))), targets(1, 2, 67));
    assert_eq!(r.tick(&see(5000, 1, 2, Some(67))), targets(1, 3, 67));
    // All new ready: 100 % first, the last old instance only once it is confirmed.
    assert_eq!(r.tick(&see(6000, 1, 3, Some(67))), targets(1, 3, 100));
    assert_eq!(
        r.reason,
        "waiting for the proxy to confirm 100 % before stopping the last old instance"
    );
    assert_eq!(r.tick(&see(7000, 1, 3, Some(100))), targets(0, 3, 100));
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(
        r.reason,
        "completed: all traffic on the new version, all 3 instances replaced"
    );
}

#[test]
fn the_surge_counts_old_instances_still_running() {
    let mut r = rolling(3, 1, 0, Some(0));
    r.tick(&see(1000, 3, 0, Some(0)));
    r.tick(&see(2000, 3, 1, Some(0)));
    // The daemon has not stopped the old instance yet (confirmation pending).
    let mut obs = see(3000, 3, 1, Some(0));
    obs.stable_running = 3;
    assert_eq!(r.tick(&obs), targets(2, 1, 33));
}

#[test]
fn without_surge_old_instances_go_first() {
    let mut r = rolling(2, 0, 1, Some(0));
    assert_eq!(r.tick(&see(1000, 2, 0, Some(0))), targets(1, 0, 0));
    assert_eq!(r.tick(&see(2000, 1, 0, Some(0))), targets(1, 1, 0));
    // One new ready covers the minimum: the last old one goes after 100 %.
    assert_eq!(r.tick(&see(3000, 1, 1, Some(0))), targets(1, 1, 100));
    assert_eq!(r.tick(&see(4000, 1, 1, Some(100))), targets(0, 1, 100));
    assert_eq!(r.tick(&see(5000, 0, 1, Some(100))), targets(0, 2, 100));
    assert_eq!(
        r.reason,
        "waiting for 1 of 2 new instances to be ready (old instances stopped)"
    );
    assert_eq!(r.tick(&see(6000, 0, 2, Some(100))), targets(0, 2, 100));
    assert_eq!(r.phase, Phase::Completed);
}

#[test]
fn not_ready_old_instances_count_as_unavailable() {
    let mut r = rolling(3, 1, 0, Some(0));
    let mut obs = see(1000, 2, 0, Some(0));
    obs.stable_running = 3;
    r.tick(&obs);
    // 2 old ready + 1 new ready = 3: the not-ready old one may go.
    let mut obs = see(2000, 2, 1, Some(0));
    obs.stable_running = 3;
    assert_eq!(r.tick(&obs), targets(2, 1, 33));
}

#[test]
fn a_paced_batch_waits_for_the_pause() {
    let mut r = rolling(3, 1, 0, Some(30_000));
    assert_eq!(r.tick(&see(1000, 3, 0, Some(0))), targets(3, 1, 0));
    assert_eq!(r.tick(&see(2000, 3, 1, Some(0))), targets(2, 1, 33));
    assert_eq!(r.deadline_ms(), Some(32_000));
    assert_eq!(
        r.reason,
        "batch 1 ready (1 of 3 new); pausing 30s before the next batch: no analysis configured"
    );
    assert_eq!(r.tick(&see(31_999, 2, 1, Some(33))), targets(2, 1, 33));
    assert_eq!(r.tick(&see(32_000, 2, 1, Some(33))), targets(2, 2, 33));
    assert_eq!(r.step, 1);
}

#[test]
fn a_manual_batch_pause_waits_for_promote() {
    let mut r = rolling(3, 1, 0, None);
    r.tick(&see(1000, 3, 0, Some(0)));
    assert_eq!(
        r.command(Command::Promote, 1500),
        Err(
            "cannot promote: waiting for 3 of 3 new instances to be ready; 3 old kept \
             (max surge 1, max unavailable 0)"
                .to_string()
        )
    );
    r.tick(&see(2000, 3, 1, Some(0)));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(r.deadline_ms(), None);
    assert_eq!(
        r.reason,
        "batch 1 ready (1 of 3 new); waiting for kiln rollout promote to start the next batch"
    );
    assert_eq!(r.tick(&see(9_000_000, 2, 1, Some(33))), targets(2, 1, 33));
    r.command(Command::Promote, 9_000_001).unwrap();
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.tick(&see(9_000_002, 2, 1, Some(33))), targets(2, 2, 33));
}

#[test]
fn a_paced_batch_needs_a_passing_analysis() {
    let mut r = rollout(Params {
        replicas: 3,
        pause_ms: Some(1000),
        analysis: Some(analysis()),
        ..params(Kind::Rolling)
    });
    r.tick(&see(1000, 3, 0, Some(0)));
    r.tick(&see(2000, 3, 1, Some(0)));
    // Traffic reaches the new version: the analysis window starts.
    r.tick(&see(2500, 2, 1, Some(33)));
    assert_eq!(r.step_started_ms, Some(2500));
    assert_eq!(
        r.tick(&traffic(see(4000, 2, 1, Some(33)), 10, 0)),
        targets(2, 1, 33)
    );
    assert_eq!(
        r.reason,
        "batch 1 ready (1 of 3 new); waiting for a conclusive analysis before the next \
         batch: inconclusive: 10 of 50 requests"
    );
    assert_eq!(r.deadline_ms(), Some(4000 + 600_000));
    assert_eq!(
        r.tick(&traffic(see(5000, 2, 1, Some(33)), 60, 0)),
        targets(2, 2, 33)
    );
}

#[test]
fn a_failed_analysis_brings_the_old_instances_back() {
    let mut r = rollout(Params {
        replicas: 3,
        pause_ms: Some(0),
        analysis: Some(analysis()),
        ..params(Kind::Rolling)
    });
    r.tick(&see(1000, 3, 0, Some(0)));
    r.tick(&see(2000, 3, 1, Some(0)));
    r.tick(&see(3000, 2, 1, Some(33)));
    let obs = traffic(see(4000, 2, 2, Some(33)), 400, 124);
    assert_eq!(r.tick(&obs), targets(3, 2, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(
        r.reason,
        "aborted with 1 of 3 new instances ready: error rate 31.0 % > 1.0 % over 400 \
         requests; moving traffic back to stable: waiting for the proxy to confirm 0 %"
    );
    assert_eq!(r.tick(&see(5000, 2, 2, Some(0))), targets(3, 0, 0));
    assert!(r.is_finished());
}

#[test]
fn a_stalled_rolling_update_aborts_at_the_deadline() {
    let mut r = rolling(3, 1, 0, Some(0));
    r.tick(&see(1000, 3, 0, Some(0)));
    r.tick(&see(601_000, 3, 0, Some(0)));
    assert_eq!(r.phase, Phase::Progressing);
    r.tick(&see(601_001, 3, 0, Some(0)));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(
        r.reason
            .starts_with("aborted with 0 of 3 new instances ready: progress deadline of 10m0s passed: waiting for 3 of 3")
    );
}

#[test]
fn a_new_ready_instance_is_progress() {
    let mut r = rolling(3, 3, 0, Some(0));
    r.tick(&see(1000, 3, 0, Some(0)));
    assert_eq!(r.targets(), targets(3, 3, 0));
    r.tick(&see(500_000, 3, 1, Some(0)));
    assert_eq!(r.state_since_ms, 500_000);
}
