//! Binance's market streams against a running exchange: a client syncs a
//! local book by the documented procedure while random orders flow and
//! ends equal to `GET /depth`; trade and aggregate ids equal REST's; klines
//! and tickers agree with REST; control methods, errors and limits.

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

/// The next message within 500 ms.
async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Option<Value> {
    common::streams::next_json(ws, Duration::from_millis(500)).await
}

/// Subscribes to BTCEUR's depth and trades, as request 1.
async fn subscribe_btc_eur(
    ws: &mut (impl SinkExt<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin),
) {
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": ["btceur@depth", "btceur@trade"], "id": 1})
            .to_string(),
    ))
    .await
    .unwrap();
}

/// The exchange's WebSocket URL for `path` (`/ws/...`, `/stream?...`).
fn ws_at(ex: &common::TestExchange, path: &str) -> String {
    format!("{}{path}", ex.url.replacen("http", "ws", 1))
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
                    // Stricter than Binance's procedure, as python-binance's
                    // DepthCacheManager is: the first diff after the
                    // snapshot starts right after it.
                    None => assert_eq!(first, last_id + 1, "first U {first} u {last} vs {last_id}"),
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

/// Every message of `ws` until it is quiet for half a second.
async fn drain(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(m) = next_json(ws).await {
        out.push(m);
    }
    out
}

/// `@trade` ids are REST's `trades` ids and `@aggTrade` aggregates are
/// REST's `aggTrades`, for the same fills: one taker sweeping three makers
/// at one price and one at another makes two aggregates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trade_and_aggregate_ids_equal_rests() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    let url = ws_at(&ex, "/ws/btceur@trade/btceur@aggTrade");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for price in ["30000", "30000", "30000", "30001"] {
        alice
            .place(&common::limit("SELL", "0.1", price))
            .await
            .unwrap();
    }
    // A resting order first, so that the ids are not simply 1, 2, ...
    bob.place(&common::limit("BUY", "0.1", "100"))
        .await
        .unwrap();
    let taker = bob
        .place(&common::limit("BUY", "0.4", "30001"))
        .await
        .unwrap();
    assert_eq!(taker.status.as_u16(), 200, "{:?}", taker.body);
    let got = drain(&mut ws).await;
    let of = |e: &str| -> Vec<&Value> { got.iter().filter(|m| m["e"] == e).collect() };
    let trades: Vec<(Value, Value, Value, Value)> = of("trade")
        .iter()
        .map(|m| {
            (
                m["t"].clone(),
                m["p"].clone(),
                m["q"].clone(),
                m["m"].clone(),
            )
        })
        .collect();
    assert_eq!(trades.len(), 4, "{got:?}");
    assert!(of("trade").iter().all(|m| m["s"] == "BTCEUR"));
    let rest = common::eventually(|| async {
        let r = ex
            .public()
            .get("/api/v3/trades", "symbol=BTCEUR")
            .await
            .unwrap()
            .body;
        (r.as_array().map_or(0, Vec::len) == 4).then_some(r)
    })
    .await;
    let rest_trades: Vec<(Value, Value, Value, Value)> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].clone(),
                t["price"].clone(),
                t["qty"].clone(),
                t["isBuyerMaker"].clone(),
            )
        })
        .collect();
    assert_eq!(trades, rest_trades);
    let aggs: Vec<Vec<Value>> = of("aggTrade")
        .iter()
        .map(|m| {
            ["a", "p", "q", "f", "l", "T", "m"]
                .iter()
                .map(|k| m[*k].clone())
                .collect()
        })
        .collect();
    assert_eq!(aggs.len(), 2, "{got:?}");
    let rest_aggs = ex
        .public()
        .get("/api/v3/aggTrades", "symbol=BTCEUR")
        .await
        .unwrap()
        .body;
    let rest_aggs: Vec<Vec<Value>> = rest_aggs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            ["a", "p", "q", "f", "l", "T", "m"]
                .iter()
                .map(|k| a[*k].clone())
                .collect()
        })
        .collect();
    assert_eq!(aggs, rest_aggs);
    ex.running.shutdown().await;
}

/// A trade shows in `@kline_1s` as REST's `klines` has it, and the period's
/// closing message (`x: true`) follows once it ends; the tickers say what
/// `ticker/24hr` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klines_and_tickers_agree_with_rest() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    let url = ws_at(
        &ex,
        "/stream?streams=btceur@kline_1s/btceur@ticker/btceur@miniTicker/!miniTicker@arr",
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // The periodic task runs once a first message came: the trade is then
    // in a candle it sends.
    while next_json(&mut ws).await.is_none() {}
    alice
        .place(&common::limit("SELL", "0.2", "30000"))
        .await
        .unwrap();
    bob.place(&common::limit("BUY", "0.2", "30000"))
        .await
        .unwrap();
    let mut closed: Option<Value> = None;
    let (mut ticker, mut mini, mut arr) = (None, None, None);
    for _ in 0..200 {
        let Some(m) = next_json(&mut ws).await else {
            continue;
        };
        let (stream, data) = (m["stream"].as_str().unwrap_or(""), m["data"].clone());
        match stream {
            // The candle may show while open too, if a round falls within
            // its second; its closing message comes in any case.
            "btceur@kline_1s" if data["k"]["n"].as_u64() > Some(0) && data["k"]["x"] == true => {
                closed = Some(data);
            }
            "btceur@ticker" if data["n"].as_u64() > Some(0) => ticker = Some(data),
            "btceur@miniTicker" if data["v"] != "0.00000000" => mini = Some(data),
            "!miniTicker@arr" => arr = Some(data),
            _ => {}
        }
        if closed.is_some() && ticker.is_some() && mini.is_some() && arr.is_some() {
            break;
        }
    }
    let closed = closed.expect("a closing kline");
    let k = &closed["k"];
    let rest = ex
        .public()
        .get(
            "/api/v3/klines",
            &format!("symbol=BTCEUR&interval=1s&startTime={}&limit=1", k["t"]),
        )
        .await
        .unwrap()
        .body;
    let row = &rest[0];
    let named = ["t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q"];
    for (i, key) in named.iter().enumerate() {
        assert_eq!(k[*key], row[i], "{key}: {k} vs {row}");
    }
    assert_eq!(
        (k["i"].as_str(), k["s"].as_str()),
        (Some("1s"), Some("BTCEUR"))
    );
    let rest = ex
        .public()
        .get("/api/v3/ticker/24hr", "symbol=BTCEUR")
        .await
        .unwrap()
        .body;
    let ticker = ticker.expect("a ticker");
    for (key, name) in [
        ("c", "lastPrice"),
        ("v", "volume"),
        ("q", "quoteVolume"),
        ("n", "count"),
        ("F", "firstId"),
        ("L", "lastId"),
        ("o", "openPrice"),
        ("Q", "lastQty"),
    ] {
        assert_eq!(ticker[key], rest[name], "{key}");
    }
    let mini = mini.expect("a mini ticker");
    assert_eq!(mini["c"], rest["lastPrice"]);
    assert_eq!(mini["e"], "24hrMiniTicker");
    let arr = arr.expect("an array");
    assert_eq!(arr[0]["s"], "BTCEUR");
    ex.running.shutdown().await;
}

/// Sends `m` and reads the answer.
async fn ask(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    m: &str,
) -> Value {
    ws.send(Message::text(m)).await.unwrap();
    next_json(ws).await.expect("an answer")
}

/// The control methods answer as Binance's doc says, errors with its
/// codes; the combined property wraps payloads; names and paths refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_methods_and_errors_are_binances() {
    let ex = common::start_with(|c| c.gateway.ws_messages_per_sec = 1_000).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ex.public().ws_url())
        .await
        .unwrap();
    let sub = r#"{"method":"SUBSCRIBE","params":["btceur@trade","btceur@depth@100ms"],"id":1}"#;
    assert_eq!(ask(&mut ws, sub).await, json!({"result": null, "id": 1}));
    let list = ask(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":"a2"}"#).await;
    assert_eq!(
        list,
        json!({"result": ["btceur@depth@100ms", "btceur@trade"], "id": "a2"})
    );
    let unsub = r#"{"method":"UNSUBSCRIBE","params":["btceur@depth@100ms"],"id":3}"#;
    assert_eq!(ask(&mut ws, unsub).await, json!({"result": null, "id": 3}));
    let get = r#"{"method":"GET_PROPERTY","params":["combined"],"id":4}"#;
    assert_eq!(ask(&mut ws, get).await, json!({"result": false, "id": 4}));
    let set = r#"{"method":"SET_PROPERTY","params":["combined",true],"id":5}"#;
    assert_eq!(ask(&mut ws, set).await, json!({"result": null, "id": 5}));
    assert_eq!(ask(&mut ws, get).await, json!({"result": true, "id": 4}));
    // Now trades arrive wrapped.
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    alice
        .place(&common::limit("SELL", "0.1", "30000"))
        .await
        .unwrap();
    bob.place(&common::limit("BUY", "0.1", "30000"))
        .await
        .unwrap();
    let m = next_json(&mut ws).await.expect("a trade");
    assert_eq!(m["stream"], "btceur@trade");
    assert_eq!(m["data"]["e"], "trade");
    let code = |v: Value| (v["error"]["code"].clone(), v["id"].clone());
    for (request, want) in [
        ("not json", (json!(3), Value::Null)),
        (
            r#"{"method":"SUBSCRIBE","params":["nope@trade"],"id":6}"#,
            (json!(2), json!(6)),
        ),
        (
            r#"{"method":"SUBSCRIBE","params":["BTC-EUR@depth"],"id":7}"#,
            (json!(2), json!(7)),
        ),
        (
            r#"{"method":"LOGIN","params":{},"id":8}"#,
            (json!(2), json!(8)),
        ),
        (
            r#"{"method":"LIST_SUBSCRIPTIONS","id":1.5}"#,
            (json!(2), Value::Null),
        ),
        (
            r#"{"method":"SET_PROPERTY","params":["foo",true],"id":9}"#,
            (json!(0), json!(9)),
        ),
        (
            r#"{"method":"SET_PROPERTY","params":["combined",1],"id":10}"#,
            (json!(1), json!(10)),
        ),
    ] {
        assert_eq!(code(ask(&mut ws, request).await), want, "{request}");
    }
    // A refused SUBSCRIBE adds nothing.
    let list = ask(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":11}"#).await;
    assert_eq!(list["result"], json!(["btceur@trade"]));
    // A path naming an unknown stream opens with the others, as Binance's
    // does (ccxt.pro connects to `/ws/0` and subscribes later).
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_at(&ex, "/ws/btceur@trade/nope"))
        .await
        .unwrap();
    let list = ask(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":12}"#).await;
    assert_eq!(list["result"], json!(["btceur@trade"]));
    ex.running.shutdown().await;
}

/// Binance's limits: past the streams per connection a SUBSCRIBE is
/// refused, and a sixth message in a second closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_message_limits() {
    let ex = common::start_with(|c| c.gateway.ws_max_streams = 2).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ex.public().ws_url())
        .await
        .unwrap();
    let three =
        r#"{"method":"SUBSCRIBE","params":["btceur@trade","btceur@depth","btceur@ticker"],"id":1}"#;
    let refused = ask(&mut ws, three).await;
    assert_eq!(refused["error"]["code"], 2, "{refused}");
    let two = r#"{"method":"SUBSCRIBE","params":["btceur@trade","btceur@depth"],"id":2}"#;
    assert_eq!(ask(&mut ws, two).await["result"], Value::Null);
    let one_more = r#"{"method":"SUBSCRIBE","params":["btceur@ticker"],"id":3}"#;
    assert_eq!(ask(&mut ws, one_more).await["error"]["code"], 2);
    // Three so far in this second (or the next); six more pass 5 per second.
    for i in 0..6 {
        let _ = ws
            .send(Message::text(format!(
                r#"{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}"#
            )))
            .await;
    }
    let mut closed = None;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        if let Ok(Message::Close(Some(f))) = m {
            closed = Some((u16::from(f.code), f.reason.to_string()));
            break;
        }
    }
    assert_eq!(closed, Some((1008, "too many messages".to_string())));
    // A path naming more streams than allowed is refused.
    let path = ws_at(&ex, "/ws/btceur@trade/btceur@depth/btceur@ticker");
    assert!(tokio_tungstenite::connect_async(path).await.is_err());
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
    // What the server had queued still arrives first, through the tiny
    // receive window: 100 ms here, but a loaded machine may leave the
    // server's zero-window probes backed off, so the bound is generous.
    let mut read = 0u64;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = ws.next().await {
            read += 1;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection stayed open ({read} messages read in 30 s)"
    );
}

/// Binance's bound on WebSocket connection attempts per IP in 5 minutes,
/// on the streams and the WebSocket API together: past it the upgrade is
/// refused with 429, -1003 and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_attempts_per_ip_are_bounded() {
    let ex = common::start_with(|c| c.gateway.ws_connections_per_5min = 2).await;
    let _a = tokio_tungstenite::connect_async(ex.public().ws_url())
        .await
        .unwrap();
    let _b = tokio_tungstenite::connect_async(ws_at(&ex, "/ws-api/v3"))
        .await
        .unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{}/stream?streams=btceur@trade", ex.url))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], -1003, "{body}");
    ex.running.shutdown().await;
}
