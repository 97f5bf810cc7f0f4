//! The layer rules: which tar entries are acceptable, and what each one becomes.
//!
//! [`Rules`] remembers what every earlier entry of the layer created, so that the same
//! verdicts come out whether or not anything is written to disk.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::{EntryProblem, PathProblem};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// An entry's modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

/// An entry's metadata; `mode` holds the permission bits with setuid/setgid/sticky.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Mtime,
}

/// What a validated entry becomes. Paths are relative and normalized: every component
/// is a plain name (no `.`, `..` or empty ones); the empty path is the layer root.
#[derive(Debug)]
pub(super) enum Action {
    Skip,
    Dir {
        path: PathBuf,
        meta: Meta,
    },
    File {
        path: PathBuf,
        meta: Meta,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
        meta: Meta,
    },
    HardLink {
        path: PathBuf,
        target: PathBuf,
    },
    Fifo {
        path: PathBuf,
        meta: Meta,
    },
    Whiteout {
        path: PathBuf,
        meta: Meta,
    },
    Opaque {
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Whiteout,
}

#[derive(Debug, Default)]
pub(super) struct Rules {
    /// What each explicit entry so far created; directories created implicitly as
    /// parents are absent.
    seen: BTreeMap<PathBuf, Kind>,
}

impl Rules {
    /// Validates the next entry of the layer and records what it creates.
    pub(super) fn classify<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Action, EntryProblem> {
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            return Ok(Action::Skip);
        }
        let raw = entry.path_bytes().into_owned();
        let path = parse_path(&raw).map_err(EntryProblem::Path)?;
        let Some(name) = path.file_name().map(OsStr::as_bytes) else {
            return match entry_type {
                EntryType::Directory => Ok(Action::Dir {
                    path,
                    meta: meta(entry)?,
                }),
                _ => Err(EntryProblem::RootNotDirectory),
            };
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        if name == OPAQUE_MARKER {
            self.check_parents(parent)?;
            return Ok(Action::Opaque {
                dir: parent.to_path_buf(),
            });
        }
        if path
            .iter()
            .any(|c| c.as_bytes().starts_with(WHITEOUT_META_PREFIX))
        {
            return Ok(Action::Skip);
        }
        self.check_parents(parent)?;
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
                return Err(EntryProblem::BadWhiteout);
            }
            let path = parent.join(OsStr::from_bytes(hidden));
            self.replace(&path, Kind::Whiteout);
            return Ok(Action::Whiteout {
                path,
                meta: meta(entry)?,
            });
        }
        let link_name = || {
            entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .ok_or(EntryProblem::NoLinkTarget)
        };
        let action = match entry_type {
            // Old tar marked directories as regular files whose name ends in '/'.
            EntryType::Regular if raw.ends_with(b"/") => Action::Dir {
                path,
                meta: meta(entry)?,
            },
            EntryType::Directory => Action::Dir {
                path,
                meta: meta(entry)?,
            },
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Action::File {
                path,
                meta: meta(entry)?,
            },
            EntryType::Symlink => {
                let target = link_name()?;
                check_symlink_target(&path, &target)?;
                Action::Symlink {
                    path,
                    target: PathBuf::from(OsStr::from_bytes(&target)),
                    meta: meta(entry)?,
                }
            }
            EntryType::Link => {
                let raw_target = link_name()?;
                let shown = || String::from_utf8_lossy(&raw_target).into_owned();
                let target =
                    parse_path(&raw_target).map_err(|problem| EntryProblem::HardLinkTarget {
                        target: shown(),
                        problem,
                    })?;
                // Replace first: a link cannot name what it replaces (or is inside it).
                self.replace(&path, Kind::File);
                let kind = match self.seen.get(&target) {
                    Some(kind @ (Kind::File | Kind::Symlink)) if target != path => *kind,
                    _ => {
                        self.seen.remove(&path);
                        return Err(EntryProblem::HardLinkMissing(shown()));
                    }
                };
                self.seen.insert(path.clone(), kind);
                return Ok(Action::HardLink { path, target });
            }
            EntryType::Fifo => Action::Fifo {
                path,
                meta: meta(entry)?,
            },
            EntryType::Char | EntryType::Block => return Err(EntryProblem::Device),
            other => return Err(EntryProblem::UnsupportedType(char::from(other.as_byte()))),
        };
        let kind = match &action {
            Action::Dir { .. } => Kind::Dir,
            Action::Symlink { .. } => Kind::Symlink,
            _ => Kind::File,
        };
        if let Action::Dir { path, .. }
        | Action::File { path, .. }
        | Action::Symlink { path, .. }
        | Action::Fifo { path, .. } = &action
        {
            self.replace(path, kind);
        }
        Ok(action)
    }

    /// Refuses a path whose parents include a symlink, a non-directory or a whiteout
    /// name of this layer.
    fn check_parents(&self, parent: &Path) -> Result<(), EntryProblem> {
        if parent
            .iter()
            .any(|c| c.as_bytes().starts_with(WHITEOUT_PREFIX))
        {
            return Err(EntryProblem::WhiteoutAsDirectory);
        }
        for dir in parent.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            match self.seen.get(dir) {
                Some(Kind::Symlink) => {
                    return Err(EntryProblem::ThroughSymlink(dir.display().to_string()));
                }
                Some(Kind::File | Kind::Whiteout) => {
                    return Err(EntryProblem::ThroughNonDirectory(dir.display().to_string()));
                }
                Some(Kind::Dir) | None => {}
            }
        }
        Ok(())
    }

    /// Records that `path` is now `kind`. A directory over a directory merges with it;
    /// anything else replaces the old entry and everything below it.
    fn replace(&mut self, path: &Path, kind: Kind) {
        let merges = kind == Kind::Dir && matches!(self.seen.get(path), Some(Kind::Dir) | None);
        if !merges {
            // Paths order component by component, so a subtree is one contiguous run.
            let below: Vec<PathBuf> = self
                .seen
                .range(path.to_path_buf()..)
                .map(|(p, _)| p)
                .take_while(|p| p.starts_with(path))
                .cloned()
                .collect();
            for p in below {
                self.seen.remove(&p);
            }
        }
        self.seen.insert(path.to_path_buf(), kind);
    }
}

/// Parses an entry path into a relative, normalized path (empty for the root).
pub(crate) fn parse_path(raw: &[u8]) -> Result<PathBuf, PathProblem> {
    if raw.is_empty() {
        return Err(PathProblem::Empty);
    }
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    if raw.starts_with(b"/") {
        return Err(PathProblem::Absolute);
    }
    let mut path = PathBuf::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(PathProblem::DotDot),
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Ok(path)
}

/// Resolves a symlink target lexically from the link's directory (absolute targets
/// from the root) and refuses it if `..` climbs above the root.
fn check_symlink_target(link: &Path, target: &[u8]) -> Result<(), EntryProblem> {
    let shown = || String::from_utf8_lossy(target).into_owned();
    let problem = if target.is_empty() {
        Some(PathProblem::Empty)
    } else if target.contains(&0) {
        Some(PathProblem::Nul)
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(EntryProblem::SymlinkTarget {
            target: shown(),
            problem,
        });
    }
    let mut depth = if target.starts_with(b"/") {
        0
    } else {
        link.iter().count().saturating_sub(1)
    };
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." if depth == 0 => return Err(EntryProblem::SymlinkEscapes(shown())),
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(())
}

fn meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, EntryProblem> {
    let bad = |e: std::io::Error| EntryProblem::BadHeader(e.to_string());
    let header = entry.header();
    let mode = header.mode().map_err(bad)? & 0o7777;
    let uid = owner_id(header.uid().map_err(bad)?)?;
    let gid = owner_id(header.gid().map_err(bad)?)?;
    let secs = header.mtime().map_err(bad)?;
    let mut mtime = Mtime {
        secs: i64::try_from(secs).map_err(|_| EntryProblem::BadHeader(format!("mtime {secs}")))?,
        nanos: 0,
    };
    // PAX uid/gid/size are applied by the tar crate; the precise mtime is ours to read.
    if let Some(extensions) = entry.pax_extensions().map_err(bad)? {
        for extension in extensions {
            let extension = extension.map_err(bad)?;
            if extension.key_bytes() == b"mtime" {
                mtime = parse_pax_time(extension.value_bytes())?;
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
    })
}

fn owner_id(id: u64) -> Result<u32, EntryProblem> {
    // u32::MAX is -1, "no change", to chown.
    u32::try_from(id)
        .ok()
        .filter(|&id| id != u32::MAX)
        .ok_or(EntryProblem::BadOwner(id))
}

/// Parses a PAX time, `SECONDS[.FRACTION]`.
fn parse_pax_time(value: &[u8]) -> Result<Mtime, EntryProblem> {
    let bad = || EntryProblem::BadHeader(format!("pax mtime {:?}", String::from_utf8_lossy(value)));
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits = &fraction[..fraction.len().min(9)];
    let nanos = if digits.is_empty() {
        0
    } else {
        let n: u32 = digits.parse().map_err(|_| bad())?;
        n * 10u32.pow(9 - digits.len() as u32)
    };
    // A negative time with a fraction, -1.5, is 1.5 seconds before the epoch.
    Ok(if secs < 0 || text.starts_with('-') {
        if nanos == 0 {
            Mtime { secs, nanos }
        } else {
            Mtime {
                secs: secs - 1,
                nanos: 1_000_000_000 - nanos,
            }
        }
    } else {
        Mtime { secs, nanos }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(parse_path(b"./a//b/./c/"), Ok(PathBuf::from("a/b/c")));
        assert_eq!(parse_path(b"./"), Ok(PathBuf::new()));
        assert_eq!(parse_path(b"/etc/x"), Err(PathProblem::Absolute));
        assert_eq!(parse_path(b"a/../../x"), Err(PathProblem::DotDot));
        assert_eq!(parse_path(b""), Err(PathProblem::Empty));
        assert_eq!(parse_path(b"a\0b"), Err(PathProblem::Nul));
    }

    #[test]
    fn symlink_targets_may_not_climb_above_the_root() {
        let ok =
            |link: &str, target: &str| check_symlink_target(Path::new(link), target.as_bytes());
        assert!(ok("usr/bin/foo", "/usr/bin/bar").is_ok());
        assert!(ok("usr/bin/foo", "../lib/x").is_ok());
        assert!(ok("usr/bin/foo", "../../etc").is_ok());
        assert!(ok("usr/bin/foo", "../../../etc").is_err());
        assert!(ok("link", "..").is_err());
        assert!(ok("link", "/..").is_err());
        assert!(ok("a/link", "b/../../c").is_ok());
        assert!(ok("a/link", "").is_err());
    }

    #[test]
    fn pax_times_parse() {
        let t = |s: &str| parse_pax_time(s.as_bytes());
        assert_eq!(
            t("1700000000"),
            Ok(Mtime {
                secs: 1_700_000_000,
                nanos: 0
            })
        );
        assert_eq!(
            t("1.5"),
            Ok(Mtime {
                secs: 1,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            t("-1.25"),
            Ok(Mtime {
                secs: -2,
                nanos: 750_000_000
            })
        );
        assert!(t("x").is_err());
    }
}
