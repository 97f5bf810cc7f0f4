//! Instances: the containers the daemon has started, one row each.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, named_params, params};
use serde::{Deserialize, Serialize};

use crate::error::is_unique_violation;
use crate::events::{self, NewEvent};
use crate::{InvalidInstanceState, State, StateError};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Creating,
    Running,
    Stopping,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Creating => "creating",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
        }
    }
}

impl FromStr for InstanceState {
    type Err = InvalidInstanceState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "creating" => Ok(InstanceState::Creating),
            "running" => Ok(InstanceState::Running),
            "stopping" => Ok(InstanceState::Stopping),
            other => Err(InvalidInstanceState(other.to_owned())),
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for InstanceState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for InstanceState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// One instance as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub id: String,
    pub service: String,
    pub def_hash: String,
    pub image_digest: String,
    pub version: String,
    pub state: InstanceState,
    /// Unique among rows: two instances never share a port.
    pub port: u16,
    /// `"HOST:PORT"`.
    pub address: String,
    pub pid: Option<u32>,
    /// Process start time (field 22 of `/proc/PID/stat`), to detect pid reuse.
    pub pid_start: Option<u64>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ready: bool,
    /// The id of the instance this one replaces, if any.
    pub replaces: Option<String>,
    pub stop_reason: Option<String>,
}

const COLUMNS: &str = "id, service, def_hash, image_digest, version, state, port, address, \
                       pid, pid_start, created_ms, started_ms, ready, replaces, stop_reason";

impl State {
    /// Inserts `row` and appends `event`, together. `Conflict` if the id or the port is
    /// taken, and then nothing is written.
    pub fn insert_instance(
        &mut self,
        row: &InstanceRow,
        event: Option<&NewEvent<'_>>,
    ) -> Result<(), StateError> {
        let tx = self.write()?;
        check_free(&tx, row)?;
        let sql = format!(
            "INSERT INTO instances ({COLUMNS}) VALUES (:id, :service, :def_hash, :image_digest,
             :version, :state, :port, :address, :pid, :pid_start, :created_ms, :started_ms,
             :ready, :replaces, :stop_reason)"
        );
        write_row(&tx, &sql, row)?;
        if let Some(event) = event {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces every column of the row with `row.id` and appends `event`, together.
    /// `NotFound` if there is no such row, `Conflict` if the new port is taken.
    pub fn update_instance(
        &mut self,
        row: &InstanceRow,
        event: Option<&NewEvent<'_>>,
    ) -> Result<(), StateError> {
        let tx = self.write()?;
        let sql = "UPDATE instances SET service = :service, def_hash = :def_hash,
                   image_digest = :image_digest, version = :version, state = :state,
                   port = :port, address = :address, pid = :pid, pid_start = :pid_start,
                   created_ms = :created_ms, started_ms = :started_ms, ready = :ready,
                   replaces = :replaces, stop_reason = :stop_reason
                   WHERE id = :id";
        if !exists(&tx, &row.id)? {
            return Err(StateError::NotFound(format!("instance `{}`", row.id)));
        }
        check_port(&tx, row)?;
        write_row(&tx, sql, row)?;
        if let Some(event) = event {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes the instance `id` and appends `event`, together. Returns false, and
    /// records nothing, if it was already gone, so a retried delete is harmless.
    pub fn delete_instance(
        &mut self,
        id: &str,
        event: Option<&NewEvent<'_>>,
    ) -> Result<bool, StateError> {
        let tx = self.write()?;
        let deleted = tx
            .prepare_cached("DELETE FROM instances WHERE id = ?1")?
            .execute([id])?;
        if deleted == 0 {
            return Ok(false);
        }
        if let Some(event) = event {
            events::append(&tx, event)?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub fn instance(&self, id: &str) -> Result<Option<InstanceRow>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], row_from_sql)
            .optional()?)
    }

    /// Every instance, ordered by service, then creation time, then id.
    pub fn instances(&self) -> Result<Vec<InstanceRow>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM instances ORDER BY service, created_ms, id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], row_from_sql)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// `Conflict` naming the holder if `row`'s id or port is already taken.
fn check_free(conn: &Connection, row: &InstanceRow) -> Result<(), StateError> {
    if exists(conn, &row.id)? {
        return Err(StateError::Conflict(format!(
            "instance `{}` already exists",
            row.id
        )));
    }
    check_port(conn, row)
}

/// `Conflict` naming the holder if another instance has `row.port`.
fn check_port(conn: &Connection, row: &InstanceRow) -> Result<(), StateError> {
    let holder: Option<String> = conn
        .prepare_cached("SELECT id FROM instances WHERE port = ?1 AND id <> ?2")?
        .query_row(params![row.port, row.id], |r| r.get(0))
        .optional()?;
    match holder {
        Some(holder) => Err(StateError::Conflict(format!(
            "port {} is already used by instance `{holder}`",
            row.port
        ))),
        None => Ok(()),
    }
}

fn exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM instances WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Runs `sql` with `row`'s columns bound by name. The callers check id and port first;
/// a uniqueness violation that still gets here is reported as a `Conflict` all the same.
fn write_row(conn: &Connection, sql: &str, row: &InstanceRow) -> Result<usize, StateError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let result = stmt.execute(named_params! {
        ":id": row.id,
        ":service": row.service,
        ":def_hash": row.def_hash,
        ":image_digest": row.image_digest,
        ":version": row.version,
        ":state": row.state,
        ":port": row.port,
        ":address": row.address,
        ":pid": row.pid,
        ":pid_start": row.pid_start,
        ":created_ms": row.created_ms,
        ":started_ms": row.started_ms,
        ":ready": row.ready,
        ":replaces": row.replaces,
        ":stop_reason": row.stop_reason,
    });
    result.map_err(|e| {
        if is_unique_violation(&e) {
            StateError::Conflict(format!("instance `{}`: {e}", row.id))
        } else {
            StateError::Sql(e)
        }
    })
}

fn row_from_sql(r: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: r.get(0)?,
        service: r.get(1)?,
        def_hash: r.get(2)?,
        image_digest: r.get(3)?,
        version: r.get(4)?,
        state: r.get(5)?,
        port: r.get(6)?,
        address: r.get(7)?,
        pid: r.get(8)?,
        pid_start: r.get(9)?,
        created_ms: r.get(10)?,
        started_ms: r.get(11)?,
        ready: r.get(12)?,
        replaces: r.get(13)?,
        stop_reason: r.get(14)?,
    })
}
