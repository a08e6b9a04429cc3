//! "Not yours" and "does not exist" look the same on every surface: REST
//! answers and the user stream. A user probing another user's order ids or
//! client order ids learns nothing.

mod common;

use futures_util::StreamExt;

use client::{Client, Method};
use serde_json::{Value, json};

/// What a probe may legitimately differ in: the time, the sequence number
/// and the id the prober sent themselves.
fn normalized(mut v: Value) -> Value {
    for k in ["E", "seq", "i", "c", "orderId", "origClientOrderId"] {
        if let Some(o) = v.as_object_mut()
            && o.contains_key(k)
        {
            o.insert(k.into(), json!("<sent>"));
        }
    }
    v
}

/// One request: method, path, query, form parameters (as JSON).
type Probe = (Method, String, String, Option<Value>);

/// Each probe against an existing order of alice's (`real`) and against
/// one that does not exist (`made_up`).
fn probes(real: u64, made_up: u64) -> Vec<[Probe; 2]> {
    let by_id = |id: u64| format!("symbol=BTCEUR&orderId={id}");
    let by_cid = |c: &str| format!("symbol=BTCEUR&origClientOrderId={c}");
    let with = |mut b: Value, target: Value| {
        b.as_object_mut()
            .unwrap()
            .extend(target.as_object().unwrap().clone());
        Some(b)
    };
    // A decrease of alice's 0.1, as keepPriority takes.
    let amend = |target: Value| with(json!({"symbol": "BTCEUR", "newQty": "0.05"}), target);
    let replace = |target: Value| {
        let mut new = common::limit("BUY", "0.1", "100");
        new["cancelReplaceMode"] = json!("STOP_ON_FAILURE");
        with(new, target)
    };
    let path = "/api/v3/order".to_string();
    let keep = "/api/v3/order/amend/keepPriority".to_string();
    let cancel_replace = "/api/v3/order/cancelReplace".to_string();
    vec![
        [
            (Method::GET, path.clone(), by_id(real), None),
            (Method::GET, path.clone(), by_id(made_up), None),
        ],
        [
            (Method::GET, path.clone(), by_cid("alice-1"), None),
            (Method::GET, path.clone(), by_cid("nobody-1"), None),
        ],
        [
            (Method::DELETE, path.clone(), by_id(real), None),
            (Method::DELETE, path.clone(), by_id(made_up), None),
        ],
        [
            (Method::DELETE, path.clone(), by_cid("alice-1"), None),
            (Method::DELETE, path.clone(), by_cid("nobody-1"), None),
        ],
        [
            (
                Method::PUT,
                keep.clone(),
                String::new(),
                amend(json!({"orderId": real})),
            ),
            (
                Method::PUT,
                keep.clone(),
                String::new(),
                amend(json!({"orderId": made_up})),
            ),
        ],
        [
            (
                Method::PUT,
                keep.clone(),
                String::new(),
                amend(json!({"origClientOrderId": "alice-1"})),
            ),
            (
                Method::PUT,
                keep,
                String::new(),
                amend(json!({"origClientOrderId": "nobody-1"})),
            ),
        ],
        [
            (
                Method::POST,
                cancel_replace.clone(),
                String::new(),
                replace(json!({"cancelOrderId": real})),
            ),
            (
                Method::POST,
                cancel_replace.clone(),
                String::new(),
                replace(json!({"cancelOrderId": made_up})),
            ),
        ],
        [
            (
                Method::POST,
                cancel_replace.clone(),
                String::new(),
                replace(json!({"cancelOrigClientOrderId": "alice-1"})),
            ),
            (
                Method::POST,
                cancel_replace,
                String::new(),
                replace(json!({"cancelOrigClientOrderId": "nobody-1"})),
            ),
        ],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_order_looks_like_no_order_on_rest_or_stream() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob: Client = ex.user("bob").await;
    let mut order = common::limit("SELL", "0.1", "30000");
    order["newClientOrderId"] = json!("alice-1");
    let placed = alice.place(&order).await.unwrap();
    let real = placed.body["orderId"].as_u64().unwrap();
    let made_up = real + 1_000_003;

    // Bob's user stream: a refused command is answered on its request
    // only, so neither probe may show up there, Alice's order least of all.
    let mut stream = common::streams::user_stream(&bob).await;

    let mut probed = 0;
    for pair in probes(real, made_up) {
        let mut seen = Vec::new();
        for (method, path, query, body) in pair {
            let r = bob
                .signed(method.clone(), &path, &query, body.as_ref())
                .await
                .unwrap();
            seen.push((
                r.status,
                normalized(r.body),
                format!("{method} {query} {body:?}"),
            ));
        }
        let (a, b) = (&seen[0], &seen[1]);
        assert!(a.0.is_client_error(), "{}: {:?}", a.2, a.1);
        assert_eq!((a.0, &a.1), (b.0, &b.1), "{} vs {}", a.2, b.2);
        probed += 1;
    }
    assert_eq!(probed, 8);
    while let Ok(Some(m)) =
        tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await
    {
        let text = m.unwrap().into_text().unwrap();
        assert!(
            !text.contains("executionReport"),
            "bob's stream reported: {text}"
        );
    }
    // Alice's order is untouched, and her own cancel still works; bob's
    // cancel-replaces placed nothing.
    let q = format!("symbol=BTCEUR&orderId={real}");
    let r = alice
        .signed(Method::GET, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(r.body["status"], "NEW", "{:?}", r.body);
    assert_eq!(r.body["origQty"], "0.10000000", "{:?}", r.body);
    assert!(common::open_orders(&bob, "BTCEUR").await.is_empty());
    let r = alice
        .signed(Method::DELETE, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(r.body["status"], "CANCELED", "{:?}", r.body);
    ex.running.shutdown().await;
}
