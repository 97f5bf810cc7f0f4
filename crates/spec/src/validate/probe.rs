//! Validates a `readiness` or `liveness` probe: exactly one check, then its timing.

use std::time::Duration;

use crate::model::{Check, Probe};
use crate::raw::RawProbe;
use crate::report::Report;
use crate::validate::{bounded, values};

const HOUR: Duration = Duration::from_secs(3600);

/// `default_interval` differs between readiness and liveness. `http` and `tcp` check
/// the port kiln assigns each instance (its `$PORT`).
pub(crate) fn probe(
    raw: &RawProbe,
    default_interval: Duration,
    report: &mut Report,
) -> Option<Probe> {
    let label = &raw.label;
    let check = check(raw, report);
    let key = |name: &str| format!("{label}.{name}");
    let interval = match &raw.interval {
        Some(field) => bounded::duration(
            field,
            &key("interval"),
            Duration::from_millis(10)..=HOUR,
            "it must be between 10ms and 1h",
            report,
        ),
        None => Some(default_interval),
    };
    let timeout = match &raw.timeout {
        Some(field) => bounded::duration(
            field,
            &key("timeout"),
            Duration::from_nanos(1)..=HOUR,
            "it must be more than 0 and at most 1h",
            report,
        ),
        None => Some(Duration::from_secs(1)),
    };
    let success = match &raw.success {
        Some(field) => bounded::integer(field, &key("success"), 1..=100, report),
        None => Some(1),
    };
    let failure = match &raw.failure {
        Some(field) => bounded::integer(field, &key("failure"), 1..=100, report),
        None => Some(3),
    };
    Some(Probe {
        check: check?,
        interval: interval?,
        timeout: timeout?,
        success: success?,
        failure: failure?,
    })
}

fn check(raw: &RawProbe, report: &mut Report) -> Option<Check> {
    let label = &raw.label;
    let name = match raw.checks.as_slice() {
        [] if raw.unknown_keys => return None,
        [] => {
            report
                .error(
                    &raw.header,
                    format!("probe checks nothing: [{label}] needs one of `http`, `tcp` or `exec`"),
                )
                .hint("for example: http = \"/healthz\", tcp = true or exec = [\"/bin/check\"]");
            return None;
        }
        [(name, _)] => *name,
        [(first, _), (second, span), ..] => {
            report
                .error(
                    span,
                    format!("probe has both `{first}` and `{second}`: [{label}] checks one thing"),
                )
                .hint(format!("keep `{first}` or `{second}`"));
            return None;
        }
    };
    match name {
        "http" => http(raw, report),
        "tcp" => {
            let field = raw.tcp.as_ref()?;
            if !field.value {
                report
                    .error(&field.span, format!("`{label}.tcp = false` checks nothing"))
                    .hint("write tcp = true, or check with `http` or `exec`");
                return None;
            }
            Some(Check::Tcp)
        }
        _ => {
            let field = raw.exec.as_ref()?;
            if field.value.is_empty() {
                report
                    .error(&field.span, format!("empty `{label}.exec`"))
                    .hint("name the program to run and its arguments, for example: exec = [\"/bin/check\"]");
                return None;
            }
            Some(Check::Exec {
                command: field.value.clone(),
            })
        }
    }
}

fn http(raw: &RawProbe, report: &mut Report) -> Option<Check> {
    let field = raw.http.as_ref()?;
    let path = &field.value;
    let key = format!("{}.http", raw.label);
    let reason = if !path.starts_with('/') {
        "the path must start with `/`"
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it must not contain whitespace or control characters"
    } else {
        return Some(Check::Http { path: path.clone() });
    };
    let diagnostic = report.error(&field.span, values::invalid(&key, path, reason));
    if let Some((_, after_scheme)) = path.split_once("://") {
        let rest = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        diagnostic.hint(format!(
            "write only the path: kiln checks the service's own port: http = \"{rest}\""
        ));
    } else if !path.is_empty() && !path.starts_with('/') {
        diagnostic.hint(format!("did you mean `/{path}`?"));
    }
    None
}
