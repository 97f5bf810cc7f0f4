//! Reads one `[[image.NAME.step]]` table.

use toml::de::{DeTable, DeValue};

use crate::raw::Field;
use crate::raw::read::TableReader;
use crate::report::{Report, Span};

const KEYS: &[&str] = &[
    "copy",
    "run",
    "copy_binary",
    "to",
    "from_image",
    "mode",
    "owner",
    "network",
];

const ALIASES: &[(&str, &str)] = &[
    ("from", "from_image"),
    ("image", "from_image"),
    ("src", "copy"),
    ("source", "copy"),
    ("dest", "to"),
    ("dst", "to"),
    ("destination", "to"),
    ("target", "to"),
    ("chmod", "mode"),
    ("chown", "owner"),
    ("binary", "copy_binary"),
    ("cmd", "run"),
];

/// One build step, shape-checked; which keys combine is checked in validation.
#[derive(Debug)]
pub(crate) struct RawStep {
    /// The step's `[[...]]` header (or inline table).
    pub header: Span,
    /// Known keys present in the table with their key spans, in [`KEYS`] order,
    /// including keys whose value had the wrong type.
    pub present: Vec<(&'static str, Span)>,
    pub copy: Option<Field<String>>,
    pub run: Option<Field<Vec<String>>>,
    pub copy_binary: Option<Field<String>>,
    pub to: Option<Field<String>>,
    pub from_image: Option<Field<String>>,
    pub mode: Option<Field<String>>,
    pub owner: Option<Field<String>>,
    pub network: Option<Field<bool>>,
    /// Whether the table had unknown keys (already reported): a misspelled
    /// key is then the likely reason for a missing one.
    pub unknown_keys: bool,
}

impl RawStep {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.present.iter().any(|(name, _)| *name == key)
    }
}

/// `image` is the image's key path ("image.hello"), for messages.
pub(crate) fn read(header: Span, table: &DeTable<'_>, image: &str, report: &mut Report) -> RawStep {
    let mut reader = TableReader::new(table, KEYS, ALIASES, format!("[[{image}.step]]"));
    let copy = reader.take("copy").and_then(|v| v.string(report));
    let run = reader.take("run").and_then(|v| v.command(report));
    let copy_binary = reader.take("copy_binary").and_then(|v| v.string(report));
    let to = reader.take("to").and_then(|v| v.string(report));
    let from_image = reader.take("from_image").and_then(|v| v.string(report));
    let mode = reader.take("mode").and_then(|v| {
        if let DeValue::Integer(i) = v.value.get_ref() {
            let digits = i.as_str().trim_start_matches('0');
            v.wrong_type("an octal string", report)
                .hint(format!("quote it: mode = \"0{digits}\""));
            return None;
        }
        v.string(report)
    });
    let owner = reader.take("owner").and_then(|v| v.string(report));
    let network = reader.take("network").and_then(|v| v.boolean(report));
    let present = reader.taken();
    let unknown_keys = reader.finish(report);
    RawStep {
        header,
        present,
        copy,
        run,
        copy_binary,
        to,
        from_image,
        mode,
        owner,
        network,
        unknown_keys,
    }
}
