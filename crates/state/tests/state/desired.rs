//! Desired state, the generation counter and content-addressed definitions.

use kiln_state::StateError;

use super::support::{event, service, temp_state};

#[test]
fn new_database_is_generation_zero_and_empty() {
    let (_dir, state) = temp_state();
    assert_eq!(state.generation().unwrap(), 0);
    assert!(state.desired().unwrap().is_empty());
}

#[test]
fn put_desired_bumps_generation_once_and_stamps_services() {
    let (_dir, mut state) = temp_state();
    let ev = [
        event(10, Some("web"), "desired"),
        event(10, Some("db"), "desired"),
    ];
    let g1 = state
        .put_desired(&[service("web", 2), service("db", 1)], &[], &ev)
        .unwrap();
    assert_eq!(g1, 1);
    let g2 = state.put_desired(&[service("web", 3)], &[], &[]).unwrap();
    assert_eq!(g2, 2);
    assert_eq!(state.generation().unwrap(), 2);

    let desired = state.desired().unwrap();
    let names: Vec<_> = desired
        .iter()
        .map(|s| (s.name.as_str(), s.generation))
        .collect();
    assert_eq!(
        names,
        [("db", 1), ("web", 2)],
        "ordered by name, own generation"
    );
    assert_eq!(desired[1].replicas, 3);
    assert_eq!(state.events(&Default::default()).unwrap().len(), 2);
}

#[test]
fn put_desired_removes_named_services_and_ignores_absent_ones() {
    let (_dir, mut state) = temp_state();
    state
        .put_desired(&[service("web", 1), service("db", 1)], &[], &[])
        .unwrap();
    let removed = ["db".to_owned(), "never-existed".to_owned()];
    let g = state.put_desired(&[], &removed, &[]).unwrap();
    assert_eq!(g, 2);
    let names: Vec<_> = state
        .desired()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["web"]);
}

#[test]
fn put_desired_naming_a_service_twice_writes_nothing() {
    let (_dir, mut state) = temp_state();
    let err = state
        .put_desired(
            &[service("web", 1)],
            &["web".to_owned()],
            &[event(1, None, "x")],
        )
        .unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert_eq!(state.generation().unwrap(), 0);
    assert!(state.events(&Default::default()).unwrap().is_empty());
}

#[test]
fn definitions_are_insert_or_ignore() {
    let (_dir, mut state) = temp_state();
    assert_eq!(state.definition("h1").unwrap(), None);
    state.put_definition("h1", "{\"a\":1}").unwrap();
    state.put_definition("h1", "{\"a\":2}").unwrap();
    assert_eq!(
        state.definition("h1").unwrap().as_deref(),
        Some("{\"a\":1}")
    );
}

#[test]
fn put_desired_stores_definitions_that_outlive_the_service() {
    let (_dir, mut state) = temp_state();
    let web = service("web", 1);
    state
        .put_desired(std::slice::from_ref(&web), &[], &[])
        .unwrap();
    state.put_desired(&[], &["web".to_owned()], &[]).unwrap();
    assert_eq!(
        state.definition(&web.def_hash).unwrap(),
        Some(web.definition)
    );
}

#[test]
fn generation_meta_key_is_reserved() {
    let (_dir, mut state) = temp_state();
    let err = state.set_meta("desired_generation", "7").unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert_eq!(state.generation().unwrap(), 0);
}
