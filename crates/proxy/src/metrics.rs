//! Per-(route, service, version) counters and latency histograms, rendered as Prometheus text.
//!
//! Counting is per attempt at a backend: each attempt adds one to `requests_total` of the
//! backend's version and ends either with a backend response (`responses_total` by class,
//! plus a latency observation) or with a connection error (connect failure, I/O failure or
//! timeout). So `requests = responses + connection_errors` once nothing is in flight, and
//! `(responses{class="5xx"} + connection_errors) / requests` is a version's error rate. A
//! connect failure retried on another backend counts as a connection error of the first
//! backend's version (its instance did fail) and as a request of each version tried. The
//! 502/504 answers the proxy makes itself are not in `responses_total`: they are the
//! connection errors. An upgrade (101) counts as 2xx. A client that goes away while its
//! request body is still being sent counts as 4xx (nginx's 499), without a latency
//! observation. Latency is the time until the backend's response headers arrived.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub const REQUESTS_TOTAL: &str = "kiln_proxy_requests_total";
pub const RESPONSES_TOTAL: &str = "kiln_proxy_responses_total";
pub const CONNECTION_ERRORS_TOTAL: &str = "kiln_proxy_connection_errors_total";
pub const REQUEST_DURATION_SECONDS: &str = "kiln_proxy_request_duration_seconds";
pub const TABLE_VERSION: &str = "kiln_proxy_table_version";
/// Requests the proxy answered itself without a backend, by `reason` (`no_route`: 404,
/// `no_backend`: 503).
pub const UNROUTED_TOTAL: &str = "kiln_proxy_unrouted_requests_total";

/// Histogram upper bounds in seconds.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BUCKETS_MICROS: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// The counters of one (route, service, version), shared by every table that uses it.
#[derive(Debug, Default)]
pub(crate) struct VersionMetrics {
    requests: AtomicU64,
    responses: [AtomicU64; 4],
    connection_errors: AtomicU64,
    /// Non-cumulative bucket counts; the last slot is above the largest bound.
    buckets: [AtomicU64; 12],
    sum_micros: AtomicU64,
}

impl VersionMetrics {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn response(&self, status: u16, elapsed: Duration) {
        let class = match status {
            0..300 => 0,
            300..400 => 1,
            400..500 => 2,
            _ => 3,
        };
        self.responses[class].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKETS_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(11);
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// A client that went away before its request was complete: counted with the 4xx
    /// answers (nginx logs these as 499), not in the latency histogram.
    pub(crate) fn client_gone(&self) {
        self.responses[2].fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_error(&self) {
        self.connection_errors.fetch_add(1, Relaxed);
    }
}

/// Labels of one metrics series.
type Key = (String, String, String);

/// All metrics of the process. Counters live as long as the process: never reset.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    versions: Mutex<BTreeMap<Key, Arc<VersionMetrics>>>,
    table_version: AtomicU64,
    no_route: AtomicU64,
    no_backend: AtomicU64,
}

impl Metrics {
    /// The counters for these labels, created on first use (at table compile time).
    pub(crate) fn version(&self, route: &str, service: &str, version: &str) -> Arc<VersionMetrics> {
        let mut map = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (route.to_owned(), service.to_owned(), version.to_owned());
        map.entry(key).or_default().clone()
    }

    pub(crate) fn set_table_version(&self, version: u64) {
        self.table_version.store(version, Relaxed);
    }

    pub(crate) fn no_route(&self) {
        self.no_route.fetch_add(1, Relaxed);
    }

    pub(crate) fn no_backend(&self) {
        self.no_backend.fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub(crate) fn render(&self) -> String {
        let map = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(1024 + map.len() * 2048);
        header(
            &mut out,
            REQUESTS_TOTAL,
            "counter",
            "Requests sent to backends.",
        );
        for (key, m) in map.iter() {
            series(&mut out, REQUESTS_TOTAL, key, "", m.requests.load(Relaxed));
        }
        header(
            &mut out,
            RESPONSES_TOTAL,
            "counter",
            "Backend responses by status class.",
        );
        for (key, m) in map.iter() {
            for (class, count) in CLASSES.iter().zip(&m.responses) {
                let extra = format!(",class=\"{class}\"");
                series(&mut out, RESPONSES_TOTAL, key, &extra, count.load(Relaxed));
            }
        }
        header(
            &mut out,
            CONNECTION_ERRORS_TOTAL,
            "counter",
            "Backend connect failures, I/O failures and timeouts.",
        );
        for (key, m) in map.iter() {
            let count = m.connection_errors.load(Relaxed);
            series(&mut out, CONNECTION_ERRORS_TOTAL, key, "", count);
        }
        header(
            &mut out,
            REQUEST_DURATION_SECONDS,
            "histogram",
            "Time until the backend's response headers.",
        );
        for (key, m) in map.iter() {
            histogram(&mut out, key, m);
        }
        header(
            &mut out,
            TABLE_VERSION,
            "gauge",
            "Version of the live route table.",
        );
        let _ = writeln!(out, "{TABLE_VERSION} {}", self.table_version.load(Relaxed));
        header(
            &mut out,
            UNROUTED_TOTAL,
            "counter",
            "Requests answered without a backend.",
        );
        let no_route = self.no_route.load(Relaxed);
        let no_backend = self.no_backend.load(Relaxed);
        let _ = writeln!(out, "{UNROUTED_TOTAL}{{reason=\"no_route\"}} {no_route}");
        let _ = writeln!(
            out,
            "{UNROUTED_TOTAL}{{reason=\"no_backend\"}} {no_backend}"
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn series(out: &mut String, name: &str, key: &Key, extra: &str, value: u64) {
    let (route, service, version) = key;
    let _ = writeln!(
        out,
        "{name}{{route=\"{}\",service=\"{}\",version=\"{}\"{extra}}} {value}",
        escape(route),
        escape(service),
        escape(version),
    );
}

fn histogram(out: &mut String, key: &Key, m: &VersionMetrics) {
    let mut cumulative = 0;
    for (bound, count) in BUCKETS.iter().zip(&m.buckets) {
        cumulative += count.load(Relaxed);
        let extra = format!(",le=\"{bound}\"");
        series(
            out,
            &format!("{REQUEST_DURATION_SECONDS}_bucket"),
            key,
            &extra,
            cumulative,
        );
    }
    cumulative += m.buckets[11].load(Relaxed);
    let name = format!("{REQUEST_DURATION_SECONDS}_bucket");
    series(out, &name, key, ",le=\"+Inf\"", cumulative);
    let sum = m.sum_micros.load(Relaxed) as f64 / 1e6;
    let (route, service, version) = key;
    let _ = writeln!(
        out,
        "{REQUEST_DURATION_SECONDS}_sum{{route=\"{}\",service=\"{}\",version=\"{}\"}} {sum}",
        escape(route),
        escape(service),
        escape(version),
    );
    series(
        out,
        &format!("{REQUEST_DURATION_SECONDS}_count"),
        key,
        "",
        cumulative,
    );
}

fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let metrics = Metrics::default();
        let m = metrics.version("web", "web", "v1");
        m.request();
        m.response(200, Duration::from_millis(3));
        m.request();
        m.response(503, Duration::from_millis(30));
        m.request();
        m.connection_error();
        let text = metrics.render();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(
            r#"kiln_proxy_requests_total{route="web",service="web",version="v1"} 3"#
        ));
        assert!(has(
            r#"kiln_proxy_responses_total{route="web",service="web",version="v1",class="5xx"} 1"#
        ));
        assert!(has(
            r#"kiln_proxy_connection_errors_total{route="web",service="web",version="v1"} 1"#
        ));
        assert!(has(
            r#"kiln_proxy_request_duration_seconds_bucket{route="web",service="web",version="v1",le="0.005"} 1"#
        ));
        assert!(has(
            r#"kiln_proxy_request_duration_seconds_bucket{route="web",service="web",version="v1",le="0.05"} 2"#
        ));
        assert!(has(
            r#"kiln_proxy_request_duration_seconds_count{route="web",service="web",version="v1"} 2"#
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
