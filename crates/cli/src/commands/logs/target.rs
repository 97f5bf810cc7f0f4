//! What `kiln logs TARGET` reads: every log file of a service (instances gone included),
//! or the one file of an instance, under `HOME/logs/<service>/<instance>.log`.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `logs/<service>/`: all its instances' files, including ones that appear later.
    Service(PathBuf),
    /// `logs/<service>/<instance>.log`.
    Instance(PathBuf),
}

impl Target {
    /// A service name if `logs/NAME/` exists, else an instance id with a file under
    /// `logs/*/`.
    pub fn resolve(logs: &Path, name: &str) -> anyhow::Result<Target> {
        if name.is_empty() || name.starts_with('.') || name.contains('/') {
            anyhow::bail!("`{name}` is not a service name or an instance id");
        }
        let service_dir = logs.join(name);
        if service_dir.is_dir() {
            return Ok(Target::Service(service_dir));
        }
        let services = services(logs)?;
        // `<service>-<hex>`: look in its service's directory first.
        let likely = name.rsplit_once('-').map(|(s, _)| s.to_string());
        let order = likely
            .iter()
            .chain(services.iter().filter(|s| Some(*s) != likely.as_ref()));
        for service in order {
            let dir = logs.join(service);
            let current = dir.join(format!("{name}.log"));
            if instance_files(&dir)?.contains(&current) {
                return Ok(Target::Instance(current));
            }
        }
        let known = if services.is_empty() {
            "no service has logs yet".to_string()
        } else {
            let list: Vec<_> = services.into_iter().collect();
            format!("known services: {}", list.join(", "))
        };
        anyhow::bail!("no logs for `{name}` under {}: {known}", logs.display())
    }

    /// The current (`.log`) file of each instance, sorted; rotated files are found from
    /// these with `kiln_runtime::log_files`.
    pub fn current_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        match self {
            Target::Service(dir) => Ok(instance_files(dir)?.into_iter().collect()),
            Target::Instance(path) => Ok(vec![path.clone()]),
        }
    }
}

/// The services with a directory under `logs`.
fn services(logs: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let entries = match std::fs::read_dir(logs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", logs.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", logs.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// `dir/<instance>.log` for each instance with a current or rotated (`.log.N`) file.
fn instance_files(dir: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut files = BTreeSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = match name.rsplit_once('.') {
            Some((stem, n))
                if !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && stem.ends_with(".log") =>
            {
                stem
            }
            _ if name.ends_with(".log") => &name,
            _ => continue,
        };
        files.insert(dir.join(stem));
    }
    Ok(files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn services_and_instances_resolve_to_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("web")).unwrap();
        std::fs::create_dir_all(logs.join("api")).unwrap();
        for f in [
            "web/web-aaaa.log",
            "web/web-bbbb.log.1",
            "web/notes.txt",
            "api/api-cccc.log",
        ] {
            std::fs::write(logs.join(f), "").unwrap();
        }
        let web = Target::resolve(&logs, "web").unwrap();
        assert_eq!(web, Target::Service(logs.join("web")));
        assert_eq!(
            web.current_files().unwrap(),
            [logs.join("web/web-aaaa.log"), logs.join("web/web-bbbb.log")]
        );
        assert_eq!(
            Target::resolve(&logs, "web-bbbb").unwrap(),
            Target::Instance(logs.join("web/web-bbbb.log"))
        );
        assert_eq!(
            Target::resolve(&logs, "api-cccc").unwrap(),
            Target::Instance(logs.join("api/api-cccc.log"))
        );
        let err = Target::resolve(&logs, "db").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "no logs for `db` under {}: known services: api, web",
                logs.display()
            )
        );
        assert!(Target::resolve(&logs, "../etc").is_err());
        let err = Target::resolve(&dir.path().join("none"), "web")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("no service has logs yet"), "{err}");
    }
}
