//! Plain HTTP/1.1 connections to a backend, for the proxy's own HTTP/1.1 engine: lent to
//! one exchange at a time and pooled while idle.
//!
//! A pooled connection is checked before it is lent: one the backend closed (or that has
//! unexpected bytes waiting) is dropped. The check costs no system call when the last read
//! drained the socket, which is the usual case. A sweep drops idle connections the backend
//! closed, and those idle for longer than [`MAX_IDLE_TIME`].

use std::io;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::{MAX_IDLE, Upstream};

/// An idle connection unused for this long is closed by the sweep.
pub(crate) const MAX_IDLE_TIME: Duration = Duration::from_secs(60);
/// Bytes read from a client or a backend at a time.
pub(crate) const READ_SIZE: usize = 16 * 1024;

/// One HTTP/1.1 connection to a backend with what was read from it and not yet used.
#[derive(Debug)]
pub(crate) struct BackendConn {
    pub(crate) stream: TcpStream,
    /// Bytes read from the backend; those before `at` are used.
    pub(crate) buf: Vec<u8>,
    pub(crate) at: usize,
    idle_since: Instant,
}

impl BackendConn {
    /// The bytes read and not yet used.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    /// Reads more from the backend after the pending bytes; `Ok(0)` at end of stream.
    pub(crate) async fn read_more(&mut self) -> io::Result<usize> {
        crate::http1::read_more(&mut self.stream, &mut self.buf, &mut self.at, READ_SIZE).await
    }

    /// Whether the connection can serve another request: the backend has not closed it and
    /// sent nothing unasked.
    fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl Upstream {
    /// An idle pooled connection that is still usable, if any.
    pub(crate) fn checkout(&self) -> Option<BackendConn> {
        let mut idle = self.idle_h1.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose exchange ended cleanly to the pool.
    pub(crate) fn checkin(&self, mut conn: BackendConn) {
        if conn.at != conn.buf.len() {
            return;
        }
        conn.buf.clear();
        conn.at = 0;
        conn.idle_since = Instant::now();
        let mut idle = self.idle_h1.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// A new connection.
    pub(crate) async fn connect_h1(self: &Arc<Self>) -> Result<BackendConn, String> {
        Ok(BackendConn {
            stream: self.dial().await?,
            buf: Vec::with_capacity(READ_SIZE),
            at: 0,
            idle_since: Instant::now(),
        })
    }

    /// Drops idle connections that the backend closed or that idled too long.
    pub(crate) fn sweep_idle(&self, now: Instant) {
        let mut idle = self.idle_h1.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|conn| {
            now.saturating_duration_since(conn.idle_since) < MAX_IDLE_TIME && conn.is_usable()
        });
    }

    #[cfg(test)]
    pub(crate) fn idle_h1_connections(&self) -> usize {
        self.idle_h1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
