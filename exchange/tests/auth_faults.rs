//! Every auth fault on every signed route gets its own status and code,
//! and nothing it asked for happens.

mod common;

use client::StatusCode;
use common::now_ms;
use reqwest::Method;
use serde_json::{Value, json};

/// The parts of a signed request a fault may change.
struct Parts {
    key: Option<String>,
    /// The query string before `signature`.
    query: String,
    /// `None`: the correct signature.
    signature: Option<String>,
    /// Where the signature goes; `None` leaves it out.
    signature_last: Option<bool>,
    body: String,
}

type Fault = (&'static str, fn(&mut Parts, u64), u16, i64);

#[expect(clippy::too_many_lines, reason = "a table of faulty requests")]
fn faults() -> Vec<Fault> {
    vec![
        ("no key header", |p, _| p.key = None, 401, -2014),
        ("empty key", |p, _| p.key = Some(String::new()), 401, -2014),
        (
            "key with a dash",
            |p, _| p.key = Some("ab-cd".into()),
            401,
            -2014,
        ),
        (
            "key of 129 chars",
            |p, _| p.key = Some("a".repeat(129)),
            401,
            -2014,
        ),
        (
            "unknown key",
            |p, _| p.key = Some("Z".repeat(64)),
            401,
            -2015,
        ),
        ("no signature", |p, _| p.signature_last = None, 400, -1102),
        (
            "signature first",
            |p, _| p.signature_last = Some(false),
            400,
            -1102,
        ),
        (
            "signature not hex",
            |p, _| p.signature = Some("zz".repeat(32)),
            401,
            -1022,
        ),
        (
            "signature truncated",
            |p, _| p.signature = Some("ab".repeat(31) + "a"),
            401,
            -1022,
        ),
        (
            "signature of another body",
            |p, _| p.signature = Some(sign("x", b"other")),
            401,
            -1022,
        ),
        (
            "no timestamp",
            |p, _| p.query = strip_timestamp(&p.query),
            400,
            -1102,
        ),
        (
            "timestamp not a number",
            |p, _| p.query = with_timestamp(&p.query, "abc"),
            400,
            -1102,
        ),
        (
            "negative timestamp",
            |p, _| p.query = with_timestamp(&p.query, "-1"),
            400,
            -1102,
        ),
        (
            "timestamp of 2^64",
            |p, _| p.query = with_timestamp(&p.query, "18446744073709551616"),
            400,
            -1102,
        ),
        (
            "timestamp 2 s ahead",
            |p, now| p.query = with_timestamp(&p.query, &(now + 2_000).to_string()),
            401,
            -1021,
        ),
        (
            "timestamp 6 s old",
            |p, now| p.query = with_timestamp(&p.query, &(now - 6_000).to_string()),
            401,
            -1021,
        ),
        (
            "timestamp 0",
            |p, _| p.query = with_timestamp(&p.query, "0"),
            401,
            -1021,
        ),
        (
            "recvWindow 0",
            |p, _| p.query.push_str("&recvWindow=0"),
            400,
            -1112,
        ),
        (
            "recvWindow 60001",
            |p, _| p.query.push_str("&recvWindow=60001"),
            400,
            -1112,
        ),
        (
            "recvWindow not a number",
            |p, _| p.query.push_str("&recvWindow=1e3"),
            400,
            -1112,
        ),
    ]
}

fn sign(secret: &str, payload: &[u8]) -> String {
    gateway::sign(secret, payload)
}

fn strip_timestamp(q: &str) -> String {
    q.split('&')
        .filter(|kv| !kv.starts_with("timestamp="))
        .collect::<Vec<_>>()
        .join("&")
}

fn with_timestamp(q: &str, ts: &str) -> String {
    let rest = strip_timestamp(q);
    if rest.is_empty() {
        format!("timestamp={ts}")
    } else {
        format!("{rest}&timestamp={ts}")
    }
}

/// The signed routes, with a valid query and body each.
fn routes() -> Vec<(Method, &'static str, &'static str, Value)> {
    let order = json!({"symbol": "BTC-EUR", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "100"});
    let amend = json!({"symbol": "BTC-EUR", "orderId": 1, "quantity": "0.02"});
    vec![
        (Method::POST, "/api/v1/order", "", order),
        (Method::PUT, "/api/v1/order", "", amend),
        (
            Method::GET,
            "/api/v1/order",
            "symbol=BTC-EUR&orderId=1",
            Value::Null,
        ),
        (
            Method::DELETE,
            "/api/v1/order",
            "symbol=BTC-EUR&orderId=1",
            Value::Null,
        ),
        (Method::GET, "/api/v1/openOrders", "", Value::Null),
        (
            Method::DELETE,
            "/api/v1/openOrders",
            "symbol=BTC-EUR",
            Value::Null,
        ),
        (
            Method::GET,
            "/api/v1/myTrades",
            "symbol=BTC-EUR",
            Value::Null,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_fault_on_every_signed_route_has_its_code() {
    let ex = common::start().await;
    let key = ex.running.store.create_api_key("alice", 1).await.unwrap();
    let http = reqwest::Client::new();
    let mut cases = 0;
    for (method, path, query, body) in routes() {
        for (name, fault, status, code) in faults() {
            let now = now_ms();
            let mut p = Parts {
                key: Some(key.api_key.clone()),
                query: with_timestamp(query, &now.to_string()),
                signature: None,
                signature_last: Some(true),
                body: if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                },
            };
            fault(&mut p, now);
            let mut payload = p.query.clone().into_bytes();
            payload.extend_from_slice(p.body.as_bytes());
            let sig = p
                .signature
                .clone()
                .unwrap_or_else(|| sign(&key.secret, &payload));
            let q = match p.signature_last {
                Some(true) => format!("{}&signature={sig}", p.query),
                Some(false) => format!("signature={sig}&{}", p.query),
                None => p.query.clone(),
            };
            let mut req = http.request(method.clone(), format!("{}{path}?{q}", ex.url));
            if let Some(k) = &p.key {
                req = req.header(gateway::API_KEY_HEADER, k);
            }
            if !p.body.is_empty() {
                req = req
                    .header("content-type", "application/json")
                    .body(p.body.clone());
            }
            let resp = req.send().await.unwrap();
            let got_status = resp.status();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (got_status, answer["code"].as_i64()),
                (StatusCode::from_u16(status).unwrap(), Some(code)),
                "{method} {path} {name}: {answer}"
            );
            assert!(
                answer["msg"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}: {answer}"
            );
            cases += 1;
        }
    }
    // Nothing a refused request asked for happened.
    let alice = ex.user("bob").await.with_credentials(client::Credentials {
        api_key: key.api_key.clone(),
        secret: key.secret.clone(),
    });
    let open = alice
        .signed(Method::GET, "/api/v1/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(open.body, json!([]), "{:?}", open.body);
    eprintln!("{cases} auth fault cases");
    ex.running.shutdown().await;
}
