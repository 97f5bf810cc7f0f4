//! TLS listeners with certificates from PEM files, ALPN h2 and http/1.1.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::Tls;

/// A self-signed certificate for localhost, made with the openssl tool.
fn self_signed(dir: &Path) -> Tls {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-days", "1", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("this test needs the openssl tool (apt-get install openssl)");
    assert!(status.success(), "openssl req failed");
    Tls { cert, key }
}

async fn connect(listen: SocketAddr, cert: &Path, alpn: &[u8]) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(listen).await.expect("connects");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).expect("cert"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from("localhost").expect("name");
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream
}

#[tokio::test]
async fn tls_serves_h2_and_http1_by_alpn() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let tls = self_signed(proxy.home.path());
    let listen = free_addr();
    let mut secure = route("web", listen, vec![backend(&app, "v1", Group::Stable)]);
    secure.tls = Some(tls.clone());
    proxy
        .put(&table(1, vec![secure]))
        .await
        .expect("table applies");

    let stream = connect(listen, &tls.cert, b"h2").await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::get("https://localhost/headers")
        .body(Full::<Bytes>::default())
        .expect("req");
    let response = sender.send_request(req).await.expect("h2 response");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let seen = String::from_utf8_lossy(&body);
    assert!(seen.contains("x-forwarded-proto: https\n"), "{seen}");

    let stream = connect(listen, &tls.cert, b"http/1.1").await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Full::<Bytes>::default())
        .expect("req");
    let response = sender.send_request(req).await.expect("http/1.1 response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"app");

    // A large answer to a client that reads slowly, through a small send buffer: the tail
    // the TLS layer kept while the socket was full still arrives, and the connection
    // serves the next request.
    crate::listener::small_send_buffer::add(listen);
    let mut stream = connect(listen, &tls.cert, b"http/1.1").await;
    let length = 4_000_000;
    let head =
        format!("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&vec![b'x'; length]).await.expect("body");
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        text.split_once("\r\n\r\n")
            .is_some_and(|(_, body)| body.len() >= length + 4)
    };
    while !complete(&answer) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the whole answer arrives")
            .expect("reads");
        assert!(n > 0, "closed early");
        answer.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("next request");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("next answer")
        .expect("reads");
    assert!(String::from_utf8_lossy(&rest).ends_with("\r\n\r\napp"));
}
