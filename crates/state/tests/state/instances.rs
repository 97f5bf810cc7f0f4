//! Instance rows: conflicts, atomicity with their events, idempotent deletes.

use kiln_state::{EventFilter, InstanceState, NewEvent, StateError};

use super::support::{instance, temp_state};

fn started<'a>(id: &'a str) -> NewEvent<'a> {
    NewEvent {
        ts_ms: 5,
        service: Some("web"),
        instance: Some(id),
        kind: "instance",
        message: "started",
    }
}

#[test]
fn insert_then_read_back_every_column() {
    let (_dir, mut state) = temp_state();
    let mut row = instance("i1", "web", 9001);
    row.state = InstanceState::Running;
    row.pid = Some(u32::MAX);
    row.pid_start = Some(i64::MAX as u64);
    row.started_ms = Some(-3);
    row.ready = true;
    row.replaces = Some("i0".to_owned());
    row.stop_reason = Some("drain".to_owned());
    row.port = u16::MAX;
    state.insert_instance(&row, Some(&started("i1"))).unwrap();
    assert_eq!(state.instance("i1").unwrap(), Some(row));
    assert_eq!(state.instance("nope").unwrap(), None);
    assert_eq!(state.last_event_seq().unwrap(), 1);
}

#[test]
fn duplicate_port_conflicts_and_writes_nothing() {
    let (_dir, mut state) = temp_state();
    state
        .insert_instance(&instance("i1", "web", 9001), None)
        .unwrap();
    let err = state
        .insert_instance(&instance("i2", "web", 9001), Some(&started("i2")))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::Conflict(m) if m.contains("i1")),
        "{err}"
    );
    assert_eq!(state.instance("i2").unwrap(), None);
    assert!(state.events(&EventFilter::default()).unwrap().is_empty());
}

#[test]
fn duplicate_id_conflicts_and_writes_nothing() {
    let (_dir, mut state) = temp_state();
    state
        .insert_instance(&instance("i1", "web", 9001), None)
        .unwrap();
    let err = state
        .insert_instance(&instance("i1", "web", 9002), Some(&started("i1")))
        .unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert_eq!(state.instance("i1").unwrap().unwrap().port, 9001);
    assert!(state.events(&EventFilter::default()).unwrap().is_empty());
}

#[test]
fn update_replaces_columns_and_records_event() {
    let (_dir, mut state) = temp_state();
    let mut row = instance("i1", "web", 9001);
    state.insert_instance(&row, None).unwrap();
    row.state = InstanceState::Stopping;
    row.pid = Some(42);
    row.stop_reason = Some("replaced".to_owned());
    state.update_instance(&row, Some(&started("i1"))).unwrap();
    state.update_instance(&row, None).unwrap();
    assert_eq!(state.instance("i1").unwrap(), Some(row));
    assert_eq!(state.events(&EventFilter::default()).unwrap().len(), 1);
}

#[test]
fn update_of_missing_instance_is_not_found_and_records_nothing() {
    let (_dir, mut state) = temp_state();
    let err = state
        .update_instance(&instance("ghost", "web", 9001), Some(&started("ghost")))
        .unwrap_err();
    assert!(matches!(err, StateError::NotFound(_)), "{err}");
    assert!(state.instances().unwrap().is_empty());
    assert!(state.events(&EventFilter::default()).unwrap().is_empty());
}

#[test]
fn update_onto_a_taken_port_conflicts() {
    let (_dir, mut state) = temp_state();
    state
        .insert_instance(&instance("i1", "web", 9001), None)
        .unwrap();
    let mut row = instance("i2", "web", 9002);
    state.insert_instance(&row, None).unwrap();
    row.port = 9001;
    let err = state.update_instance(&row, None).unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert_eq!(state.instance("i2").unwrap().unwrap().port, 9002);
}

#[test]
fn delete_is_idempotent_and_records_only_real_deletes() {
    let (_dir, mut state) = temp_state();
    state
        .insert_instance(&instance("i1", "web", 9001), None)
        .unwrap();
    assert!(state.delete_instance("i1", Some(&started("i1"))).unwrap());
    assert!(!state.delete_instance("i1", Some(&started("i1"))).unwrap());
    assert_eq!(state.instance("i1").unwrap(), None);
    assert_eq!(state.events(&EventFilter::default()).unwrap().len(), 1);
    // The port is free again.
    state
        .insert_instance(&instance("i2", "web", 9001), None)
        .unwrap();
}

#[test]
fn instances_are_ordered_by_service_created_and_id() {
    let (_dir, mut state) = temp_state();
    let mut rows = vec![
        instance("b", "web", 1),
        instance("a", "web", 2),
        instance("c", "api", 3),
        instance("d", "web", 4),
    ];
    rows[3].created_ms = 1;
    for row in &rows {
        state.insert_instance(row, None).unwrap();
    }
    let ids: Vec<_> = state
        .instances()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["c", "d", "a", "b"]);
}

#[test]
fn instance_state_text_round_trips() {
    for s in [
        InstanceState::Creating,
        InstanceState::Running,
        InstanceState::Stopping,
    ] {
        assert_eq!(s.as_str().parse::<InstanceState>().unwrap(), s);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert!("Running".parse::<InstanceState>().is_err());
}
