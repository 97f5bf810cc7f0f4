//! Reads the `[route.NAME]` tables.

use toml::de::{DeTable, DeValue};

use crate::raw::read::{TableReader, Value};
use crate::raw::{Field, toml_key};
use crate::report::{Report, Span};

const KEYS: &[&str] = &["listen", "service", "host", "path_prefix", "timeout", "tls"];

const ALIASES: &[(&str, &str)] = &[
    ("bind", "listen"),
    ("address", "listen"),
    ("addr", "listen"),
    ("port", "listen"),
    ("backend", "service"),
    ("upstream", "service"),
    ("target", "service"),
    ("to", "service"),
    ("hostname", "host"),
    ("domain", "host"),
    ("server_name", "host"),
    ("path", "path_prefix"),
    ("prefix", "path_prefix"),
    ("location", "path_prefix"),
    ("request_timeout", "timeout"),
    ("ssl", "tls"),
    ("https", "tls"),
    ("certificate", "tls"),
];

const TLS_KEYS: &[&str] = &["cert", "key"];

const TLS_ALIASES: &[(&str, &str)] = &[
    ("certificate", "cert"),
    ("cert_file", "cert"),
    ("crt", "cert"),
    ("chain", "cert"),
    ("key_file", "key"),
    ("private_key", "key"),
];

/// One route table, shape-checked.
#[derive(Debug)]
pub(crate) struct RawRoute {
    /// The route name, spanning its key.
    pub name: Field<String>,
    /// The table's header (or inline table), for messages about the route as a whole.
    pub header: Span,
    /// Known keys present in the table, including keys whose value had the wrong type.
    pub present: Vec<&'static str>,
    pub listen: Option<Field<String>>,
    pub service: Option<Field<String>>,
    pub host: Option<Field<String>>,
    pub path_prefix: Option<Field<String>>,
    pub timeout: Option<Field<String>>,
    pub tls: Option<RawTls>,
    /// Whether the table had unknown keys (already reported).
    pub unknown_keys: bool,
}

impl RawRoute {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.present.contains(&key)
    }
}

/// A route's `tls` table, shape-checked.
#[derive(Debug)]
pub(crate) struct RawTls {
    pub header: Span,
    /// Its key path: `route.web.tls`.
    pub label: String,
    /// Which of `cert` and `key` were written, even with the wrong type.
    pub present: Vec<&'static str>,
    pub cert: Option<Field<String>>,
    pub key: Option<Field<String>>,
    pub unknown_keys: bool,
}

/// Reads every entry of `[route]`; entries that are not tables are reported and skipped.
pub(crate) fn read_all(routes: &DeTable<'_>, report: &mut Report) -> Vec<RawRoute> {
    super::read_named("route", routes, report, read_one)
}

fn read_one(
    name: Field<String>,
    header: Span,
    table: &DeTable<'_>,
    report: &mut Report,
) -> RawRoute {
    let label = format!("route.{}", toml_key(&name.value));
    let mut reader = TableReader::at(table, KEYS, ALIASES, &label);
    let listen = reader.take("listen").and_then(|v| listen(&v, report));
    let service = reader.take("service").and_then(|v| v.string(report));
    let host = reader.take("host").and_then(|v| v.string(report));
    let path_prefix = reader.take("path_prefix").and_then(|v| v.string(report));
    let timeout = reader.take("timeout").and_then(|v| v.duration(report));
    let tls = reader.take("tls").and_then(|v| tls(&v, &label, report));
    let present = reader.taken_keys();
    let unknown_keys = reader.finish(report);
    RawRoute {
        name,
        header,
        present,
        listen,
        service,
        host,
        path_prefix,
        timeout,
        tls,
        unknown_keys,
    }
}

/// An address as a string; a bare port number gets a hint.
fn listen(value: &Value<'_, '_>, report: &mut Report) -> Option<Field<String>> {
    if let DeValue::Integer(port) = value.value.get_ref() {
        value.wrong_type("an address", report).hint(format!(
            "write an IP address and the port: listen = \"0.0.0.0:{port}\""
        ));
        return None;
    }
    value.string(report)
}

fn tls(value: &Value<'_, '_>, route: &str, report: &mut Report) -> Option<RawTls> {
    let label = format!("{route}.tls");
    let hint = "for example: tls = { cert = \"certs/site.pem\", key = \"certs/site.key\" }";
    let (header, table) = value.table(hint, report)?;
    let mut reader = TableReader::at(table, TLS_KEYS, TLS_ALIASES, &label);
    let cert = reader.take("cert").and_then(|v| v.string(report));
    let key = reader.take("key").and_then(|v| v.string(report));
    let present = reader.taken_keys();
    let unknown_keys = reader.finish(report);
    Some(RawTls {
        header,
        label,
        present,
        cert,
        key,
        unknown_keys,
    })
}
