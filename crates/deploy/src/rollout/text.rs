//! The words and clock arithmetic of a rollout: durations, places, purposes.

use super::{Kind, Rollout, Stage};

/// `ms` as "250ms", "30s", "1.5s", "10m0s" or "1h0m0s".
pub(super) fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (hours, minutes, secs) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else if millis == 0 {
        format!("{secs}s")
    } else {
        let millis = format!("{millis:03}");
        format!("{secs}.{}s", millis.trim_end_matches('0'))
    }
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier.
pub(super) fn elapsed(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

/// `at + ms`, saturating.
pub(super) fn plus(at: i64, ms: u64) -> i64 {
    at.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

impl Rollout {
    /// Where the rollout is, for an abort or pause message: "at step 2 (25 %)",
    /// "before the switch", "with 1 of 3 new instances ready".
    pub(super) fn place(&self) -> String {
        match self.params.kind {
            Kind::Canary => self.step_label(),
            Kind::BlueGreen => match self.stage {
                Stage::Start | Stage::Hold { .. } => "before the switch".to_string(),
                _ => "after the switch".to_string(),
            },
            Kind::Rolling => format!(
                "with {} of {} new instances ready",
                self.best_ready, self.params.replicas
            ),
        }
    }

    /// "at step 2 (25 %)".
    pub(super) fn step_label(&self) -> String {
        format!(
            "at step {} ({} %)",
            self.step + 1,
            self.step_weight(self.step)
        )
    }

    /// What the new instances starting now are for: " for step 2 (25 %)".
    pub(super) fn purpose(&self) -> String {
        match self.params.kind {
            Kind::Canary => format!(
                " for step {} ({} %)",
                self.step + 1,
                self.step_weight(self.step)
            ),
            Kind::BlueGreen => " before the switch".to_string(),
            Kind::Rolling => String::new(),
        }
    }

    /// The analysis so far: "pass: …", "inconclusive: …", "no data yet" or "no
    /// analysis configured".
    pub(super) fn verdict_text(&self) -> String {
        match (&self.params.analysis, &self.last_verdict) {
            (None, _) => "no analysis configured".to_string(),
            (Some(_), None) => "no data yet".to_string(),
            (Some(_), Some(verdict)) => verdict.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go_durations() {
        assert_eq!(duration(0), "0ms");
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(1050), "1.05s");
        assert_eq!(duration(30_000), "30s");
        assert_eq!(duration(600_000), "10m0s");
        assert_eq!(duration(90_500), "1m30s");
        assert_eq!(duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn clock_arithmetic_saturates() {
        assert_eq!(elapsed(10, 5), 0);
        assert_eq!(
            elapsed(i64::MIN, i64::MAX),
            u64::try_from(i64::MAX).unwrap()
        );
        assert_eq!(plus(i64::MAX - 1, 5), i64::MAX);
        assert_eq!(plus(0, u64::MAX), i64::MAX);
    }
}
