//! Turns a directory tree on the host into layer entries, in the one order layers use.
//!
//! Used for context copies (modes normalized the way git does, owner from the step),
//! copies out of another image, RUN step output (overlay upper dirs, whose whiteouts and
//! opaque directories become OCI ones), and `rootfs:` bases (kept exactly).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use kiln_image::{EntryKind, FileSource, LayerEntry};

use crate::BuildError;

/// How entries get their metadata.
#[derive(Debug, Clone, Copy)]
pub enum Ownership {
    /// Keep mode, uid and gid from the file (image contents, RUN output, rootfs bases).
    Keep,
    /// Context files: mode 0755 or 0644 by the owner's exec bit (umask and checkout do
    /// not matter), directories 0755, the given owner; `mode` overrides files' mode.
    Normalize {
        mode: Option<u32>,
        owner: (u32, u32),
    },
}

/// What a walk collects.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    pub ownership: Ownership,
    /// Overlay upper dirs: char devices 0:0 are whiteouts, `trusted.overlay.opaque` marks
    /// opaque directories.
    pub overlay_upper: bool,
    /// The mtime given to every entry, or `None` to keep the file's (the layer writer
    /// clamps it to SOURCE_DATE_EPOCH).
    pub mtime: Option<u64>,
}

/// Walks `src` (not following symlinks) and appends entries for it at layer path `dest`
/// (relative, may be empty for the root) and everything below it.
/// `keep` is asked about every path below `src` (not `src` itself) and can exclude it
/// (for `.kilnignore`).
pub fn walk(
    src: &Path,
    dest: &str,
    opts: &WalkOptions,
    keep: &dyn Fn(&Path, bool) -> bool,
    out: &mut Vec<LayerEntry>,
) -> Result<(), BuildError> {
    let mut links = HashMap::new();
    let meta = fs::symlink_metadata(src).map_err(BuildError::io(src))?;
    walk_inner(src, meta, dest, opts, keep, out, &mut links)
}

fn walk_inner(
    src: &Path,
    meta: fs::Metadata,
    dest: &str,
    opts: &WalkOptions,
    keep: &dyn Fn(&Path, bool) -> bool,
    out: &mut Vec<LayerEntry>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<(), BuildError> {
    if let Some(entry) = entry_for(src, dest, &meta, opts, links)? {
        out.push(entry);
    }
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(BuildError::io(src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(BuildError::io(src))?;
        names.sort();
        for name in names {
            let Some(name_str) = name.to_str() else {
                return Err(BuildError::Other(format!(
                    "{}: file name is not valid UTF-8",
                    src.join(&name).display()
                )));
            };
            let child_dest = if dest.is_empty() {
                name_str.to_string()
            } else {
                format!("{dest}/{name_str}")
            };
            let child = src.join(&name);
            let child_meta = fs::symlink_metadata(&child).map_err(BuildError::io(&child))?;
            if !keep(&child, child_meta.is_dir()) {
                continue;
            }
            walk_inner(&child, child_meta, &child_dest, opts, keep, out, links)?;
        }
    }
    Ok(())
}

fn entry_for(
    src: &Path,
    dest: &str,
    meta: &fs::Metadata,
    opts: &WalkOptions,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<Option<LayerEntry>, BuildError> {
    let ft = meta.file_type();
    let (mut mode, uid, gid) = match opts.ownership {
        Ownership::Keep => (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        Ownership::Normalize { mode, owner } => {
            let m = if ft.is_dir() {
                0o755
            } else if ft.is_symlink() {
                0o777
            } else if let Some(m) = mode {
                m
            } else if meta.mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            };
            (m, owner.0, owner.1)
        }
    };
    let kind = if ft.is_dir() {
        let opaque = opts.overlay_upper && kiln_runtime::is_opaque(src);
        EntryKind::Dir { opaque }
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(BuildError::io(src))?;
        let Some(target) = target.to_str() else {
            return Err(BuildError::Other(format!(
                "{}: symlink target is not valid UTF-8",
                src.display()
            )));
        };
        mode = 0o777;
        EntryKind::Symlink {
            target: target.to_string(),
        }
    } else if ft.is_file() {
        let keep_links = matches!(opts.ownership, Ownership::Keep);
        if keep_links && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                return Ok(Some(LayerEntry {
                    path: dest.to_string(),
                    kind: EntryKind::Hardlink {
                        target: first.clone(),
                    },
                    mode,
                    uid,
                    gid,
                    mtime: opts.mtime.unwrap_or(mtime_of(meta)),
                }));
            }
            links.insert(key, dest.to_string());
        }
        EntryKind::File {
            source: FileSource::Path {
                path: src.to_path_buf(),
                size: meta.len(),
            },
        }
    } else if opts.overlay_upper && ft.is_char_device() && meta.rdev() == 0 {
        EntryKind::Whiteout
    } else if ft.is_fifo() {
        return Err(BuildError::Other(format!(
            "{}: named pipes are not supported in images",
            src.display()
        )));
    } else {
        return Err(BuildError::Other(format!(
            "{}: device nodes and sockets cannot go into an image",
            src.display()
        )));
    };
    if dest.is_empty() {
        // The layer root itself has no entry.
        return Ok(None);
    }
    Ok(Some(LayerEntry {
        path: dest.to_string(),
        kind,
        mode,
        uid,
        gid,
        mtime: opts.mtime.unwrap_or(mtime_of(meta)),
    }))
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn normalized_walk_ignores_host_modes_and_owners() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ctx");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/run.sh"), b"x").unwrap();
        fs::set_permissions(root.join("sub/run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(root.join("a.txt"), b"y").unwrap();
        fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        symlink("a.txt", root.join("link")).unwrap();
        let mut out = Vec::new();
        let opts = WalkOptions {
            ownership: Ownership::Normalize {
                mode: None,
                owner: (7, 8),
            },
            overlay_upper: false,
            mtime: Some(0),
        };
        walk(&root, "app", &opts, &|_, _| true, &mut out).unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|e| (e.path.as_str(), e.mode, e.uid, e.gid, e.mtime))
            .collect();
        assert_eq!(
            got,
            vec![
                ("app", 0o755, 7, 8, 0),
                ("app/a.txt", 0o644, 7, 8, 0),
                ("app/link", 0o777, 7, 8, 0),
                ("app/sub", 0o755, 7, 8, 0),
                ("app/sub/run.sh", 0o755, 7, 8, 0),
            ]
        );
    }
}
