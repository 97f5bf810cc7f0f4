//! The happy path: a full kiln.toml parses into the expected model.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use kiln_spec::{
    Analysis, Base, Check, CopyBinaryStep, CopyStep, ImageRef, ImageSpec, Pause, Probe, Resources,
    RouteSpec, RunStep, ServiceSpec, Signal, Step, StopSpec, Strategy, StrategyKind, TlsSpec,
    Volume, parse,
};

const EXAMPLE: &str = r#"[image.hello]
from = "scratch"
entrypoint = ["/bin/busybox", "sh", "-c"]
cmd = ["echo hello from $GREETING"]
env = { GREETING = "kiln" }
workdir = "/"
user = "0:0"
labels = { "org.opencontainers.image.title" = "hello" }
expose = [8080]

[[image.hello.step]]
copy = "bin/busybox"
to = "/bin/busybox"
mode = "0755"

[[image.hello.step]]
run = ["/bin/busybox", "sh", "-c", "echo built > /built.txt"]
network = false

[image.builder]
from = "oci:images/rust:1.95"

[[image.builder.step]]
copy = "./src/**/*.rs"
to = "/src/"
owner = "1000:1000"

[[image.builder.step]]
run = ["cargo", "build", "--release"]
network = true

[image.app]
from = "rootfs:/var/lib/rootfs.tar.gz"

[[image.app.step]]
copy = "/out/app"
from_image = "builder"
to = "/app"

[[image.app.step]]
copy_binary = "target/release/app"
to = "/app/app"
mode = "0o700"
"#;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn full_example() {
    let spec = parse(EXAMPLE, Path::new("deploy/kiln.toml")).unwrap();
    assert_eq!(spec.path, PathBuf::from("deploy/kiln.toml"));
    assert_eq!(spec.context, PathBuf::from("deploy"));
    assert_eq!(
        spec.images.keys().collect::<Vec<_>>(),
        ["app", "builder", "hello"]
    );

    let hello = &spec.images["hello"];
    let expected = ImageSpec {
        name: "hello".into(),
        from: Base::Scratch,
        entrypoint: Some(strings(&["/bin/busybox", "sh", "-c"])),
        cmd: Some(strings(&["echo hello from $GREETING"])),
        env: BTreeMap::from([("GREETING".into(), "kiln".into())]),
        workdir: Some("/".into()),
        user: Some("0:0".into()),
        labels: BTreeMap::from([("org.opencontainers.image.title".into(), "hello".into())]),
        expose: vec![8080],
        steps: vec![
            Step::Copy(CopyStep {
                src: "bin/busybox".into(),
                from_image: None,
                to: "/bin/busybox".into(),
                mode: Some(0o755),
                owner: None,
            }),
            Step::Run(RunStep {
                args: strings(&["/bin/busybox", "sh", "-c", "echo built > /built.txt"]),
                network: false,
            }),
        ],
        step_lines: vec![11, 16],
        line: 1,
    };
    assert_eq!(hello, &expected);

    let builder = &spec.images["builder"];
    assert_eq!(
        builder.from,
        Base::Oci {
            path: "deploy/images/rust".into(),
            reference: Some("1.95".into())
        }
    );
    assert_eq!(
        builder.steps,
        [
            Step::Copy(CopyStep {
                src: "src/**/*.rs".into(),
                from_image: None,
                to: "/src/".into(),
                mode: None,
                owner: Some((1000, 1000)),
            }),
            Step::Run(RunStep {
                args: strings(&["cargo", "build", "--release"]),
                network: true,
            }),
        ]
    );
    assert_eq!(
        (builder.line, builder.step_lines.as_slice()),
        (20, &[23, 28][..])
    );
    assert_eq!(builder.entrypoint, None);
    assert_eq!(builder.cmd, None);
    assert!(builder.env.is_empty() && builder.labels.is_empty() && builder.expose.is_empty());

    let app = &spec.images["app"];
    assert_eq!(
        app.from,
        Base::Rootfs {
            path: "/var/lib/rootfs.tar.gz".into()
        }
    );
    assert_eq!(
        app.steps,
        [
            Step::Copy(CopyStep {
                src: "/out/app".into(),
                from_image: Some("builder".into()),
                to: "/app".into(),
                mode: None,
                owner: None,
            }),
            Step::CopyBinary(CopyBinaryStep {
                src: "target/release/app".into(),
                to: "/app/app".into(),
                mode: Some(0o700),
                owner: None,
            }),
        ]
    );
    assert_eq!(
        app.dependencies().into_iter().collect::<Vec<_>>(),
        ["builder"]
    );
}

#[test]
fn defaults() {
    let spec = parse("[image.empty]\n", Path::new("kiln.toml")).unwrap();
    assert_eq!(spec.context, PathBuf::from("."));
    let empty = &spec.images["empty"];
    assert_eq!(empty.from, Base::Scratch);
    assert_eq!(empty.entrypoint, None);
    assert!(empty.steps.is_empty() && empty.step_lines.is_empty());
}

#[test]
fn empty_file_has_no_images() {
    let spec = parse("# nothing yet\n", Path::new("kiln.toml")).unwrap();
    assert!(spec.images.is_empty());
    assert!(spec.services.is_empty());
}

#[test]
fn other_table_styles() {
    let source = r#"
[image]
inline = { from = "docker-archive:img.tar", cmd = [], step = [{ run = ["/bin/true"] }] }
dotted.user = "nobody"
"#;
    let spec = parse(source, Path::new("kiln.toml")).unwrap();
    let inline = &spec.images["inline"];
    assert_eq!(
        inline.from,
        Base::DockerArchive {
            path: "./img.tar".into()
        }
    );
    assert_eq!(inline.cmd, Some(vec![]));
    assert_eq!((inline.line, inline.step_lines.as_slice()), (3, &[3][..]));
    assert_eq!(spec.images["dotted"].user.as_deref(), Some("nobody"));
    assert_eq!(spec.images["dotted"].line, 4);
}

#[test]
fn line_numbers_are_not_serialized() {
    let a = parse(EXAMPLE, Path::new("kiln.toml")).unwrap();
    let b = parse(
        &format!("\n\n# moved down\n{EXAMPLE}"),
        Path::new("kiln.toml"),
    )
    .unwrap();
    let (a, b) = (&a.images["hello"], &b.images["hello"]);
    assert_ne!(a.line, b.line);
    assert_eq!(
        serde_json::to_string(a).unwrap(),
        serde_json::to_string(b).unwrap()
    );
    assert!(!serde_json::to_string(a).unwrap().contains("line"));
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let source = "[image.a]\nexpose = [0]\n[image.b]\nfrom = \"nope\"\n";
    let err = parse(source, Path::new("kiln.toml")).unwrap_err();
    let lines: Vec<usize> = err
        .diagnostics()
        .iter()
        .map(|d| d.location.unwrap().line)
        .collect();
    assert_eq!(lines, [2, 4]);
    let message = err.to_string();
    assert!(message.starts_with("kiln.toml:2:11: "), "{message}");
    assert!(message.contains("\nerror: kiln.toml:4:8: "), "{message}");
}

const SERVICE: &str = r#"
[service.web]
image = "web:v2"
replicas = 3
port = 8080
args = ["--flag"]
env = { LOG_LEVEL = "info" }
resources = { memory = "128Mi", cpus = 0.5, pids = 256 }
stop = { signal = "sigint", grace = "1.5s" }
tmpfs = ["/tmp"]
volumes = [{ host = "/srv/data", to = "/data", external = true }]

[service.web.readiness]
http = "/healthz"
timeout = "500ms"

[service.web.liveness]
tcp = true
"#;

#[test]
fn full_service() {
    let spec = parse(SERVICE, Path::new("kiln.toml")).unwrap();
    assert!(spec.images.is_empty());
    let web = &spec.services["web"];
    let expected = ServiceSpec {
        name: "web".into(),
        image: ImageRef::Tagged {
            name: "web".into(),
            tag: "v2".into(),
        },
        replicas: 3,
        port: Some(8080),
        args: Some(strings(&["--flag"])),
        env: BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]),
        resources: Resources {
            memory: Some(128 << 20),
            cpu_millis: Some(500),
            pids: Some(256),
        },
        stop: StopSpec {
            signal: Signal::Int,
            grace: Duration::from_millis(1500),
        },
        tmpfs: strings(&["/tmp"]),
        volumes: vec![Volume {
            host: "/srv/data".into(),
            to: "/data".into(),
            read_only: false,
            external: true,
        }],
        readiness: Some(Probe {
            check: Check::Http {
                path: "/healthz".into(),
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            success: 1,
            failure: 3,
        }),
        liveness: Some(Probe {
            check: Check::Tcp,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            success: 1,
            failure: 3,
        }),
        strategy: Strategy::default(),
        line: 2,
        image_line: 3,
    };
    assert_eq!(web, &expected);
    assert_eq!(web.image.to_string(), "web:v2");
    assert_eq!(
        (web.stop.signal.name(), web.stop.signal.number()),
        ("SIGINT", 2)
    );
}

#[test]
fn service_defaults() {
    let spec = parse("[service.web]\nimage = \"web\"\n", Path::new("kiln.toml")).unwrap();
    let web = &spec.services["web"];
    assert_eq!(web.image, ImageRef::Name("web".into()));
    assert_eq!((web.replicas, web.port, web.args.as_ref()), (1, None, None));
    assert_eq!(web.resources, Resources::default());
    assert_eq!(web.stop, StopSpec::default());
    assert_eq!(
        (web.stop.signal, web.stop.grace),
        (Signal::Term, Duration::from_secs(10))
    );
    assert!(web.tmpfs.is_empty() && web.volumes.is_empty());
    assert_eq!(
        (web.readiness.as_ref(), web.liveness.as_ref()),
        (None, None)
    );
}

#[test]
fn service_image_is_not_looked_up_among_images() {
    let source = "[image.web]\n[service.api]\nimage = \"api\"\n";
    let spec = parse(source, Path::new("kiln.toml")).unwrap();
    assert_eq!(spec.services["api"].image.name(), "api");
}

#[test]
fn services_round_trip_through_serde_without_lines() {
    let spec = parse(SERVICE, Path::new("kiln.toml")).unwrap();
    let json = serde_json::to_string(&spec.services).unwrap();
    assert!(
        !json.contains("\"line\"") && !json.contains("\"image_line\""),
        "{json}"
    );
    let back: BTreeMap<String, ServiceSpec> = serde_json::from_str(&json).unwrap();
    let mut expected = spec.services.clone();
    for service in expected.values_mut() {
        (service.line, service.image_line) = (0, 0);
    }
    assert_eq!(back, expected);
}

const ROUTES: &str = r#"[service.web]
image = "web"
strategy = { kind = "canary", steps = [25, 100], analysis = { max_p99_latency = "250ms" } }

[route.web]
listen = "127.0.0.1:8080"
service = "web"

[route.web-tls]
listen = "0.0.0.0:8443"
service = "web"
host = "shop.example.com"
path_prefix = "/shop"
timeout = "1m"
tls = { cert = "certs/site.pem", key = "/etc/site.key" }
"#;

#[test]
fn routes_and_their_defaults() {
    let spec = parse(ROUTES, Path::new("deploy/kiln.toml")).unwrap();
    let web = &spec.routes["web"];
    let expected = RouteSpec {
        name: "web".into(),
        listen: "127.0.0.1:8080".parse().unwrap(),
        service: "web".into(),
        host: None,
        path_prefix: None,
        timeout: Duration::from_secs(30),
        tls: None,
        line: 5,
    };
    assert_eq!(web, &expected);
    let tls = &spec.routes["web-tls"];
    assert_eq!(
        (tls.host.as_deref(), tls.path_prefix.as_deref(), tls.timeout),
        (
            Some("shop.example.com"),
            Some("/shop"),
            Duration::from_secs(60)
        )
    );
    assert_eq!(
        tls.tls,
        Some(TlsSpec {
            cert: PathBuf::from("deploy/certs/site.pem"),
            key: PathBuf::from("/etc/site.key"),
        })
    );
}

#[test]
fn routes_round_trip_through_serde_without_lines() {
    let spec = parse(ROUTES, Path::new("kiln.toml")).unwrap();
    let json = serde_json::to_string(&spec.routes).unwrap();
    assert!(!json.contains("\"line\""), "{json}");
    let back: BTreeMap<String, RouteSpec> = serde_json::from_str(&json).unwrap();
    let mut expected = spec.routes.clone();
    for route in expected.values_mut() {
        route.line = 0;
    }
    assert_eq!(back, expected);
}

#[test]
fn strategy_defaults_keep_todays_behaviour() {
    let spec = parse("[service.web]\nimage = \"web\"\n", Path::new("kiln.toml")).unwrap();
    let strategy = &spec.services["web"].strategy;
    assert_eq!(strategy, &Strategy::default());
    assert_eq!(strategy.kind, StrategyKind::Rolling);
    assert_eq!((strategy.max_surge, strategy.max_unavailable), (None, 0));
    assert!(!strategy.analysis.has_thresholds());
    assert!(spec.routes.is_empty());
}

#[test]
fn strategy_fills_what_is_not_written() {
    let spec = parse(ROUTES, Path::new("kiln.toml")).unwrap();
    let strategy = &spec.services["web"].strategy;
    let expected = Strategy {
        kind: StrategyKind::Canary,
        steps: vec![25, 100],
        analysis: Analysis {
            max_p99_latency: Some(Duration::from_millis(250)),
            ..Analysis::default()
        },
        ..Strategy::default()
    };
    assert_eq!(strategy, &expected);
    assert_eq!(strategy.pause, Pause::For(Duration::from_secs(30)));
    assert_eq!(strategy.analysis.min_requests, 50);
    assert!(strategy.analysis.has_thresholds());
}

#[test]
fn strategy_kinds_serialize_as_written() {
    let names: Vec<String> = StrategyKind::ALL
        .iter()
        .map(|kind| serde_json::to_string(kind).unwrap())
        .collect();
    assert_eq!(names, ["\"blue-green\"", "\"canary\"", "\"rolling\""]);
    for kind in StrategyKind::ALL {
        assert_eq!(StrategyKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(serde_json::to_string(&Pause::Manual).unwrap(), "\"manual\"");
}

#[test]
fn a_route_to_a_service_that_has_problems_is_not_reported_twice() {
    let source =
        "[service.web]\nimage = \"Web\"\n[route.web]\nlisten = \"0.0.0.0:80\"\nservice = \"web\"\n";
    let err = parse(source, Path::new("kiln.toml")).unwrap_err();
    assert_eq!(err.diagnostics().len(), 1, "{err}");
}
