//! Public error type: every problem in a spec is a [`Diagnostic`] naming file, line and column.

use std::fmt;
use std::path::PathBuf;

/// A 1-based position in the spec file; the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem found in a spec, with optional hints on how to fix it.
///
/// Displays as `FILE:LINE:COL: MESSAGE` followed by one `  hint: ...` line per
/// hint; `FILE` is the path exactly as the caller passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// `None` for problems that are about the spec as a whole, not one place in it.
    pub location: Option<Location>,
    pub message: String,
    pub hints: Vec<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(Location { line, column }) = self.location {
            write!(f, "{line}:{column}:")?;
        }
        write!(f, " {}", self.message)?;
        for hint in &self.hints {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Why a spec could not be loaded.
///
/// Like every error, the message has no leading `error: `: the caller adds it.
/// When a spec has several problems they are all listed, in file order, and
/// each one after the first starts on a new line with `error: `, so that
/// `eprintln!("error: {err}")` reads uniformly.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", Joined(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

impl SpecError {
    /// The problems found in the spec (empty for [`SpecError::Io`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            SpecError::Io { .. } => &[],
            SpecError::Invalid { diagnostics } => diagnostics,
        }
    }
}

struct Joined<'a>(&'a [Diagnostic]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\nerror: ")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}
