//! End to end over real HTTP against the exchange started in-process.

mod common;

use client::{Method, StatusCode};
use common::{
    BTCEUR, ETHEUR, eventually, header, limit, limit_on, open_orders, order_with_status,
    send_signed, signed_get, start, start_with,
};
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
            &json!({"symbol": BTCEUR, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.5", "price": "30000", "newClientOrderId": "ask-1"}),
        )
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["status"], "NEW");
    assert_eq!(a.body["clientOrderId"], "ask-1");
    let ask_id = a.body["orderId"].as_u64().unwrap();

    let b = bob.place(&limit("BUY", "0.2", "30100")).await.unwrap();
    assert_eq!(b.body["status"], "FILLED", "{:?}", b.body);
    assert_eq!(b.body["executedQty"], "0.20000000");
    assert_eq!(b.body["cummulativeQuoteQty"], "6000.00");
    assert_eq!(b.body["fills"][0]["price"], "30000.00");
    let trade_id = b.body["fills"][0]["tradeId"].as_u64().unwrap();

    // The maker's state and the trade reach the store.
    let order = order_with_status(&alice, BTCEUR, ask_id, "PARTIALLY_FILLED").await;
    assert_eq!(order["executedQty"], "0.20000000");
    assert_eq!(order["clientOrderId"], "ask-1");
    let trades = ex
        .public()
        .get("/api/v3/trades", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(trades.body.as_array().unwrap().len(), 1);
    assert_eq!(trades.body[0]["id"].as_u64(), Some(trade_id));
    let mine = bob
        .signed(Method::GET, "/api/v3/myTrades", "symbol=BTCEUR", None)
        .await
        .unwrap();
    assert_eq!(mine.body[0]["isBuyer"], true);
    assert_eq!(mine.body[0]["isMaker"], false);
    // The buy filled against alice's ask: her side of the same trade.
    let theirs = alice
        .signed(Method::GET, "/api/v3/myTrades", "symbol=BTCEUR", None)
        .await
        .unwrap();
    assert_eq!(theirs.body[0]["id"].as_u64(), Some(trade_id));
    assert_eq!(theirs.body[0]["orderId"].as_u64(), Some(ask_id));
    assert_eq!(theirs.body[0]["isMaker"], true);

    // Depth shows what is left.
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR&limit=5")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.30000000"]]));
    assert!(d.body["lastUpdateId"].as_u64().unwrap() > 0);

    // Amend down keeps priority (the new quantity is the order's whole
    // quantity, 0.2 of it filled); then cancel by client order id.
    let am = alice
        .signed(
            Method::PUT,
            "/api/v3/order/amend/keepPriority",
            "",
            Some(&json!({"symbol": BTCEUR, "orderId": ask_id, "newQty": "0.4"})),
        )
        .await
        .unwrap();
    assert_eq!(am.status, StatusCode::OK, "{:?}", am.body);
    assert_eq!(
        am.body["amendedOrder"]["qty"], "0.40000000",
        "{:?}",
        am.body
    );
    assert_eq!(am.body["amendedOrder"]["executedQty"], "0.20000000");
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR&limit=5")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.20000000"]]));
    let c = alice
        .signed(
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&origClientOrderId=ask-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.body["status"], "CANCELED", "{:?}", c.body);
    assert_eq!(c.body["origClientOrderId"], "ask-1");
    assert_eq!(c.body["orderId"].as_u64(), Some(ask_id));
    assert_eq!(
        (&c.body["origQty"], &c.body["executedQty"]),
        (&json!("0.40000000"), &json!("0.20000000")),
        "{:?}",
        c.body
    );
    let again = alice
        .signed(
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&origClientOrderId=ask-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::BAD_REQUEST, Some(-2011)),
        "{:?}",
        again.body
    );

    // ACK answers before the outcome, and names the order.
    let mut bid = limit_on(ETHEUR, "BUY", "1", "2000");
    bid["newOrderRespType"] = json!("ACK");
    let ack = alice.place(&bid).await.unwrap();
    assert_eq!(ack.status, StatusCode::OK, "{:?}", ack.body);
    assert!(ack.body.get("status").is_none());
    assert!(ack.body["orderId"].as_u64().is_some());
    alice
        .place(&limit_on(ETHEUR, "BUY", "1", "1999"))
        .await
        .unwrap();
    let open = eventually(|| async {
        let o = open_orders(&alice, ETHEUR).await;
        (o.len() == 2).then_some(o)
    })
    .await;
    assert_eq!(open[0]["orderId"], ack.body["orderId"]);

    // A market sell that walks the book; its remainder expires.
    let m = bob
        .place(&json!({"symbol": ETHEUR, "side": "SELL", "type": "MARKET", "quantity": "3"}))
        .await
        .unwrap();
    assert_eq!(m.body["executedQty"], "2.00000000", "{:?}", m.body);
    assert_eq!(m.body["status"], "EXPIRED", "IOC remainder");
    assert_eq!(m.body["fills"].as_array().unwrap().len(), 2);

    // Cancel-all on one pair cancels that pair's open orders only.
    alice.place(&limit("SELL", "0.1", "40000")).await.unwrap();
    alice.place(&limit("SELL", "0.1", "40001")).await.unwrap();
    let eth = alice
        .place(&limit_on(ETHEUR, "SELL", "0.1", "4000"))
        .await
        .unwrap();
    let all = alice
        .signed(Method::DELETE, "/api/v3/openOrders", "symbol=BTCEUR", None)
        .await
        .unwrap();
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let canceled: Vec<(&str, &str)> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["price"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        canceled,
        [("40000.00", "CANCELED"), ("40001.00", "CANCELED")],
        "{:?}",
        all.body
    );
    let eth_id = eth.body["orderId"].as_u64().unwrap();
    order_with_status(&alice, ETHEUR, eth_id, "NEW").await;
    eventually(|| async { open_orders(&alice, BTCEUR).await.is_empty().then_some(()) }).await;
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
    let body = client::form(&order);
    let now = common::now_ms();

    // Stale timestamp.
    let stale = alice
        .signed_raw(Method::POST, "/api/v3/order", "", &body, now - 60_000)
        .await
        .unwrap();
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::UNAUTHORIZED, Some(-1021))
    );
    // Unknown key.
    let forged = ex.public().with_credentials(client::Credentials {
        api_key: "ab".repeat(16),
        secret: "x".into(),
    });
    let r = forged.place(&order).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, Some(-2015))
    );
    // Wrong secret.
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
    let q = format!("symbol=BTCEUR&orderId={id}");
    order_with_status(&alice, BTCEUR, id, "NEW").await;
    let r = bob
        .signed(Method::GET, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, Some(-2013)));
    let r = bob
        .signed(Method::DELETE, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, Some(-2011)));
    let r = alice
        .signed(Method::GET, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(r.body["status"], "NEW");
    ex.running.shutdown().await;
}

/// The per-key rate limit (`rate_limit_per_sec`, `rate_limit_burst`),
/// beside Binance's per-IP weights: a key past its burst gets 429 -1003
/// and `Retry-After`; another key is not affected.
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
            .signed(Method::GET, "/api/v3/openOrders", "", None)
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
        .signed(Method::GET, "/api/v3/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    ex.running.shutdown().await;
}

/// The used weight an answer reports.
fn used_weight(r: &reqwest::Response) -> u64 {
    header(r, "x-mbx-used-weight-1m")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no X-MBX-USED-WEIGHT-1M on {} {:?}", r.status(), r.url()))
}

/// Binance's request weight per IP, through HTTP, with a small configured
/// limit: every `/api/v3` answer (errors too) carries the IP's used weight
/// this minute; past the limit 429 -1003 with `Retry-After`; an IP that
/// keeps going is banned, 418. Other paths are not weighed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_weight_limit_answers_429_then_418() {
    let ex = start_with(|c| {
        c.gateway.request_weight_per_minute = 40;
        c.gateway.ip_ban_after_429s = 2;
    })
    .await;
    let http = client::HttpClient::new();
    let get = |path: &str| http.get(format!("{}{path}", ex.url)).send();
    // Windows are aligned to the minute: all of this fits in one.
    common::within_one_window(60_000, 20_000).await;
    let mut used = Vec::new();
    for path in [
        "/api/v3/ping",
        "/api/v3/time",
        "/api/v3/exchangeInfo",
        "/api/v3/depth?symbol=BTCEUR",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        used.push(used_weight(&r));
    }
    // 1 + 1 + 20 + 5, as Binance weighs these.
    assert_eq!(used, [1, 2, 22, 27]);
    // An error answer is weighed and says so too.
    let r = get("/api/v3/depth?symbol=NOPE").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(used_weight(&r), 32);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], -1121);
    // Not `/api/v3`: not weighed.
    let r = get("/healthz").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mbx-used-weight-1m"), None);
    // 32 + 20 passes 40.
    let r = get("/api/v3/exchangeInfo").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(used_weight(&r) > 40);
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], -1003, "{v}");
    // Even the lightest request is refused for the rest of the minute.
    let r = get("/api/v3/ping").await.unwrap();
    assert_eq!(r.status(), 429);
    // Past `ip_ban_after_429s` refusals the IP is banned: 418, -1003,
    // until when, on every endpoint, signed ones too.
    let r = get("/api/v3/ping").await.unwrap();
    assert_eq!(r.status(), 418);
    assert!(header(&r, "retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], -1003, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("banned until"), "{v}");
    let alice = ex.user("alice").await;
    let r = alice.place(&limit("BUY", "0.1", "100")).await.unwrap();
    assert_eq!((r.status.as_u16(), r.code()), (418, Some(-1003)));
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    ex.running.shutdown().await;
}

/// A new order's usage headers, read as numbers: `(10 s, day)`.
fn order_counts(r: &reqwest::Response) -> (u64, u64) {
    let n = |name: &str| {
        header(r, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} on {}", r.status()))
    };
    (n("x-mbx-order-count-10s"), n("x-mbx-order-count-1d"))
}

/// Binance's order-count limits per account, through HTTP, with small
/// configured limits: order answers carry `X-MBX-ORDER-COUNT-10S` and
/// `-1D`; past the 10-second limit an order gets 429 -1015 with
/// `Retry-After` and is not placed; another account, cancels and reads are
/// not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_count_limits_answer_429_with_1015() {
    let ex = start_with(|c| c.gateway.orders_per_10s = 3).await;
    let alice = ex.credentials("alice").await;
    let bob = ex.credentials("bob").await;
    let place = |who: &client::Credentials, price: &str, resp: &str| {
        let mut o = limit("BUY", "0.01", price);
        o["newOrderRespType"] = json!(resp);
        let body = client::form(&o);
        let (url, who) = (ex.url.clone(), who.clone());
        async move { send_signed(&url, &who, Method::POST, "/api/v3/order", "", &body).await }
    };
    // Windows of 10 s are aligned to the epoch: all of this fits in one.
    common::within_one_window(10_000, 6_000).await;
    let mut counts = Vec::new();
    for (price, resp) in [("100", "ACK"), ("101", "RESULT"), ("102", "FULL")] {
        let r = place(&alice, price, resp).await;
        assert_eq!(r.status(), 200, "{resp}");
        counts.push(order_counts(&r));
    }
    assert_eq!(counts, [(1, 1), (2, 2), (3, 3)]);
    let r = place(&alice, "103", "RESULT").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], -1015, "{v}");
    // The refused order is not counted: Binance's rateLimit/order shows 3.
    let alice_client = client::Client::new(&ex.url, Some(alice.clone()));
    let r = alice_client
        .signed(Method::GET, "/api/v3/rateLimit/order", "", None)
        .await
        .unwrap();
    assert_eq!(
        r.body,
        json!([
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 3, "count": 3},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": ex.config.gateway.orders_per_day, "count": 3},
        ]),
        "{:?}",
        r.body
    );
    // Another account has its own counts.
    let r = place(&bob, "150", "RESULT").await;
    assert_eq!(r.status(), 200);
    assert_eq!(order_counts(&r), (1, 1));
    // Reads and cancels are not orders.
    let open = eventually(|| async {
        let o = open_orders(&alice_client, BTCEUR).await;
        (o.len() == 3).then_some(o)
    })
    .await;
    let first = open[0]["orderId"].as_u64().unwrap();
    let c = alice_client
        .signed(
            Method::DELETE,
            "/api/v3/order",
            &format!("symbol=BTCEUR&orderId={first}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    // The refused order was never placed.
    let prices: Vec<Value> = eventually(|| async {
        let o = open_orders(&alice_client, BTCEUR).await;
        (o.len() == 2).then_some(o)
    })
    .await
    .iter()
    .map(|o| o["price"].clone())
    .collect();
    assert_eq!(prices, [json!("101.00"), json!("102.00")]);
    ex.running.shutdown().await;
}

/// The day's order limit, as the 10 seconds' above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_order_limit_answers_429_with_1015() {
    let ex = start_with(|c| c.gateway.orders_per_day = 2).await;
    let alice = ex.credentials("alice").await;
    let body = client::form(&limit("BUY", "0.01", "100"));
    let mut days = Vec::new();
    for _ in 0..2 {
        let r = send_signed(&ex.url, &alice, Method::POST, "/api/v3/order", "", &body).await;
        assert_eq!(r.status(), 200);
        days.push(order_counts(&r).1);
    }
    assert_eq!(days, [1, 2]);
    let r = send_signed(&ex.url, &alice, Method::POST, "/api/v3/order", "", &body).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], -1015, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("DAY"), "{v}");
    ex.running.shutdown().await;
}

/// A cancel-replace's new order counts against the order limits, as
/// Binance counts it: its answer carries the counts, and past the limit
/// it is refused whole (429 -1015), nothing canceled and nothing placed.
/// (It once placed orders past the limit, uncounted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_replace_counts_against_the_order_limit() {
    let ex = start_with(|c| c.gateway.orders_per_10s = 3).await;
    let alice = ex.credentials("alice").await;
    common::within_one_window(10_000, 6_000).await;
    let mut ids = Vec::new();
    for price in ["100", "101"] {
        let body = client::form(&limit("BUY", "0.01", price));
        let r = send_signed(&ex.url, &alice, Method::POST, "/api/v3/order", "", &body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        ids.push(v["orderId"].as_u64().unwrap());
    }
    let replace = |target: u64, price: &str| {
        let mut r = limit("BUY", "0.01", price);
        r["cancelReplaceMode"] = json!("STOP_ON_FAILURE");
        r["cancelOrderId"] = json!(target);
        client::form(&r)
    };
    let path = "/api/v3/order/cancelReplace";
    let r = send_signed(
        &ex.url,
        &alice,
        Method::POST,
        path,
        "",
        &replace(ids[0], "102"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(order_counts(&r), (3, 3));
    let r = send_signed(
        &ex.url,
        &alice,
        Method::POST,
        path,
        "",
        &replace(ids[1], "103"),
    )
    .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (status.as_u16(), v["code"].as_i64()),
        (429, Some(-1015)),
        "a fourth new order in 10 s, through cancelReplace: {v}"
    );
    // The refused one canceled nothing: 101 still rests, 103 does not.
    let alice = client::Client::new(&ex.url, Some(alice));
    let prices: Vec<Value> = open_orders(&alice, BTCEUR)
        .await
        .iter()
        .map(|o| o["price"].clone())
        .collect();
    assert_eq!(prices, [json!("101.00"), json!("102.00")]);
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
                "/api/v3/order",
                &format!("symbol=BTCEUR&orderId={id}"),
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
        let o = open_orders(&alice, BTCEUR).await;
        (o.len() == ok).then_some(o)
    })
    .await;
    assert_eq!(open.len(), ok);
    ex.running.shutdown().await;
}

/// `DELETE /api/v3/order` with `query` (after `symbol=BTCEUR&`).
async fn cancel(c: &client::Client, query: &str) -> client::Answer {
    c.signed(
        Method::DELETE,
        "/api/v3/order",
        &format!("symbol=BTCEUR&{query}"),
        None,
    )
    .await
    .unwrap()
}

/// A read of one's own orders or trades waits for the store, and asks the
/// persister to commit instead of lingering. With a linger of ten minutes,
/// far past the read's 1 s wait, every read still finds what was just
/// done, and a shutdown does not wait the linger out either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_ones_own_writes_cut_the_persisters_linger_short() {
    let ex = start_with(|c| c.runtime.persister_linger_ms = 600_000).await;
    let alice_key = ex.credentials("alice").await;
    let alice = client::Client::new(&ex.url, Some(alice_key.clone()));
    let bob = ex.user("bob").await;
    let ask = alice.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    assert_eq!(ask.status, StatusCode::OK, "{:?}", ask.body);
    let ask_id = ask.body["orderId"].as_u64().unwrap();
    let bid = bob.place(&limit("BUY", "0.2", "30000")).await.unwrap();
    assert_eq!(bid.body["status"], "FILLED", "{:?}", bid.body);

    let trades = signed_get(&bob, "/api/v3/myTrades", "symbol=BTCEUR").await;
    assert_eq!(trades.as_array().map(Vec::len), Some(1), "{trades:?}");
    let orders = signed_get(&alice, "/api/v3/allOrders", "symbol=BTCEUR").await;
    assert_eq!(orders[0]["orderId"], ask_id, "{orders:?}");
    assert_eq!(orders[0]["status"], "PARTIALLY_FILLED", "{orders:?}");
    assert_eq!(orders[0]["executedQty"], "0.20000000", "{orders:?}");

    // Again for events after that commit: each wait asks anew.
    let canceled = cancel(&alice, &format!("orderId={ask_id}")).await;
    assert_eq!(canceled.status, StatusCode::OK, "{:?}", canceled.body);
    let orders = signed_get(&alice, "/api/v3/allOrders", "symbol=BTCEUR").await;
    assert_eq!(orders[0]["status"], "CANCELED", "{orders:?}");

    // A new order, then a restart: shutdown stores it without lingering.
    let rest = alice.place(&limit("SELL", "0.1", "31000")).await.unwrap();
    assert_eq!(rest.status, StatusCode::OK, "{:?}", rest.body);
    let ex = tokio::time::timeout(std::time::Duration::from_secs(60), ex.restart())
        .await
        .expect("the shutdown waited for the persister's linger");
    let alice = client::Client::new(&ex.url, Some(alice_key));
    let open = open_orders(&alice, BTCEUR).await;
    assert_eq!(open.len(), 1, "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_and_amends_are_answered_from_the_order_view_while_the_store_is_stalled() {
    use sqlx::Connection;
    let ex = start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    // Another connection holds SQLite's write lock: the persister can
    // store nothing until it lets go.
    let mut lock = sqlx::SqliteConnection::connect(&ex.config.database_url())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (qty, price, cid) in [("0.5", "20000", "a-1"), ("0.25", "21000", "a-2")] {
        let mut order = limit("BUY", qty, price);
        order["newClientOrderId"] = json!(cid);
        let r = alice.place(&order).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        ids.push(r.body["orderId"].as_u64().unwrap());
    }

    // Not the owner: unknown, and the order stays.
    let theirs = cancel(&bob, &format!("orderId={}", ids[0])).await;
    assert_eq!(theirs.code(), Some(-2011), "{:?}", theirs.body);
    // The wrong client id beside the right order id: unknown.
    let wrong = cancel(&alice, &format!("orderId={}&origClientOrderId=a-2", ids[0])).await;
    assert_eq!(wrong.code(), Some(-2011), "{:?}", wrong.body);

    // An amend down keeps the order's place; its answer shows the order
    // as placed, which the store does not hold yet.
    let amend = |id: u64, qty: &str| json!({"symbol": BTCEUR, "orderId": id, "newQty": qty});
    let path = "/api/v3/order/amend/keepPriority";
    let amended = alice
        .signed(Method::PUT, path, "", Some(&amend(ids[0], "0.4")))
        .await
        .unwrap();
    assert_eq!(amended.status, StatusCode::OK, "{:?}", amended.body);
    let order = &amended.body["amendedOrder"];
    assert_eq!(
        (&order["price"], &order["qty"]),
        (&json!("20000.00"), &json!("0.40000000"))
    );
    let up = alice
        .signed(Method::PUT, path, "", Some(&amend(ids[0], "0.45")))
        .await
        .unwrap();
    assert_eq!(
        up.code(),
        Some(-2010),
        "an increase over the amended 0.4: {:?}",
        up.body
    );
    let theirs = bob
        .signed(Method::PUT, path, "", Some(&amend(ids[0], "0.1")))
        .await
        .unwrap();
    assert_eq!(theirs.code(), Some(-2013), "{:?}", theirs.body);

    // By order id, with a restriction the order meets: the answer shows
    // the order as it stands.
    let by_id = cancel(
        &alice,
        &format!("orderId={}&cancelRestrictions=ONLY_NEW", ids[0]),
    )
    .await;
    assert_eq!(by_id.status, StatusCode::OK, "{:?}", by_id.body);
    assert_eq!(by_id.body["price"], "20000.00");
    assert_eq!(by_id.body["origQty"], "0.40000000");
    assert_eq!(by_id.body["origClientOrderId"], "a-1");
    assert_eq!(by_id.body["status"], "CANCELED");
    // By client id.
    let by_cid = cancel(&alice, "origClientOrderId=a-2").await;
    assert_eq!(by_cid.status, StatusCode::OK, "{:?}", by_cid.body);
    assert_eq!(by_cid.body["orderId"].as_u64(), Some(ids[1]));
    assert_eq!(by_cid.body["price"], "21000.00");
    assert_eq!(by_cid.body["origQty"], "0.25000000");
    // Canceled: no longer open, so a second cancel is unknown, and so is
    // an amend.
    let again = cancel(&alice, &format!("orderId={}", ids[0])).await;
    assert_eq!(again.code(), Some(-2011), "{:?}", again.body);
    let late = alice
        .signed(Method::PUT, path, "", Some(&amend(ids[0], "0.1")))
        .await
        .unwrap();
    assert_eq!(late.code(), Some(-2013), "{:?}", late.body);

    // Once the lock is gone the store catches up with every change.
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    for id in ids {
        order_with_status(&alice, BTCEUR, id, "CANCELED").await;
    }
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
    let info = p.get("/api/v3/exchangeInfo", "").await.unwrap();
    let symbols: Vec<&str> = info.body["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["BTCEUR", "ETHEUR", "ETHBTC"]);
    let price_filter = &info.body["symbols"][0]["filters"][0];
    assert_eq!(price_filter["filterType"], "PRICE_FILTER");
    assert_eq!(price_filter["tickSize"], "0.01");
    ex.running.shutdown().await;
}
