//! The `config.json` of an instance bundle.
//!
//! Shares the sandbox's capabilities, masked and read-only paths; differs in that the
//! root is read-only, the network is the host's, the service gets tmpfs and bind mounts,
//! cgroup limits under `/kiln/<id>`, and a high open-files limit.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::InstanceSpec;
use super::validate::{Checked, INSTANCE_JSON};
use crate::config::{
    MASKED_PATHS, OCI_VERSION, READONLY_PATHS, capabilities, deny_devices, proc_and_dev_mounts,
    sys_mounts,
};

/// `RLIMIT_NOFILE` wanted for services (the kernel's default `fs.nr_open`).
pub(crate) const NOFILE: u64 = 1_048_576;

/// The CFS period; the quota is `cpu_millis` thousandths of it.
const CPU_PERIOD: u64 = 100_000;

/// Renders `config.json` (root at `rootfs` in the bundle). `instance_json` is the host
/// file mounted at `/run/kiln/instance.json`; `host_files` are host files (such as
/// `/etc/resolv.conf`) bind-mounted read-only at the same path. `nofile` is the open
/// files limit (soft and hard), normally [`NOFILE`].
pub(crate) fn render(
    spec: &InstanceSpec,
    checked: &Checked,
    instance_json: &Path,
    host_files: &[(String, PathBuf)],
    nofile: u64,
) -> Value {
    let mut mounts = proc_and_dev_mounts();
    // No network namespace: the host's network, so the host's /sys.
    mounts.extend(sys_mounts(true));
    mounts.extend(user_mounts(checked));
    mounts.push(read_only_file(INSTANCE_JSON, instance_json));
    for (destination, source) in host_files {
        mounts.push(read_only_file(destination, source));
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": spec.user.0, "gid": spec.user.1 },
            "args": spec.args,
            "env": spec.env,
            "cwd": checked.cwd,
            "capabilities": capabilities(),
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": spec.hostname,
        "mounts": mounts,
        "annotations": {
            "org.kiln.service": spec.service,
            "org.kiln.image": spec.image_digest,
        },
        "linux": {
            "cgroupsPath": format!("/kiln/{}", spec.id),
            "resources": resources(spec),
            "namespaces": [
                { "type": "pid" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

/// tmpfs and binds, parents before children so that a bind may sit in a tmpfs.
fn user_mounts(checked: &Checked) -> Vec<Value> {
    let mut mounts: Vec<(usize, Value)> = Vec::new();
    for path in &checked.tmpfs {
        mounts.push((
            depth(path),
            json!({
                "destination": path, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            }),
        ));
    }
    for bind in &checked.binds {
        let mut options = vec!["rbind", "nosuid", "nodev"];
        if bind.read_only {
            options.push("ro");
        }
        mounts.push((
            depth(&bind.to),
            json!({
                "destination": bind.to, "type": "bind", "source": bind.host,
                "options": options,
            }),
        ));
    }
    mounts.sort_by_key(|(depth, _)| *depth);
    mounts.into_iter().map(|(_, mount)| mount).collect()
}

fn read_only_file(destination: &str, source: &Path) -> Value {
    json!({
        "destination": destination, "type": "bind", "source": source,
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    })
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|part| !part.is_empty()).count()
}

fn resources(spec: &InstanceSpec) -> Value {
    let mut resources = json!({ "devices": deny_devices() });
    let limits = &spec.limits;
    if let Some(memory) = limits.memory {
        let memory = i64::try_from(memory).unwrap_or(i64::MAX);
        resources["memory"] = json!({ "limit": memory, "swap": memory });
    }
    if let Some(millis) = limits.cpu_millis {
        resources["cpu"] = json!({ "quota": i64::from(millis) * 100, "period": CPU_PERIOD });
    }
    if let Some(pids) = limits.pids {
        resources["pids"] = json!({ "limit": pids });
    }
    resources
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Limits;
    use crate::config::mount_destinations;
    use crate::instance::validate::{check, tests::spec};

    #[test]
    fn root_is_read_only_and_the_network_the_hosts() {
        let spec = spec();
        let config = render(
            &spec,
            &check(&spec).unwrap(),
            Path::new("/i/instance.json"),
            &[],
            NOFILE,
        );
        assert_eq!(
            config["root"],
            json!({ "path": "rootfs", "readonly": true })
        );
        let namespaces: Vec<_> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["type"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces, ["pid", "ipc", "uts", "mount"]);
        assert_eq!(config["linux"]["cgroupsPath"], "/kiln/web-3f9a1c2b");
        assert_eq!(config["annotations"]["org.kiln.service"], "web");
        assert_eq!(config["annotations"]["org.kiln.image"], "sha256:abc");
        assert_eq!(config["process"]["cwd"], "/srv/app");
        assert_eq!(config["process"]["env"], json!(["PATH=/bin"]));
        assert_eq!(config["process"]["rlimits"][0]["hard"], 1_048_576);
        assert!(config["linux"]["resources"].get("memory").is_none());
    }

    #[test]
    fn mounts_come_in_order() {
        let mut spec = spec();
        spec.tmpfs = vec!["/data".to_owned()];
        let hosts = [("/etc/hosts".to_owned(), PathBuf::from("/etc/hosts"))];
        let config = render(
            &spec,
            &check(&spec).unwrap(),
            Path::new("/i/instance.json"),
            &hosts,
            NOFILE,
        );
        assert_eq!(
            mount_destinations(&config),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/data",
                "/tmp",
                "/data/name",
                "/run/kiln/instance.json",
                "/etc/hosts",
            ]
        );
        let bind = &config["mounts"][9];
        assert_eq!(bind["options"], json!(["rbind", "nosuid", "nodev", "ro"]));
        assert_eq!(config["mounts"][10]["source"], "/i/instance.json");
        assert_eq!(
            config["mounts"][8]["options"],
            json!(["nosuid", "nodev", "mode=1777"])
        );
    }

    #[test]
    fn limits_become_cgroup_resources() {
        let mut spec = spec();
        spec.limits = Limits {
            memory: Some(64 << 20),
            cpu_millis: Some(500),
            pids: Some(100),
        };
        let config = render(&spec, &check(&spec).unwrap(), Path::new("/i"), &[], NOFILE);
        let resources = &config["linux"]["resources"];
        assert_eq!(
            resources["memory"],
            json!({ "limit": 67_108_864, "swap": 67_108_864 })
        );
        assert_eq!(
            resources["cpu"],
            json!({ "quota": 50_000, "period": 100_000 })
        );
        assert_eq!(resources["pids"], json!({ "limit": 100 }));
        assert_eq!(
            resources["devices"],
            json!([{ "allow": false, "access": "rwm" }])
        );
    }
}
