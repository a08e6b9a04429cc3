//! Every malformed request gets a 4xx with a stable code, and the process
//! keeps serving.

mod common;

use client::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_get_4xx_with_codes() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let o = |extra: &str| {
        format!(
            r#"{{"symbol":"BTC-EUR","side":"BUY","type":"LIMIT","quantity":"0.1","price":"30000"{extra}}}"#
        )
    };
    let big = format!(r#"{{"symbol":"BTC-EUR","pad":"{}"}}"#, "x".repeat(20_000));
    let cases: Vec<(&str, String, u16, i64)> = vec![
        ("malformed JSON", "{\"symbol\":".into(), 400, -1105),
        ("not an object", "[1,2]".into(), 400, -1100),
        ("missing side", r#"{"symbol":"BTC-EUR","type":"LIMIT","quantity":"1","price":"1"}"#.into(), 400, -1102),
        ("missing quantity", r#"{"symbol":"BTC-EUR","side":"BUY","type":"LIMIT","price":"1"}"#.into(), 400, -1102),
        ("missing price on limit", r#"{"symbol":"BTC-EUR","side":"BUY","type":"LIMIT","quantity":"1"}"#.into(), 400, -1102),
        ("unknown field", o(r#","colour":"red""#), 400, -1101),
        ("unknown side", o("").replace("BUY", "HOLD"), 400, -1116),
        ("lower-case side", o("").replace("BUY", "buy"), 400, -1116),
        ("unknown type", o("").replace("LIMIT", "STOP"), 400, -1116),
        ("unknown time in force", o(r#","timeInForce":"GTX""#), 400, -1116),
        ("unknown STP mode", o(r#","selfTradePrevention":"MAYBE""#), 400, -1116),
        ("unknown response type", o(r#","newOrderRespType":"FULL""#), 400, -1116),
        ("bad decimal", o("").replace("\"0.1\"", "\"1e3\""), 400, -1100),
        ("number not string", o("").replace("\"0.1\"", "0.1"), 400, -1100),
        ("too many decimals", o("").replace("\"30000\"", "\"30000.001\""), 400, -1111),
        ("negative", o("").replace("\"0.1\"", "\"-0.1\""), 400, -1112),
        ("zero", o("").replace("\"0.1\"", "\"0\""), 400, -1112),
        ("overflow", o("").replace("\"30000\"", "\"999999999999999999999\""), 400, -1112),
        ("unknown symbol", o("").replace("BTC-EUR", "DOGE-EUR"), 400, -1121),
        ("malformed symbol", o("").replace("BTC-EUR", "btc/eur"), 400, -1121),
        ("quantity off lot", o("").replace("\"0.1\"", "\"0.000001\""), 400, -202),
        ("below min notional", o("").replace("\"30000\"", "\"1\"").replace("\"0.1\"", "\"0.00001\""), 400, -205),
        ("market with price", o("").replace("LIMIT", "MARKET"), 400, -1104),
        ("market GTC", r#"{"symbol":"BTC-EUR","side":"BUY","type":"MARKET","quantity":"1","timeInForce":"GTC"}"#.into(), 400, -206),
        ("post-only IOC", o(r#","postOnly":true,"timeInForce":"IOC""#), 400, -207),
        ("both sizes", o(r#","quoteOrderQty":"100""#), 400, -1104),
        ("bad client order id", o(r#","clientOrderId":"has space""#), 400, -1100),
        ("oversized body", big, 413, -1131),
    ];
    for (name, body, status, code) in &cases {
        let r = alice
            .signed_raw(Method::POST, "/api/v1/order", "", body, now_ms())
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

    // Wrong content type.
    let url = format!("{}/api/v1/order", ex.url);
    let http = reqwest_client();
    let r = http
        .post(&url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    // Query-string endpoints.
    let queries = [
        ("/api/v1/depth", "symbol=BTC-EUR&limit=0", -1112),
        ("/api/v1/depth", "symbol=BTC-EUR&limit=abc", -1100),
        ("/api/v1/depth", "limit=5", -1102),
        ("/api/v1/depth", "symbol=XXX-YYY", -1121),
        ("/api/v1/depth", "symbol=BTC-EUR&extra=1", -1101),
        ("/api/v1/trades", "symbol=BTC-EUR&limit=5000", -1112),
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
        (Method::DELETE, "/api/v1/order", "symbol=BTC-EUR", -1102),
        (
            Method::DELETE,
            "/api/v1/order",
            "symbol=BTC-EUR&orderId=1&origClientOrderId=a",
            -1104,
        ),
        (
            Method::DELETE,
            "/api/v1/order",
            "symbol=BTC-EUR&orderId=-1",
            -1100,
        ),
        (
            Method::GET,
            "/api/v1/order",
            "symbol=BTC-EUR&orderId=12",
            -2013,
        ),
        (Method::GET, "/api/v1/myTrades", "", -1102),
    ];
    for (m, path, q, code) in signed {
        let r = alice.signed(m.clone(), path, q, None).await.unwrap();
        assert_eq!(r.code(), Some(code), "{m} {path}?{q}: {:?}", r.body);
        assert!(r.status.is_client_error());
    }
    let r = alice
        .signed(
            Method::PUT,
            "/api/v1/order",
            "",
            Some(&serde_json::json!({"symbol": "BTC-EUR", "orderId": 1})),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), Some(-1102));

    // Nothing bad reached the book, and the process still serves.
    let d = ex
        .public()
        .get("/api/v1/depth", "symbol=BTC-EUR")
        .await
        .unwrap();
    assert_eq!(d.body["bids"], serde_json::json!([]));
    let ok = alice
        .place(&common::limit("BUY", "0.1", "30000"))
        .await
        .unwrap();
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    ex.running.shutdown().await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn reqwest_client() -> client::HttpClient {
    client::HttpClient::new()
}
