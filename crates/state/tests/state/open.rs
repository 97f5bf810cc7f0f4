//! Opening: file mode, pragmas, reopening, schema versions.

use std::os::unix::fs::PermissionsExt;

use kiln_state::{State, StateError};

use super::support::{instance, service, temp_db};

#[test]
fn reopen_keeps_data() {
    let (_dir, path) = temp_db();
    {
        let mut state = State::open(&path).unwrap();
        state.put_desired(&[service("web", 2)], &[], &[]).unwrap();
        state
            .insert_instance(&instance("i1", "web", 9001), None)
            .unwrap();
        state.set_meta("last_boot_id", "boot-1").unwrap();
    }
    let state = State::open(&path).unwrap();
    assert_eq!(state.generation().unwrap(), 1);
    assert_eq!(state.desired().unwrap()[0].name, "web");
    assert_eq!(state.instance("i1").unwrap().unwrap().port, 9001);
    assert_eq!(
        state.meta("last_boot_id").unwrap().as_deref(),
        Some("boot-1")
    );
}

#[test]
fn pragmas_are_wal_full_with_foreign_keys() {
    let (_dir, path) = temp_db();
    for _ in 0..2 {
        let state = State::open(&path).unwrap();
        let p = state.pragmas().unwrap();
        assert_eq!(p.journal_mode, "wal");
        assert_eq!(p.synchronous, "full");
        assert!(p.foreign_keys);
        assert_eq!(p.busy_timeout_ms, 5_000);
        assert_eq!(p.user_version, 2);
    }
}

#[test]
fn new_database_file_is_private() {
    let (_dir, path) = temp_db();
    let mut state = State::open(&path).unwrap();
    state.set_meta("k", "v").unwrap();
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn missing_directory_is_an_error_naming_it() {
    let (dir, _) = temp_db();
    let path = dir.path().join("absent").join("state.db");
    let err = State::open(&path).unwrap_err();
    assert!(matches!(&err, StateError::Open { path: p, .. } if *p == path));
    let text = err.to_string();
    assert!(text.contains("absent"), "{text}");
    assert!(!dir.path().join("absent").exists());
}

#[test]
fn newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    drop(State::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = State::open(&path).unwrap_err().to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn two_connections_see_each_others_commits() {
    let (_dir, path) = temp_db();
    let mut a = State::open(&path).unwrap();
    let mut b = State::open(&path).unwrap();
    a.set_meta("from", "a").unwrap();
    assert_eq!(b.meta("from").unwrap().as_deref(), Some("a"));
    assert_eq!(b.put_desired(&[], &[], &[]).unwrap(), 1);
    assert_eq!(a.put_desired(&[], &[], &[]).unwrap(), 2);
}
