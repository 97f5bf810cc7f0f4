//! Wall-clock time as unix milliseconds, and its RFC 3339 rendering.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` as `2026-11-26T14:02:03.120Z` (the same rendering as instance log lines).
pub fn rfc3339_ms(ms: i64) -> String {
    kiln_runtime::rfc3339_millis(ms)
}
