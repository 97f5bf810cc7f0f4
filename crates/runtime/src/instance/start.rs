//! [`Instances::start`](super::Instances::start): the bundle, the read-only root, and
//! handing the container over to a shim.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::dir::InstanceDir;
use super::image::{Found, Image};
use super::layer::{Kind, Layer};
use super::shim::{ShimConfig, ShimReport};
use super::validate::{self, Checked, INSTANCE_JSON};
use super::{InstanceSpec, Instances, Started, config, procfs, stop};
use crate::{Overlay, RuntimeError};

/// How long the shim has to start the container and report.
const SHIM_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Host files bind-mounted read-only when the image has them (they are never created).
const HOST_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// Mountpoints of every instance, besides its tmpfs, binds and working directory.
const FIXED_MOUNTPOINTS: [&str; 8] = [
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/run",
    "/run/kiln",
];

/// SIGKILL, to undo a failed start.
const SIGKILL: i32 = 9;

pub(super) fn start(instances: &Instances, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
    let checked = validate::check(spec)?;
    let dir = instances.dir(&spec.id);
    match fs::create_dir(dir.path()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(RuntimeError::InstanceExists {
                id: spec.id.clone(),
                dir: dir.path().to_owned(),
            });
        }
        Err(e) => return Err(RuntimeError::io(dir.path(), e)),
    }
    prepare_and_run(instances, spec, &checked, &dir).map_err(|error| {
        match stop::stop(instances, &spec.id, SIGKILL, Duration::ZERO) {
            Ok(()) => error,
            Err(cleanup) => RuntimeError::Cleanup {
                error: Box::new(error),
                cleanup: Box::new(cleanup),
            },
        }
    })
}

fn prepare_and_run(
    instances: &Instances,
    spec: &InstanceSpec,
    checked: &Checked,
    dir: &InstanceDir,
) -> Result<Started, RuntimeError> {
    let bootstrap =
        serde_json::to_vec_pretty(&spec.bootstrap).expect("a JSON value always serialises");
    write_file(&dir.instance_json(), &bootstrap, 0o644)?;

    let image = Image::new(&spec.lowerdirs);
    let layer = Layer::plan(&image, &mountpoints(checked), &spec.id)?
        .materialise(&instances.layers_dir())?;
    let mut lowerdirs = vec![layer];
    lowerdirs.extend(spec.lowerdirs.iter().cloned());
    if lowerdirs.len() < 2 {
        // Without an upper directory, overlayfs needs two lower ones.
        create_dir(&dir.empty_lower())?;
        lowerdirs.push(dir.empty_lower());
    }
    create_dir(&dir.rootfs())?;
    Overlay::mount_read_only(&lowerdirs, &dir.rootfs())?.leave_mounted();

    let nofile = procfs::allowed_nofile(config::NOFILE);
    let config = config::render(
        spec,
        checked,
        &dir.instance_json(),
        &host_files(&image),
        nofile,
    );
    let config = serde_json::to_vec_pretty(&config).expect("a JSON value always serialises");
    write_file(&dir.config_json(), &config, 0o600)?;
    let runc = instances.runc();
    let shim = ShimConfig {
        id: spec.id.clone(),
        runc: runc.bin().to_owned(),
        runc_root: runc.root().to_owned(),
        service: spec.service.clone(),
        image: spec.image_digest.clone(),
        log: spec.log.clone(),
    };
    let shim = serde_json::to_vec_pretty(&shim).expect("the shim config always serialises");
    write_file(&dir.shim_json(), &shim, 0o600)?;
    run_shim(&instances.shim_exe, &spec.id, dir)
}

/// Every path the root must have for runc to mount on: directories, except the
/// bootstrap file and binds of files.
fn mountpoints(checked: &Checked) -> Vec<(String, Kind)> {
    let mut needed: Vec<(String, Kind)> = FIXED_MOUNTPOINTS
        .iter()
        .map(|path| ((*path).to_owned(), Kind::Dir))
        .collect();
    needed.push((INSTANCE_JSON.to_owned(), Kind::File));
    needed.extend(checked.tmpfs.iter().map(|path| (path.clone(), Kind::Tmpfs)));
    needed.extend(checked.binds.iter().map(|bind| {
        let kind = if bind.file { Kind::File } else { Kind::Dir };
        (bind.to.clone(), kind)
    }));
    needed.push((checked.cwd.clone(), Kind::Dir));
    needed
}

/// The [`HOST_FILES`] that both the image and the host have, with the host's path
/// (symlinks resolved).
fn host_files(image: &Image<'_>) -> Vec<(String, PathBuf)> {
    HOST_FILES
        .iter()
        .filter(|path| {
            image
                .resolve(path)
                .is_ok_and(|resolved| resolved.found == Some(Found::NotDir))
        })
        .filter_map(|path| {
            let host = Path::new(path)
                .canonicalize()
                .ok()
                .filter(|host| host.is_file())?;
            Some(((*path).to_owned(), host))
        })
        .collect()
}

/// Spawns `SHIM_EXE __shim DIR` and waits for its report; a background thread reaps it.
fn run_shim(shim_exe: &Path, id: &str, dir: &InstanceDir) -> Result<Started, RuntimeError> {
    let failed = |message: String| RuntimeError::Start {
        id: id.to_owned(),
        message,
    };
    let shim_log = File::create(dir.shim_log()).map_err(|e| RuntimeError::io(dir.shim_log(), e))?;
    let mut child = Command::new(shim_exe)
        .arg("__shim")
        .arg(dir.path())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(shim_log)
        .spawn()
        .map_err(|e| failed(format!("run the shim {}: {e}", shim_exe.display())))?;
    let stdout = child.stdout.take().expect("the shim's stdout is piped");
    let (sender, receiver) = mpsc::channel();
    let reader = thread::Builder::new()
        .name("kiln-shim-report".to_owned())
        .spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = sender.send(read);
        });
    let outcome = match reader {
        Err(e) => {
            let _ = child.kill();
            Err(failed(format!("wait for the shim: {e}")))
        }
        Ok(_) => match receiver.recv_timeout(SHIM_REPORT_TIMEOUT) {
            Ok(Ok(line)) => parse_report(&line, dir).map_err(failed),
            Ok(Err(e)) => Err(failed(format!("read the shim's report: {e}"))),
            Err(_) => {
                // With the runc run it may still be in: the whole group of the shim.
                if let Some(start) = procfs::process_start_time(child.id()) {
                    procfs::kill_leader_and_group(child.id(), start);
                }
                let _ = child.kill();
                Err(failed(format!(
                    "the shim did not report within {} s",
                    SHIM_REPORT_TIMEOUT.as_secs()
                )))
            }
        },
    };
    reap_in_background(child);
    outcome
}

fn parse_report(line: &str, dir: &InstanceDir) -> Result<Started, String> {
    if line.trim().is_empty() {
        let log = fs::read_to_string(dir.shim_log()).unwrap_or_default();
        return Err(format!("the shim exited without reporting: {}", log.trim()));
    }
    match serde_json::from_str::<ShimReport>(line) {
        Ok(ShimReport::Started(started)) => Ok(started),
        Ok(ShimReport::Failed { error }) => Err(error),
        Err(_) => Err(format!("the shim reported {:?}", line.trim())),
    }
}

/// Waits for the shim in a thread of its own, so that it leaves no zombie while this
/// process lives (it exits when its container does).
fn reap_in_background(mut child: Child) {
    let _ = thread::Builder::new()
        .name("kiln-shim-reaper".to_owned())
        .spawn(move || {
            let _ = child.wait();
        });
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), RuntimeError> {
    fs::write(path, contents)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| RuntimeError::io(path, e))
}

fn create_dir(path: &Path) -> Result<(), RuntimeError> {
    fs::create_dir(path).map_err(|e| RuntimeError::io(path, e))
}
