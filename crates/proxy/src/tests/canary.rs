//! The canary split by weight and the X-Kiln-Canary pin.

use super::*;

#[tokio::test]
async fn canary_weight_is_roughly_honoured_and_the_header_pins() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let backends = vec![
        backend(&stable, "v1", Group::Stable),
        backend(&canary, "v2", Group::Canary),
    ];
    let mut weighted = route("web", listen, backends.clone());
    weighted.canary_weight = 25;
    proxy
        .put(&table(1, vec![weighted]))
        .await
        .expect("table applies");
    let client = http_client();
    let mut canaries = 0;
    for _ in 0..2000 {
        if get(&client, listen, "/", &[]).await.body == "canary" {
            canaries += 1;
        }
    }
    assert!(
        (400..=600).contains(&canaries),
        "{canaries} of 2000 went to the canary"
    );

    let mut zero = route("web", listen, backends.clone());
    zero.canary_weight = 0;
    proxy
        .put(&table(2, vec![zero]))
        .await
        .expect("table applies");
    for _ in 0..20 {
        assert_eq!(
            get(&client, listen, "/", &[("x-kiln-canary", "always")])
                .await
                .body,
            "canary"
        );
        assert_eq!(get(&client, listen, "/", &[]).await.body, "stable");
    }
    let mut full = route("web", listen, backends);
    full.canary_weight = 100;
    proxy
        .put(&table(3, vec![full]))
        .await
        .expect("table applies");
    for _ in 0..20 {
        assert_eq!(
            get(&client, listen, "/", &[("x-kiln-canary", "never")])
                .await
                .body,
            "stable"
        );
        assert_eq!(get(&client, listen, "/", &[]).await.body, "canary");
    }
}

#[tokio::test]
async fn an_empty_group_falls_back_to_the_other() {
    let stable = TestBackend::start("stable").await;
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let mut only_stable = route("web", listen, vec![backend(&stable, "v1", Group::Stable)]);
    only_stable.canary_weight = 100;
    proxy
        .put(&table(1, vec![only_stable]))
        .await
        .expect("table applies");
    let client = http_client();
    assert_eq!(get(&client, listen, "/", &[]).await.body, "stable");
    assert_eq!(
        get(&client, listen, "/", &[("x-kiln-canary", "always")])
            .await
            .body,
        "stable"
    );
}
