//! Putting layer entries in canonical form: validated, sorted, parents first, mtimes
//! clamped, hard links pointing at the first path of their group.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::{EntryKind, LayerEntry};
use crate::ImageError;

/// Orders paths by their components, so a directory comes right before its children.
pub(crate) fn path_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Validates `entries` and returns them in canonical form and order.
pub(crate) fn canonicalize(
    mut entries: Vec<LayerEntry>,
    epoch: u64,
) -> Result<Vec<LayerEntry>, ImageError> {
    for e in &mut entries {
        validate(e)?;
        e.mtime = e.mtime.min(epoch);
    }
    entries.sort_by(|a, b| path_order(&a.path, &b.path));
    if let Some(pair) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(ImageError::DuplicatePath(pair[0].path.clone()));
    }
    add_parents(&mut entries, epoch)?;
    link_to_first(&mut entries)?;
    Ok(entries)
}

fn validate(e: &LayerEntry) -> Result<(), ImageError> {
    validate_path(&e.path)?;
    if e.mode > 0o7777 {
        return Err(bad_entry(
            &e.path,
            format!("mode {:o} has bits beyond 0o7777", e.mode),
        ));
    }
    match &e.kind {
        EntryKind::Symlink { target } if target.is_empty() || target.contains('\0') => {
            Err(bad_entry(
                &e.path,
                "a symlink target must be non-empty, without NUL".into(),
            ))
        }
        EntryKind::Hardlink { target } => validate_path(target),
        _ => Ok(()),
    }
}

/// A layer path: relative, `/`-separated, no empty, `.` or `..` components, no NUL, and
/// no component that would read as a whiteout.
pub(crate) fn validate_path(path: &str) -> Result<(), ImageError> {
    let bad = |reason| ImageError::BadLayerPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("it is empty"));
    }
    if path.starts_with('/') {
        return Err(bad("it must be relative to the layer root"));
    }
    if path.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    for component in path.split('/') {
        match component {
            "" => return Err(bad("it has an empty component")),
            "." | ".." => return Err(bad("it has a `.` or `..` component")),
            c if c.starts_with(".wh.") => {
                return Err(bad("`.wh.` names are reserved for whiteouts"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn bad_entry(path: &str, reason: String) -> ImageError {
    ImageError::BadLayerEntry {
        path: path.to_string(),
        reason,
    }
}

/// Adds a directory for every missing ancestor; fails if an ancestor is not a directory.
/// `entries` are sorted and stay sorted.
fn add_parents(entries: &mut Vec<LayerEntry>, epoch: u64) -> Result<(), ImageError> {
    let kinds: HashMap<&str, &EntryKind> =
        entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    let mut added: HashSet<&str> = HashSet::new();
    let mut missing = Vec::new();
    for e in entries.iter() {
        let ancestors = e.path.match_indices('/').map(|(i, _)| &e.path[..i]);
        for dir in ancestors {
            match kinds.get(dir) {
                Some(EntryKind::Dir { .. }) => {}
                Some(_) => {
                    return Err(bad_entry(
                        dir,
                        format!("it is not a directory, yet `{}` is inside it", e.path),
                    ));
                }
                None => {
                    if added.insert(dir) {
                        missing.push(LayerEntry {
                            path: dir.to_string(),
                            kind: EntryKind::Dir { opaque: false },
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            mtime: epoch,
                        });
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        entries.append(&mut missing);
        entries.sort_by(|a, b| path_order(&a.path, &b.path));
    }
    Ok(())
}

/// Rewrites each group of hard links so that the group's first path (in canonical
/// order) holds the content, with the original file's metadata, and every other path
/// is a hard link to it. `entries` must be sorted.
fn link_to_first(entries: &mut [LayerEntry]) -> Result<(), ImageError> {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    // Every member of a group, by the index of the entry holding the content.
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let EntryKind::Hardlink { target } = &e.kind else {
            continue;
        };
        let mut target = target;
        let mut steps = 0;
        let root = loop {
            steps += 1;
            let Some(&j) = index.get(target.as_str()) else {
                return Err(bad_entry(
                    &e.path,
                    format!("hard link target `{target}` is not in the layer"),
                ));
            };
            match &entries[j].kind {
                EntryKind::File { .. } | EntryKind::Symlink { .. } => break j,
                EntryKind::Hardlink { target: next } if steps <= entries.len() => target = next,
                EntryKind::Hardlink { .. } => {
                    return Err(bad_entry(&e.path, "hard links form a cycle".into()));
                }
                EntryKind::Dir { .. } | EntryKind::Whiteout => {
                    return Err(bad_entry(
                        &e.path,
                        format!("hard link target `{target}` is not a file or symlink"),
                    ));
                }
            }
        };
        groups.entry(root).or_insert_with(|| vec![root]).push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    for mut members in groups {
        members.sort_unstable();
        let root = members
            .iter()
            .copied()
            .find(|&m| !matches!(entries[m].kind, EntryKind::Hardlink { .. }))
            .expect("a group holds the entry its links resolve to");
        let first = members[0];
        let first_path = entries[first].path.clone();
        let content = std::mem::replace(
            &mut entries[root].kind,
            EntryKind::Hardlink {
                target: first_path.clone(),
            },
        );
        let source = entries[root].clone();
        for &m in &members {
            let e = &mut entries[m];
            e.kind = EntryKind::Hardlink {
                target: first_path.clone(),
            };
            (e.mode, e.uid, e.gid, e.mtime) = (source.mode, source.uid, source.gid, source.mtime);
        }
        entries[first].kind = content;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::FileSource;

    fn entry(path: &str, kind: EntryKind) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime: 100,
        }
    }

    fn file(path: &str, content: &str) -> LayerEntry {
        entry(
            path,
            EntryKind::File {
                source: FileSource::Bytes(content.into()),
            },
        )
    }

    fn link(path: &str, target: &str) -> LayerEntry {
        entry(
            path,
            EntryKind::Hardlink {
                target: target.into(),
            },
        )
    }

    fn paths(entries: &[LayerEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn sorts_by_components_and_adds_parents() {
        let out = canonicalize(
            vec![file("a.txt", ""), file("a/b/c", ""), file("a-b", "")],
            50,
        )
        .unwrap();
        assert_eq!(paths(&out), ["a", "a/b", "a/b/c", "a-b", "a.txt"]);
        assert_eq!(out[0].kind, EntryKind::Dir { opaque: false });
        assert_eq!((out[0].mode, out[0].uid, out[0].mtime), (0o755, 0, 50));
        assert!(out.iter().all(|e| e.mtime <= 50));
    }

    #[test]
    fn refuses_bad_paths_duplicates_and_files_as_parents() {
        for p in ["", "/a", "a//b", "a/./b", "../a", "a/", "x/.wh.y", "a\0b"] {
            let err = canonicalize(vec![file(p, "")], 0).unwrap_err();
            assert!(
                matches!(err, ImageError::BadLayerPath { .. }),
                "{p:?}: {err}"
            );
        }
        let err = canonicalize(vec![file("a", "1"), file("a", "2")], 0).unwrap_err();
        assert!(err.to_string().contains("`a`"), "{err}");
        let err = canonicalize(vec![file("a", ""), file("a/b", "")], 0).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        let mut e = file("m", "");
        e.mode = 0o10000;
        assert!(canonicalize(vec![e], 0).is_err());
    }

    #[test]
    fn hard_link_groups_hold_content_at_their_first_path() {
        let mut f = file("z", "data");
        f.mode = 0o700;
        let out = canonicalize(vec![link("m", "z"), f, link("b", "m")], 1000).unwrap();
        assert_eq!(paths(&out), ["b", "m", "z"]);
        assert_eq!(
            out[0].kind,
            EntryKind::File {
                source: FileSource::Bytes("data".into())
            }
        );
        assert_eq!(out[0].mode, 0o700);
        for e in &out[1..] {
            assert_eq!(e.kind, EntryKind::Hardlink { target: "b".into() });
            assert_eq!(e.mode, 0o700);
        }
    }

    #[test]
    fn refuses_dangling_and_cyclic_hard_links() {
        assert!(canonicalize(vec![link("a", "nope")], 0).is_err());
        assert!(canonicalize(vec![link("a", "b"), link("b", "a")], 0).is_err());
        let chain = vec![link("a", "b"), link("b", "c"), link("c", "b")];
        assert!(canonicalize(chain, 0).is_err());
        let dir = entry("d", EntryKind::Dir { opaque: false });
        assert!(canonicalize(vec![dir, link("a", "d")], 0).is_err());
    }
}
