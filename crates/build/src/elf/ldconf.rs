//! `ld.so.conf` parsing: its directories, following `include` lines.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ElfError;

/// How deep `include`s may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Appends the directories named by the `ld.so.conf`-format file `conf` to `dirs`,
/// following `include` lines and ignoring `hwcap` lines and comments.
pub(super) fn read_ld_so_conf(conf: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), ElfError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testutil::TempDir;
    use super::*;

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
}
