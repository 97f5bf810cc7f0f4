//! Reads the `[service.NAME]` tables.

use toml::Spanned;
use toml::de::DeTable;

use crate::raw::read::TableReader;
use crate::raw::{Entry, Field, RawProbe, RawResources, RawStop, RawStrategy, RawVolume, toml_key};
use crate::raw::{limits, probe, strategy, volume};
use crate::report::{Report, Span};

const KEYS: &[&str] = &[
    "image",
    "replicas",
    "port",
    "args",
    "env",
    "resources",
    "stop",
    "tmpfs",
    "volumes",
    "readiness",
    "liveness",
    "strategy",
];

const ALIASES: &[(&str, &str)] = &[
    ("from", "image"),
    ("replica", "replicas"),
    ("instances", "replicas"),
    ("scale", "replicas"),
    ("count", "replicas"),
    ("ports", "port"),
    ("expose", "port"),
    ("listen", "port"),
    ("command", "args"),
    ("cmd", "args"),
    ("arguments", "args"),
    ("environment", "env"),
    ("limits", "resources"),
    ("resource", "resources"),
    ("stop_signal", "stop"),
    ("mounts", "volumes"),
    ("mount", "volumes"),
    ("volume", "volumes"),
    ("health", "readiness"),
    ("healthcheck", "readiness"),
    ("health_check", "readiness"),
    ("ready", "readiness"),
    ("liveliness", "liveness"),
    ("live", "liveness"),
    ("rollout", "strategy"),
    ("deploy", "strategy"),
    ("deployment", "strategy"),
    ("update", "strategy"),
    ("update_strategy", "strategy"),
];

/// One service table, shape-checked.
#[derive(Debug)]
pub(crate) struct RawService {
    /// The service name, spanning its key.
    pub name: Field<String>,
    /// The table's header (or inline table), for messages about the service as a whole.
    pub header: Span,
    /// Known keys present in the table, including keys whose value had the wrong type.
    pub present: Vec<&'static str>,
    pub image: Option<Field<String>>,
    pub replicas: Option<Field<i64>>,
    pub port: Option<Field<i64>>,
    pub args: Option<Field<Vec<String>>>,
    pub env: Vec<Entry>,
    pub resources: Option<RawResources>,
    pub stop: Option<RawStop>,
    pub tmpfs: Vec<Spanned<String>>,
    pub volumes: Vec<RawVolume>,
    pub readiness: Option<RawProbe>,
    pub liveness: Option<RawProbe>,
    pub strategy: Option<RawStrategy>,
    /// Whether the table had unknown keys (already reported).
    pub unknown_keys: bool,
}

impl RawService {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.present.contains(&key)
    }
}

/// Reads every entry of `[service]`; entries that are not tables are reported and skipped.
pub(crate) fn read_all(services: &DeTable<'_>, report: &mut Report) -> Vec<RawService> {
    super::read_named("service", services, report, read_one)
}

fn read_one(
    name: Field<String>,
    header: Span,
    table: &DeTable<'_>,
    report: &mut Report,
) -> RawService {
    let label = format!("service.{}", toml_key(&name.value));
    let mut reader = TableReader::at(table, KEYS, ALIASES, &label);
    let image = reader.take("image").and_then(|v| v.string(report));
    let replicas = reader.take("replicas").and_then(|v| v.integer(report));
    let port = reader.take("port").and_then(|v| v.integer(report));
    let args = reader.take("args").and_then(|v| v.command(report));
    let env = reader.take("env").and_then(|v| v.string_table(report));
    let resources = reader
        .take("resources")
        .and_then(|v| {
            v.table(
                "for example: resources = { memory = \"128Mi\", cpus = 0.5 }",
                report,
            )
        })
        .map(|(_, table)| limits::resources(table, &label, report));
    let stop = reader
        .take("stop")
        .and_then(|v| {
            v.table(
                "for example: stop = { signal = \"SIGTERM\", grace = \"10s\" }",
                report,
            )
        })
        .map(|(_, table)| limits::stop(table, &label, report));
    let tmpfs = reader
        .take("tmpfs")
        .and_then(|v| v.spanned_strings("an array of absolute paths", report));
    let volumes = reader
        .take("volumes")
        .and_then(|v| {
            let hint = "for example: volumes = [{ host = \"/srv/data\", to = \"/data\", external = true }]";
            v.tables("an array of tables", hint, report)
        })
        .unwrap_or_default()
        .into_iter()
        .map(|(span, table)| volume::read(span, table, &label, report))
        .collect();
    let readiness = reader
        .take("readiness")
        .and_then(|v| probe::read(&v, &label, report));
    let liveness = reader
        .take("liveness")
        .and_then(|v| probe::read(&v, &label, report));
    let strategy = reader
        .take("strategy")
        .and_then(|v| strategy::read(&v, &label, report));
    let present = reader.taken_keys();
    let unknown_keys = reader.finish(report);
    RawService {
        name,
        header,
        present,
        image,
        replicas,
        port,
        args,
        env: env.unwrap_or_default(),
        resources,
        stop,
        tmpfs: tmpfs.unwrap_or_default(),
        volumes,
        readiness,
        liveness,
        strategy,
        unknown_keys,
    }
}
