//! Reads the `[image.NAME]` tables.

use toml::Spanned;
use toml::de::DeTable;

use crate::raw::read::TableReader;
use crate::raw::{Entry, Field, RawStep, step, toml_key};
use crate::report::{Report, Span};

const KEYS: &[&str] = &[
    "from",
    "entrypoint",
    "cmd",
    "env",
    "workdir",
    "user",
    "labels",
    "expose",
    "step",
];

const ALIASES: &[(&str, &str)] = &[
    ("command", "cmd"),
    ("environment", "env"),
    ("label", "labels"),
    ("port", "expose"),
    ("ports", "expose"),
    ("run", "step"),
    ("copy", "step"),
    ("working_dir", "workdir"),
    ("workingdir", "workdir"),
];

/// One image table, shape-checked.
#[derive(Debug)]
pub(crate) struct RawImage {
    /// The image name, spanning its key.
    pub name: Field<String>,
    /// The table's header (or inline table), for messages about the image as a whole.
    pub header: Span,
    pub from: Option<Field<String>>,
    pub entrypoint: Option<Field<Vec<String>>>,
    pub cmd: Option<Field<Vec<String>>>,
    pub env: Vec<Entry>,
    pub workdir: Option<Field<String>>,
    pub user: Option<Field<String>>,
    pub labels: Vec<Entry>,
    pub expose: Vec<Spanned<i64>>,
    pub steps: Vec<RawStep>,
}

/// Reads every entry of `[image]`; entries that are not tables are reported and skipped.
pub(crate) fn read_all(images: &DeTable<'_>, report: &mut Report) -> Vec<RawImage> {
    super::read_named("image", images, report, read_one)
}

fn read_one(
    name: Field<String>,
    header: Span,
    table: &DeTable<'_>,
    report: &mut Report,
) -> RawImage {
    let label = format!("image.{}", toml_key(&name.value));
    let mut reader = TableReader::new(table, KEYS, ALIASES, format!("[{label}]"));
    let from = reader.take("from").and_then(|v| v.string(report));
    let entrypoint = reader.take("entrypoint").and_then(|v| v.command(report));
    let cmd = reader.take("cmd").and_then(|v| v.command(report));
    let env = reader.take("env").and_then(|v| v.string_table(report));
    let workdir = reader.take("workdir").and_then(|v| v.string(report));
    let user = reader.take("user").and_then(|v| v.string(report));
    let labels = reader.take("labels").and_then(|v| v.string_table(report));
    let expose = reader
        .take("expose")
        .and_then(|v| v.integers("an array of port numbers", "a port number", report));
    let steps = reader
        .take("step")
        .and_then(|v| {
            let hint = format!("write each step as its own table: [[{label}.step]]");
            v.tables("an array of tables", &hint, report)
        })
        .unwrap_or_default()
        .into_iter()
        .map(|(span, table)| step::read(span, table, &label, report))
        .collect();
    let _ = reader.finish(report);
    RawImage {
        name,
        header,
        from,
        entrypoint,
        cmd,
        env: env.unwrap_or_default(),
        workdir,
        user,
        labels: labels.unwrap_or_default(),
        expose: expose.map(|f| f.value).unwrap_or_default(),
        steps,
    }
}
