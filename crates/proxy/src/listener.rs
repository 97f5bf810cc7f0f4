//! Data-plane listeners: accept loops and the per-connection HTTP/1.1 or HTTP/2 server,
//! with TLS where the table asks for it.

mod activity;
mod rewind;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::forward::{self, Downstream};
use crate::http1::{self, End};
use activity::{Counted, Verdict, Watchdog};
use rewind::Rewind;

use crate::server::Shared;
pub(crate) use activity::{Activity, CLIENT_IDLE_TIMEOUT};

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listen` until the listener is removed or the proxy stops.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listen: SocketAddr, listener: TcpListener) {
    let mut stop = shared.stop.subscribe();
    while !*stop.borrow_and_update() {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%listen, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let tls = match shared.current().listener(listen) {
            Some(routes) => routes.tls.clone(),
            None => continue,
        };
        tokio::spawn(connection(shared.clone(), listen, stream, peer, tls));
    }
}

async fn connection(
    shared: Arc<Shared>,
    listen: SocketAddr,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
) {
    // Best effort: a socket that refuses TCP_NODELAY still works, only slower.
    let _ = stream.set_nodelay(true);
    #[cfg(test)]
    let stream = small_send_buffer::apply(listen, stream);
    let client_ip =
        HeaderValue::try_from(peer.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown"));
    let proto = HeaderValue::from_static(if tls.is_some() { "https" } else { "http" });
    let activity = Arc::new(Activity::default());
    let down = Arc::new(Downstream {
        activity: activity.clone(),
        shared: shared.clone(),
        listen,
        client_ip,
        proto,
    });
    let Some(acceptor) = tls else {
        return serve_http1(&shared, Counted::new(stream, activity), down, true).await;
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = Counted::new(stream, activity);
            if h2 {
                serve_http2(&shared, io, down).await;
            } else {
                serve_http1(&shared, io, down, false).await;
            }
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves HTTP/1.1 with the proxy's own engine, closing the connection when it stops
/// making progress, and after the exchange in progress when the proxy stops. With
/// `sniff`, a client that opens with the HTTP/2 preface is served HTTP/2 instead.
async fn serve_http1<I>(shared: &Shared, io: Counted<I>, down: Arc<Downstream>, sniff: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stop = shared.stop.subscribe();
    if *stop.borrow_and_update() {
        return;
    }
    let activity = down.activity.clone();
    let conn = http1::Connection::new(io, down.clone()).run(sniff);
    tokio::pin!(conn);
    let mut watchdog = Watchdog::default();
    let mut stopping = false;
    loop {
        tokio::select! {
            end = conn.as_mut() => {
                if let (End::Http2(io, read), false) = (end, stopping) {
                    serve_http2(shared, Rewind::new(read, io), down).await;
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                activity.close();
                if activity.is_quiet() {
                    return;
                }
            }
            _ = tokio::time::sleep(CLIENT_IDLE_TIMEOUT) => match watchdog.check(&activity) {
                Verdict::Keep => {}
                Verdict::Shutdown => {
                    activity.close();
                    if activity.is_quiet() {
                        return;
                    }
                }
                Verdict::Drop => return,
            },
        }
    }
}

/// Serves HTTP/2 with hyper, closing the connection when it stops making progress, and
/// gracefully when the proxy stops.
async fn serve_http2<I>(shared: &Shared, io: I, down: Arc<Downstream>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stop = shared.stop.subscribe();
    if *stop.borrow_and_update() {
        return;
    }
    let activity = down.activity.clone();
    let service = service_fn(move |req| forward::handle(down.clone(), req));
    let conn = shared.http2.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut watchdog = Watchdog::default();
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "client connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                return;
            }
            _ = tokio::time::sleep(CLIENT_IDLE_TIMEOUT) => match watchdog.check(&activity) {
                Verdict::Keep => {}
                Verdict::Shutdown => conn.as_mut().graceful_shutdown(),
                Verdict::Drop => return,
            },
        }
    }
}

/// Tests: client connections on chosen listen addresses get a tiny send buffer, so that
/// writes to them block the way they do with slow clients over real networks.
#[cfg(test)]
pub(crate) mod small_send_buffer {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use tokio::net::{TcpSocket, TcpStream};

    static LISTENERS: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

    pub(crate) fn add(listen: SocketAddr) {
        LISTENERS.lock().expect("lock").push(listen);
    }

    pub(crate) fn apply(listen: SocketAddr, stream: TcpStream) -> TcpStream {
        if !LISTENERS.lock().expect("lock").contains(&listen) {
            return stream;
        }
        let std = stream.into_std().expect("std stream");
        let socket = TcpSocket::from_std_stream(std.try_clone().expect("clone"));
        socket.set_send_buffer_size(4096).expect("send buffer");
        drop(socket);
        TcpStream::from_std(std).expect("tokio stream")
    }
}
