//! Sending a request on a pooled HTTP/1.1 connection, or a new one; handing the request
//! back when it was never sent, so that the caller may retry it elsewhere.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::{MAX_IDLE, Upstream};
use crate::ProxyError;
use crate::forward::UpBody;

/// A pooled connection that is not ready yet is about to finish its previous exchange.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// A failed send: the error, and the request if it never left the proxy.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: ProxyError,
    pub(crate) unsent: Option<Request<UpBody>>,
}

/// A connection lent to one exchange; back to the pool when dropped (after the response
/// body is done), unless the connection closed.
#[derive(Debug)]
pub(crate) struct Lease {
    upstream: Arc<Upstream>,
    sender: Option<SendRequest<UpBody>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take()
            && !sender.is_closed()
        {
            let mut idle = self
                .upstream
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
    }
}

impl Upstream {
    /// Sends `request` on an idle connection, else on a new one.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<UpBody>,
    ) -> Result<(Response<Incoming>, Lease), Failed> {
        while let Some(mut sender) = self.pop_idle() {
            if !sender.is_ready() {
                let ready = tokio::time::timeout(READY_TIMEOUT, sender.ready()).await;
                if !matches!(ready, Ok(Ok(()))) {
                    continue;
                }
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, self.lease(sender))),
                Err(mut error) => match error.take_message() {
                    // Closed before anything was written: try the next connection.
                    Some(back) => request = back,
                    None => return Err(self.io_failure(&error.into_error())),
                },
            }
        }
        let mut sender = match self.connect().await {
            Ok(sender) => sender,
            Err(message) => {
                let error = ProxyError::BackendConnect {
                    address: self.address.clone(),
                    message,
                };
                return Err(Failed {
                    error,
                    unsent: Some(request),
                });
            }
        };
        match sender.try_send_request(request).await {
            Ok(response) => Ok((response, self.lease(sender))),
            Err(mut error) => {
                let unsent = error.take_message();
                let message = error_chain(&error.into_error());
                let address = self.address.clone();
                let error = match unsent {
                    // Reset before a byte of the request was written: as good as refused.
                    Some(_) => ProxyError::BackendConnect { address, message },
                    None => ProxyError::BackendIo { address, message },
                };
                Err(Failed { error, unsent })
            }
        }
    }

    fn pop_idle(&self) -> Option<SendRequest<UpBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<UpBody>, String> {
        let stream = self.dial().await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| error_chain(&e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn lease(self: &Arc<Self>, sender: SendRequest<UpBody>) -> Lease {
        Lease {
            upstream: self.clone(),
            sender: Some(sender),
        }
    }

    fn io_failure(&self, error: &hyper::Error) -> Failed {
        let message = error_chain(error);
        Failed {
            error: ProxyError::BackendIo {
                address: self.address.clone(),
                message,
            },
            unsent: None,
        }
    }
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
