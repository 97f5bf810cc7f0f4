//! One test per rule of [`reconcile`].

use super::*;

fn desired(name: &str, def_hash: &str, replicas: u32) -> DesiredService {
    DesiredService {
        name: name.to_string(),
        def_hash: def_hash.to_string(),
        replicas,
    }
}

/// A running, ready instance.
fn up(id: &str, service: &str, def_hash: &str, created_ms: i64) -> ActualInstance {
    ActualInstance {
        id: id.to_string(),
        service: service.to_string(),
        def_hash: def_hash.to_string(),
        phase: Phase::Running,
        ready: true,
        failed: None,
        created_ms,
    }
}

fn creating(id: &str, service: &str, def_hash: &str, created_ms: i64) -> ActualInstance {
    ActualInstance {
        phase: Phase::Creating,
        ready: false,
        ..up(id, service, def_hash, created_ms)
    }
}

fn failed(mut instance: ActualInstance, reason: &str) -> ActualInstance {
    instance.failed = Some(reason.to_string());
    instance.ready = false;
    instance
}

fn create(service: &str, replaces: Option<&str>, reason: &str) -> Action {
    Action::Create {
        service: service.to_string(),
        replaces: replaces.map(str::to_string),
        reason: reason.to_string(),
    }
}

fn stop(id: &str, service: &str, reason: &str) -> Action {
    Action::Stop {
        id: id.to_string(),
        service: service.to_string(),
        reason: reason.to_string(),
    }
}

#[test]
fn nothing_desired_and_nothing_running_does_nothing() {
    assert!(reconcile(&[], &[]).is_empty());
}

#[test]
fn a_new_service_gets_its_replicas() {
    let actions = reconcile(&[desired("web", "h1", 2)], &[]);
    let want = create("web", None, "desired replicas");
    assert_eq!(actions, vec![want.clone(), want]);
}

#[test]
fn a_converged_service_needs_nothing() {
    let actual = [up("w1", "web", "h1", 1), up("w2", "web", "h1", 2)];
    assert!(reconcile(&[desired("web", "h1", 2)], &actual).is_empty());
}

#[test]
fn instances_still_creating_are_not_created_again() {
    let actual = [creating("w1", "web", "h1", 1)];
    assert!(reconcile(&[desired("web", "h1", 1)], &actual).is_empty());
}

#[test]
fn a_removed_service_is_stopped() {
    let actual = [
        up("d1", "db", "h1", 1),
        creating("d2", "db", "h1", 2),
        failed(up("d3", "db", "h1", 3), "exited with status 1"),
    ];
    assert_eq!(
        reconcile(&[], &actual),
        vec![
            stop("d1", "db", "service removed"),
            stop("d2", "db", "service removed"),
            stop("d3", "db", "service removed"),
        ]
    );
}

#[test]
fn stopping_instances_are_ignored() {
    let mut going = up("w1", "web", "h1", 1);
    going.phase = Phase::Stopping;
    assert_eq!(
        reconcile(&[desired("web", "h1", 1)], std::slice::from_ref(&going)),
        vec![create("web", None, "desired replicas")]
    );
    assert!(reconcile(&[], &[going]).is_empty());
}

#[test]
fn a_failed_instance_is_stopped_and_replaced() {
    let actual = [
        up("w1", "web", "h1", 1),
        failed(up("w2", "web", "h1", 2), "liveness failed 3 times"),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            stop("w2", "web", "liveness failed 3 times"),
            create("web", Some("w2"), "replaces w2: liveness failed 3 times"),
        ]
    );
}

#[test]
fn a_failed_instance_without_reason_says_failed() {
    let actual = [failed(up("w1", "web", "h1", 1), "")];
    assert_eq!(
        reconcile(&[desired("web", "h1", 1)], &actual),
        vec![
            stop("w1", "web", "failed"),
            create("web", Some("w1"), "replaces w1: failed"),
        ]
    );
}

#[test]
fn a_failed_extra_is_stopped_without_replacement() {
    let actual = [
        up("w1", "web", "h1", 1),
        failed(up("w2", "web", "h1", 2), "exited"),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 1)], &actual),
        vec![stop("w2", "web", "exited")]
    );
}

#[test]
fn scale_up_names_the_new_count() {
    let actual = [up("w1", "web", "h1", 1)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 3)], &actual),
        vec![
            create("web", None, "scale up to 3"),
            create("web", None, "scale up to 3")
        ]
    );
}

#[test]
fn scale_down_stops_not_ready_then_newest_first() {
    let actual = [
        up("w1", "web", "h1", 1),
        up("w2", "web", "h1", 2),
        creating("w3", "web", "h1", 3),
        up("w4", "web", "h1", 4),
        up("w5", "web", "h1", 4),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            stop("w3", "web", "scale down to 2"),
            stop("w5", "web", "scale down to 2"),
            stop("w4", "web", "scale down to 2"),
        ]
    );
}

#[test]
fn scale_to_zero_stops_everything() {
    let actual = [up("w1", "web", "h1", 1), up("w2", "web", "h0", 0)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 0)], &actual),
        vec![
            stop("w1", "web", "scale down to 0"),
            stop("w2", "web", "replaced by a new definition"),
        ]
    );
}

#[test]
fn a_definition_change_starts_new_instances_before_stopping_old_ones() {
    let actual = [up("o1", "web", "h0", 1), up("o2", "web", "h0", 2)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            create("web", Some("o1"), "definition changed"),
            create("web", Some("o2"), "definition changed"),
        ]
    );
}

#[test]
fn old_instances_stay_while_new_ones_are_not_ready() {
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        creating("n1", "web", "h1", 3),
        creating("n2", "web", "h1", 4),
    ];
    assert!(reconcile(&[desired("web", "h1", 2)], &actual).is_empty());
}

#[test]
fn each_ready_new_instance_retires_the_oldest_old_one() {
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("n1", "web", "h1", 3),
        creating("n2", "web", "h1", 4),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![stop("o1", "web", "replaced by a new definition")]
    );
}

#[test]
fn all_old_instances_go_once_the_new_ones_serve() {
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("n1", "web", "h1", 3),
        up("n2", "web", "h1", 4),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            stop("o1", "web", "replaced by a new definition"),
            stop("o2", "web", "replaced by a new definition"),
        ]
    );
}

#[test]
fn covered_old_instances_are_not_paired_again() {
    // n1 stands for o1; only o2 and o3 still need a replacement.
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("o3", "web", "h0", 3),
        creating("n1", "web", "h1", 4),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 3)], &actual),
        vec![
            create("web", Some("o2"), "definition changed"),
            create("web", Some("o3"), "definition changed"),
        ]
    );
}

#[test]
fn outdated_that_do_not_serve_go_first() {
    // o1 is ready; o2 is not: o2 goes first, so two instances keep serving.
    let mut o2 = up("o2", "web", "h0", 2);
    o2.ready = false;
    let actual = [up("o1", "web", "h0", 1), o2, up("n1", "web", "h1", 3)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            create("web", Some("o2"), "definition changed"),
            stop("o2", "web", "replaced by a new definition"),
        ]
    );
}

#[test]
fn outdated_that_do_not_serve_stay_without_a_surplus() {
    // The new definition is not ready yet; a flapping old instance is kept.
    let mut o2 = up("o2", "web", "h0", 2);
    o2.ready = false;
    let actual = [up("o1", "web", "h0", 1), o2, creating("n1", "web", "h1", 3)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![create("web", Some("o2"), "definition changed")]
    );
}

#[test]
fn scale_down_during_a_change_keeps_enough_serving() {
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("o3", "web", "h0", 3),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 1)], &actual),
        vec![
            create("web", Some("o1"), "definition changed"),
            stop("o1", "web", "replaced by a new definition"),
            stop("o2", "web", "replaced by a new definition"),
        ]
    );
}

#[test]
fn scale_up_during_a_change_pairs_what_it_can() {
    let actual = [up("o1", "web", "h0", 1)];
    assert_eq!(
        reconcile(&[desired("web", "h1", 3)], &actual),
        vec![
            create("web", Some("o1"), "definition changed"),
            create("web", None, "scale up to 3"),
            create("web", None, "scale up to 3"),
        ]
    );
}

#[test]
fn failed_instances_are_paired_before_outdated_ones() {
    let actual = [
        up("o1", "web", "h0", 1),
        failed(up("o2", "web", "h0", 2), "oom killed"),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h1", 2)], &actual),
        vec![
            stop("o2", "web", "oom killed"),
            create("web", Some("o2"), "replaces o2: oom killed"),
            create("web", Some("o1"), "definition changed"),
        ]
    );
}

#[test]
fn a_rollout_interrupted_by_another_change_keeps_serving() {
    // h1 was rolling out over h0 when h2 came: both are outdated now.
    let actual = [
        up("a", "web", "h0", 1),
        up("b", "web", "h1", 2),
        creating("c", "web", "h1", 3),
    ];
    assert_eq!(
        reconcile(&[desired("web", "h2", 2)], &actual),
        vec![
            create("web", Some("a"), "definition changed"),
            create("web", Some("b"), "definition changed"),
            stop("c", "web", "replaced by a new definition"),
        ]
    );
}

#[test]
fn output_groups_failures_then_creates_then_stops_by_service() {
    let actual = [
        up("z1", "zeta", "h1", 1),
        failed(up("w1", "web", "h1", 1), "exited"),
        up("a1", "api", "h1", 1),
        up("a2", "api", "h1", 2),
        failed(up("d1", "db", "h1", 1), "exited"),
    ];
    let desired = [
        desired("web", "h1", 1),
        desired("api", "h1", 1),
        desired("db", "h1", 1),
    ];
    assert_eq!(
        reconcile(&desired, &actual),
        vec![
            stop("d1", "db", "exited"),
            stop("w1", "web", "exited"),
            create("db", Some("d1"), "replaces d1: exited"),
            create("web", Some("w1"), "replaces w1: exited"),
            stop("a2", "api", "scale down to 1"),
            stop("z1", "zeta", "service removed"),
        ]
    );
}

#[test]
fn the_order_of_the_input_does_not_matter() {
    let actual = vec![
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("n1", "web", "h1", 3),
        failed(up("x", "api", "h1", 1), "exited"),
        up("d", "db", "h1", 1),
    ];
    let desired = vec![desired("web", "h1", 2), desired("api", "h1", 1)];
    let mut reversed_actual = actual.clone();
    reversed_actual.reverse();
    let mut reversed_desired = desired.clone();
    reversed_desired.reverse();
    assert_eq!(
        reconcile(&desired, &actual),
        reconcile(&reversed_desired, &reversed_actual)
    );
}

#[test]
fn a_repeated_service_name_uses_the_first_entry() {
    let desired = [desired("web", "h1", 1), desired("web", "h2", 5)];
    assert_eq!(
        reconcile(&desired, &[up("w1", "web", "h1", 1)]),
        Vec::<Action>::new()
    );
}

#[test]
fn actions_serialize_tagged_and_lowercase() {
    let json = serde_json::to_value([
        create("web", Some("o1"), "definition changed"),
        stop("o1", "web", "replaced by a new definition"),
    ])
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"action": "create", "service": "web", "replaces": "o1", "reason": "definition changed"},
            {"action": "stop", "id": "o1", "service": "web", "reason": "replaced by a new definition"},
        ])
    );
    assert_eq!(serde_json::to_value(Phase::Stopping).unwrap(), "stopping");
}
