//! Every auth fault on every signed route gets its own status and code,
//! and nothing it asked for happens.

mod common;

use client::StatusCode;
use common::now_ms;
use reqwest::Method;
use serde_json::{Value, json};

/// Where a request carries its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Last in the query string, as this project's clients send it.
    QueryLast,
    /// First in the query string.
    QueryFirst,
    /// Last in the form body.
    Body,
    /// Nowhere.
    Nowhere,
}

/// The parts of a signed request a fault may change.
struct Parts {
    key: Option<String>,
    /// The header the key goes in.
    key_header: &'static str,
    /// The query string, without `signature`.
    query: String,
    /// `None`: the correct signature.
    signature: Option<String>,
    signature_at: At,
    /// The form body, without `signature`.
    body: String,
    /// Appended to the query string after signing.
    after_signing: &'static str,
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
        (
            "key in the old X-API-KEY header",
            |p, _| p.key_header = "x-api-key",
            401,
            -2014,
        ),
        (
            "no signature",
            |p, _| p.signature_at = At::Nowhere,
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
            "wrong signature in the body",
            |p, _| {
                p.signature = Some(sign("x", b"other"));
                p.signature_at = At::Body;
            },
            401,
            -1022,
        ),
        (
            "query changed after signing",
            |p, _| p.after_signing = "&recvWindow=5000",
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
    let order = json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.01", "price": "100"});
    let mut replace = order.clone();
    replace["cancelReplaceMode"] = json!("STOP_ON_FAILURE");
    // Orders that do not exist: the requests change nothing even when
    // they pass.
    replace["cancelOrderId"] = json!(999_999);
    let amend = json!({"symbol": "BTCEUR", "orderId": 999_999, "newQty": "0.005"});
    vec![
        (Method::POST, "/api/v3/order", "", order.clone()),
        (Method::POST, "/api/v3/order/test", "", order),
        (Method::POST, "/api/v3/order/cancelReplace", "", replace),
        (Method::PUT, "/api/v3/order/amend/keepPriority", "", amend),
        (
            Method::GET,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=999999",
            Value::Null,
        ),
        (
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=999999",
            Value::Null,
        ),
        (Method::GET, "/api/v3/openOrders", "", Value::Null),
        (
            Method::DELETE,
            "/api/v3/openOrders",
            "symbol=BTCEUR",
            Value::Null,
        ),
        (
            Method::GET,
            "/api/v3/allOrders",
            "symbol=BTCEUR",
            Value::Null,
        ),
        (
            Method::GET,
            "/api/v3/myTrades",
            "symbol=BTCEUR",
            Value::Null,
        ),
        (Method::GET, "/api/v3/account", "", Value::Null),
        (Method::GET, "/api/v3/rateLimit/order", "", Value::Null),
    ]
}

/// Sends `p` (signed correctly unless `p.signature` says otherwise):
/// the status and the JSON answer.
async fn send(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    method: &Method,
    path: &str,
    p: &Parts,
) -> (StatusCode, Value) {
    let mut payload = p.query.clone().into_bytes();
    payload.extend_from_slice(p.body.as_bytes());
    let sig = p
        .signature
        .clone()
        .unwrap_or_else(|| sign(secret, &payload));
    let sig_param = format!("signature={sig}");
    let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}&{b}"),
    };
    let (mut q, body) = match p.signature_at {
        At::QueryLast => (join(&p.query, &sig_param), p.body.clone()),
        At::QueryFirst => (join(&sig_param, &p.query), p.body.clone()),
        At::Body => (p.query.clone(), join(&p.body, &sig_param)),
        At::Nowhere => (p.query.clone(), p.body.clone()),
    };
    q.push_str(p.after_signing);
    let mut req = http.request(method.clone(), format!("{base}{path}?{q}"));
    if let Some(k) = &p.key {
        req = req.header(p.key_header, k);
    }
    if !body.is_empty() {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A correct request's parts for a route, at `now`.
fn parts(key: &str, query: &str, body: &Value, now: u64) -> Parts {
    Parts {
        key: Some(key.to_string()),
        key_header: gateway::API_KEY_HEADER,
        query: with_timestamp(query, &now.to_string()),
        signature: None,
        signature_at: At::QueryLast,
        body: if body.is_null() {
            String::new()
        } else {
            client::form(body)
        },
        after_signing: "",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_fault_on_every_signed_route_has_its_code() {
    let ex = common::start().await;
    let key = ex.running.store.create_api_key("alice", 1).await.unwrap();
    let http = reqwest::Client::new();
    let mut cases = 0;
    for (method, path, query, body) in routes() {
        for (name, fault, status, code) in faults() {
            // GET parameters are the query string's alone, by Binance's
            // rules.
            if method == Method::GET && name.contains("in the body") {
                continue;
            }
            let now = now_ms();
            let mut p = parts(&key.api_key, query, &body, now);
            fault(&mut p, now);
            let (got_status, answer) = send(&http, &ex.url, &key.secret, &method, path, &p).await;
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
        .signed(Method::GET, "/api/v3/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(open.body, json!([]), "{:?}", open.body);
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["bids"], json!([]), "{:?}", d.body);
    eprintln!("{cases} auth fault cases");
    ex.running.shutdown().await;
}

/// Binance takes the signature anywhere among the parameters: last or
/// first in the query string, or (for `POST`, `PUT` and `DELETE`, whose
/// parameters may be a form) in the form body, with `timestamp` in the
/// body as well as in the query. Each way is answered exactly as the usual
/// one on every signed route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_and_timestamp_may_be_in_the_query_or_the_body() {
    let ex = common::start().await;
    let key = ex.running.store.create_api_key("alice", 1).await.unwrap();
    let http = reqwest::Client::new();
    let mut cases = 0;
    for (method, path, query, body) in routes() {
        let mut answers = Vec::new();
        let variants: &[&str] = if method == Method::GET {
            &["query last", "query first"]
        } else {
            &["query last", "query first", "body", "timestamp in body"]
        };
        for &variant in variants {
            let mut p = parts(&key.api_key, query, &body, now_ms());
            match variant {
                "query first" => p.signature_at = At::QueryFirst,
                "body" => p.signature_at = At::Body,
                "timestamp in body" => {
                    let ts = format!("timestamp={}", now_ms());
                    p.query = strip_timestamp(&p.query);
                    p.body = if p.body.is_empty() {
                        ts
                    } else {
                        format!("{}&{ts}", p.body)
                    };
                    p.signature_at = At::Body;
                }
                _ => {}
            }
            let (status, answer) = send(&http, &ex.url, &key.secret, &method, path, &p).await;
            assert!(
                !matches!(answer["code"].as_i64(), Some(-1022 | -1102 | -2014 | -2015)),
                "{method} {path}, signature {variant}: {answer}"
            );
            answers.push((status, answer["code"].clone(), variant));
            cases += 1;
        }
        let first = (answers[0].0, answers[0].1.clone());
        for (status, code, variant) in &answers {
            assert_eq!(
                (*status, code.clone()),
                first,
                "{method} {path}: signature {variant}"
            );
        }
    }
    eprintln!("{cases} signature placement cases");
    ex.running.shutdown().await;
}
