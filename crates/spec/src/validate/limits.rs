//! Validates a service's `resources` and `stop`.

use std::time::Duration;

use crate::model::{Resources, Signal, StopSpec};
use crate::raw::{Field, RawResources, RawStop, Size};
use crate::report::Report;
use crate::suggest::did_you_mean;
use crate::validate::{bounded, quantity, values};

/// The least memory runc and the kernel accept for a container.
const MIN_MEMORY: u64 = 4 << 20;

/// Most CPUs, in thousandths.
const MAX_CPU_MILLIS: f64 = 1_000_000.0;

/// `service` is the service's key path ("service.web"), for messages.
pub(crate) fn resources(
    raw: Option<&RawResources>,
    service: &str,
    report: &mut Report,
) -> Option<Resources> {
    let Some(raw) = raw else {
        return Some(Resources::default());
    };
    let label = format!("{service}.resources");
    // The outer `Option` is failure, the inner one absence.
    let memory = match &raw.memory {
        Some(field) => memory(field, &format!("{label}.memory"), report).map(Some),
        None => Some(None),
    };
    let cpu_millis = match &raw.cpus {
        Some(field) => cpu_millis(field, &format!("{label}.cpus"), report).map(Some),
        None => Some(None),
    };
    let pids = match &raw.pids {
        Some(field) => {
            let max = i64::from(u32::MAX);
            bounded::integer(field, &format!("{label}.pids"), 1..=max, report).map(Some)
        }
        None => Some(None),
    };
    Some(Resources {
        memory: memory?,
        cpu_millis: cpu_millis?,
        pids: pids?,
    })
}

fn memory(field: &Field<Size>, key: &str, report: &mut Report) -> Option<u64> {
    let (text, bytes) = match &field.value {
        Size::Bytes(n) => (
            n.to_string(),
            u64::try_from(*n).map_err(|_| quantity::Problem {
                reason: "it is negative",
                hint: None,
            }),
        ),
        Size::Text(text) => (text.clone(), quantity::size(text)),
    };
    match bytes {
        Ok(bytes) if bytes >= MIN_MEMORY => Some(bytes),
        Ok(_) => {
            report
                .error(
                    &field.span,
                    values::invalid(key, &text, "it is less than 4Mi"),
                )
                .hint("runc and the kernel refuse a memory limit under 4 MiB");
            None
        }
        Err(problem) => {
            let diagnostic = report.error(&field.span, values::invalid(key, &text, problem.reason));
            if let Some(hint) = problem.hint {
                diagnostic.hint(hint);
            }
            None
        }
    }
}

fn cpu_millis(field: &Field<f64>, key: &str, report: &mut Report) -> Option<u32> {
    let millis = field.value * 1000.0;
    let rounded = millis.round();
    let reason = if !millis.is_finite() || rounded <= 0.0 {
        "it must be more than 0"
    } else if rounded > MAX_CPU_MILLIS {
        "it is more than 1000 CPUs"
    } else if (millis - rounded).abs() > 1e-6 {
        "CPUs are counted in thousandths"
    } else {
        // A whole number in 1..=1_000_000: the cast is exact.
        return Some(rounded as u32);
    };
    report.error(
        &field.span,
        values::invalid(key, &field.value.to_string(), reason),
    );
    None
}

/// `service` is the service's key path ("service.web"), for messages.
pub(crate) fn stop(raw: Option<&RawStop>, service: &str, report: &mut Report) -> Option<StopSpec> {
    let default = StopSpec::default();
    let Some(raw) = raw else {
        return Some(default);
    };
    let label = format!("{service}.stop");
    let signal = match &raw.signal {
        Some(field) => signal(field, &format!("{label}.signal"), report),
        None => Some(default.signal),
    };
    let grace = match &raw.grace {
        Some(field) => bounded::duration(
            field,
            &format!("{label}.grace"),
            Duration::ZERO..=Duration::from_secs(3600),
            "it must be at most 1h",
            report,
        ),
        None => Some(default.grace),
    };
    Some(StopSpec {
        signal: signal?,
        grace: grace?,
    })
}

fn signal(field: &Field<String>, key: &str, report: &mut Report) -> Option<Signal> {
    if let Some(signal) = Signal::from_name(&field.value) {
        return Some(signal);
    }
    let name = field.value.to_ascii_uppercase();
    let names = Signal::ALL.map(|s| s.name());
    let bare = format!("SIG{}", name.trim_start_matches("SIG"));
    let diagnostic = report.error(
        &field.span,
        format!("unknown signal `{}` in `{key}`", field.value),
    );
    if let Some(known) = did_you_mean(&bare, names) {
        diagnostic.hint(format!("did you mean `{known}`?"));
    }
    diagnostic.hint(format!("kiln can send {}", names.join(", ")));
    None
}
