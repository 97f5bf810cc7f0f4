//! Safe extraction and validation of OCI layer tars.
//!
//! [`unpack_layer`] turns one layer into an overlayfs lower directory: OCI whiteouts
//! (`.wh.NAME`) become overlay whiteouts (a character device 0:0 named `NAME`) and an
//! opaque marker (`.wh..wh..opq`) sets `trusted.overlay.opaque="y"` on its directory.
//! [`check_layer`] applies exactly the same rules without writing anything, so a base
//! image can be refused when it is loaded rather than when it is first used.
//!
//! The rules, each refused with an error naming the entry:
//! - paths are relative to the layer root: a leading `./` is fine; absolute paths,
//!   `..` components, empty names and NUL bytes are refused;
//! - no entry may go through a symbolic link or a non-directory of the same layer
//!   (`link/x` where `link` is a symlink), and extraction never follows one: every
//!   parent is opened with `O_NOFOLLOW` and files are created with `O_EXCL|O_NOFOLLOW`;
//! - symlink targets are resolved lexically from the link's directory, absolute
//!   targets from the image root (as in a container, so `/usr/bin/foo` is fine); a
//!   target whose `..` climbs above the root is refused;
//! - hard links must name a file (or symlink) that appears earlier in the same layer;
//! - character and block devices are refused (a layer has no business creating device
//!   nodes); fifos are harmless and allowed;
//! - the uncompressed stream (and the sum of entry sizes, which covers sparse files)
//!   may not exceed [`UnpackLimits::max_bytes`], the entry count
//!   [`UnpackLimits::max_entries`]: a decompression bomb stops as soon as it passes.
//!
//! Mode (with setuid/setgid/sticky), numeric owner and mtime are preserved; directory
//! modes and mtimes are applied at the end, after their children are written.
//! Extended attributes in PAX records are ignored (none are applied, so a layer cannot
//! plant `trusted.overlay.*` or `security.*` attributes; file capabilities are lost).
//! Later entries replace earlier ones with the same path, as tar does. AUFS metadata
//! (`.wh..wh.*` other than the opaque marker) is skipped.

mod counting;
mod rules;
mod write;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use counting::CountingReader;
pub(crate) use rules::parse_path;
use rules::{Action, Rules};
use write::{WriteError, Writer};

/// How much a single layer may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Total bytes of the uncompressed tar stream (and of all entry sizes).
    pub max_bytes: u64,
    /// Number of entries in the tar stream.
    pub max_entries: u64,
}

impl UnpackLimits {
    pub const DEFAULT_MAX_BYTES: u64 = 32 << 30;
    pub const DEFAULT_MAX_ENTRIES: u64 = 4_000_000;
    pub const ENV_MAX_BYTES: &str = "KILN_UNPACK_MAX_BYTES";
    pub const ENV_MAX_ENTRIES: &str = "KILN_UNPACK_MAX_ENTRIES";

    /// The limits from `KILN_UNPACK_MAX_BYTES` and `KILN_UNPACK_MAX_ENTRIES`; a variable
    /// that is unset or not a whole number leaves its default (32 GiB, 4 000 000).
    /// Use [`UnpackLimits::try_from_env`] to report malformed values instead.
    pub fn from_env() -> Self {
        UnpackLimits {
            max_bytes: env_limit(Self::ENV_MAX_BYTES)
                .ok()
                .flatten()
                .unwrap_or(Self::DEFAULT_MAX_BYTES),
            max_entries: env_limit(Self::ENV_MAX_ENTRIES)
                .ok()
                .flatten()
                .unwrap_or(Self::DEFAULT_MAX_ENTRIES),
        }
    }

    /// Like [`UnpackLimits::from_env`], but a malformed value is an error.
    pub fn try_from_env() -> Result<Self, UnpackError> {
        Ok(UnpackLimits {
            max_bytes: env_limit(Self::ENV_MAX_BYTES)?.unwrap_or(Self::DEFAULT_MAX_BYTES),
            max_entries: env_limit(Self::ENV_MAX_ENTRIES)?.unwrap_or(Self::DEFAULT_MAX_ENTRIES),
        })
    }
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }
}

fn env_limit(var: &'static str) -> Result<Option<u64>, UnpackError> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(UnpackError::BadLimit {
            var,
            value: value.to_string_lossy().into_owned(),
        }),
        Ok(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| UnpackError::BadLimit { var, value }),
    }
}

/// What a layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries, PAX/GNU extension headers not counted.
    pub entries: u64,
    /// Bytes of the uncompressed tar stream, read to its end.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?}: {problem}")]
    Refused {
        entry: String,
        problem: EntryProblem,
    },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Io {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("reading the layer tar: {0}")]
    Read(#[source] io::Error),
    #[error("layer exceeds the unpack limit of {0} bytes (KILN_UNPACK_MAX_BYTES)")]
    TooManyBytes(u64),
    #[error("layer exceeds the unpack limit of {0} entries (KILN_UNPACK_MAX_ENTRIES)")]
    TooManyEntries(u64),
    #[error("{path}: cannot unpack into it: {source}")]
    Dest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{var}={value:?}: expected a whole number")]
    BadLimit { var: &'static str, value: String },
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("{0}")]
    Path(PathProblem),
    #[error("path goes through a symbolic link ({0:?})")]
    ThroughSymlink(String),
    #[error("path goes through {0:?}, which is not a directory")]
    ThroughNonDirectory(String),
    #[error("device nodes are not allowed in a layer")]
    Device,
    #[error("unsupported tar entry type {0:?}")]
    UnsupportedType(char),
    #[error("the layer root must be a directory")]
    RootNotDirectory,
    #[error("link entry has no target")]
    NoLinkTarget,
    #[error("symbolic link target {target:?}: {problem}")]
    SymlinkTarget {
        target: String,
        problem: PathProblem,
    },
    #[error("symbolic link target {0:?} escapes the root")]
    SymlinkEscapes(String),
    #[error("hard link target {target:?}: {problem}")]
    HardLinkTarget {
        target: String,
        problem: PathProblem,
    },
    #[error("hard link target {0:?} is not a file earlier in this layer")]
    HardLinkMissing(String),
    #[error("malformed whiteout name")]
    BadWhiteout,
    #[error("a whiteout name is used as a directory")]
    WhiteoutAsDirectory,
    #[error("owner id {0} is out of range")]
    BadOwner(u64),
    #[error("malformed tar header: {0}")]
    BadHeader(String),
}

/// Why a path inside a layer is unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("name is empty")]
    Empty,
    #[error("name contains a NUL byte")]
    Nul,
    #[error("path is absolute")]
    Absolute,
    #[error("path escapes the root (it has a `..` component)")]
    DotDot,
}

/// Extracts one OCI layer tar (an uncompressed stream: the caller decompresses) into
/// `dest`, an existing empty directory, as an overlayfs lower directory.
///
/// Nothing is ever written outside `dest`. On error `dest` is left partially written
/// and is the caller's to delete (extract into a temporary directory, then rename).
/// Needs root (or the capabilities) for `lchown`, `mknod` of whiteouts and `trusted.*`
/// extended attributes.
pub fn unpack_layer<R: Read>(
    tar: R,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let mut writer = Writer::open(dest).map_err(|source| UnpackError::Dest {
        path: dest.to_path_buf(),
        source,
    })?;
    let stats = for_each_entry(tar, limits, |action, data| writer.apply(action, data))?;
    writer
        .finish()
        .map_err(|(dir, e)| entry_error(e, dir, limits, false))?;
    Ok(stats)
}

/// Reads a layer tar stream to its end and validates every entry with the rules of
/// [`unpack_layer`], writing nothing.
pub fn check_layer<R: Read>(tar: R, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    for_each_entry(tar, limits, |_, _| Ok(()))
}

fn for_each_entry<R: Read>(
    tar: R,
    limits: &UnpackLimits,
    mut apply: impl FnMut(&Action, &mut dyn Read) -> Result<(), WriteError>,
) -> Result<UnpackStats, UnpackError> {
    let reader = CountingReader::new(tar, limits.max_bytes);
    let count = reader.counter();
    let read_error = |e: io::Error| {
        if count.exceeded() {
            UnpackError::TooManyBytes(limits.max_bytes)
        } else {
            UnpackError::Read(e)
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut rules = Rules::default();
    let mut entries = 0u64;
    let mut claimed = 0u64;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(UnpackError::TooManyEntries(limits.max_entries));
        }
        claimed = claimed.saturating_add(entry.size());
        if claimed > limits.max_bytes {
            return Err(UnpackError::TooManyBytes(limits.max_bytes));
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let action = match rules.classify(&mut entry) {
            Ok(action) => action,
            Err(problem) => {
                return Err(UnpackError::Refused {
                    entry: name,
                    problem,
                });
            }
        };
        apply(&action, &mut entry).map_err(|e| entry_error(e, name, limits, count.exceeded()))?;
    }
    // Read to the end, so that a verifying or hashing reader below sees every byte.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_error)?;
    if count.exceeded() {
        return Err(UnpackError::TooManyBytes(limits.max_bytes));
    }
    Ok(UnpackStats {
        entries,
        bytes: count.get(),
    })
}

fn entry_error(e: WriteError, entry: String, limits: &UnpackLimits, exceeded: bool) -> UnpackError {
    match e {
        WriteError::Problem(problem) => UnpackError::Refused { entry, problem },
        WriteError::Io(op, source) => UnpackError::Io { entry, op, source },
        WriteError::Read(_) if exceeded => UnpackError::TooManyBytes(limits.max_bytes),
        WriteError::Read(source) => UnpackError::Read(source),
    }
}
