//! Services: what kiln runs from the images, how many, and how it checks them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{ImageRef, Probe, Signal, Strategy};

/// One `[service.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceSpec {
    /// A DNS label: 1-55 of `[a-z0-9-]`, starting with a letter, not ending with `-`.
    pub name: String,
    /// Whether the image exists is not checked here.
    pub image: ImageRef,
    /// 0-1000, default 1.
    pub replicas: u32,
    /// The port the app listens on; kiln sets `$PORT` to it.
    pub port: Option<u16>,
    /// Replaces the image's cmd; never empty. `None`: keep the image's.
    pub args: Option<Vec<String>>,
    /// Never `PORT` nor a name starting with `KILN_`: those are kiln's.
    pub env: BTreeMap<String, String>,
    pub resources: Resources,
    pub stop: StopSpec,
    /// Writable scratch directories: absolute, normalized, not `/`, no duplicates.
    pub tmpfs: Vec<String>,
    /// Targets differ from each other and from `tmpfs`.
    pub volumes: Vec<Volume>,
    /// Gates traffic and rollout progress.
    pub readiness: Option<Probe>,
    /// When it fails, the instance is replaced by a fresh one.
    pub liveness: Option<Probe>,
    /// How a new version replaces the running one; [`Strategy::default`] without a table.
    #[serde(default)]
    pub strategy: Strategy,
    /// 1-based line of the service's table header.
    #[serde(skip)]
    pub line: usize,
    /// 1-based line of the `image` value, for messages about the image.
    #[serde(skip)]
    pub image_line: usize,
}

/// Limits of one instance; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// Bytes, at least 4 MiB.
    pub memory: Option<u64>,
    /// Thousandths of a CPU: 1-1,000,000 (`cpus = 0.5` is 500).
    pub cpu_millis: Option<u32>,
    /// Most processes and threads at once, at least 1.
    pub pids: Option<u32>,
}

/// How an instance is stopped: `signal`, then SIGKILL after `grace`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StopSpec {
    pub signal: Signal,
    /// At most an hour.
    pub grace: Duration,
}

impl Default for StopSpec {
    /// SIGTERM, then 10 seconds.
    fn default() -> Self {
        StopSpec {
            signal: Signal::Term,
            grace: Duration::from_secs(10),
        }
    }
}

/// A host directory mounted into every instance: state that outlives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// Absolute, normalized, without `..`.
    pub host: PathBuf,
    /// Absolute path in the instance, normalized, not `/`.
    pub to: String,
    pub read_only: bool,
    /// Always `true`: the spec refuses a volume not marked external.
    pub external: bool,
}
