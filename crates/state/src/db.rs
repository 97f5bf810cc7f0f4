//! Opening the database: file mode, pragmas, migrations.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::StateError;
use crate::schema;

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The control plane's database. `Send` but not `Sync`: share it behind a `Mutex`.
#[derive(Debug)]
pub struct State {
    pub(crate) conn: Connection,
}

/// The connection settings that durability depends on, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragmas {
    /// `"wal"`.
    pub journal_mode: String,
    /// `"full"`: every commit is fsynced before it returns.
    pub synchronous: String,
    pub foreign_keys: bool,
    pub busy_timeout_ms: u32,
    pub user_version: u32,
}

impl State {
    /// Opens the database at `path`, creating it (mode 0600) if absent, and brings its
    /// schema up to date. The directory must already exist.
    pub fn open(path: &Path) -> Result<State, StateError> {
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let fail = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open_with_flags(path, flags).map_err(fail)?;
        configure(&conn).map_err(fail)?;
        schema::migrate(&mut conn).map_err(|msg| StateError::open(path, msg))?;
        Ok(State { conn })
    }

    /// The durability settings in force on this connection.
    pub fn pragmas(&self) -> Result<Pragmas, StateError> {
        let get_i64 = |name: &str| -> rusqlite::Result<i64> {
            self.conn.pragma_query_value(None, name, |row| row.get(0))
        };
        let synchronous = match get_i64("synchronous")? {
            0 => "off",
            1 => "normal",
            2 => "full",
            3 => "extra",
            _ => "unknown",
        };
        Ok(Pragmas {
            journal_mode: self
                .conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))?,
            synchronous: synchronous.to_owned(),
            foreign_keys: get_i64("foreign_keys")? == 1,
            busy_timeout_ms: self
                .conn
                .pragma_query_value(None, "busy_timeout", |row| row.get(0))?,
            user_version: self
                .conn
                .pragma_query_value(None, "user_version", |row| row.get(0))?,
        })
    }

    /// Starts a write transaction. IMMEDIATE takes the write lock up front, so a
    /// concurrent writer waits in the busy handler instead of failing mid-transaction.
    pub(crate) fn write(&mut self) -> rusqlite::Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }
}

/// Creates `path` with mode 0600 if it does not exist, so that SQLite (which gives its
/// WAL and shared-memory files the database's mode) never creates a readable file.
fn create_private(path: &Path) -> Result<(), StateError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(StateError::open(
            path,
            format!("directory {} does not exist", dir.display()),
        ));
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StateError::open(
            path,
            format!("cannot create the file: {e}"),
        )),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN);
        return Err(rusqlite::Error::SqliteFailure(
            code,
            Some(format!("journal_mode is `{mode}`, WAL is required")),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}
