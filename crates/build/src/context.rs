//! The build context: the folder of kiln.toml, less what `.kilnignore` excludes, and the
//! expansion of `copy` sources (paths, directories, globs) inside it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::BuildError;

/// The ignore file read from the context root (gitignore syntax).
pub const IGNORE_FILE: &str = ".kilnignore";

#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Gitignore,
}

/// One source selected by a `copy` or `copy_binary` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Path relative to the context root.
    pub rel: PathBuf,
    pub abs: PathBuf,
    pub is_dir: bool,
}

impl Context {
    /// Opens the context at `root`, reading its `.kilnignore` if there is one.
    pub fn open(root: &Path) -> Result<Context, BuildError> {
        let root = fs::canonicalize(root).map_err(BuildError::io(root))?;
        let mut builder = GitignoreBuilder::new(&root);
        let ignore_file = root.join(IGNORE_FILE);
        if ignore_file.exists()
            && let Some(err) = builder.add(&ignore_file)
        {
            return Err(BuildError::Other(format!(
                "{}: {err}",
                ignore_file.display()
            )));
        }
        let ignore = builder
            .build()
            .map_err(|e| BuildError::Other(format!("{}: {e}", ignore_file.display())))?;
        Ok(Context { root, ignore })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` (relative to the root) or one of its parents is excluded.
    pub fn is_ignored(&self, rel: &Path, is_dir: bool) -> bool {
        self.ignore
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }

    /// Expands a `copy` source: a plain path (file, symlink or directory) or a glob.
    /// Errors name the source and say why nothing was selected.
    pub fn select(&self, src: &str) -> Result<Vec<Selected>, BuildError> {
        if is_glob(src) {
            return self.select_glob(src);
        }
        let rel = PathBuf::from(src);
        let abs = self.root.join(&rel);
        let meta = fs::symlink_metadata(&abs).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BuildError::Other(format!(
                    "`{src}` does not exist in the build context {}",
                    self.root.display()
                ))
            } else {
                BuildError::io(&abs)(e)
            }
        })?;
        self.check_inside(src, &abs)?;
        if self.is_ignored(&rel, meta.is_dir()) {
            return Err(BuildError::Other(format!(
                "`{src}` is excluded by {IGNORE_FILE}"
            )));
        }
        Ok(vec![Selected {
            rel,
            abs,
            is_dir: meta.is_dir(),
        }])
    }

    /// Rejects a source whose parent directories lead outside the context through a
    /// symbolic link (the spec already rejects `..`; the final component itself is
    /// copied as a link, not followed).
    fn check_inside(&self, src: &str, abs: &Path) -> Result<(), BuildError> {
        if src == "." {
            return Ok(());
        }
        let parent = abs.parent().unwrap_or(abs);
        let real = fs::canonicalize(parent).map_err(BuildError::io(parent))?;
        if !real.starts_with(&self.root) {
            return Err(BuildError::Other(format!(
                "`{src}` escapes the build context through a symbolic link (it resolves to {})",
                real.display()
            )));
        }
        Ok(())
    }

    fn select_glob(&self, pattern: &str) -> Result<Vec<Selected>, BuildError> {
        let matcher: GlobMatcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| BuildError::Other(format!("bad glob `{pattern}`: {e}")))?
            .compile_matcher();
        let mut found = Vec::new();
        self.walk_matches(&self.root.clone(), Path::new(""), &matcher, &mut found)?;
        if found.is_empty() {
            return Err(BuildError::Other(format!(
                "`{pattern}` matches no file in the build context {}",
                self.root.display()
            )));
        }
        Ok(found)
    }

    fn walk_matches(
        &self,
        dir: &Path,
        rel_dir: &Path,
        matcher: &GlobMatcher,
        found: &mut Vec<Selected>,
    ) -> Result<(), BuildError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(BuildError::io(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(BuildError::io(dir))?;
        names.sort();
        for name in names {
            let abs = dir.join(&name);
            let rel = rel_dir.join(&name);
            let meta = fs::symlink_metadata(&abs).map_err(BuildError::io(&abs))?;
            let is_dir = meta.is_dir();
            if self.ignore.matched(&rel, is_dir).is_ignore() {
                continue;
            }
            if matcher.is_match(&rel) {
                // A matched directory is copied whole; its children are not matched again.
                found.push(Selected { rel, abs, is_dir });
            } else if is_dir {
                self.walk_matches(&abs, &rel, matcher, found)?;
            }
        }
        Ok(())
    }
}

/// Whether a copy source is a glob rather than a path.
pub fn is_glob(src: &str) -> bool {
    src.contains(['*', '?', '['])
}

/// The last normal component of a path, as a string.
pub fn base_name(p: &Path) -> Option<String> {
    p.components().rev().find_map(|c| match c {
        Component::Normal(n) => n.to_str().map(str::to_string),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("src/deep")).unwrap();
        fs::create_dir_all(r.join("target")).unwrap();
        fs::write(r.join("src/a.rs"), "a").unwrap();
        fs::write(r.join("src/b.txt"), "b").unwrap();
        fs::write(r.join("src/deep/c.rs"), "c").unwrap();
        fs::write(r.join("target/out"), "o").unwrap();
        fs::write(r.join(".kilnignore"), "target/\n*.txt\n").unwrap();
        let c = Context::open(r).unwrap();
        (dir, c)
    }

    #[test]
    fn globs_match_within_one_directory_level_and_skip_ignored_files() {
        let (_d, c) = ctx();
        let got: Vec<_> = c
            .select("src/*")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(
            got,
            vec![PathBuf::from("src/a.rs"), PathBuf::from("src/deep")]
        );
        let got: Vec<_> = c
            .select("**/*.rs")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(
            got,
            vec![PathBuf::from("src/a.rs"), PathBuf::from("src/deep/c.rs")]
        );
    }

    #[test]
    fn ignored_and_missing_sources_are_errors_that_say_so() {
        let (_d, c) = ctx();
        let e = c.select("target/out").unwrap_err().to_string();
        assert!(e.contains("excluded by .kilnignore"), "{e}");
        let e = c.select("nope").unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = c.select("*.none").unwrap_err().to_string();
        assert!(e.contains("matches no file"), "{e}");
    }

    #[test]
    fn a_symlinked_parent_leading_outside_is_refused() {
        let (d, c) = ctx();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("out")).unwrap();
        let e = c.select("out/secret").unwrap_err().to_string();
        assert!(e.contains("escapes the build context"), "{e}");
    }
}
