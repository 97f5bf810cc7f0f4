//! Closing client connections that make no progress: idle keep-alive connections and
//! clients that never finish a request head (slowloris), without a timer per request.
//!
//! A connection makes progress when a request starts or a byte is written to it. After a
//! quiet period with nothing in flight it is shut down gracefully; after a second one it is
//! dropped. A request waiting on its backend, or a response still streaming, is never cut.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a client connection may go without progress before it is closed.
pub(crate) const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Progress counters of one client connection.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    requests: AtomicU64,
    active: AtomicU64,
    written: AtomicU64,
    /// Part of a request head is buffered (HTTP/1.1 engine).
    pending: AtomicBool,
    /// The connection is to close after the exchange in progress.
    closing: AtomicBool,
}

/// What the watchdog should do after a quiet period.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Shutdown,
    Drop,
}

/// Decides a connection's fate every [`CLIENT_IDLE_TIMEOUT`].
#[derive(Debug, Default)]
pub(crate) struct Watchdog {
    seen: u64,
    strikes: u8,
}

impl Activity {
    /// Counts a request as started and active until the guard drops (response head sent).
    pub(crate) fn start(self: &Arc<Self>) -> ActiveGuard {
        self.requests.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self.clone())
    }

    pub(crate) fn set_pending(&self, pending: bool) {
        self.pending.store(pending, Relaxed);
    }

    /// Asks the connection to close once the exchange in progress is done.
    pub(crate) fn close(&self) {
        self.closing.store(true, Relaxed);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    /// Nothing in progress: no request active and no partial request head buffered.
    pub(crate) fn is_quiet(&self) -> bool {
        self.active.load(Relaxed) == 0 && !self.pending.load(Relaxed)
    }

    fn progress(&self) -> u64 {
        self.requests
            .load(Relaxed)
            .wrapping_add(self.written.load(Relaxed))
    }
}

impl Watchdog {
    pub(crate) fn check(&mut self, activity: &Activity) -> Verdict {
        let progress = activity.progress();
        if progress != self.seen || activity.active.load(Relaxed) > 0 {
            self.seen = progress;
            self.strikes = 0;
            return Verdict::Keep;
        }
        self.strikes += 1;
        if self.strikes == 1 {
            Verdict::Shutdown
        } else {
            Verdict::Drop
        }
    }
}

/// Marks a request active while its handler runs.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// An I/O stream that counts the calls that wrote bytes.
#[derive(Debug)]
pub(crate) struct Counted<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Counted<I> {
    pub(crate) fn new(io: I, activity: Arc<Activity>) -> Self {
        Counted { io, activity }
    }

    fn count(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.written.fetch_add(1, Relaxed);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_connections_are_shut_down_then_dropped_unless_busy() {
        let activity = Arc::new(Activity::default());
        let mut watchdog = Watchdog::default();
        let guard = activity.start();
        assert_eq!(watchdog.check(&activity), Verdict::Keep);
        // A request waiting on its backend for several periods is never cut.
        assert_eq!(watchdog.check(&activity), Verdict::Keep);
        assert_eq!(watchdog.check(&activity), Verdict::Keep);
        drop(guard);
        assert_eq!(watchdog.check(&activity), Verdict::Shutdown);
        assert_eq!(watchdog.check(&activity), Verdict::Drop);
        activity.written.fetch_add(1, Relaxed);
        assert_eq!(watchdog.check(&activity), Verdict::Keep);
        assert_eq!(watchdog.check(&activity), Verdict::Shutdown);
    }
}
