//! The rolling update: batches of new instances within `max_surge`, old ones stopped
//! within `max_unavailable`, traffic following the ready instances.

use super::text::{duration, plus};
use super::{Batch, Observation, Rollout, Stage, Targets};

impl Rollout {
    /// One pass of the rolling update; true when it completed or aborted.
    pub(super) fn replace(&mut self, obs: &Observation, mut batch: Batch) -> bool {
        let now = obs.now_ms;
        let replicas = self.params.replicas;
        let before = (self.targets, batch);
        let Targets {
            stable: mut old,
            canary: mut new,
            ..
        } = self.targets;
        if self.step_started_ms.is_none() && obs.confirmed_weight.is_some_and(|w| w > 0) {
            self.step_started_ms = Some(now);
        }
        if old == 0 && obs.canary_ready >= replicas {
            self.complete(now);
            return true;
        }

        // A ready batch waits for the pause (and the analysis) before the next starts.
        let paced = self.params.pause_ms != Some(0);
        if paced && batch == Batch::Starting && new > 0 && new < replicas && obs.canary_ready >= new
        {
            batch = Batch::Ready {
                since_ms: now,
                pause_over: false,
            };
            self.frozen_ms = 0;
        }
        let may_start = match batch {
            _ if !paced => true,
            Batch::Starting => new == 0,
            Batch::Released => true,
            Batch::Ready {
                since_ms,
                pause_over,
            } => {
                let pause_end = self
                    .params
                    .pause_ms
                    .map(|pause| plus(since_ms, pause.saturating_add(self.frozen_ms)));
                let over = pause_end.is_some_and(|end| now >= end);
                if over && self.analysis_allows() {
                    batch = Batch::Released;
                } else if over && !pause_over {
                    batch = Batch::Ready {
                        since_ms,
                        pause_over: true,
                    };
                }
                batch == Batch::Released
            }
        };

        // New instances: within the surge, counting what runs or is wanted.
        if may_start {
            let running = old.max(obs.stable_running) + new.max(obs.canary_running);
            let room = (replicas + self.params.max_surge).saturating_sub(running);
            let grown = new.saturating_add(room).min(replicas);
            if grown > new {
                if new > 0 {
                    self.step += 1;
                }
                new = grown;
                batch = Batch::Starting;
            }
        }

        // Old instances: as many go as keep enough ready; the last only after 100 %.
        let new_ready = obs.canary_ready.min(new);
        let floor = replicas - self.params.max_unavailable;
        let mut keep = old;
        while keep > 0 && obs.stable_ready.min(keep - 1) + new_ready >= floor {
            keep -= 1;
        }
        let switching = keep == 0 && old > 0 && obs.confirmed_weight != Some(100);
        old = match switching {
            true => 1,
            false => keep,
        };
        let weight = match old == 0 || switching {
            true => 100,
            false => proportional(new_ready, obs.stable_ready.min(old)).unwrap_or(self.weight),
        };

        self.targets = Targets {
            stable: old,
            canary: new,
            canary_weight: weight,
        };
        self.weight = weight;
        self.stage = Stage::Replace { batch };
        self.phase = self.natural_phase();
        if new_ready > self.best_ready || (self.targets, batch) != before {
            self.best_ready = self.best_ready.max(new_ready);
            self.state_since_ms = now;
        }
        self.reason = self.rolling_reason(obs, batch, switching);
        let pausing = matches!(
            batch,
            Batch::Ready {
                pause_over: false,
                ..
            }
        );
        if old == 0 && obs.canary_ready >= replicas {
            self.complete(now);
            return true;
        }
        !pausing && self.past_deadline(now)
    }

    fn rolling_reason(&self, obs: &Observation, batch: Batch, switching: bool) -> String {
        let replicas = self.params.replicas;
        let Targets {
            stable: old,
            canary: new,
            ..
        } = self.targets;
        let ready = obs.canary_ready.min(new);
        let batch_label = format!("batch {} ready ({ready} of {replicas} new)", self.step + 1);
        match batch {
            Batch::Ready { .. } if self.params.pause_ms.is_none() => {
                return format!(
                    "{batch_label}; waiting for kiln rollout promote to start the next batch"
                );
            }
            Batch::Ready {
                pause_over: false, ..
            } => {
                return format!(
                    "{batch_label}; pausing {} before the next batch: {}",
                    duration(self.params.pause_ms.unwrap_or(0)),
                    self.verdict_text()
                );
            }
            Batch::Ready {
                pause_over: true, ..
            } => {
                return format!(
                    "{batch_label}; waiting for a conclusive analysis before the next batch: {}",
                    self.verdict_text()
                );
            }
            Batch::Starting | Batch::Released => {}
        }
        if switching {
            return "waiting for the proxy to confirm 100 % before stopping the last old instance"
                .to_string();
        }
        let limits = format!(
            "max surge {}, max unavailable {}",
            self.params.max_surge, self.params.max_unavailable
        );
        let missing = replicas.saturating_sub(obs.canary_ready);
        match old {
            0 => format!(
                "waiting for {missing} of {replicas} new instances to be ready (old instances stopped)"
            ),
            _ => format!(
                "waiting for {missing} of {replicas} new instances to be ready; \
                 {old} old kept ({limits})"
            ),
        }
    }
}

/// `round(100 × new / (new + old))`, half up; `None` when both are 0.
fn proportional(new: u32, old: u32) -> Option<u32> {
    let (new, old) = (u64::from(new), u64::from(old));
    let total = new + old;
    if total == 0 {
        return None;
    }
    let weight = (200 * new + total) / (2 * total);
    Some(u32::try_from(weight).unwrap_or(100))
}

#[cfg(test)]
mod tests {
    use super::proportional;

    #[test]
    fn weights_round_half_up() {
        assert_eq!(proportional(0, 0), None);
        assert_eq!(proportional(0, 3), Some(0));
        assert_eq!(proportional(3, 0), Some(100));
        assert_eq!(proportional(1, 2), Some(33));
        assert_eq!(proportional(2, 1), Some(67));
        assert_eq!(proportional(1, 1), Some(50));
        assert_eq!(proportional(1, 199), Some(1));
    }
}
