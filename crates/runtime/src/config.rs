//! The OCI runtime `config.json` of a sandbox bundle.
//!
//! Close to `runc spec`'s defaults (masked and read-only paths, mounts, device
//! cgroup deny-all with runc's default devices), except that the capabilities are
//! Docker's default set: build steps such as `apt-get install` need to chown files and
//! switch users, which runc's minimal set (kill, audit write, bind service) forbids.
//! There is no seccomp or AppArmor profile (runc's default has none either).

use std::path::Path;

use serde_json::{Value, json};

use crate::SandboxSpec;

/// The OCI runtime spec version written to `config.json`.
const OCI_VERSION: &str = "1.0.2";

/// Docker's default capability set, granted as bounding, effective and permitted set.
/// No ambient capabilities: a non-root user gets none, as with Docker.
const CAPABILITIES: [&str; 14] = [
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

const MASKED_PATHS: [&str; 10] = [
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

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Renders `config.json` for `spec` with the root at `rootfs` (relative to the bundle).
/// `resolv_conf` is the host file bind-mounted at `/etc/resolv.conf`, if any.
pub(crate) fn render(spec: &SandboxSpec, resolv_conf: Option<&Path>) -> Value {
    let mut namespaces = vec![
        json!({ "type": "pid" }),
        json!({ "type": "ipc" }),
        json!({ "type": "uts" }),
        json!({ "type": "mount" }),
    ];
    if !spec.network {
        namespaces.push(json!({ "type": "network" }));
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": spec.user.0, "gid": spec.user.1 },
            "args": spec.args,
            "env": spec.env_with_path(),
            "cwd": spec.cwd,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": spec.hostname,
        "mounts": mounts(spec.network, resolv_conf),
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

/// The mount list; `/tmp` is deliberately not a tmpfs, so that writes there end up in
/// the layer as with `docker build`.
fn mounts(network: bool, resolv_conf: Option<&Path>) -> Vec<Value> {
    let mut mounts = vec![
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
    ];
    if network {
        // sysfs shows the network namespace of whoever mounts it; in the host's
        // namespace, show the host's /sys, recursively read-only.
        mounts.push(json!({
            "destination": "/sys", "type": "bind", "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "rro"],
        }));
    } else {
        mounts.push(json!({
            "destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        }));
    }
    mounts.push(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
    }));
    if let Some(resolv_conf) = resolv_conf {
        mounts.push(json!({
            "destination": "/etc/resolv.conf", "type": "bind", "source": resolv_conf,
            "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
        }));
    }
    mounts
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn spec(network: bool) -> SandboxSpec {
        SandboxSpec {
            lowerdirs: Vec::new(),
            upperdir: PathBuf::from("/tmp/upper"),
            args: vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()],
            env: Vec::new(),
            cwd: "/work".to_owned(),
            user: (1000, 100),
            network,
            hostname: "builder".to_owned(),
        }
    }

    fn namespaces(config: &Value) -> Vec<&str> {
        config["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ns| ns["type"].as_str())
            .collect()
    }

    #[test]
    fn private_network_gets_a_namespace_and_sysfs() {
        let config = render(&spec(false), None);
        assert_eq!(
            namespaces(&config),
            ["pid", "ipc", "uts", "mount", "network"]
        );
        let sys = &config["mounts"][5];
        assert_eq!(sys["destination"], "/sys");
        assert_eq!(sys["type"], "sysfs");
        assert_eq!(
            mount_destinations(&config),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
    }

    #[test]
    fn host_network_binds_sys_and_resolv_conf() {
        let config = render(&spec(true), Some(Path::new("/etc/resolv.conf")));
        assert_eq!(namespaces(&config), ["pid", "ipc", "uts", "mount"]);
        assert_eq!(config["mounts"][5]["type"], "bind");
        let last = &config["mounts"][7];
        assert_eq!(last["destination"], "/etc/resolv.conf");
        assert_eq!(last["source"], "/etc/resolv.conf");
    }

    #[test]
    fn process_follows_the_spec() {
        let config = render(&spec(false), None);
        let process = &config["process"];
        assert_eq!(process["args"], json!(["sh", "-c", "true"]));
        assert_eq!(
            process["env"],
            json!([format!("PATH={}", crate::DEFAULT_PATH)])
        );
        assert_eq!(process["cwd"], "/work");
        assert_eq!(process["user"], json!({ "uid": 1000, "gid": 100 }));
        assert_eq!(process["terminal"], false);
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(config["hostname"], "builder");
        assert_eq!(
            config["root"],
            json!({ "path": "rootfs", "readonly": false })
        );
        assert!(process["capabilities"].get("ambient").is_none());
    }
}
