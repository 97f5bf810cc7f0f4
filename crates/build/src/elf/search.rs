//! The resolution walk: the directories searched for each needed name, in the loader's
//! order, with `$ORIGIN`, `$LIB` and `$PLATFORM` expanded.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::ldconf::read_ld_so_conf;
use super::parse::{Dynamic, EM_386, EM_AARCH64, EM_X86_64, ET_DYN, Elf, Kind, parse};
use super::paths::{canonicalize, normalize, parent, utf8};
use super::{ElfError, ResolvedFile, SearchConfig};

/// The directory `$ORIGIN` stands for, on the host and in the image.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) host: String,
    pub(super) image: String,
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
pub(super) struct Resolver {
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
    pub(super) fn new(search: &SearchConfig, kind: Kind) -> Result<Self, ElfError> {
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

    pub(super) fn run(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::process::Command;

    use super::super::parse::{Class, Endian};
    use super::super::testutil::{TempDir, images, synthetic_elf};
    use super::super::{resolve, resolve_placed, resolve_with};
    use super::*;

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
