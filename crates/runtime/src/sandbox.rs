//! [`Sandbox`]: runs one step in a fresh runc container over an overlay root.

use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::container::Container;
use crate::mountpoints::Mountpoints;
use crate::overlay::Overlay;
use crate::{RuntimeError, SandboxSpec, config, locate};

/// Where the host's resolver configuration lives.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Runs build steps with runc.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The runc binary, if there is one.
    runc: Option<PathBuf>,
    /// Passed as `runc --root`.
    runc_root: PathBuf,
    /// Bundles, overlay work directories and mountpoints go here, one directory a run.
    scratch: PathBuf,
}

impl Sandbox {
    /// A sandbox keeping runc's state in `runc_root` and its bundles in `scratch`, which
    /// must be on the same filesystem as the upper directories it is given. runc is
    /// looked up on `PATH`, then in `/usr/local/sbin`, `/usr/sbin` and `/sbin`.
    pub fn new(runc_root: PathBuf, scratch: PathBuf) -> Sandbox {
        Sandbox {
            runc: locate::find_runc(),
            runc_root,
            scratch,
        }
    }

    /// Runs `spec` to completion; afterwards `spec.upperdir` holds its changes. The
    /// container, the mount and the bundle are gone when this returns, also on error.
    pub fn run(&self, spec: &SandboxSpec) -> Result<(), RuntimeError> {
        spec.validate()?;
        let runc = self.runc.as_deref().ok_or(RuntimeError::RuncMissing)?;
        let bundle = Bundle::create(&self.scratch)?;
        let lowerdirs = if spec.lowerdirs.is_empty() {
            vec![bundle.empty_lower()]
        } else {
            spec.lowerdirs.clone()
        };
        let overlay = Overlay::mount(&lowerdirs, &spec.upperdir, &bundle.work(), &bundle.rootfs())?;
        let resolv_conf = if spec.network {
            host_resolv_conf()
        } else {
            None
        };
        let config = config::sandbox::render(spec, resolv_conf.as_deref());
        let mut targets = config::mount_destinations(&config);
        targets.push(spec.cwd.clone());
        let mountpoints =
            Mountpoints::record(overlay.target(), targets.iter().map(String::as_str))?;
        bundle.write_config(&config)?;

        let outcome = Container::new(runc, &self.runc_root, bundle.id()).run(&bundle, &spec.args);

        // The container is deleted; tear down in order, reporting the step's failure
        // first. On an early return the guards' drops do the same, best effort.
        let cleanup = overlay
            .unmount()
            .and_then(|()| mountpoints.prune(&spec.upperdir))
            .and_then(|()| bundle.remove());
        outcome.and(cleanup)
    }
}

/// The host's resolver configuration with symlinks resolved, if it exists.
fn host_resolv_conf() -> Option<PathBuf> {
    Path::new(HOST_RESOLV_CONF)
        .canonicalize()
        .ok()
        .filter(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runc_is_reported_before_anything_happens() {
        let scratch = std::env::temp_dir().join(format!("kiln-no-runc-{}", std::process::id()));
        let sandbox = Sandbox {
            runc: None,
            runc_root: scratch.join("runc"),
            scratch: scratch.clone(),
        };
        let spec = SandboxSpec {
            lowerdirs: Vec::new(),
            upperdir: scratch.join("upper"),
            args: vec!["true".to_owned()],
            env: Vec::new(),
            cwd: "/".to_owned(),
            user: (0, 0),
            network: false,
            hostname: "kiln".to_owned(),
        };
        let error = sandbox.run(&spec).err();
        assert!(
            matches!(error, Some(RuntimeError::RuncMissing)),
            "{error:?}"
        );
        assert_eq!(
            error.map(|e| e.to_string()).unwrap_or_default(),
            "runc not found: install it (apt-get install -y runc)"
        );
        assert!(!scratch.exists());
    }
}
