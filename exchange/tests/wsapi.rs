//! Binance's WebSocket API at `/ws-api/v3`: envelopes, every method once,
//! signatures and sessions, errors by code, the in-flight bound, and user
//! data events with their subscription id.

mod common;

use std::time::Duration;

use client::Credentials;
use common::wsapi::{WsApi, sign};
use serde_json::{Value, json};

fn order(side: &str, price: &str) -> Value {
    json!({"symbol": "BTCEUR", "side": side, "type": "LIMIT", "timeInForce": "GTC",
           "quantity": "0.1", "price": price, "newOrderRespType": "RESULT"})
}

fn assert_ok(v: &Value) -> &Value {
    assert_eq!(v["status"], 200, "{v}");
    &v["result"]
}

fn assert_error(v: &Value, status: u16, code: i64) {
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["msg"].is_string(), "{v}");
    assert!(v.get("result").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_methods_answer_in_binances_envelope() {
    let ex = common::start().await;
    let mut api = WsApi::connect(&ex).await;
    let ping = api.call("ping", json!({})).await;
    assert_eq!(assert_ok(&ping), &json!({}));
    let limits = ping["rateLimits"].as_array().expect("rateLimits");
    assert_eq!(limits.len(), 1, "{ping}");
    assert_eq!(limits[0]["rateLimitType"], "REQUEST_WEIGHT");
    assert_eq!(limits[0]["interval"], "MINUTE");
    assert!(
        limits[0]["count"].as_u64().unwrap() >= 3,
        "connect (2) + ping (1)"
    );
    let time = api
        .call("v3/time", json!({"returnRateLimits": false}))
        .await;
    assert!(assert_ok(&time)["serverTime"].is_u64());
    assert!(time.get("rateLimits").is_none(), "{time}");
    let info = api
        .call("exchangeInfo", json!({"symbols": ["BTCEUR"]}))
        .await;
    assert_eq!(assert_ok(&info)["symbols"][0]["symbol"], "BTCEUR");
    let depth = api
        .call("depth", json!({"symbol": "BTCEUR", "limit": 5}))
        .await;
    assert!(assert_ok(&depth)["lastUpdateId"].is_u64(), "{depth}");
    let klines = api
        .call("klines", json!({"symbol": "BTCEUR", "interval": "1m"}))
        .await;
    assert!(assert_ok(&klines).is_array(), "{klines}");
    // A REST error keeps its status and code.
    let bad = api.call("depth", json!({"symbol": "NOPE"})).await;
    assert_error(&bad, 400, -1121);
    assert!(bad["rateLimits"].is_array(), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_methods_are_their_rest_twins() {
    let ex = common::start().await;
    let alice = ex.credentials("alice").await;
    let bob = ex.credentials("bob").await;
    let mut api = WsApi::connect(&ex).await;
    let test = api.signed("order.test", order("BUY", "100"), &alice).await;
    assert_eq!(assert_ok(&test), &json!({}));
    let placed = api.signed("order.place", order("BUY", "100"), &alice).await;
    let result = assert_ok(&placed);
    assert_eq!(result["status"], "NEW", "{placed}");
    let id = result["orderId"].as_u64().unwrap();
    let kinds: Vec<&str> = placed["rateLimits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["interval"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["SECOND", "DAY", "MINUTE"], "{placed}");
    assert_eq!(placed["rateLimits"][0]["count"], 1, "{placed}");
    let status = api
        .signed(
            "order.status",
            json!({"symbol": "BTCEUR", "orderId": id}),
            &alice,
        )
        .await;
    assert_eq!(assert_ok(&status)["orderId"], id);
    // Not yours looks like does not exist.
    let theirs = api
        .signed(
            "order.status",
            json!({"symbol": "BTCEUR", "orderId": id}),
            &bob,
        )
        .await;
    assert_error(&theirs, 400, -2013);
    let open = api
        .signed("openOrders.status", json!({"symbol": "BTCEUR"}), &alice)
        .await;
    assert_eq!(assert_ok(&open).as_array().unwrap().len(), 1, "{open}");
    let mut replace = order("BUY", "101");
    let r = replace.as_object_mut().unwrap();
    r.insert("cancelReplaceMode".into(), json!("STOP_ON_FAILURE"));
    r.insert("cancelOrderId".into(), json!(id));
    let replaced = api.signed("order.cancelReplace", replace, &alice).await;
    let new_id = assert_ok(&replaced)["newOrderResponse"]["orderId"]
        .as_u64()
        .unwrap();
    let canceled = api
        .signed(
            "order.cancel",
            json!({"symbol": "BTCEUR", "orderId": new_id}),
            &alice,
        )
        .await;
    assert_eq!(assert_ok(&canceled)["status"], "CANCELED");
    api.signed("order.place", order("BUY", "99"), &alice).await;
    let all = api
        .signed("openOrders.cancelAll", json!({"symbol": "BTCEUR"}), &alice)
        .await;
    assert_eq!(assert_ok(&all).as_array().unwrap().len(), 1, "{all}");
    // Accounts are off in this exchange: the REST twin's own answer.
    let account = api.signed("account.status", json!({}), &alice).await;
    assert_error(&account, 501, -1051);
    let trades = api
        .signed("myTrades", json!({"symbol": "BTCEUR"}), &alice)
        .await;
    assert_eq!(assert_ok(&trades), &json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_answered_with_binances_codes() {
    let ex = common::start().await;
    let alice = ex.credentials("alice").await;
    let mut api = WsApi::connect(&ex).await;
    // Bad JSON: no id to echo.
    api.send_text("{not json".into()).await;
    let v = api.next().await;
    assert_error(&v, 400, -1105);
    assert_eq!(v["id"], Value::Null);
    let unknown = api.call("order.teleport", json!({})).await;
    assert_error(&unknown, 400, -1020);
    // A tampered signature.
    let mut p = sign(order("BUY", "100"), &alice);
    p["price"] = json!("200");
    assert_error(&api.call("order.place", p).await, 401, -1022);
    // No signature and no session.
    let unsigned = api.call("order.place", order("BUY", "100")).await;
    assert_error(&unsigned, 400, -1102);
    // A stale timestamp.
    let mut old = order("BUY", "100");
    old["timestamp"] = json!(common::now_ms() - 120_000);
    let stale = api.signed("order.place", old, &alice).await;
    assert_error(&stale, 401, -1021);
    // A mandatory param missing, and one the method does not read.
    let missing = api
        .signed("order.status", json!({"orderId": 1}), &alice)
        .await;
    assert_error(&missing, 400, -1102);
    let extra = api.call("exchangeInfo", json!({"foo": 1})).await;
    assert_error(&extra, 400, -1104);
    // An unknown key.
    let stranger = Credentials {
        api_key: "nobody".into(),
        secret: "x".into(),
    };
    let v = api.signed("account.status", json!({}), &stranger).await;
    assert_error(&v, 401, -2015);
    // The connection survives all of it.
    assert_ok(&api.call("ping", json!({})).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_on_session_needs_no_signatures() {
    let ex = common::start().await;
    let alice = ex.credentials("alice").await;
    let mut api = WsApi::connect(&ex).await;
    let status = api.call("session.status", json!({})).await;
    assert_eq!(assert_ok(&status)["apiKey"], Value::Null);
    let logon = api.signed("session.logon", json!({}), &alice).await;
    let result = assert_ok(&logon);
    assert_eq!(result["apiKey"], alice.api_key.as_str());
    assert!(result["authorizedSince"].is_u64(), "{logon}");
    assert_eq!(result["userDataStream"], false);
    // Requests now carry their timestamp only.
    let mut p = order("BUY", "100");
    p["timestamp"] = json!(common::now_ms());
    assert_eq!(
        assert_ok(&api.call("order.place", p).await)["status"],
        "NEW"
    );
    let no_ts = api.call("openOrders.status", json!({})).await;
    assert_error(&no_ts, 400, -1102);
    let out = api.call("session.logout", json!({})).await;
    assert_eq!(assert_ok(&out)["apiKey"], Value::Null);
    let after = api
        .call("openOrders.status", json!({"timestamp": common::now_ms()}))
        .await;
    assert_error(&after, 400, -1102);
    // A bad logon is refused and leaves the session as it was.
    let mut bad = sign(json!({}), &alice);
    bad["signature"] = json!("00");
    assert_error(&api.call("session.logon", bad).await, 401, -1022);
    let sub = api.call("userDataStream.subscribe", json!({})).await;
    assert_error(&sub, 401, -2015);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_arrives_with_its_subscription_id() {
    let ex = common::start().await;
    let alice = ex.credentials("alice").await;
    let bob = ex.credentials("bob").await;
    let mut api = WsApi::connect(&ex).await;
    let sub = api
        .signed("userDataStream.subscribe.signature", json!({}), &alice)
        .await;
    let sub_id = assert_ok(&sub)["subscriptionId"].clone();
    assert_eq!(sub_id, 0);
    // Bob's orders are not Alice's events.
    let mut other = WsApi::connect(&ex).await;
    other
        .signed("order.place", order("SELL", "200"), &bob)
        .await;
    let placed = other
        .signed("order.place", order("BUY", "100"), &alice)
        .await;
    let order_id = assert_ok(&placed)["orderId"].clone();
    let event = loop {
        let v = api.next().await;
        if v["event"]["e"] == "executionReport" {
            break v;
        }
    };
    assert_eq!(event["subscriptionId"], sub_id, "{event}");
    assert_eq!(event["event"]["i"], order_id, "{event}");
    let status = api.call("session.status", json!({})).await;
    assert_eq!(assert_ok(&status)["userDataStream"], true);
    // Unsubscribed, no more events.
    let un = api
        .call("userDataStream.unsubscribe", json!({"subscriptionId": 0}))
        .await;
    assert_eq!(assert_ok(&un), &json!({}));
    other
        .signed("order.place", order("BUY", "101"), &alice)
        .await;
    api.send(json!("last"), "ping", json!({})).await;
    let last = api.answer(&json!("last")).await;
    assert_ok(&last);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        api.seen.iter().all(|v| v.get("event").is_none()),
        "{:?}",
        api.seen
    );
    // After a logon, userDataStream.subscribe; revoking the key ends it.
    api.signed("session.logon", json!({}), &alice).await;
    let sub = api.call("userDataStream.subscribe", json!({})).await;
    let sub_id = assert_ok(&sub)["subscriptionId"].clone();
    assert_eq!(sub_id, 1, "ids are not reused");
    assert!(
        ex.running
            .store
            .revoke_api_key(&alice.api_key)
            .await
            .unwrap()
    );
    let mut ended = false;
    for _ in 0..20 {
        let v = api.next().await;
        if v["event"]["e"] == "eventStreamTerminated" {
            assert_eq!(v["subscriptionId"], sub_id, "{v}");
            ended = true;
            break;
        }
    }
    assert!(ended, "the subscription ended with the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_and_answered_when_ready() {
    // Each group commit waits for the disk, so orders stay in flight while
    // the connection reads on.
    let ex = common::start_with(|c| {
        c.gateway.ws_api_max_in_flight = 4;
        c.runtime.journal_fsync = true;
    })
    .await;
    let alice = ex.credentials("alice").await;
    let mut api = WsApi::connect(&ex).await;
    // Sixteen orders on two pairs sent at once, in one write: four are
    // taken, the rest refused at once (429, -1003), and every id is
    // answered exactly once.
    let orders = (0..16).map(|i| {
        let mut p = order("BUY", &format!("{}", 100 + i));
        if i % 2 == 1 {
            p["symbol"] = json!("ETHEUR");
        }
        json!({"id": i, "method": "order.place", "params": sign(p, &alice)}).to_string()
    });
    api.send_burst(orders).await;
    let mut answered = Vec::new();
    let mut refused = 0;
    while answered.len() < 16 {
        let v = api.next().await;
        if v["status"] == 429 {
            assert_eq!(v["error"]["code"], -1003, "{v}");
            refused += 1;
        } else {
            assert_ok(&v);
        }
        answered.push(v["id"].as_u64().unwrap());
    }
    assert!(refused >= 1, "more than four in flight were refused");
    answered.sort_unstable();
    assert_eq!(answered, (0..16).collect::<Vec<_>>());
    // A cheap request sent after slow ones is answered without waiting for
    // them: answers leave in the order they are ready.
    let mut order_of = Vec::new();
    for i in 0..3 {
        let p = sign(order("BUY", &format!("{}", 90 + i)), &alice);
        let req = json!({"id": format!("o{i}"), "method": "order.place", "params": p});
        api.send_text(req.to_string()).await;
    }
    api.send(json!("t"), "time", json!({})).await;
    while order_of.len() < 4 {
        order_of.push(api.next().await["id"].clone());
    }
    assert_ne!(order_of.last(), Some(&json!("t")), "{order_of:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_is_charged_per_ip_and_refused_past_the_limit() {
    let ex = common::start_with(|c| c.gateway.request_weight_per_minute = 10).await;
    common::within_one_window(60_000, 5_000).await;
    let mut api = WsApi::connect(&ex).await;
    // Connect (2) and four pings (4): 6 of 10; a depth (5) is past it.
    for _ in 0..4 {
        assert_ok(&api.call("ping", json!({})).await);
    }
    let depth = api.call("depth", json!({"symbol": "BTCEUR"})).await;
    assert_error(&depth, 429, -1003);
    assert!(depth["error"]["data"]["retryAfter"].is_u64(), "{depth}");
    assert_eq!(depth["rateLimits"][0]["count"], 11, "{depth}");
}

/// A client that pipelines a burst of requests has them served a few per
/// turn of its connection, as they are read: the runtime's other tasks (the
/// pipeline's stages among them) get turns meanwhile, and quick requests
/// are answered before the rest of the burst is read.
#[tokio::test]
async fn a_pipelined_burst_is_served_as_it_is_read() {
    let ex = common::start().await;
    let mut api = WsApi::connect(&ex).await;
    const BURST: usize = 200;
    api.send_burst(
        (0..BURST).map(|i| json!({"id": i, "method": "time", "params": {}}).to_string()),
    )
    .await;
    let mut refused = 0;
    for _ in 0..BURST {
        let answer = api.next().await;
        if answer["status"] != 200 {
            assert_eq!(answer["error"]["code"], -1003, "{answer}");
            refused += 1;
        }
    }
    // Read whole before any was served, about 125 of them were refused
    // past the 64 requests in flight.
    assert_eq!(refused, 0, "requests refused of a burst of {BURST}");
    ex.running.shutdown().await;
}
