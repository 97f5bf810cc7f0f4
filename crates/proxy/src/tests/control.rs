//! The control API: versions, refused tables leave the old one in effect, socket mode.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[tokio::test]
async fn an_unbindable_table_is_refused_and_the_old_one_still_serves() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let good = table(
        1,
        vec![route(
            "web",
            listen,
            vec![backend(&app, "v1", Group::Stable)],
        )],
    );
    proxy.put(&good).await.expect("table applies");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("ephemeral port");
    let taken_addr = taken.local_addr().expect("addr");
    let new_listen = free_addr();
    let bad = table(
        2,
        vec![
            route("web", listen, vec![backend(&app, "v2", Group::Stable)]),
            route(
                "fresh",
                new_listen,
                vec![backend(&app, "v2", Group::Stable)],
            ),
            route(
                "taken",
                taken_addr,
                vec![backend(&app, "v2", Group::Stable)],
            ),
        ],
    );
    let error = proxy
        .put(&bad)
        .await
        .expect_err("an unbindable address is refused");
    assert!(
        matches!(error, ProxyError::InvalidTable(ref m) if m.contains(&taken_addr.to_string())),
        "{error}"
    );
    let mut missing_cert = bad.clone();
    missing_cert.routes.truncate(1);
    missing_cert.routes[0].tls = Some(crate::Tls {
        cert: proxy.home.path().join("nope.pem"),
        key: proxy.home.path().join("nope.key"),
    });
    let error = proxy
        .put(&missing_cert)
        .await
        .expect_err("a missing cert is refused");
    assert!(error.to_string().contains("nope.pem"), "{error}");

    assert_eq!(proxy.get_table().await, Some(good.clone()));
    let client = http_client();
    assert_eq!(get(&client, listen, "/", &[]).await.body, "app");
    // Nothing of the refused table was applied: its new listener is not bound.
    assert!(tokio::net::TcpStream::connect(new_listen).await.is_err());
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains("kiln_proxy_table_version 1\n"),
        "{metrics}"
    );
    drop(taken);
}

#[tokio::test]
async fn versions_are_monotonic_and_the_same_table_is_idempotent() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    assert_eq!(proxy.get_table().await, None);
    let listen = free_addr();
    let five = table(
        5,
        vec![route(
            "web",
            listen,
            vec![backend(&app, "v1", Group::Stable)],
        )],
    );
    assert_eq!(proxy.put(&five).await.expect("applies"), 5);
    assert_eq!(proxy.put(&five).await.expect("idempotent"), 5);
    let mut four = five.clone();
    four.version = 4;
    let error = proxy.put(&four).await.expect_err("older version refused");
    assert!(
        matches!(
            error,
            ProxyError::StaleVersion {
                current: 5,
                offered: 4
            }
        ),
        "{error}"
    );
    let mut changed = five.clone();
    changed.routes[0].canary_weight = 10;
    let error = proxy
        .put(&changed)
        .await
        .expect_err("same version, other content");
    assert!(
        matches!(error, ProxyError::VersionConflict { version: 5 }),
        "{error}"
    );
    let mut invalid = five.clone();
    invalid.version = 6;
    invalid.routes[0].canary_weight = 150;
    let error = proxy.put(&invalid).await.expect_err("invalid table");
    assert!(matches!(error, ProxyError::InvalidTable(_)), "{error}");
    assert_eq!(proxy.get_table().await, Some(five));

    let socket = proxy.home.path().join("proxy.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = Server::start(proxy.home.path())
        .await
        .expect_err("one proxy per home");
    assert!(
        matches!(second, ProxyError::AlreadyRunning { .. }),
        "{second}"
    );
}
