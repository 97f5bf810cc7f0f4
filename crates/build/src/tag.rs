//! The default tag: the git short commit of the context (`-dirty` when it has changes),
//! `latest` outside git.

use std::path::Path;
use std::process::{Command, Stdio};

pub fn default_tag(context: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(context)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty()) else {
        return "latest".to_string();
    };
    match git(&["status", "--porcelain", "--", "."]) {
        Some(changes) if changes.is_empty() => commit,
        _ => format!("{commit}-dirty"),
    }
}
