//! Reads a service's `readiness` and `liveness` tables.

use crate::raw::Field;
use crate::raw::read::{TableReader, Value};
use crate::report::{Report, Span};

const KEYS: &[&str] = &[
    "http", "tcp", "exec", "interval", "timeout", "success", "failure",
];

const ALIASES: &[(&str, &str)] = &[
    ("path", "http"),
    ("url", "http"),
    ("get", "http"),
    ("http_get", "http"),
    ("command", "exec"),
    ("cmd", "exec"),
    ("run", "exec"),
    ("period", "interval"),
    ("every", "interval"),
    ("retries", "failure"),
    ("failures", "failure"),
    ("failure_threshold", "failure"),
    ("successes", "success"),
    ("success_threshold", "success"),
];

/// One probe table, shape-checked; which keys combine is checked in validation.
#[derive(Debug)]
pub(crate) struct RawProbe {
    /// The table's header (or inline table).
    pub header: Span,
    /// Its key path: `service.web.readiness`.
    pub label: String,
    /// The check keys (`http`, `tcp`, `exec`) present, with their key spans, in file order;
    /// including keys whose value had the wrong type.
    pub checks: Vec<(&'static str, Span)>,
    pub http: Option<Field<String>>,
    pub tcp: Option<Field<bool>>,
    pub exec: Option<Field<Vec<String>>>,
    pub interval: Option<Field<String>>,
    pub timeout: Option<Field<String>>,
    pub success: Option<Field<i64>>,
    pub failure: Option<Field<i64>>,
    /// Whether the table had unknown keys (already reported).
    pub unknown_keys: bool,
}

/// `value` is the `readiness` or `liveness` value of the service at key path `service`.
pub(crate) fn read(value: &Value<'_, '_>, service: &str, report: &mut Report) -> Option<RawProbe> {
    let label = format!("{service}.{}", value.name);
    let hint = format!("for example: {} = {{ http = \"/healthz\" }}", value.name);
    let (header, table) = value.table(&hint, report)?;
    let mut reader = TableReader::at(table, KEYS, ALIASES, &label);
    let mut checks = Vec::new();
    let mut check = |name: &'static str| {
        let value = reader.take(name);
        if let Some(v) = &value {
            checks.push((name, v.key.clone()));
        }
        value
    };
    let http = check("http").and_then(|v| v.string(report));
    let tcp = check("tcp").and_then(|v| v.boolean(report));
    let exec = check("exec").and_then(|v| v.command(report));
    checks.sort_by_key(|(_, span)| span.start);
    let interval = reader.take("interval").and_then(|v| v.duration(report));
    let timeout = reader.take("timeout").and_then(|v| v.duration(report));
    let success = reader.take("success").and_then(|v| v.integer(report));
    let failure = reader.take("failure").and_then(|v| v.integer(report));
    let unknown_keys = reader.finish(report);
    Some(RawProbe {
        header,
        label,
        checks,
        http,
        tcp,
        exec,
        interval,
        timeout,
        success,
        failure,
        unknown_keys,
    })
}
