//! No coordinated omission: against a server that can answer only half the
//! offered rate, the harness still sends on schedule, and the latency it
//! reports grows with the queue (from each request's planned time), where a
//! closed loop would report the server's service time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use loadtest::Credentials;
use loadtest::{RunOptions, Scenario};
use serde_json::json;

/// Each order takes this long; one connection serves one request at a time.
const SERVICE: Duration = Duration::from_millis(20);

async fn slow_exchange() -> std::net::SocketAddr {
    let ids = Arc::new(AtomicU64::new(1));
    let info = json!({"symbols": [{
        "symbol": "BTCEUR", "baseAsset": "BTC", "quoteAsset": "EUR",
        "baseAssetPrecision": 8, "quotePrecision": 2, "quoteAssetPrecision": 2,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "1000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "1.00", "maxNotional": "9000000.00"}
        ]
    }]});
    let order = move || {
        let ids = ids.clone();
        async move {
            tokio::time::sleep(SERVICE).await;
            axum::Json(json!({"orderId": ids.fetch_add(1, Ordering::Relaxed), "status": "NEW"}))
        }
    };
    // Answers every order request alike: a new order's RESULT shape; a
    // replace's answer lacks `newOrderResponse`, so its new order is not
    // tracked, which does not matter here.
    let app = Router::new()
        .route(
            "/api/v3/exchangeInfo",
            get(move || async move { axum::Json(info) }),
        )
        .route("/api/v3/order", post(order.clone()).delete(order.clone()))
        .route("/api/v3/order/amend/keepPriority", put(order.clone()))
        .route("/api/v3/order/cancelReplace", post(order));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_counts_from_the_planned_time() {
    let addr = slow_exchange().await;
    // 2 connections x 20 ms: 100 answers/s at most; 200/s offered for 1 s.
    let scenario = Scenario::parse(
        &format!(
            r#"
            url = "http://{addr}"
            connections = 2
            timeout_ms = 10000
            [[phases]]
            rate = 200
            duration_s = 1
            [exchange]
            scrape_metrics = false
            [users]
            count = 2
            [depth]
            enabled = false
            [[flow.pairs]]
            symbol = "BTC-EUR"
            mid = "30000"
            "#
        ),
        "open-loop",
    )
    .expect("valid");
    let keys = (0..2)
        .map(|i| Credentials {
            api_key: format!("k{i}"),
            secret: format!("s{i}"),
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let r = loadtest::run(
        &scenario,
        &RunOptions {
            out_dir: dir.path().to_path_buf(),
            credentials: Some(keys),
            quiet: true,
        },
    )
    .await
    .expect("runs");
    // Everything was sent on time...
    assert_eq!(r.requests.dispatched, 200);
    assert!(
        r.harness.dispatch_lag_us.p99 < 100_000,
        "{:?}",
        r.harness.dispatch_lag_us
    );
    // ...and answered about twice as slowly: the last requests waited about
    // a second for a connection, and that is their latency.
    assert_eq!(r.requests.outcomes["accepted"], 200, "{:?}", r.requests);
    let p = &r.latency_us.answered;
    assert!(p.p50 >= 5 * SERVICE.as_micros() as u64, "{p:?}");
    assert!(p.max >= 700_000, "{p:?}");
    assert!(r.elapsed_s >= 1.7, "{}", r.elapsed_s);
}
