//! What to run in the sandbox: [`SandboxSpec`].

use std::path::PathBuf;

use crate::RuntimeError;

/// `PATH` given to a step whose environment has none (the same as Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One step to run in a fresh sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Unpacked, overlay-ready layer directories, topmost first (overlay `lowerdir`
    /// order). Empty for a `scratch` image.
    pub lowerdirs: Vec<PathBuf>,
    /// An existing empty directory; after the run it holds the step's changes. It must
    /// be on the same filesystem as the sandbox's scratch directory.
    pub upperdir: PathBuf,
    /// Exec form; `args[0]` is looked up by runc in the container using `PATH` from `env`.
    pub args: Vec<String>,
    /// `K=V` entries; [`DEFAULT_PATH`] is added when there is no `PATH`.
    pub env: Vec<String>,
    /// Absolute working directory; runc creates it when missing.
    pub cwd: String,
    /// uid and gid the step runs as.
    pub user: (u32, u32),
    /// false: a private network namespace with only loopback. true: the host's network
    /// namespace, with the host's `/etc/resolv.conf` bind-mounted read-only.
    pub network: bool,
    /// Hostname inside the sandbox's own UTS namespace.
    pub hostname: String,
}

impl SandboxSpec {
    /// Rejects specs runc would refuse or misinterpret.
    pub(crate) fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |what: String| Err(RuntimeError::InvalidSpec { what });
        if self.args.is_empty() {
            return invalid("no command to run".to_owned());
        }
        if !self.cwd.starts_with('/') {
            return invalid(format!("working directory {:?} is not absolute", self.cwd));
        }
        if let Some(bad) = self.env.iter().find(|kv| !kv.contains('=')) {
            return invalid(format!("environment entry {bad:?} is not K=V"));
        }
        Ok(())
    }

    /// The environment of the step: `env`, plus [`DEFAULT_PATH`] when it has no `PATH`.
    pub(crate) fn env_with_path(&self) -> Vec<String> {
        let mut env = self.env.clone();
        if !env.iter().any(|kv| kv.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            lowerdirs: Vec::new(),
            upperdir: PathBuf::from("/tmp/upper"),
            args: vec!["true".to_owned()],
            env: vec!["A=1".to_owned()],
            cwd: "/".to_owned(),
            user: (0, 0),
            network: false,
            hostname: "kiln".to_owned(),
        }
    }

    #[test]
    fn default_path_is_added_only_when_missing() {
        let mut s = spec();
        assert_eq!(
            s.env_with_path(),
            vec!["A=1".to_owned(), format!("PATH={DEFAULT_PATH}")]
        );
        s.env.push("PATH=/bin".to_owned());
        assert_eq!(
            s.env_with_path(),
            vec!["A=1".to_owned(), "PATH=/bin".to_owned()]
        );
    }

    #[test]
    fn validation_rejects_bad_specs() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.args.clear();
        assert!(matches!(
            s.validate(),
            Err(RuntimeError::InvalidSpec { .. })
        ));
        let mut s = spec();
        s.cwd = "work".to_owned();
        assert!(matches!(
            s.validate(),
            Err(RuntimeError::InvalidSpec { .. })
        ));
        let mut s = spec();
        s.env.push("NOEQUALS".to_owned());
        assert!(matches!(
            s.validate(),
            Err(RuntimeError::InvalidSpec { .. })
        ));
    }
}
