//! Turns the raw shape into the validated model, reporting every problem found.

mod analysis;
mod base;
mod bounded;
mod image;
mod image_ref;
mod limits;
mod mounts;
mod net;
mod path;
mod probe;
mod quantity;
mod route;
mod service;
mod step;
mod strategy;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::graph::{Dependencies, cycles};
use crate::model::{ImageSpec, RouteSpec, ServiceSpec};
use crate::raw::{RawImage, RawSpec, toml_key};
use crate::report::{Report, Span};

/// What validating one image needs to know about the rest of the spec.
pub(crate) struct Scope<'a> {
    /// Names of all images in the spec, valid or not.
    pub names: &'a BTreeSet<String>,
    /// The build context, for resolving base paths.
    pub context: &'a Path,
    /// The image being validated.
    pub image: &'a str,
    /// Its key path, for messages: `image.hello`.
    pub label: String,
}

/// The validated model; meaningful only if nothing was reported.
#[derive(Debug, Default)]
pub(crate) struct Valid {
    pub images: BTreeMap<String, ImageSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
    pub routes: BTreeMap<String, RouteSpec>,
}

/// Validates images, services and routes. A service's `image` is not looked up
/// among the images: it may name an image built before, by another spec. A route's
/// `service` must be a service of this spec.
pub(crate) fn validate(raw: &RawSpec, context: &Path, report: &mut Report) -> Valid {
    let names: BTreeSet<String> = raw.images.iter().map(|i| i.name.value.clone()).collect();
    let mut images = BTreeMap::new();
    for raw_image in &raw.images {
        let scope = Scope {
            names: &names,
            context,
            image: &raw_image.name.value,
            label: format!("image.{}", toml_key(&raw_image.name.value)),
        };
        if let Some(image) = image::image(raw_image, &scope, report) {
            images.insert(image.name.clone(), image);
        }
    }
    report_cycles(&raw.images, report);
    let services = raw
        .services
        .iter()
        .filter_map(|raw_service| service::service(raw_service, report))
        .map(|service| (service.name.clone(), service))
        .collect();
    let service_names: BTreeSet<String> =
        raw.services.iter().map(|s| s.name.value.clone()).collect();
    let route_scope = route::Scope {
        services: &service_names,
        context,
    };
    let routes = route::routes(&raw.routes, &route_scope, report);
    report_unrouted_analyses(raw, report);
    Valid {
        images,
        services,
        routes,
    }
}

/// An analysis reads the proxy's figures for the service: without a route there are
/// none, and the rollout could only wait for its progress deadline and abort.
fn report_unrouted_analyses(raw: &RawSpec, report: &mut Report) {
    let routed: BTreeSet<&str> = raw
        .routes
        .iter()
        .filter_map(|r| r.service.as_ref().map(|s| s.value.as_str()))
        .collect();
    for service in &raw.services {
        let name = service.name.value.as_str();
        let Some(analysis) = service.strategy.as_ref().and_then(|s| s.analysis.as_ref()) else {
            continue;
        };
        if analysis.has_threshold && !routed.contains(name) {
            report
                .error(
                    &analysis.header,
                    format!(
                        "[{}] has nothing to analyse: no route sends traffic to service `{name}`",
                        analysis.label
                    ),
                )
                .hint(format!(
                    "add a [route.NAME] with service = \"{name}\" (the proxy's figures feed the analysis), or remove the analysis"
                ));
        }
    }
}

/// Cycles through `from_image`, each reported at the header of its first image.
fn report_cycles(images: &[RawImage], report: &mut Report) {
    let headers: BTreeMap<&str, &Span> = images
        .iter()
        .map(|i| (i.name.value.as_str(), &i.header))
        .collect();
    // The first `from_image` of each edge, for the hint.
    let mut edges: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut deps = Dependencies::new();
    for image in images {
        let name = image.name.value.as_str();
        let targets = deps.entry(name).or_default();
        for step in &image.steps {
            if let Some(target) = &step.from_image {
                let target = target.value.as_str();
                if target != name && headers.contains_key(target) {
                    targets.insert(target);
                    edges
                        .entry((name, target))
                        .or_insert(report.line(step.header.start));
                }
            }
        }
    }
    for cycle in cycles(&deps) {
        let Some(header) = headers.get(cycle[0]) else {
            continue;
        };
        let hint = cycle
            .windows(2)
            .map(|pair| {
                let line = edges.get(&(pair[0], pair[1])).copied().unwrap_or_default();
                format!(
                    "`{}` copies from `{}` (step at line {line})",
                    pair[0], pair[1]
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        report
            .error(
                header,
                format!("images form a cycle: {}", cycle.join(" -> ")),
            )
            .hint(hint);
    }
}
