//! Changing the desired state: a new definition replaces instances, bad input changes
//! nothing.

use super::harness::{Instance, World, expect_body, ids, line_of, spec};

#[test]
fn env_change_replaces_every_instance() {
    let (w, ps) = World::converged(6, 3, "one");
    for i in &ps {
        expect_body(&i.address, "/greeting", "one\n").unwrap_or_else(|e| w.fail(&e));
    }

    let spec_path = w.write_spec(&spec(3, "two"));
    let spec_path = spec_path.to_str().unwrap();
    let dry = w.ok(&["apply", "-f", spec_path, "--dry-run"]);
    for i in &ps {
        assert!(
            dry.lines()
                .any(|l| l.contains(&i.id) && l.contains("replace") && l.contains("env.GREETING")),
            "no `replace` of {} for env.GREETING in the plan:\n{dry}",
            i.id
        );
    }
    assert!(
        !dry.contains("create:") && !dry.contains("destroy:"),
        "{dry}"
    );
    assert_eq!(ids(&w.ps()), ids(&ps), "a dry run changes nothing");

    let plan = w.apply();
    assert!(plan.contains("replace:"), "{plan}");
    let now = w
        .converged_now(3)
        .unwrap_or_else(|e| w.fail(&format!("not converged when apply returned: {e}")));
    assert!(
        ids(&now).is_disjoint(&ids(&ps)),
        "every instance is new: before {:?}, now {now:#?}",
        ids(&ps)
    );
    for i in &now {
        expect_body(&i.address, "/greeting", "two\n").unwrap_or_else(|e| w.fail(&e));
    }
}

/// Fails unless `w` still runs exactly `before` and made no instance since event `seq`.
fn assert_unchanged(w: &World, before: &[Instance], seq: i64, after: &str) {
    let now = w.ps();
    assert_eq!(ids(&now), ids(before), "ps changed after {after}: {now:#?}");
    let created: Vec<_> = w
        .events()
        .into_iter()
        .filter(|e| e.seq > seq && e.kind == "instance.created")
        .collect();
    assert!(
        created.is_empty(),
        "instances created after {after}: {created:#?}"
    );
}

#[test]
fn bad_input_changes_nothing() {
    let (w, ps) = World::converged(7, 3, "one");
    let good = spec(3, "one");
    let seq = w.last_seq();
    let spec_path = w.spec_path();
    let spec_path = spec_path.to_str().unwrap();

    // (a) a value of the wrong type
    let bad = good.replace("replicas = 3", "replicas = \"three\"");
    let line = line_of(&bad, "replicas = ");
    w.write_spec(&bad);
    let err = w.fails(&["apply", "-f", spec_path]);
    assert!(
        err.contains(&format!("kiln.toml:{line}:")) && err.contains("replicas"),
        "the error names kiln.toml:{line} and `replicas`:\n{err}"
    );
    assert_unchanged(&w, &ps, seq, "an invalid spec");

    // (b) an image the store does not have
    let bad = good.replace("image = \"web\"", "image = \"nope\"");
    let line = line_of(&bad, "image = \"nope\"");
    w.write_spec(&bad);
    let err = w.fails(&["apply", "-f", spec_path]);
    assert!(
        err.contains(&format!("kiln.toml:{line}:")) && err.contains("nope"),
        "the error names kiln.toml:{line} and `nope`:\n{err}"
    );
    assert_unchanged(&w, &ps, seq, "an unknown image");

    w.write_spec(&good);
    let plan = w.apply();
    assert!(
        !plan.contains("create:") && !plan.contains("replace:"),
        "{plan}"
    );
    assert_unchanged(&w, &ps, seq, "applying the same spec again");

    // (c) more replicas than the daemon has ports
    let mut small = World::new(10);
    let small_spec = small.write_spec(&good);
    small.build();
    small.start_daemon_with_ports((small.ports.0, small.ports.0 + 1));
    let small_seq = small.last_seq();
    let err = small.fails(&[
        "apply",
        "-f",
        small_spec.to_str().unwrap(),
        "--timeout",
        "20s",
    ]);
    assert!(
        err.contains("port range"),
        "the error is about the port range:\n{err}"
    );
    assert_unchanged(&small, &[], small_seq, "an apply beyond the port range");
    let status = small.status();
    assert!(
        status["services"].as_array().is_some_and(|s| s.is_empty()),
        "a refused apply leaves no service: {status:#}"
    );
    assert_unchanged(&w, &ps, seq, "the other daemon's refusal");
}
