//! Reads a service's `strategy` table and its `analysis`.

use toml::Spanned;
use toml::de::DeValue;

use crate::raw::Field;
use crate::raw::read::{TableReader, Value};
use crate::report::{Report, Span};

const KEYS: &[&str] = &[
    "kind",
    "steps",
    "pause",
    "rollback_window",
    "max_surge",
    "max_unavailable",
    "progress_deadline",
    "analysis",
];

const ALIASES: &[(&str, &str)] = &[
    ("type", "kind"),
    ("strategy", "kind"),
    ("weights", "steps"),
    ("percentages", "steps"),
    ("traffic", "steps"),
    ("wait", "pause"),
    ("interval", "pause"),
    ("step_pause", "pause"),
    ("rollback", "rollback_window"),
    ("scale_down_delay", "rollback_window"),
    ("surge", "max_surge"),
    ("unavailable", "max_unavailable"),
    ("deadline", "progress_deadline"),
    ("timeout", "progress_deadline"),
    ("analyze", "analysis"),
    ("checks", "analysis"),
    ("metrics", "analysis"),
];

const ANALYSIS_KEYS: &[&str] = &[
    "max_error_rate",
    "max_p99_latency",
    "max_p99_ratio",
    "min_requests",
];

const ANALYSIS_ALIASES: &[(&str, &str)] = &[
    ("error_rate", "max_error_rate"),
    ("errors", "max_error_rate"),
    ("max_errors", "max_error_rate"),
    ("latency", "max_p99_latency"),
    ("p99", "max_p99_latency"),
    ("p99_latency", "max_p99_latency"),
    ("max_latency", "max_p99_latency"),
    ("ratio", "max_p99_ratio"),
    ("p99_ratio", "max_p99_ratio"),
    ("max_latency_ratio", "max_p99_ratio"),
    ("requests", "min_requests"),
    ("min_samples", "min_requests"),
];

/// The keys that apply to one kind only, with that kind's name.
pub(crate) const KIND_KEYS: &[(&str, &str)] = &[
    ("steps", "canary"),
    ("rollback_window", "blue-green"),
    ("max_surge", "rolling"),
    ("max_unavailable", "rolling"),
];

/// One strategy table, shape-checked; which keys fit the kind is checked in validation.
#[derive(Debug)]
pub(crate) struct RawStrategy {
    /// Its key path: `service.web.strategy`.
    pub label: String,
    /// The keys of [`KIND_KEYS`] present, with their key spans, including keys whose
    /// value had the wrong type.
    pub kind_keys: Vec<(&'static str, Span)>,
    /// `None` if absent or of the wrong type: `kind_wrong` tells which.
    pub kind: Option<Field<String>>,
    pub kind_wrong: bool,
    pub steps: Option<Field<Vec<Spanned<i64>>>>,
    pub pause: Option<Field<String>>,
    pub rollback_window: Option<Field<String>>,
    pub max_surge: Option<Field<i64>>,
    pub max_unavailable: Option<Field<i64>>,
    pub progress_deadline: Option<Field<String>>,
    pub analysis: Option<RawAnalysis>,
}

/// One analysis table, shape-checked.
#[derive(Debug)]
pub(crate) struct RawAnalysis {
    /// The table's header (or inline table).
    pub header: Span,
    /// Its key path: `service.web.strategy.analysis`.
    pub label: String,
    /// Whether any threshold key was written, even with the wrong type.
    pub has_threshold: bool,
    pub max_error_rate: Option<Field<f64>>,
    pub max_p99_latency: Option<Field<String>>,
    pub max_p99_ratio: Option<Field<f64>>,
    pub min_requests: Option<Field<i64>>,
    /// Whether the table had unknown keys (already reported).
    pub unknown_keys: bool,
}

/// `value` is the `strategy` value of the service at key path `service`.
pub(crate) fn read(
    value: &Value<'_, '_>,
    service: &str,
    report: &mut Report,
) -> Option<RawStrategy> {
    let label = format!("{service}.strategy");
    let kind = match value.value.get_ref() {
        DeValue::String(kind) => format!("{kind:?}"),
        _ => "\"canary\"".to_owned(),
    };
    let hint = format!("write it as a table: strategy = {{ kind = {kind} }}");
    let (_, table) = value.table(&hint, report)?;
    let mut reader = TableReader::at(table, KEYS, ALIASES, &label);
    let steps = reader
        .take("steps")
        .and_then(|v| v.integers("an array of percentages", "a percentage", report));
    let rollback_window = reader
        .take("rollback_window")
        .and_then(|v| v.duration(report));
    let max_surge = reader.take("max_surge").and_then(|v| v.integer(report));
    let max_unavailable = reader
        .take("max_unavailable")
        .and_then(|v| v.integer(report));
    let mut kind_keys: Vec<_> = reader
        .taken()
        .into_iter()
        .filter(|(name, _)| KIND_KEYS.iter().any(|(key, _)| key == name))
        .collect();
    kind_keys.sort_by_key(|(_, span)| span.start);
    let kind_value = reader.take("kind");
    let kind = kind_value.as_ref().and_then(|v| {
        let hint = "kind is \"blue-green\", \"canary\" or \"rolling\"";
        match v.value.get_ref() {
            DeValue::String(_) => v.string(report),
            _ => {
                v.wrong_type("a string", report).hint(hint);
                None
            }
        }
    });
    let kind_wrong = kind_value.is_some() && kind.is_none();
    let pause = reader.take("pause").and_then(|v| pause(&v, report));
    let progress_deadline = reader
        .take("progress_deadline")
        .and_then(|v| v.duration(report));
    let analysis = reader
        .take("analysis")
        .and_then(|v| analysis(&v, &label, report));
    let _ = reader.finish(report);
    Some(RawStrategy {
        label,
        kind_keys,
        kind,
        kind_wrong,
        steps,
        pause,
        rollback_window,
        max_surge,
        max_unavailable,
        progress_deadline,
        analysis,
    })
}

/// A duration or "manual"; a bare number gets a hint to add a unit.
fn pause(value: &Value<'_, '_>, report: &mut Report) -> Option<Field<String>> {
    match value.value.get_ref() {
        DeValue::String(_) | DeValue::Integer(_) | DeValue::Float(_) => value.duration(report),
        _ => {
            value
                .wrong_type("a duration or \"manual\"", report)
                .hint("for example: pause = \"30s\", or pause = \"manual\" to wait for `kiln rollout promote`");
            None
        }
    }
}

fn analysis(value: &Value<'_, '_>, strategy: &str, report: &mut Report) -> Option<RawAnalysis> {
    let label = format!("{strategy}.analysis");
    let hint = "for example: analysis = { max_error_rate = 0.01, max_p99_latency = \"300ms\" }";
    let (header, table) = value.table(hint, report)?;
    let mut reader = TableReader::at(table, ANALYSIS_KEYS, ANALYSIS_ALIASES, &label);
    let mut has_threshold = false;
    let mut threshold = |name: &'static str| {
        let value = reader.take(name);
        has_threshold |= value.is_some();
        value
    };
    let max_error_rate = threshold("max_error_rate")
        .and_then(|v| fraction(&v, "a fraction", "max_error_rate = 0.01", report));
    let max_p99_latency = threshold("max_p99_latency").and_then(|v| v.duration(report));
    let max_p99_ratio = threshold("max_p99_ratio")
        .and_then(|v| fraction(&v, "a ratio", "max_p99_ratio = 1.5", report));
    let min_requests = reader.take("min_requests").and_then(|v| v.integer(report));
    let unknown_keys = reader.finish(report);
    Some(RawAnalysis {
        header,
        label,
        has_threshold,
        max_error_rate,
        max_p99_latency,
        max_p99_ratio,
        min_requests,
        unknown_keys,
    })
}

/// A float or integer; `example` shows how to write it.
fn fraction(
    value: &Value<'_, '_>,
    expected: &str,
    example: &str,
    report: &mut Report,
) -> Option<Field<f64>> {
    match value.value.get_ref() {
        DeValue::Float(float) => match float.as_str().parse::<f64>() {
            Ok(number) => Some(value.field(number)),
            Err(_) => {
                value.wrong_type(expected, report);
                None
            }
        },
        // Integers written here are small enough to be exact as floats.
        DeValue::Integer(_) => value
            .integer(report)
            .map(|field| value.field(field.value as f64)),
        DeValue::String(text) => {
            let hint = match text.strip_suffix('%').map(str::trim).map(str::parse::<f64>) {
                Some(Ok(percent)) => format!(
                    "write a fraction, not a percentage: {} = {}",
                    value.name,
                    percent / 100.0
                ),
                _ => format!("write a number, not a string: {example}"),
            };
            value.wrong_type(expected, report).hint(hint);
            None
        }
        _ => {
            value
                .wrong_type(expected, report)
                .hint(format!("for example: {example}"));
            None
        }
    }
}
