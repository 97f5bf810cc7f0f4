//! Where kiln keeps its data when neither --home nor KILN_HOME says.

use std::path::PathBuf;

/// `/var/lib/kiln` as root; otherwise `$XDG_DATA_HOME/kiln` or `~/.local/share/kiln`.
pub fn default_home() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("kiln");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/kiln")
}
