//! The raw shape of kiln.toml: keys known and TOML types right, values not yet validated.
//!
//! Reading walks toml's spanned document tree by hand (rather than through
//! serde) so that every problem can point at the exact key or value, and so
//! that several problems can be reported at once.

mod image;
mod limits;
mod probe;
mod read;
mod route;
mod service;
mod step;
mod strategy;
mod volume;

use toml::de::{DeTable, DeValue};

use crate::report::{Report, Span};
use crate::suggest::did_you_mean;

pub(crate) use image::RawImage;
pub(crate) use limits::{RawResources, RawStop, Size};
pub(crate) use probe::RawProbe;
pub(crate) use route::{RawRoute, RawTls};
pub(crate) use service::RawService;
pub(crate) use step::RawStep;
pub(crate) use strategy::{KIND_KEYS, RawAnalysis, RawStrategy};
pub(crate) use volume::RawVolume;

/// Top-level sections of kiln.toml. Adding one means a name here, a field in
/// [`RawSpec`] and an arm in [`read`].
const SECTIONS: &[&str] = &["image", "service", "route"];

/// A whole kiln.toml, shape-checked.
#[derive(Debug, Default)]
pub(crate) struct RawSpec {
    pub images: Vec<RawImage>,
    pub services: Vec<RawService>,
    pub routes: Vec<RawRoute>,
}

/// A value together with where its key and the value itself are in the source.
#[derive(Debug, Clone)]
pub(crate) struct Field<T> {
    pub key: Span,
    pub span: Span,
    pub value: T,
}

/// One `key = "string"` entry of a table of strings (`env`, `labels`).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub key: Span,
    pub value: String,
    pub span: Span,
}

/// Parses TOML and checks the document's shape. Problems go to `report`;
/// `None` only when the TOML itself cannot be parsed.
pub(crate) fn read(source: &str, report: &mut Report) -> Option<RawSpec> {
    let document = match DeTable::parse(source) {
        Ok(document) => document,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            let mut message = error.message().to_owned();
            if message == "duplicate key"
                && let Some(key) = source.get(span.clone()).filter(|k| !k.is_empty())
            {
                message = format!("duplicate key `{key}`");
            }
            report.error(&span, format!("invalid TOML: {message}"));
            return None;
        }
    };
    let mut spec = RawSpec::default();
    for (key, value) in document.get_ref().iter() {
        match key.get_ref().as_ref() {
            "image" => {
                if let Some(images) = section(value, "image", "images", report) {
                    spec.images = image::read_all(images, report);
                }
            }
            "service" => {
                if let Some(services) = section(value, "service", "services", report) {
                    spec.services = service::read_all(services, report);
                }
            }
            "route" => {
                if let Some(routes) = section(value, "route", "routes", report) {
                    spec.routes = route::read_all(routes, report);
                }
            }
            name => {
                let diagnostic =
                    report.error(&key.span(), format!("unknown top-level key `{name}`"));
                match did_you_mean(name, SECTIONS.iter().copied()) {
                    Some(known) => diagnostic.hint(format!("did you mean `{known}`?")),
                    None => diagnostic.hint(
                        "kiln.toml declares [image.NAME], [service.NAME] and [route.NAME] tables",
                    ),
                };
            }
        }
    }
    Some(spec)
}

/// `name` as a TOML key: bare when possible, quoted otherwise.
pub(crate) fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// Reads every entry of a section of named tables (`[image.NAME]`, `[service.NAME]`,
/// `[route.NAME]`) with `read_one`; an entry that is not a table is reported (as a
/// `section` such as "image") and skipped.
pub(crate) fn read_named<T>(
    section: &str,
    entries: &DeTable<'_>,
    report: &mut Report,
    mut read_one: impl FnMut(Field<String>, Span, &DeTable<'_>, &mut Report) -> T,
) -> Vec<T> {
    let mut read = Vec::with_capacity(entries.len());
    for (key, value) in entries.iter() {
        let name = Field {
            key: key.span(),
            span: key.span(),
            value: key.get_ref().to_string(),
        };
        match value.get_ref() {
            DeValue::Table(table) => read.push(read_one(name, value.span(), table, report)),
            other => {
                let label = format!("{section}.{}", toml_key(&name.value));
                report
                    .error(
                        &value.span(),
                        format!(
                            "wrong type for `{label}`: expected a table, found {}",
                            read::type_name(other)
                        ),
                    )
                    .hint(format!("declare the {section} as a table: [{label}]"));
            }
        }
    }
    read
}

/// The table of a top-level section (`[image]`, `[service]`, `[route]`): `None`, reported,
/// if it is something else.
fn section<'a, 'i>(
    value: &'a toml::Spanned<DeValue<'i>>,
    name: &str,
    plural: &str,
    report: &mut Report,
) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(table) => Some(table),
        other => {
            report
                .error(
                    &value.span(),
                    format!(
                        "wrong type for `{name}`: expected a table of {plural}, found {}",
                        read::type_name(other)
                    ),
                )
                .hint(format!("declare each {name} as a table: [{name}.NAME]"));
            None
        }
    }
}
