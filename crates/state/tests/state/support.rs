//! Shared fixtures: temporary databases and sample rows.

use std::path::PathBuf;

use kiln_state::{DesiredService, InstanceRow, InstanceState, NewEvent, State};
use tempfile::TempDir;

/// A fresh directory (removed on drop) and the database path inside it.
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    (dir, path)
}

/// A fresh database, open.
pub fn temp_state() -> (TempDir, State) {
    let (dir, path) = temp_db();
    let state = State::open(&path).unwrap();
    (dir, state)
}

pub fn service(name: &str, replicas: u32) -> DesiredService {
    DesiredService {
        name: name.to_owned(),
        generation: 0,
        def_hash: format!("def-{name}"),
        definition: format!(r#"{{"name":"{name}"}}"#),
        image_digest: format!("sha256:{:064}", 7),
        version: "v1".to_owned(),
        replicas,
        updated_ms: 1_000,
    }
}

pub fn instance(id: &str, service: &str, port: u16) -> InstanceRow {
    InstanceRow {
        id: id.to_owned(),
        service: service.to_owned(),
        def_hash: format!("def-{service}"),
        image_digest: format!("sha256:{:064}", 7),
        version: "v1".to_owned(),
        state: InstanceState::Creating,
        port,
        address: format!("127.0.0.1:{port}"),
        pid: None,
        pid_start: None,
        created_ms: 2_000,
        started_ms: None,
        ready: false,
        replaces: None,
        stop_reason: None,
    }
}

pub fn event<'a>(ts_ms: i64, service: Option<&'a str>, kind: &'a str) -> NewEvent<'a> {
    NewEvent {
        ts_ms,
        service,
        instance: None,
        kind,
        message: "test",
    }
}
