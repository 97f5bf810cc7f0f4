//! Validates one service: its settings, then its limits, mounts and probes.

use std::time::Duration;

use crate::model::{ImageRef, ServiceSpec};
use crate::raw::{RawService, toml_key};
use crate::report::Report;
use crate::validate::{bounded, image, image_ref, limits, mounts, probe, strategy, values};

/// `None` if the service has problems, all of which are reported.
pub(crate) fn service(raw: &RawService, report: &mut Report) -> Option<ServiceSpec> {
    let name = &raw.name.value;
    let label = format!("service.{}", toml_key(name));
    let key = |field: &str| format!("{label}.{field}");
    let mut ok = true;
    if let Err(reason) = values::service_name(name) {
        let diagnostic = report.error(
            &raw.name.key,
            format!("invalid service name `{name}`: {reason}"),
        );
        match values::service_name_like(name) {
            Some(like) => diagnostic.hint(format!("did you mean `{like}`?")),
            None => diagnostic.hint(values::SERVICE_NAME_RULE),
        };
        ok = false;
    }

    let image = image_of(raw, &label, report);
    let replicas = match &raw.replicas {
        Some(field) => bounded::integer(field, &key("replicas"), 0..=1000, report),
        None => Some(1),
    };
    let port = match &raw.port {
        Some(field) => bounded::integer(field, &key("port"), 1..=65535, report).map(Some),
        None => Some(None),
    };
    let args = raw.args.as_ref().map(|field| {
        if field.value.is_empty() {
            report
                .error(&field.span, format!("empty `{}`", key("args")))
                .hint("leave `args` out to run the image's cmd");
            ok = false;
        }
        field.value.clone()
    });
    let env_key = key("env");
    let env = image::table(
        &raw.env,
        &env_key,
        "variable name",
        values::env_name,
        report,
        &mut ok,
    );
    for entry in &raw.env {
        if entry.name == "PORT" {
            report
                .error(&entry.key, format!("`PORT` in `{env_key}` is set by kiln"))
                .hint("kiln sets $PORT to the port it assigns each instance: have the app listen on it");
            ok = false;
        } else if entry.name.starts_with("KILN_") {
            report
                .error(
                    &entry.key,
                    format!("`{}` in `{env_key}` is set by kiln", entry.name),
                )
                .hint("names starting with KILN_ are reserved for kiln: rename the variable");
            ok = false;
        }
    }

    let resources = limits::resources(raw.resources.as_ref(), &label, report);
    let stop = limits::stop(raw.stop.as_ref(), &label, report);
    let tmpfs = mounts::tmpfs(&raw.tmpfs, &label, report);
    let volumes = mounts::volumes(
        &raw.volumes,
        tmpfs.as_deref().unwrap_or_default(),
        &label,
        report,
    );
    // The outer `Option` is failure, the inner one absence.
    let readiness = match &raw.readiness {
        Some(p) => probe::probe(p, Duration::from_secs(1), report).map(Some),
        None => Some(None),
    };
    let liveness = match &raw.liveness {
        Some(p) => probe::probe(p, Duration::from_secs(5), report).map(Some),
        None => Some(None),
    };
    let strategy = strategy::strategy(raw.strategy.as_ref(), report);

    let (image, image_line) = image?;
    let service = ServiceSpec {
        name: name.clone(),
        image,
        replicas: replicas?,
        port: port?,
        args,
        env,
        resources: resources?,
        stop: stop?,
        tmpfs: tmpfs?,
        volumes: volumes?,
        readiness: readiness?,
        liveness: liveness?,
        strategy: strategy?,
        line: report.line(raw.header.start),
        image_line,
    };
    ok.then_some(service)
}

/// The parsed `image` and the line of its value.
fn image_of(raw: &RawService, label: &str, report: &mut Report) -> Option<(ImageRef, usize)> {
    let Some(field) = &raw.image else {
        // A misspelled key is the likelier cause of a missing one, and is reported already.
        if !raw.has("image") && !raw.unknown_keys {
            report
                .error(&raw.header, format!("missing `image` in [{label}]"))
                .hint(format!(
                    "name the image to run, for example: image = \"{}\"",
                    raw.name.value
                ));
        }
        return None;
    };
    match image_ref::image_ref(&field.value) {
        Ok(image) => Some((image, report.line(field.span.start))),
        Err(refused) => {
            let diagnostic = report.error(
                &field.span,
                values::invalid(&format!("{label}.image"), &field.value, refused.reason),
            );
            diagnostic.hint(refused.hint.unwrap_or_else(|| image_ref::FORMS.to_owned()));
            None
        }
    }
}
