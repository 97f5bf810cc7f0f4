//! Routing by listen address, host and longest prefix; forwarded and hop-by-hop headers.

use super::*;

#[tokio::test]
async fn routes_by_host_and_longest_prefix() {
    let any = TestBackend::start("any").await;
    let api = TestBackend::start("api").await;
    let shop = TestBackend::start("shop").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let other = free_addr();
    let mut api_route = route("api", listen, vec![backend(&api, "v1", Group::Stable)]);
    api_route.path_prefix = Some("/api".into());
    let mut shop_route = route("shop", listen, vec![backend(&shop, "v1", Group::Stable)]);
    shop_route.host = Some("shop.example.com".into());
    let mut only_host = route(
        "only-host",
        other,
        vec![backend(&shop, "v1", Group::Stable)],
    );
    only_host.host = Some("shop.example.com".into());
    let mut empty = route("empty", other, vec![]);
    empty.host = Some("empty.example.com".into());
    let routes = vec![
        route("any", listen, vec![backend(&any, "v1", Group::Stable)]),
        api_route,
        shop_route,
        only_host,
        empty,
    ];
    assert_eq!(
        proxy.put(&table(1, routes)).await.expect("table applies"),
        1
    );

    let client = http_client();
    let body = |host: &'static str, path: &'static str| {
        let client = client.clone();
        async move { get(&client, listen, path, &[("host", host)]).await.body }
    };
    assert_eq!(body("other.test", "/").await, "any");
    assert_eq!(body("other.test", "/api/items").await, "api");
    assert_eq!(body("other.test", "/apiary").await, "any");
    assert_eq!(body("SHOP.example.com:8443", "/api/items").await, "shop");
    let none = get(&client, other, "/", &[("host", "nope.example.com")]).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let empty = get(&client, other, "/", &[("host", "empty.example.com")]).await;
    assert_eq!(empty.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn forwarded_headers_are_set_and_hop_by_hop_headers_stripped() {
    let app = TestBackend::start("app").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let routes = vec![route(
        "web",
        listen,
        vec![backend(&app, "v1", Group::Stable)],
    )];
    proxy.put(&table(1, routes)).await.expect("table applies");
    let client = http_client();
    let answer = get(
        &client,
        listen,
        "/headers",
        &[
            ("host", "app.example.com"),
            ("x-forwarded-for", "10.1.2.3"),
            ("connection", "x-secret"),
            ("x-secret", "hop"),
            ("proxy-authorization", "Basic eA=="),
        ],
    )
    .await;
    let seen = answer.body;
    assert!(
        seen.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-host: app.example.com\n"),
        "{seen}"
    );
    assert!(seen.contains("host: app.example.com\n"), "{seen}");
    assert!(!seen.contains("x-secret"), "{seen}");
    assert!(!seen.contains("proxy-authorization"), "{seen}");
    assert!(
        !answer.headers.contains_key("keep-alive"),
        "{:?}",
        answer.headers
    );
    assert_eq!(answer.headers["x-backend"], "app");
}
