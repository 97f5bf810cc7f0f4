//! The append-only event log.

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use crate::{State, StateError};

/// One recorded event. `seq` grows strictly and is never reused, even after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub ts_ms: i64,
    pub service: Option<String>,
    pub instance: Option<String>,
    pub kind: String,
    pub message: String,
}

/// An event to append; the database assigns its `seq`.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub ts_ms: i64,
    pub service: Option<&'a str>,
    pub instance: Option<&'a str>,
    pub kind: &'a str,
    pub message: &'a str,
}

/// Which events [`State::events`] returns: those with `seq > after_seq` that match every
/// filter given, ascending by `seq`, at most `limit` of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    pub after_seq: i64,
    pub service: Option<&'a str>,
    pub instance: Option<&'a str>,
    /// Only events with `ts_ms >= since_ms`.
    pub since_ms: Option<i64>,
    pub limit: Option<usize>,
}

impl State {
    /// Appends `event` in its own transaction and returns its `seq`.
    pub fn record_event(&mut self, event: &NewEvent<'_>) -> Result<i64, StateError> {
        let tx = self.write()?;
        let seq = append(&tx, event)?;
        tx.commit()?;
        Ok(seq)
    }

    pub fn events(&self, filter: &EventFilter<'_>) -> Result<Vec<Event>, StateError> {
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, ts_ms, service, instance, kind, message FROM events
             WHERE seq > ?1
               AND (?2 IS NULL OR service = ?2)
               AND (?3 IS NULL OR instance = ?3)
               AND (?4 IS NULL OR ts_ms >= ?4)
             ORDER BY seq LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                filter.after_seq,
                filter.service,
                filter.instance,
                filter.since_ms,
                limit
            ],
            event_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The highest `seq` ever assigned (0 if none), even if pruning removed that event:
    /// a reader that saw it can resume with `after_seq` set to it.
    pub fn last_event_seq(&self) -> Result<i64, StateError> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'events'")?
            .query_row([], |row| row.get(0))?;
        Ok(seq.unwrap_or(0))
    }

    /// Deletes the oldest events beyond the newest `keep`; returns how many went.
    pub fn prune_events(&mut self, keep: usize) -> Result<usize, StateError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let tx = self.write()?;
        let deleted = tx
            .prepare_cached(
                "DELETE FROM events WHERE seq <=
                 (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
            )?
            .execute([keep])?;
        tx.commit()?;
        Ok(deleted)
    }
}

/// Appends `event` inside the caller's transaction.
pub(crate) fn append(conn: &Connection, event: &NewEvent<'_>) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO events (ts_ms, service, instance, kind, message)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.ts_ms,
        event.service,
        event.instance,
        event.kind,
        event.message
    ])?;
    Ok(conn.last_insert_rowid())
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: row.get(0)?,
        ts_ms: row.get(1)?,
        service: row.get(2)?,
        instance: row.get(3)?,
        kind: row.get(4)?,
        message: row.get(5)?,
    })
}
