//! Changing the desired state: a new definition replaces instances, bad input changes
//! nothing.

use std::time::{Duration, Instant};

use super::harness::{CONVERGE, IMAGE, Instance, World, expect_body, ids, line_of, service, spec};

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

/// `kiln apply -f kiln.toml --timeout 90s`, which must succeed within `limit`: its
/// stdout.
fn apply_within(w: &World, limit: Duration, what: &str) -> String {
    let spec = w.spec_path();
    let started = Instant::now();
    let out = w.kiln(&["apply", "-f", spec.to_str().unwrap(), "--timeout", "90s"]);
    let took = started.elapsed();
    eprintln!("kiln apply ({what}) took {took:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() || took > limit {
        w.fail(&format!(
            "kiln apply ({what}): {} after {took:?} (limit {limit:?})\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
}

#[test]
fn two_services_change_one() {
    let two = |web: &str| {
        format!(
            "{IMAGE}\n{}\n{}",
            service("web", 2, web),
            service("api", 2, "api-one")
        )
    };
    let mut w = World::new(11);
    w.write_spec(&two("one"));
    w.build();
    w.start_daemon();
    let plan = w.apply();
    assert!(plan.contains("create:"), "{plan}");
    let web = w.wait_for(CONVERGE, "2 ready web", || {
        w.service_converged_now("web", 2)
    });
    let api = w.wait_for(CONVERGE, "2 ready api", || {
        w.service_converged_now("api", 2)
    });
    for i in &api {
        expect_body(&i.address, "/greeting", "api-one\n").unwrap_or_else(|e| w.fail(&e));
    }

    // Only web's env changes: only web's instances are replaced, at once.
    w.write_spec(&two("two"));
    let plan = apply_within(&w, Duration::from_secs(30), "web's env changed");
    assert!(plan.contains("replace:"), "{plan}");
    for i in &api {
        assert!(
            !plan.lines().any(|l| l.contains(&i.id)),
            "the plan touches the unchanged api instance {}:\n{plan}",
            i.id
        );
    }
    let web2 = w
        .service_converged_now("web", 2)
        .unwrap_or_else(|e| w.fail(&format!("web not converged when apply returned: {e}")));
    let api2 = w
        .service_converged_now("api", 2)
        .unwrap_or_else(|e| w.fail(&format!("api not converged when apply returned: {e}")));
    assert_eq!(ids(&api2), ids(&api), "api's instances are untouched");
    assert!(
        ids(&web2).is_disjoint(&ids(&web)),
        "every web instance is new: before {:?}, now {web2:#?}",
        ids(&web)
    );
    for i in &web2 {
        expect_body(&i.address, "/greeting", "two\n").unwrap_or_else(|e| w.fail(&e));
    }

    // api leaves kiln.toml: applying destroys it and leaves web alone.
    w.write_spec(&format!("{IMAGE}\n{}", service("web", 2, "two")));
    let plan = apply_within(&w, Duration::from_secs(30), "api removed");
    for i in &api {
        assert!(
            plan.lines()
                .any(|l| l.contains(&i.id) && l.contains("destroy")),
            "no `destroy` of api instance {} in the plan:\n{plan}",
            i.id
        );
    }
    let now = w.ps();
    if now.iter().any(|i| i.service == "api") {
        w.fail(&format!(
            "api instances remain when apply returned:\n{plan}\nps: {now:#?}"
        ));
    }
    let web3 = w
        .converged_now(2)
        .unwrap_or_else(|e| w.fail(&format!("not converged after api's removal: {e}")));
    assert_eq!(ids(&web3), ids(&web2), "web's instances are untouched");
    let status = w.status();
    assert!(
        w.service_status(&status, "api").is_null(),
        "api is still a service: {status:#}"
    );
    w.wait_for(Duration::from_secs(10), "api's containers to go", || {
        w.exactly(&ids(&web3))
    });

    // Nothing changed: nothing to do, and apply says so at once.
    let plan = apply_within(&w, Duration::from_secs(5), "no change");
    assert!(plan.contains("No changes"), "{plan}");
    assert_eq!(ids(&w.ps()), ids(&web3), "{plan}");
}
