//! What Binance's `/api/v3` adds, as scenarios over real HTTP: where the
//! parameters and the signature may go, the answers of each
//! `newOrderRespType`, `LIMIT_MAKER`, `order/test`, `cancelReplace`,
//! `keepPriority` amends, the history endpoints' filters, the market data
//! after known trades, and `exchangeInfo`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use client::{Answer, Client, Method, StatusCode};
use common::{BTCEUR, eventually, limit, now_ms, open_orders, order_with_status, start};
use serde_json::{Value, json};

/// The field names of an answer, sorted.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// A new order's `ACK` fields.
const ACK: [&str; 5] = [
    "symbol",
    "orderId",
    "orderListId",
    "clientOrderId",
    "transactTime",
];

/// What `RESULT` adds to `ACK`.
const RESULT: [&str; 11] = [
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "workingTime",
    "selfTradePreventionMode",
];

fn result_fields() -> BTreeSet<String> {
    names(&ACK).union(&names(&RESULT)).cloned().collect()
}

fn full_fields() -> BTreeSet<String> {
    let mut f = result_fields();
    f.insert("fills".into());
    f
}

/// `order` with more parameters.
fn with(mut order: Value, more: Value) -> Value {
    order
        .as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    order
}

async fn signed(
    c: &Client,
    method: Method,
    path: &str,
    query: &str,
    body: Option<&Value>,
) -> Answer {
    c.signed(method, path, query, body).await.unwrap()
}

fn id(a: &Answer) -> u64 {
    a.body["orderId"]
        .as_u64()
        .unwrap_or_else(|| panic!("an order id: {} {:?}", a.status, a.body))
}

/// The prices of `c`'s open orders on BTCEUR once a marker order (a buy
/// at 1.00, canceled again) is stored: the store writes in the log's
/// order, so whatever was placed before the marker is stored too, and an
/// order that is missing was never placed.
async fn settled_open_prices(c: &Client) -> Vec<String> {
    let marker = c.place(&limit("BUY", "1", "1")).await.unwrap();
    assert_eq!(marker.status, StatusCode::OK, "{:?}", marker.body);
    let marker = id(&marker);
    order_with_status(c, BTCEUR, marker, "NEW").await;
    let q = format!("symbol=BTCEUR&orderId={marker}");
    let r = signed(c, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    open_orders(c, BTCEUR)
        .await
        .iter()
        .filter(|o| o["orderId"].as_u64() != Some(marker))
        .map(|o| o["price"].as_str().unwrap().to_string())
        .collect()
}

/// Posts to `path` with `query` and the form `body` as given, the key in
/// its header: for signatures the client would not place there.
async fn post_raw(
    ex: &common::TestExchange,
    key: &str,
    path: &str,
    query: &str,
    body: &str,
) -> Value {
    let url = if query.is_empty() {
        format!("{}{path}", ex.url)
    } else {
        format!("{}{path}?{query}", ex.url)
    };
    let r = client::HttpClient::new()
        .post(url)
        .header(clientkit::API_KEY_HEADER, key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let mut v: Value = r.json().await.unwrap();
    v["httpStatus"] = json!(status);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_go_in_the_query_the_body_or_both() {
    let ex = start().await;
    let creds = ex.credentials("alice").await;
    let alice = Client::new(&ex.url, Some(creds.clone()));
    let order = |price: &str| {
        format!("symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={price}")
    };
    let post = |query: String, body: String| {
        let alice = alice.clone();
        async move {
            alice
                .signed_raw(Method::POST, "/api/v3/order", &query, &body, now_ms())
                .await
                .unwrap()
        }
    };
    // Everything in the query string; everything in the body; split.
    let r = post(order("100"), String::new()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = post(String::new(), order("101")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = post(
        "symbol=BTCEUR&side=BUY".into(),
        "type=LIMIT&timeInForce=GTC&quantity=0.01&price=102".into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The signature in the body: over the query string followed by the
    // body without it.
    let sign = |payload: &str| clientkit::sign(&creds.secret, payload.as_bytes());
    let body = format!("{}&timestamp={}", order("103"), now_ms());
    let v = post_raw(
        &ex,
        &creds.api_key,
        "/api/v3/order",
        "",
        &format!("{body}&signature={}", sign(&body)),
    )
    .await;
    assert_eq!(v["httpStatus"], 200, "{v}");
    let query = format!("symbol=BTCEUR&side=BUY&timestamp={}", now_ms());
    let body = "type=LIMIT&timeInForce=GTC&quantity=0.01&price=104";
    let signed_body = format!("{body}&signature={}", sign(&format!("{query}{body}")));
    let v = post_raw(&ex, &creds.api_key, "/api/v3/order", &query, &signed_body).await;
    assert_eq!(v["httpStatus"], 200, "{v}");
    // A signature in the body that covers the body alone is wrong.
    let signed_body = format!("{body}&signature={}", sign(body));
    let v = post_raw(&ex, &creds.api_key, "/api/v3/order", &query, &signed_body).await;
    assert_eq!(
        (v["httpStatus"].as_u64(), v["code"].as_i64()),
        (Some(401), Some(-1022)),
        "{v}"
    );

    // A parameter sent twice, in one part or across both: -1101.
    for (query, body) in [
        ("symbol=BTCEUR".to_string(), order("105")),
        (String::new(), format!("{}&side=SELL", order("105"))),
        (order("105"), "price=105".to_string()),
    ] {
        let r = post(query.clone(), body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(-1101)),
            "{query} | {body}: {:?}",
            r.body
        );
    }
    // A parameter the endpoint does not read, in either part: -1104.
    for (query, body) in [
        ("colour=red".to_string(), order("106")),
        (String::new(), format!("{}&colour=red", order("106"))),
    ] {
        let r = post(query.clone(), body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(-1104)),
            "{query} | {body}: {:?}",
            r.body
        );
    }
    // Reads take their parameters from the query string, signed or not.
    let r = signed(
        &alice,
        Method::GET,
        "/api/v3/openOrders",
        "symbol=BTCEUR&colour=red",
        None,
    )
    .await;
    assert_eq!(r.code(), Some(-1104), "{:?}", r.body);

    // Exactly the five good orders were placed.
    let prices = settled_open_prices(&alice).await;
    assert_eq!(prices, ["100.00", "101.00", "102.00", "103.00", "104.00"]);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one answer type after another")]
async fn new_order_answers_follow_new_order_resp_type() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let before = now_ms();
    let ask = bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    assert_eq!(ask.status, StatusCode::OK, "{:?}", ask.body);
    // LIMIT defaults to FULL: the fields of RESULT and the fills.
    assert_eq!(keys(&ask.body), full_fields(), "{:?}", ask.body);
    assert_eq!(ask.body["fills"], json!([]));

    // ACK: the order is in the log; no outcome.
    let a = alice
        .place(&with(
            limit("BUY", "0.1", "29000"),
            json!({"newOrderRespType": "ACK"}),
        ))
        .await
        .unwrap();
    assert_eq!(keys(&a.body), names(&ACK), "{:?}", a.body);
    assert_eq!(a.body["symbol"], "BTCEUR");
    assert_eq!(a.body["orderListId"], -1);
    // Without newClientOrderId the order is named after its id.
    assert_eq!(a.body["clientOrderId"], format!("x-{}", id(&a)));
    let t = a.body["transactTime"].as_u64().unwrap();
    assert!((before..=now_ms()).contains(&t), "transactTime {t}");

    // RESULT: the order as the engine left it.
    let r = alice
        .place(&with(
            limit("BUY", "0.1", "29001"),
            json!({"newOrderRespType": "RESULT", "newClientOrderId": "r-1"}),
        ))
        .await
        .unwrap();
    assert_eq!(keys(&r.body), result_fields(), "{:?}", r.body);
    let expected = json!({
        "symbol": "BTCEUR", "orderListId": -1, "clientOrderId": "r-1",
        "price": "29001.00", "origQty": "0.10000000", "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.00", "cummulativeQuoteQty": "0.00", "status": "NEW",
        "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&r.body[k], v, "{k}: {:?}", r.body);
    }
    assert!(r.body["workingTime"].as_u64().is_some());
    assert!(r.body["selfTradePreventionMode"].is_string());
    // RESULT of an order that trades: its state, no fills.
    let r = alice
        .place(&with(
            limit("BUY", "0.1", "30000"),
            json!({"newOrderRespType": "RESULT"}),
        ))
        .await
        .unwrap();
    assert_eq!(keys(&r.body), result_fields(), "{:?}", r.body);
    assert_eq!(
        (
            &r.body["status"],
            &r.body["executedQty"],
            &r.body["cummulativeQuoteQty"]
        ),
        (&json!("FILLED"), &json!("0.10000000"), &json!("3000.00"))
    );

    // FULL: the fills as the taker saw them, each with its trade id.
    let f = alice
        .place(&with(
            limit("BUY", "0.25", "30100"),
            json!({"newOrderRespType": "FULL", "newClientOrderId": "f-1"}),
        ))
        .await
        .unwrap();
    assert_eq!(keys(&f.body), full_fields(), "{:?}", f.body);
    assert_eq!(f.body["status"], "FILLED");
    assert_eq!(f.body["clientOrderId"], "f-1");
    let fills = f.body["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 1, "{fills:?}");
    assert_eq!(
        keys(&fills[0]),
        names(&["price", "qty", "commission", "commissionAsset", "tradeId"])
    );
    assert_eq!(
        (
            &fills[0]["price"],
            &fills[0]["qty"],
            &fills[0]["commissionAsset"]
        ),
        (&json!("30000.00"), &json!("0.25000000"), &json!("EUR"))
    );
    // The trade id is the public trade's (public reads trail the engine).
    let trade = fills[0]["tradeId"].as_u64().unwrap();
    let last = eventually(|| async {
        let trades = ex
            .public()
            .get("/api/v3/trades", "symbol=BTCEUR")
            .await
            .unwrap();
        let trades = trades.body.as_array().cloned().unwrap_or_default();
        (trades.len() == 2).then(|| trades[1].clone())
    })
    .await;
    assert_eq!(last["id"].as_u64(), Some(trade), "{last}");
    assert_eq!(last["qty"], "0.25000000", "{last}");

    // MARKET defaults to FULL too; by quote amount, origQuoteOrderQty.
    let m = alice
        .place(&json!({"symbol": BTCEUR, "side": "BUY", "type": "MARKET", "quoteOrderQty": "1500"}))
        .await
        .unwrap();
    assert_eq!(keys(&m.body), full_fields(), "{:?}", m.body);
    assert_eq!(m.body["type"], "MARKET");
    assert_eq!(m.body["origQuoteOrderQty"], "1500.00");
    assert_eq!(m.body["executedQty"], "0.05000000", "{:?}", m.body);
    assert_eq!(m.body["cummulativeQuoteQty"], "1500.00");

    // LIMIT_MAKER defaults to ACK.
    let lm = alice
        .place(
            &json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT_MAKER",
                       "quantity": "0.1", "price": "28000"}),
        )
        .await
        .unwrap();
    assert_eq!(lm.status, StatusCode::OK, "{:?}", lm.body);
    assert_eq!(keys(&lm.body), names(&ACK), "{:?}", lm.body);

    // None of them carries this exchange's old `logPosition`.
    for a in [&ask, &a, &r, &f, &m, &lm] {
        assert!(a.body.get("logPosition").is_none(), "{:?}", a.body);
    }
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_limit_maker_is_refused_and_leaves_no_order() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let ask = bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    assert_eq!(ask.status, StatusCode::OK, "{:?}", ask.body);
    let maker = |price: &str, resp: &str| {
        json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.1",
               "price": price, "newOrderRespType": resp})
    };
    for (price, resp) in [("30000", "RESULT"), ("30001", "FULL")] {
        let r = alice.place(&maker(price, resp)).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(-2010)),
            "{price} {resp}: {:?}",
            r.body
        );
        assert_eq!(r.body["msg"], "Order would immediately match and take.");
    }
    // One that does not cross rests, as a LIMIT_MAKER.
    let r = alice.place(&maker("29999", "RESULT")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["status"], &r.body["type"]),
        (&json!("NEW"), &json!("LIMIT_MAKER"))
    );
    // LIMIT_MAKER takes no timeInForce.
    let r = alice
        .place(&with(
            maker("29998", "RESULT"),
            json!({"timeInForce": "GTC"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.code(), Some(-1106), "{:?}", r.body);

    // Nothing traded and nothing else rests.
    assert_eq!(settled_open_prices(&alice).await, ["29999.00"]);
    let open = open_orders(&alice, BTCEUR).await;
    assert_eq!(open[0]["type"], "LIMIT_MAKER", "{open:?}");
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.50000000"]]));
    assert_eq!(d.body["bids"], json!([["29999.00", "0.10000000"]]));
    let trades = ex
        .public()
        .get("/api/v3/trades", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(trades.body, json!([]));
    ex.running.shutdown().await;
}

/// A `LIMIT_MAKER` without `newOrderRespType` is answered `ACK`, Binance's
/// default for it, yet one that would cross is refused with -2010 all the
/// same, as Binance refuses it whatever the answer type: the gateway waits
/// for the book's word. (It once answered 200 with an order id, and the
/// book then dropped the order.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_limit_maker_with_the_default_ack_is_refused_too() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    let crossing = json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT_MAKER",
                          "quantity": "0.1", "price": "30000"});
    let r = alice.place(&crossing).await.unwrap();
    assert!(settled_open_prices(&alice).await.is_empty());
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2010)),
        "a crossing LIMIT_MAKER, default answer type: {:?}",
        r.body
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_test_checks_everything_and_places_nothing() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    let test = |order: Value| {
        let alice = alice.clone();
        async move { signed(&alice, Method::POST, "/api/v3/order/test", "", Some(&order)).await }
    };
    // Good orders, crossing ones included: `{}`, nothing placed or traded.
    for order in [
        limit("BUY", "0.1", "29000"),
        limit("BUY", "0.1", "30000"),
        json!({"symbol": BTCEUR, "side": "BUY", "type": "MARKET", "quantity": "0.1"}),
        json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.1", "price": "29000"}),
    ] {
        let r = test(order.clone()).await;
        assert_eq!((r.status, &r.body), (StatusCode::OK, &json!({})), "{order}");
    }
    // With the commission rates asked for.
    let r = test(with(
        limit("BUY", "0.1", "29000"),
        json!({"computeCommissionRates": "true"}),
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        keys(&r.body),
        names(&[
            "standardCommissionForOrder",
            "specialCommissionForOrder",
            "taxCommissionForOrder",
            "discount"
        ])
    );
    assert!(
        r.body["standardCommissionForOrder"]["taker"].is_string(),
        "{:?}",
        r.body
    );
    // Every check of a real order, with its code.
    let cases = [
        (limit("BUY", "0.000001", "29000"), -1013),
        (limit("BUY", "0.00001", "1"), -1013),
        (
            with(limit("BUY", "0.1", "29000"), json!({"symbol": "NOPE"})),
            -1121,
        ),
        (
            with(limit("BUY", "0.1", "29000"), json!({"timeInForce": null})),
            -1102,
        ),
        (
            with(limit("BUY", "0.1", "29000"), json!({"type": "LIMIT_MAKER"})),
            -1106,
        ),
        (
            with(limit("BUY", "0.1", "29000"), json!({"colour": "red"})),
            -1104,
        ),
        (
            with(
                limit("BUY", "0.1", "29000"),
                json!({"newOrderRespType": "ALL"}),
            ),
            -1116,
        ),
    ];
    for (order, code) in cases {
        let r = test(order.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{order}: {:?}",
            r.body
        );
    }
    assert!(settled_open_prices(&alice).await.is_empty());
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.50000000"]]));
    assert_eq!(d.body["bids"], json!([]));
    let trades = ex
        .public()
        .get("/api/v3/trades", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(trades.body, json!([]));
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_answer_in_binances_shape() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let placed = alice
        .place(&with(
            limit("BUY", "0.1", "29000"),
            json!({"newClientOrderId": "c-1"}),
        ))
        .await
        .unwrap();
    let order = id(&placed);
    order_with_status(&alice, BTCEUR, order, "NEW").await;
    // A restriction the order does not meet: not canceled.
    let q = format!("symbol=BTCEUR&orderId={order}&cancelRestrictions=ONLY_PARTIALLY_FILLED");
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2011)),
        "{:?}",
        r.body
    );
    // By id and client id (both must match), renamed by newClientOrderId.
    let q = format!(
        "symbol=BTCEUR&orderId={order}&origClientOrderId=c-1&newClientOrderId=gone-1&cancelRestrictions=ONLY_NEW"
    );
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        keys(&r.body),
        names(&[
            "symbol",
            "origClientOrderId",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
            "price",
            "origQty",
            "executedQty",
            "origQuoteOrderQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "selfTradePreventionMode",
        ])
    );
    let expected = json!({
        "symbol": "BTCEUR", "origClientOrderId": "c-1", "orderId": order, "orderListId": -1,
        "clientOrderId": "gone-1", "price": "29000.00", "origQty": "0.10000000",
        "executedQty": "0.00000000", "origQuoteOrderQty": "0.00", "cummulativeQuoteQty": "0.00",
        "status": "CANCELED",
        "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&r.body[k], v, "{k}: {:?}", r.body);
    }
    // The query shows it canceled.
    let stored = order_with_status(&alice, BTCEUR, order, "CANCELED").await;
    assert_eq!(stored["clientOrderId"], "c-1");
    // Canceling it again: -2011, the order unknown among the open ones.
    let q = format!("symbol=BTCEUR&orderId={order}");
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2011)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["msg"], "Unknown order sent.");
    // An id and a client id of two different orders: refused.
    let other = id(&alice.place(&limit("BUY", "0.1", "29001")).await.unwrap());
    order_with_status(&alice, BTCEUR, other, "NEW").await;
    let q = format!("symbol=BTCEUR&orderId={other}&origClientOrderId=c-1");
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(r.code(), Some(-2011), "{:?}", r.body);
    assert_eq!(settled_open_prices(&alice).await, ["29001.00"]);
    ex.running.shutdown().await;
}

/// A cancel-replace body: `mode`, the order to cancel (`target`, e.g.
/// `{"cancelOrderId": 7}`) and the new order.
fn replace(mode: &str, target: Value, new: Value) -> Value {
    with(with(new, json!({"cancelReplaceMode": mode})), target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "each mode and outcome in turn")]
async fn cancel_replace_in_both_modes() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    let post = |body: Value| {
        let alice = alice.clone();
        async move {
            signed(
                &alice,
                Method::POST,
                "/api/v3/order/cancelReplace",
                "",
                Some(&body),
            )
            .await
        }
    };
    let a = id(&alice.place(&limit("BUY", "0.1", "100")).await.unwrap());

    // STOP_ON_FAILURE, both parts done: the price moves from 100 to 101
    // (what a price amend was).
    let r = post(replace(
        "STOP_ON_FAILURE",
        json!({"cancelOrderId": a}),
        with(
            limit("BUY", "0.2", "101"),
            json!({"newClientOrderId": "b-1"}),
        ),
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["cancelResult"], &r.body["newOrderResult"]),
        (&json!("SUCCESS"), &json!("SUCCESS"))
    );
    assert_eq!(r.body["cancelResponse"]["orderId"].as_u64(), Some(a));
    assert_eq!(r.body["cancelResponse"]["status"], "CANCELED");
    let b = r.body["newOrderResponse"]["orderId"].as_u64().unwrap();
    assert_eq!(r.body["newOrderResponse"]["clientOrderId"], "b-1");
    assert_eq!(r.body["newOrderResponse"]["status"], "NEW");
    assert_eq!(settled_open_prices(&alice).await, ["101.00"]);

    // ALLOW_FAILURE, by client id, both parts done.
    let r = post(replace(
        "ALLOW_FAILURE",
        json!({"cancelOrigClientOrderId": "b-1"}),
        with(
            limit("BUY", "0.1", "102"),
            json!({"newOrderRespType": "ACK"}),
        ),
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["cancelResponse"]["orderId"].as_u64(), Some(b));
    assert_eq!(keys(&r.body["newOrderResponse"]), names(&ACK));
    let c = r.body["newOrderResponse"]["orderId"].as_u64().unwrap();

    // STOP_ON_FAILURE whose cancel fails (a is gone): -2022, the cancel's
    // error in data.cancelResponse, and no new order.
    let r = post(replace(
        "STOP_ON_FAILURE",
        json!({"cancelOrderId": a}),
        limit("BUY", "0.1", "103"),
    ))
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2022)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["msg"], "Order cancel-replace failed.");
    let data = &r.body["data"];
    assert_eq!(
        (
            &data["cancelResult"],
            &data["newOrderResult"],
            &data["newOrderResponse"]
        ),
        (&json!("FAILURE"), &json!("NOT_ATTEMPTED"), &Value::Null),
        "{data}"
    );
    assert_eq!(
        data["cancelResponse"],
        json!({"code": -2011, "msg": "Unknown order sent."})
    );

    // ALLOW_FAILURE whose cancel fails: the new order is placed all the
    // same, -2021 with 409.
    let r = post(replace(
        "ALLOW_FAILURE",
        json!({"cancelOrderId": a}),
        with(
            limit("BUY", "0.1", "104"),
            json!({"newOrderRespType": "RESULT"}),
        ),
    ))
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some(-2021)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["msg"], "Order cancel-replace partially failed.");
    let data = &r.body["data"];
    assert_eq!(
        (&data["cancelResult"], &data["newOrderResult"]),
        (&json!("FAILURE"), &json!("SUCCESS")),
        "{data}"
    );
    assert_eq!(data["cancelResponse"]["code"], -2011);
    assert_eq!(data["newOrderResponse"]["status"], "NEW");
    assert_eq!(data["newOrderResponse"]["price"], "104.00");

    // ALLOW_FAILURE, both parts fail (the new one a crossing LIMIT_MAKER):
    // -2022 with both errors.
    let crossing = json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.1",
                          "price": "30000", "newOrderRespType": "RESULT"});
    let r = post(replace(
        "ALLOW_FAILURE",
        json!({"cancelOrderId": a}),
        crossing.clone(),
    ))
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2022)),
        "{:?}",
        r.body
    );
    let data = &r.body["data"];
    assert_eq!(
        (&data["cancelResult"], &data["newOrderResult"]),
        (&json!("FAILURE"), &json!("FAILURE")),
        "{data}"
    );
    assert_eq!(data["newOrderResponse"]["code"], -2010);

    // STOP_ON_FAILURE whose cancel works but whose new order fails: the
    // cancel stands, -2021.
    let r = post(replace(
        "STOP_ON_FAILURE",
        json!({"cancelOrderId": c}),
        crossing,
    ))
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some(-2021)),
        "{:?}",
        r.body
    );
    let data = &r.body["data"];
    assert_eq!(
        (&data["cancelResult"], &data["newOrderResult"]),
        (&json!("SUCCESS"), &json!("FAILURE")),
        "{data}"
    );
    assert_eq!(data["cancelResponse"]["orderId"].as_u64(), Some(c));
    assert_eq!(
        data["newOrderResponse"],
        json!({"code": -2010, "msg": "Order would immediately match and take."})
    );

    // Bad requests are refused whole.
    for (body, code) in [
        (
            with(limit("BUY", "0.1", "105"), json!({"cancelOrderId": c})),
            -1102,
        ),
        (
            replace(
                "SOMETIMES",
                json!({"cancelOrderId": c}),
                limit("BUY", "0.1", "105"),
            ),
            -1116,
        ),
        (
            replace(
                "STOP_ON_FAILURE",
                json!({"cancelOrderId": "x"}),
                limit("BUY", "0.1", "105"),
            ),
            -1100,
        ),
        (
            replace(
                "STOP_ON_FAILURE",
                json!({"cancelOrderId": c}),
                limit("BUY", "0.000001", "105"),
            ),
            -1013,
        ),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.code(), Some(code), "{body}: {:?}", r.body);
        assert!(r.status.is_client_error(), "{body}");
    }
    // Of all this, only the order at 104 rests.
    assert_eq!(settled_open_prices(&alice).await, ["104.00"]);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_priority_lowers_a_quantity_in_place_and_refuses_an_increase() {
    let ex = start().await;
    let (alice, bob, carol) = (
        ex.user("alice").await,
        ex.user("bob").await,
        ex.user("carol").await,
    );
    let a = id(&alice
        .place(&with(
            limit("SELL", "0.5", "30000"),
            json!({"newClientOrderId": "a-1"}),
        ))
        .await
        .unwrap());
    let b = id(&bob.place(&limit("SELL", "0.5", "30000")).await.unwrap());
    order_with_status(&alice, BTCEUR, a, "NEW").await;
    let amend = |c: &Client, target: Value, qty: &str| {
        let c = c.clone();
        let body = with(json!({"symbol": BTCEUR, "newQty": qty}), target);
        async move {
            signed(
                &c,
                Method::PUT,
                "/api/v3/order/amend/keepPriority",
                "",
                Some(&body),
            )
            .await
        }
    };
    let r = amend(&alice, json!({"orderId": a}), "0.3").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        keys(&r.body),
        names(&["transactTime", "executionId", "amendedOrder"])
    );
    let expected = json!({
        "symbol": "BTCEUR", "orderId": a, "orderListId": -1, "origClientOrderId": "a-1",
        "clientOrderId": "a-1", "price": "30000.00", "qty": "0.30000000",
        "executedQty": "0.00000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT",
        "side": "SELL",
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&r.body["amendedOrder"][k], v, "{k}: {:?}", r.body);
    }
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.80000000"]]));
    // Once stored as 0.3: more, or the same, is not a decrease.
    eventually(|| async {
        let r = common::query_order(&alice, BTCEUR, a).await;
        (r.body["origQty"] == "0.30000000").then_some(())
    })
    .await;
    for qty in ["0.4", "0.3", "1"] {
        let r = amend(&alice, json!({"orderId": a}), qty).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(-2010)),
            "{qty}: {:?}",
            r.body
        );
    }
    // By client id; another user's order looks like no order.
    let r = amend(&alice, json!({"origClientOrderId": "a-1"}), "0.25").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["amendedOrder"]["qty"], "0.25000000");
    let r = amend(&bob, json!({"orderId": a}), "0.1").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, Some(-2013)),
        "{:?}",
        r.body
    );
    // The quantity's rules still hold: off the lot, refused.
    let r = amend(&alice, json!({"orderId": a}), "0.000001").await;
    assert_eq!(r.code(), Some(-1013), "{:?}", r.body);
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(d.body["asks"], json!([["30000.00", "0.75000000"]]));

    // Alice's order kept its place ahead of bob's: a buy of 0.25 takes all
    // of hers and none of his.
    let take = carol.place(&limit("BUY", "0.25", "30000")).await.unwrap();
    assert_eq!(take.body["status"], "FILLED", "{:?}", take.body);
    let filled = order_with_status(&alice, BTCEUR, a, "FILLED").await;
    assert_eq!(filled["executedQty"], "0.25000000");
    let untouched = order_with_status(&bob, BTCEUR, b, "NEW").await;
    assert_eq!(untouched["executedQty"], "0.00000000");
    let mine = signed(
        &alice,
        Method::GET,
        "/api/v3/myTrades",
        "symbol=BTCEUR",
        None,
    )
    .await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1, "{:?}", mine.body);
    assert_eq!(mine.body[0]["orderId"].as_u64(), Some(a));
    ex.running.shutdown().await;
}

/// The order ids (or trade ids) of a list answer, in its order.
fn ids(v: &Value, field: &str) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|o| o[field].as_u64().unwrap())
        .collect()
}

/// Waits a little on either side of a point in time, and returns it: the
/// orders and trades before and after it are at least 25 ms away.
async fn instant_between() -> u64 {
    tokio::time::sleep(Duration::from_millis(25)).await;
    let t = now_ms();
    tokio::time::sleep(Duration::from_millis(25)).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one history, read every way")]
async fn all_orders_and_my_trades_take_binances_filters() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let ask1 = id(&bob.place(&limit("SELL", "0.2", "30000")).await.unwrap());
    let ask2 = id(&bob.place(&limit("SELL", "0.2", "30001")).await.unwrap());
    let o1 = id(&alice.place(&limit("BUY", "0.1", "100")).await.unwrap());
    let o2 = id(&alice.place(&limit("BUY", "0.1", "101")).await.unwrap());
    let mid = instant_between().await;
    // Two trades: 0.2 at 30000 from ask1, 0.1 at 30001 from ask2.
    let o3 = alice.place(&limit("BUY", "0.3", "30001")).await.unwrap();
    assert_eq!(o3.body["status"], "FILLED", "{:?}", o3.body);
    let (t1, t2) = (
        o3.body["fills"][0]["tradeId"].as_u64().unwrap(),
        o3.body["fills"][1]["tradeId"].as_u64().unwrap(),
    );
    let o3 = id(&o3);
    let o4 = id(&alice.place(&limit("BUY", "0.1", "102")).await.unwrap());
    let end = instant_between().await;
    order_with_status(&alice, BTCEUR, o4, "NEW").await;

    let all = |query: String| {
        let alice = alice.clone();
        async move {
            let r = signed(&alice, Method::GET, "/api/v3/allOrders", &query, None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
            ids(&r.body, "orderId")
        }
    };
    let cases = [
        (String::new(), vec![o1, o2, o3, o4]),
        (format!("&orderId={o2}"), vec![o2, o3, o4]),
        (format!("&orderId={o2}&limit=2"), vec![o2, o3]),
        ("&limit=2".to_string(), vec![o3, o4]),
        (format!("&startTime={mid}"), vec![o3, o4]),
        (format!("&endTime={mid}"), vec![o1, o2]),
        (format!("&startTime={mid}&endTime={end}&limit=1"), vec![o3]),
        (format!("&startTime={end}"), vec![]),
    ];
    for (extra, want) in cases {
        assert_eq!(
            all(format!("symbol=BTCEUR{extra}")).await,
            want,
            "allOrders {extra}"
        );
    }
    let r = signed(
        &alice,
        Method::GET,
        "/api/v3/allOrders",
        "symbol=BTCEUR",
        None,
    )
    .await;
    let statuses: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["NEW", "NEW", "FILLED", "NEW"]);
    // Another pair's orders are not listed.
    let r = signed(
        &alice,
        Method::GET,
        "/api/v3/allOrders",
        "symbol=ETHEUR",
        None,
    )
    .await;
    assert_eq!(r.body, json!([]));

    eventually(|| async {
        let r = signed(&bob, Method::GET, "/api/v3/myTrades", "symbol=BTCEUR", None).await;
        (r.body.as_array().map(Vec::len) == Some(2)).then_some(())
    })
    .await;
    let trades = |c: &Client, query: String| {
        let c = c.clone();
        async move {
            let r = signed(&c, Method::GET, "/api/v3/myTrades", &query, None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
            r.body
        }
    };
    let mine = trades(&alice, "symbol=BTCEUR".into()).await;
    assert_eq!(ids(&mine, "id"), [t1, t2]);
    assert_eq!(ids(&mine, "orderId"), [o3, o3]);
    for t in mine.as_array().unwrap() {
        assert_eq!(
            (&t["isBuyer"], &t["isMaker"]),
            (&json!(true), &json!(false)),
            "{t}"
        );
        assert_eq!(t["symbol"], "BTCEUR");
    }
    assert_eq!(
        (&mine[0]["price"], &mine[0]["qty"], &mine[0]["quoteQty"]),
        (&json!("30000.00"), &json!("0.20000000"), &json!("6000.00"))
    );
    let cases = [
        (format!("&orderId={o3}"), vec![t1, t2]),
        (format!("&orderId={o1}"), vec![]),
        (format!("&fromId={t2}"), vec![t2]),
        (format!("&fromId={t1}&limit=1"), vec![t1]),
        ("&limit=1".to_string(), vec![t2]),
        (format!("&startTime={mid}"), vec![t1, t2]),
        (format!("&endTime={mid}"), vec![]),
        (format!("&startTime={mid}&endTime={end}"), vec![t1, t2]),
        (format!("&startTime={end}"), vec![]),
    ];
    for (extra, want) in cases {
        let got = trades(&alice, format!("symbol=BTCEUR{extra}")).await;
        assert_eq!(ids(&got, "id"), want, "myTrades {extra}");
    }
    // The makers' side: each of bob's asks made one of the trades.
    let theirs = trades(&bob, format!("symbol=BTCEUR&orderId={ask1}")).await;
    assert_eq!(ids(&theirs, "id"), [t1]);
    assert_eq!(
        (&theirs[0]["isMaker"], &theirs[0]["isBuyer"]),
        (&json!(true), &json!(false))
    );
    let theirs = trades(&bob, format!("symbol=BTCEUR&orderId={ask2}")).await;
    assert_eq!(ids(&theirs, "id"), [t2]);
    ex.running.shutdown().await;
}

/// A decimal answer field in units of `10^-scale`.
fn units(v: &Value, scale: u8) -> i128 {
    let s = v.as_str().unwrap_or_else(|| panic!("a decimal: {v}"));
    i128::try_from(proto::parse_amount(s, scale).unwrap()).unwrap()
}

/// Known trades, all in one minute:
/// - alice's market buy of 0.6 takes 0.1 at 30000, 0.2 at 30010 and
///   0.3 at 30020 (three trades of one taker, three aggregates);
/// - her limit buy of 0.2 at 30030 takes two asks of 0.1 at that price
///   (two trades, one aggregate);
/// - bob's sell of 0.4 at 29990 takes her bid of 0.5 (one trade).
///
/// Returns the six trade ids and when the first and last traded (ms).
async fn known_trades(alice: &Client, bob: &Client) -> (Vec<u64>, u64, u64) {
    for (qty, price) in [
        ("0.1", "30000"),
        ("0.2", "30010"),
        ("0.3", "30020"),
        ("0.1", "30030"),
        ("0.1", "30030"),
    ] {
        let r = bob.place(&limit("SELL", qty, price)).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let fills = |a: &Answer| -> Vec<u64> {
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        ids(&a.body["fills"], "tradeId")
    };
    let first = now_ms();
    let m = alice
        .place(&json!({"symbol": BTCEUR, "side": "BUY", "type": "MARKET", "quantity": "0.6"}))
        .await
        .unwrap();
    let mut trades = fills(&m);
    trades.extend(fills(
        &alice.place(&limit("BUY", "0.2", "30030")).await.unwrap(),
    ));
    alice.place(&limit("BUY", "0.5", "29990")).await.unwrap();
    trades.extend(fills(
        &bob.place(&limit("SELL", "0.4", "29990")).await.unwrap(),
    ));
    let last = now_ms();
    assert_eq!(trades.len(), 6, "{trades:?}");
    assert!(trades.windows(2).all(|w| w[0] < w[1]), "{trades:?}");
    (trades, first, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "every market data endpoint in turn")]
async fn market_data_after_known_trades() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let public = ex.public();
    let get = |path: &'static str, query: String| {
        let public = public.clone();
        async move {
            let r = public.get(path, &query).await.unwrap();
            assert_eq!(r.status, StatusCode::OK, "{path}?{query}: {:?}", r.body);
            r.body
        }
    };
    // The 1m candle below holds every trade: no minute ends among them.
    common::within_one_window(60_000, 15_000).await;
    let (t, first_ms, last_ms) = known_trades(&alice, &bob).await;
    // The store has every trade (and candle) once the last is listed.
    eventually(|| async {
        let r = public.get("/api/v3/trades", "symbol=BTCEUR").await.unwrap();
        (r.body.as_array().map(Vec::len) == Some(6)).then_some(())
    })
    .await;

    // historicalTrades: from an id, or the most recent; ascending.
    let h = get("/api/v3/historicalTrades", "symbol=BTCEUR".into()).await;
    assert_eq!(ids(&h, "id"), t);
    let qtys: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["qty"].as_str().unwrap())
        .collect();
    assert_eq!(
        qtys,
        [
            "0.10000000",
            "0.20000000",
            "0.30000000",
            "0.10000000",
            "0.10000000",
            "0.40000000"
        ]
    );
    let buyer_maker: Vec<bool> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["isBuyerMaker"].as_bool().unwrap())
        .collect();
    assert_eq!(buyer_maker, [false, false, false, false, false, true]);
    let h = get(
        "/api/v3/historicalTrades",
        format!("symbol=BTCEUR&fromId={}&limit=3", t[1]),
    )
    .await;
    assert_eq!(ids(&h, "id"), t[1..4]);
    let h = get("/api/v3/historicalTrades", "symbol=BTCEUR&limit=2".into()).await;
    assert_eq!(ids(&h, "id"), t[4..]);
    let recent = get("/api/v3/trades", "symbol=BTCEUR&limit=2".into()).await;
    assert_eq!(ids(&recent, "id"), t[4..]);

    // aggTrades: one per taker order and price.
    let agg = get("/api/v3/aggTrades", "symbol=BTCEUR".into()).await;
    let want = json!([
        {"a": t[0], "p": "30000.00", "q": "0.10000000", "f": t[0], "l": t[0], "m": false, "M": true},
        {"a": t[1], "p": "30010.00", "q": "0.20000000", "f": t[1], "l": t[1], "m": false, "M": true},
        {"a": t[2], "p": "30020.00", "q": "0.30000000", "f": t[2], "l": t[2], "m": false, "M": true},
        {"a": t[3], "p": "30030.00", "q": "0.20000000", "f": t[3], "l": t[4], "m": false, "M": true},
        {"a": t[5], "p": "29990.00", "q": "0.40000000", "f": t[5], "l": t[5], "m": true, "M": true},
    ]);
    let mut without_time = agg.clone();
    for a in without_time.as_array_mut().unwrap() {
        let time = a
            .as_object_mut()
            .unwrap()
            .remove("T")
            .unwrap()
            .as_u64()
            .unwrap();
        assert!((first_ms..=last_ms).contains(&time), "{a}");
    }
    assert_eq!(without_time, want);
    let a = get(
        "/api/v3/aggTrades",
        format!("symbol=BTCEUR&fromId={}", t[3]),
    )
    .await;
    assert_eq!(ids(&a, "a"), [t[3], t[5]]);
    // An id inside an aggregate: that aggregate began before it.
    let a = get(
        "/api/v3/aggTrades",
        format!("symbol=BTCEUR&fromId={}", t[4]),
    )
    .await;
    assert_eq!(ids(&a, "a"), [t[5]]);
    let a = get("/api/v3/aggTrades", "symbol=BTCEUR&limit=2".into()).await;
    assert_eq!(ids(&a, "a"), [t[3], t[5]]);
    let a = get(
        "/api/v3/aggTrades",
        format!("symbol=BTCEUR&startTime={first_ms}&endTime={last_ms}"),
    )
    .await;
    assert_eq!(ids(&a, "a"), [t[0], t[1], t[2], t[3], t[5]]);
    let a = get(
        "/api/v3/aggTrades",
        format!(
            "symbol=BTCEUR&startTime={}&endTime={}",
            last_ms + 1,
            last_ms + 1000
        ),
    )
    .await;
    assert_eq!(a, json!([]));

    // klines: one 1m candle of all six trades. Volume 1.2; quote volume
    // 3000 + 6002 + 9006 + 6006 + 11996; the taker bought all but 0.4.
    let minute = first_ms / 60_000 * 60_000;
    let candle = json!([[
        minute,
        "30000.00",
        "30030.00",
        "29990.00",
        "29990.00",
        "1.20000000",
        minute + 59_999,
        "36010.00",
        6,
        "0.80000000",
        "24014.00",
        "0"
    ]]);
    for path in ["/api/v3/klines", "/api/v3/uiKlines"] {
        let k = get(path, "symbol=BTCEUR&interval=1m".into()).await;
        assert_eq!(k, candle, "{path}");
    }
    let k = get(
        "/api/v3/klines",
        format!(
            "symbol=BTCEUR&interval=1m&startTime={minute}&endTime={}",
            minute + 59_999
        ),
    )
    .await;
    assert_eq!(k, candle);
    // The same trades in an hour's candle and a day's, and the 1s candles
    // in between add up to the minute's.
    for interval in ["1h", "1d"] {
        let k = get(
            "/api/v3/klines",
            format!("symbol=BTCEUR&interval={interval}"),
        )
        .await;
        let k = &k[0];
        assert_eq!(
            (&k[1], &k[2], &k[3], &k[4], &k[5], &k[7], &k[8]),
            (
                &json!("30000.00"),
                &json!("30030.00"),
                &json!("29990.00"),
                &json!("29990.00"),
                &json!("1.20000000"),
                &json!("36010.00"),
                &json!(6)
            ),
            "{interval}: {k}"
        );
    }
    let seconds = get("/api/v3/klines", "symbol=BTCEUR&interval=1s".into()).await;
    let seconds = seconds.as_array().unwrap();
    let volume: i128 = seconds.iter().map(|c| units(&c[5], 8)).sum();
    let count: u64 = seconds.iter().map(|c| c[8].as_u64().unwrap()).sum();
    assert_eq!((volume, count), (120_000_000, 6), "{seconds:?}");
    assert_eq!(seconds[0][1], "30000.00");
    assert_eq!(seconds.last().unwrap()[4], "29990.00");
    let high = seconds.iter().map(|c| units(&c[2], 2)).max();
    let low = seconds.iter().map(|c| units(&c[3], 2)).min();
    assert_eq!((high, low), (Some(3_003_000), Some(2_999_000)));
    // The volume is the quantity traded, as the trades list it.
    let traded: i128 = get("/api/v3/historicalTrades", "symbol=BTCEUR".into())
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|x| units(&x["qty"], 8))
        .sum();
    assert_eq!(traded, 120_000_000);

    // The 24-hour ticker: the window's trades, the book's best prices (one
    // bid of 0.1 left at 29990, no ask) and the last trade's quantity.
    let day = get("/api/v3/ticker/24hr", "symbol=BTCEUR".into()).await;
    let want = json!({
        "symbol": "BTCEUR", "priceChange": "-10.00", "priceChangePercent": "-0.033",
        "weightedAvgPrice": "30008.33", "prevClosePrice": "0.00", "lastPrice": "29990.00",
        "lastQty": "0.40000000", "bidPrice": "29990.00", "bidQty": "0.10000000",
        "askPrice": "0.00", "askQty": "0.00000000", "openPrice": "30000.00",
        "highPrice": "30030.00", "lowPrice": "29990.00", "volume": "1.20000000",
        "quoteVolume": "36010.00", "firstId": t[0], "lastId": t[5], "count": 6,
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&day[k], v, "{k}: {day}");
    }
    let close = day["closeTime"].as_u64().unwrap();
    assert_eq!(day["openTime"].as_u64(), Some(close - 86_400_000));
    // MINI leaves out the change and the book.
    let mini = get("/api/v3/ticker/24hr", "symbol=BTCEUR&type=MINI".into()).await;
    assert!(
        mini.get("priceChange").is_none() && mini.get("bidPrice").is_none(),
        "{mini}"
    );
    assert_eq!(mini["volume"], "1.20000000");
    // A list for `symbols`, all pairs without either; pairs without trades
    // count none.
    let both = get(
        "/api/v3/ticker/24hr",
        "symbols=%5B%22BTCEUR%22%2C%22ETHEUR%22%5D".into(),
    )
    .await;
    assert_eq!(both[0]["count"], 6);
    assert_eq!(
        (&both[1]["symbol"], &both[1]["count"]),
        (&json!("ETHEUR"), &json!(0))
    );
    assert_eq!(
        get("/api/v3/ticker/24hr", String::new())
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The rolling window of the last hour holds the same trades.
    let hour = get("/api/v3/ticker", "symbol=BTCEUR&windowSize=1h".into()).await;
    for k in [
        "openPrice",
        "highPrice",
        "lowPrice",
        "lastPrice",
        "volume",
        "quoteVolume",
        "count",
        "weightedAvgPrice",
    ] {
        assert_eq!(hour[k], day[k], "{k}: {hour}");
    }

    // The last price; the best bid and ask; the 5-minute average price.
    let price = get("/api/v3/ticker/price", "symbol=BTCEUR".into()).await;
    assert_eq!(price, json!({"symbol": "BTCEUR", "price": "29990.00"}));
    let prices = get("/api/v3/ticker/price", String::new()).await;
    assert_eq!(
        prices,
        json!([{"symbol": "BTCEUR", "price": "29990.00"}, {"symbol": "ETHEUR", "price": "0.00"},
               {"symbol": "ETHBTC", "price": "0.00000"}])
    );
    let book = get("/api/v3/ticker/bookTicker", "symbol=BTCEUR".into()).await;
    assert_eq!(
        book,
        json!({"symbol": "BTCEUR", "bidPrice": "29990.00", "bidQty": "0.10000000",
               "askPrice": "0.00", "askQty": "0.00000000"})
    );
    let avg = get("/api/v3/avgPrice", "symbol=BTCEUR".into()).await;
    assert_eq!(
        (&avg["mins"], &avg["price"]),
        (&json!(5), &json!("30008.33")),
        "{avg}"
    );
    // Its closeTime is the last trade's time, as Binance documents it.
    assert_eq!(avg["closeTime"], agg[4]["T"], "{avg}");
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "every parameter and filter in turn")]
async fn exchange_info_filters_and_symbol_parameters() {
    let ex = start().await;
    let public = ex.public();
    let info = |query: &'static str| {
        let public = public.clone();
        async move {
            let r = public.get("/api/v3/exchangeInfo", query).await.unwrap();
            assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
            r.body
        }
    };
    let symbols = |v: &Value| -> Vec<String> {
        v["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["symbol"].as_str().unwrap().to_string())
            .collect()
    };
    let all = info("").await;
    assert_eq!(symbols(&all), ["BTCEUR", "ETHEUR", "ETHBTC"]);
    assert_eq!(all["timezone"], "UTC");
    // The limits are the configured ones (raised for tests).
    let limits = &ex.config.gateway;
    assert_eq!(
        all["rateLimits"],
        json!([
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": limits.request_weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": limits.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": limits.orders_per_day},
        ])
    );

    let one = info("symbol=BTCEUR").await;
    assert_eq!(symbols(&one), ["BTCEUR"]);
    let btc = &one["symbols"][0];
    let want = json!({
        "symbol": "BTCEUR", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "EUR",
        "baseAssetPrecision": 8, "quotePrecision": 2, "quoteAssetPrecision": 2,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
            "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"], "cancelReplaceAllowed": true,
        "amendAllowed": true, "isSpotTradingAllowed": true, "permissionSets": [["SPOT"]],
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&btc[k], v, "{k}: {btc}");
    }
    // The old top-level rules are gone: they are in the filters.
    for gone in [
        "pricePrecision",
        "quantityPrecision",
        "tickSize",
        "stepSize",
        "minQty",
        "maxQty",
        "minNotional",
        "maxNotional",
        "maxPrice",
        "timeInForce",
    ] {
        assert!(btc.get(gone).is_none(), "{gone}: {btc}");
    }
    let filter = |name: &str| -> Value {
        btc["filters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filterType"] == name)
            .unwrap_or_else(|| panic!("no {name}: {btc}"))
            .clone()
    };
    let lot = json!({"minQty": "0.00001000", "maxQty": "1000.00000000", "stepSize": "0.00001000"});
    let expected = [
        (
            "PRICE_FILTER",
            json!({"minPrice": "0.01", "maxPrice": "10000000.00", "tickSize": "0.01"}),
        ),
        ("LOT_SIZE", lot.clone()),
        ("ICEBERG_PARTS", json!({"limit": proto::MAX_ICEBERG_PARTS})),
        ("MARKET_LOT_SIZE", lot),
        (
            "TRAILING_DELTA",
            json!({"minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
                   "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000}),
        ),
        (
            "NOTIONAL",
            json!({"minNotional": "1.00", "maxNotional": "100000000.00"}),
        ),
    ];
    for (name, fields) in expected {
        let f = filter(name);
        for (k, v) in fields.as_object().unwrap() {
            assert_eq!(&f[k], v, "{name}.{k}: {f}");
        }
    }
    assert!(filter("MAX_NUM_ORDERS")["maxNumOrders"].as_u64().is_some());

    // Each published filter is the one enforced, by name.
    let alice = ex.user("alice").await;
    let market =
        |qty: &str| json!({"symbol": BTCEUR, "side": "SELL", "type": "MARKET", "quantity": qty});
    for (order, name) in [
        (limit("BUY", "0.000009", "30000"), "LOT_SIZE"),
        (limit("BUY", "0.000015", "30000"), "LOT_SIZE"),
        (limit("BUY", "1000.00001", "1"), "LOT_SIZE"),
        (market("1000.00001"), "MARKET_LOT_SIZE"),
        (limit("BUY", "0.00001", "10000000.01"), "PRICE_FILTER"),
        (limit("BUY", "0.0001", "9999.99"), "NOTIONAL"),
    ] {
        let r = alice.place(&order).await.unwrap();
        assert_eq!(
            (r.code(), &r.body["msg"]),
            (Some(-1013), &json!(format!("Filter failure: {name}"))),
            "{order}"
        );
    }
    let r = alice.place(&limit("BUY", "0.0001", "10000")).await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "exactly the minimum notional: {:?}",
        r.body
    );

    // `symbols`, a JSON list, in the order asked.
    let two = info("symbols=%5B%22ETHEUR%22%2C%22BTCEUR%22%5D").await;
    assert_eq!(symbols(&two), ["ETHEUR", "BTCEUR"]);
    // Statuses and permissions select pairs; permission sets can be left out.
    assert_eq!(symbols(&info("symbolStatus=TRADING").await).len(), 3);
    assert!(symbols(&info("symbolStatus=HALT").await).is_empty());
    assert_eq!(symbols(&info("permissions=SPOT").await).len(), 3);
    assert!(symbols(&info("permissions=%5B%22MARGIN%22%5D").await).is_empty());
    let bare = info("symbol=ETHEUR&showPermissionSets=false").await;
    assert_eq!(bare["symbols"][0]["permissionSets"], json!([]), "{bare}");
    for (query, code) in [
        ("symbols=%5B%22BTCEUR%22%2C%22NOPE%22%5D", -1121),
        ("symbol=BTC-EUR", -1121),
        ("symbolStatus=OPEN", -1122),
        ("symbol=BTCEUR&permissions=SPOT", -1106),
    ] {
        let r = public.get("/api/v3/exchangeInfo", query).await.unwrap();
        assert_eq!(r.code(), Some(code), "{query}: {:?}", r.body);
    }
    ex.running.shutdown().await;
}

/// A cancel's answer takes the order's `origQty` and `cummulativeQuoteQty`
/// from the store and `executedQty` as that `origQty` less what the
/// engine says remains: the store must first hold what the engine has
/// done. Canceled right after a keepPriority amend (0.5 lowered to 0.4,
/// 0.2 of it filled), the answer once said `origQty` 0.5 and
/// `executedQty` 0.3, 0.1 more than ever traded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_right_after_an_amend_reports_the_amended_order() {
    let ex = start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let ask = id(&alice.place(&limit("SELL", "0.5", "30000")).await.unwrap());
    let b = bob.place(&limit("BUY", "0.2", "30000")).await.unwrap();
    assert_eq!(b.body["status"], "FILLED", "{:?}", b.body);
    let body = json!({"symbol": BTCEUR, "orderId": ask, "newQty": "0.4"});
    let r = signed(
        &alice,
        Method::PUT,
        "/api/v3/order/amend/keepPriority",
        "",
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let q = format!("symbol=BTCEUR&orderId={ask}");
    let c = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    assert_eq!(c.body["status"], "CANCELED", "{:?}", c.body);
    assert_eq!(
        (
            &c.body["origQty"],
            &c.body["executedQty"],
            &c.body["cummulativeQuoteQty"]
        ),
        (
            &json!("0.40000000"),
            &json!("0.20000000"),
            &json!("6000.00")
        ),
        "{:?}",
        c.body
    );
    ex.running.shutdown().await;
}

/// keepPriority checks that the new quantity is lower against the order
/// as stored, so the store must first hold the engine's latest. Lowered
/// from 0.5 to 0.3 and at once "lowered" to 0.4, the second amend once
/// passed the check against a stored 0.5, and the engine (which takes any
/// amend) raised the order to 0.4 and sent it to the back of its price
/// level: an increase, and a lost place in the queue, through the endpoint
/// whose point is to do neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_priority_refuses_an_increase_right_after_a_decrease() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let ask = id(&alice.place(&limit("SELL", "0.5", "30000")).await.unwrap());
    order_with_status(&alice, BTCEUR, ask, "NEW").await;
    let amend = |qty: &str| {
        let alice = alice.clone();
        let body = json!({"symbol": BTCEUR, "orderId": ask, "newQty": qty});
        async move {
            signed(
                &alice,
                Method::PUT,
                "/api/v3/order/amend/keepPriority",
                "",
                Some(&body),
            )
            .await
        }
    };
    let r = amend("0.3").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = amend("0.4").await;
    let d = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code(), &d.body["asks"]),
        (
            StatusCode::BAD_REQUEST,
            Some(-2010),
            &json!([["30000.00", "0.30000000"]])
        ),
        "an increase right after a decrease: {:?}",
        r.body
    );
    ex.running.shutdown().await;
}

/// keepPriority looks the order up in the store: an amend sent as soon as
/// the order's placement is answered finds it (it once got -2013 "Order
/// does not exist." for an order resting on the book).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_priority_right_after_placing_finds_the_order() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let placed = alice.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    assert_eq!(placed.body["status"], "NEW", "{:?}", placed.body);
    let body = json!({"symbol": BTCEUR, "orderId": id(&placed), "newQty": "0.3"});
    let r = signed(
        &alice,
        Method::PUT,
        "/api/v3/order/amend/keepPriority",
        "",
        Some(&body),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an amend right after placing: {:?}",
        r.body
    );
    ex.running.shutdown().await;
}

/// A cancel's checks read the order from the store. Sent as soon as the
/// order's placement is answered, `cancelRestrictions=ONLY_PARTIALLY_FILLED`
/// holds back the cancel of a NEW order, and an `orderId` with its own
/// `origClientOrderId` cancels it. (With no stored row yet, the
/// restriction was once skipped and the pair refused -2011.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_checks_right_after_placing_see_the_order() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let mut got = Vec::new();
    let placed = alice.place(&limit("BUY", "0.1", "100")).await.unwrap();
    let q = format!(
        "symbol=BTCEUR&orderId={}&cancelRestrictions=ONLY_PARTIALLY_FILLED",
        id(&placed)
    );
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    got.push(("restricted", r.status, r.code(), r.body["status"].clone()));
    let placed = alice
        .place(&with(
            limit("BUY", "0.1", "101"),
            json!({"newClientOrderId": "both-1"}),
        ))
        .await
        .unwrap();
    let q = format!(
        "symbol=BTCEUR&orderId={}&origClientOrderId=both-1",
        id(&placed)
    );
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    got.push((
        "id and client id",
        r.status,
        r.code(),
        r.body["status"].clone(),
    ));
    assert_eq!(
        got,
        [
            (
                "restricted",
                StatusCode::BAD_REQUEST,
                Some(-2011),
                Value::Null
            ),
            ("id and client id", StatusCode::OK, None, json!("CANCELED")),
        ]
    );
    ex.running.shutdown().await;
}

/// A cancel's answer reads the order from the store. Canceled as soon as
/// its placement is answered, one order or all of them, each is answered
/// with its own price and type. (For an order not stored yet the answer
/// once made one up: `"price": "0.00"`, and a LIMIT_MAKER as a LIMIT.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_right_after_placing_reports_the_order() {
    let ex = start().await;
    let alice = ex.user("alice").await;
    let mut got = Vec::new();
    let one = id(&alice.place(&limit("SELL", "0.1", "40000")).await.unwrap());
    let q = format!("symbol=BTCEUR&orderId={one}");
    let r = signed(&alice, Method::DELETE, "/api/v3/order", &q, None).await;
    got.push((r.body["price"].clone(), r.body["type"].clone()));
    let maker = json!({"symbol": BTCEUR, "side": "SELL", "type": "LIMIT_MAKER",
                       "quantity": "0.1", "price": "40001", "newOrderRespType": "RESULT"});
    assert_eq!(alice.place(&maker).await.unwrap().status, StatusCode::OK);
    let r = signed(
        &alice,
        Method::DELETE,
        "/api/v3/openOrders",
        "symbol=BTCEUR",
        None,
    )
    .await;
    got.push((r.body[0]["price"].clone(), r.body[0]["type"].clone()));
    assert_eq!(
        got,
        [
            (json!("40000.00"), json!("LIMIT")),
            (json!("40001.00"), json!("LIMIT_MAKER")),
        ]
    );
    ex.running.shutdown().await;
}
