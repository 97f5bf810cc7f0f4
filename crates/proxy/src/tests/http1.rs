//! The HTTP/1.1 engine on the wire: pipelining, bodies in every framing, HTTP/1.0, HEAD,
//! `Expect: 100-continue`, and what it refuses.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::backend::STREAM;
use super::*;

async fn proxy_to(address: &str) -> (TestProxy, SocketAddr) {
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let routes = vec![route(
        "web",
        listen,
        vec![backend_at(address, "v1", Group::Stable)],
    )];
    proxy.put(&table(1, routes)).await.expect("table applies");
    (proxy, listen)
}

/// Writes `request` and reads until the proxy closes the connection.
async fn raw(listen: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(listen).await.expect("connects");
    stream.write_all(request).await.expect("writes");
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy closes the connection")
        .expect("reads");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads until `needle` has been received; returns everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answers in time")
            .expect("reads");
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let app = TestBackend::start("app").await;
    let (_proxy, listen) = proxy_to(&app.addr.to_string()).await;
    let mut requests = String::new();
    for (i, word) in ["one", "two", "three"].iter().enumerate() {
        let close = if i == 2 { "Connection: close\r\n" } else { "" };
        requests.push_str(&format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\n{close}Content-Length: {}\r\n\r\n{word}",
            word.len()
        ));
    }
    let answer = raw(listen, requests.as_bytes()).await;
    let bodies: Vec<&str> = answer
        .split("HTTP/1.1 200 OK\r\n")
        .skip(1)
        .map(|r| r.split_once("\r\n\r\n").expect("head").1)
        .collect();
    assert_eq!(bodies, ["app:one", "app:two", "app:three"], "{answer}");
}

#[tokio::test]
async fn chunked_bodies_pass_through_and_are_decoded_for_http10() {
    let app = TestBackend::start("app").await;
    let (_proxy, listen) = proxy_to(&app.addr.to_string()).await;

    let answer = raw(
        listen,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("\r\n\r\napp:hello world"), "{answer}");

    // HTTP/1.1: the chunks as the backend sent them.
    let answer = raw(
        listen,
        b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("head");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let mut expected = String::new();
    for piece in STREAM {
        expected.push_str(&format!("{:X}\r\n{piece}\r\n", piece.len()));
    }
    expected.push_str("0\r\n\r\n");
    assert_eq!(body, expected);

    // HTTP/1.0: only the data, delimited by closing the connection.
    let answer = raw(
        listen,
        b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("head");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert!(head.contains("Connection: close"), "{head}");
    assert_eq!(body, STREAM.concat());
}

#[tokio::test]
async fn ambiguous_or_oversized_requests_are_refused_and_the_connection_closed() {
    let app = TestBackend::start("app").await;
    let (_proxy, listen) = proxy_to(&app.addr.to_string()).await;
    for (request, status) in [
        (
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_owned(),
            "400",
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_owned(),
            "400",
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".to_owned(),
            "501",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000)),
            "431",
        ),
        ("GET / HTTP/1.1\r\n\r\n".to_owned(), "400"),
    ] {
        // No `Connection: close`: the proxy closes because it cannot go on.
        let answer = raw(listen, request.as_bytes()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {answer}"
        );
    }
}

#[tokio::test]
async fn expect_continue_is_answered_by_the_proxy() {
    let app = TestBackend::start("app").await;
    let (_proxy, listen) = proxy_to(&app.addr.to_string()).await;
    let mut stream = TcpStream::connect(listen).await.expect("connects");
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\
              Connection: close\r\n\r\n",
        )
        .await
        .expect("head");
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.expect("body");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("app:hello"), "{answer}");
}

#[tokio::test]
async fn head_and_http10_requests() {
    let app = TestBackend::start("app").await;
    let (proxy, listen) = proxy_to(&app.addr.to_string()).await;

    // HEAD has no body even with a Content-Length: the next answer follows at once.
    let mut stream = TcpStream::connect(listen).await.expect("connects");
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let answer = read_to_close(&mut stream).await;
    let (head, rest) = answer.split_once("\r\n\r\n").expect("head");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 3"),
        "{head}"
    );
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.ends_with("\r\n\r\napp"),
        "{answer}"
    );

    // A proxy answer to an HTTP/1.0 keep-alive client says it keeps the connection.
    let empty = free_addr();
    let routes = vec![
        route("web", listen, vec![backend(&app, "v1", Group::Stable)]),
        route("empty", empty, vec![]),
    ];
    proxy.put(&table(2, routes)).await.expect("table applies");
    let mut stream = TcpStream::connect(empty).await.expect("connects");
    stream
        .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("writes");
    let answer = read_until(&mut stream, "no backend\n").await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.contains("\r\nconnection: keep-alive\r\n"),
        "{answer}"
    );
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .expect("writes");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");

    // HTTP/1.0 without Host: the backend's address is sent; the connection closes after.
    let answer = raw(listen, b"GET /headers HTTP/1.0\r\n\r\n").await;
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(
        answer.contains(&format!("host: {}\n", app.addr)),
        "{answer}"
    );
}

/// A backend that, on every connection, reads a request and writes the next of `answers`
/// (an empty one: close without answering), and closes after the last.
async fn raw_backend(
    answers: &'static [&'static [u8]],
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                for answer in answers {
                    if read_request(&mut stream).await.is_none() || answer.is_empty() {
                        return;
                    }
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Reads one request head and its `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> Option<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(())
}

#[tokio::test]
async fn close_delimited_interim_and_malformed_backend_answers() {
    let (good, good_task) = raw_backend(&[b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end"]).await;
    let (bad, bad_task) =
        raw_backend(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"])
            .await;
    let (hints, hints_task) = raw_backend(&[
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ])
    .await;
    let proxy = TestProxy::start().await;
    let listens = [free_addr(), free_addr(), free_addr()];
    let routes = [good, bad, hints]
        .iter()
        .zip(listens)
        .enumerate()
        .map(|(i, (addr, listen))| {
            let name = format!("r{i}");
            route(
                &name,
                listen,
                vec![backend_at(&addr.to_string(), "v1", Group::Stable)],
            )
        })
        .collect();
    proxy.put(&table(1, routes)).await.expect("table applies");

    // Keep-alive asked for, but the body ends only when the backend closes.
    let answer = raw(listens[0], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(
        answer,
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\nuntil the end"
    );
    assert_eq!(proxy.upstream(&good.to_string()), 0);
    let answer = raw(
        listens[1],
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{answer}"
    );
    let answer = raw(
        listens[2],
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{answer}"
    );
    for task in [good_task, bad_task, hints_task] {
        task.abort();
    }
}

#[tokio::test]
async fn a_repeated_request_whose_new_connection_is_refused_gets_a_502() {
    let (addr, task) = raw_backend(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b""]).await;
    let (_proxy, listen) = proxy_to(&addr.to_string()).await;
    let mut stream = TcpStream::connect(listen).await.expect("connects");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("writes");
    read_until(&mut stream, "\r\n\r\nok").await;
    // The pooled connection closes unanswered, and the backend's port is closed now.
    task.abort();
    let _ = task.await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_reused_connection_closed_by_the_backend_is_retried_only_when_safe() {
    // Every connection answers once, then reads the next request and closes unanswered:
    // what a backend's idle timeout does when it strikes as a request is sent.
    let (addr, task) = raw_backend(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b""]).await;
    let (_proxy, listen) = proxy_to(&addr.to_string()).await;
    let mut stream = TcpStream::connect(listen).await.expect("connects");
    for _ in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("writes");
        let answer = read_until(&mut stream, "\r\n\r\nok").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
    // A request with a body may have been acted on: it is not sent again.
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        )
        .await
        .expect("writes");
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{answer}"
    );
    task.abort();
}

#[tokio::test]
async fn an_early_answer_to_an_unread_body_is_relayed() {
    // Answers after the head, without reading the body, and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let answer = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!";
            let _ = stream.write_all(answer).await;
            let _ = stream.shutdown().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (_proxy, listen) = proxy_to(&addr.to_string()).await;
    let stream = TcpStream::connect(listen).await.expect("connects");
    let (mut read, mut write) = stream.into_split();
    let length = 64 << 20;
    let writer = tokio::spawn(async move {
        let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n");
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&vec![b'x'; length]).await;
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer))
        .await
        .expect("the proxy answers and closes")
        .expect("reads");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nbig!"), "{answer}");
    writer.abort();
    task.abort();
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let app = TestBackend::start("app").await;
    let (proxy, listen) = proxy_to(&app.addr.to_string()).await;
    let client = http_client();
    let body: String = (0..2_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for _ in 0..2 {
        let req = Request::post(format!("http://{listen}/echo"))
            .body(Full::new(Bytes::from(body.clone())))
            .expect("request");
        let answer = send(&client, req).await.expect("answer");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body.len(), body.len() + 4);
        assert!(answer.body.strip_prefix("app:") == Some(body.as_str()));
    }
    assert_eq!(proxy.upstream(&app.addr.to_string()), 1);
}
