//! Desired state: the services the operator asked for, and the definitions they use.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::events::{self, NewEvent};
use crate::meta::{self, GENERATION_KEY};
use crate::{State, StateError};

/// One service as the operator wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredService {
    pub name: String,
    /// Assigned by [`State::put_desired`]; callers pass 0.
    pub generation: u64,
    /// Hash of the instance definition (everything but `replicas`).
    pub def_hash: String,
    /// JSON text of the definition, opaque to this crate.
    pub definition: String,
    /// `"sha256:…"`.
    pub image_digest: String,
    /// Human version: a tag or a short digest.
    pub version: String,
    pub replicas: u32,
    pub updated_ms: i64,
}

impl State {
    /// In one transaction: bumps the global generation once, upserts every service in
    /// `services` with it (also storing its definition, see [`State::put_definition`]),
    /// deletes the services named in `remove` (absent names are ignored) and appends
    /// `events`. Returns the new generation.
    ///
    /// A name given twice, in `services` or in both lists, is a `Conflict`.
    pub fn put_desired(
        &mut self,
        services: &[DesiredService],
        remove: &[String],
        events: &[NewEvent<'_>],
    ) -> Result<u64, StateError> {
        self.put_desired_with_routes(services, remove, None, &[], events)
    }

    /// [`State::put_desired`], also replacing every route with `routes` (name and JSON
    /// definition) when given, and setting the rollouts in `rollouts` (service and JSON
    /// state), in the same transaction: a spec's services, routes and the rollouts they
    /// start change together or not at all.
    pub fn put_desired_with_routes(
        &mut self,
        services: &[DesiredService],
        remove: &[String],
        routes: Option<&[(String, String)]>,
        rollouts: &[(String, String)],
        events: &[NewEvent<'_>],
    ) -> Result<u64, StateError> {
        check_distinct(services, remove)?;
        let tx = self.write()?;
        if let Some(routes) = routes {
            crate::routes::replace(&tx, routes)?;
        }
        for (service, state) in rollouts {
            crate::rollouts::upsert(&tx, service, state, events.first().map_or(0, |e| e.ts_ms))?;
        }
        let generation = meta::generation(&tx)? + 1;
        meta::set(&tx, GENERATION_KEY, &generation.to_string())?;
        for service in services {
            upsert(&tx, service, generation)?;
            insert_definition(&tx, &service.def_hash, &service.definition)?;
        }
        for name in remove {
            tx.prepare_cached("DELETE FROM desired WHERE name = ?1")?
                .execute([name])?;
        }
        for event in events {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(generation)
    }

    /// Every desired service, ordered by name.
    pub fn desired(&self) -> Result<Vec<DesiredService>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, generation, def_hash, definition, image_digest, version,
                    replicas, updated_ms
             FROM desired ORDER BY name",
        )?;
        let rows = stmt.query_map([], service_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores `definition` under `def_hash` unless that hash is already stored.
    /// Definitions are never replaced, so instances keep pointing at the one they ran.
    pub fn put_definition(&mut self, def_hash: &str, definition: &str) -> Result<(), StateError> {
        let tx = self.write()?;
        insert_definition(&tx, def_hash, definition)?;
        tx.commit()?;
        Ok(())
    }

    pub fn definition(&self, def_hash: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .conn
            .prepare_cached("SELECT definition FROM definitions WHERE def_hash = ?1")?
            .query_row([def_hash], |row| row.get(0))
            .optional()?)
    }
}

fn check_distinct(services: &[DesiredService], remove: &[String]) -> Result<(), StateError> {
    let mut seen = HashSet::new();
    let names = services.iter().map(|s| s.name.as_str());
    for name in names.chain(remove.iter().map(String::as_str)) {
        if !seen.insert(name) {
            return Err(StateError::Conflict(format!(
                "service `{name}` is named more than once in one desired-state change"
            )));
        }
    }
    Ok(())
}

fn upsert(conn: &Connection, s: &DesiredService, generation: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO desired (name, generation, def_hash, definition, image_digest, version,
                              replicas, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (name) DO UPDATE SET
             generation = excluded.generation, def_hash = excluded.def_hash,
             definition = excluded.definition, image_digest = excluded.image_digest,
             version = excluded.version, replicas = excluded.replicas,
             updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        s.name,
        generation,
        s.def_hash,
        s.definition,
        s.image_digest,
        s.version,
        s.replicas,
        s.updated_ms
    ])?;
    Ok(())
}

fn insert_definition(conn: &Connection, def_hash: &str, definition: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO definitions (def_hash, definition) VALUES (?1, ?2)",
    )?
    .execute([def_hash, definition])?;
    Ok(())
}

fn service_from_row(row: &Row<'_>) -> rusqlite::Result<DesiredService> {
    Ok(DesiredService {
        name: row.get(0)?,
        generation: row.get(1)?,
        def_hash: row.get(2)?,
        definition: row.get(3)?,
        image_digest: row.get(4)?,
        version: row.get(5)?,
        replicas: row.get(6)?,
        updated_ms: row.get(7)?,
    })
}
