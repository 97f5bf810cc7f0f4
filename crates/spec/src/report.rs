//! Collects diagnostics while a spec is read and validated, then sorts them into file order.

use std::ops::Range;
use std::path::Path;

use crate::error::{Diagnostic, Location, SpecError};

/// A byte range in the spec source.
pub(crate) type Span = Range<usize>;

pub(crate) struct Report<'a> {
    source: &'a str,
    file: &'a Path,
    found: Vec<(usize, Diagnostic)>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(source: &'a str, file: &'a Path) -> Self {
        Report {
            source,
            file,
            found: Vec::new(),
        }
    }

    /// Records a problem at `span`; add hints to the returned diagnostic.
    pub(crate) fn error(&mut self, span: &Span, message: impl Into<String>) -> &mut Diagnostic {
        let diagnostic = Diagnostic {
            file: self.file.to_path_buf(),
            location: Some(self.locate(span.start)),
            message: message.into(),
            hints: Vec::new(),
        };
        self.found.push((span.start, diagnostic));
        let last = self.found.len() - 1;
        &mut self.found[last].1
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.locate(offset).line
    }

    /// All problems in file order (stable for problems at the same place), or `Ok` if none.
    pub(crate) fn finish(mut self) -> Result<(), SpecError> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|(offset, _)| *offset);
        let diagnostics = self.found.into_iter().map(|(_, d)| d).collect();
        Err(SpecError::Invalid { diagnostics })
    }

    fn locate(&self, offset: usize) -> Location {
        locate(self.source, offset)
    }
}

impl Diagnostic {
    pub(crate) fn hint(&mut self, hint: impl Into<String>) -> &mut Self {
        self.hints.push(hint.into());
        self
    }
}

/// Converts a byte offset into a 1-based line and character column.
pub(crate) fn locate(source: &str, offset: usize) -> Location {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let source = "a = 1\nbé = \"x\"\n";
        assert_eq!(locate(source, 0), Location { line: 1, column: 1 });
        assert_eq!(locate(source, 6), Location { line: 2, column: 1 });
        // "bé " is 4 bytes but 3 characters.
        assert_eq!(locate(source, 10), Location { line: 2, column: 4 });
        assert_eq!(locate(source, 999), Location { line: 3, column: 1 });
    }
}
