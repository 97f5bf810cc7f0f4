//! Pieces of OCI runtime `config.json` shared by build sandboxes and service instances.
//!
//! Close to `runc spec`'s defaults (masked and read-only paths, mounts, device
//! cgroup deny-all with runc's default devices), except that the capabilities are
//! Docker's default set: build steps such as `apt-get install` need to chown files and
//! switch users, which runc's minimal set (kill, audit write, bind service) forbids.
//! There is no seccomp or AppArmor profile (runc's default has none either).

pub(crate) mod sandbox;

use serde_json::{Value, json};

/// The OCI runtime spec version written to `config.json`.
pub(crate) const OCI_VERSION: &str = "1.0.2";

/// Docker's default capability set, granted as bounding, effective and permitted set.
/// No ambient capabilities: a non-root user gets none, as with Docker.
pub(crate) const CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub(crate) const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

pub(crate) const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `process.capabilities`: [`CAPABILITIES`] as bounding, effective and permitted set.
pub(crate) fn capabilities() -> Value {
    json!({
        "bounding": CAPABILITIES,
        "effective": CAPABILITIES,
        "permitted": CAPABILITIES,
    })
}

/// `/proc`, and `/dev` as a tmpfs with `pts`, `shm` and `mqueue` in it.
pub(crate) fn proc_and_dev_mounts() -> Vec<Value> {
    vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc" }),
        json!({
            "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        }),
        json!({
            "destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        }),
        json!({
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        }),
        json!({
            "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        }),
    ]
}

/// `/sys` read-only, then `/sys/fs/cgroup` (the container's own cgroups, read-only).
///
/// sysfs shows the network namespace of whoever mounts it; in the host's network
/// namespace (`host_network`), the host's `/sys` is bound instead, recursively
/// read-only.
pub(crate) fn sys_mounts(host_network: bool) -> Vec<Value> {
    let sys = if host_network {
        json!({
            "destination": "/sys", "type": "bind", "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "rro"],
        })
    } else {
        json!({
            "destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        })
    };
    vec![
        sys,
        json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        }),
    ]
}

/// The device cgroup: deny everything but runc's default devices (which runc adds).
pub(crate) fn deny_devices() -> Value {
    json!([{ "allow": false, "access": "rwm" }])
}

/// The mount destinations of a rendered config, in order.
pub(crate) fn mount_destinations(config: &Value) -> Vec<String> {
    config["mounts"]
        .as_array()
        .map(|mounts| {
            mounts
                .iter()
                .filter_map(|mount| mount["destination"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
