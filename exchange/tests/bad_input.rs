//! Every malformed request gets a 4xx with a stable code, and the process
//! keeps serving.

mod common;

use client::{Method, StatusCode};
use common::now_ms;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "a table of bad requests, read top to bottom"
)]
async fn bad_orders_get_4xx_with_codes() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    // A good order's form body, with `extra` parameters appended.
    let o = |extra: &str| {
        format!("symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=30000{extra}")
    };
    let big = format!("symbol=BTCEUR&pad={}", "x".repeat(20_000));
    let cases: Vec<(&str, String, u16, i64)> = vec![
        (
            "missing side",
            "symbol=BTCEUR&type=LIMIT&timeInForce=GTC&quantity=1&price=1".into(),
            400,
            -1102,
        ),
        ("empty side", o("").replace("side=BUY", "side="), 400, -1102),
        (
            "missing quantity",
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&price=1".into(),
            400,
            -1102,
        ),
        (
            "missing price on limit",
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1".into(),
            400,
            -1102,
        ),
        (
            "missing time in force on limit",
            o("").replace("&timeInForce=GTC", ""),
            400,
            -1102,
        ),
        (
            "market without a size",
            "symbol=BTCEUR&side=BUY&type=MARKET".into(),
            400,
            -1102,
        ),
        ("unknown parameter", o("&colour=red"), 400, -1104),
        ("the old clientOrderId", o("&clientOrderId=a"), 400, -1104),
        ("the old postOnly", o("&postOnly=true"), 400, -1104),
        ("duplicate parameter", o("&quantity=0.2"), 400, -1101),
        ("unknown side", o("").replace("BUY", "HOLD"), 400, -1116),
        ("lower-case side", o("").replace("BUY", "buy"), 400, -1116),
        (
            "unknown type",
            o("").replace("type=LIMIT", "type=STOP"),
            400,
            -1116,
        ),
        (
            "unknown time in force",
            o("").replace("GTC", "GTX"),
            400,
            -1116,
        ),
        (
            "unknown STP mode",
            o("&selfTradePreventionMode=MAYBE"),
            400,
            -1116,
        ),
        (
            "unknown response type",
            o("&newOrderRespType=PARTIAL"),
            400,
            -1116,
        ),
        ("bad decimal", o("").replace("=0.1", "=1e3"), 400, -1100),
        (
            "too many decimals",
            o("").replace("=30000", "=30000.001"),
            400,
            -1111,
        ),
        ("negative", o("").replace("=0.1", "=-0.1"), 400, -1112),
        ("zero", o("").replace("=0.1", "=0"), 400, -1112),
        (
            "overflow",
            o("").replace("=30000", "=999999999999999999999"),
            400,
            -1112,
        ),
        (
            "unknown symbol",
            o("").replace("BTCEUR", "DOGEEUR"),
            400,
            -1121,
        ),
        (
            "the config's name",
            o("").replace("BTCEUR", "BTC-EUR"),
            400,
            -1121,
        ),
        (
            "malformed symbol",
            o("").replace("BTCEUR", "btc%2Feur"),
            400,
            -1121,
        ),
        (
            "quantity off lot",
            o("").replace("=0.1", "=0.000001"),
            400,
            -1013,
        ),
        (
            "below min notional",
            o("").replace("=30000", "=1").replace("=0.1", "=0.00001"),
            400,
            -1013,
        ),
        (
            "market with price",
            o("").replace("type=LIMIT&timeInForce=GTC", "type=MARKET"),
            400,
            -1106,
        ),
        (
            "market GTC",
            "symbol=BTCEUR&side=BUY&type=MARKET&quantity=1&timeInForce=GTC".into(),
            400,
            -1106,
        ),
        (
            "LIMIT_MAKER with IOC",
            o("")
                .replace("type=LIMIT", "type=LIMIT_MAKER")
                .replace("GTC", "IOC"),
            400,
            -1106,
        ),
        (
            "quoteOrderQty on a limit",
            o("").replace("quantity=0.1", "quoteOrderQty=100"),
            400,
            -1106,
        ),
        (
            "both sizes",
            "symbol=BTCEUR&side=BUY&type=MARKET&quantity=1&quoteOrderQty=100".into(),
            400,
            -1128,
        ),
        ("a stop price", o("&stopPrice=1"), 400, -1106),
        (
            "bad client order id",
            o("&newClientOrderId=has%20space"),
            400,
            -1100,
        ),
        (
            "client order id of 37",
            o(&format!("&newClientOrderId={}", "a".repeat(37))),
            400,
            -1100,
        ),
        (
            "computeCommissionRates on a real order",
            o("&computeCommissionRates=true"),
            400,
            -1106,
        ),
        ("oversized body", big, 413, -1131),
    ];
    for (name, body, status, code) in &cases {
        let r = alice
            .signed_raw(Method::POST, "/api/v3/order", "", body, now_ms())
            .await
            .unwrap();
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (*status, Some(*code)),
            "{name}: {:?}",
            r.body
        );
        assert!(
            r.body["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
    // The filter failures name the filter, as Binance's do.
    let r = alice
        .signed_raw(
            Method::POST,
            "/api/v3/order",
            "",
            &o("").replace("=0.1", "=0.000001"),
            now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(r.body["msg"], "Filter failure: LOT_SIZE");

    // A body that is not UTF-8, and one that is not a form.
    let http = reqwest_client();
    let key = ex.credentials("raw").await;
    let signer = clientkit::Signer::new(&key);
    let bodies: [(&str, Vec<u8>, &str, i64); 3] = [
        (
            "not UTF-8",
            b"symbol=BTCEUR&side=\xff".to_vec(),
            "application/x-www-form-urlencoded",
            -1100,
        ),
        ("plain text", b"x".to_vec(), "text/plain", -1132),
        (
            "JSON",
            br#"{"symbol":"BTCEUR"}"#.to_vec(),
            "application/json",
            -1132,
        ),
    ];
    for (name, body, ct, code) in &bodies {
        let url = signer.sign("/api/v3/order", "", body, now_ms());
        let r = http
            .post(format!("{}{url}", ex.url))
            .header(gateway::API_KEY_HEADER, &key.api_key)
            .header("content-type", *ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{name}: {}", r.status());
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"].as_i64(), Some(*code), "{name}: {v}");
    }

    // Query-string endpoints.
    let queries = [
        ("/api/v3/depth", "symbol=BTCEUR&limit=0", -1120),
        ("/api/v3/depth", "symbol=BTCEUR&limit=abc", -1100),
        ("/api/v3/depth", "limit=5", -1102),
        ("/api/v3/depth", "symbol=XXXYYY", -1121),
        ("/api/v3/depth", "symbol=BTC-EUR", -1121),
        ("/api/v3/depth", "symbol=BTCEUR&extra=1", -1104),
        ("/api/v3/depth", "symbol=BTCEUR&symbol=ETHEUR", -1101),
        ("/api/v3/trades", "symbol=BTCEUR&limit=5000", -1120),
        ("/api/v3/klines", "symbol=BTCEUR", -1102),
        ("/api/v3/klines", "symbol=BTCEUR&interval=2m", -1120),
        (
            "/api/v3/klines",
            "symbol=BTCEUR&interval=1m&startTime=2&endTime=1",
            -1128,
        ),
        (
            "/api/v3/klines",
            "symbol=BTCEUR&interval=1m&limit=1001",
            -1120,
        ),
        (
            "/api/v3/klines",
            "symbol=BTCEUR&interval=1m&timeZone=15:00",
            -1100,
        ),
        (
            "/api/v3/aggTrades",
            "symbol=BTCEUR&fromId=1&startTime=1",
            -1128,
        ),
        (
            "/api/v3/aggTrades",
            "symbol=BTCEUR&startTime=0&endTime=3600001",
            -1128,
        ),
        ("/api/v3/ticker", "", -1102),
        ("/api/v3/ticker", "symbol=BTCEUR&windowSize=60m", -1120),
        ("/api/v3/ticker/24hr", "symbol=BTCEUR&type=HUGE", -1116),
        (
            "/api/v3/ticker/price",
            "symbol=BTCEUR&symbols=%5B%5D",
            -1128,
        ),
        ("/api/v3/ticker/price", "symbols=BTCEUR", -1100),
        ("/api/v3/avgPrice", "", -1102),
        (
            "/api/v3/exchangeInfo",
            "symbol=BTCEUR&symbols=%5B%22BTCEUR%22%5D",
            -1128,
        ),
        ("/api/v3/exchangeInfo", "symbol=NOPE", -1121),
    ];
    for (path, q, code) in queries {
        let r = ex.public().get(path, q).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}?{q}: {:?}",
            r.body
        );
    }
    let signed = [
        (Method::DELETE, "/api/v3/order", "symbol=BTCEUR", -1102),
        (
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=1&origClientOrderId=a",
            -2011,
        ),
        (
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=-1",
            -1100,
        ),
        (
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=1&newOrderRespType=ACK",
            -1104,
        ),
        (
            Method::GET,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=12",
            -2013,
        ),
        (Method::GET, "/api/v3/myTrades", "", -1102),
        (
            Method::GET,
            "/api/v3/myTrades",
            "symbol=BTCEUR&fromId=1&startTime=1",
            -1128,
        ),
        (
            Method::GET,
            "/api/v3/myTrades",
            "symbol=BTCEUR&startTime=0&endTime=86400001",
            -1128,
        ),
        (
            Method::GET,
            "/api/v3/allOrders",
            "symbol=BTCEUR&fromId=1",
            -1106,
        ),
        (
            Method::GET,
            "/api/v3/allOrders",
            "symbol=BTCEUR&limit=1001",
            -1120,
        ),
        (Method::DELETE, "/api/v3/openOrders", "", -1102),
        (Method::GET, "/api/v3/openOrders", "symbol=NOPE", -1121),
    ];
    for (m, path, q, code) in signed.clone() {
        let r = alice.signed(m.clone(), path, q, None).await.unwrap();
        assert_eq!(r.code(), Some(code), "{m} {path}?{q}: {:?}", r.body);
        assert!(r.status.is_client_error());
    }
    let r = alice
        .signed(
            Method::PUT,
            "/api/v3/order/amend/keepPriority",
            "",
            Some(&serde_json::json!({"symbol": "BTCEUR", "orderId": 1})),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), Some(-1102), "{:?}", r.body);
    // Price amends are gone from REST: `PUT /api/v3/order` is no route.
    let r = alice
        .signed(
            Method::PUT,
            "/api/v3/order",
            "",
            Some(&serde_json::json!({"symbol": "BTCEUR", "orderId": 1, "price": "1"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (405, Some(-1020)),
        "{:?}",
        r.body
    );

    // Nothing bad reached the book, and the process still serves.
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["bids"], serde_json::json!([]));
    assert!(common::open_orders(&alice, "BTCEUR").await.is_empty());
    let ok = alice
        .place(&common::limit("BUY", "0.1", "30000"))
        .await
        .unwrap();
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    println!(
        "bad_input: {} order, body, query and signed-request cases",
        cases.len() + bodies.len() + queries.len() + signed.len() + 3
    );
    ex.running.shutdown().await;
}

/// The parameters `/api/v3` added for amends, cancel-replaces and
/// cancels, at and past their bounds, with wrong types, and naming another
/// user's order: each answer has its code, and nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amend_replace_and_cancel_parameters_are_checked() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    let placed = bob
        .place(&common::limit("SELL", "0.5", "31000"))
        .await
        .unwrap();
    assert_eq!(placed.status, StatusCode::OK, "{:?}", placed.body);
    let bobs = placed.body["orderId"].as_u64().unwrap();
    let mine = alice
        .place(&common::limit("BUY", "0.5", "29000"))
        .await
        .unwrap();
    let mine = mine.body["orderId"].as_u64().unwrap();
    let amend =
        |id: u64, qty: &str| serde_json::json!({"symbol": "BTCEUR", "orderId": id, "newQty": qty});
    let amends = [
        (amend(mine, "0"), -1112),
        (amend(mine, "-0.1"), -1112),
        (amend(mine, "abc"), -1100),
        (amend(mine, "0.1234567890"), -1111),
        // Not lower than the order's quantity: keepPriority only lowers.
        (amend(mine, "0.5"), -2010),
        (amend(mine, "0.6"), -2010),
        // Another user's order is one that does not exist.
        (amend(bobs, "0.1"), -2013),
        (amend(u64::MAX, "0.1"), -2013),
    ];
    let path = "/api/v3/order/amend/keepPriority";
    for (body, code) in &amends {
        let r = alice
            .signed(Method::PUT, path, "", Some(body))
            .await
            .unwrap();
        assert_eq!(r.code(), Some(*code), "{body}: {:?}", r.body);
        assert!(r.status.is_client_error(), "{body}");
    }
    let replace = |extra: &str| {
        format!(
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=29500\
             &cancelReplaceMode=STOP_ON_FAILURE{extra}"
        )
    };
    let replaces = [
        (
            replace(&format!("&cancelOrderId={mine}")).replace("STOP_ON_FAILURE", "MAYBE"),
            -1116,
        ),
        (replace("&cancelOrderId=x"), -1100),
        (replace(&format!("&cancelOrderId={mine}&colour=red")), -1104),
        (
            replace(&format!(
                "&cancelOrderId={mine}&computeCommissionRates=true"
            )),
            -1106,
        ),
        (
            replace(&format!(
                "&cancelOrderId={mine}&cancelRestrictions=SOMETIMES"
            )),
            -1116,
        ),
        // Bob's order cannot be canceled by alice: nothing is placed.
        (replace(&format!("&cancelOrderId={bobs}")), -2022),
    ];
    for (q, code) in &replaces {
        let r = alice
            .signed(Method::POST, "/api/v3/order/cancelReplace", q, None)
            .await
            .unwrap();
        assert_eq!(r.code(), Some(*code), "{q}: {:?}", r.body);
        assert!(r.status.is_client_error(), "{q}");
    }
    cancels_and_queries_are_checked(&alice, mine, bobs).await;

    // Both orders stand as placed: one each, untouched.
    let mine_open = common::open_orders(&alice, "BTCEUR").await;
    assert_eq!(mine_open.len(), 1, "{mine_open:?}");
    assert_eq!(mine_open[0]["origQty"], "0.50000000");
    assert_eq!(mine_open[0]["price"], "29000.00");
    let bobs_open = common::open_orders(&bob, "BTCEUR").await;
    assert_eq!(bobs_open.len(), 1, "{bobs_open:?}");
    assert_eq!(bobs_open[0]["orderId"], bobs);
    ex.running.shutdown().await;
}

/// Cancels and queries naming another user's order, an id past every
/// order, a malformed restriction or a duplicated id: each has its code.
async fn cancels_and_queries_are_checked(alice: &client::Client, mine: u64, bobs: u64) {
    let cancels = [
        (format!("symbol=BTCEUR&orderId={bobs}"), -2011),
        (format!("symbol=BTCEUR&orderId={}", u64::MAX), -2011),
        (
            format!("symbol=BTCEUR&orderId={mine}&cancelRestrictions=NEVER"),
            -1116,
        ),
        (
            format!("symbol=BTCEUR&orderId={mine}&orderId={mine}"),
            -1101,
        ),
    ];
    for (q, code) in &cancels {
        let r = alice
            .signed(Method::DELETE, "/api/v3/order", q, None)
            .await
            .unwrap();
        assert_eq!(r.code(), Some(*code), "{q}: {:?}", r.body);
    }
    let r = alice
        .signed(
            Method::GET,
            "/api/v3/order",
            &format!("symbol=BTCEUR&orderId={bobs}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.code(), Some(-2013), "{:?}", r.body);
    // Another user's order id filters one's own trades down to none.
    let q = format!("symbol=BTCEUR&orderId={bobs}");
    let r = alice
        .signed(Method::GET, "/api/v3/myTrades", &q, None)
        .await
        .unwrap();
    assert_eq!(r.body, serde_json::json!([]), "{:?}", r.body);
}

fn reqwest_client() -> client::HttpClient {
    client::HttpClient::new()
}

// ---------------------------------------------------------------------------
// Classes of the HTTP edge: every route x method, the request head's limits,
// content types, and every WebSocket frame class. Each test prints how many
// cases it ran (`cargo test --test bad_input -- --nocapture`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::raw;
use tokio::io::AsyncWriteExt;

const ROUTES: [&str; 30] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v3/ping",
    "/api/v3/time",
    "/api/v3/exchangeInfo",
    "/api/v3/depth",
    "/api/v3/trades",
    "/api/v3/historicalTrades",
    "/api/v3/aggTrades",
    "/api/v3/klines",
    "/api/v3/uiKlines",
    "/api/v3/avgPrice",
    "/api/v3/ticker/24hr",
    "/api/v3/ticker/price",
    "/api/v3/ticker/bookTicker",
    "/api/v3/ticker",
    "/api/v3/order",
    "/api/v3/order/test",
    "/api/v3/order/cancelReplace",
    "/api/v3/order/amend/keepPriority",
    "/api/v3/openOrders",
    "/api/v3/allOrders",
    "/api/v3/myTrades",
    "/api/v3/account",
    "/api/v3/rateLimit/order",
    "/admin/v1/audit",
    "/admin/v1/balances",
    "/admin/v1/deposit",
    "/ws",
];

const UNKNOWN_PATHS: [&str; 11] = [
    "/",
    "/api",
    "/api/v3",
    "/api/v3/",
    "/api/v3/nope",
    "/api/v1/order",
    "/api/v1/time",
    "/api/v2/order",
    "/api/v3/order/1",
    "/api/v3/ORDER",
    "/%ff%fe",
];

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// An error answer is `{code,msg}` JSON; a HEAD answer has no body, so its
/// status and content type stand for it.
fn assert_json_error(case: &str, method: &str, r: &raw::RawResponse) {
    assert!(r.status >= 400, "{case}: status {}", r.status);
    assert!(r.status < 500, "{case}: server error {}", r.status);
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "{case}: content-type {ct:?}"
    );
    if method != "HEAD" {
        assert!(
            r.is_code_msg(),
            "{case}: body {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

async fn send(addr: SocketAddr, method: &str, target: &str, extra: &str) -> raw::RawResponse {
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    raw::request(addr, req.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_method_answers_json() {
    let ex = common::start().await;
    let addr = ex.running.addr;
    let mut cases = 0;
    for path in ROUTES.iter().chain(UNKNOWN_PATHS.iter()) {
        for method in METHODS {
            let r = send(addr, method, path, "").await;
            let case = format!("{method} {path}");
            cases += 1;
            // Public GETs (and their HEADs) succeed without parameters on
            // some routes; everything else is an error, and a JSON one.
            if r.status < 400 {
                assert!(
                    matches!(method, "GET" | "HEAD") && ROUTES.contains(path),
                    "{case}: {}",
                    r.status
                );
                continue;
            }
            assert_json_error(&case, method, &r);
            if UNKNOWN_PATHS.contains(path) {
                assert_eq!(r.status, 404, "{case}");
            }
            if r.status == 405 {
                assert!(r.header("allow").is_some(), "{case}: no Allow header");
                if method != "HEAD" {
                    assert_eq!(r.json().unwrap()["code"], -1020, "{case}");
                }
            }
        }
    }
    // The finding: PATCH on the order route answered 405 with an empty body.
    let r = send(addr, "PATCH", "/api/v3/order", "").await;
    assert_eq!(
        (r.status, r.json().unwrap()["code"].as_i64()),
        (405, Some(-1020))
    );
    println!("bad_input: {cases} route x method cases");
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_head_limits_and_bad_upgrades_answer_json() {
    let ex = common::start().await;
    let addr = ex.running.addr;
    let long = |n: usize| format!("/api/v3/depth?symbol=BTCEUR&x={}", "a".repeat(n));
    let many: String = (0..65).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "b".repeat(20 * 1024));
    let cases: Vec<(&str, &str, String, String, u16, i64)> = vec![
        ("URI just over 8 KiB", "GET", long(8 * 1024), String::new(), 414, -1042),
        ("URI of 60 KiB", "GET", long(60 * 1024), String::new(), 414, -1042),
        ("URI too long on POST", "POST", long(9000), String::new(), 414, -1042),
        ("URI too long, unknown path", "GET", format!("/{}", "p".repeat(9000)), String::new(), 414, -1042),
        ("65 headers", "GET", "/api/v3/time".into(), many.clone(), 431, -1043),
        ("65 headers, unknown path", "DELETE", "/nope".into(), many, 431, -1043),
        ("a 20 KiB header", "GET", "/api/v3/time".into(), big.clone(), 431, -1043),
        ("a 20 KiB header on /ws", "GET", "/ws".into(), big, 431, -1043),
        ("GET /ws, no upgrade headers", "GET", "/ws".into(), String::new(), 400, -1044),
        ("GET /ws, upgrade without key", "GET", "/ws".into(),
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n".into(), 400, -1044),
        ("GET /ws, wrong version", "GET", "/ws".into(),
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".into(), 400, -1044),
        ("GET /ws, upgrade to h2c", "GET", "/ws".into(),
            "Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".into(), 400, -1044),
        ("POST /ws with upgrade headers", "POST", "/ws".into(),
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".into(), 405, -1020),
    ];
    for (name, method, target, extra, status, code) in &cases {
        let r = send(addr, method, target, extra).await;
        assert_eq!(
            r.status,
            *status,
            "{name}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_json_error(name, method, &r);
        assert_eq!(r.json().unwrap()["code"].as_i64(), Some(*code), "{name}");
    }
    // Past hyper's own bounds (64 KiB of head) the answer is hyper's bare
    // one: a 4xx and a closed connection, never a hang or a 5xx.
    let r = send(addr, "GET", &long(70 * 1024), "").await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    println!(
        "bad_input: {} request-head and upgrade cases",
        cases.len() + 1
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_types_are_matched_exactly() {
    let ex = common::start().await;
    let key = ex.credentials("ct").await;
    let form = "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=30000";
    let json = r#"{"symbol":"BTCEUR","side":"BUY","type":"LIMIT","timeInForce":"GTC","quantity":"0.1","price":"30000"}"#;
    // Parameters come in a form (or the query string): a form's media type
    // in any letter case, with parameters, or none at all.
    let accepted = [
        Some("application/x-www-form-urlencoded"),
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        Some("application/x-www-form-urlencoded;charset=UTF-8"),
        Some("APPLICATION/X-WWW-FORM-URLENCODED"),
        Some(" application/x-www-form-urlencoded "),
        None,
    ];
    // Anything else is refused, JSON included (-1132): it was this API's
    // own body and would otherwise be read as nothing at all.
    let refused: [(&str, &str); 9] = [
        ("application/json", json),
        ("application/json; charset=utf-8", json),
        ("APPLICATION/JSON", json),
        ("application/x-www-form-urlencodedx", form),
        ("application/x-www-form", form),
        ("multipart/form-data", form),
        ("text/plain", form),
        ("text/json", json),
        ("json", json),
    ];
    let http = client::HttpClient::new();
    let signer = clientkit::Signer::new(&key);
    let post = |ct: Option<&str>, body: &str| {
        let url = signer.sign("/api/v3/order", "", body.as_bytes(), now_ms());
        let mut req = http
            .post(format!("{}{url}", ex.url))
            .header(gateway::API_KEY_HEADER, key.api_key.clone())
            .body(body.to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    for ct in accepted {
        let r = post(ct, form).await.unwrap();
        assert_eq!(r.status(), 200, "{ct:?}: {:?}", r.text().await);
    }
    for (ct, body) in refused {
        let r = post(Some(ct), body).await.unwrap();
        assert_eq!(r.status(), 415, "{ct:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], -1132, "{ct:?}");
    }
    // A JSON body without a content type is read as a form, which it is
    // not: refused, never placed.
    let r = post(None, json).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Only the accepted orders were placed.
    let alice = client::Client::new(&ex.url, Some(key.clone()));
    let placed = common::eventually(|| async {
        let open = common::open_orders(&alice, "BTCEUR").await;
        (open.len() >= accepted.len()).then_some(open.len())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(placed, accepted.len());
    assert_eq!(
        common::open_orders(&alice, "BTCEUR").await.len(),
        accepted.len()
    );
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(
        d.body["bids"],
        serde_json::json!([["30000.00", "0.60000000"]])
    );
    println!(
        "bad_input: {} content-type cases",
        accepted.len() + refused.len() + 1
    );
    ex.running.shutdown().await;
}

/// A WebSocket frame class and the close code it must get.
struct FrameCase {
    name: &'static str,
    bytes: Vec<u8>,
    close: u16,
}

fn frame_cases() -> Vec<FrameCase> {
    use raw::{frame, frame_header};
    let case = |name, bytes, close| FrameCase { name, bytes, close };
    let mut fragmented = frame(0x01, true, &[b' '; 3000]);
    fragmented.extend(frame(0x00, true, &[b' '; 3000]));
    let mut interleaved = frame(0x01, true, b"[");
    interleaved.extend(frame(0x81, true, b"{}"));
    let mut after_bad = frame(0x81, true, b"{}");
    after_bad.extend(frame(0x83, true, b"x"));
    vec![
        case(
            "1 MiB text frame (header only)",
            frame_header(0x81, true, 1 << 20),
            1009,
        ),
        case(
            "15 MiB text frame (header only)",
            frame_header(0x81, true, 15 << 20),
            1009,
        ),
        case("2^63-byte frame", frame_header(0x82, true, 1 << 63), 1009),
        case("frame of limit + 1", frame(0x81, true, &[b' '; 4097]), 1009),
        case("fragmented message over the limit", fragmented, 1009),
        case(
            "invalid UTF-8 text",
            frame(0x81, true, &[0xff, 0xfe, 0xfd]),
            1007,
        ),
        case(
            "truncated UTF-8 sequence",
            frame(0x81, true, &[b'{', 0xe2, 0x82]),
            1007,
        ),
        case("unmasked client frame", frame(0x81, false, b"{}"), 1002),
        case("reserved data opcode 3", frame(0x83, true, b"x"), 1002),
        case("reserved data opcode 7", frame(0x87, true, b"x"), 1002),
        case("reserved control opcode 11", frame(0x8b, true, b""), 1002),
        case("RSV1 bit set", frame(0xc1, true, b"{}"), 1002),
        case("RSV3 bit set", frame(0x91, true, b"{}"), 1002),
        case(
            "continuation without a start",
            frame(0x80, true, b"x"),
            1002,
        ),
        case("new message inside a fragmented one", interleaved, 1002),
        case("ping of 126 bytes", frame(0x89, true, &[0; 126]), 1002),
        case("fragmented ping", frame(0x09, true, b"p"), 1002),
        case("close with a 1-byte payload", frame(0x88, true, &[3]), 1002),
        case("binary message", frame(0x82, true, b"{}"), 1003),
        case("bad opcode after a good frame", after_bad, 1002),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frame_classes_get_close_codes() {
    // Many messages in a second on one connection: above Binance's 5.
    let ex = common::start_with(|c| c.gateway.ws_messages_per_sec = 1_000).await;
    let addr = ex.running.addr;
    let cases = frame_cases();
    for c in &cases {
        let mut s = raw::ws_connect(addr).await;
        s.write_all(&c.bytes).await.unwrap();
        let got = raw::close_code(&mut s).await;
        let (code, reason) = got.unwrap_or_else(|| panic!("{}: no close frame", c.name));
        assert_eq!(code, c.close, "{}: {reason}", c.name);
        assert!(!reason.is_empty(), "{}: no reason", c.name);
        assert!(
            raw::closed_within(&mut s, Duration::from_secs(5)).await,
            "{}",
            c.name
        );
    }
    // Messages the server answers in JSON, keeping the connection, with
    // the codes of Binance's "Error Messages" table (0 to 3).
    let mut s = raw::ws_connect(addr).await;
    let many: Vec<String> = (0..1025).map(|_| String::new()).collect();
    let answers = [
        ("not JSON", "hello".to_string(), Some(3)),
        (
            "unknown method",
            r#"{"method":"FLY","id":1}"#.into(),
            Some(2),
        ),
        (
            "params not a list",
            r#"{"method":"SUBSCRIBE","params":"x","id":2}"#.into(),
            Some(2),
        ),
        (
            "bad stream",
            r#"{"method":"SUBSCRIBE","params":["btceur"],"id":3}"#.into(),
            Some(2),
        ),
        (
            "unknown symbol",
            r#"{"method":"SUBSCRIBE","params":["xy@depth"],"id":4}"#.into(),
            Some(2),
        ),
        (
            "our old name",
            r#"{"method":"SUBSCRIBE","params":["BTC-EUR@depth"],"id":4}"#.into(),
            Some(2),
        ),
        (
            "unknown kind",
            r#"{"method":"SUBSCRIBE","params":["btceur@kline"],"id":5}"#.into(),
            Some(2),
        ),
        (
            "1,025 streams",
            serde_json::json!({"method":"SUBSCRIBE","params":many,"id":6}).to_string(),
            Some(2),
        ),
        (
            "LOGIN is gone",
            r#"{"method":"LOGIN","params":{},"id":7}"#.into(),
            Some(2),
        ),
        (
            "unknown property",
            r#"{"method":"GET_PROPERTY","params":["x"],"id":8}"#.into(),
            Some(0),
        ),
        (
            "not a boolean",
            r#"{"method":"SET_PROPERTY","params":["combined","x"],"id":9}"#.into(),
            Some(1),
        ),
        (
            "valid SUBSCRIBE",
            r#"{"method":"SUBSCRIBE","params":["btceur@depth"],"id":10}"#.into(),
            None,
        ),
    ];
    for (name, msg, code) in &answers {
        s.write_all(&raw::text(msg)).await.unwrap();
        let v = raw::read_text(&mut s)
            .await
            .unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(v["error"]["code"].as_i64(), *code, "{name}: {v}");
    }
    println!(
        "bad_input: {} WebSocket frame classes, {} message cases",
        cases.len(),
        answers.len()
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_streams_and_connections_are_bounded() {
    let ex = common::start_with(|c| {
        c.gateway.ws_max_streams = 3;
        c.gateway.max_ws_connections = 2;
        c.gateway.ws_messages_per_sec = 1_000;
    })
    .await;
    let addr = ex.running.addr;
    let mut a = raw::ws_connect(addr).await;
    let sub = |id: u32, streams: &[&str]| {
        raw::text(
            &serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": id}).to_string(),
        )
    };
    let steps: [(&[&str], Option<i64>); 5] = [
        (
            &[
                "btceur@depth",
                "btceur@trade",
                "etheur@depth",
                "etheur@trade",
            ],
            Some(2),
        ),
        (&["btceur@depth", "btceur@trade"], None),
        (&["btceur@depth", "etheur@depth"], None),
        (&["etheur@trade"], Some(2)),
        (&["btceur@trade"], None),
    ];
    for (i, (streams, code)) in steps.iter().enumerate() {
        a.write_all(&sub(i as u32, streams)).await.unwrap();
        let v = raw::read_text(&mut a).await.unwrap();
        assert_eq!(v["error"]["code"].as_i64(), *code, "step {i}: {v}");
    }
    // Two connections open: the third upgrade is refused in JSON.
    let _b = raw::ws_connect(addr).await;
    let (r, _) = raw::ws_try_connect(addr).await;
    assert_eq!(r.status, 503);
    assert!(r.is_code_msg(), "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["code"], -1008);
    assert!(r.header("retry-after").is_some());
    // A closed connection frees its place.
    drop(a);
    let mut ok = false;
    for _ in 0..100 {
        if raw::ws_try_connect(addr).await.0.status == 101 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a closed connection's place was not freed");
    println!(
        "bad_input: {} stream and connection bound cases",
        steps.len() + 2
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_cut_off() {
    let ex = common::start_with(|c| {
        c.gateway.header_read_timeout_ms = 300;
        c.gateway.body_read_timeout_ms = 300;
    })
    .await;
    let addr = ex.running.addr;
    let bound = Duration::from_secs(3);
    let head = |len: usize| {
        format!(
            "POST /api/v3/order?timestamp=1&signature=x HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let stalls: Vec<(&str, Vec<u8>)> = vec![
        ("nothing sent", vec![]),
        ("half a request line", b"GET /api/v3/ti".to_vec()),
        (
            "headers without the blank line",
            format!("GET /api/v3/time HTTP/1.1\r\nHost: {addr}\r\n").into_bytes(),
        ),
    ];
    for (name, bytes) in &stalls {
        let t = Instant::now();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        assert!(
            raw::closed_within(&mut s, bound).await,
            "{name}: still open"
        );
        println!("{name}: closed after {:?}", t.elapsed());
    }
    // A body that stops short, and one that trickles past its deadline:
    // 408 {code,msg}, then the connection closes.
    let mut bodies = 0;
    for trickle in [false, true] {
        let t = Instant::now();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head(100).as_bytes()).await.unwrap();
        s.write_all(b"symbol=").await.unwrap();
        if trickle {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
        let mut out = Vec::new();
        let read = tokio::time::timeout(
            bound,
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out),
        )
        .await;
        assert!(
            read.is_ok(),
            "trickle={trickle}: still open after {bound:?}"
        );
        let r = raw::parse(&out);
        assert_eq!(
            r.status,
            408,
            "trickle={trickle}: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(r.json().unwrap()["code"], -1041);
        assert!(r.is_code_msg());
        println!(
            "stalled body (trickle={trickle}): 408 after {:?}",
            t.elapsed()
        );
        bodies += 1;
    }
    // A prompt client is unaffected.
    let r = ex.public().get("/api/v3/time", "").await.unwrap();
    assert_eq!(r.status, 200);
    println!("bad_input: {} stalled-client cases", stalls.len() + bodies);
    ex.running.shutdown().await;
}
