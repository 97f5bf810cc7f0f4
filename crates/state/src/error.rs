//! Errors of the state database.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open state database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StateError {
    /// An [`StateError::Open`] for a failure that SQLite itself did not report.
    pub(crate) fn open(path: impl Into<PathBuf>, message: String) -> StateError {
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN);
        StateError::Open {
            path: path.into(),
            source: rusqlite::Error::SqliteFailure(code, Some(message)),
        }
    }
}

/// Text that is not one of `creating`, `running`, `stopping`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown instance state `{0}`: expected creating, running or stopping")]
pub struct InvalidInstanceState(pub String);

/// Whether `err` is a UNIQUE or PRIMARY KEY constraint violation.
pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error().map(|e| e.extended_code),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}
