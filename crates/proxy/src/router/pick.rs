//! Picking a backend: canary split by weight or pinned by header, round-robin in a group.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::CompiledRoute;
use crate::metrics::VersionMetrics;
use crate::upstream::Upstream;

/// One backend of a compiled route: its address's upstream and its version's metrics.
#[derive(Debug)]
pub(crate) struct BackendRef {
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) metrics: Arc<VersionMetrics>,
}

/// The `X-Kiln-Canary` header: pin a request to a group regardless of the weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pin {
    Weighted,
    Canary,
    Stable,
}

impl Pin {
    pub(crate) const HEADER: &str = "x-kiln-canary";

    pub(crate) fn from_header(value: Option<&[u8]>) -> Pin {
        match value {
            Some(v) if v.eq_ignore_ascii_case(b"always") => Pin::Canary,
            Some(v) if v.eq_ignore_ascii_case(b"never") => Pin::Stable,
            _ => Pin::Weighted,
        }
    }
}

/// Per-route counters for the split and the round-robin.
#[derive(Debug, Default)]
pub(crate) struct PickState {
    draws: AtomicU64,
    next: [AtomicUsize; 2],
}

impl CompiledRoute {
    /// A backend for a request, skipping `tried` addresses; `None` when none is left.
    ///
    /// The chosen group falls back to the other one when it has no backend left.
    pub(crate) fn pick(&self, pin: Pin, tried: &[Arc<BackendRef>]) -> Option<&Arc<BackendRef>> {
        let canary = match pin {
            Pin::Canary => true,
            Pin::Stable => false,
            Pin::Weighted => match self.canary_weight {
                0 => false,
                100.. => true,
                w => splitmix64(self.pick.draws.fetch_add(1, Relaxed)) % 100 < u64::from(w),
            },
        };
        let first = usize::from(canary);
        self.pick_in(first, tried)
            .or_else(|| self.pick_in(1 - first, tried))
    }

    fn pick_in(&self, group: usize, tried: &[Arc<BackendRef>]) -> Option<&Arc<BackendRef>> {
        let backends = &self.groups[group];
        if backends.is_empty() {
            return None;
        }
        let start = self.pick.next[group].fetch_add(1, Relaxed);
        (0..backends.len())
            .map(|i| &backends[(start + i) % backends.len()])
            .find(|b| {
                !tried
                    .iter()
                    .any(|t| t.upstream.address == b.upstream.address)
            })
    }
}

/// A fast, well-mixed hash of a counter: deterministic per request, not cryptographic.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_draws_are_roughly_uniform() {
        let hits = (0..10_000u64).filter(|&i| splitmix64(i) % 100 < 25).count();
        assert!((2300..2700).contains(&hits), "{hits}");
    }

    #[test]
    fn pin_header_values() {
        assert_eq!(Pin::from_header(Some(b"Always")), Pin::Canary);
        assert_eq!(Pin::from_header(Some(b"never")), Pin::Stable);
        assert_eq!(Pin::from_header(Some(b"maybe")), Pin::Weighted);
        assert_eq!(Pin::from_header(None), Pin::Weighted);
    }
}
