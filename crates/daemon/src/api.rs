//! The HTTP/JSON API on the unix socket (`docs/api.md`): routing, and the types shared
//! with the CLI.

pub mod types;
mod views;

use std::sync::Arc;

use hyper::body::Bytes;

use crate::daemon::Daemon;
use crate::error::ApiError;
use crate::server::to_json;
use crate::{apply, drift};

/// Answers one request with a JSON body.
pub(crate) async fn route(
    d: Arc<Daemon>,
    method: &str,
    path: &str,
    query: &str,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let Some(rest) = path.strip_prefix(types::API_PREFIX) else {
        return Err(ApiError::not_found(format!("no such path `{path}`")));
    };
    let query = Query::parse(query);
    match (method, rest) {
        ("GET", "/status") => to_json(&views::status(&d)?),
        ("GET", "/services") => to_json(&views::services(&d)?),
        ("GET", "/instances") => to_json(&views::instances(&d, query.get("service"))?),
        ("GET", "/events") => to_json(&views::events(&d, &query)?),
        ("GET", "/drift") => {
            let d2 = d.clone();
            let found = blocking(move || drift::drift(&d2)).await??;
            to_json(&found)
        }
        ("GET", "/rollouts") => to_json(&views::rollouts(&d, None)),
        ("GET", rest) if rest.starts_with("/rollouts/") => {
            let service = &rest["/rollouts/".len()..];
            let found = views::rollouts(&d, Some(service));
            match found.into_iter().next() {
                Some(status) => to_json(&status),
                None => Err(ApiError::not_found(format!(
                    "service `{service}` has no rollout (one starts when an apply changes a service with a strategy)"
                ))),
            }
        }
        ("POST", rest) if rest.starts_with("/rollouts/") => {
            let Some((service, verb)) = rest["/rollouts/".len()..].split_once('/') else {
                return Err(ApiError::not_found(format!("no such path `{path}`")));
            };
            let (service, verb) = (service.to_string(), verb.to_string());
            let (d2, name) = (d.clone(), service.clone());
            blocking(move || {
                let _serial = d2.apply_lock();
                crate::rollouts::command(&d2, &name, &verb)
            })
            .await?
            .map_err(ApiError::conflict)?;
            let found = views::rollouts(&d, Some(&service));
            to_json(&found.into_iter().next())
        }
        ("POST", "/apply") => {
            let request: types::ApplyRequest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid apply request: {e}")))?;
            let d2 = d.clone();
            let answer = blocking(move || apply::apply(&d2, &request)).await??;
            d.wake.notify_one();
            to_json(&answer)
        }
        ("DELETE", rest) if rest.starts_with("/services/") => {
            let name = &rest["/services/".len()..];
            let d2 = d.clone();
            let name = name.to_string();
            let answer = blocking(move || apply::destroy(&d2, &name)).await??;
            d.wake.notify_one();
            to_json(&answer)
        }
        (_, "/status" | "/services" | "/instances" | "/events" | "/drift" | "/apply") => {
            Err(ApiError {
                status: 405,
                message: format!("method {method} is not allowed on {path}"),
            })
        }
        _ => Err(ApiError::not_found(format!("no such path `{path}`"))),
    }
}

/// A parsed query string (`a=1&b=x`), percent-decoded.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric parameter; a malformed one is a bad request naming it.
    pub(crate) fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("query parameter `{key}`: `{v}` is not a number"))
                })
            })
            .transpose()
    }
}

/// Runs blocking work (SQLite, runc, the proxy's socket) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        let q = Query::parse("service=web&grep=a%20b+c&x");
        assert_eq!(q.get("service"), Some("web"));
        assert_eq!(q.get("grep"), Some("a b c"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("y"), None);
        assert_eq!(Query::parse("a=%4").get("a"), Some("%4"));
    }
}
