//! Request bodies sent to backends, and response bodies sent to clients (holding the
//! backend connection and the in-flight count until the last byte is gone).

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

use crate::upstream::{InflightGuard, Lease};

/// The body of a request to a backend.
#[derive(Debug)]
pub(crate) enum UpBody {
    Empty,
    Stream(Incoming),
}

impl UpBody {
    pub(crate) fn new(body: Incoming) -> UpBody {
        if body.is_end_stream() {
            UpBody::Empty
        } else {
            UpBody::Stream(body)
        }
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpBody::Empty => Poll::Ready(None),
            UpBody::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Empty => true,
            UpBody::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Empty => SizeHint::with_exact(0),
            UpBody::Stream(body) => body.size_hint(),
        }
    }
}

/// The body of a response to a client.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    /// Made by the proxy itself.
    Static(Option<Bytes>),
    /// Streamed from a backend. Dropped in field order: the body, then the connection goes
    /// back to its pool, then the request stops counting as in flight.
    Upstream {
        body: Incoming,
        _lease: Lease,
        _guard: InflightGuard,
    },
}

impl ProxyBody {
    pub(crate) fn text(text: &'static str) -> ProxyBody {
        ProxyBody::Static(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Static(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Static(bytes) => bytes.is_none(),
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Static(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}
