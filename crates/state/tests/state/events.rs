//! The event log: filters, sequence numbers, pruning.

use kiln_state::{EventFilter, NewEvent, State};

use super::support::temp_state;

/// Records seven events: ts 100..=700, services web/db alternating, instance on odd ones.
fn seed(state: &mut State) {
    for i in 1..=7i64 {
        let service = if i % 2 == 1 { "web" } else { "db" };
        let instance = (i % 2 == 1).then_some("i1");
        let seq = state
            .record_event(&NewEvent {
                ts_ms: i * 100,
                service: Some(service),
                instance,
                kind: "test",
                message: &format!("event {i}"),
            })
            .unwrap();
        assert_eq!(seq, i);
    }
}

fn seqs(state: &State, filter: EventFilter<'_>) -> Vec<i64> {
    state
        .events(&filter)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

#[test]
fn filters_by_seq_service_instance_since_and_limit() {
    let (_dir, mut state) = temp_state();
    seed(&mut state);
    assert_eq!(seqs(&state, EventFilter::default()), [1, 2, 3, 4, 5, 6, 7]);
    let after = EventFilter {
        after_seq: 4,
        ..Default::default()
    };
    assert_eq!(seqs(&state, after), [5, 6, 7]);
    let db = EventFilter {
        service: Some("db"),
        ..Default::default()
    };
    assert_eq!(seqs(&state, db), [2, 4, 6]);
    let inst = EventFilter {
        instance: Some("i1"),
        after_seq: 1,
        ..Default::default()
    };
    assert_eq!(seqs(&state, inst), [3, 5, 7]);
    let since = EventFilter {
        since_ms: Some(500),
        ..Default::default()
    };
    assert_eq!(seqs(&state, since), [5, 6, 7]);
    let limited = EventFilter {
        service: Some("web"),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(seqs(&state, limited), [1, 3]);
    let none = EventFilter {
        limit: Some(0),
        ..Default::default()
    };
    assert!(seqs(&state, none).is_empty());

    let e = &state.events(&EventFilter::default()).unwrap()[1];
    assert_eq!(
        (e.ts_ms, e.service.as_deref(), e.instance.as_deref()),
        (200, Some("db"), None)
    );
    assert_eq!((e.kind.as_str(), e.message.as_str()), ("test", "event 2"));
}

#[test]
fn prune_keeps_newest_and_seqs_never_repeat() {
    let (_dir, mut state) = temp_state();
    assert_eq!(state.last_event_seq().unwrap(), 0);
    seed(&mut state);
    assert_eq!(state.prune_events(10).unwrap(), 0);
    assert_eq!(state.prune_events(3).unwrap(), 4);
    assert_eq!(seqs(&state, EventFilter::default()), [5, 6, 7]);
    assert_eq!(state.prune_events(0).unwrap(), 3);
    assert!(seqs(&state, EventFilter::default()).is_empty());
    assert_eq!(state.last_event_seq().unwrap(), 7);
    let next = state
        .record_event(&super::support::event(1, None, "after"))
        .unwrap();
    assert_eq!(next, 8);
}
