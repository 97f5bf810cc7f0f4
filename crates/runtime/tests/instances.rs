//! Runs real service instances under runc: needs root, runc and Debian's static busybox.
//!
//! This test has no libtest harness (`harness = false`) because its binary is also the
//! shim: `instances __shim DIR` runs [`kiln_runtime::shim_main`], as `kiln __shim DIR`
//! does in production. Otherwise it runs the cases below in parallel threads, each with
//! its own directories, runc root and instance ids, and a guard that stops its instance
//! even when the case fails. `cargo test -p kiln-runtime NAME` runs the cases whose name
//! contains NAME.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::fs;
use std::io::BufRead;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kiln_runtime::{
    ExitInfo, InstanceSpec, Instances, Limits, LogConfig, LogLine, RuntimeError, Started,
    log_files, process_alive,
};
use rustix::process::{Pid, Signal};
use tempfile::TempDir;

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: [&str; 7] = ["sh", "httpd", "sleep", "cat", "echo", "touch", "grep"];
const INDEX: &str = "<h1>kiln instance test</h1>\n";

type Case = fn();

const CASES: [(&str, Case); 7] = [
    (
        "an_instance_serves_logs_and_is_read_only",
        serves_logs_and_is_read_only,
    ),
    (
        "a_killed_instance_records_its_signal",
        killed_instance_records_its_signal,
    ),
    (
        "a_second_start_of_an_id_leaves_the_first_alone",
        second_start_leaves_the_first_alone,
    ),
    (
        "a_bad_command_leaves_nothing_behind",
        bad_command_leaves_nothing_behind,
    ),
    ("logs_rotate_by_size", logs_rotate_by_size),
    (
        "a_timed_out_exec_leaves_no_orphan_to_slow_stop",
        timed_out_exec_leaves_no_orphan,
    ),
    (
        "the_shim_outlives_a_killed_control_plane",
        shim_outlives_a_killed_control_plane,
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__shim") {
        let dir = args.get(2).expect("usage: instances __shim DIR");
        return kiln_runtime::shim_main(Path::new(dir));
    }
    if args.get(1).map(String::as_str) == Some("__daemon") {
        fake_daemon(Path::new(&args[2]), &args[3]);
    }
    if args.iter().any(|arg| arg == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filter = args.iter().skip(1).find(|arg| !arg.starts_with('-'));
    let cases: Vec<_> = CASES
        .iter()
        .filter(|(name, _)| filter.is_none_or(|filter| name.contains(filter.as_str())))
        .collect();
    println!("\nrunning {} instance tests", cases.len());
    if cases.is_empty() {
        return ExitCode::SUCCESS;
    }
    require_host();
    let results: Vec<(&str, bool, Duration)> = thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, case)| {
                let handle = scope.spawn(move || {
                    let started = Instant::now();
                    let outcome = panic::catch_unwind(AssertUnwindSafe(case));
                    (outcome.is_ok(), started.elapsed())
                });
                (*name, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let (ok, took) = handle.join().unwrap_or((false, Duration::ZERO));
                (name, ok, took)
            })
            .collect()
    });
    let mut failed = 0;
    for (name, ok, took) in &results {
        let verdict = if *ok { "ok" } else { "FAILED" };
        println!("test {name} ... {verdict} ({:.2} s)", took.as_secs_f64());
        failed += usize::from(!ok);
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed\n",
        if failed == 0 { "ok" } else { "FAILED" },
        results.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A stand-in control plane: starts the instance of `spec` (JSON) with the instance
/// directories of fixture `base`, prints what started, and waits to be killed.
fn fake_daemon(base: &Path, spec: &str) -> ! {
    let spec: InstanceSpec = serde_json::from_str(spec).unwrap();
    let instances = Instances::new(
        base.join("runc"),
        base.join("instances"),
        std::env::current_exe().unwrap(),
    )
    .unwrap();
    let started = instances.start(&spec).unwrap();
    println!("{}", serde_json::to_string(&started).unwrap());
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}

/// Panics, saying what is missing, unless the host can run instances.
fn require_host() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the instance tests need root: they mount overlays and run runc"
    );
    let runc = [
        "/usr/local/sbin/runc",
        "/usr/sbin/runc",
        "/sbin/runc",
        "/usr/bin/runc",
    ]
    .iter()
    .any(|path| Path::new(path).is_file());
    assert!(
        runc,
        "the instance tests need runc: apt-get install -y runc"
    );
    assert!(
        Path::new(BUSYBOX).is_file(),
        "the instance tests need a static {BUSYBOX}: apt-get install -y busybox-static"
    );
}

/// Directories, runc state and an image of one case.
struct Fixture {
    base: TempDir,
    instances: Instances,
}

impl Fixture {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let instances = Instances::new(
            base.path().join("runc"),
            base.path().join("instances"),
            std::env::current_exe().unwrap(),
        )
        .unwrap();
        let fixture = Fixture { base, instances };
        fixture.busybox_image();
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.base.path().join(name)
    }

    /// One layer: busybox with a few applets, and a web root.
    fn busybox_image(&self) {
        let image = self.path("image");
        fs::create_dir_all(image.join("bin")).unwrap();
        fs::copy(BUSYBOX, image.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", image.join("bin").join(applet)).unwrap();
        }
        fs::create_dir_all(image.join("www")).unwrap();
        fs::write(image.join("www/index.html"), INDEX).unwrap();
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.path("logs/test").join(format!("{id}.log"))
    }

    fn spec(&self, id: &str, args: &[&str]) -> InstanceSpec {
        InstanceSpec {
            id: id.to_owned(),
            service: "test".to_owned(),
            image_digest: "sha256:0123".to_owned(),
            lowerdirs: vec![self.path("image")],
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: vec!["PATH=/bin".to_owned(), "PORT=0".to_owned()],
            cwd: "/srv/app".to_owned(),
            user: (1000, 1000),
            hostname: "test".to_owned(),
            tmpfs: Vec::new(),
            binds: Vec::new(),
            limits: Limits::default(),
            bootstrap: serde_json::json!({ "instance": id }),
            log: LogConfig {
                path: self.log_path(id),
                max_bytes: 1 << 20,
                keep: 2,
            },
        }
    }

    fn start(&self, spec: &InstanceSpec) -> Guard<'_> {
        let took = Instant::now();
        let started = self.instances.start(spec).unwrap();
        println!("started {} in {} ms", spec.id, took.elapsed().as_millis());
        Guard {
            instances: &self.instances,
            id: spec.id.clone(),
            pid: started.pid,
            pid_start: started.pid_start,
        }
    }

    fn instance_dir(&self, id: &str) -> PathBuf {
        self.path("instances").canonicalize().unwrap().join(id)
    }

    /// `(pid, starttime)` of the instance's shim.
    fn shim(&self, id: &str) -> (u32, u64) {
        let text = fs::read_to_string(self.instance_dir(id).join("shim.pid")).unwrap();
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        let pid = u32::try_from(fields.next().unwrap()).unwrap();
        (pid, fields.next().unwrap())
    }

    /// Asserts that no container, mount, directory or cgroup of `id` is left.
    fn assert_gone(&self, id: &str) {
        let listed = self.instances.list().unwrap();
        assert!(
            listed.iter().all(|c| c.id != id),
            "container left: {listed:?}"
        );
        let base = self.base.path().canonicalize().unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<_> = mountinfo
            .lines()
            .filter(|line| line.contains(base.to_str().unwrap()))
            .collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:#?}");
        assert!(!self.instance_dir(id).exists(), "instance directory left");
        assert!(!self.instances.leftovers().unwrap().contains(&id.to_owned()));
        let cgroup = Path::new("/sys/fs/cgroup/memory/kiln").join(id);
        assert!(!cgroup.exists(), "cgroup left: {}", cgroup.display());
    }
}

/// Stops the instance when dropped, so that failing cases clean up too.
struct Guard<'a> {
    instances: &'a Instances,
    id: String,
    pid: u32,
    pid_start: u64,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.instances.stop(&self.id, 9, Duration::ZERO) {
            println!("cleanup of {} failed: {e}", self.id);
        }
    }
}

/// An id no other test (or concurrent test run) uses.
fn unique_id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// Polls `check` every 20 ms for up to `limit`.
fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    stream.shutdown(Shutdown::Write).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn log_lines(path: &Path) -> Vec<LogLine> {
    log_files(path)
        .iter()
        .flat_map(|file| {
            fs::read_to_string(file)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str::<LogLine>(line).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The memory limit of `pid`'s cgroup (v1 memory controller, else cgroup v2).
fn memory_limit(pid: u32) -> String {
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1 = cgroups
        .lines()
        .find_map(|line| line.split_once(":memory:").map(|(_, path)| path.to_owned()));
    let file = match v1 {
        Some(path) => format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
        None => {
            let path = cgroups.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            format!("/sys/fs/cgroup{path}/memory.max")
        }
    };
    fs::read_to_string(&file).unwrap().trim().to_owned()
}

fn serves_logs_and_is_read_only() {
    let f = Fixture::new();
    let id = unique_id("serve");
    let port = free_port();
    let script = format!("echo hello; echo oops >&2; exec httpd -f -p 127.0.0.1:{port} -h /www");
    let mut spec = f.spec(&id, &["sh", "-c", &script]);
    spec.limits = Limits {
        memory: Some(64 << 20),
        cpu_millis: Some(500),
        pids: Some(64),
    };
    let guard = f.start(&spec);
    assert!(process_alive(guard.pid, guard.pid_start));

    let listed = f.instances.list().unwrap();
    let me = listed.iter().find(|c| c.id == id).unwrap();
    assert_eq!((me.status.as_str(), me.pid), ("running", Some(guard.pid)));
    assert_eq!(f.instances.leftovers().unwrap(), std::slice::from_ref(&id));
    assert_eq!(f.instances.exit_info(&id), None);

    let response = eventually(Duration::from_secs(5), || http_get(port)).unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response.contains(INDEX),
        "{response}"
    );

    let lines = eventually(Duration::from_secs(2), || {
        let lines = log_lines(&f.log_path(&id));
        (lines.len() >= 2).then_some(lines)
    })
    .unwrap();
    let by_stream: BTreeMap<_, _> = lines
        .iter()
        .map(|l| (l.stream.as_str(), l.line.as_str()))
        .collect();
    assert_eq!(by_stream.get("stdout"), Some(&"hello"), "{lines:?}");
    assert_eq!(by_stream.get("stderr"), Some(&"oops"), "{lines:?}");
    let hello = &lines[0];
    assert_eq!(
        (
            hello.service.as_str(),
            hello.instance.as_str(),
            hello.image.as_str()
        ),
        ("test", id.as_str(), "sha256:0123")
    );
    assert!(
        hello.ts.len() == 24 && hello.ts.ends_with('Z'),
        "{}",
        hello.ts
    );

    assert!(f.instances.mount_readonly_check(guard.pid).unwrap());
    let exec = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        f.instances
            .exec(&id, &args, Duration::from_secs(5))
            .unwrap()
    };
    assert!(!exec(&["touch", "/x"]), "the root is writable");
    assert!(
        !exec(&["touch", "/srv/app/x"]),
        "the working directory is writable"
    );
    assert!(exec(&["touch", "/tmp/x"]), "/tmp is not writable");
    assert!(exec(&["grep", "-q", &id, "/run/kiln/instance.json"]));
    assert_eq!(memory_limit(guard.pid), (64u64 << 20).to_string());

    let (shim, shim_start) = f.shim(&id);
    // httpd ignores SIGTERM as its namespace's init: the grace runs out, then SIGKILL.
    let took = Instant::now();
    f.instances
        .stop(&id, 15, Duration::from_millis(500))
        .unwrap();
    println!("stopped {id} in {} ms", took.elapsed().as_millis());
    assert!(
        took.elapsed() < Duration::from_secs(4),
        "stop took {:?}",
        took.elapsed()
    );
    assert!(
        !process_alive(shim, shim_start),
        "the shim outlived its container"
    );
    f.assert_gone(&id);
    f.instances.stop(&id, 15, Duration::ZERO).unwrap();
    drop(guard);
}

fn killed_instance_records_its_signal() {
    let f = Fixture::new();
    let id = unique_id("killed");
    let guard = f.start(&f.spec(&id, &["sleep", "1000"]));
    assert!(process_alive(guard.pid, guard.pid_start));
    let (shim, shim_start) = f.shim(&id);
    let pid = Pid::from_raw(i32::try_from(guard.pid).unwrap()).unwrap();
    let killed = Instant::now();
    rustix::process::kill_process(pid, Signal::KILL).unwrap();
    let exit = eventually(Duration::from_secs(2), || f.instances.exit_info(&id)).unwrap();
    println!(
        "{id} exit recorded {} ms after SIGKILL",
        killed.elapsed().as_millis()
    );
    assert_eq!(
        (exit.code, exit.signal),
        (None, Some(9)),
        "unexpected exit {exit:?}"
    );
    assert!(exit.at_ms > 1_700_000_000_000);
    let shim_gone = eventually(Duration::from_secs(2), || {
        (!process_alive(shim, shim_start)).then_some(())
    });
    assert!(shim_gone.is_some(), "the shim outlived its container");
    let listed = f.instances.list().unwrap();
    assert!(
        listed.iter().any(|c| c.id == id && c.status == "stopped"),
        "{listed:?}"
    );
    f.instances.stop(&id, 15, Duration::from_secs(10)).unwrap();
    f.assert_gone(&id);
    drop(guard);
}

fn second_start_leaves_the_first_alone() {
    let f = Fixture::new();
    let id = unique_id("twice");
    let spec = f.spec(&id, &["sleep", "1000"]);
    let guard = f.start(&spec);
    match f.instances.start(&spec) {
        Err(RuntimeError::InstanceExists { id: existing, .. }) => assert_eq!(existing, id),
        other => panic!("expected InstanceExists, got {other:?}"),
    }
    assert!(process_alive(guard.pid, guard.pid_start));
    assert_eq!(
        kiln_runtime::process_start_time(guard.pid),
        Some(guard.pid_start)
    );
    assert!(f.instance_dir(&id).join("rootfs/bin/busybox").exists());
    drop(guard);
    f.assert_gone(&id);
}

fn bad_command_leaves_nothing_behind() {
    let f = Fixture::new();
    let id = unique_id("bad");
    let error = f
        .instances
        .start(&f.spec(&id, &["/nonexistent"]))
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, RuntimeError::Start { .. }), "{error:?}");
    assert!(message.contains("/nonexistent"), "{message}");
    println!("a bad command fails with: {message}");
    f.assert_gone(&id);
    assert_eq!(f.instances.exit_info(&id), None::<ExitInfo>);
}

fn logs_rotate_by_size() {
    let f = Fixture::new();
    let id = unique_id("rotate");
    let mut spec = f.spec(
        &id,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 100 ]; do echo \"line $i of the log rotation test\"; i=$((i+1)); done",
        ],
    );
    spec.log.max_bytes = 4096;
    spec.log.keep = 2;
    let guard = f.start(&spec);
    let (shim, shim_start) = f.shim(&id);
    let exit = eventually(Duration::from_secs(5), || f.instances.exit_info(&id)).unwrap();
    assert_eq!(exit.code, Some(0));
    // The shim exits once it has logged everything.
    let shim_gone = eventually(Duration::from_secs(2), || {
        (!process_alive(shim, shim_start)).then_some(())
    });
    assert!(shim_gone.is_some());

    let log = f.log_path(&id);
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    assert!(log.is_file() && rotated(1).is_file() && rotated(2).is_file());
    assert!(!rotated(3).exists(), "more rotated files than kept");
    for file in log_files(&log) {
        assert!(
            fs::metadata(&file).unwrap().len() <= 4096,
            "{} too big",
            file.display()
        );
    }
    let lines = log_lines(&log);
    assert_eq!(
        lines.last().map(|l| l.line.as_str()),
        Some("line 99 of the log rotation test")
    );
    let numbers: Vec<u32> = lines
        .iter()
        .map(|l| l.line.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines out of order: {numbers:?}"
    );
    drop(guard);
    f.assert_gone(&id);
}

/// Processes in the pid namespace of `init`, other than `init`.
fn others_in_namespace(init: u32) -> Vec<String> {
    let ns = fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.parse::<u32>().is_ok_and(|pid| pid != init))
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|other| other == ns))
        .map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            format!("{pid}: {}", stat.trim())
        })
        .collect()
}

/// Regression: killing `runc exec` on a probe timeout orphaned the probe to the host's
/// init, and the container's init could not exit until that reaped it (over a second
/// here), which slowed every stop after a timed-out probe.
fn timed_out_exec_leaves_no_orphan() {
    let f = Fixture::new();
    let id = unique_id("probe");
    let guard = f.start(&f.spec(&id, &["sleep", "1000"]));
    let took = Instant::now();
    let args = ["sleep".to_owned(), "30".to_owned()];
    assert!(
        !f.instances
            .exec(&id, &args, Duration::from_millis(300))
            .unwrap()
    );
    assert!(
        took.elapsed() < Duration::from_secs(3),
        "exec timeout took {:?}",
        took.elapsed()
    );
    let left = others_in_namespace(guard.pid);
    assert!(left.is_empty(), "processes left in the container: {left:?}");
    let took = Instant::now();
    f.instances.stop(&id, 9, Duration::ZERO).unwrap();
    assert!(
        took.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        took.elapsed()
    );
    f.assert_gone(&id);
    drop(guard);
}

/// The control plane is SIGKILLed with its whole process group right after a start: the
/// shim, in a session of its own, keeps logging, records the exit, and a new control
/// plane can still stop the instance.
fn shim_outlives_a_killed_control_plane() {
    let f = Fixture::new();
    let id = unique_id("orphan");
    let spec = f.spec(
        &id,
        &[
            "sh",
            "-c",
            "echo before; sleep 1; echo after; exec sleep 1000",
        ],
    );
    let mut daemon = Command::new(std::env::current_exe().unwrap())
        .arg("__daemon")
        .arg(f.base.path())
        .arg(serde_json::to_string(&spec).unwrap())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Cleans up even if the fake daemon failed to report.
    let guard = Guard {
        instances: &f.instances,
        id: id.clone(),
        pid: 0,
        pid_start: 0,
    };
    let started: Started = serde_json::from_str(&line).unwrap();
    let (shim, shim_start) = f.shim(&id);
    let group = Pid::from_raw(i32::try_from(daemon.id()).unwrap()).unwrap();
    rustix::process::kill_process_group(group, Signal::KILL).unwrap();
    daemon.wait().unwrap();

    let after = eventually(Duration::from_secs(5), || {
        let lines = log_lines(&f.log_path(&id));
        lines.iter().any(|l| l.line == "after").then_some(lines)
    });
    assert!(
        after.is_some(),
        "nothing logged after the control plane died"
    );
    assert!(
        process_alive(shim, shim_start),
        "the shim died with the control plane"
    );
    assert!(process_alive(started.pid, started.pid_start));

    let pid = Pid::from_raw(i32::try_from(started.pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, Signal::TERM).unwrap();
    // sleep as a namespace's init ignores SIGTERM: kill it for real.
    rustix::process::kill_process(pid, Signal::KILL).unwrap();
    let exit = eventually(Duration::from_secs(2), || f.instances.exit_info(&id)).unwrap();
    assert_eq!(exit.signal, Some(9));
    f.instances.stop(&id, 15, Duration::from_secs(1)).unwrap();
    f.assert_gone(&id);
    drop(guard);
}
