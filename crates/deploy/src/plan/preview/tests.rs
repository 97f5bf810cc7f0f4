//! Tests of [`preview`].

use super::*;

fn desired(name: &str, def_hash: &str, replicas: u32) -> DesiredService {
    DesiredService {
        name: name.to_string(),
        def_hash: def_hash.to_string(),
        replicas,
    }
}

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

fn change(action: ChangeKind, service: &str, instance: Option<&str>, reason: &str) -> Change {
    Change {
        action,
        service: service.to_string(),
        instance: instance.map(str::to_string),
        reason: reason.to_string(),
    }
}

fn no_reason(_: &str, _: &str) -> String {
    String::new()
}

#[test]
fn nothing_to_do_is_an_empty_plan() {
    let actual = [up("w1", "web", "h1", 1), up("w2", "web", "h1", 2)];
    let plan = preview(&[desired("web", "h1", 2)], &actual, &no_reason);
    assert!(plan.is_empty());
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn a_new_service_is_created() {
    let plan = preview(&[desired("web", "h1", 2)], &[], &no_reason);
    let create = change(ChangeKind::Create, "web", None, "new service");
    assert_eq!(plan.changes, vec![create.clone(), create]);
    assert_eq!(plan.unchanged, 0);
}

#[test]
fn scale_up_creates_the_missing_instances() {
    let plan = preview(
        &[desired("web", "h1", 2)],
        &[up("w1", "web", "h1", 1)],
        &no_reason,
    );
    assert_eq!(
        plan.changes,
        vec![change(ChangeKind::Create, "web", None, "scale up to 2")]
    );
    assert_eq!(plan.unchanged, 1);
}

#[test]
fn scale_down_destroys_not_ready_then_newest() {
    let mut w1 = up("w1", "web", "h1", 1);
    w1.ready = false;
    let actual = [w1, up("w2", "web", "h1", 2), up("w3", "web", "h1", 3)];
    let plan = preview(&[desired("web", "h1", 1)], &actual, &no_reason);
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Destroy, "web", Some("w1"), "replicas 3 → 1"),
            change(ChangeKind::Destroy, "web", Some("w3"), "replicas 3 → 1"),
        ]
    );
    assert_eq!(plan.unchanged, 1);
}

#[test]
fn a_changed_definition_replaces_with_the_callers_reason() {
    let actual = [up("w1", "web", "h0", 1), up("w2", "web", "h0", 2)];
    let reasons = |service: &str, old: &str| format!("{service} {old}: env.LOG_LEVEL changed");
    let plan = preview(&[desired("web", "h1", 2)], &actual, &reasons);
    let reason = "web h0: env.LOG_LEVEL changed";
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Replace, "web", Some("w1"), reason),
            change(ChangeKind::Replace, "web", Some("w2"), reason),
        ]
    );
    assert_eq!(plan.unchanged, 0);
}

#[test]
fn an_empty_reason_means_definition_changed() {
    let plan = preview(
        &[desired("web", "h1", 1)],
        &[up("w1", "web", "h0", 1)],
        &no_reason,
    );
    assert_eq!(
        plan.changes,
        vec![change(
            ChangeKind::Replace,
            "web",
            Some("w1"),
            "definition changed"
        )]
    );
}

#[test]
fn replaced_instances_beyond_the_replicas_are_destroyed() {
    let actual = [
        up("w3", "web", "h0", 3),
        up("w1", "web", "h0", 1),
        up("w2", "web", "h0", 2),
    ];
    let plan = preview(&[desired("web", "h1", 1)], &actual, &no_reason);
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Replace, "web", Some("w1"), "definition changed"),
            change(ChangeKind::Destroy, "web", Some("w2"), "replicas 3 → 1"),
            change(ChangeKind::Destroy, "web", Some("w3"), "replicas 3 → 1"),
        ]
    );
}

#[test]
fn a_change_with_scale_up_replaces_then_creates() {
    let actual = [up("w1", "web", "h0", 1)];
    let plan = preview(&[desired("web", "h1", 2)], &actual, &no_reason);
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Replace, "web", Some("w1"), "definition changed"),
            change(ChangeKind::Create, "web", None, "scale up to 2"),
        ]
    );
}

#[test]
fn a_half_done_rollout_counts_the_new_instances_as_unchanged() {
    let actual = [
        up("o1", "web", "h0", 1),
        up("o2", "web", "h0", 2),
        up("n1", "web", "h1", 3),
    ];
    let plan = preview(&[desired("web", "h1", 2)], &actual, &no_reason);
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Replace, "web", Some("o1"), "definition changed"),
            change(ChangeKind::Destroy, "web", Some("o2"), "replicas 3 → 2"),
        ]
    );
    assert_eq!(plan.unchanged, 1);
}

#[test]
fn a_service_removed_from_the_spec_is_destroyed() {
    let mut crashed = up("d2", "db", "h1", 2);
    crashed.failed = Some("exited".to_string());
    let actual = [up("d1", "db", "h1", 1), crashed];
    let plan = preview(&[], &actual, &no_reason);
    let reason = "service removed from the spec";
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Destroy, "db", Some("d1"), reason),
            change(ChangeKind::Destroy, "db", Some("d2"), reason),
        ]
    );
}

#[test]
fn stopping_and_failed_instances_are_not_kept() {
    let mut going = up("w1", "web", "h1", 1);
    going.phase = Phase::Stopping;
    let mut crashed = up("w2", "web", "h1", 2);
    crashed.failed = Some("exited".to_string());
    let plan = preview(
        &[desired("web", "h1", 1)],
        &[going.clone(), crashed],
        &no_reason,
    );
    assert_eq!(
        plan.changes,
        vec![change(ChangeKind::Create, "web", None, "scale up to 1")]
    );
    let plan = preview(&[desired("web", "h1", 1)], &[going.clone()], &no_reason);
    assert_eq!(
        plan.changes,
        vec![change(ChangeKind::Create, "web", None, "new service")]
    );
    assert!(preview(&[], &[going], &no_reason).is_empty());
}

#[test]
fn changes_are_sorted_by_service_then_kind_then_instance() {
    let actual = [
        up("z1", "zeta", "h1", 1),
        up("w2", "web", "h0", 2),
        up("w1", "web", "h0", 1),
        up("a1", "api", "h1", 1),
    ];
    let desired = [desired("web", "h1", 3), desired("api", "h1", 0)];
    let plan = preview(&desired, &actual, &no_reason);
    assert_eq!(
        plan.changes,
        vec![
            change(ChangeKind::Destroy, "api", Some("a1"), "replicas 1 → 0"),
            change(ChangeKind::Replace, "web", Some("w1"), "definition changed"),
            change(ChangeKind::Replace, "web", Some("w2"), "definition changed"),
            change(ChangeKind::Create, "web", None, "scale up to 3"),
            change(
                ChangeKind::Destroy,
                "zeta",
                Some("z1"),
                "service removed from the spec"
            ),
        ]
    );
}

#[test]
fn a_plan_round_trips_through_json() {
    let plan = preview(
        &[desired("web", "h1", 1)],
        &[up("w1", "web", "h0", 1)],
        &no_reason,
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "changes": [{"action": "replace", "service": "web", "instance": "w1",
                         "reason": "definition changed"}],
            "unchanged": 0,
        })
    );
    assert_eq!(serde_json::from_value::<Plan>(json).unwrap(), plan);
}
