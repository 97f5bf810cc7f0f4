//! Validates the routes: each one's settings, then the routes together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{RouteSpec, TlsSpec};
use crate::raw::{Field, RawRoute, RawTls, toml_key};
use crate::report::Report;
use crate::suggest::did_you_mean;
use crate::validate::{bounded, net, path, values};

const ROUTE_NAME_RULE: &str = "route names follow the rule for service names: lowercase letters, digits and `-`, starting with a letter, not ending with `-`, at most 55 characters";

/// What validating a route needs to know about the rest of the spec.
pub(crate) struct Scope<'a> {
    /// Names of all services in the spec, valid or not.
    pub services: &'a BTreeSet<String>,
    /// The spec's folder, for resolving certificate paths.
    pub context: &'a Path,
}

/// The valid routes; problems with any route, or between routes, are reported.
pub(crate) fn routes(
    raw: &[RawRoute],
    scope: &Scope,
    report: &mut Report,
) -> BTreeMap<String, RouteSpec> {
    let mut valid: Vec<(&RawRoute, RouteSpec)> = raw
        .iter()
        .filter_map(|raw_route| Some((raw_route, route(raw_route, scope, report)?)))
        .collect();
    valid.sort_by_key(|(raw_route, _)| raw_route.header.start);
    for (i, (raw_route, route)) in valid.iter().enumerate() {
        if let Some((_, earlier)) = valid[..i].iter().find(|(_, r)| same_requests(r, route)) {
            report
                .error(
                    &raw_route.header,
                    format!(
                        "route `{}` matches the same requests as route `{}` (line {})",
                        route.name, earlier.name, earlier.line
                    ),
                )
                .hint("routes on one listen address must differ in `host` or `path_prefix`");
        } else if let Some((_, earlier)) = valid[..i]
            .iter()
            .find(|(_, r)| r.listen == route.listen && r.tls.is_some() != route.tls.is_some())
        {
            let serves = |r: &RouteSpec| if r.tls.is_some() { "TLS" } else { "plain HTTP" };
            report
                .error(
                    &raw_route.header,
                    format!(
                        "route `{}` serves {} on {}, where route `{}` (line {}) serves {}",
                        route.name,
                        serves(route),
                        route.listen,
                        earlier.name,
                        earlier.line,
                        serves(earlier)
                    ),
                )
                .hint("one listen address serves TLS or plain HTTP, not both: give both routes `tls`, or listen on another port");
        }
    }
    valid
        .into_iter()
        .map(|(_, route)| (route.name.clone(), route))
        .collect()
}

/// Whether two routes take the same requests: same address, host and prefix (`/` is
/// no prefix).
fn same_requests(a: &RouteSpec, b: &RouteSpec) -> bool {
    let prefix = |r: &RouteSpec| r.path_prefix.clone().filter(|p| p != "/");
    a.listen == b.listen && a.host == b.host && prefix(a) == prefix(b)
}

/// `None` if the route has problems, all of which are reported.
fn route(raw: &RawRoute, scope: &Scope, report: &mut Report) -> Option<RouteSpec> {
    let name = &raw.name.value;
    let label = format!("route.{}", toml_key(name));
    let key = |field: &str| format!("{label}.{field}");
    let mut ok = true;
    if let Err(reason) = values::service_name(name) {
        let diagnostic = report.error(
            &raw.name.key,
            format!("invalid route name `{name}`: {reason}"),
        );
        match values::service_name_like(name) {
            Some(like) => diagnostic.hint(format!("did you mean `{like}`?")),
            None => diagnostic.hint(ROUTE_NAME_RULE),
        };
        ok = false;
    }
    for (needed, example) in [
        ("listen", "listen = \"0.0.0.0:80\"".to_owned()),
        ("service", format!("service = \"{name}\"")),
    ] {
        // A misspelled key is the likelier cause of a missing one, and is reported already.
        if !raw.has(needed) && !raw.unknown_keys {
            report
                .error(&raw.header, format!("missing `{needed}` in [{label}]"))
                .hint(format!("for example: {example}"));
            ok = false;
        }
    }
    let listen = raw
        .listen
        .as_ref()
        .and_then(|field| checked(field, &key("listen"), net::listen, report));
    let service = raw
        .service
        .as_ref()
        .and_then(|field| service(field, &key("service"), scope.services, report));
    // The outer `Option` is failure, the inner one absence.
    let host = match &raw.host {
        Some(field) => checked(field, &key("host"), net::host, report).map(Some),
        None => Some(None),
    };
    let path_prefix = match &raw.path_prefix {
        Some(field) => checked(field, &key("path_prefix"), net::path_prefix, report).map(Some),
        None => Some(None),
    };
    let timeout = match &raw.timeout {
        Some(field) => bounded::duration(
            field,
            &key("timeout"),
            Duration::from_millis(1)..=Duration::from_secs(3600),
            "it must be between 1ms and 1h",
            report,
        ),
        None => Some(Duration::from_secs(30)),
    };
    let tls = match &raw.tls {
        Some(raw_tls) => tls(raw_tls, scope.context, report).map(Some),
        None => Some(None),
    };
    let route = RouteSpec {
        name: name.clone(),
        listen: listen?,
        service: service?,
        host: host?,
        path_prefix: path_prefix?,
        timeout: timeout?,
        tls: tls?,
        line: report.line(raw.header.start),
    };
    ok.then_some(route)
}

/// `field` through `check`, with its reason and hint reported if refused.
fn checked<T>(
    field: &Field<String>,
    key: &str,
    check: impl Fn(&str) -> Result<T, net::Refused>,
    report: &mut Report,
) -> Option<T> {
    match check(&field.value) {
        Ok(value) => Some(value),
        Err(refused) => {
            let diagnostic = report.error(
                &field.span,
                values::invalid(key, &field.value, refused.reason),
            );
            if let Some(hint) = refused.hint {
                diagnostic.hint(hint);
            }
            None
        }
    }
}

/// The name of a service declared in the same spec.
fn service(
    field: &Field<String>,
    key: &str,
    services: &BTreeSet<String>,
    report: &mut Report,
) -> Option<String> {
    let name = &field.value;
    if services.contains(name) {
        return Some(name.clone());
    }
    if name.is_empty() {
        report
            .error(&field.span, format!("empty `{key}`"))
            .hint("name the service to send requests to");
        return None;
    }
    let diagnostic = report.error(&field.span, format!("unknown service `{name}` in `{key}`"));
    if let Some(known) = did_you_mean(name, services.iter().map(String::as_str)) {
        diagnostic.hint(format!("did you mean `{known}`?"));
    }
    if services.is_empty() {
        diagnostic.hint(format!(
            "this file declares no service: a route sends requests to a [service.NAME] of the same file, such as [service.{}]",
            toml_key(name)
        ));
    } else {
        let names: Vec<&str> = services.iter().map(String::as_str).collect();
        diagnostic.hint(format!("services in this file: {}", names.join(", ")));
    }
    None
}

fn tls(raw: &RawTls, context: &Path, report: &mut Report) -> Option<TlsSpec> {
    let mut ok = true;
    for needed in ["cert", "key"] {
        if !raw.present.contains(&needed) && !raw.unknown_keys {
            report
                .error(
                    &raw.header,
                    format!("missing `{needed}` in [{}]", raw.label),
                )
                .hint("for example: tls = { cert = \"certs/site.pem\", key = \"certs/site.key\" }");
            ok = false;
        }
    }
    let file = |field: &Option<Field<String>>, name: &str, report: &mut Report| {
        let field = field.as_ref()?;
        let key = format!("{}.{name}", raw.label);
        match field.value.as_str() {
            "" => report.error(&field.span, format!("empty `{key}`")),
            text if text.contains('\0') => report.error(
                &field.span,
                values::invalid(&key, text, "it must not contain a NUL character"),
            ),
            text => return Some(path::resolve(context, text)),
        }
        .hint("name a PEM file, absolute or relative to the folder of kiln.toml");
        None::<PathBuf>
    };
    let cert = file(&raw.cert, "cert", report);
    let key = file(&raw.key, "key", report);
    let tls = TlsSpec {
        cert: cert?,
        key: key?,
    };
    ok.then_some(tls)
}
