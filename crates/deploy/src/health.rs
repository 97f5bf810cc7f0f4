//! Probe state: a status that flips only after enough consecutive results.
//!
//! As pingora's health checks: one failed probe does not make a healthy instance
//! unhealthy, `failure` consecutive ones do; `success` consecutive passes make an
//! unhealthy one healthy again. Readiness starts unhealthy (no traffic until it
//! passes), liveness starts healthy (not killed before it had a chance).

/// How many consecutive results flip the status. A threshold of 0 acts as 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    pub success: u32,
    pub failure: u32,
}

/// The status of one probe of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    healthy: bool,
    successes: u32,
    failures: u32,
}

impl ProbeState {
    /// A probe that has seen nothing yet: readiness starts `false`, liveness `true`.
    pub fn new(initially_healthy: bool) -> ProbeState {
        ProbeState {
            healthy: initially_healthy,
            successes: 0,
            failures: 0,
        }
    }

    /// Records one probe result; returns `Some(new_status)` when the status flips.
    pub fn observe(&mut self, ok: bool, t: &Thresholds) -> Option<bool> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let flips = match self.healthy {
            true => self.failures >= t.failure.max(1),
            false => self.successes >= t.success.max(1),
        };
        if !flips {
            return None;
        }
        self.healthy = !self.healthy;
        Some(self.healthy)
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Failures in a row up to the last result (0 after a pass), for messages.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        success: 2,
        failure: 3,
    };

    fn observe_all(state: &mut ProbeState, results: &[bool]) -> Vec<Option<bool>> {
        results.iter().map(|&ok| state.observe(ok, &T)).collect()
    }

    #[test]
    fn readiness_needs_consecutive_successes() {
        let mut state = ProbeState::new(false);
        assert!(!state.healthy());
        let flips = observe_all(&mut state, &[true, false, true, true, true]);
        assert_eq!(flips, vec![None, None, None, Some(true), None]);
        assert!(state.healthy());
    }

    #[test]
    fn liveness_needs_consecutive_failures() {
        let mut state = ProbeState::new(true);
        let flips = observe_all(
            &mut state,
            &[false, false, true, false, false, false, false],
        );
        assert_eq!(flips, vec![None, None, None, None, None, Some(false), None]);
        assert!(!state.healthy());
        assert_eq!(state.consecutive_failures(), 4);
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let mut state = ProbeState::new(true);
        observe_all(&mut state, &[false, false]);
        assert_eq!(state.consecutive_failures(), 2);
        state.observe(true, &T);
        assert_eq!(state.consecutive_failures(), 0);
        assert!(state.healthy());
    }

    #[test]
    fn it_flips_back_and_forth() {
        let mut state = ProbeState::new(true);
        let flips = observe_all(&mut state, &[false, false, false, true, true, false]);
        assert_eq!(flips, vec![None, None, Some(false), None, Some(true), None]);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let t = Thresholds {
            success: 0,
            failure: 0,
        };
        let mut state = ProbeState::new(false);
        assert_eq!(state.observe(true, &t), Some(true));
        assert_eq!(state.observe(false, &t), Some(false));
    }

    #[test]
    fn counts_saturate() {
        let mut state = ProbeState {
            healthy: false,
            successes: 0,
            failures: u32::MAX,
        };
        assert_eq!(state.observe(false, &T), None);
        assert_eq!(state.consecutive_failures(), u32::MAX);
    }
}
