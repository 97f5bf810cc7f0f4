//! Backend addresses: one [`Upstream`] per address with its in-flight count and its pool of
//! keep-alive connections, kept across route tables while in use.

mod conn;
mod pool;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use tokio::net::TcpStream;

pub(crate) use conn::{BackendConn, READ_SIZE};
pub(crate) use pool::{Failed, Lease};

use crate::forward::UpBody;

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Idle keep-alive connections kept per backend address, in each pool.
const MAX_IDLE: usize = 1024;

/// One backend address.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) address: String,
    socket: SocketAddr,
    /// `Host` for requests that came without one.
    pub(crate) host: HeaderValue,
    inflight: AtomicU64,
    /// Idle keep-alive connections of the HTTP/2 front end (hyper's client), most
    /// recently used last.
    idle: Mutex<Vec<SendRequest<UpBody>>>,
    /// Idle keep-alive connections of the HTTP/1.1 engine, most recently used last.
    idle_h1: Mutex<Vec<BackendConn>>,
}

impl Upstream {
    fn new(address: &str, socket: SocketAddr) -> Upstream {
        Upstream {
            address: address.to_owned(),
            socket,
            host: HeaderValue::try_from(address).unwrap_or(HeaderValue::from_static("backend")),
            inflight: AtomicU64::new(0),
            idle: Mutex::default(),
            idle_h1: Mutex::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn idle_connections(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Acquire)
    }

    /// A new TCP connection to the backend, with `TCP_NODELAY`; the error as text.
    async fn dial(&self) -> Result<TcpStream, String> {
        let connect = TcpStream::connect(self.socket);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        };
        // Best effort: without TCP_NODELAY the connection works, only slower.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Every known backend address.
#[derive(Debug, Default)]
pub(crate) struct Upstreams {
    by_address: Mutex<HashMap<String, Arc<Upstream>>>,
}

impl Upstreams {
    /// The upstream of a validated `IP:port` address, created on first use (at table
    /// compile time).
    pub(crate) fn get(&self, address: &str, socket: SocketAddr) -> Arc<Upstream> {
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(address.to_owned())
            .or_insert_with(|| Arc::new(Upstream::new(address, socket)))
            .clone()
    }

    /// Forgets addresses that are neither in `live` nor in use; their idle connections close.
    pub(crate) fn prune(&self, live: &HashSet<&str>) {
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.retain(|address, upstream| {
            live.contains(address.as_str())
                || upstream.inflight() > 0
                || Arc::strong_count(upstream) > 1
        });
    }

    /// Every known address with its in-flight count; an absent address has none.
    pub(crate) fn inflight(&self) -> BTreeMap<String, u64> {
        let map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(a, u)| (a.clone(), u.inflight())).collect()
    }

    /// Drops idle HTTP/1.1 connections that their backend closed or that idled too long.
    pub(crate) fn sweep_idle(&self) {
        let upstreams: Vec<Arc<Upstream>> = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let now = std::time::Instant::now();
        for upstream in upstreams {
            upstream.sweep_idle(now);
        }
    }

    /// Requests and upgraded connections in flight, over all addresses.
    pub(crate) fn total_inflight(&self) -> u64 {
        let map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.values().map(|u| u.inflight()).sum()
    }
}

/// Counts one request or upgraded connection as in flight until dropped.
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<Upstream>);

impl InflightGuard {
    pub(crate) fn new(upstream: &Arc<Upstream>) -> Self {
        upstream.inflight.fetch_add(1, Ordering::AcqRel);
        Self(upstream.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}
