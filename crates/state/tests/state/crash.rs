//! Crash safety: a child process (this test binary, re-run on one test) commits some
//! transactions and then aborts; the parent reopens the database and finds every
//! commit and no part of what was uncommitted.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kiln_state::{DesiredService, EventFilter, State};

use super::support::{event, instance, service, temp_db};

/// Set to the database path only in the child process.
const CHILD_DB: &str = "KILN_STATE_CRASH_CHILD_DB";
/// What the child does after its base commits: `race` or `open-tx`.
const CHILD_MODE: &str = "KILN_STATE_CRASH_CHILD_MODE";
/// Services rewritten by each racing generation: enough that a transaction takes most
/// of the child's time, so the abort usually lands inside one.
const BATCH: usize = 300;
/// The generation after which the racing child arms its abort.
const ARM_AT: u64 = 4;

/// The child half of the tests below; passes trivially when run as an ordinary test.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let mut state = State::open(Path::new(&path)).unwrap();
    commit_base(&mut state);
    println!("committed base");
    match std::env::var(CHILD_MODE).unwrap().as_str() {
        "race" => race(&mut state),
        "open-tx" => abort_in_open_transaction(Path::new(&path)),
        other => panic!("unknown child mode {other}"),
    }
}

fn commit_base(state: &mut State) {
    state.set_meta("last_boot_id", "boot-1").unwrap();
    state.put_definition("old-def", "{}").unwrap();
    let inst = event(1, Some("web"), "inst");
    state
        .insert_instance(&instance("i1", "web", 9001), Some(&inst))
        .unwrap();
    let desired = event(1, Some("web"), "desired");
    state
        .put_desired(&[service("web", 1)], &[], &[desired])
        .unwrap();
}

/// Rewrites `BATCH` services per generation; a thread aborts the process shortly
/// after generation `ARM_AT`, in the middle of some later `put_desired`.
fn race(state: &mut State) {
    for i in 1..10_000 {
        let generation = state
            .put_desired(&batch(i), &[], &[event(i, None, "desired")])
            .unwrap();
        println!("committed {generation}");
        if generation == ARM_AT {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(3));
                std::process::abort();
            });
        }
    }
}

/// Writes through a second connection whose page cache is too small to hold the
/// transaction, so uncommitted pages reach the WAL file, then aborts before COMMIT.
fn abort_in_open_transaction(path: &Path) {
    let mut raw = rusqlite::Connection::open(path).unwrap();
    raw.pragma_update(None, "cache_size", 2).unwrap();
    let tx = raw.transaction().unwrap();
    tx.execute(
        "UPDATE meta SET value = '999' WHERE key = 'desired_generation'",
        [],
    )
    .unwrap();
    tx.execute("DELETE FROM instances", []).unwrap();
    for n in 0..2_000 {
        tx.execute(
            "INSERT INTO desired VALUES (?1, 999, 'h', ?2, 'd', 'v', 1, 0)",
            (format!("ghost-{n}"), "x".repeat(1_000)),
        )
        .unwrap();
    }
    std::process::abort();
}

/// The services generation `i + 1` writes: all with `updated_ms == i`.
fn batch(i: i64) -> Vec<DesiredService> {
    (0..BATCH)
        .map(|n| DesiredService {
            updated_ms: i,
            definition: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(200)),
            ..service(&format!("svc-{n:04}"), 1)
        })
        .collect()
}

/// Runs the child in `mode` on `path`, checks it died by SIGABRT, returns its stdout.
fn run_child(path: &Path, mode: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "state::crash::crash_child", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.signal(),
        Some(6),
        "child must die by SIGABRT: {stdout}"
    );
    assert!(stdout.contains("committed base\n"), "{stdout}");
    stdout
}

/// What `commit_base` wrote, still there.
fn assert_base(state: &State) {
    assert_eq!(
        state.meta("last_boot_id").unwrap().as_deref(),
        Some("boot-1")
    );
    assert_eq!(state.definition("old-def").unwrap().as_deref(), Some("{}"));
    assert_eq!(state.instance("i1").unwrap().unwrap().port, 9001);
    let web = state
        .desired()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "web");
    assert_eq!(web.unwrap().generation, 1);
}

fn count_events(state: &State, kind: &str) -> usize {
    let all = state.events(&EventFilter::default()).unwrap();
    all.iter().filter(|e| e.kind == kind).count()
}

#[test]
fn abort_during_writes_keeps_commits_and_drops_the_rest() {
    let (_dir, path) = temp_db();
    let stdout = run_child(&path, "race");
    let last: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("committed ")?.parse().ok())
        .max()
        .unwrap();
    assert!(last >= ARM_AT, "{stdout}");

    let state = State::open(&path).unwrap();
    assert_base(&state);
    // Every reported commit is there; the write in flight at the abort is there whole
    // (it committed before the abort) or not at all.
    let generation = state.generation().unwrap();
    assert!(
        generation == last || generation == last + 1,
        "generation {generation}, last reported {last}"
    );
    let desired = state.desired().unwrap();
    assert_eq!(desired.len(), BATCH + 1);
    let written_by = generation as i64 - 1;
    for s in desired.iter().filter(|s| s.name != "web") {
        assert_eq!(
            (s.generation, s.updated_ms),
            (generation, written_by),
            "{}",
            s.name
        );
    }
    assert_eq!(count_events(&state, "desired") as u64, generation);
}

#[test]
fn abort_with_an_open_transaction_drops_it() {
    let (_dir, path) = temp_db();
    run_child(&path, "open-tx");
    let wal = std::fs::metadata(format!("{}-wal", path.display())).unwrap();
    assert!(
        wal.len() > 1_000_000,
        "uncommitted pages reached the WAL: {wal:?}"
    );

    let state = State::open(&path).unwrap();
    assert_base(&state);
    assert_eq!(state.generation().unwrap(), 1);
    assert_eq!(state.desired().unwrap().len(), 1);
    assert_eq!(state.instances().unwrap().len(), 1);
    assert_eq!(count_events(&state, "desired"), 1);
}
