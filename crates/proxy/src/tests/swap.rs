//! Table swaps under continuous load lose no request, route new requests at once, and let
//! the old backends be stopped as soon as their in-flight count reaches zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_tables_under_load_loses_no_request() {
    let mut sets = Vec::new();
    for version in 0..=20u64 {
        let pair = [
            TestBackend::start(&format!("v{version}")).await,
            TestBackend::start(&format!("v{version}")).await,
        ];
        sets.push(pair);
    }
    let proxy = TestProxy::start().await;
    let listen = free_addr();
    let set = |version: u64| {
        let name = format!("v{version}");
        let backends = sets[version as usize]
            .iter()
            .map(|b| backend(b, &name, Group::Stable));
        table(version, vec![route("web", listen, backends.collect())])
    };
    proxy.put(&set(0)).await.expect("first table");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for task in 0..4 {
        let (stop, ok) = (stop.clone(), ok.clone());
        load.spawn(async move {
            let client = http_client();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // Task 0 opens a new connection per request; the others keep theirs alive.
                // Task 3's requests take a while, so that some are in flight at each swap.
                let path = if task == 3 { "/slow?ms=25" } else { "/" };
                let mut req = Request::get(format!("http://{listen}{path}"));
                if task == 0 {
                    req = req.header("connection", "close");
                }
                let req = req.body(Full::default()).expect("request");
                match send(&client, req).await {
                    Ok(answer) if answer.status == StatusCode::OK => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(answer) => failures.push(format!("{} {}", answer.status, answer.body)),
                    Err(error) => failures.push(error.to_string()),
                }
            }
            failures
        });
    }
    let client = http_client();
    for version in 1..=20u64 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        assert_eq!(
            proxy.put(&set(version)).await.expect("table applies"),
            version
        );
        let body = get(&client, listen, "/", &[]).await.body;
        assert_eq!(
            body,
            format!("v{version}"),
            "a new request after the confirmation"
        );
        // Drain, then stop the old set, as the control plane does.
        let old: Vec<String> = sets[version as usize - 1]
            .iter()
            .map(|b| b.addr.to_string())
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let inflight = proxy.inflight().await;
            if old
                .iter()
                .all(|a| inflight.get(a).copied().unwrap_or_default() == 0)
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "old set never drained"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sets[version as usize - 1]
            .iter()
            .for_each(TestBackend::kill);
    }
    tokio::time::sleep(Duration::from_millis(15)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    while let Some(result) = load.join_next().await {
        failures.extend(result.expect("load task"));
    }
    let ok = ok.load(Ordering::Relaxed);
    let shown = &failures[..failures.len().min(5)];
    assert!(
        failures.is_empty(),
        "{} failed, {ok} ok: {shown:?}",
        failures.len()
    );
    assert!(ok >= 200, "only {ok} requests went through");
}
