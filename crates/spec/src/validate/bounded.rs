//! Numbers and durations that must lie within bounds, reported by key path.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::raw::Field;
use crate::report::Report;
use crate::validate::{quantity, values};

/// `field` if it is within `range` and fits `T`.
pub(crate) fn integer<T: TryFrom<i64>>(
    field: &Field<i64>,
    key: &str,
    range: RangeInclusive<i64>,
    report: &mut Report,
) -> Option<T> {
    let number = field.value;
    if range.contains(&number)
        && let Ok(number) = T::try_from(number)
    {
        return Some(number);
    }
    let reason = format!("it must be between {} and {}", range.start(), range.end());
    report.error(
        &field.span,
        values::invalid(key, &number.to_string(), &reason),
    );
    None
}

/// `field` parsed as a duration within `range`, which `rule` describes
/// ("it must be between 10ms and 1h").
pub(crate) fn duration(
    field: &Field<String>,
    key: &str,
    range: RangeInclusive<Duration>,
    rule: &str,
    report: &mut Report,
) -> Option<Duration> {
    match quantity::duration(&field.value) {
        Ok(duration) if range.contains(&duration) => Some(duration),
        Ok(_) => {
            report.error(&field.span, values::invalid(key, &field.value, rule));
            None
        }
        Err(problem) => {
            let diagnostic = report.error(
                &field.span,
                values::invalid(key, &field.value, problem.reason),
            );
            if let Some(hint) = problem.hint {
                diagnostic.hint(hint);
            }
            None
        }
    }
}
