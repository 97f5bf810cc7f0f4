//! The proxy's per-version counters, read from its Prometheus text, as analysis windows.

use std::collections::BTreeMap;

use kiln_deploy::analysis::{Window, p99_from_histogram};

/// Cumulative counters of one (service, version), summed over routes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counters {
    pub requests: u64,
    pub errors: u64,
    /// Histogram buckets by upper bound (seconds, as written), cumulative.
    pub buckets: BTreeMap<String, u64>,
}

impl Counters {
    /// The window from `base` to `self` (counters never go backwards; a proxy restart
    /// that reset them gives an empty window rather than a negative one).
    pub(crate) fn since(&self, base: &Counters) -> Window {
        let requests = self.requests.saturating_sub(base.requests);
        let errors = self.errors.saturating_sub(base.errors);
        let mut buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .filter_map(|(le, count)| {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let before = base.buckets.get(le).copied().unwrap_or(0);
                Some((bound, count.saturating_sub(before)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Window {
            requests,
            errors,
            p99_ms: p99_from_histogram(&buckets),
        }
    }
}

/// The counters of `service` per version label, from the proxy's metrics text.
pub(crate) fn parse(text: &str, service: &str) -> BTreeMap<String, Counters> {
    let mut out: BTreeMap<String, Counters> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (name, labels_of(rest.trim_end_matches('}'))),
            None => (head, BTreeMap::new()),
        };
        if labels.get("service").map(String::as_str) != Some(service) {
            continue;
        }
        let Some(version) = labels.get("version") else {
            continue;
        };
        let entry = out.entry(version.clone()).or_default();
        match name {
            kiln_proxy::metrics::REQUESTS_TOTAL => entry.requests += value,
            kiln_proxy::metrics::RESPONSES_TOTAL
                if labels.get("class").map(String::as_str) == Some("5xx") =>
            {
                entry.errors += value;
            }
            kiln_proxy::metrics::CONNECTION_ERRORS_TOTAL => entry.errors += value,
            _ if name.ends_with("_bucket")
                && name.starts_with(kiln_proxy::metrics::REQUEST_DURATION_SECONDS) =>
            {
                if let Some(le) = labels.get("le") {
                    *entry.buckets.entry(le.clone()).or_default() += value;
                }
            }
            _ => {}
        }
    }
    out
}

/// `a="1",b="x"` (no escapes in kiln's labels).
fn labels_of(text: &str) -> BTreeMap<String, String> {
    text.split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once("=\"")?;
            Some((k.trim().to_string(), v.trim_end_matches('"').to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_routes_and_count_5xx_and_connection_errors() {
        let text = r#"# HELP x
kiln_proxy_requests_total{route="a",service="web",version="v2-1"} 10
kiln_proxy_requests_total{route="b",service="web",version="v2-1"} 5
kiln_proxy_responses_total{route="a",service="web",version="v2-1",class="5xx"} 3
kiln_proxy_responses_total{route="a",service="web",version="v2-1",class="2xx"} 7
kiln_proxy_connection_errors_total{route="a",service="web",version="v2-1"} 1
kiln_proxy_request_duration_seconds_bucket{route="a",service="web",version="v2-1",le="0.005"} 9
kiln_proxy_request_duration_seconds_bucket{route="a",service="web",version="v2-1",le="+Inf"} 10
kiln_proxy_requests_total{route="a",service="api",version="v1-2"} 99
"#;
        let got = parse(text, "web");
        let c = &got["v2-1"];
        assert_eq!((c.requests, c.errors), (15, 4));
        let w = c.since(&Counters::default());
        assert_eq!(w.requests, 15);
        assert!(w.p99_ms.is_some());
        assert!(!got.contains_key("v1-2"));
    }
}
