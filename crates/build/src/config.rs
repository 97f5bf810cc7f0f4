//! The image config a spec produces: the base's config with the spec's settings on top.

use kiln_image::oci::{ContainerConfig, History, ImageConfig, RootFs};
use kiln_spec::ImageSpec;

/// The OCI architecture name of this machine.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// RFC 3339 UTC time for seconds since the epoch (no leap seconds, as in Unix time).
pub fn rfc3339(epoch: u64) -> String {
    kiln_runtime::rfc3339_secs(i64::try_from(epoch).unwrap_or(i64::MAX))
}

/// A config with no layers, for `scratch`.
pub fn scratch() -> ImageConfig {
    ImageConfig {
        created: None,
        author: None,
        architecture: host_architecture().to_string(),
        os: "linux".to_string(),
        config: ContainerConfig::default(),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        },
        history: Vec::new(),
    }
}

/// Applies the spec's execution settings on top of `base` (whose layers and history the
/// builder extends separately). Env is merged by key, labels by key; an entrypoint set
/// without a cmd clears the base's cmd, as image tools conventionally do.
pub fn apply(base: &ContainerConfig, spec: &ImageSpec) -> ContainerConfig {
    let mut c = base.clone();
    if !spec.env.is_empty() {
        let mut env: Vec<String> = c.env.take().unwrap_or_default();
        for (k, v) in &spec.env {
            let prefix = format!("{k}=");
            env.retain(|e| !e.starts_with(&prefix));
            env.push(format!("{k}={v}"));
        }
        c.env = Some(env);
    }
    if let Some(ep) = &spec.entrypoint {
        c.entrypoint = Some(ep.clone());
        if spec.cmd.is_none() {
            c.cmd = None;
        }
    }
    if let Some(cmd) = &spec.cmd {
        c.cmd = Some(cmd.clone());
    }
    if let Some(w) = &spec.workdir {
        c.working_dir = Some(w.clone());
    }
    if let Some(u) = &spec.user {
        c.user = Some(u.clone());
    }
    if !spec.labels.is_empty() {
        let mut labels = c.labels.take().unwrap_or_default();
        labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        c.labels = Some(labels);
    }
    if !spec.expose.is_empty() {
        let mut ports = c.exposed_ports.take().unwrap_or_default();
        for p in &spec.expose {
            ports.insert(format!("{p}/tcp"), serde_json::Map::new());
        }
        c.exposed_ports = Some(ports);
    }
    c
}

/// The environment a RUN step sees: the image's env, with a default PATH.
pub fn run_env(c: &ContainerConfig) -> Vec<String> {
    let mut env = c.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", kiln_runtime::DEFAULT_PATH));
    }
    env
}

/// Parses the numeric `UID[:GID]` a RUN step runs as.
pub fn numeric_user(user: Option<&str>) -> Option<(u32, u32)> {
    let Some(user) = user else {
        return Some((0, 0));
    };
    match user.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => {
            let u = user.parse().ok()?;
            Some((u, u))
        }
    }
}

/// One history record per layer, reproducible (created = the epoch).
pub fn history(created: &str, created_by: String) -> History {
    History {
        created: Some(created.to_string()),
        created_by: Some(created_by),
        comment: Some("kiln".to_string()),
        empty_layer: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn numeric_users_parse_and_names_do_not() {
        assert_eq!(numeric_user(None), Some((0, 0)));
        assert_eq!(numeric_user(Some("1000:100")), Some((1000, 100)));
        assert_eq!(numeric_user(Some("33")), Some((33, 33)));
        assert_eq!(numeric_user(Some("www-data")), None);
    }
}
