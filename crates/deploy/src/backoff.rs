//! Crash-loop backoff for one service: how long to wait before creating again.
//!
//! The first failure after a healthy period is replaced at once; each further
//! failure doubles the wait from `base_ms`, up to `max_ms`. The count resets when a
//! service that became ready then goes `reset_after_ms` without failing. The
//! daemon filters out the creates of a service until [`Backoff::ready_at_ms`].

/// The crash-loop backoff of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    reset_after_ms: u64,
    failures: u32,
    last_failure_ms: Option<i64>,
    last_healthy_ms: Option<i64>,
    ready_at_ms: i64,
}

impl Backoff {
    /// A service with no failures. The daemon uses 1000, 60_000, 30_000.
    pub fn new(base_ms: u64, max_ms: u64, reset_after_ms: u64) -> Backoff {
        Backoff {
            base_ms,
            max_ms,
            reset_after_ms,
            failures: 0,
            last_failure_ms: None,
            last_healthy_ms: None,
            ready_at_ms: i64::MIN,
        }
    }

    /// Records a failure at `now_ms`; returns the delay before the next create:
    /// 0 for the first failure after a healthy period, then base, 2×base, 4×base…
    /// capped at max.
    pub fn failure(&mut self, now_ms: i64) -> u64 {
        if self.healed_by(now_ms) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = match self.failures {
            1 => 0,
            n => {
                let doublings = n - 2;
                let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
                self.base_ms.saturating_mul(factor).min(self.max_ms)
            }
        };
        self.last_failure_ms = Some(now_ms);
        let delay_ms = i64::try_from(delay).unwrap_or(i64::MAX);
        self.ready_at_ms = now_ms.saturating_add(delay_ms);
        delay
    }

    /// An instance of the service became ready at `now_ms` (call when it happens).
    pub fn healthy(&mut self, now_ms: i64) {
        self.last_healthy_ms = Some(now_ms);
    }

    /// The earliest time a create is allowed; `i64::MIN` if there was no failure.
    pub fn ready_at_ms(&self) -> i64 {
        self.ready_at_ms
    }

    /// Failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// True when the service became ready after its last failure and has not
    /// failed for `reset_after_ms` since.
    fn healed_by(&self, now_ms: i64) -> bool {
        let Some(healthy) = self.last_healthy_ms else {
            return false;
        };
        let after_failure = self.last_failure_ms.is_none_or(|failure| healthy > failure);
        let quiet = now_ms.saturating_sub(healthy);
        after_failure && u64::try_from(quiet).is_ok_and(|quiet| quiet >= self.reset_after_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon() -> Backoff {
        Backoff::new(1000, 60_000, 30_000)
    }

    #[test]
    fn no_failure_allows_creates_at_any_time() {
        let backoff = daemon();
        assert_eq!(backoff.ready_at_ms(), i64::MIN);
        assert_eq!(backoff.failures(), 0);
    }

    #[test]
    fn delays_double_from_zero_up_to_the_cap() {
        let mut backoff = daemon();
        let delays: Vec<u64> = (0..10).map(|n| backoff.failure(n * 100)).collect();
        assert_eq!(
            delays,
            vec![
                0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        assert_eq!(backoff.failures(), 10);
        assert_eq!(backoff.ready_at_ms(), 900 + 60_000);
    }

    #[test]
    fn ready_at_is_the_last_failure_plus_its_delay() {
        let mut backoff = daemon();
        backoff.failure(5000);
        assert_eq!(backoff.ready_at_ms(), 5000);
        backoff.failure(6000);
        assert_eq!(backoff.ready_at_ms(), 7000);
    }

    #[test]
    fn a_long_healthy_period_resets_the_count() {
        let mut backoff = daemon();
        for t in [0, 10, 20] {
            backoff.failure(t);
        }
        backoff.healthy(3000);
        assert_eq!(backoff.failure(3000 + 30_000), 0);
        assert_eq!(backoff.failures(), 1);
    }

    #[test]
    fn a_short_healthy_period_keeps_backing_off() {
        let mut backoff = daemon();
        for t in [0, 10, 20] {
            backoff.failure(t);
        }
        backoff.healthy(3000);
        assert_eq!(backoff.failure(3000 + 29_999), 4000);
        assert_eq!(backoff.failures(), 4);
    }

    #[test]
    fn time_without_becoming_ready_does_not_reset() {
        let mut backoff = daemon();
        backoff.failure(0);
        backoff.failure(10);
        assert_eq!(backoff.failure(10_000_000), 2000);
    }

    #[test]
    fn healthy_before_the_last_failure_does_not_reset() {
        let mut backoff = daemon();
        backoff.healthy(0);
        backoff.failure(100);
        backoff.failure(200);
        assert_eq!(backoff.failure(1_000_000), 2000);
    }

    #[test]
    fn healthy_at_the_same_time_as_the_failure_does_not_reset() {
        let mut backoff = daemon();
        backoff.failure(100);
        backoff.healthy(100);
        assert_eq!(backoff.failure(1_000_000), 1000);
    }

    #[test]
    fn extreme_values_saturate() {
        let mut backoff = Backoff::new(u64::MAX / 2, u64::MAX, 0);
        backoff.failures = u32::MAX - 1;
        assert_eq!(backoff.failure(i64::MAX - 1), u64::MAX);
        assert_eq!(backoff.ready_at_ms(), i64::MAX);
        assert_eq!(backoff.failures(), u32::MAX);
    }
}
