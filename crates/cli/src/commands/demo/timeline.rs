//! Following a rollout: polls `GET /v1/rollouts/app` every 500 ms and prints a line per
//! change (or per second) with the phase, step, traffic split, analysis verdict and the
//! load generator's counts since the previous line.

use std::time::{Duration, Instant};

use kiln_daemon::api::types::RolloutStatus;

use super::load::{Counts, Load};
use crate::client::Client;

const POLL: Duration = Duration::from_millis(500);
/// A line at least this often, even when nothing changed.
const EVERY: Duration = Duration::from_millis(950);

/// How a rollout went, as the demo saw it.
#[derive(Debug)]
pub struct Followed {
    pub last: RolloutStatus,
    /// When the phase was first seen `completed` or `aborted`.
    pub ended: Option<Instant>,
    /// When an aborted rollout was first seen with its traffic back on stable (0 %
    /// confirmed by the proxy).
    pub back_on_stable: Option<Instant>,
    /// When it was first seen done (the instances it replaced, or started, gone).
    pub done: Instant,
}

/// The load's requests seen so far (the cursor of [`Load::take_new`]).
#[derive(Debug, Default)]
pub struct Cursor(pub usize);

impl Cursor {
    /// `load: 210 ok, 0 failed  (v1 48% / v2 52%)` of the requests since the last call.
    pub fn line(&mut self, load: &Load) -> String {
        let counts: Counts = load.take_new(&mut self.0);
        format!("load: {}", counts.line())
    }
}

/// Follows the rollout of `app` from `from` to `to`, started at `applied`, until it is
/// done; fails after `timeout`.
pub fn follow(
    client: &Client,
    load: &Load,
    cursor: &mut Cursor,
    (from, to): (&str, &str),
    applied: Instant,
    timeout: Duration,
) -> anyhow::Result<Followed> {
    let deadline = applied + timeout;
    let mut last_line: Option<(Instant, Key)> = None;
    let mut last_reason = String::new();
    let mut ended = None;
    let mut back_on_stable = None;
    let mut labels_shown = false;
    loop {
        let r: RolloutStatus = client.get("/v1/rollouts/app")?;
        let now = Instant::now();
        if !labels_shown {
            println!(
                "   stable {from} = {}, canary {to} = {}  (version labels: image tag and \
                 definition hash)",
                r.stable, r.canary
            );
            labels_shown = true;
        }
        let finished = r.phase == "completed" || r.phase == "aborted";
        if finished && ended.is_none() {
            ended = Some(now);
        }
        if r.phase == "aborted" && back_on_stable.is_none() && back(&r.reason) {
            back_on_stable = Some(now);
        }
        let key = Key::of(&r);
        let due = match &last_line {
            None => true,
            Some((at, k)) => *k != key || now.duration_since(*at) >= EVERY || r.done,
        };
        if due {
            println!(
                "  {:>5.1}s  {:<16} {:>3}% → {to}   analysis {:<40}  {}",
                now.duration_since(applied).as_secs_f64(),
                phase_step(&r),
                r.weight,
                verdict(r.analysis.as_deref()),
                cursor.line(load)
            );
            let reason = category(&r.reason);
            if reason != last_reason {
                println!("          · {}", r.reason);
                last_reason = reason;
            }
            last_line = Some((now, key));
        }
        if r.done && finished {
            return Ok(Followed {
                last: r,
                ended,
                back_on_stable,
                done: now,
            });
        }
        if now >= deadline {
            anyhow::bail!(
                "the rollout {from} → {to} did not finish within {}s: {} at step {}, {} %: {}",
                timeout.as_secs(),
                r.phase,
                r.step,
                r.weight,
                r.reason
            );
        }
        std::thread::sleep(POLL);
    }
}

/// What makes a new line worth printing at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    phase: String,
    step: usize,
    weight: u32,
    verdict: String,
    reason: String,
}

impl Key {
    fn of(r: &RolloutStatus) -> Key {
        Key {
            phase: r.phase.clone(),
            step: r.step,
            weight: r.weight,
            verdict: r
                .analysis
                .as_deref()
                .and_then(|a| a.split(':').next())
                .unwrap_or("")
                .to_string(),
            reason: category(&r.reason),
        }
    }
}

/// The kind of a reason, without its changing figures: the text before its first `: `
/// ("analysing step 1 (10 %) during its 3s pause").
fn category(reason: &str) -> String {
    reason.split(": ").next().unwrap_or(reason).to_string()
}

/// Whether an aborted rollout's reason says the proxy confirmed 0 % to the new version.
pub fn back(reason: &str) -> bool {
    reason.ends_with("; traffic back to stable")
}

/// `canary step 2/3`, `paused step 2/3`, `completed`, `aborted step 1/3`.
fn phase_step(r: &RolloutStatus) -> String {
    let steps = r.steps.len().max(1);
    match r.phase.as_str() {
        "progressing" => format!("{} step {}/{steps}", r.kind, r.step),
        "completed" => "completed".to_string(),
        other => format!("{other} step {}/{steps}", r.step),
    }
}

/// The daemon's verdict, shorter: `pass (error rate 0.0 % over 412)` for "pass: error
/// rate 0.0 % ≤ 5.0 % over 412 requests" (the limits are in the heading; a failure keeps
/// them), `inconclusive (12 of 40 requests)`; `—` before any.
fn verdict(analysis: Option<&str>) -> String {
    let Some(a) = analysis else {
        return "—".to_string();
    };
    let Some((kind, rest)) = a.split_once(": ") else {
        return a.to_string();
    };
    if kind != "pass" && kind != "fail" {
        return format!("{kind} ({rest})");
    }
    let mut short = String::new();
    let mut rest = rest.strip_suffix(" requests").unwrap_or(rest);
    // Drop each " ≤ LIMIT" up to the next " over " or ", ".
    while let Some(at) = rest.find(" ≤ ") {
        short.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = [after.find(" over "), after.find(", ")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    short.push_str(rest);
    format!("{kind} ({short})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_reasons_read_short() {
        assert_eq!(
            verdict(Some("pass: error rate 0.0 % ≤ 5.0 % over 412 requests")),
            "pass (error rate 0.0 % over 412)"
        );
        assert_eq!(
            verdict(Some(
                "pass: error rate 0.0 % ≤ 5.0 %, p99 12 ms ≤ 300 ms over 40 requests"
            )),
            "pass (error rate 0.0 %, p99 12 ms over 40)"
        );
        assert_eq!(
            verdict(Some("fail: error rate 15.0 % > 5.0 % over 40 requests")),
            "fail (error rate 15.0 % > 5.0 % over 40)"
        );
        assert_eq!(
            verdict(Some("inconclusive: 6 of 40 requests")),
            "inconclusive (6 of 40 requests)"
        );
        assert_eq!(verdict(None), "—");
        assert_eq!(
            category("analysing step 1 (10 %) during its 3s pause: inconclusive: 12 of 40"),
            "analysing step 1 (10 %) during its 3s pause"
        );
        assert!(back(
            "aborted at step 1 (10 %): error rate 31 % > 5 % over 45 requests; traffic back to stable"
        ));
        assert!(!back(
            "aborted at step 1 (10 %): error rate 31 % > 5 %; moving traffic back to stable"
        ));
    }
}
