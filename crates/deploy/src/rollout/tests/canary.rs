//! Canary: steps, confirmation, analysis, pauses, deadlines and aborts.

use super::*;

/// A canary (10 replicas, steps 10/50/100, 30s pause) at step 1 with 10 % confirmed
/// at `t = 2000`.
fn at_first_step(analysis: Option<Thresholds>) -> Rollout {
    let mut r = rollout(Params {
        analysis,
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    assert_eq!(r.step_started_ms, Some(2000));
    r
}

#[test]
fn the_first_steps_instances_start_before_any_traffic() {
    let mut r = rollout(params(Kind::Canary));
    assert_eq!(r.targets(), targets(10, 1, 0));
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.deadline_ms(), Some(600_000));
    assert_eq!(r.tick(&see(1000, 10, 0, Some(0))), targets(10, 1, 0));
    assert_eq!(
        r.reason,
        "waiting for 1 of 1 new instances to be ready for step 1 (10 %)"
    );
}

#[test]
fn a_step_needs_ceil_of_its_share_of_instances() {
    let r = rollout(Params {
        replicas: 3,
        steps: vec![5, 34, 100],
        ..params(Kind::Canary)
    });
    assert_eq!(r.canary_for(5), 1);
    assert_eq!(r.canary_for(34), 2);
    assert_eq!(r.canary_for(100), 3);
    assert_eq!(r.canary_for(0), 1);
}

#[test]
fn the_weight_moves_once_the_instances_are_ready_and_waits_for_confirmation() {
    let mut r = rollout(params(Kind::Canary));
    assert_eq!(r.tick(&see(1000, 10, 1, Some(0))), targets(10, 1, 10));
    assert_eq!(r.weight, 10);
    assert_eq!(r.step_started_ms, None);
    assert_eq!(
        r.reason,
        "waiting for the proxy to confirm 10 % at step 1 (10 %) (confirmed: 0 %)"
    );
    r.tick(&see(1500, 10, 1, None));
    assert_eq!(
        r.reason,
        "waiting for the proxy to confirm 10 % at step 1 (10 %)"
    );
    assert_eq!(r.deadline_ms(), Some(1000 + 600_000));
}

#[test]
fn confirmation_starts_the_analysis_window_and_the_pause() {
    let r = at_first_step(None);
    assert_eq!(r.targets(), targets(10, 1, 10));
    assert_eq!(
        r.reason,
        "analysing step 1 (10 %) during its 30s pause: no analysis configured"
    );
    assert_eq!(r.deadline_ms(), Some(2000 + 30_000));
}

#[test]
fn after_the_pause_the_next_steps_instances_start_at_the_old_weight() {
    let mut r = at_first_step(None);
    assert_eq!(r.tick(&see(31_999, 10, 1, Some(10))), targets(10, 1, 10));
    assert_eq!(r.step, 0);
    assert_eq!(r.tick(&see(32_000, 10, 1, Some(10))), targets(10, 5, 10));
    assert_eq!(r.step, 1);
    assert_eq!(
        r.reason,
        "waiting for 4 of 5 new instances to be ready for step 2 (50 %)"
    );
    // The window of step 1 goes on until 50 % is confirmed.
    assert_eq!(r.step_started_ms, Some(2000));
    assert_eq!(r.tick(&see(33_000, 10, 5, Some(10))), targets(10, 5, 50));
    r.tick(&see(34_000, 10, 5, Some(50)));
    assert_eq!(r.step_started_ms, Some(34_000));
}

#[test]
fn the_last_step_needs_every_replica_and_100_percent_confirmed() {
    let mut r = rollout(Params {
        pause_ms: Some(0),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    assert_eq!(r.tick(&see(3000, 10, 5, Some(10))), targets(10, 5, 50));
    assert_eq!(r.tick(&see(4000, 10, 5, Some(50))), targets(10, 10, 50));
    assert_eq!(r.tick(&see(5000, 10, 9, Some(50))), targets(10, 10, 50));
    assert_eq!(r.tick(&see(6000, 10, 10, Some(50))), targets(10, 10, 100));
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.tick(&see(7000, 10, 10, Some(100))), targets(0, 10, 100));
    assert_eq!(r.phase, Phase::Completed);
    assert!(r.is_finished());
    assert_eq!(r.deadline_ms(), None);
    assert_eq!(
        r.reason,
        "completed: all traffic on the new version, after 3 steps"
    );
}

#[test]
fn one_tick_passes_every_state_the_observation_allows() {
    let mut r = rollout(Params {
        pause_ms: Some(0),
        steps: vec![0, 100],
        ..params(Kind::Canary)
    });
    // Step 1 is 0 %: already confirmed, no pause, no analysis: straight to step 2.
    assert_eq!(r.tick(&see(1000, 10, 10, Some(0))), targets(10, 10, 100));
    assert_eq!(r.step, 1);
}

#[test]
fn a_passing_analysis_after_the_pause_moves_on() {
    let mut r = at_first_step(Some(analysis()));
    let obs = traffic(see(10_000, 10, 1, Some(10)), 400, 1);
    r.tick(&obs);
    assert_eq!(
        r.reason,
        "analysing step 1 (10 %) during its 30s pause: \
         pass: error rate 0.3 % ≤ 1.0 % over 400 requests"
    );
    let obs = traffic(see(32_000, 10, 1, Some(10)), 900, 1);
    assert_eq!(r.tick(&obs), targets(10, 5, 10));
    assert!(r.last_verdict.as_ref().is_some_and(Verdict::is_pass));
}

#[test]
fn an_inconclusive_analysis_keeps_waiting_with_a_deadline() {
    let mut r = at_first_step(Some(analysis()));
    let obs = traffic(see(40_000, 10, 1, Some(10)), 12, 0);
    assert_eq!(r.tick(&obs), targets(10, 1, 10));
    assert_eq!(
        r.reason,
        "analysing step 1 (10 %): inconclusive: 12 of 50 requests; \
         waiting for a conclusive result"
    );
    assert_eq!(r.phase, Phase::Progressing);
    // The wait counts from the end of the pause.
    assert_eq!(r.state_since_ms, 32_000);
    assert_eq!(r.deadline_ms(), Some(32_000 + 600_000));
    let obs = traffic(see(632_000, 10, 1, Some(10)), 40, 0);
    r.tick(&obs);
    assert_eq!(r.phase, Phase::Progressing);
}

#[test]
fn a_lasting_inconclusive_analysis_aborts_at_the_deadline() {
    let mut r = at_first_step(Some(analysis()));
    r.tick(&traffic(see(40_000, 10, 1, Some(10)), 12, 0));
    let targets_now = r.tick(&traffic(see(632_001, 10, 1, Some(10)), 12, 0));
    assert_eq!(targets_now, targets(10, 1, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): progress deadline of 10m0s passed: analysing step 1 \
         (10 %): inconclusive: 12 of 50 requests; waiting for a conclusive result; moving \
         traffic back to stable: waiting for the proxy to confirm 0 %"
    );
}

#[test]
fn a_failed_analysis_aborts_during_the_pause() {
    let mut r = at_first_step(Some(analysis()));
    let obs = traffic(see(10_000, 10, 1, Some(10)), 400, 124);
    assert_eq!(r.tick(&obs), targets(10, 1, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(!r.is_finished());
    assert_eq!(r.deadline_ms(), None);
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): error rate 31.0 % > 1.0 % over 400 requests; moving \
         traffic back to stable: waiting for the proxy to confirm 0 %"
    );
    assert!(r.last_verdict.as_ref().is_some_and(Verdict::is_fail));
}

#[test]
fn after_an_abort_the_new_instances_go_only_once_0_percent_is_confirmed() {
    let mut r = at_first_step(Some(analysis()));
    r.tick(&traffic(see(10_000, 10, 1, Some(10)), 400, 124));
    assert_eq!(r.tick(&see(11_000, 10, 1, Some(10))), targets(10, 1, 0));
    assert_eq!(r.tick(&see(12_000, 10, 1, None)), targets(10, 1, 0));
    assert_eq!(r.tick(&see(13_000, 10, 1, Some(0))), targets(10, 0, 0));
    assert!(r.is_finished());
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): error rate 31.0 % > 1.0 % over 400 requests; \
         traffic back to stable"
    );
}

#[test]
fn a_failure_while_the_next_steps_instances_start_aborts() {
    let mut r = at_first_step(Some(analysis()));
    r.tick(&traffic(see(32_000, 10, 1, Some(10)), 400, 0));
    assert_eq!(r.step, 1);
    let obs = traffic(see(33_000, 10, 2, Some(10)), 800, 200);
    assert_eq!(r.tick(&obs), targets(10, 5, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(
        r.reason
            .starts_with("aborted at step 2 (50 %): error rate 25.0 %")
    );
}

#[test]
fn the_p99_ratio_is_not_checked_at_100_percent() {
    let t = Thresholds {
        max_p99_ratio_permille: Some(1500),
        ..analysis()
    };
    let mut r = rollout(Params {
        steps: vec![100],
        replicas: 2,
        analysis: Some(t),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 2, 2, Some(0)));
    r.tick(&see(2000, 2, 2, Some(100)));
    let mut obs = traffic(see(40_000, 2, 2, Some(100)), 400, 0);
    obs.stable_window = Window::default();
    assert_eq!(r.tick(&obs), targets(0, 2, 100));
    assert_eq!(r.phase, Phase::Completed);
}

#[test]
fn a_failed_new_instance_aborts() {
    let mut r = rollout(params(Kind::Canary));
    let mut obs = see(1000, 10, 0, Some(0));
    obs.canary_failed = true;
    // No traffic was moved: 0 % is confirmed already, so it finishes at once.
    assert_eq!(r.tick(&obs), targets(10, 0, 0));
    assert!(r.is_finished());
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): a new instance failed (readiness or crash loop); \
         traffic back to stable"
    );
}

#[test]
fn waiting_for_instances_past_the_deadline_aborts() {
    let mut r = rollout(params(Kind::Canary));
    r.tick(&see(600_000, 10, 0, Some(0)));
    assert_eq!(r.phase, Phase::Progressing);
    r.tick(&see(600_001, 10, 0, Some(0)));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): progress deadline of 10m0s passed: waiting for 1 of 1 \
         new instances to be ready for step 1 (10 %); traffic back to stable"
    );
}

#[test]
fn waiting_for_confirmation_past_the_deadline_aborts() {
    let mut r = rollout(params(Kind::Canary));
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(601_001, 10, 1, None));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(
        r.reason
            .contains("passed: waiting for the proxy to confirm 10 %")
    );
    assert_eq!(r.targets(), targets(10, 1, 0));
}

#[test]
fn an_abort_keeps_the_weight_while_no_stable_instance_is_ready() {
    let mut r = at_first_step(None);
    r.command(Command::Abort, 3000).unwrap();
    assert_eq!(r.tick(&see(4000, 0, 1, Some(10))), targets(10, 1, 10));
    assert_eq!(
        r.reason,
        "aborted at step 1 (10 %): requested by kiln rollout abort; waiting for a stable \
         instance to be ready before moving traffic back"
    );
    assert_eq!(r.tick(&see(5000, 1, 1, Some(10))), targets(10, 1, 0));
}

#[test]
fn a_manual_pause_waits_for_promote_without_a_deadline() {
    let mut r = rollout(Params {
        pause_ms: None,
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(r.deadline_ms(), None);
    r.tick(&traffic(see(10_000_000, 10, 1, Some(10)), 12, 0));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(
        r.reason,
        "waiting for kiln rollout promote at step 1 (10 %): inconclusive: 12 of 50 requests"
    );
    // A human decided: inconclusive is allowed.
    r.command(Command::Promote, 10_000_001).unwrap();
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.step, 1);
    assert_eq!(r.targets(), targets(10, 5, 10));
    assert_eq!(
        r.reason,
        "promoted by kiln rollout promote; starting step 2 (50 %)"
    );
}

#[test]
fn a_failure_during_a_manual_pause_aborts() {
    let mut r = rollout(Params {
        pause_ms: None,
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    r.tick(&traffic(see(3000, 10, 1, Some(10)), 100, 50));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(r.targets(), targets(10, 1, 0));
}

#[test]
fn promote_skips_the_rest_of_a_timed_pause() {
    let mut r = at_first_step(None);
    r.command(Command::Promote, 3000).unwrap();
    assert_eq!(r.step, 1);
    assert_eq!(r.targets(), targets(10, 5, 10));
}

#[test]
fn promote_of_the_last_step_completes() {
    let mut r = rollout(Params {
        steps: vec![100],
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 10, Some(0)));
    r.tick(&see(2000, 10, 10, Some(100)));
    r.command(Command::Promote, 3000).unwrap();
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(r.targets(), targets(0, 10, 100));
}

#[test]
fn promote_is_refused_while_waiting_for_instances_or_confirmation() {
    let mut r = rollout(params(Kind::Canary));
    r.tick(&see(1000, 10, 0, Some(0)));
    assert_eq!(
        r.command(Command::Promote, 1001),
        Err(
            "cannot promote: waiting for 1 of 1 new instances to be ready for step 1 (10 %)"
                .to_string()
        )
    );
    r.tick(&see(2000, 10, 1, Some(0)));
    assert_eq!(
        r.command(Command::Promote, 2001),
        Err(
            "cannot promote: waiting for the proxy to confirm 10 % at step 1 (10 %) \
             (confirmed: 0 %)"
                .to_string()
        )
    );
    assert_eq!(r.targets(), targets(10, 1, 10));
}

#[test]
fn a_zero_percent_step_is_not_held_by_an_inconclusive_analysis() {
    let mut r = rollout(Params {
        steps: vec![0, 50, 100],
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    assert_eq!(r.tick(&see(1000, 10, 1, Some(0))), targets(10, 1, 0));
    assert_eq!(r.step_started_ms, Some(1000));
    let obs = traffic(see(31_000, 10, 1, Some(0)), 3, 0);
    assert_eq!(r.tick(&obs), targets(10, 5, 0));
    assert_eq!(r.step, 1);
    // A failing one still aborts.
    let mut r = rollout(Params {
        steps: vec![0, 50, 100],
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&traffic(see(2000, 10, 1, Some(0)), 60, 60));
    assert_eq!(r.phase, Phase::Aborted);
}
