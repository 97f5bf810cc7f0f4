//! kiln spec: reads `kiln.toml`, the description of what kiln builds and runs.
//!
//! Reading is two steps: `raw` checks the document's shape (known keys,
//! TOML types) and `validate` turns that into the model ([`Spec`]), whose values
//! are all valid. Every problem is reported with file, line and column.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod graph;
mod model;
mod raw;
mod report;
mod suggest;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{Diagnostic, Location, SpecError};
pub use model::{
    Analysis, Base, Check, CopyBinaryStep, CopyStep, ImageRef, ImageSpec, Pause, Probe, Resources,
    RouteSpec, RunStep, ServiceSpec, Signal, Spec, Step, StopSpec, Strategy, StrategyKind, TlsSpec,
    Volume,
};

use report::Report;

/// Reads and validates the spec at `path`. The build context is the folder
/// of `path`, canonicalized when possible.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let source = std::fs::read_to_string(path).map_err(|error| SpecError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let context = context_of(path);
    let context = context.canonicalize().unwrap_or(context);
    parse_in(&source, path, context)
}

/// Validates `source` as if read from `path`, which is used in messages as
/// given and to derive the build context (its folder, or `.`). Does not touch
/// the filesystem.
pub fn parse(source: &str, path: &Path) -> Result<Spec, SpecError> {
    parse_in(source, path, context_of(path))
}

fn context_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn parse_in(source: &str, path: &Path, context: PathBuf) -> Result<Spec, SpecError> {
    let mut report = Report::new(source, path);
    let valid = match raw::read(source, &mut report) {
        Some(raw) => validate::validate(&raw, &context, &mut report),
        None => Default::default(),
    };
    report.finish()?;
    Ok(Spec {
        path: path.to_path_buf(),
        context,
        images: valid.images,
        services: valid.services,
        routes: valid.routes,
    })
}
