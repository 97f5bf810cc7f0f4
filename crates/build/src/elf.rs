//! ELF dependency resolution for `copy_binary`: the program interpreter and every shared
//! library an executable needs, found the way glibc's `ld.so` would find them.
//!
//! The result says, for each file, where to read it on the host and where to put it in
//! the image so that the loader copied into a `scratch` image finds it there:
//! - the interpreter (`PT_INTERP`) goes exactly where the executable names it;
//! - a library is looked up for each `DT_NEEDED` entry, breadth first from the
//!   executable as `ld.so` does, in: the `DT_RPATH` of the requesting object and of the
//!   objects that loaded it (only when the requester has no `DT_RUNPATH`; an object with
//!   both ignores its `DT_RPATH`), its `DT_RUNPATH`, the directories of `ld.so.conf`,
//!   then the loader's default directories (neither of the last two with `-z nodeflib`).
//!   `LD_LIBRARY_PATH` is deliberately not consulted: a build must not depend on the
//!   environment it runs in. The glibc-hwcaps and legacy hwcap subdirectories are not
//!   searched either: the library in the directory itself is always usable.
//! - A name already loaded (by name or `DT_SONAME`, including the interpreter's) is not
//!   looked up again, and candidates of another ELF class, byte order or machine, and
//!   files that are no shared ELF object at all, are skipped like the loader skips them.
//!
//! Image paths: a library is placed in the directory it was found in, with `$ORIGIN`
//! taken relative to where the requesting object is placed in the image. An image has no
//! `ld.so.cache`, so directories known only from `ld.so.conf` are not searched there: a
//! library found in one of them (say `/usr/local/lib`) is placed in the first default
//! directory instead.
//!
//! The parser reads only what it needs (header, program headers, dynamic segment, string
//! table) from ELF32 and ELF64 files of either byte order.

mod ldconf;
mod parse;
mod paths;
mod search;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod testutil;

use std::io;
use std::path::{Path, PathBuf};

use parse::parse;
use paths::{canonicalize, normalize, parent, utf8};
use search::{Origin, Resolver};

/// A file the executable needs at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFile {
    /// The real file to read: symlinks resolved.
    pub host_path: PathBuf,
    /// The absolute path where the loader looks for it inside the image.
    pub image_path: String,
}

/// Where libraries are searched besides the objects' own paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchConfig {
    /// `ld.so.conf`, whose directories (and `include`d files') are searched; a missing
    /// file means no directories.
    pub ld_so_conf: PathBuf,
    /// The loader's built-in directories, searched last, in order. The first one also
    /// receives libraries found only through `ld.so.conf`, and names `$LIB`.
    pub default_dirs: Vec<PathBuf>,
}

impl SearchConfig {
    /// The host's configuration: `/etc/ld.so.conf` and the system directories of its
    /// glibc (Debian's multiarch layout where it exists, else `lib64` and `lib`).
    pub fn host() -> SearchConfig {
        let triplet = multiarch_triplet();
        let multiarch = triplet.filter(|triplet| {
            Path::new("/lib").join(triplet).is_dir() || Path::new("/usr/lib").join(triplet).is_dir()
        });
        let mut default_dirs = Vec::new();
        if let Some(triplet) = multiarch {
            default_dirs.push(Path::new("/lib").join(triplet));
            default_dirs.push(Path::new("/usr/lib").join(triplet));
        } else if cfg!(target_pointer_width = "64") {
            default_dirs.push(PathBuf::from("/lib64"));
            default_dirs.push(PathBuf::from("/usr/lib64"));
        }
        default_dirs.push(PathBuf::from("/lib"));
        default_dirs.push(PathBuf::from("/usr/lib"));
        SearchConfig {
            ld_so_conf: PathBuf::from("/etc/ld.so.conf"),
            default_dirs,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig::host()
    }
}

/// Debian's multiarch directory name for the architecture kiln runs on.
fn multiarch_triplet() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("x86_64-linux-gnu"),
        "x86" => Some("i386-linux-gnu"),
        "aarch64" => Some("aarch64-linux-gnu"),
        "arm" => Some("arm-linux-gnueabihf"),
        "riscv64" => Some("riscv64-linux-gnu"),
        "powerpc64" if cfg!(target_endian = "little") => Some("powerpc64le-linux-gnu"),
        "s390x" => Some("s390x-linux-gnu"),
        _ => None,
    }
}

/// Why the dependencies of a file could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file is not ELF at all (a script, data, ...).
    #[error("{path}: not an ELF file")]
    NotElf { path: PathBuf },
    /// ELF, but in a form this resolver does not handle.
    #[error("{path}: unsupported ELF file: {what}")]
    Unsupported { path: PathBuf, what: String },
    /// ELF, but truncated or inconsistent.
    #[error("{path}: malformed ELF file: {what}")]
    Malformed { path: PathBuf, what: String },
    /// A needed library (or the interpreter) is nowhere to be found.
    #[error("{lib} needed by {needed_by} not found (searched {})", join_paths(.searched))]
    Missing {
        lib: String,
        needed_by: PathBuf,
        searched: Vec<PathBuf>,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<_> = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    shown.join(", ")
}

/// The interpreter and libraries `binary` needs, deduplicated and sorted by image path,
/// assuming the binary sits at its own (canonical) host path in the image; empty for a
/// statically linked binary.
pub fn resolve(binary: &Path) -> Result<Vec<ResolvedFile>, ElfError> {
    resolve_with(binary, &SearchConfig::host())
}

/// [`resolve`] with an explicit search configuration.
pub fn resolve_with(binary: &Path, search: &SearchConfig) -> Result<Vec<ResolvedFile>, ElfError> {
    let canonical = canonicalize(binary)?;
    let image_path = utf8(&canonical)?.to_owned();
    resolve_placed(binary, &image_path, search)
}

/// [`resolve_with`] for a binary placed at `image_path` in the image, which matters for
/// libraries found relative to `$ORIGIN`.
pub fn resolve_placed(
    binary: &Path,
    image_path: &str,
    search: &SearchConfig,
) -> Result<Vec<ResolvedFile>, ElfError> {
    if !image_path.starts_with('/') {
        return Err(ElfError::Unsupported {
            path: binary.to_owned(),
            what: format!("image path {image_path:?} is not absolute"),
        });
    }
    let elf = parse(binary)?;
    let canonical = canonicalize(binary)?;
    let origin = Origin {
        host: parent(utf8(&canonical)?),
        image: parent(&normalize(image_path)),
    };
    Resolver::new(search, elf.kind)?.run(binary, elf, origin)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::process::Command;

    use super::testutil::images;
    use super::*;

    fn ls() -> PathBuf {
        ["/usr/bin/ls", "/bin/ls"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap()
    }

    #[test]
    fn ls_needs_the_interpreter_and_libc() {
        let files = resolve(&ls()).unwrap();
        let names = images(&files);
        let interp = parse(&ls()).unwrap().interp.unwrap();
        assert!(names.contains(&interp.as_str()), "{names:?}");
        let libc = files
            .iter()
            .find(|file| file.image_path.ends_with("/libc.so.6"))
            .unwrap();
        assert!(libc.host_path.is_file());
        assert_eq!(libc.host_path, libc.host_path.canonicalize().unwrap());
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted and unique");
        // libc needs the loader by its soname: it is the interpreter, not a second copy.
        let loaders = names
            .iter()
            .filter(|name| name.contains("ld-linux"))
            .count();
        assert_eq!(loaders, 1, "{names:?}");
        assert!(!names.iter().any(|name| name.ends_with("/ls")));
    }

    #[test]
    fn ls_matches_ldd() {
        let files = resolve(&ls()).unwrap();
        let out = Command::new("ldd").arg(ls()).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((_, found)) = line.split_once(" => ") {
                let path = found.split(" (").next().unwrap().trim();
                let host = Path::new(path).canonicalize().unwrap();
                assert!(
                    files.iter().any(|file| file.host_path == host),
                    "{path} missing from {files:?}"
                );
            }
        }
    }

    #[test]
    fn a_static_binary_needs_nothing() {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "this test needs /bin/busybox: apt-get install -y busybox-static"
        );
        assert!(resolve(busybox).unwrap().is_empty());
    }
}
