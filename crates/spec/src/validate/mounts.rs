//! Validates what a service mounts: `tmpfs` scratch space and external `volumes`.

use std::path::PathBuf;

use toml::Spanned;

use crate::model::Volume;
use crate::raw::{Field, RawVolume};
use crate::report::{Report, Span};
use crate::validate::values;

/// Normalized absolute paths, without duplicates.
pub(crate) fn tmpfs(
    raw: &[Spanned<String>],
    service: &str,
    report: &mut Report,
) -> Option<Vec<String>> {
    let key = format!("{service}.tmpfs");
    let mut ok = true;
    let mut paths: Vec<String> = Vec::with_capacity(raw.len());
    for path in raw {
        let Some(target) = target(path.get_ref(), &path.span(), &key, report) else {
            ok = false;
            continue;
        };
        if paths.contains(&target) {
            report.error(
                &path.span(),
                format!("`{target}` is listed twice in `{key}`"),
            );
            ok = false;
            continue;
        }
        paths.push(target);
    }
    ok.then_some(paths)
}

/// Volumes whose targets differ from each other and from `tmpfs`.
pub(crate) fn volumes(
    raw: &[RawVolume],
    tmpfs: &[String],
    service: &str,
    report: &mut Report,
) -> Option<Vec<Volume>> {
    let mut ok = true;
    let mut volumes: Vec<Volume> = Vec::with_capacity(raw.len());
    for raw_volume in raw {
        let Some(volume) = volume(raw_volume, service, report) else {
            ok = false;
            continue;
        };
        let to = &volume.to;
        let already = if tmpfs.contains(to) {
            Some("a tmpfs")
        } else if volumes.iter().any(|v| &v.to == to) {
            Some("another volume")
        } else {
            None
        };
        if let Some(other) = already {
            let span = raw_volume
                .to
                .as_ref()
                .map_or(&raw_volume.header, |f| &f.span);
            report.error(span, format!("`{to}` is already mounted by {other}"));
            ok = false;
            continue;
        }
        volumes.push(volume);
    }
    ok.then_some(volumes)
}

fn volume(raw: &RawVolume, service: &str, report: &mut Report) -> Option<Volume> {
    let key = |name: &str| format!("{service}.volumes.{name}");
    let mut ok = true;
    // A misspelled key is the likelier cause of a missing one, and is reported already.
    for needed in ["host", "to"] {
        if !raw.present.contains(&needed) && !raw.unknown_keys {
            report
                .error(&raw.header, format!("missing `{needed}` in {}", raw.place))
                .hint("for example: { host = \"/srv/data\", to = \"/data\", external = true }");
            ok = false;
        }
    }
    let host = raw
        .host
        .as_ref()
        .and_then(|field| host(field, &key("host"), report));
    let to = raw
        .to
        .as_ref()
        .and_then(|field| target(&field.value, &field.span, &key("to"), report));
    let external = match &raw.external {
        Some(field) if field.value => true,
        Some(field) => {
            not_external(&field.span, report);
            false
        }
        None if raw.present.contains(&"external") || raw.unknown_keys => false,
        None => {
            not_external(&raw.header, report);
            false
        }
    };
    if !(ok && external) {
        return None;
    }
    Some(Volume {
        host: host?,
        to: to?,
        read_only: raw.read_only.as_ref().is_some_and(|f| f.value),
        external,
    })
}

fn not_external(span: &Span, report: &mut Report) {
    report
        .error(
            span,
            "a volume is state outside the instance: mark it `external = true`",
        )
        .hint("for scratch space that may die with the instance, use `tmpfs` instead");
}

/// An absolute host path without `..`, normalized.
fn host(field: &Field<String>, key: &str, report: &mut Report) -> Option<PathBuf> {
    let path = &field.value;
    let reason = if !path.starts_with('/') {
        "it must be an absolute path"
    } else if path.contains('\0') {
        "it must not contain a NUL character"
    } else if path.split('/').any(|part| part == "..") {
        "it must not contain `..`"
    } else {
        return Some(PathBuf::from(path).components().collect());
    };
    report.error(&field.span, values::invalid(key, path, reason));
    None
}

/// A mount target in the instance: absolute, without `..`, not `/`;
/// normalized (no `.`, empty components or trailing `/`).
fn target(path: &str, span: &Span, key: &str, report: &mut Report) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let reason = if !path.starts_with('/') {
        "it must be an absolute path"
    } else if path.contains('\0') {
        "it must not contain a NUL character"
    } else if parts.contains(&"..") {
        "it must not contain `..`"
    } else if parts.is_empty() {
        "it is the root of the instance"
    } else {
        return Some(format!("/{}", parts.join("/")));
    };
    let diagnostic = report.error(span, values::invalid(key, path, reason));
    if !path.is_empty() && !path.starts_with('/') {
        diagnostic.hint(format!(
            "did you mean `/{}`?",
            path.trim_start_matches("./")
        ));
    }
    None
}
