//! Checking an [`InstanceSpec`] into the mounts that will be made.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::InstanceSpec;
use crate::RuntimeError;

/// Longest instance id: runc accepts more, but ids name cgroups and directories.
const MAX_ID_LEN: usize = 64;

/// Always a tmpfs.
const TMP: &str = "/tmp";

/// Where the bootstrap document appears inside the instance.
pub(crate) const INSTANCE_JSON: &str = "/run/kiln/instance.json";

/// Destinations kiln mounts itself: user mounts may not be at or under them.
const RESERVED: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The mounts of a valid spec, destinations normalised (`/a/b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// tmpfs destinations, `/tmp` included.
    pub(crate) tmpfs: Vec<String>,
    pub(crate) binds: Vec<CheckedBind>,
    /// The working directory, normalised.
    pub(crate) cwd: String,
}

/// A bind whose host side exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedBind {
    pub(crate) host: PathBuf,
    pub(crate) to: String,
    pub(crate) read_only: bool,
    /// The host side is a file (or other non-directory), so the mountpoint must be one.
    pub(crate) file: bool,
}

/// Whether `id` can name an instance: `[a-z0-9-]{1,64}`, starting with a letter or digit.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Rejects an id that cannot name an instance.
pub(crate) fn id(id: &str) -> Result<(), RuntimeError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(RuntimeError::InvalidInstance {
            id: id.to_owned(),
            what: format!(
                "the id must be 1 to {MAX_ID_LEN} characters of a-z, 0-9 and '-', not starting with '-'"
            ),
        })
    }
}

/// `/a/./b//` → `/a/b`; `None` when not absolute or when it has `..`.
pub(crate) fn normalise(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            part => parts.push(part),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Checks `spec`, reading only the bind sources' types.
pub(crate) fn check(spec: &InstanceSpec) -> Result<Checked, RuntimeError> {
    id(&spec.id)?;
    let invalid = |what: String| RuntimeError::InvalidInstance {
        id: spec.id.clone(),
        what,
    };
    if spec.args.is_empty() {
        return Err(invalid("no command to run".to_owned()));
    }
    if let Some(bad) = spec.env.iter().find(|kv| !kv.contains('=')) {
        return Err(invalid(format!("environment entry {bad:?} is not K=V")));
    }
    let cwd = normalise(&spec.cwd).ok_or_else(|| {
        invalid(format!(
            "working directory {:?} is not an absolute path without '..'",
            spec.cwd
        ))
    })?;
    if spec.log.max_bytes == 0 {
        return Err(invalid("log max_bytes must be more than 0".to_owned()));
    }
    for lower in &spec.lowerdirs {
        if !lower.is_dir() {
            return Err(invalid(format!(
                "layer directory {} does not exist",
                lower.display()
            )));
        }
    }

    let mut seen = BTreeSet::new();
    let mut destination = |path: &str, what: &str| -> Result<String, RuntimeError> {
        let clean = normalise(path)
            .filter(|clean| clean != "/")
            .ok_or_else(|| {
                invalid(format!(
                    "{what} {path:?} is not an absolute path below / without '..'"
                ))
            })?;
        let reserved = RESERVED
            .iter()
            .any(|r| clean == *r || clean.starts_with(&format!("{r}/")));
        if reserved || clean == INSTANCE_JSON {
            return Err(invalid(format!("{what} {path:?} is reserved for kiln")));
        }
        if !seen.insert(clean.clone()) {
            return Err(invalid(format!("{clean} is mounted twice")));
        }
        Ok(clean)
    };

    let mut tmpfs = Vec::new();
    for path in &spec.tmpfs {
        tmpfs.push(destination(path, "tmpfs")?);
    }
    if !tmpfs.iter().any(|path| path == TMP) {
        tmpfs.push(destination(TMP, "tmpfs")?);
    }
    let mut binds = Vec::new();
    for bind in &spec.binds {
        let to = destination(&bind.to, "bind destination")?;
        if !bind.host.is_absolute() {
            return Err(invalid(format!(
                "bind source {} is not absolute",
                bind.host.display()
            )));
        }
        let meta = bind
            .host
            .metadata()
            .map_err(|e| invalid(format!("bind source {}: {e}", bind.host.display())))?;
        binds.push(CheckedBind {
            host: bind.host.clone(),
            to,
            read_only: bind.read_only,
            file: !meta.is_dir(),
        });
    }
    Ok(Checked { tmpfs, binds, cwd })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::{Bind, Limits, LogConfig};

    pub(crate) fn spec() -> InstanceSpec {
        InstanceSpec {
            id: "web-3f9a1c2b".to_owned(),
            service: "web".to_owned(),
            image_digest: "sha256:abc".to_owned(),
            lowerdirs: Vec::new(),
            args: vec!["httpd".to_owned()],
            env: vec!["PATH=/bin".to_owned()],
            cwd: "/srv/app/".to_owned(),
            user: (1000, 1000),
            hostname: "web".to_owned(),
            tmpfs: vec!["/var/cache".to_owned()],
            binds: vec![Bind {
                host: PathBuf::from("/etc/hostname"),
                to: "/data/name".to_owned(),
                read_only: true,
            }],
            limits: Limits::default(),
            bootstrap: serde_json::json!({ "id": "web-3f9a1c2b" }),
            log: LogConfig {
                path: PathBuf::from("/tmp/web.log"),
                max_bytes: 1 << 20,
                keep: 3,
            },
        }
    }

    #[test]
    fn ids_are_restricted() {
        assert!(valid_id("web-3f9a1c2b"));
        for bad in ["", "-web", "Web", "web/x", "web.1", "..", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise("/a/./b//").as_deref(), Some("/a/b"));
        assert_eq!(normalise("/").as_deref(), Some("/"));
        assert_eq!(normalise("a/b"), None);
        assert_eq!(normalise("/a/../b"), None);
    }

    #[test]
    fn a_valid_spec_gets_tmp_and_typed_binds() {
        let checked = check(&spec()).unwrap();
        assert_eq!(checked.tmpfs, ["/var/cache", "/tmp"]);
        assert_eq!(checked.cwd, "/srv/app");
        assert_eq!(checked.binds.len(), 1);
        assert!(checked.binds[0].file);
        let mut s = spec();
        s.tmpfs.push("/tmp/".to_owned());
        assert_eq!(check(&s).unwrap().tmpfs, ["/var/cache", "/tmp"]);
    }

    #[test]
    fn bad_specs_are_rejected_with_the_reason() {
        type Change = fn(&mut InstanceSpec);
        let cases: [(Change, &str); 7] = [
            (|s| s.args.clear(), "no command"),
            (|s| s.cwd = "app".to_owned(), "working directory"),
            (|s| s.env.push("X".to_owned()), "not K=V"),
            (|s| s.tmpfs.push("/proc/x".to_owned()), "reserved"),
            (|s| s.tmpfs.push("/data/name".to_owned()), "mounted twice"),
            (
                |s| s.binds[0].host = PathBuf::from("/nonexistent/x"),
                "/nonexistent/x",
            ),
            (|s| s.id = "Bad".to_owned(), "the id must be"),
        ];
        for (change, expected) in cases {
            let mut s = spec();
            change(&mut s);
            let error = check(&s).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
