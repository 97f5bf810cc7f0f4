//! Drift: instances that differ from the desired state, observed from the host rather
//! than taken from the database where it can be: the read-only root from the instance's
//! own mount table, the image from the layers its root is really mounted from.

use std::path::PathBuf;

use kiln_state::InstanceState;

use crate::api::types::Drift;
use crate::daemon::Daemon;
use crate::error::ApiError;

pub(crate) fn drift(d: &Daemon) -> Result<Vec<Drift>, ApiError> {
    let rows = d.db().instances()?;
    let desired = d.db().desired()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let rollouts = crate::rollouts::all(d);
    let mut found = Vec::new();
    for row in rows.iter().filter(|r| r.state == InstanceState::Running) {
        let mut push = |field: &str, expected: String, actual: String| {
            found.push(Drift {
                instance: row.id.clone(),
                service: row.service.clone(),
                field: field.to_string(),
                expected,
                actual,
            });
        };
        let Some(want) = desired.iter().find(|s| s.name == row.service) else {
            push("service", "absent".into(), "running".into());
            continue;
        };
        // During a rollout both of its definitions are wanted.
        let in_rollout = rollouts.get(&row.service).is_some_and(|t| {
            !t.done && (row.def_hash == t.stable.def_hash || row.def_hash == t.canary.def_hash)
        });
        if in_rollout {
            // As asked for, for now.
        } else if row.image_digest != want.image_digest {
            push("image", want.image_digest.clone(), row.image_digest.clone());
        } else if row.def_hash != want.def_hash {
            push("definition", want.def_hash.clone(), row.def_hash.clone());
        }
        let alive = crate::launch::row_alive(row);
        let Some(pid) = row.pid.filter(|_| alive) else {
            push("process", "running".into(), "gone".into());
            continue;
        };
        match d.runtime.mount_readonly_check(pid) {
            Ok(true) => {}
            Ok(false) => push("read_only_root", "ro".into(), "rw".into()),
            Err(e) => push("read_only_root", "ro".into(), format!("unknown: {e}")),
        }
        if let Some(actual) = mounted_layers(
            &mounts,
            &d.config.home.join("instances").join(&row.id).join("rootfs"),
        ) && let Ok(digest) = kiln_image::Digest::parse(&row.image_digest)
            && let Ok(expected) = d.store.unpacked_layers(&digest)
        {
            let image_layers: Vec<&PathBuf> = actual
                .iter()
                .filter(|p| p.starts_with(d.store.home().join("layers")) && !is_mountpoints(p))
                .collect();
            if image_layers.len() != expected.len()
                || image_layers.iter().zip(&expected).any(|(a, e)| *a != e)
            {
                push(
                    "image",
                    format!("{} layers of {}", expected.len(), row.image_digest),
                    format!("{} other layers mounted", image_layers.len()),
                );
            }
        }
    }
    Ok(found)
}

fn is_mountpoints(p: &std::path::Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("kiln-"))
}

/// The overlay lowerdirs mounted at `target`, topmost first, from a mountinfo text.
fn mounted_layers(mountinfo: &str, target: &std::path::Path) -> Option<Vec<PathBuf>> {
    let target = target.to_str()?;
    let line = mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(target))?;
    let (_, after) = line.split_once(" - ")?;
    let options = after.split(' ').nth(2)?;
    let lower = options
        .split(',')
        .find_map(|o| o.strip_prefix("lowerdir="))?;
    Some(
        lower
            .split(':')
            .map(|p| PathBuf::from(kiln_runtime::unescape_mountinfo(p)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_come_from_mountinfo() {
        let info = "100 20 0:50 / /k/instances/web-1/rootfs ro,relatime - overlay overlay ro,lowerdir=/k/layers/kiln-mountpoints-1:/k/layers/a\\040b:/k/layers/c\n";
        let got = mounted_layers(info, std::path::Path::new("/k/instances/web-1/rootfs")).unwrap();
        assert_eq!(
            got,
            vec![
                PathBuf::from("/k/layers/kiln-mountpoints-1"),
                PathBuf::from("/k/layers/a b"),
                PathBuf::from("/k/layers/c")
            ]
        );
    }
}
