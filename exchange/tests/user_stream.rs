//! User data streams by listen key, as Binance's `user-data-stream.md` has
//! them: `/api/v3/userDataStream` makes, keeps and closes a key; the key
//! opens `/ws/<listenKey>` or a `/stream` name; the stream carries the
//! user's execution reports and balance events and no one else's; an
//! expired key says `listenKeyExpired` and stops; a closed key stops; a
//! revoked API key closes the connection.

mod common;

use std::time::Duration;

use client::{Answer, Client, Method, StatusCode};
use common::streams::{Ws, listen_key, next_json, open};
use common::{Admin, BTCEUR};
use serde_json::{Value, json};

/// `method /api/v3/userDataStream` with the API key header alone.
async fn user_stream(
    c: &Client,
    method: reqwest::Method,
    key: Option<&str>,
    api_key: &str,
) -> Answer {
    let query = key.map_or(String::new(), |k| format!("listenKey={k}"));
    raw(c, method, &query, None, api_key).await
}

/// `method /api/v3/userDataStream?query`, with `body` as (content type,
/// text) when given.
async fn raw(
    c: &Client,
    method: reqwest::Method,
    query: &str,
    body: Option<(&str, &str)>,
    api_key: &str,
) -> Answer {
    let url = format!("{}/api/v3/userDataStream?{query}", c.base());
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("X-MBX-APIKEY", api_key);
    if let Some((content_type, text)) = body {
        req = req
            .header("Content-Type", content_type)
            .body(text.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after: None,
        body,
    }
}

/// Messages until one satisfies `want`, within 5 s; the ones before it
/// are returned with it.
async fn until(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(v) = next_json(ws, Duration::from_secs(5)).await {
        let done = want(&v);
        seen.push(v);
        if done {
            return seen;
        }
    }
    panic!("not seen within 5 s; saw {seen:#?}");
}

fn report_of(id: u64, x: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["e"] == "executionReport" && v["i"] == id && v["x"] == x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_keys_follow_binances_rules() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let a_key = alice.api_key().unwrap().to_string();
    let key = listen_key(&alice).await;
    assert_eq!(key.len(), 64);
    // An active key is returned again (and extended).
    assert_eq!(listen_key(&alice).await, key);
    let put = user_stream(&alice, Method::PUT, Some(&key), &a_key).await;
    assert_eq!((put.status, put.body.clone()), (StatusCode::OK, json!({})));
    // Someone else's key, an unknown one, no key, no API key.
    let b_key = bob.api_key().unwrap().to_string();
    for (method, listen, api_key, status, code) in [
        (Method::PUT, Some(key.as_str()), b_key.as_str(), 400, -1125),
        (
            Method::DELETE,
            Some(key.as_str()),
            b_key.as_str(),
            400,
            -1125,
        ),
        (Method::PUT, Some("0123"), a_key.as_str(), 400, -1125),
        (Method::PUT, None, a_key.as_str(), 400, -1102),
        (Method::POST, None, "", 401, -2014),
        (Method::POST, None, "nosuchkey", 401, -2015),
    ] {
        let a = user_stream(&alice, method.clone(), listen, api_key).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (status, Some(code)),
            "{method} {listen:?}: {:?}",
            a.body
        );
    }
    // Closed by its owner: gone for good; the next POST makes a new one.
    let del = user_stream(&alice, Method::DELETE, Some(&key), &a_key).await;
    assert_eq!(del.status, StatusCode::OK, "{:?}", del.body);
    let again = user_stream(&alice, Method::PUT, Some(&key), &a_key).await;
    assert_eq!(again.code(), Some(-1125));
    assert_ne!(listen_key(&alice).await, key);
    // A closed key opens no stream (the connection opens, with nothing
    // in it, as for any name that is no stream).
    let mut ws = open(&format!("{}/{key}", alice.ws_url())).await;
    alice
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws, Duration::from_secs(1)).await, None);
}

/// An exchange with accounts, Alice holding 1 BTC and Bob 100,000 EUR.
async fn funded() -> (common::TestExchange, Admin, Client, Client) {
    let ex = common::start_with(|c| {
        c.accounts.enabled = true;
        c.accounts.demo_funding.clear();
    })
    .await;
    let ops = Admin::of(&ex, "ops").await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    for (user, asset, amount, r) in [("alice", "BTC", "1", "a"), ("bob", "EUR", "100000", "b")] {
        let body = json!({"user": user, "asset": asset, "amount": amount, "ref": r});
        let a = ops.post("/admin/v1/deposit", &body).await;
        assert!(a.status.is_success(), "{:?}", a.body);
    }
    (ex, ops, alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_reaches_the_stream_as_binances_two_events() {
    let (_ex, ops, alice, _) = funded().await;
    let mut ws = common::streams::user_stream(&alice).await;
    let body = json!({"user": "alice", "asset": "EUR", "amount": "5", "ref": "a2"});
    assert!(
        ops.post("/admin/v1/deposit", &body)
            .await
            .status
            .is_success()
    );
    let seen = until(&mut ws, |v| v["e"] == "outboundAccountPosition").await;
    assert!(
        seen.iter()
            .any(|v| v["e"] == "balanceUpdate" && v["a"] == "EUR" && v["d"] == "5.0000000000"),
        "{seen:#?}"
    );
    let position = seen.last().unwrap();
    assert_eq!(position["B"][0]["f"], json!("5.0000000000"), "{position}");
}

/// One bad request: method, query, body (content type, text), API key,
/// and the status and code it must get.
type Case<'a> = (Method, String, Option<(&'a str, String)>, &'a str, u16, i64);

/// Bad input to the listen-key routes: each refusal with Binance's code,
/// and the key unchanged by any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_key_parameters_are_checked() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let a_key = alice.api_key().unwrap().to_string();
    let key = listen_key(&alice).await;
    let admin = Admin::of(&ex, "ops").await;
    let admin_key = admin.api_key().unwrap().to_string();
    let form = "application/x-www-form-urlencoded";
    let (long, odd) = ("a".repeat(65), "k".repeat(64));
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            format!("listenKey={key}"),
            None,
            &a_key,
            400,
            -1104,
        ),
        (Method::PUT, "listenKey=".into(), None, &a_key, 400, -1102),
        (
            Method::PUT,
            format!("listenKey={long}"),
            None,
            &a_key,
            400,
            -1125,
        ),
        (
            Method::PUT,
            format!("listenKey={odd}"),
            None,
            &a_key,
            400,
            -1125,
        ),
        (
            Method::PUT,
            "listenKey=%FF%00".into(),
            None,
            &a_key,
            400,
            -1125,
        ),
        (
            Method::PUT,
            format!("listenKey={key}&listenKey={key}"),
            None,
            &a_key,
            400,
            -1101,
        ),
        (
            Method::PUT,
            format!("listenKey={key}&symbol=BTCEUR"),
            None,
            &a_key,
            400,
            -1104,
        ),
        (
            Method::PUT,
            String::new(),
            Some(("application/json", format!(r#"{{"listenKey":"{key}"}}"#))),
            &a_key,
            415,
            -1132,
        ),
        (
            Method::PUT,
            format!("listenKey={key}"),
            None,
            "not-a-key!",
            401,
            -2014,
        ),
        (
            Method::PUT,
            format!("listenKey={key}"),
            None,
            &admin_key,
            401,
            -2015,
        ),
    ];
    for (method, query, body, api_key, status, code) in &cases {
        let body = body.as_ref().map(|(t, b)| (*t, b.as_str()));
        let a = raw(&alice, method.clone(), query, body, api_key).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (*status, Some(*code)),
            "{method} {query} {body:?}: {:?}",
            a.body
        );
    }
    // The key still holds, and a form body is read like the query.
    let body = format!("listenKey={key}");
    let kept = raw(&alice, Method::PUT, "", Some((form, &body)), &a_key).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    assert_eq!(listen_key(&alice).await, key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_stream_carries_its_own_events_and_no_one_elses() {
    let (_ex, _, alice, bob) = funded().await;
    let mut a_ws = common::streams::user_stream(&alice).await;
    // Bob's on /stream, combined with a market stream: wrapped payloads.
    let b_key = listen_key(&bob).await;
    let mut b_ws = open(&bob.stream_url(&[&b_key, "btceur@trade"])).await;
    let ask = alice
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    let ask_id = ask.body["orderId"].as_u64().unwrap();
    let new = until(&mut a_ws, report_of(ask_id, "NEW"))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (new["X"].clone(), new["q"].clone(), new["w"].clone()),
        (json!("NEW"), json!("0.50000000"), json!(true))
    );
    let bid = bob
        .place(&common::limit("BUY", "0.2", "30000"))
        .await
        .unwrap();
    let bid_id = bid.body["orderId"].as_u64().unwrap();
    let fill = until(&mut a_ws, report_of(ask_id, "TRADE"))
        .await
        .pop()
        .unwrap();
    // 0.2 at 30000.00 is 6000 EUR; the maker pays 10 bps: 6 EUR.
    assert_eq!(
        (
            &fill["X"], &fill["l"], &fill["z"], &fill["Z"], &fill["m"], &fill["n"], &fill["N"]
        ),
        (
            &json!("PARTIALLY_FILLED"),
            &json!("0.20000000"),
            &json!("0.20000000"),
            &json!("6000.00"),
            &json!(true),
            &json!("6.0000000000"),
            &json!("EUR")
        ),
        "{fill:#}"
    );
    // The fill's id is REST's.
    let mine = alice
        .signed(
            Method::GET,
            "/api/v3/myTrades",
            &format!("symbol={BTCEUR}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(mine.body[0]["id"], fill["t"], "{:?}", mine.body);
    // Bob sees his own fill, wrapped with his key's name, and never
    // Alice's order.
    let bobs = until(&mut b_ws, |v| {
        v["data"]["e"] == "executionReport" && v["data"]["x"] == "TRADE"
    })
    .await;
    let last = bobs.last().unwrap();
    assert_eq!(
        (&last["stream"], &last["data"]["i"]),
        (&json!(b_key), &json!(bid_id))
    );
    assert!(
        bobs.iter()
            .all(|v| v["data"]["i"] != ask_id || v["data"]["e"] != "executionReport")
    );
    let cancel = alice
        .signed(
            Method::DELETE,
            "/api/v3/order",
            &format!("symbol={BTCEUR}&orderId={ask_id}"),
            None,
        )
        .await
        .unwrap();
    assert!(cancel.status.is_success(), "{:?}", cancel.body);
    let end = until(&mut a_ws, report_of(ask_id, "CANCELED"))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (&end["X"], &end["z"], &end["w"]),
        (&json!("CANCELED"), &json!("0.20000000"), &json!(false))
    );
    while let Some(v) = next_json(&mut b_ws, Duration::from_millis(500)).await {
        assert_ne!(
            v["data"]["i"],
            json!(ask_id),
            "Alice's cancel on Bob's stream: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_says_so_then_carries_nothing() {
    let ex = common::start_with(|c| c.gateway.listen_key_ttl_secs = 1).await;
    let alice = ex.user("alice").await;
    let key = listen_key(&alice).await;
    let mut ws = open(&format!("{}/{key}", alice.ws_url())).await;
    let expired = until(&mut ws, |v| v["e"] == "listenKeyExpired")
        .await
        .pop()
        .unwrap();
    assert_eq!(expired["listenKey"], json!(key));
    alice
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws, Duration::from_secs(1)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_key_stops_its_stream() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let key = listen_key(&alice).await;
    let mut ws = open(&format!("{}/{key}", alice.ws_url())).await;
    let a_key = alice.api_key().unwrap().to_string();
    let del = user_stream(&alice, Method::DELETE, Some(&key), &a_key).await;
    assert_eq!(del.status, StatusCode::OK);
    // Within the store check's period (3 s), the stream stops.
    tokio::time::sleep(Duration::from_secs(4)).await;
    alice
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    while let Some(v) = next_json(&mut ws, Duration::from_secs(1)).await {
        assert_ne!(v["e"], "executionReport", "{v}");
    }
}
