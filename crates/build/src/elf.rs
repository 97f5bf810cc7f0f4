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

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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

// ---------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------

/// The directory `$ORIGIN` stands for, on the host and in the image.
#[derive(Debug, Clone)]
struct Origin {
    host: String,
    image: String,
}

/// A directory to search, on the host and where its libraries go in the image.
#[derive(Debug, Clone)]
struct SearchDir {
    host: PathBuf,
    image: String,
}

/// A loaded object: the executable or a library.
#[derive(Debug)]
struct Object {
    path: PathBuf,
    origin: Origin,
    dynamic: Dynamic,
    /// The object whose `DT_NEEDED` loaded this one.
    loader: Option<usize>,
}

#[derive(Debug)]
struct Resolver {
    kind: Kind,
    /// Directories from `ld.so.conf`, with their image placement.
    conf_dirs: Vec<SearchDir>,
    default_dirs: Vec<SearchDir>,
    /// What `$LIB` expands to.
    lib: String,
    /// What `$PLATFORM` expands to, if known for the machine.
    platform: Option<&'static str>,
    objects: Vec<Object>,
    /// Names (needed names, sonames, the interpreter path) already satisfied.
    loaded: HashSet<String>,
    /// Image path to host path.
    files: BTreeMap<String, PathBuf>,
}

impl Resolver {
    fn new(search: &SearchConfig, kind: Kind) -> Result<Self, ElfError> {
        let default_dirs: Vec<SearchDir> = search
            .default_dirs
            .iter()
            .map(|dir| SearchDir {
                host: dir.clone(),
                image: normalize(&dir.to_string_lossy()),
            })
            .collect();
        let mut conf_paths = Vec::new();
        read_ld_so_conf(&search.ld_so_conf, &mut conf_paths)?;
        let conf_dirs = conf_paths
            .into_iter()
            .map(|host| {
                let image = normalize(&host.to_string_lossy());
                let is_default = default_dirs.iter().any(|dir| dir.image == image);
                let image = match default_dirs.first() {
                    Some(first) if !is_default => first.image.clone(),
                    _ => image,
                };
                SearchDir { host, image }
            })
            .collect();
        let lib = default_dirs
            .first()
            .map(|dir| dir.image.trim_start_matches('/').to_owned())
            .filter(|lib| !lib.is_empty())
            .unwrap_or_else(|| "lib".to_owned());
        Ok(Resolver {
            kind,
            conf_dirs,
            default_dirs,
            lib,
            platform: platform(kind.machine),
            objects: Vec::new(),
            loaded: HashSet::new(),
            files: BTreeMap::new(),
        })
    }

    fn run(
        mut self,
        binary: &Path,
        elf: Elf,
        origin: Origin,
    ) -> Result<Vec<ResolvedFile>, ElfError> {
        if let Some(interp) = &elf.interp {
            self.load_interpreter(binary, interp)?;
        }
        self.objects.push(Object {
            path: binary.to_owned(),
            origin,
            dynamic: elf.dynamic,
            loader: None,
        });
        // Breadth first, like ld.so: the first object to need a name decides where it
        // is found, and every later request for the name reuses it.
        let mut next = 0;
        while next < self.objects.len() {
            let needed = self.objects[next].dynamic.needed.clone();
            for name in needed {
                if self.loaded.contains(&name) {
                    continue;
                }
                let found = self.find(next, &name)?;
                self.loaded.insert(name);
                if let Some(soname) = &found.elf.dynamic.soname {
                    self.loaded.insert(soname.clone());
                }
                self.files
                    .insert(found.image.clone(), canonicalize(&found.host)?);
                self.objects.push(Object {
                    origin: Origin {
                        host: parent(utf8(&found.host)?),
                        image: parent(&found.image),
                    },
                    path: found.host,
                    dynamic: found.elf.dynamic,
                    loader: Some(next),
                });
            }
            next += 1;
        }
        Ok(self
            .files
            .into_iter()
            .map(|(image_path, host_path)| ResolvedFile {
                host_path,
                image_path,
            })
            .collect())
    }

    fn load_interpreter(&mut self, binary: &Path, interp: &str) -> Result<(), ElfError> {
        let host = PathBuf::from(interp);
        if !interp.starts_with('/') || !host.is_file() {
            return Err(ElfError::Missing {
                lib: interp.to_owned(),
                needed_by: binary.to_owned(),
                searched: vec![host],
            });
        }
        let elf = parse(&host)?;
        if elf.kind != self.kind {
            return Err(ElfError::Unsupported {
                path: binary.to_owned(),
                what: format!("interpreter {interp} is for another architecture"),
            });
        }
        self.loaded.insert(interp.to_owned());
        if let Some(soname) = elf.dynamic.soname {
            self.loaded.insert(soname);
        }
        self.files.insert(normalize(interp), canonicalize(&host)?);
        Ok(())
    }

    /// Looks up `name` as needed by object `requester`.
    fn find(&self, requester: usize, name: &str) -> Result<Found, ElfError> {
        let object = &self.objects[requester];
        if name.contains('/') {
            if !name.starts_with('/') {
                // Relative to the process's working directory: unknowable here.
                return Err(ElfError::Unsupported {
                    path: object.path.clone(),
                    what: format!("needs {name} by a relative path"),
                });
            }
            let host = PathBuf::from(name);
            return match self.candidate(&host)? {
                Some(elf) => Ok(Found {
                    host,
                    image: normalize(name),
                    elf,
                }),
                None => Err(ElfError::Missing {
                    lib: name.to_owned(),
                    needed_by: object.path.clone(),
                    searched: vec![host],
                }),
            };
        }
        let dirs = self.search_dirs(requester);
        for dir in &dirs {
            let host = dir.host.join(name);
            if let Some(elf) = self.candidate(&host)? {
                return Ok(Found {
                    host,
                    image: normalize(&format!("{}/{name}", dir.image)),
                    elf,
                });
            }
        }
        Err(ElfError::Missing {
            lib: name.to_owned(),
            needed_by: object.path.clone(),
            searched: dirs.into_iter().map(|dir| dir.host).collect(),
        })
    }

    /// The directories searched for a name needed by object `requester`, in order.
    fn search_dirs(&self, requester: usize) -> Vec<SearchDir> {
        let object = &self.objects[requester];
        let mut dirs = Vec::new();
        if object.dynamic.runpath.is_none() {
            let mut current = Some(requester);
            while let Some(index) = current {
                let loader = &self.objects[index];
                if let Some(rpath) = &loader.dynamic.rpath {
                    dirs.extend(self.expand(rpath, &loader.origin));
                }
                current = loader.loader;
            }
        }
        // LD_LIBRARY_PATH would come here: builds must not depend on the environment.
        if let Some(runpath) = &object.dynamic.runpath {
            dirs.extend(self.expand(runpath, &object.origin));
        }
        if !object.dynamic.nodeflib {
            dirs.extend(self.conf_dirs.iter().cloned());
            dirs.extend(self.default_dirs.iter().cloned());
        }
        dirs
    }

    /// The directories of a `DT_RPATH` or `DT_RUNPATH` value, dynamic string tokens
    /// expanded. Empty and relative entries (relative to the working directory of the
    /// process) and entries with tokens that cannot be expanded are skipped.
    fn expand(&self, path_list: &str, origin: &Origin) -> Vec<SearchDir> {
        path_list
            .split(':')
            .filter_map(|entry| {
                let host = self.substitute(entry, &origin.host)?;
                let image = self.substitute(entry, &origin.image)?;
                if !host.starts_with('/') || !image.starts_with('/') {
                    return None;
                }
                Some(SearchDir {
                    host: PathBuf::from(host),
                    image: normalize(&image),
                })
            })
            .collect()
    }

    /// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` (also in `${...}` form) in `entry`.
    fn substitute(&self, entry: &str, origin: &str) -> Option<String> {
        let mut out = String::with_capacity(entry.len());
        let mut rest = entry;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            let (token, after) = match rest.strip_prefix('{') {
                Some(braced) => match braced.find('}') {
                    Some(end) => (&braced[..end], &braced[end + 1..]),
                    None => ("", rest),
                },
                None => {
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            match token {
                "ORIGIN" => out.push_str(origin),
                "LIB" => out.push_str(&self.lib),
                "PLATFORM" => out.push_str(self.platform?),
                // Not a dynamic string token: the loader keeps it as it is.
                _ => {
                    out.push('$');
                    continue;
                }
            }
            rest = after;
        }
        out.push_str(rest);
        Some(out)
    }

    /// The parsed library at `path` if the loader would accept it: a shared object of
    /// the executable's class, byte order and machine.
    fn candidate(&self, path: &Path) -> Result<Option<Elf>, ElfError> {
        if !path.is_file() {
            return Ok(None);
        }
        match parse(path) {
            Ok(elf) if elf.kind == self.kind && elf.e_type == ET_DYN => Ok(Some(elf)),
            Ok(_) => Ok(None),
            Err(ElfError::Io { path, source }) => Err(ElfError::Io { path, source }),
            Err(_) => Ok(None),
        }
    }
}

/// A library found for a needed name.
#[derive(Debug)]
struct Found {
    host: PathBuf,
    image: String,
    elf: Elf,
}

/// What `$PLATFORM` expands to on `machine`, as glibc's `AT_PLATFORM` usually is.
fn platform(machine: u16) -> Option<&'static str> {
    match machine {
        EM_X86_64 => Some("x86_64"),
        EM_386 => Some("i686"),
        EM_AARCH64 => Some("aarch64"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// ld.so.conf
// ---------------------------------------------------------------------------------------

/// How deep `include`s may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Appends the directories named by the `ld.so.conf`-format file `conf` to `dirs`,
/// following `include` lines and ignoring `hwcap` lines and comments.
fn read_ld_so_conf(conf: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), ElfError> {
    read_conf_file(conf, &mut Vec::new(), dirs)
}

/// [`read_ld_so_conf`] for one file, `including` being the files that include it: a
/// file including itself again is skipped.
fn read_conf_file(
    conf: &Path,
    including: &mut Vec<PathBuf>,
    dirs: &mut Vec<PathBuf>,
) -> Result<(), ElfError> {
    let text = match fs::read_to_string(conf) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ElfError::Io {
                path: conf.to_owned(),
                source,
            });
        }
    };
    let base = conf.parent().unwrap_or(Path::new("/"));
    let identity = conf.canonicalize().unwrap_or_else(|_| conf.to_owned());
    if including.contains(&identity) || including.len() >= MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    including.push(identity);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        match words.next() {
            None => {}
            Some("include") => {
                for pattern in words {
                    for included in glob(&base.join(pattern)) {
                        read_conf_file(&included, including, dirs)?;
                    }
                }
            }
            Some("hwcap") => {}
            Some(_) => {
                // ldconfig also accepts several directories on a line, separated by
                // blanks, commas or colons.
                for dir in line.split(|c: char| c.is_whitespace() || c == ',' || c == ':') {
                    let dir = dir.trim_end_matches('/');
                    if dir.starts_with('/') && !dirs.iter().any(|known| known == Path::new(dir)) {
                        dirs.push(PathBuf::from(dir));
                    }
                }
            }
        }
    }
    including.pop();
    Ok(())
}

/// The files matching `pattern`, sorted, with `*` and `?` allowed in its last component
/// only (as in `include /etc/ld.so.conf.d/*.conf`). Like glob(3), wildcards do not match
/// a leading dot.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|name| name.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut matches: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry.file_name().to_str().is_some_and(|candidate| {
                (!candidate.starts_with('.') || name.starts_with('.'))
                    && wildcard_match(name.as_bytes(), candidate.as_bytes())
            })
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    matches.sort();
    matches
}

/// Whether `text` matches `pattern` with `*` (any run) and `?` (any one byte).
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

fn canonicalize(path: &Path) -> Result<PathBuf, ElfError> {
    path.canonicalize().map_err(|source| ElfError::Io {
        path: path.to_owned(),
        source,
    })
}

fn utf8(path: &Path) -> Result<&str, ElfError> {
    path.to_str().ok_or_else(|| ElfError::Unsupported {
        path: path.to_owned(),
        what: "path is not UTF-8".to_owned(),
    })
}

/// `path` made absolute and free of `.`, `..` and repeated slashes, lexically.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The directory part of an absolute path (`/` for a top-level name).
fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(slash) => path[..slash].to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// ELF parsing
// ---------------------------------------------------------------------------------------

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ET_DYN: u16 = 3;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const PN_XNUM: u16 = 0xffff;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_1_NODEFLIB: u64 = 0x800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Elf32,
    Elf64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// What has to match between an executable and its libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    class: Class,
    endian: Endian,
    machine: u16,
}

/// The parts of an ELF file that dependency resolution needs.
#[derive(Debug)]
struct Elf {
    kind: Kind,
    e_type: u16,
    interp: Option<String>,
    dynamic: Dynamic,
}

/// The dynamic section, strings resolved.
#[derive(Debug, Default, Clone)]
struct Dynamic {
    needed: Vec<String>,
    soname: Option<String>,
    /// Already dropped when there is a `DT_RUNPATH`, as the loader ignores it then.
    rpath: Option<String>,
    runpath: Option<String>,
    /// Linked with `-z nodeflib`: no `ld.so.conf` or default directories.
    nodeflib: bool,
}

/// Reads typed fields from a file of known length.
struct Reader<'a> {
    file: File,
    path: &'a Path,
    len: u64,
    class: Class,
    endian: Endian,
}

impl Reader<'_> {
    fn malformed(&self, what: impl Into<String>) -> ElfError {
        ElfError::Malformed {
            path: self.path.to_owned(),
            what: what.into(),
        }
    }

    /// `size` bytes at `offset`, which must lie within the file.
    fn bytes(&self, offset: u64, size: u64, what: &str) -> Result<Vec<u8>, ElfError> {
        let end = offset.checked_add(size);
        if end.is_none_or(|end| end > self.len) {
            return Err(self.malformed(format!("{what} extends beyond the end of the file")));
        }
        let size =
            usize::try_from(size).map_err(|_| self.malformed(format!("{what} is too large")))?;
        let mut buf = vec![0; size];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|source| ElfError::Io {
                path: self.path.to_owned(),
                source,
            })?;
        Ok(buf)
    }

    fn u16(&self, buf: &[u8], at: usize) -> u16 {
        let bytes = [buf[at], buf[at + 1]];
        match self.endian {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        }
    }

    fn u32(&self, buf: &[u8], at: usize) -> u32 {
        let bytes = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        match self.endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    fn u64(&self, buf: &[u8], at: usize) -> u64 {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&buf[at..at + 8]);
        match self.endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        }
    }

    /// An address-sized field: `Elf32_Addr`/`Elf32_Off` or their 64-bit versions.
    fn word(&self, buf: &[u8], at32: usize, at64: usize) -> u64 {
        match self.class {
            Class::Elf32 => u64::from(self.u32(buf, at32)),
            Class::Elf64 => self.u64(buf, at64),
        }
    }
}

/// A program header, the fields used here.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Parses the ELF file at `path`.
fn parse(path: &Path) -> Result<Elf, ElfError> {
    let io_error = |source| ElfError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let mut ident = [0u8; 16];
    if len < 16 {
        return Err(ElfError::NotElf {
            path: path.to_owned(),
        });
    }
    file.read_exact_at(&mut ident, 0).map_err(io_error)?;
    if ident[..4] != ELF_MAGIC {
        return Err(ElfError::NotElf {
            path: path.to_owned(),
        });
    }
    let unsupported = |what: String| ElfError::Unsupported {
        path: path.to_owned(),
        what,
    };
    let class = match ident[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        other => return Err(unsupported(format!("ELF class {other}"))),
    };
    let endian = match ident[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        other => return Err(unsupported(format!("ELF data encoding {other}"))),
    };
    let reader = Reader {
        file,
        path,
        len,
        class,
        endian,
    };
    let header_len = match class {
        Class::Elf32 => 52,
        Class::Elf64 => 64,
    };
    let header = reader.bytes(0, header_len, "the ELF header")?;
    let e_type = reader.u16(&header, 16);
    let machine = reader.u16(&header, 18);
    let phoff = reader.word(&header, 28, 32);
    let (phentsize, phnum) = match class {
        Class::Elf32 => (reader.u16(&header, 42), reader.u16(&header, 44)),
        Class::Elf64 => (reader.u16(&header, 54), reader.u16(&header, 56)),
    };
    if phnum == PN_XNUM {
        return Err(unsupported("extended program header numbering".to_owned()));
    }
    let min_phentsize = match class {
        Class::Elf32 => 32,
        Class::Elf64 => 56,
    };
    let segments = if phnum == 0 {
        Vec::new()
    } else {
        if phentsize < min_phentsize {
            return Err(reader.malformed(format!("program header entry size {phentsize}")));
        }
        let table = reader.bytes(
            phoff,
            u64::from(phentsize) * u64::from(phnum),
            "the program header table",
        )?;
        table
            .chunks_exact(usize::from(phentsize))
            .map(|ph| match class {
                Class::Elf32 => Segment {
                    kind: reader.u32(ph, 0),
                    offset: u64::from(reader.u32(ph, 4)),
                    vaddr: u64::from(reader.u32(ph, 8)),
                    filesz: u64::from(reader.u32(ph, 16)),
                },
                Class::Elf64 => Segment {
                    kind: reader.u32(ph, 0),
                    offset: reader.u64(ph, 8),
                    vaddr: reader.u64(ph, 16),
                    filesz: reader.u64(ph, 32),
                },
            })
            .collect()
    };
    let interp = match segments.iter().find(|segment| segment.kind == PT_INTERP) {
        Some(segment) => {
            let bytes = reader.bytes(segment.offset, segment.filesz, "the interpreter name")?;
            Some(c_string(&reader, &bytes, "the interpreter name")?)
        }
        None => None,
    };
    let dynamic = match segments.iter().find(|segment| segment.kind == PT_DYNAMIC) {
        Some(segment) => parse_dynamic(&reader, segment, &segments)?,
        None => Dynamic::default(),
    };
    Ok(Elf {
        kind: Kind {
            class,
            endian,
            machine,
        },
        e_type,
        interp,
        dynamic,
    })
}

/// Reads the dynamic segment and the strings it refers to.
fn parse_dynamic(
    reader: &Reader,
    segment: &Segment,
    segments: &[Segment],
) -> Result<Dynamic, ElfError> {
    let bytes = reader.bytes(segment.offset, segment.filesz, "the dynamic segment")?;
    let entry_len = match reader.class {
        Class::Elf32 => 8,
        Class::Elf64 => 16,
    };
    let mut needed = Vec::new();
    let (mut soname, mut rpath, mut runpath) = (None, None, None);
    let (mut strtab, mut strsz, mut flags_1) = (None, None, 0);
    for entry in bytes.chunks_exact(entry_len) {
        let (tag, value) = match reader.class {
            Class::Elf32 => (
                u64::from(reader.u32(entry, 0)),
                u64::from(reader.u32(entry, 4)),
            ),
            Class::Elf64 => (reader.u64(entry, 0), reader.u64(entry, 8)),
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value),
            DT_STRTAB => strtab = Some(value),
            DT_STRSZ => strsz = Some(value),
            DT_SONAME => soname = Some(value),
            DT_RPATH => rpath = Some(value),
            DT_RUNPATH => runpath = Some(value),
            DT_FLAGS_1 => flags_1 = value,
            _ => {}
        }
    }
    let nodeflib = flags_1 & DF_1_NODEFLIB != 0;
    if needed.is_empty() && soname.is_none() && rpath.is_none() && runpath.is_none() {
        return Ok(Dynamic {
            nodeflib,
            ..Dynamic::default()
        });
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Err(reader.malformed("dynamic strings without DT_STRTAB and DT_STRSZ"));
    };
    let offset = segments
        .iter()
        .filter(|load| load.kind == PT_LOAD)
        .find(|load| strtab >= load.vaddr && strtab - load.vaddr < load.filesz)
        .map(|load| strtab - load.vaddr + load.offset)
        .ok_or_else(|| {
            reader.malformed(format!("DT_STRTAB {strtab:#x} is in no loaded segment"))
        })?;
    let table = reader.bytes(offset, strsz, "the dynamic string table")?;
    let string = |at: u64| -> Result<String, ElfError> {
        let start = usize::try_from(at)
            .ok()
            .filter(|&start| start < table.len())
            .ok_or_else(|| reader.malformed(format!("string offset {at} beyond DT_STRSZ")))?;
        c_string(reader, &table[start..], "a dynamic string")
    };
    let runpath = runpath.map(string).transpose()?;
    Ok(Dynamic {
        needed: needed.into_iter().map(string).collect::<Result<_, _>>()?,
        soname: soname.map(string).transpose()?,
        // The loader ignores DT_RPATH when there is a DT_RUNPATH.
        rpath: match runpath {
            Some(_) => None,
            None => rpath.map(string).transpose()?,
        },
        runpath,
        nodeflib,
    })
}

/// The NUL-terminated UTF-8 string at the start of `bytes`.
fn c_string(reader: &Reader, bytes: &[u8], what: &str) -> Result<String, ElfError> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| reader.malformed(format!("{what} is not NUL-terminated")))?;
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| ElfError::Unsupported {
        path: reader.path.to_owned(),
        what: format!("{what} is not UTF-8"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A temporary directory removed on drop (this module has no tempfile to lean on).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("kiln-elf-test-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn cc(args: &[&str]) {
        let out = Command::new("cc")
            .args(args)
            .output()
            .expect("these tests need a C compiler (cc)");
        assert!(
            out.status.success(),
            "cc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn images(files: &[ResolvedFile]) -> Vec<&str> {
        files.iter().map(|file| file.image_path.as_str()).collect()
    }

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

    #[test]
    fn non_elf_files_are_rejected() {
        let dir = TempDir::new();
        let script = dir.path().join("script");
        fs::write(
            &script,
            "#!/bin/sh\necho hello from a script that is long enough\n",
        )
        .unwrap();
        assert!(matches!(resolve(&script), Err(ElfError::NotElf { path }) if path == script));
        let short = dir.path().join("short");
        fs::write(&short, b"\x7fELF").unwrap();
        assert!(matches!(resolve(&short), Err(ElfError::NotElf { .. })));
        let truncated = dir.path().join("truncated");
        fs::write(&truncated, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0").unwrap();
        assert!(matches!(
            resolve(&truncated),
            Err(ElfError::Malformed { .. })
        ));
        assert!(matches!(
            resolve(&dir.path().join("absent")),
            Err(ElfError::Io { .. })
        ));
    }

    /// A program using libmine.so (in `lib/`, which needs libdep.so in `dep/`) and libm,
    /// linked with `$ORIGIN`-relative paths as RUNPATH (`new_dtags`) or RPATH.
    fn build_program(dir: &Path, new_dtags: bool, rpath: &str) -> PathBuf {
        for sub in ["src", "lib", "dep", "bin"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let src = |name: &str, code: &str| {
            let path = dir.join("src").join(name);
            fs::write(&path, code).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let dep = src("dep.c", "int dep(int x) { return x + 1; }\n");
        let mine = src(
            "mine.c",
            "int dep(int);\nint mine(int x) { return dep(x) * 2; }\n",
        );
        let prog = src(
            "prog.c",
            "#include <math.h>\n#include <stdlib.h>\nint mine(int);\n\
             int main(int argc, char **argv) { return mine((int)cos(atof(argc > 1 ? argv[1] : \"0\"))) == 4 ? 0 : 1; }\n",
        );
        let d = dir.to_str().unwrap();
        cc(&[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libdep.so",
            "-o",
            &format!("{d}/dep/libdep.so"),
            &dep,
        ]);
        cc(&[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libmine.so",
            "-o",
            &format!("{d}/lib/libmine.so"),
            &mine,
            &format!("-L{d}/dep"),
            "-ldep",
        ]);
        let binary = dir.join("bin/prog");
        let dtags = if new_dtags {
            "-Wl,--enable-new-dtags"
        } else {
            "-Wl,--disable-new-dtags"
        };
        cc(&[
            "-o",
            binary.to_str().unwrap(),
            &prog,
            "-Wl,--no-as-needed",
            &format!("-L{d}/lib"),
            &format!("-L{d}/dep"),
            &format!("-Wl,-rpath-link,{d}/dep"),
            "-lmine",
            "-lm",
            dtags,
            &format!("-Wl,-rpath,{rpath}"),
        ]);
        binary
    }

    #[test]
    fn rpath_is_inherited_by_libraries_and_origin_is_expanded() {
        let dir = TempDir::new();
        let binary = build_program(dir.path(), false, "$ORIGIN/../lib:${ORIGIN}/../dep");
        assert!(
            Command::new(&binary).status().unwrap().success(),
            "the test program runs"
        );
        let elf = parse(&binary).unwrap();
        assert!(elf.dynamic.runpath.is_none() && elf.dynamic.rpath.is_some());

        let files = resolve(&binary).unwrap();
        let d = dir.path().canonicalize().unwrap();
        let d = d.to_str().unwrap();
        let names = images(&files);
        assert!(
            names.contains(&format!("{d}/lib/libmine.so").as_str()),
            "{names:?}"
        );
        // libmine has no paths of its own: libdep is found through prog's RPATH.
        assert!(
            names.contains(&format!("{d}/dep/libdep.so").as_str()),
            "{names:?}"
        );
        assert!(
            names.iter().any(|name| name.ends_with("/libm.so.6")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|name| name.ends_with("/libc.so.6")),
            "{names:?}"
        );
        assert!(names.contains(&elf.interp.as_deref().unwrap()), "{names:?}");

        // Placed elsewhere in the image, $ORIGIN follows the binary there.
        let placed = resolve_placed(&binary, "/app/bin/prog", &SearchConfig::host()).unwrap();
        let names = images(&placed);
        assert!(names.contains(&"/app/lib/libmine.so"), "{names:?}");
        assert!(names.contains(&"/app/dep/libdep.so"), "{names:?}");
    }

    #[test]
    fn runpath_is_not_inherited() {
        let dir = TempDir::new();
        let binary = build_program(dir.path(), true, "$ORIGIN/../lib:$ORIGIN/../dep");
        let elf = parse(&binary).unwrap();
        assert!(elf.dynamic.runpath.is_some() && elf.dynamic.rpath.is_none());
        // libmine needs libdep, but the executable's RUNPATH does not apply to it, just
        // as the real loader would not find it.
        let refused = Command::new(&binary).status().unwrap();
        assert!(!refused.success());
        match resolve(&binary) {
            Err(ElfError::Missing {
                lib,
                needed_by,
                searched,
            }) => {
                assert_eq!(lib, "libdep.so");
                assert!(needed_by.ends_with("lib/libmine.so"), "{needed_by:?}");
                assert!(!searched.is_empty());
            }
            other => panic!("expected libdep.so to be missing, got {other:?}"),
        }
    }

    #[test]
    fn runpath_resolves_the_executables_own_needs() {
        let dir = TempDir::new();
        let binary = build_program(dir.path(), true, "$ORIGIN/../lib:$ORIGIN/../dep");
        // libdep found through ld.so.conf: relocated into the first default directory.
        let conf = dir.path().join("ld.so.conf");
        fs::write(&conf, format!("{}/dep\n", dir.path().display())).unwrap();
        let mut search = SearchConfig::host();
        search.ld_so_conf = conf;
        let files = resolve_placed(&binary, "/app/bin/prog", &search).unwrap();
        let names = images(&files);
        assert!(names.contains(&"/app/lib/libmine.so"), "{names:?}");
        let first_default = search.default_dirs[0].to_str().unwrap();
        let relocated = format!("{first_default}/libdep.so");
        assert!(names.contains(&relocated.as_str()), "{names:?}");
        let libdep = files
            .iter()
            .find(|file| file.image_path == relocated)
            .unwrap();
        assert_eq!(
            libdep.host_path,
            dir.path().join("dep/libdep.so").canonicalize().unwrap()
        );
    }

    #[test]
    fn mismatched_and_broken_candidates_are_skipped() {
        let dir = TempDir::new();
        let binary = build_program(
            dir.path(),
            true,
            "$ORIGIN/../bad32:$ORIGIN/../junk:$ORIGIN/../lib",
        );
        for (sub, content) in [
            (
                "bad32",
                synthetic_elf(
                    Class::Elf32,
                    Endian::Little,
                    EM_386,
                    ET_DYN,
                    None,
                    &[],
                    None,
                ),
            ),
            ("junk", b"not a library at all".to_vec()),
        ] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
            fs::write(dir.path().join(sub).join("libmine.so"), content).unwrap();
        }
        let conf = dir.path().join("ld.so.conf");
        fs::write(&conf, format!("{}/dep\n", dir.path().display())).unwrap();
        let search = SearchConfig {
            ld_so_conf: conf,
            default_dirs: SearchConfig::host().default_dirs,
        };
        let files = resolve_placed(&binary, "/app/bin/prog", &search).unwrap();
        assert!(images(&files).contains(&"/app/lib/libmine.so"), "{files:?}");
    }

    #[test]
    fn missing_libraries_name_what_was_searched() {
        let dir = TempDir::new();
        let binary = build_program(dir.path(), true, "$ORIGIN/../lib");
        let search = SearchConfig {
            ld_so_conf: dir.path().join("absent.conf"),
            default_dirs: vec![dir.path().join("nowhere")],
        };
        match resolve_with(&binary, &search) {
            Err(ElfError::Missing {
                lib,
                needed_by,
                searched,
            }) => {
                // libmine is found through RUNPATH; libm, needed next, is nowhere.
                assert_eq!(lib, "libm.so.6");
                assert_eq!(needed_by, binary);
                let bin = dir.path().canonicalize().unwrap().join("bin");
                assert_eq!(searched, [bin.join("../lib"), dir.path().join("nowhere")]);
            }
            other => panic!("expected a missing library, got {other:?}"),
        }
    }

    #[test]
    fn ld_so_conf_follows_includes() {
        let dir = TempDir::new();
        let d = dir.path();
        fs::create_dir_all(d.join("conf.d")).unwrap();
        fs::write(
            d.join("ld.so.conf"),
            "# comment\n/first/dir/\nhwcap 1 nosegneg\ninclude conf.d/*.conf\n/last # trailing\n",
        )
        .unwrap();
        fs::write(d.join("conf.d/b.conf"), "/b1 /b2\n").unwrap();
        fs::write(d.join("conf.d/a.conf"), "/a\ninclude ../ld.so.conf\n").unwrap();
        fs::write(d.join("conf.d/.hidden.conf"), "/hidden\n").unwrap();
        fs::write(d.join("conf.d/c.txt"), "/ignored\n").unwrap();
        let mut dirs = Vec::new();
        read_ld_so_conf(&d.join("ld.so.conf"), &mut dirs).unwrap();
        let dirs: Vec<_> = dirs.iter().map(|dir| dir.to_str().unwrap()).collect();
        assert_eq!(dirs, ["/first/dir", "/a", "/b1", "/b2", "/last"]);
    }

    #[test]
    fn wildcards_match_like_glob() {
        assert!(wildcard_match(b"*.conf", b"x86_64-linux-gnu.conf"));
        assert!(wildcard_match(b"*.conf", b".conf"));
        assert!(!wildcard_match(b"*.conf", b"a.conf.bak"));
        assert!(wildcard_match(b"a?c*", b"abcdef"));
        assert!(wildcard_match(b"*a*b*", b"xxaxxbxx"));
        assert!(!wildcard_match(b"*a*b", b"xxaxxbxxc"));
        assert!(wildcard_match(b"*", b""));
    }

    #[test]
    fn tokens_expand_like_the_loader() {
        let resolver = Resolver::new(
            &SearchConfig {
                ld_so_conf: PathBuf::from("/nonexistent"),
                default_dirs: vec![
                    PathBuf::from("/lib/x86_64-linux-gnu"),
                    PathBuf::from("/lib"),
                ],
            },
            Kind {
                class: Class::Elf64,
                endian: Endian::Little,
                machine: EM_X86_64,
            },
        )
        .unwrap();
        let origin = Origin {
            host: "/host/bin".to_owned(),
            image: "/app/bin".to_owned(),
        };
        let dirs = resolver.expand(
            "$ORIGIN/../lib:${ORIGIN}:/opt/$LIB:/p/${PLATFORM}/x::rel:/a/$OTHER",
            &origin,
        );
        let shown: Vec<_> = dirs
            .iter()
            .map(|dir| (dir.host.to_str().unwrap(), dir.image.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("/host/bin/../lib", "/app/lib"),
                ("/host/bin", "/app/bin"),
                ("/opt/lib/x86_64-linux-gnu", "/opt/lib/x86_64-linux-gnu"),
                ("/p/x86_64/x", "/p/x86_64/x"),
                ("/a/$OTHER", "/a/$OTHER"),
            ]
        );
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize("/a/./b/../c//d/"), "/a/c/d");
        assert_eq!(normalize("/../x"), "/x");
        assert_eq!(parent("/bin/ls"), "/bin");
        assert_eq!(parent("/ls"), "/");
    }

    /// A minimal ELF file: header, PT_LOAD over everything, PT_INTERP, PT_DYNAMIC.
    fn synthetic_elf(
        class: Class,
        endian: Endian,
        machine: u16,
        e_type: u16,
        interp: Option<&str>,
        needed: &[&str],
        runpath: Option<&str>,
    ) -> Vec<u8> {
        let wide = class == Class::Elf64;
        let (ehsize, phentsize, dynsize) = if wide { (64, 56, 16) } else { (52, 32, 8) };
        let vbase: u64 = 0x40_0000;
        let put = |out: &mut Vec<u8>, value: u64, size: usize| match endian {
            Endian::Little => out.extend_from_slice(&value.to_le_bytes()[..size]),
            Endian::Big => out.extend_from_slice(&value.to_be_bytes()[8 - size..]),
        };
        let word = if wide { 8 } else { 4 };
        // String table.
        let mut strtab = vec![0u8];
        let mut offset_of = |s: &str| {
            let at = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            at
        };
        let needed_offsets: Vec<u64> = needed.iter().map(|name| offset_of(name)).collect();
        let runpath_offset = runpath.map(&mut offset_of);
        let interp_bytes = interp
            .map(|i| [i.as_bytes(), b"\0"].concat())
            .unwrap_or_default();
        let phnum = 1 + usize::from(interp.is_some()) + 1;
        let ph_off = ehsize;
        let interp_off = ph_off + phnum * phentsize;
        let strtab_off = interp_off + interp_bytes.len();
        let dyn_off = strtab_off + strtab.len();
        let dyn_entries = needed.len() + usize::from(runpath.is_some()) + 3;
        let total = dyn_off + dyn_entries * dynsize;

        let mut out = Vec::new();
        out.extend_from_slice(&ELF_MAGIC);
        out.push(if wide { 2 } else { 1 });
        out.push(if endian == Endian::Little { 1 } else { 2 });
        out.push(1);
        out.resize(16, 0);
        put(&mut out, u64::from(e_type), 2);
        put(&mut out, u64::from(machine), 2);
        put(&mut out, 1, 4); // e_version
        put(&mut out, 0, word); // e_entry
        put(&mut out, ph_off as u64, word); // e_phoff
        put(&mut out, 0, word); // e_shoff
        put(&mut out, 0, 4); // e_flags
        put(&mut out, ehsize as u64, 2);
        put(&mut out, phentsize as u64, 2);
        put(&mut out, phnum as u64, 2);
        put(&mut out, 0, 2); // e_shentsize
        put(&mut out, 0, 2); // e_shnum
        put(&mut out, 0, 2); // e_shstrndx
        assert_eq!(out.len(), ehsize);
        let phdr = |out: &mut Vec<u8>, kind: u32, offset: usize, size: usize| {
            let (offset, size) = (offset as u64, size as u64);
            put(out, u64::from(kind), 4);
            if wide {
                put(out, 4, 4); // p_flags
            }
            put(out, offset, word);
            put(out, vbase + offset, word);
            put(out, vbase + offset, word);
            put(out, size, word);
            put(out, size, word);
            if !wide {
                put(out, 4, 4); // p_flags
            }
            put(out, 0x1000, word);
        };
        phdr(&mut out, PT_LOAD, 0, total);
        if interp.is_some() {
            phdr(&mut out, PT_INTERP, interp_off, interp_bytes.len());
        }
        phdr(&mut out, PT_DYNAMIC, dyn_off, dyn_entries * dynsize);
        out.extend_from_slice(&interp_bytes);
        out.extend_from_slice(&strtab);
        let strtab_len = strtab.len() as u64;
        let dynamic = |out: &mut Vec<u8>, tag: u64, value: u64| {
            put(out, tag, word);
            put(out, value, word);
        };
        for offset in needed_offsets {
            dynamic(&mut out, DT_NEEDED, offset);
        }
        if let Some(offset) = runpath_offset {
            dynamic(&mut out, DT_RUNPATH, offset);
        }
        dynamic(&mut out, DT_STRTAB, vbase + strtab_off as u64);
        dynamic(&mut out, DT_STRSZ, strtab_len);
        dynamic(&mut out, DT_NULL, 0);
        assert_eq!(out.len(), total);
        out
    }

    #[test]
    fn parses_every_class_and_byte_order() {
        let dir = TempDir::new();
        for class in [Class::Elf32, Class::Elf64] {
            for endian in [Endian::Little, Endian::Big] {
                let bytes = synthetic_elf(
                    class,
                    endian,
                    0x1234,
                    2,
                    Some("/lib/ld-test.so.1"),
                    &["liba.so.1", "libb.so.2"],
                    Some("$ORIGIN/lib"),
                );
                let path = dir.path().join(format!("{class:?}-{endian:?}"));
                fs::write(&path, bytes).unwrap();
                let elf = parse(&path).unwrap();
                assert_eq!(
                    elf.kind,
                    Kind {
                        class,
                        endian,
                        machine: 0x1234
                    }
                );
                assert_eq!(elf.e_type, 2);
                assert_eq!(elf.interp.as_deref(), Some("/lib/ld-test.so.1"));
                assert_eq!(elf.dynamic.needed, ["liba.so.1", "libb.so.2"]);
                assert_eq!(elf.dynamic.runpath.as_deref(), Some("$ORIGIN/lib"));
                assert_eq!(elf.dynamic.rpath, None);
            }
        }
    }

    #[test]
    fn corrupt_dynamic_sections_are_malformed() {
        let dir = TempDir::new();
        let mut bytes = synthetic_elf(
            Class::Elf64,
            Endian::Little,
            EM_X86_64,
            2,
            None,
            &["liba.so"],
            None,
        );
        // Point the dynamic segment past the end of the file.
        let dynamic_ph = 64 + 56;
        bytes[dynamic_ph + 8..dynamic_ph + 16].copy_from_slice(&0xffff_u64.to_le_bytes());
        let path = dir.path().join("corrupt");
        fs::write(&path, bytes).unwrap();
        assert!(matches!(parse(&path), Err(ElfError::Malformed { .. })));
    }

    #[test]
    fn the_interpreter_of_a_synthetic_binary_must_exist() {
        let dir = TempDir::new();
        let bytes = synthetic_elf(
            Class::Elf64,
            Endian::Little,
            EM_X86_64,
            2,
            Some("/nonexistent/ld.so"),
            &[],
            None,
        );
        let path = dir.path().join("prog");
        fs::write(&path, bytes).unwrap();
        match resolve(&path) {
            Err(ElfError::Missing { lib, needed_by, .. }) => {
                assert_eq!(lib, "/nonexistent/ld.so");
                assert_eq!(needed_by, path);
            }
            other => panic!("expected a missing interpreter, got {other:?}"),
        }
    }
}
