//! Pause, resume, abort and the refusals of every command.

use super::*;

/// A canary at step 1 (10 %, confirmed at `t = 2000`), pause 30s.
fn analysing() -> Rollout {
    let mut r = rollout(Params {
        analysis: Some(analysis()),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    r
}

#[test]
fn pause_freezes_the_state_and_its_clocks() {
    let mut r = analysing();
    r.command(Command::Pause, 12_000).unwrap();
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(r.reason, "paused by kiln rollout pause at step 1 (10 %)");
    assert_eq!(r.deadline_ms(), None);
    // Long past the pause and any deadline: nothing moves, the reason stays.
    let obs = traffic(see(5_000_000, 10, 1, Some(10)), 400, 0);
    assert_eq!(r.tick(&obs), targets(10, 1, 10));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(r.reason, "paused by kiln rollout pause at step 1 (10 %)");
    // 20s of the 30s pause remain after resuming.
    r.command(Command::Resume, 1_012_000).unwrap();
    assert_eq!(r.phase, Phase::Progressing);
    assert_eq!(r.reason, "resumed by kiln rollout resume at step 1 (10 %)");
    assert_eq!(r.deadline_ms(), Some(1_032_000));
    let obs = traffic(see(1_031_999, 10, 1, Some(10)), 400, 0);
    assert_eq!(r.tick(&obs), targets(10, 1, 10));
    let obs = traffic(see(1_032_000, 10, 1, Some(10)), 400, 0);
    assert_eq!(r.tick(&obs), targets(10, 5, 10));
}

#[test]
fn pause_freezes_the_progress_deadline() {
    let mut r = rollout(params(Kind::Canary));
    r.tick(&see(1000, 10, 0, Some(0)));
    r.command(Command::Pause, 500_000).unwrap();
    r.tick(&see(2_000_000, 10, 0, Some(0)));
    r.command(Command::Resume, 2_000_000).unwrap();
    // 500s of the deadline had run (since t = 0): 100s remain.
    assert_eq!(r.deadline_ms(), Some(2_100_000));
    r.tick(&see(2_100_000, 10, 0, Some(0)));
    assert_eq!(r.phase, Phase::Progressing);
    r.tick(&see(2_100_001, 10, 0, Some(0)));
    assert_eq!(r.phase, Phase::Aborted);
}

#[test]
fn a_failure_aborts_even_while_paused() {
    let mut r = analysing();
    r.command(Command::Pause, 3000).unwrap();
    let obs = traffic(see(4000, 10, 1, Some(10)), 400, 124);
    assert_eq!(r.tick(&obs), targets(10, 1, 0));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(
        r.reason
            .starts_with("aborted at step 1 (10 %): error rate 31.0 %")
    );
}

#[test]
fn abort_while_paused_goes_back() {
    let mut r = analysing();
    r.command(Command::Pause, 3000).unwrap();
    r.command(Command::Abort, 4000).unwrap();
    assert_eq!(r.tick(&see(5000, 10, 1, Some(10))), targets(10, 1, 0));
    assert_eq!(r.tick(&see(6000, 10, 1, Some(0))), targets(10, 0, 0));
    assert!(r.is_finished());
}

#[test]
fn pause_and_resume_refuse_what_does_not_apply() {
    let mut r = analysing();
    assert_eq!(
        r.command(Command::Resume, 3000),
        Err("not paused".to_string())
    );
    r.command(Command::Pause, 3000).unwrap();
    assert_eq!(
        r.command(Command::Pause, 3001),
        Err("already paused by kiln rollout pause".to_string())
    );
    assert_eq!(
        r.command(Command::Promote, 3002),
        Err("paused by kiln rollout pause: run kiln rollout resume first".to_string())
    );
}

#[test]
fn a_manual_step_is_not_a_pause_to_resume() {
    let mut r = rollout(Params {
        pause_ms: None,
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 1, Some(0)));
    r.tick(&see(2000, 10, 1, Some(10)));
    let waiting = "waiting for kiln rollout promote at step 1 (10 %): no analysis configured";
    assert_eq!(r.reason, waiting);
    assert_eq!(
        r.command(Command::Resume, 3000),
        Err(format!("not paused by kiln rollout pause: {waiting}"))
    );
    assert_eq!(
        r.command(Command::Pause, 3000),
        Err(format!("already paused: {waiting}"))
    );
}

#[test]
fn commands_after_completion_are_refused() {
    let mut r = rollout(Params {
        steps: vec![100],
        pause_ms: Some(0),
        ..params(Kind::Canary)
    });
    r.tick(&see(1000, 10, 10, Some(0)));
    r.tick(&see(2000, 10, 10, Some(100)));
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(
        r.command(Command::Abort, 3000),
        Err(
            "the rollout of web has completed; kiln rollout undo returns to the previous \
             version"
                .to_string()
        )
    );
    for cmd in [Command::Promote, Command::Pause, Command::Resume] {
        assert_eq!(
            r.command(cmd, 3000),
            Err("the rollout of web has completed".to_string())
        );
    }
}

#[test]
fn commands_after_an_abort_are_refused() {
    let mut r = analysing();
    r.command(Command::Abort, 3000).unwrap();
    for cmd in [
        Command::Abort,
        Command::Promote,
        Command::Pause,
        Command::Resume,
    ] {
        assert_eq!(
            r.command(cmd, 3001),
            Err("the rollout of web was aborted".to_string())
        );
    }
}

#[test]
fn commands_serialize_in_lowercase() {
    assert_eq!(
        serde_json::to_string(&Command::Promote).unwrap(),
        r#""promote""#
    );
    let cmd: Command = serde_json::from_str(r#""resume""#).unwrap();
    assert_eq!(cmd, Command::Resume);
}
