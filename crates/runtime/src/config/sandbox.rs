//! The `config.json` of a build sandbox bundle.

use std::path::Path;

use serde_json::{Value, json};

use super::{
    MASKED_PATHS, OCI_VERSION, READONLY_PATHS, capabilities, deny_devices, proc_and_dev_mounts,
    sys_mounts,
};
use crate::SandboxSpec;

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
            "capabilities": capabilities(),
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": spec.hostname,
        "mounts": mounts(spec.network, resolv_conf),
        "linux": {
            "resources": { "devices": deny_devices() },
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

/// The mount list; `/tmp` is deliberately not a tmpfs, so that writes there end up in
/// the layer as with `docker build`.
fn mounts(network: bool, resolv_conf: Option<&Path>) -> Vec<Value> {
    let mut mounts = proc_and_dev_mounts();
    mounts.extend(sys_mounts(network));
    if let Some(resolv_conf) = resolv_conf {
        mounts.push(json!({
            "destination": "/etc/resolv.conf", "type": "bind", "source": resolv_conf,
            "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
        }));
    }
    mounts
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::mount_destinations;

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
