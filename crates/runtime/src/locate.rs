//! Finding the runc binary.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories searched after `PATH`: runc lives in sbin, which is often not on a
/// non-login `PATH`.
const EXTRA_DIRS: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The first executable `runc` on `PATH`, then in the sbin directories.
pub(crate) fn find_runc() -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("runc"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
