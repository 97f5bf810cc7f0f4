//! Reads one entry of a service's `volumes`.

use crate::raw::Field;
use crate::raw::read::TableReader;
use crate::report::{Report, Span};
use toml::de::DeTable;

const KEYS: &[&str] = &["host", "to", "read_only", "external"];

const ALIASES: &[(&str, &str)] = &[
    ("source", "host"),
    ("src", "host"),
    ("from", "host"),
    ("host_path", "host"),
    ("target", "to"),
    ("dest", "to"),
    ("dst", "to"),
    ("destination", "to"),
    ("path", "to"),
    ("readonly", "read_only"),
    ("ro", "read_only"),
];

/// One volume, shape-checked.
#[derive(Debug)]
pub(crate) struct RawVolume {
    /// The volume's table (inline or `[[...]]` header).
    pub header: Span,
    /// Its place, for messages: `[[service.web.volumes]]`.
    pub place: String,
    /// Which of `host`, `to` and `external` were written, even with the wrong type.
    pub present: Vec<&'static str>,
    pub host: Option<Field<String>>,
    pub to: Option<Field<String>>,
    pub read_only: Option<Field<bool>>,
    pub external: Option<Field<bool>>,
    /// Whether the table had unknown keys (already reported).
    pub unknown_keys: bool,
}

/// `service` is the service's key path ("service.web"), for messages.
pub(crate) fn read(
    header: Span,
    table: &DeTable<'_>,
    service: &str,
    report: &mut Report,
) -> RawVolume {
    let label = format!("{service}.volumes");
    let place = format!("[[{label}]]");
    let mut reader = TableReader::new(table, KEYS, ALIASES, place.clone()).within(&label);
    let host = reader.take("host").and_then(|v| v.string(report));
    let to = reader.take("to").and_then(|v| v.string(report));
    let read_only = reader.take("read_only").and_then(|v| v.boolean(report));
    let external = reader.take("external").and_then(|v| v.boolean(report));
    let present = reader.taken_keys();
    let unknown_keys = reader.finish(report);
    RawVolume {
        header,
        place,
        present,
        host,
        to,
        read_only,
        external,
        unknown_keys,
    }
}
