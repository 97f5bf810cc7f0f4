//! The validated spec: once built, every value in it has passed validation.

mod base;
mod image_ref;
mod probe;
mod route;
mod service;
mod signal;
mod step;
mod strategy;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use base::Base;
pub use image_ref::ImageRef;
pub use probe::{Check, Probe};
pub use route::{RouteSpec, TlsSpec};
pub use service::{Resources, ServiceSpec, StopSpec, Volume};
pub use signal::Signal;
pub use step::{CopyBinaryStep, CopyStep, RunStep, Step};
pub use strategy::{Analysis, Pause, Strategy, StrategyKind};

use crate::error::SpecError;

/// A loaded kiln.toml.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file, as the caller named it (used in messages).
    pub path: PathBuf,
    /// The build context: the folder of the spec file.
    pub context: PathBuf,
    pub images: BTreeMap<String, ImageSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
    /// Each route's `service` is one of `services`.
    pub routes: BTreeMap<String, RouteSpec>,
}

impl Spec {
    /// Images to build for the selection (empty = all) with their
    /// `from_image` dependencies, in dependency order (dependencies first,
    /// then by name). An unknown selected name is an error naming it.
    pub fn build_order(&self, selected: &[String]) -> Result<Vec<&ImageSpec>, SpecError> {
        crate::graph::build_order(self, selected)
    }
}

/// One `[image.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageSpec {
    pub name: String,
    pub from: Base,
    /// `None`: keep the base image's.
    pub entrypoint: Option<Vec<String>>,
    /// `None`: keep the base image's.
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    /// "UID", "UID:GID" or a user name.
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Ports 1-65535, in the order written, without duplicates.
    pub expose: Vec<u16>,
    pub steps: Vec<Step>,
    /// 1-based line of each step's table header, parallel to `steps`.
    #[serde(skip)]
    pub step_lines: Vec<usize>,
    /// 1-based line of the image's table header.
    #[serde(skip)]
    pub line: usize,
}

impl ImageSpec {
    /// The other images this one copies from (`from_image`), by name.
    pub fn dependencies(&self) -> BTreeSet<&str> {
        self.steps
            .iter()
            .filter_map(|step| match step {
                Step::Copy(copy) => copy.from_image.as_deref(),
                Step::Run(_) | Step::CopyBinary(_) => None,
            })
            .collect()
    }
}
