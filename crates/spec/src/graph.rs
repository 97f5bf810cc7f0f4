//! Dependencies between images through `from_image`: cycles and build order.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Diagnostic, SpecError};
use crate::model::{ImageSpec, Spec};
use crate::suggest::did_you_mean;

/// Image name -> names of the images it copies from.
pub(crate) type Dependencies<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

/// Cycles in `deps`, each closed (`[a, b, a]`) and rotated to start at its
/// smallest name; in name order, at least one for every group of images
/// that depend on each other. Names missing from `deps` are ignored.
pub(crate) fn cycles<'a>(deps: &Dependencies<'a>) -> Vec<Vec<&'a str>> {
    let mut search = Search {
        deps,
        done: BTreeSet::new(),
        stack: Vec::new(),
        found: BTreeSet::new(),
    };
    for &name in deps.keys() {
        search.visit(name);
    }
    search.found.into_iter().collect()
}

struct Search<'d, 'a> {
    deps: &'d Dependencies<'a>,
    done: BTreeSet<&'a str>,
    stack: Vec<&'a str>,
    found: BTreeSet<Vec<&'a str>>,
}

impl<'a> Search<'_, 'a> {
    fn visit(&mut self, name: &'a str) {
        if self.done.contains(name) {
            return;
        }
        if let Some(at) = self.stack.iter().position(|&n| n == name) {
            self.found.insert(closed_cycle(&self.stack[at..]));
            return;
        }
        let Some(next) = self.deps.get(name) else {
            return;
        };
        self.stack.push(name);
        for &dep in next {
            self.visit(dep);
        }
        self.stack.pop();
        self.done.insert(name);
    }
}

fn closed_cycle<'a>(members: &[&'a str]) -> Vec<&'a str> {
    let start = (0..members.len()).min_by_key(|&i| members[i]).unwrap_or(0);
    let mut cycle: Vec<&str> = members[start..]
        .iter()
        .chain(&members[..start])
        .copied()
        .collect();
    cycle.push(cycle[0]);
    cycle
}

/// See [`Spec::build_order`].
pub(crate) fn build_order<'s>(
    spec: &'s Spec,
    selected: &[String],
) -> Result<Vec<&'s ImageSpec>, SpecError> {
    let unknown: Vec<Diagnostic> = selected
        .iter()
        .filter(|name| !spec.images.contains_key(name.as_str()))
        .map(|name| unknown_selection(spec, name))
        .collect();
    if !unknown.is_empty() {
        return Err(SpecError::Invalid {
            diagnostics: unknown,
        });
    }

    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&str> = if selected.is_empty() {
        spec.images.keys().map(String::as_str).collect()
    } else {
        selected.iter().map(String::as_str).collect()
    };
    while let Some(name) = queue.pop() {
        if !wanted.insert(name) {
            continue;
        }
        let image = spec.images.get(name).ok_or_else(|| {
            whole_spec_error(spec, format!("unknown image `{name}` in `from_image`"))
        })?;
        queue.extend(image.dependencies());
    }

    let mut order: Vec<&ImageSpec> = Vec::with_capacity(wanted.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < wanted.len() {
        let next = wanted
            .iter()
            .filter(|name| !placed.contains(*name))
            .filter_map(|name| spec.images.get(*name))
            .find(|image| image.dependencies().iter().all(|dep| placed.contains(dep)));
        let Some(image) = next else {
            let stuck: Vec<&str> = wanted.difference(&placed).copied().collect();
            return Err(whole_spec_error(
                spec,
                format!("images form a cycle: {}", stuck.join(", ")),
            ));
        };
        placed.insert(&image.name);
        order.push(image);
    }
    Ok(order)
}

fn unknown_selection(spec: &Spec, name: &str) -> Diagnostic {
    let mut diagnostic = Diagnostic {
        file: spec.path.clone(),
        location: None,
        message: format!("unknown image `{name}`"),
        hints: Vec::new(),
    };
    if let Some(known) = did_you_mean(name, spec.images.keys().map(String::as_str)) {
        diagnostic.hint(format!("did you mean `{known}`?"));
    }
    if spec.images.is_empty() {
        diagnostic.hint("this file declares no images");
    } else {
        let names: Vec<&str> = spec.images.keys().map(String::as_str).collect();
        diagnostic.hint(format!("images in this file: {}", names.join(", ")));
    }
    diagnostic
}

/// For a `Spec` built by hand rather than by `parse`, which can break invariants.
fn whole_spec_error(spec: &Spec, message: String) -> SpecError {
    SpecError::Invalid {
        diagnostics: vec![Diagnostic {
            file: spec.path.clone(),
            location: None,
            message,
            hints: Vec::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps<'a>(edges: &[(&'a str, &[&'a str])]) -> Dependencies<'a> {
        edges
            .iter()
            .map(|(name, to)| (*name, to.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn no_cycles() {
        let d = deps(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        assert!(cycles(&d).is_empty());
    }

    #[test]
    fn finds_cycles_rotated_to_smallest_name() {
        let d = deps(&[("x", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(cycles(&d), vec![vec!["b", "c", "b"]]);
        let d = deps(&[("z", &["m"]), ("m", &["q"]), ("q", &["z"])]);
        assert_eq!(cycles(&d), vec![vec!["m", "q", "z", "m"]]);
    }

    #[test]
    fn finds_separate_cycles() {
        let d = deps(&[("a", &["b"]), ("b", &["a"]), ("c", &["d"]), ("d", &["c"])]);
        assert_eq!(cycles(&d), vec![vec!["a", "b", "a"], vec!["c", "d", "c"]]);
    }
}
