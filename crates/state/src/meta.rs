//! The small key/value table: the daemon's own keys and the desired-state generation.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{State, StateError};

/// The key under which [`State::put_desired`] keeps the global generation counter.
/// Reserved: [`State::set_meta`] refuses it.
pub(crate) const GENERATION_KEY: &str = "desired_generation";

impl State {
    /// The value stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(get(&self.conn, key)?)
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        if key == GENERATION_KEY {
            return Err(StateError::Conflict(format!(
                "meta key `{key}` is reserved for the desired-state generation"
            )));
        }
        let tx = self.write()?;
        set(&tx, key, value)?;
        tx.commit()?;
        Ok(())
    }

    /// The generation of the last [`State::put_desired`]; 0 for a new database.
    pub fn generation(&self) -> Result<u64, StateError> {
        generation(&self.conn)
    }
}

pub(crate) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()
}

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

pub(crate) fn generation(conn: &Connection) -> Result<u64, StateError> {
    match get(conn, GENERATION_KEY)? {
        None => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            StateError::Conflict(format!(
                "meta key `{GENERATION_KEY}` holds `{text}`, not a generation number"
            ))
        }),
    }
}
