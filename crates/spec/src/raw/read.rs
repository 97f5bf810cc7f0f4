//! Typed access to the entries of one TOML table, reporting unknown keys and wrong types.

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::error::Diagnostic;
use crate::raw::{Entry, Field};
use crate::report::{Report, Span};
use crate::suggest::did_you_mean;

/// Reads the known keys of one table; whatever is not taken is an unknown key.
pub(crate) struct TableReader<'a, 'i> {
    entries: Vec<(&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>, bool)>,
    known: &'static [&'static str],
    /// Likely confusions that edit distance would not catch, as (wrong, right).
    aliases: &'static [(&'static str, &'static str)],
    /// Where the table is, for messages: "[image.hello]".
    place: String,
    /// The table's key path ("service.web"), if values are named by their
    /// full path in messages rather than by their key alone.
    path: Option<String>,
}

/// A value found under a known key.
pub(crate) struct Value<'a, 'i> {
    pub name: &'static str,
    /// How messages name the value: its key, or its full key path.
    pub label: String,
    pub key: Span,
    pub value: &'a Spanned<DeValue<'i>>,
}

impl<'a, 'i> TableReader<'a, 'i> {
    pub(crate) fn new(
        table: &'a DeTable<'i>,
        known: &'static [&'static str],
        aliases: &'static [(&'static str, &'static str)],
        place: String,
    ) -> Self {
        let entries = table.iter().map(|(k, v)| (k, v, false)).collect();
        TableReader {
            entries,
            known,
            aliases,
            place,
            path: None,
        }
    }

    /// The reader of the table at key path `label` (`service.web`): placed as `[label]`,
    /// values named by their full key path.
    pub(crate) fn at(
        table: &'a DeTable<'i>,
        known: &'static [&'static str],
        aliases: &'static [(&'static str, &'static str)],
        label: &str,
    ) -> Self {
        TableReader::new(table, known, aliases, format!("[{label}]")).within(label)
    }

    /// Names values by their full key path under `path` in messages:
    /// `service.web.port` rather than `port`.
    pub(crate) fn within(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The value under `name`, which must be one of the known keys.
    pub(crate) fn take(&mut self, name: &'static str) -> Option<Value<'a, 'i>> {
        debug_assert!(self.known.contains(&name), "`{name}` is not a known key");
        let (key, value, taken) = self
            .entries
            .iter_mut()
            .find(|(key, _, _)| key.get_ref().as_ref() == name)?;
        *taken = true;
        let label = match &self.path {
            Some(path) => format!("{path}.{name}"),
            None => name.to_owned(),
        };
        Some(Value {
            name,
            label,
            key: key.span(),
            value,
        })
    }

    /// The known keys taken so far (present in the table, whatever the type of their
    /// value), in the order of the known keys, with their key spans.
    pub(crate) fn taken(&self) -> Vec<(&'static str, Span)> {
        self.known
            .iter()
            .filter_map(|&name| {
                self.entries
                    .iter()
                    .find(|(key, _, taken)| *taken && key.get_ref().as_ref() == name)
                    .map(|(key, _, _)| (name, key.span()))
            })
            .collect()
    }

    /// [`TableReader::taken`] without the spans.
    pub(crate) fn taken_keys(&self) -> Vec<&'static str> {
        self.taken().into_iter().map(|(name, _)| name).collect()
    }

    /// Reports every key that was not taken, with a suggestion where one fits.
    /// Returns whether there was any.
    pub(crate) fn finish(self, report: &mut Report) -> bool {
        let mut unknown = false;
        for (key, _, taken) in self.entries {
            if taken {
                continue;
            }
            unknown = true;
            let name = key.get_ref().as_ref();
            let diagnostic = report.error(
                &key.span(),
                format!("unknown key `{name}` in {}", self.place),
            );
            let alias = self
                .aliases
                .iter()
                .find(|(wrong, _)| *wrong == name)
                .map(|(_, right)| *right);
            match alias.or_else(|| did_you_mean(name, self.known.iter().copied())) {
                Some(known) => diagnostic.hint(format!("did you mean `{known}`?")),
                None => diagnostic.hint(format!("valid keys here: {}", self.known.join(", "))),
            };
        }
        unknown
    }
}

impl<'a, 'i> Value<'a, 'i> {
    pub(crate) fn span(&self) -> Span {
        self.value.span()
    }

    /// Reports that the value is not `expected`; add hints to the result.
    pub(crate) fn wrong_type<'r>(
        &self,
        expected: &str,
        report: &'r mut Report,
    ) -> &'r mut Diagnostic {
        report.error(
            &self.span(),
            format!(
                "wrong type for `{}`: expected {expected}, found {}",
                self.label,
                type_name(self.value.get_ref())
            ),
        )
    }

    /// `value`, as read from this key.
    pub(crate) fn field<T>(&self, value: T) -> Field<T> {
        Field {
            key: self.key.clone(),
            span: self.span(),
            value,
        }
    }

    pub(crate) fn string(&self, report: &mut Report) -> Option<Field<String>> {
        match self.value.get_ref() {
            DeValue::String(s) => Some(self.field(s.to_string())),
            _ => {
                self.wrong_type("a string", report);
                None
            }
        }
    }

    pub(crate) fn boolean(&self, report: &mut Report) -> Option<Field<bool>> {
        match self.value.get_ref() {
            DeValue::Boolean(b) => Some(self.field(*b)),
            _ => {
                self.wrong_type("true or false", report);
                None
            }
        }
    }

    /// An array of strings; `expected` describes it ("an array of strings").
    pub(crate) fn strings(
        &self,
        expected: &str,
        report: &mut Report,
    ) -> Option<Field<Vec<String>>> {
        let items = self.spanned_strings(expected, report)?;
        Some(self.field(items.into_iter().map(Spanned::into_inner).collect()))
    }

    /// An array of strings, each with its own span.
    pub(crate) fn spanned_strings(
        &self,
        expected: &str,
        report: &mut Report,
    ) -> Option<Vec<Spanned<String>>> {
        let items = self.array(expected, report)?;
        let mut strings = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => strings.push(Spanned::new(item.span(), s.to_string())),
                other => {
                    report.error(
                        &item.span(),
                        format!(
                            "wrong type for an item of `{}`: expected a string, found {}",
                            self.label,
                            type_name(other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(strings)
    }

    /// A whole number that fits in an `i64`.
    pub(crate) fn integer(&self, report: &mut Report) -> Option<Field<i64>> {
        match self.value.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(self.field(n)),
                Err(_) => {
                    report.error(
                        &self.span(),
                        format!("integer `{i}` in `{}` is out of range", self.label),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type("an integer", report);
                None
            }
        }
    }

    /// A duration, written as a string with units ("1m30s"); a bare number
    /// gets a hint to add a unit.
    pub(crate) fn duration(&self, report: &mut Report) -> Option<Field<String>> {
        match self.value.get_ref() {
            DeValue::String(s) => Some(self.field(s.to_string())),
            DeValue::Integer(_) | DeValue::Float(_) => {
                let number = self.source_number();
                self.wrong_type("a duration", report).hint(format!(
                    "write it as a string with a unit: {} = \"{number}s\"",
                    self.name
                ));
                None
            }
            _ => {
                self.wrong_type("a duration", report)
                    .hint(format!("for example: {} = \"10s\"", self.name));
                None
            }
        }
    }

    /// A sub-table, inline or with its own header, with its span; `hint`
    /// shows how to write it.
    pub(crate) fn table(&self, hint: &str, report: &mut Report) -> Option<(Span, &'a DeTable<'i>)> {
        match self.value.get_ref() {
            DeValue::Table(table) => Some((self.span(), table)),
            _ => {
                self.wrong_type("a table", report).hint(hint);
                None
            }
        }
    }

    /// An integer or float as written, for hints.
    fn source_number(&self) -> String {
        match self.value.get_ref() {
            DeValue::Integer(i) => i.to_string(),
            DeValue::Float(f) => f.to_string(),
            _ => String::new(),
        }
    }

    /// A command in exec form: an array of strings, with a hint for a shell line.
    pub(crate) fn command(&self, report: &mut Report) -> Option<Field<Vec<String>>> {
        if let DeValue::String(line) = self.value.get_ref() {
            let name = self.name;
            let words: Vec<&str> = line.split_whitespace().collect();
            // `args` are arguments, not a program that a shell line could replace.
            let hint = if words.len() > 1 && !matches!(name, "entrypoint" | "args") {
                format!(
                    "{name} takes the program and its arguments, not a shell line: {name} = [\"/bin/sh\", \"-c\", {line:?}]"
                )
            } else {
                format!("write it as an array: {name} = {words:?}")
            };
            self.wrong_type("an array of strings", report).hint(hint);
            return None;
        }
        self.strings("an array of strings", report)
    }

    /// An array of integers; `expected` describes the array, `item` one element.
    pub(crate) fn integers(
        &self,
        expected: &str,
        item: &str,
        report: &mut Report,
    ) -> Option<Field<Vec<Spanned<i64>>>> {
        let items = self.array(expected, report)?;
        let mut integers = Vec::with_capacity(items.len());
        for value in items {
            match value.get_ref() {
                DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(n) => integers.push(Spanned::new(value.span(), n)),
                    Err(_) => {
                        report.error(
                            &value.span(),
                            format!("integer `{i}` in `{}` is out of range", self.label),
                        );
                        return None;
                    }
                },
                other => {
                    report.error(
                        &value.span(),
                        format!(
                            "wrong type for an item of `{}`: expected {item}, found {}",
                            self.label,
                            type_name(other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(self.field(integers))
    }

    /// A table whose values are all strings (`env`, `labels`).
    pub(crate) fn string_table(&self, report: &mut Report) -> Option<Vec<Entry>> {
        let DeValue::Table(table) = self.value.get_ref() else {
            self.wrong_type("a table of strings", report).hint(format!(
                "for example: {} = {{ NAME = \"value\" }}",
                self.name
            ));
            return None;
        };
        let mut entries = Vec::with_capacity(table.len());
        let mut ok = true;
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            match value.get_ref() {
                DeValue::String(s) => entries.push(Entry {
                    name,
                    key: key.span(),
                    value: s.to_string(),
                    span: value.span(),
                }),
                other => {
                    let diagnostic = report.error(
                        &value.span(),
                        format!(
                            "wrong type for `{}.{}`: expected a string, found {}",
                            self.label,
                            super::toml_key(&name),
                            type_name(other)
                        ),
                    );
                    if matches!(
                        other,
                        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)
                    ) {
                        diagnostic.hint("quote the value to make it a string");
                    }
                    ok = false;
                }
            }
        }
        ok.then_some(entries)
    }

    /// An array of tables (`[[...]]`): each table with the span of its header.
    pub(crate) fn tables(
        &self,
        expected: &str,
        hint: &str,
        report: &mut Report,
    ) -> Option<Vec<(Span, &'a DeTable<'i>)>> {
        let DeValue::Array(items) = self.value.get_ref() else {
            self.wrong_type(expected, report).hint(hint);
            return None;
        };
        let mut tables = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                DeValue::Table(table) => tables.push((item.span(), table)),
                other => {
                    report
                        .error(
                            &item.span(),
                            format!(
                                "wrong type for an item of `{}`: expected a table, found {}",
                                self.label,
                                type_name(other)
                            ),
                        )
                        .hint(hint);
                    return None;
                }
            }
        }
        Some(tables)
    }

    fn array(&self, expected: &str, report: &mut Report) -> Option<&'a [Spanned<DeValue<'i>>]> {
        match self.value.get_ref() {
            DeValue::Array(items) => Some(items),
            _ => {
                self.wrong_type(expected, report);
                None
            }
        }
    }
}

/// "a string", "an integer", ... for messages.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
