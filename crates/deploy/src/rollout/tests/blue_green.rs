//! Blue-green: the whole new set, one switch, the old set warm for the rollback window.

use super::*;

fn blue_green(pause_ms: Option<u64>, analysis: Option<Thresholds>) -> Rollout {
    rollout(Params {
        pause_ms,
        analysis,
        replicas: 3,
        ..params(Kind::BlueGreen)
    })
}

/// Switched at `t = 2000`, the old set warm for 10 minutes.
fn switched(analysis: Option<Thresholds>) -> Rollout {
    let mut r = blue_green(Some(0), analysis);
    r.tick(&see(1000, 3, 3, Some(0)));
    r.tick(&see(2000, 3, 3, Some(100)));
    r
}

#[test]
fn the_whole_new_set_starts_and_must_be_ready() {
    let mut r = blue_green(Some(0), None);
    assert_eq!(r.targets(), targets(3, 3, 0));
    assert_eq!(r.tick(&see(1000, 3, 2, Some(0))), targets(3, 3, 0));
    assert_eq!(
        r.reason,
        "waiting for 1 of 3 new instances to be ready before the switch"
    );
}

#[test]
fn all_traffic_switches_at_once_and_waits_for_confirmation() {
    let mut r = blue_green(Some(0), None);
    assert_eq!(r.tick(&see(1000, 3, 3, Some(0))), targets(3, 3, 100));
    assert_eq!(
        r.reason,
        "waiting for the proxy to confirm 100 % (confirmed: 0 %)"
    );
}

#[test]
fn the_old_set_stays_warm_for_the_rollback_window() {
    let mut r = switched(None);
    assert_eq!(r.targets(), targets(3, 3, 100));
    assert_eq!(r.step_started_ms, Some(2000));
    assert_eq!(r.deadline_ms(), Some(2000 + 600_000));
    assert_eq!(
        r.reason,
        "switched; keeping the old set warm until the 10m0s rollback window ends: \
         no analysis configured"
    );
    assert_eq!(r.tick(&see(601_999, 3, 3, Some(100))), targets(3, 3, 100));
    assert_eq!(r.tick(&see(602_000, 3, 3, Some(100))), targets(0, 3, 100));
    assert_eq!(r.phase, Phase::Completed);
    assert!(r.is_finished());
    assert_eq!(
        r.reason,
        "completed: all traffic on the new version, the old set is released"
    );
}

#[test]
fn a_failure_in_the_window_switches_back() {
    let mut r = switched(Some(analysis()));
    let mut obs = traffic(see(60_000, 3, 3, Some(100)), 400, 124);
    obs.stable_window = Window::default();
    assert_eq!(r.tick(&obs), targets(3, 3, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(
        r.reason,
        "aborted after the switch: error rate 31.0 % > 1.0 % over 400 requests; moving \
         traffic back to stable: waiting for the proxy to confirm 0 %"
    );
    assert_eq!(r.tick(&see(61_000, 3, 3, Some(0))), targets(3, 0, 0));
    assert!(r.is_finished());
}

#[test]
fn an_inconclusive_window_still_completes() {
    let mut r = switched(Some(analysis()));
    r.tick(&traffic(see(602_000, 3, 3, Some(100)), 3, 0));
    assert_eq!(r.phase, Phase::Completed);
}

#[test]
fn abort_within_the_window_switches_back_to_the_warm_set() {
    let mut r = switched(None);
    r.command(Command::Abort, 100_000).unwrap();
    assert_eq!(r.tick(&see(100_001, 3, 3, Some(100))), targets(3, 3, 0));
    assert_eq!(r.tick(&see(100_002, 3, 3, Some(0))), targets(3, 0, 0));
    assert_eq!(
        r.reason,
        "aborted after the switch: requested by kiln rollout abort; traffic back to stable"
    );
}

#[test]
fn promote_ends_the_window_early() {
    let mut r = switched(None);
    r.command(Command::Promote, 3000).unwrap();
    assert_eq!(r.targets(), targets(0, 3, 100));
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(
        r.reason,
        "promoted by kiln rollout promote; completed: all traffic on the new version, \
         the old set is released"
    );
}

#[test]
fn a_timed_pause_holds_the_switch() {
    let mut r = blue_green(Some(30_000), None);
    assert_eq!(r.tick(&see(1000, 3, 3, Some(0))), targets(3, 3, 0));
    assert_eq!(
        r.reason,
        "all 3 new instances ready; switching after the 30s pause"
    );
    assert_eq!(r.deadline_ms(), Some(31_000));
    assert_eq!(r.tick(&see(30_999, 3, 3, Some(0))), targets(3, 3, 0));
    assert_eq!(r.tick(&see(31_000, 3, 3, Some(0))), targets(3, 3, 100));
}

#[test]
fn a_manual_pause_switches_on_promote() {
    let mut r = blue_green(None, None);
    r.tick(&see(1000, 3, 3, Some(0)));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(r.deadline_ms(), None);
    assert_eq!(
        r.reason,
        "all 3 new instances ready; waiting for kiln rollout promote to switch"
    );
    r.command(Command::Promote, 5000).unwrap();
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.targets(), targets(3, 3, 100));
    assert_eq!(
        r.reason,
        "promoted by kiln rollout promote; waiting for the proxy to confirm 100 %"
    );
}

#[test]
fn an_abort_before_the_switch_names_it() {
    let mut r = blue_green(Some(0), None);
    r.command(Command::Abort, 10).unwrap();
    assert_eq!(
        r.reason,
        "aborted before the switch: requested by kiln rollout abort; moving traffic back \
         to stable"
    );
}
