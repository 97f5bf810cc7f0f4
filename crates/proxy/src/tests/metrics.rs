//! The Prometheus text after some traffic.

use super::*;

#[tokio::test]
async fn metrics_count_requests_by_version_and_class() {
    let v1 = TestBackend::start("v1").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let backends = vec![
        backend(&v1, "v1", Group::Stable),
        backend_at(&free_addr().to_string(), "v2", Group::Canary),
    ];
    proxy
        .put(&table(7, vec![route("web", listen, backends)]))
        .await
        .expect("table applies");
    let client = http_client();
    for _ in 0..5 {
        assert_eq!(get(&client, listen, "/", &[]).await.status, StatusCode::OK);
        assert_eq!(
            get(&client, listen, "/missing-is-fine", &[]).await.status,
            StatusCode::OK
        );
    }
    // The canary refuses connections; the pinned request is retried on the stable backend.
    assert_eq!(
        get(&client, listen, "/", &[("x-kiln-canary", "always")])
            .await
            .body,
        "v1"
    );
    let text = proxy.metrics().await;
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(r#"kiln_proxy_requests_total{route="web",service="web",version="v1"} 11"#),
        "{text}"
    );
    assert!(
        has(r#"kiln_proxy_requests_total{route="web",service="web",version="v2"} 1"#),
        "{text}"
    );
    assert!(has(
        r#"kiln_proxy_responses_total{route="web",service="web",version="v1",class="2xx"} 11"#
    ));
    assert!(has(
        r#"kiln_proxy_connection_errors_total{route="web",service="web",version="v2"} 1"#
    ));
    assert!(has(
        r#"kiln_proxy_request_duration_seconds_count{route="web",service="web",version="v1"} 11"#
    ));
    assert!(has(
        r#"kiln_proxy_request_duration_seconds_bucket{route="web",service="web",version="v1",le="+Inf"} 11"#
    ));
    assert!(has("kiln_proxy_table_version 7"), "{text}");
}
