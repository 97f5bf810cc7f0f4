//! The schema and its migrations, driven by `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Append, never edit:
/// a database at version `n` has run exactly the first `n` entries.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes.
pub(crate) const VERSION: u32 = MIGRATIONS.len() as u32;

const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE definitions (
    def_hash   TEXT PRIMARY KEY,
    definition TEXT NOT NULL
) STRICT;

CREATE TABLE desired (
    name         TEXT PRIMARY KEY,
    generation   INTEGER NOT NULL CHECK (generation >= 0),
    def_hash     TEXT NOT NULL,
    definition   TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    version      TEXT NOT NULL,
    replicas     INTEGER NOT NULL CHECK (replicas >= 0),
    updated_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    service      TEXT NOT NULL,
    def_hash     TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    version      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('creating', 'running', 'stopping')),
    port         INTEGER NOT NULL UNIQUE CHECK (port BETWEEN 0 AND 65535),
    address      TEXT NOT NULL,
    pid          INTEGER CHECK (pid >= 0),
    pid_start    INTEGER CHECK (pid_start >= 0),
    created_ms   INTEGER NOT NULL,
    started_ms   INTEGER,
    ready        INTEGER NOT NULL CHECK (ready IN (0, 1)),
    replaces     TEXT,
    stop_reason  TEXT
) STRICT;
CREATE INDEX instances_by_service ON instances (service, created_ms, id);

CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms    INTEGER NOT NULL,
    service  TEXT,
    instance TEXT,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_service ON events (service, seq);
CREATE INDEX events_by_instance ON events (instance, seq);
";

/// Routes (the proxy's desired tables) and rollouts in progress, each as JSON opaque to
/// this crate.
const V2: &str = "
CREATE TABLE routes (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL
) STRICT;

CREATE TABLE rollouts (
    service    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
";

/// Brings the schema up to [`VERSION`], one transaction per step. A database from a
/// newer kiln is refused rather than misread.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let found = user_version(conn).map_err(|e| e.to_string())?;
    if found > VERSION {
        return Err(format!(
            "schema version {found} is newer than this kiln understands ({VERSION}); \
             upgrade kiln or restore an older database"
        ));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = step as u32 + 1;
        apply(conn, to, sql)
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, to: u32, sql: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between our first read and taking the lock.
    if user_version(&tx)? >= to {
        return Ok(());
    }
    tx.execute_batch(sql)?;
    tx.pragma_update(None, "user_version", to)?;
    tx.commit()
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}
