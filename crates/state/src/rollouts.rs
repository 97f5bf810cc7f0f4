//! Rollouts in progress: one persisted state machine per service (JSON opaque to this
//! crate), written before the daemon acts on a transition.

use rusqlite::params;

use crate::desired::DesiredService;
use crate::events::{self, NewEvent};
use crate::{State, StateError};

impl State {
    /// Every rollout as (service, JSON state), ordered by service.
    pub fn rollouts(&self) -> Result<Vec<(String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT service, state FROM rollouts ORDER BY service")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Inserts or replaces `service`'s rollout state, with its events, in one transaction.
    pub fn put_rollout(
        &mut self,
        service: &str,
        state: &str,
        updated_ms: i64,
        events: &[NewEvent<'_>],
    ) -> Result<(), StateError> {
        let tx = self.write()?;
        upsert(&tx, service, state, updated_ms)?;
        for event in events {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ends `service`'s rollout: stores its final `state` (kept for `kiln rollout
    /// status`) and, when given, sets the service's desired definition (an aborted
    /// rollout returns the service to its stable definition), with its events, in one
    /// transaction.
    pub fn end_rollout(
        &mut self,
        service: &str,
        state: &str,
        updated_ms: i64,
        desired: Option<&DesiredService>,
        events: &[NewEvent<'_>],
    ) -> Result<(), StateError> {
        let tx = self.write()?;
        upsert(&tx, service, state, updated_ms)?;
        if let Some(d) = desired {
            tx.prepare_cached(
                "UPDATE desired SET def_hash = ?2, definition = ?3, image_digest = ?4,
                        version = ?5, updated_ms = ?6
                 WHERE name = ?1",
            )?
            .execute(params![
                d.name,
                d.def_hash,
                d.definition,
                d.image_digest,
                d.version,
                d.updated_ms
            ])?;
        }
        for event in events {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(crate) fn upsert(
    conn: &rusqlite::Connection,
    service: &str,
    state: &str,
    updated_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO rollouts (service, state, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (service) DO UPDATE SET state = ?2, updated_ms = ?3",
    )?
    .execute(params![service, state, updated_ms])?;
    Ok(())
}
