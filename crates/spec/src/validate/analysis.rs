//! Validates a strategy's `analysis`: the thresholds a new version must keep.

use std::time::Duration;

use crate::model::Analysis;
use crate::raw::{Field, RawAnalysis};
use crate::report::Report;
use crate::validate::{bounded, values};

const HOUR: Duration = Duration::from_secs(3600);

/// `None` if the table has problems, all of which are reported.
pub(crate) fn analysis(raw: &RawAnalysis, report: &mut Report) -> Option<Analysis> {
    let label = &raw.label;
    let key = |name: &str| format!("{label}.{name}");
    let mut ok = true;
    // A misspelled threshold is the likelier cause of a missing one, and is reported already.
    if !raw.has_threshold && !raw.unknown_keys {
        report
            .error(
                &raw.header,
                format!("analysis checks nothing: [{label}] needs `max_error_rate`, `max_p99_latency` or `max_p99_ratio`"),
            )
            .hint("for example: max_error_rate = 0.01, max_p99_latency = \"300ms\" or max_p99_ratio = 1.5");
        ok = false;
    }
    // The outer `Option` is failure, the inner one absence.
    let max_error_rate_ppm = match &raw.max_error_rate {
        Some(field) => error_rate(field, &key("max_error_rate"), report).map(Some),
        None => Some(None),
    };
    let max_p99_latency = match &raw.max_p99_latency {
        Some(field) => bounded::duration(
            field,
            &key("max_p99_latency"),
            Duration::from_nanos(1)..=HOUR,
            "it must be more than 0 and at most 1h",
            report,
        )
        .map(Some),
        None => Some(None),
    };
    let max_p99_ratio_permille = match &raw.max_p99_ratio {
        Some(field) => ratio(field, &key("max_p99_ratio"), report).map(Some),
        None => Some(None),
    };
    let min_requests = match &raw.min_requests {
        Some(field) => bounded::integer(field, &key("min_requests"), 1..=1_000_000, report),
        None => Some(Analysis::default().min_requests),
    };
    let analysis = Analysis {
        max_error_rate_ppm: max_error_rate_ppm?,
        max_p99_latency: max_p99_latency?,
        max_p99_ratio_permille: max_p99_ratio_permille?,
        min_requests: min_requests?,
    };
    ok.then_some(analysis)
}

/// A fraction 0-1 in millionths.
fn error_rate(field: &Field<f64>, key: &str, report: &mut Report) -> Option<u32> {
    let rate = field.value;
    let reason = if !(0.0..=1.0).contains(&rate) {
        "it must be a fraction from 0 to 1"
    } else {
        match scaled(rate, 1_000_000.0) {
            Some(ppm) => return Some(ppm),
            None => "it is more precise than a millionth",
        }
    };
    let diagnostic = report.error(&field.span, values::invalid(key, &rate.to_string(), reason));
    if rate > 1.0 && rate <= 100.0 {
        diagnostic.hint(format!(
            "a rate is a fraction, not a percentage: did you mean {}?",
            rate / 100.0
        ));
    }
    None
}

/// A ratio 1-100 in thousandths.
fn ratio(field: &Field<f64>, key: &str, report: &mut Report) -> Option<u32> {
    let ratio = field.value;
    let reason = if !(1.0..=100.0).contains(&ratio) {
        "it must be between 1 and 100"
    } else {
        match scaled(ratio, 1000.0) {
            Some(permille) => return Some(permille),
            None => "it is more precise than a thousandth",
        }
    };
    let diagnostic = report.error(
        &field.span,
        values::invalid(key, &ratio.to_string(), reason),
    );
    if ratio < 1.0 {
        diagnostic.hint(
            "it bounds the new version's p99 latency as a multiple of the stable version's: 1.5 allows 50 % more",
        );
    }
    None
}

/// `value * unit` if that is a whole number; `value` is finite and small.
fn scaled(value: f64, unit: f64) -> Option<u32> {
    let exact = value * unit;
    let rounded = exact.round();
    // At most 100 million: the cast is exact.
    ((exact - rounded).abs() <= 1e-6 && (0.0..=1e8).contains(&rounded)).then_some(rounded as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling() {
        assert_eq!(scaled(0.01, 1e6), Some(10_000));
        assert_eq!(scaled(0.001, 1e6), Some(1000));
        assert_eq!(scaled(1.0, 1e6), Some(1_000_000));
        assert_eq!(scaled(0.0, 1e6), Some(0));
        assert_eq!(scaled(1.5, 1e3), Some(1500));
        assert_eq!(scaled(1.1, 1e3), Some(1100));
        assert_eq!(scaled(1.0005, 1e3), None);
        assert_eq!(scaled(0.0000001, 1e6), None);
    }
}
