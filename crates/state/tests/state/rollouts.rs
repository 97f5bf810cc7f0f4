//! Routes replaced with the desired services, and rollout states.

use super::support::{event, service, temp_state};

#[test]
fn routes_change_with_the_desired_services_in_one_transaction() {
    let (_dir, mut state) = temp_state();
    let routes = [
        (
            "web".to_string(),
            "{\"listen\":\"127.0.0.1:8080\"}".to_string(),
        ),
        ("api".to_string(), "{}".to_string()),
    ];
    state
        .put_desired_with_routes(&[service("web", 1)], &[], Some(&routes), &[], &[])
        .unwrap();
    let names: Vec<String> = state.routes().unwrap().into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["api", "web"]);
    // Without routes, put_desired leaves them alone; with an empty list, they all go.
    state.put_desired(&[service("web", 2)], &[], &[]).unwrap();
    assert_eq!(state.routes().unwrap().len(), 2);
    state
        .put_desired_with_routes(&[service("web", 2)], &[], Some(&[]), &[], &[])
        .unwrap();
    assert!(state.routes().unwrap().is_empty());
    // A conflict writes neither services nor routes.
    assert!(
        state
            .put_desired_with_routes(
                &[service("x", 1), service("x", 1)],
                &[],
                Some(&routes),
                &[],
                &[]
            )
            .is_err()
    );
    assert!(state.routes().unwrap().is_empty());
}

#[test]
fn rollouts_are_replaced_and_ended_with_the_desired_service() {
    let (_dir, mut state) = temp_state();
    state.put_desired(&[service("web", 3)], &[], &[]).unwrap();
    state
        .put_rollout(
            "web",
            "{\"step\":0}",
            1,
            &[event(1, Some("web"), "rollout.started")],
        )
        .unwrap();
    state.put_rollout("web", "{\"step\":1}", 2, &[]).unwrap();
    assert_eq!(
        state.rollouts().unwrap(),
        [("web".to_string(), "{\"step\":1}".to_string())]
    );
    let mut stable = service("web", 3);
    stable.def_hash = "sha256:stable".to_string();
    stable.definition = "{\"stable\":true}".to_string();
    state
        .end_rollout(
            "web",
            "{\"aborted\":true}",
            3,
            Some(&stable),
            &[event(3, Some("web"), "rollout.aborted")],
        )
        .unwrap();
    assert_eq!(state.rollouts().unwrap()[0].1, "{\"aborted\":true}");
    let desired = state.desired().unwrap();
    assert_eq!(desired[0].def_hash, "sha256:stable");
    assert_eq!(desired[0].replicas, 3);
}
