//! A WebSocket client syncs a local book by the documented procedure while
//! random orders flow, and ends equal to `GET /depth`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Side = BTreeMap<String, String>;

fn apply(side: &mut Side, levels: &Value) {
    for l in levels.as_array().unwrap() {
        let (p, q) = (l[0].as_str().unwrap(), l[1].as_str().unwrap());
        if q.trim_end_matches('0').trim_end_matches('.') == "0" {
            side.remove(p);
        } else {
            side.insert(p.to_string(), q.to_string());
        }
    }
}

fn levels(v: &Value) -> Side {
    let mut s = Side::new();
    apply(&mut s, v);
    s
}

async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Subscribes to BTC-EUR's depth and trades, as request 1.
async fn subscribe_btc_eur(
    ws: &mut (impl SinkExt<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin),
) {
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": ["BTC-EUR@depth", "BTC-EUR@trade"], "id": 1})
            .to_string(),
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_depth_sync_matches_rest_depth() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    // Some book before the client connects.
    for i in 0..10 {
        alice
            .place(&common::limit("SELL", "0.1", &format!("{}", 30_000 + i)))
            .await
            .unwrap();
        bob.place(&common::limit("BUY", "0.1", &format!("{}", 29_000 + i)))
            .await
            .unwrap();
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(ex.public().ws_url())
        .await
        .unwrap();
    subscribe_btc_eur(&mut ws).await;
    let mut buffered = Vec::new();
    loop {
        let m = next_json(&mut ws).await.expect("subscribe answer");
        if m["id"] == 1 {
            assert_eq!(m["result"], Value::Null, "{m}");
            break;
        }
    }

    // Orders flow while the client takes its snapshot.
    let flow = tokio::spawn(async move {
        let mut x: u64 = 7;
        for _ in 0..300 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let side = if x >> 63 == 0 { "BUY" } else { "SELL" };
            let price = 29_000 + (x >> 33) % 1_500;
            let qty = format!("0.{:02}", 1 + (x >> 20) % 30);
            let who = if x & 1 == 0 { &alice } else { &bob };
            who.place(&common::limit(side, &qty, &price.to_string()))
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let snap = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR&limit=5000")
        .await
        .unwrap()
        .body;
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    let (mut bids, mut asks) = (levels(&snap["bids"]), levels(&snap["asks"]));
    flow.await.unwrap();

    // Binance's procedure: drop u <= lastUpdateId; the first kept has
    // U <= lastUpdateId + 1 <= u; each next U is the previous u + 1.
    let mut prev_u: Option<u64> = None;
    let mut trades = 0;
    while let Some(m) = next_json(&mut ws).await {
        buffered.push(m);
    }
    for m in buffered {
        match m["e"].as_str() {
            Some("trade") => trades += 1,
            Some("depthUpdate") => {
                let (first, last) = (m["U"].as_u64().unwrap(), m["u"].as_u64().unwrap());
                assert!(first <= last);
                if last <= last_id {
                    continue;
                }
                match prev_u {
                    None => assert!(
                        first <= last_id + 1 && last_id < last,
                        "first U {first} u {last} vs {last_id}"
                    ),
                    Some(p) => assert_eq!(first, p + 1, "gap after {p}"),
                }
                prev_u = Some(last);
                apply(&mut bids, &m["b"]);
                apply(&mut asks, &m["a"]);
            }
            _ => {}
        }
    }
    assert!(trades > 0, "random flow produced no trade");
    let fin = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR&limit=5000")
        .await
        .unwrap()
        .body;
    assert_eq!(bids, levels(&fin["bids"]));
    assert_eq!(asks, levels(&fin["asks"]));
    assert!(prev_u.unwrap() <= fin["lastUpdateId"].as_u64().unwrap());
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_user_stream_after_login_and_bad_requests() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(alice.ws_url())
        .await
        .unwrap();
    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["error"]["code"], -1105);
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": ["NOPE-X@depth"], "id": 5}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["error"]["code"], -1121);
    let mut bad_login = alice.ws_login(6).unwrap();
    bad_login["params"]["signature"] = json!("00");
    ws.send(Message::text(bad_login.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["error"]["code"], -1022);
    ws.send(Message::text(alice.ws_login(7).unwrap().to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["id"], 7);
    let placed = alice
        .place(&common::limit("BUY", "0.1", "100"))
        .await
        .unwrap();
    let report = next_json(&mut ws).await.expect("execution report");
    assert_eq!(report["e"], "executionReport");
    assert_eq!(report["x"], "NEW");
    assert_eq!(report["i"], placed.body["orderId"]);
    ex.running.shutdown().await;
}

/// A client that subscribes and then stops reading is dropped as a slow
/// consumer once a message cannot reach its socket in time; trading goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_trading_goes_on() {
    // The per-key rate limit raised too: up to 100,000 orders from two
    // keys (the order and weight limits are raised for every test).
    let ex = common::start_with(|c| {
        c.gateway.ws_send_timeout_ms = 200;
        c.gateway.rate_limit_per_sec = 1_000_000;
        c.gateway.rate_limit_burst = 1_000_000;
    })
    .await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    // A tiny receive window, so that the server's writes stall soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let tcp = socket.connect(ex.running.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ex.public().ws_url(), tcp)
        .await
        .unwrap();
    subscribe_btc_eur(&mut ws).await;
    assert_eq!(next_json(&mut ws).await.expect("subscribe answer")["id"], 1);
    // From here on the client reads nothing. The server's socket takes up
    // to its send buffer (4 MiB by default on Linux) before a write stalls:
    // about 18,000 orders here.
    let dropped = || async {
        let text = client::HttpClient::new()
            .get(format!("{}/metrics", ex.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("gateway_ws_disconnects_total{reason=\"slow_consumer\"} 1")
    };
    let mut placed = 0;
    while !dropped().await {
        assert!(placed < 100_000, "not dropped after {placed} orders");
        let orders = (0..100).map(|i| {
            let (user, side) = if i % 2 == 0 {
                (&alice, "SELL")
            } else {
                (&bob, "BUY")
            };
            async move {
                let price = format!("{}", 30_000 + i % 7);
                user.place(&common::limit(side, "0.001", &price))
                    .await
                    .unwrap()
            }
        });
        for answer in futures_util::future::join_all(orders).await {
            assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
        }
        placed += 100;
    }
    eprintln!("dropped as a slow consumer after {placed} orders");
    // The exchange still answers, and the dropped client finds its
    // connection gone once it reads again.
    let answer = alice
        .place(&common::limit("SELL", "0.001", "31000"))
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the connection stayed open");
}
