//! Canary analysis: one step's metrics of the new and the stable version in, a verdict out.
//!
//! The daemon reads the proxy's per-version counters and latency histogram, subtracts
//! their values at the start of the step, and passes the two [`Window`]s to
//! [`evaluate`]. No data never decides anything (flagger #1090, argo-rollouts #1905):
//! fewer than `min_requests` requests of the new version is [`Verdict::Inconclusive`],
//! and so is a latency ratio when the stable version has too few requests or no p99.
//!
//! The checks, each only when its threshold is set:
//! - error rate: `errors / requests` above `max_error_rate_ppm` fails;
//! - p99 latency of the new version above `max_p99_ms` fails;
//! - p99 of the new version / p99 of the stable one above `max_p99_ratio_permille`
//!   fails (a stable p99 of 0 ms counts as 1 ms).
//!
//! Any failing check makes the verdict [`Verdict::Fail`] (all failures are named);
//! otherwise any check without data makes it [`Verdict::Inconclusive`]; otherwise it is
//! [`Verdict::Pass`] with the figures. Comparisons are exact integer arithmetic; only
//! the messages round.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the new version must keep to during a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Most `errors / requests`, in millionths: 10_000 is 1 %.
    pub max_error_rate_ppm: Option<u32>,
    /// Highest p99 latency of the new version.
    pub max_p99_ms: Option<u64>,
    /// Highest p99 of the new version relative to the stable one, in thousandths:
    /// 1500 is 1.5×.
    pub max_p99_ratio_permille: Option<u32>,
    /// Fewer requests than this (of the new version, or of the stable one for the
    /// ratio) is inconclusive. 0 acts as 1: no request never passes.
    pub min_requests: u64,
}

/// One version's traffic over the analysis window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub requests: u64,
    /// 5xx responses plus connection errors.
    pub errors: u64,
    /// From [`p99_from_histogram`]; `None` without latency data.
    pub p99_ms: Option<u64>,
}

/// The outcome of [`evaluate`]; each variant carries its figures as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Within every threshold, e.g. "error rate 0.2 % ≤ 1.0 % over 400 requests".
    Pass { summary: String },
    /// Outside a threshold, e.g. "error rate 31.0 % > 1.0 % over 400 requests".
    Fail { reason: String },
    /// Not enough data to judge, e.g. "12 of 50 requests".
    Inconclusive { reason: String },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail { .. })
    }
}

impl fmt::Display for Verdict {
    /// "pass: …", "fail: …" or "inconclusive: …".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass { summary } => write!(f, "pass: {summary}"),
            Verdict::Fail { reason } => write!(f, "fail: {reason}"),
            Verdict::Inconclusive { reason } => write!(f, "inconclusive: {reason}"),
        }
    }
}

/// Judges the new version's window against the thresholds (see the module docs).
pub fn evaluate(canary: &Window, stable: &Window, t: &Thresholds) -> Verdict {
    let min_requests = t.min_requests.max(1);
    if canary.requests < min_requests {
        return Verdict::Inconclusive {
            reason: format!("{} of {min_requests} requests", canary.requests),
        };
    }
    let mut fails = Vec::new();
    let mut unknown = Vec::new();
    let mut figures = Vec::new();

    if let Some(max) = t.max_error_rate_ppm {
        let (errors, requests) = (u128::from(canary.errors), u128::from(canary.requests));
        let over = errors * 1_000_000 > u128::from(max) * requests;
        let (rate, limit) = rate_and_limit(errors, requests, max, over);
        match over {
            true => fails.push(format!("error rate {rate} > {limit}")),
            false => figures.push(format!("error rate {rate} ≤ {limit}")),
        }
    }

    if let Some(max) = t.max_p99_ms {
        match canary.p99_ms {
            None => unknown.push("no p99 latency for the new version".to_string()),
            Some(p99) if p99 > max => fails.push(format!("p99 {p99} ms > {max} ms")),
            Some(p99) => figures.push(format!("p99 {p99} ms ≤ {max} ms")),
        }
    }

    if let Some(max) = t.max_p99_ratio_permille {
        match (canary.p99_ms, stable.p99_ms) {
            _ if stable.requests < min_requests => unknown.push(format!(
                "stable version: {} of {min_requests} requests for the p99 ratio",
                stable.requests
            )),
            (None, _) => unknown.push("no p99 latency for the new version".to_string()),
            (_, None) => unknown.push("no p99 latency for the stable version".to_string()),
            (Some(new), Some(old)) => {
                let old = old.max(1);
                let over = u128::from(new) * 1000 > u128::from(max) * u128::from(old);
                let ratio = fixed(u128::from(new), u128::from(old), 2);
                let limit = fixed(u128::from(max), 1000, 2);
                let text = format!("p99 {new} ms = {ratio}× stable {old} ms");
                match over {
                    true => fails.push(format!("{text} > {limit}×")),
                    false => figures.push(format!("{text} ≤ {limit}×")),
                }
            }
        }
    }

    let requests = canary.requests;
    if !fails.is_empty() {
        return Verdict::Fail {
            reason: format!("{} over {requests} requests", fails.join(", ")),
        };
    }
    if !unknown.is_empty() {
        unknown.dedup();
        return Verdict::Inconclusive {
            reason: format!("{} ({requests} requests)", unknown.join(", ")),
        };
    }
    let summary = match figures.is_empty() {
        true => format!("{requests} requests, no thresholds set"),
        false => format!("{} over {requests} requests", figures.join(", ")),
    };
    Verdict::Pass { summary }
}

/// `errors / requests` in millionths, rounded to the nearest; `None` without requests.
/// Saturates at `u32::MAX` (more errors than requests is possible when connection
/// errors are counted apart).
pub fn error_rate_ppm(w: &Window) -> Option<u32> {
    if w.requests == 0 {
        return None;
    }
    let (errors, requests) = (u128::from(w.errors), u128::from(w.requests));
    let ppm = (errors * 1_000_000 * 2 + requests) / (requests * 2);
    Some(u32::try_from(ppm).unwrap_or(u32::MAX))
}

/// The 99th percentile of a Prometheus-style histogram, in whole milliseconds.
///
/// `buckets` are `(le, cumulative count)` with `le` in seconds and `f64::INFINITY` for
/// `+Inf`, already reduced to the window (deltas), in any order. Like
/// `histogram_quantile(0.99, …)` **without interpolation**: the result is the upper
/// bound of the first bucket whose cumulative count reaches 99 % of the total, rounded
/// up to a millisecond, so it never understates the latency by more than a bucket.
/// When the percentile falls in `+Inf`, the result is the highest finite bound plus
/// 1 ms: more than that bound, so a threshold at or above it still fails. `None`
/// when the total is 0, or when only `+Inf` has observations.
pub fn p99_from_histogram(buckets: &[(f64, u64)]) -> Option<u64> {
    let mut sorted: Vec<(f64, u64)> = buckets
        .iter()
        .copied()
        .filter(|(le, _)| !le.is_nan())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Cumulative counts never decrease; a counter reset mid-window must not make them.
    let mut running = 0;
    for bucket in &mut sorted {
        running = running.max(bucket.1);
        bucket.1 = running;
    }
    let total = running;
    if total == 0 {
        return None;
    }
    let rank = |count: u64| u128::from(count) * 100 >= u128::from(total) * 99;
    let mut highest_finite = None;
    for &(le, count) in &sorted {
        if le.is_finite() && rank(count) {
            return Some(seconds_to_ms(le));
        }
        if le.is_finite() {
            highest_finite = Some(seconds_to_ms(le));
        }
    }
    highest_finite.map(|ms| ms.saturating_add(1))
}

/// `le` seconds as whole milliseconds, rounded up (after removing float noise:
/// 0.3 s is 300 ms, not 301).
fn seconds_to_ms(le: f64) -> u64 {
    let micros = (le.max(0.0) * 1_000_000.0).round();
    // `as` saturates for values beyond u64; bucket bounds are far below that.
    let micros = micros as u64;
    micros.div_ceil(1000)
}

/// The measured rate and the limit as percentages, with as many decimals as the limit
/// needs (at least 1), and more when a failing rate would otherwise print as equal.
fn rate_and_limit(errors: u128, requests: u128, max_ppm: u32, over: bool) -> (String, String) {
    let max_ppm = u128::from(max_ppm);
    // ppm has 4 decimals of a percent: 10_000 ppm = 1.0000 %.
    let mut decimals = 4;
    while decimals > 1 && max_ppm % 10u128.pow(5 - decimals) == 0 {
        decimals -= 1;
    }
    loop {
        let rate = fixed(errors * 100, requests, decimals);
        let limit = fixed(max_ppm, 10_000, decimals);
        if !over || rate != limit || decimals >= 6 {
            return (format!("{rate} %"), format!("{limit} %"));
        }
        decimals += 1;
    }
}

/// `num / den` with `decimals` decimals, rounded half up. `den` must not be 0.
fn fixed(num: u128, den: u128, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let scaled = (num * scale * 2 + den) / (den * 2);
    let (whole, frac) = (scaled / scale, scaled % scale);
    match decimals {
        0 => format!("{whole}"),
        d => format!("{whole}.{frac:0width$}", width = d as usize),
    }
}

#[cfg(test)]
mod tests;
