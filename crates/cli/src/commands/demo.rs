//! `kiln demo`: progressive delivery end to end on this machine. Builds a small HTTP
//! app (busybox httpd and a CGI script) in three versions that differ only by env,
//! starts a private daemon, deploys v1 behind a route, puts steady load on it, canaries
//! v2 (good) to 100 %, then canaries v3 (500 on 30 % of requests) and watches the
//! analysis roll it back — printing a timeline with the traffic split and the load's
//! counts — and removes everything it made, whatever happens.

mod app;
mod load;
mod timeline;
mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kiln_daemon::api::types::{ApplyRequest, ApplyResponse, ServiceStatus};

use self::app::{MAX_ERROR_RATE, MIN_REQUESTS, PAUSE, STEPS, V1, V2, V3, Version};
use self::load::Load;
use self::timeline::{Cursor, Followed};
use self::world::World;
use crate::client::Client;

/// The load: threads (half keep-alive, half a new connection per request) and rate.
const THREADS: usize = 4;
const RATE: f64 = 200.0;
const PATH: &str = "/cgi-bin/app";
/// How long a rollout may take before the demo gives up.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(75);

/// `kiln demo`, or with `guard`, the demo's cleanup guard (internal).
pub fn demo(guard: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if let Some(root) = guard {
        world::guard(&root)?;
        return Ok(ExitCode::SUCCESS);
    }
    preflight()?;
    let started = Instant::now();
    let mut world = World::create()?;
    let outcome = run(&mut world);
    if !matches!(outcome, Ok(true)) {
        eprintln!("\n{}", world.logs());
    }
    println!(
        "\n== cleanup: destroy app, stop the daemon and the proxy, remove {}",
        world.root.display()
    );
    let cleaned = world.cleanup();
    match &cleaned {
        Ok(()) => println!("   nothing left: no process, container or mount of the demo"),
        Err(e) => eprintln!("kiln demo: cleanup incomplete: {e:#}"),
    }
    let ok = outcome? && cleaned.is_ok();
    println!(
        "\n{} after {:.1} s",
        if ok { "demo OK" } else { "demo FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Root and runc, or a clear message.
fn preflight() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("kiln demo needs root (runc, overlay mounts): run it with sudo");
    }
    let runc = Command::new("runc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !runc.is_ok_and(|s| s.success()) {
        anyhow::bail!("runc not found: apt-get install runc");
    }
    Ok(())
}

/// The demo proper: whether everything went as it should.
fn run(world: &mut World) -> anyhow::Result<bool> {
    let route: SocketAddr = ([127, 0, 0, 1], world.route_port).into();
    println!("== kiln demo: a canary rollout under load, then an automatic rollback");
    println!(
        "   work dir {}; instances on 127.0.0.1:{}-{}; route {route}",
        world.root.display(),
        world.ports.0,
        world.ports.1
    );

    println!("\n== build: one image (Debian's static busybox: httpd and a CGI script)");
    app::write_context(&world.ctx(), world.route_port, V1)?;
    let t = Instant::now();
    let built = world.build()?;
    println!("   {built}  ({:.1} s)", t.elapsed().as_secs_f64());
    for v in [V1, V2, V3] {
        println!(
            "   {}: env VERSION={} FAIL_PERCENT={}{}",
            v.name,
            v.name,
            v.fail_percent,
            if v.fail_percent > 0 {
                format!("  (answers 500 on {} % of requests)", v.fail_percent)
            } else {
                String::new()
            }
        );
    }

    let status = world.start_daemon()?;
    println!(
        "\n== daemon: kiln daemon (pid {}), ports {}, log {}/daemon.log",
        status.pid,
        status.ports,
        world.home().display()
    );
    let client = world.client();

    println!("\n== apply v1: service app, 3 replicas, route {route} → app");
    let t = Instant::now();
    let answer = apply(world, &client, V1)?;
    wait_converged(&client, answer.generation)?;
    wait_serving(route, V1.name)?;
    println!(
        "   3/3 ready and the route answers `version v1` after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    println!(
        "\n== load: {THREADS} threads (half on kept-alive connections, half on a new \
         connection per request), {RATE:.0} req/s, GET {PATH}"
    );
    let mut load = Load::start(route, PATH, THREADS, RATE);
    let mut cursor = Cursor::default();
    std::thread::sleep(Duration::from_secs(2));
    println!("   {}", cursor.line(&load));

    let steps: Vec<String> = STEPS.iter().map(|s| format!("{s} %")).collect();
    println!(
        "\n== apply v2 (good): canary {}, {PAUSE} per step, abort above {} % errors \
         (analysis needs {MIN_REQUESTS} requests per step)",
        steps.join(" → "),
        MAX_ERROR_RATE * 100.0
    );
    let v2_applied = Instant::now();
    let answer = apply(world, &client, V2)?;
    anyhow::ensure!(
        answer.rollouts.iter().any(|r| r == "app"),
        "the apply of v2 started no rollout"
    );
    let v2 = timeline::follow(
        &client,
        &load,
        &mut cursor,
        ("v1", "v2"),
        v2_applied,
        ROLLOUT_TIMEOUT,
    )?;
    let v2_load = load.between(v2_applied, v2.done);
    std::thread::sleep(Duration::from_secs(1));
    println!("   {}", cursor.line(&load));

    println!("\n== apply v3 (bad: 500 on 30 % of requests): the same canary");
    let v3_applied = Instant::now();
    let answer = apply(world, &client, V3)?;
    anyhow::ensure!(
        answer.rollouts.iter().any(|r| r == "app"),
        "the apply of v3 started no rollout"
    );
    let v3 = timeline::follow(
        &client,
        &load,
        &mut cursor,
        ("v2", "v3"),
        v3_applied,
        ROLLOUT_TIMEOUT,
    )?;
    std::thread::sleep(Duration::from_secs(3));
    println!("   {}", cursor.line(&load));
    load.stop();
    let stopped = Instant::now();

    Ok(summary(
        &load,
        stopped,
        (v2_applied, &v2, &v2_load),
        (v3_applied, &v3),
    ))
}

/// Prints the summary; whether the demo showed what it should.
fn summary(
    load: &Load,
    stopped: Instant,
    (v2_applied, v2, v2_load): (Instant, &Followed, &load::Counts),
    (v3_applied, v3): (Instant, &Followed),
) -> bool {
    let all = load.between(load.started, stopped);
    let secs = stopped.duration_since(load.started).as_secs_f64();
    println!("\n== summary");
    println!(
        "   load: {} requests in {secs:.1} s ({:.0} req/s), {} failed{}",
        all.total(),
        all.total() as f64 / secs,
        all.failed(),
        if all.failed() > 0 {
            format!(" [{}]", all.failure_kinds())
        } else {
            String::new()
        }
    );
    let took =
        |f: &Followed, from: Instant| f.ended.unwrap_or(f.done).duration_since(from).as_secs_f64();
    println!(
        "   v1 → v2: {} after {:.1} s; during the rollout {} requests, {} failed{}",
        v2.last.phase,
        took(v2, v2_applied),
        v2_load.total(),
        v2_load.failed(),
        if v2_load.failed() > 0 {
            format!(" [{}]", v2_load.failure_kinds())
        } else {
            String::new()
        }
    );
    let reason = &v3.last.reason;
    let cause = reason
        .strip_suffix("; traffic back to stable")
        .unwrap_or(reason);
    let cause = cause.strip_prefix("aborted ").unwrap_or(cause);
    println!(
        "   v2 → v3: {} after {:.1} s, {cause}",
        v3.last.phase,
        took(v3, v3_applied)
    );
    let back = v3.back_on_stable.unwrap_or(v3.done);
    let during = load.between(v3_applied, back);
    let after = load.between(back, stopped);
    println!(
        "            during the canary: {} requests, {} failed{}",
        during.total(),
        during.failed(),
        if during.failed() > 0 {
            format!(" [{}]", during.failure_kinds())
        } else {
            String::new()
        }
    );
    println!(
        "            after traffic went back to stable: {} requests, {} failed  ({})",
        after.total(),
        after.failed(),
        after.shares()
    );

    let mut problems = Vec::new();
    if v2.last.phase != "completed" {
        problems.push(format!(
            "the rollout of v2 should have completed but is {}: {}",
            v2.last.phase, v2.last.reason
        ));
    }
    if v2_load.failed() > 0 {
        problems.push(format!(
            "{} requests failed during the rollout of v2 (expected none)",
            v2_load.failed()
        ));
    }
    if v3.last.phase != "aborted" {
        problems.push(format!(
            "the rollout of v3 should have been aborted but is {}: {}",
            v3.last.phase, v3.last.reason
        ));
    }
    if after.failed() > 0 {
        problems.push(format!(
            "{} requests failed after the rollback of v3 (expected none)",
            after.failed()
        ));
    }
    if problems.is_empty() {
        println!(
            "   OK: v2 rolled out under load with zero failed requests; v3 was rolled back \
             by the analysis, and nothing failed after"
        );
        true
    } else {
        for p in &problems {
            eprintln!("kiln demo: {p}");
        }
        false
    }
}

/// Writes kiln.toml for `version` and applies it (without waiting).
fn apply(world: &World, client: &Client, version: Version) -> anyhow::Result<ApplyResponse> {
    let ctx = world.ctx();
    app::write_spec(&ctx, world.route_port, version)?;
    let path = ctx.join("kiln.toml");
    let source = std::fs::read_to_string(&path)?;
    client
        .post(
            "/v1/apply",
            &ApplyRequest {
                path: path.display().to_string(),
                source,
                dry_run: false,
            },
        )
        .with_context(|| format!("applying {}", version.name))
}

/// Waits (60 s at most) until `app` is converged at `generation`.
fn wait_converged(client: &Client, generation: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let services: Vec<ServiceStatus> = client.get("/v1/services")?;
        let app = services.iter().find(|s| s.name == "app");
        if app.is_some_and(|s| s.converged && s.generation >= generation) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "app did not become ready within 60 s: {}",
                app.map(|s| format!(
                    "{}/{} ready; last failure: {}",
                    s.ready,
                    s.replicas,
                    s.last_failure.as_deref().unwrap_or("none")
                ))
                .unwrap_or_else(|| "no such service".into())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (30 s at most) until the route answers `version VERSION`.
fn wait_serving(route: SocketAddr, version: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = load::get(route, PATH);
        if matches!(&got, Ok((200, Some(v))) if v == version) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("the route {route} does not answer `version {version}`: {got:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
