//! Reads a service's `resources` and `stop` tables.

use toml::de::{DeTable, DeValue};

use crate::raw::Field;
use crate::raw::read::{TableReader, Value};
use crate::report::Report;

const RESOURCE_KEYS: &[&str] = &["memory", "cpus", "pids"];

const RESOURCE_ALIASES: &[(&str, &str)] = &[
    ("mem", "memory"),
    ("memory_limit", "memory"),
    ("ram", "memory"),
    ("cpu", "cpus"),
    ("cpu_limit", "cpus"),
    ("cores", "cpus"),
    ("pid", "pids"),
    ("pids_limit", "pids"),
    ("processes", "pids"),
];

const STOP_KEYS: &[&str] = &["signal", "grace"];

const STOP_ALIASES: &[(&str, &str)] = &[
    ("sig", "signal"),
    ("stop_signal", "signal"),
    ("timeout", "grace"),
    ("grace_period", "grace"),
    ("stop_timeout", "grace"),
];

/// A memory size as written: a number of bytes, or a string with a unit.
#[derive(Debug, Clone)]
pub(crate) enum Size {
    Bytes(i64),
    Text(String),
}

#[derive(Debug)]
pub(crate) struct RawResources {
    pub memory: Option<Field<Size>>,
    /// Integers are taken as floats.
    pub cpus: Option<Field<f64>>,
    pub pids: Option<Field<i64>>,
}

#[derive(Debug)]
pub(crate) struct RawStop {
    pub signal: Option<Field<String>>,
    pub grace: Option<Field<String>>,
}

/// `service` is the service's key path ("service.web"), for messages.
pub(crate) fn resources(table: &DeTable<'_>, service: &str, report: &mut Report) -> RawResources {
    let label = format!("{service}.resources");
    let mut reader = TableReader::at(table, RESOURCE_KEYS, RESOURCE_ALIASES, &label);
    let memory = reader.take("memory").and_then(|v| size(&v, report));
    let cpus = reader.take("cpus").and_then(|v| cpus(&v, report));
    let pids = reader.take("pids").and_then(|v| v.integer(report));
    let _ = reader.finish(report);
    RawResources { memory, cpus, pids }
}

pub(crate) fn stop(table: &DeTable<'_>, service: &str, report: &mut Report) -> RawStop {
    let label = format!("{service}.stop");
    let mut reader = TableReader::at(table, STOP_KEYS, STOP_ALIASES, &label);
    let signal = reader.take("signal").and_then(|v| {
        if let DeValue::Integer(number) = v.value.get_ref() {
            v.wrong_type("a signal name", report).hint(format!(
                "write its name, not its number {number}: signal = \"SIGTERM\""
            ));
            return None;
        }
        v.string(report)
    });
    let grace = reader.take("grace").and_then(|v| v.duration(report));
    let _ = reader.finish(report);
    RawStop { signal, grace }
}

fn size(value: &Value<'_, '_>, report: &mut Report) -> Option<Field<Size>> {
    match value.value.get_ref() {
        DeValue::String(text) => Some(value.field(Size::Text(text.to_string()))),
        DeValue::Integer(_) => value
            .integer(report)
            .map(|field| value.field(Size::Bytes(field.value))),
        _ => {
            value
                .wrong_type("a size", report)
                .hint("for example: memory = \"128Mi\"");
            None
        }
    }
}

fn cpus(value: &Value<'_, '_>, report: &mut Report) -> Option<Field<f64>> {
    match value.value.get_ref() {
        DeValue::Float(float) => match float.as_str().parse::<f64>() {
            Ok(cpus) => Some(value.field(cpus)),
            Err(_) => {
                value.wrong_type("a number of CPUs", report);
                None
            }
        },
        // Whole CPU counts are small enough to be exact as floats.
        DeValue::Integer(_) => value
            .integer(report)
            .map(|field| value.field(field.value as f64)),
        DeValue::String(_) => {
            value
                .wrong_type("a number of CPUs", report)
                .hint("write a number, not a string: cpus = 0.5");
            None
        }
        _ => {
            value.wrong_type("a number of CPUs", report);
            None
        }
    }
}
