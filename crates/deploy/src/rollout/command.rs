//! `kiln rollout promote|abort|pause|resume` applied to a rollout.

use super::text::elapsed;
use super::{Batch, Command, Phase, Rollout, Stage};
use crate::analysis::Verdict;

/// See [`Rollout::command`].
pub(super) fn apply(rollout: &mut Rollout, cmd: Command, now_ms: i64) -> Result<(), String> {
    let service = &rollout.service;
    match rollout.phase {
        Phase::Completed if cmd == Command::Abort => {
            return Err(format!(
                "the rollout of {service} has completed; kiln rollout undo returns to the \
                 previous version"
            ));
        }
        Phase::Completed => return Err(format!("the rollout of {service} has completed")),
        Phase::Aborted => return Err(format!("the rollout of {service} was aborted")),
        Phase::Progressing | Phase::Paused => {}
    }
    match cmd {
        Command::Abort => {
            rollout.abort(now_ms, "requested by kiln rollout abort");
            Ok(())
        }
        Command::Pause => pause(rollout, now_ms),
        Command::Resume => resume(rollout, now_ms),
        Command::Promote => promote(rollout, now_ms),
    }
}

fn pause(rollout: &mut Rollout, now_ms: i64) -> Result<(), String> {
    if rollout.paused_since_ms.is_some() {
        return Err("already paused by kiln rollout pause".to_string());
    }
    if rollout.phase == Phase::Paused {
        return Err(format!("already paused: {}", rollout.reason));
    }
    rollout.paused_since_ms = Some(now_ms);
    rollout.phase = Phase::Paused;
    rollout.reason = format!("paused by kiln rollout pause {}", rollout.place());
    Ok(())
}

fn resume(rollout: &mut Rollout, now_ms: i64) -> Result<(), String> {
    let Some(since) = rollout.paused_since_ms else {
        return Err(match rollout.phase {
            Phase::Paused => format!("not paused by kiln rollout pause: {}", rollout.reason),
            _ => "not paused".to_string(),
        });
    };
    // The clocks did not run while paused: move them forward by the pause.
    let paused = elapsed(since, now_ms);
    rollout.state_since_ms = super::text::plus(rollout.state_since_ms, paused);
    rollout.frozen_ms = rollout.frozen_ms.saturating_add(paused);
    rollout.paused_since_ms = None;
    rollout.phase = rollout.natural_phase();
    rollout.reason = format!("resumed by kiln rollout resume {}", rollout.place());
    Ok(())
}

fn promote(rollout: &mut Rollout, now_ms: i64) -> Result<(), String> {
    if rollout.paused_since_ms.is_some() {
        return Err("paused by kiln rollout pause: run kiln rollout resume first".to_string());
    }
    if let Some(Verdict::Fail { reason }) = &rollout.last_verdict {
        return Err(format!("the analysis failed: {reason}"));
    }
    match rollout.stage {
        Stage::Analyse { .. } => rollout.next_step(now_ms),
        Stage::Hold { .. } => rollout.shift_to(100, now_ms),
        Stage::KeepWarm => rollout.complete(now_ms),
        Stage::Replace {
            batch: Batch::Ready { .. },
        } => {
            rollout.stage = Stage::Replace {
                batch: Batch::Released,
            };
            rollout.phase = Phase::Progressing;
            rollout.state_since_ms = now_ms;
        }
        Stage::Start | Stage::Shift | Stage::Replace { .. } | Stage::Rollback | Stage::Done => {
            return Err(format!("cannot promote: {}", rollout.reason));
        }
    }
    rollout.reason = format!("promoted by kiln rollout promote; {}", rollout.reason);
    Ok(())
}
