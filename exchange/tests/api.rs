//! End to end over real HTTP against the exchange started in-process.

mod common;

use client::{Method, StatusCode};
use common::{eventually, limit, start, start_with};
use serde_json::{Value, json};

#[expect(
    clippy::too_many_lines,
    reason = "one trading session, read top to bottom"
)]
async fn trading_flow(ex: &common::TestExchange) {
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;

    // A resting sell, then a buy that fills part of it.
    let a = alice
        .place(
            &json!({"symbol": "BTC-EUR", "side": "SELL", "type": "LIMIT",
        "quantity": "0.5", "price": "30000", "clientOrderId": "ask-1"}),
        )
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["status"], "NEW");
    let ask_id = a.body["orderId"].as_u64().unwrap();

    let b = bob.place(&limit("BUY", "0.2", "30100")).await.unwrap();
    assert_eq!(b.body["status"], "FILLED", "{:?}", b.body);
    assert_eq!(b.body["executedQty"], "0.20000000");
    assert_eq!(b.body["cummulativeQuoteQty"], "6000.00");
    assert_eq!(b.body["fills"][0]["price"], "30000.00");
    assert_eq!(b.body["fills"][0]["makerOrderId"].as_u64(), Some(ask_id));

    // The maker's state and the trade reach the store.
    let q = format!("symbol=BTC-EUR&orderId={ask_id}");
    let order = eventually(|| async {
        let o = alice
            .signed(Method::GET, "/api/v1/order", &q, None)
            .await
            .unwrap();
        (o.body["status"] == "PARTIALLY_FILLED").then_some(o.body)
    })
    .await;
    assert_eq!(order["executedQty"], "0.20000000");
    assert_eq!(order["clientOrderId"], "ask-1");
    let trades = ex
        .public()
        .get("/api/v1/trades", "symbol=BTC-EUR")
        .await
        .unwrap();
    assert_eq!(trades.body.as_array().unwrap().len(), 1);
    let mine = bob
        .signed(Method::GET, "/api/v1/myTrades", "symbol=BTC-EUR", None)
        .await
        .unwrap();
    assert_eq!(mine.body[0]["isBuyer"], true);
    assert_eq!(mine.body[0]["isMaker"], false);

    // Depth shows what is left.
    let d = ex
        .public()
        .get("/api/v1/depth", "symbol=BTC-EUR&limit=5")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.30000000"]]));
    assert!(d.body["lastUpdateId"].as_u64().unwrap() > 0);

    // Amend down keeps priority; then cancel by client order id.
    let am = alice
        .signed(
            Method::PUT,
            "/api/v1/order",
            "",
            Some(&json!({"symbol": "BTC-EUR", "orderId": ask_id, "quantity": "0.4"})),
        )
        .await
        .unwrap();
    assert_eq!(am.status, StatusCode::OK, "{:?}", am.body);
    assert_eq!(am.body["leavesQty"], "0.20000000");
    assert_eq!(am.body["priorityKept"], true);
    let c = alice
        .signed(
            Method::DELETE,
            "/api/v1/order",
            "symbol=BTC-EUR&origClientOrderId=ask-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.body["status"], "CANCELED", "{:?}", c.body);
    assert_eq!(c.body["canceledQty"], "0.20000000");
    let again = alice
        .signed(
            Method::DELETE,
            "/api/v1/order",
            "symbol=BTC-EUR&origClientOrderId=ask-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.code(), Some(-303));

    // ACK answers before the outcome, and names the order.
    let ack = alice
        .place(
            &json!({"symbol": "ETH-EUR", "side": "BUY", "type": "LIMIT", "quantity": "1",
            "price": "2000", "newOrderRespType": "ACK"}),
        )
        .await
        .unwrap();
    assert_eq!(ack.status, StatusCode::OK);
    assert!(ack.body.get("status").is_none());
    assert!(ack.body["orderId"].as_u64().is_some());
    alice.place(&json!({"symbol": "ETH-EUR", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1999"})).await.unwrap();
    let open = eventually(|| async {
        let o = alice
            .signed(Method::GET, "/api/v1/openOrders", "symbol=ETH-EUR", None)
            .await
            .unwrap();
        (o.body.as_array().unwrap().len() == 2).then_some(o.body)
    })
    .await;
    assert_eq!(open[0]["orderId"], ack.body["orderId"]);

    // A market buy that walks the book, IOC remainder expires.
    let m = bob
        .place(&json!({"symbol": "ETH-EUR", "side": "SELL", "type": "MARKET", "quantity": "3"}))
        .await
        .unwrap();
    assert_eq!(m.body["executedQty"], "2.00000000", "{:?}", m.body);
    assert_eq!(m.body["status"], "EXPIRED", "IOC remainder");
    assert_eq!(m.body["fills"].as_array().unwrap().len(), 2);

    // Cancel-all everywhere.
    alice.place(&limit("SELL", "0.1", "40000")).await.unwrap();
    alice.place(&limit("SELL", "0.1", "40001")).await.unwrap();
    let all = alice
        .signed(Method::DELETE, "/api/v1/openOrders", "", None)
        .await
        .unwrap();
    let counts: Vec<Value> = all.body["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["canceled"].clone())
        .collect();
    assert_eq!(counts, vec![json!(2), json!(0), json!(0)], "{:?}", all.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_flow_sqlite() {
    let ex = start().await;
    trading_flow(&ex).await;
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_flow_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let ex = start_with(|c| c.database_url = Some(url)).await;
    trading_flow(&ex).await;
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    let order = limit("SELL", "0.1", "30000");
    let body = order.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;

    // Stale timestamp.
    let stale = alice
        .signed_raw(Method::POST, "/api/v1/order", "", &body, now - 60_000)
        .await
        .unwrap();
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::UNAUTHORIZED, Some(-1021))
    );
    // Wrong secret.
    let forged = ex.public().with_credentials(client::Credentials {
        api_key: "ab".repeat(16),
        secret: "x".into(),
    });
    let r = forged.place(&order).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, Some(-2015))
    );
    let bad = bob.with_credentials(client::Credentials {
        api_key: alice.api_key().unwrap().to_string(),
        secret: "not-the-secret".into(),
    });
    let r = bad.place(&order).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, Some(-1022))
    );
    // No key at all.
    let r = ex.public().place(&order).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, Some(-2014))
    );

    // Another user's order is invisible and cannot be canceled.
    let placed = alice.place(&order).await.unwrap();
    let id = placed.body["orderId"].as_u64().unwrap();
    let q = format!("symbol=BTC-EUR&orderId={id}");
    eventually(|| async {
        let r = alice
            .signed(Method::GET, "/api/v1/order", &q, None)
            .await
            .unwrap();
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    let r = bob
        .signed(Method::GET, "/api/v1/order", &q, None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, Some(-2013)));
    let r = bob
        .signed(Method::DELETE, "/api/v1/order", &q, None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, Some(-303)));
    let r = alice
        .signed(Method::GET, "/api/v1/order", &q, None)
        .await
        .unwrap();
    assert_eq!(r.body["status"], "NEW");
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429() {
    let ex = start_with(|c| {
        c.gateway.rate_limit_per_sec = 1;
        c.gateway.rate_limit_burst = 3;
    })
    .await;
    let alice = ex.user("alice").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = alice
            .signed(Method::GET, "/api/v1/openOrders", "", None)
            .await
            .unwrap();
        statuses.push((r.status, r.code(), r.retry_after));
    }
    assert!(
        statuses[..3].iter().all(|s| s.0 == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses[4].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses[4].1, Some(-1003));
    assert_eq!(statuses[4].2.as_deref(), Some("1"));
    // Another key is not affected.
    let bob = ex.user("bob").await;
    let r = bob
        .signed(Method::GET, "/api/v1/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_sheds_orders_but_cancels_pass() {
    let ex = start_with(|c| {
        c.gateway.max_in_flight_per_pair = 1;
    })
    .await;
    let alice = ex.user("alice").await;
    let resting = alice.place(&limit("SELL", "0.1", "50000")).await.unwrap();
    let id = resting.body["orderId"].as_u64().unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = alice.clone();
        tasks.push(tokio::spawn(async move {
            c.place(&limit("BUY", "0.001", &format!("{}", 20000 + i)))
                .await
                .unwrap()
        }));
    }
    let cancel = {
        let c = alice.clone();
        tokio::spawn(async move {
            c.signed(
                Method::DELETE,
                "/api/v1/order",
                &format!("symbol=BTC-EUR&orderId={id}"),
                None,
            )
            .await
            .unwrap()
        })
    };
    let mut shed = 0;
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.code(), Some(-1008));
                assert_eq!(r.retry_after.as_deref(), Some("1"));
                shed += 1;
            }
            s => panic!("unexpected {s}: {:?}", r.body),
        }
    }
    let c = cancel.await.unwrap();
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert!(shed > 0 && ok > 0, "ok {ok}, shed {shed}");
    let metrics = ex.public().get("/metrics", "").await.unwrap();
    let text = metrics.body.as_str().unwrap().to_string();
    assert!(
        text.contains(&format!(
            "matching_shed_total{{reason=\"pair_in_flight\"}} {shed}"
        )),
        "{text}"
    );
    // Shed orders never reached the book: exactly `ok` bids rest.
    let open = eventually(|| async {
        let o = alice
            .signed(Method::GET, "/api/v1/openOrders", "symbol=BTC-EUR", None)
            .await
            .unwrap();
        (o.body.as_array().unwrap().len() == ok).then_some(o.body)
    })
    .await;
    assert_eq!(open.as_array().unwrap().len(), ok);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let ex = start().await;
    let p = ex.public();
    assert_eq!(p.get("/healthz", "").await.unwrap().status, StatusCode::OK);
    assert_eq!(p.get("/readyz", "").await.unwrap().body["ready"], true);
    let m = p.get("/metrics", "").await.unwrap();
    let text = m.body.as_str().unwrap();
    for name in [
        "matching_actor_queue_depth",
        "matching_shed_total",
        "gateway_limit",
        "matching_persister_lag_events",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    let info = p.get("/api/v1/exchangeInfo", "").await.unwrap();
    let symbols: Vec<&str> = info.body["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["BTC-EUR", "ETH-EUR", "ETH-BTC"]);
    assert_eq!(info.body["symbols"][0]["tickSize"], "0.01");
    ex.running.shutdown().await;
}
