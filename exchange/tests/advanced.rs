//! The advanced order types end to end, as Binance's REST API, WebSocket
//! API and user data stream show them: stop-loss and take-profit orders
//! (market and limit, by stop price and trailing), icebergs, GTD orders
//! and their expiry, OCO and OTO lists with their queries and cancels; and
//! bad input for every new parameter, with Binance's codes.

mod common;

use std::time::Duration;

use client::{Answer, Client, Method, StatusCode};
use common::streams::{Ws, next_json, user_stream};
use common::{BTCEUR, ETHBTC, ETHEUR, TestExchange};
use serde_json::{Value, json};

async fn post(c: &Client, path: &str, params: &Value) -> Answer {
    c.signed(Method::POST, path, "", Some(params))
        .await
        .unwrap()
}

async fn get(c: &Client, path: &str, query: &str) -> Answer {
    c.signed(Method::GET, path, query, None).await.unwrap()
}

async fn delete(c: &Client, path: &str, query: &str) -> Answer {
    c.signed(Method::DELETE, path, query, None).await.unwrap()
}

fn ok(a: &Answer) -> &Value {
    assert_eq!(a.status, StatusCode::OK, "{:#}", a.body);
    &a.body
}

/// `fields` merged into `base`.
fn with(mut base: Value, fields: Value) -> Value {
    if let (Some(b), Some(f)) = (base.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// Makes the pair's last trade price `price`: one user rests a sell of
/// 0.001, another takes it.
async fn trade_at(ex: &TestExchange, price: &str) {
    let (maker, taker) = (ex.user("maker").await, ex.user("taker").await);
    ok(&maker
        .place(&common::limit("SELL", "0.001", price))
        .await
        .unwrap());
    let take = with(
        common::limit("BUY", "0.001", price),
        json!({"timeInForce": "IOC"}),
    );
    let a = taker.place(&take).await.unwrap();
    assert_eq!(ok(&a)["status"], "FILLED", "the trade at {price} happened");
}

/// Messages of `ws` until one satisfies `want` (within 5 s); all of them.
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

fn report(id: u64, x: &'static str, status: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["e"] == "executionReport" && v["i"] == id && v["x"] == x && v["X"] == status
}

fn list_status(id: u64, l: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["e"] == "listStatus" && v["g"] == id && v["l"] == l
}

fn id_of(v: &Value) -> u64 {
    v["orderId"].as_u64().expect("an order id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_limit_orders_wait_then_fire_as_binance_shows() {
    let ex = common::start().await;
    let (alice, bob, carol) = (
        ex.user("alice").await,
        ex.user("bob").await,
        ex.user("carol").await,
    );
    let mut stream = user_stream(&alice).await;
    trade_at(&ex, "30000.00").await;
    // A stop-limit sell below the last price waits.
    let stop = json!({"symbol": BTCEUR, "side": "SELL", "type": "STOP_LOSS_LIMIT",
        "timeInForce": "GTC", "quantity": "0.1", "price": "28900.00",
        "stopPrice": "29000.00", "newOrderRespType": "RESULT"});
    let placed = alice.place(&stop).await.unwrap();
    let placed = ok(&placed);
    let id = id_of(placed);
    assert_eq!(
        (&placed["status"], &placed["type"], &placed["stopPrice"]),
        (&json!("NEW"), &json!("STOP_LOSS_LIMIT"), &json!("29000.00"))
    );
    assert_eq!(placed["workingTime"], -1, "it waits: {placed}");
    let seen = until(&mut stream, report(id, "NEW", "NEW")).await;
    let new = seen.last().unwrap();
    assert_eq!(
        (&new["o"], &new["P"], &new["w"]),
        (&json!("STOP_LOSS_LIMIT"), &json!("29000.00"), &json!(false))
    );
    assert!(new.get("W").is_none(), "not on the book: {new}");
    let queried = common::order_with_status(&alice, BTCEUR, id, "NEW").await;
    assert_eq!(
        (&queried["isWorking"], &queried["workingTime"]),
        (&json!(false), &json!(-1))
    );
    assert_eq!(queried["stopPrice"], "29000.00");
    let open = common::open_orders(&alice, BTCEUR).await;
    assert!(
        open.iter().any(|o| o["orderId"] == id),
        "a waiting order is open"
    );
    // A trade at the stop fires it; it sells to the bid left at 29000.
    ok(&bob
        .place(&common::limit("BUY", "0.2", "29000.00"))
        .await
        .unwrap());
    let take = with(
        common::limit("SELL", "0.1", "29000.00"),
        json!({"timeInForce": "IOC"}),
    );
    ok(&carol.place(&take).await.unwrap());
    let seen = until(&mut stream, report(id, "TRADE", "FILLED")).await;
    let fired = seen
        .iter()
        .find(|v| report(id, "NEW", "NEW")(v))
        .expect("the firing is reported as NEW");
    assert!(fired["W"].is_u64(), "it works from its firing: {fired}");
    let filled = common::order_with_status(&alice, BTCEUR, id, "FILLED").await;
    assert!(filled["workingTime"].as_i64().unwrap() > 0, "{filled}");
    assert_eq!(filled["executedQty"], "0.10000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_and_take_profit_market_orders_fire_on_the_trades() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let mut stream = user_stream(&alice).await;
    trade_at(&ex, "30000.00").await;
    // A trailing stop-loss sell of 1% (100 bps), tracking from the last
    // trade at once; a take-profit buy at 29500.
    let trailing = json!({"symbol": BTCEUR, "side": "SELL", "type": "STOP_LOSS",
        "quantity": "0.01", "trailingDelta": 100});
    let trailing_id = id_of(ok(&alice.place(&trailing).await.unwrap()));
    let profit = json!({"symbol": BTCEUR, "side": "BUY", "type": "TAKE_PROFIT",
        "quantity": "0.01", "stopPrice": "29500.00"});
    let profit_id = id_of(ok(&alice.place(&profit).await.unwrap()));
    let seen = until(&mut stream, report(trailing_id, "NEW", "NEW")).await;
    let new = seen.last().unwrap();
    assert_eq!((&new["o"], &new["d"]), (&json!("STOP_LOSS"), &json!(100)));
    assert!(
        new["D"].as_i64().unwrap() > 0,
        "it tracks from its placement: {new}"
    );
    let q = common::order_with_status(&alice, BTCEUR, trailing_id, "NEW").await;
    assert_eq!(q["trailingDelta"], 100);
    assert!(q["trailingTime"].as_i64().unwrap() > 0, "{q}");
    // Up to 30500, then down 1% to 30195: the trailing stop fires and
    // sells to bob's bid.
    trade_at(&ex, "30500.00").await;
    ok(&bob
        .place(&common::limit("BUY", "0.05", "30195.00"))
        .await
        .unwrap());
    let seller = ex.user("seller").await;
    let sell = with(
        common::limit("SELL", "0.001", "30195.00"),
        json!({"timeInForce": "IOC"}),
    );
    assert_eq!(ok(&seller.place(&sell).await.unwrap())["status"], "FILLED");
    until(&mut stream, report(trailing_id, "TRADE", "FILLED")).await;
    // Down to 29500: the take-profit buy fires and buys the ask there.
    ok(&seller
        .place(&common::limit("SELL", "0.05", "29500.00"))
        .await
        .unwrap());
    trade_at(&ex, "29500.00").await;
    until(&mut stream, report(profit_id, "TRADE", "FILLED")).await;
    let q = common::order_with_status(&alice, BTCEUR, profit_id, "FILLED").await;
    assert_eq!(
        (&q["type"], &q["stopPrice"]),
        (&json!("TAKE_PROFIT"), &json!("29500.00"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iceberg_shows_one_slice_in_depth() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let iceberg = with(
        common::limit("SELL", "1", "31000.00"),
        json!({"icebergQty": "0.1", "newOrderRespType": "RESULT"}),
    );
    let placed = alice.place(&iceberg).await.unwrap();
    let id = id_of(ok(&placed));
    assert_eq!(placed.body["icebergQty"], "0.10000000");
    let depth = |ex: &TestExchange| {
        let public = ex.public();
        async move {
            let d = public.get("/api/v3/depth", "symbol=BTCEUR").await.unwrap();
            d.body["asks"].clone()
        }
    };
    assert_eq!(depth(&ex).await, json!([["31000.00", "0.10000000"]]));
    // A buy of 0.25 takes two slices and half a third.
    let take = with(
        common::limit("BUY", "0.25", "31000.00"),
        json!({"timeInForce": "IOC"}),
    );
    assert_eq!(ok(&bob.place(&take).await.unwrap())["status"], "FILLED");
    assert_eq!(depth(&ex).await, json!([["31000.00", "0.05000000"]]));
    let q = common::order_with_status(&alice, BTCEUR, id, "PARTIALLY_FILLED").await;
    assert_eq!(
        (&q["executedQty"], &q["icebergQty"]),
        (&json!("0.25000000"), &json!("0.10000000"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtd_order_expires_at_its_time() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let mut stream = user_stream(&alice).await;
    let until_ms = common::now_ms() + 1_500;
    let gtd = json!({"symbol": BTCEUR, "side": "BUY", "type": "LIMIT", "timeInForce": "GTD",
        "goodTillDate": until_ms, "quantity": "0.1", "price": "20000.00",
        "newOrderRespType": "RESULT"});
    let placed = alice.place(&gtd).await.unwrap();
    let id = id_of(ok(&placed));
    assert_eq!(
        (&placed.body["timeInForce"], &placed.body["goodTillDate"]),
        (&json!("GTD"), &json!(until_ms))
    );
    // Nothing else happens on the pair: the time passing expires it.
    let seen = until(&mut stream, report(id, "EXPIRED", "EXPIRED")).await;
    let expired = seen.last().unwrap();
    assert!(
        expired["E"].as_u64().unwrap() >= until_ms,
        "not before its time: {expired}"
    );
    let q = common::order_with_status(&alice, BTCEUR, id, "EXPIRED").await;
    assert_eq!(q["goodTillDate"], until_ms);
    assert!(common::open_orders(&alice, BTCEUR).await.is_empty());
}

/// A sell OCO: a limit maker above the last price, a stop-limit below.
fn sell_oco(quantity: &str) -> Value {
    json!({"symbol": BTCEUR, "side": "SELL", "quantity": quantity,
        "aboveType": "LIMIT_MAKER", "abovePrice": "31000.00",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "29000.00",
        "belowPrice": "28900.00", "belowTimeInForce": "GTC",
        "listClientOrderId": "my-oco", "belowClientOrderId": "my-stop",
        "aboveClientOrderId": "my-maker"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oco_fill_expires_the_other_order() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let mut stream = user_stream(&alice).await;
    trade_at(&ex, "30000.00").await;
    let placed = post(&alice, "/api/v3/orderList/oco", &sell_oco("0.1")).await;
    let list = ok(&placed);
    let list_id = list["orderListId"].as_u64().unwrap();
    assert_eq!(
        (
            &list["contingencyType"],
            &list["listStatusType"],
            &list["listOrderStatus"]
        ),
        (&json!("OCO"), &json!("EXEC_STARTED"), &json!("EXECUTING"))
    );
    assert_eq!(list["listClientOrderId"], "my-oco");
    let reports = list["orderReports"].as_array().unwrap();
    let (stop, maker) = (&reports[0], &reports[1]);
    assert_eq!(
        (&stop["clientOrderId"], &stop["type"]),
        (&json!("my-stop"), &json!("STOP_LOSS_LIMIT"))
    );
    assert_eq!(
        (&maker["clientOrderId"], &maker["type"]),
        (&json!("my-maker"), &json!("LIMIT_MAKER"))
    );
    assert_eq!(
        (&stop["orderListId"], &stop["workingTime"]),
        (&json!(list_id), &json!(-1))
    );
    assert!(maker["fills"].is_array(), "FULL by default: {maker}");
    let (stop_id, maker_id) = (id_of(stop), id_of(maker));
    until(&mut stream, list_status(list_id, "EXEC_STARTED")).await;
    let open = ok(&get(&alice, "/api/v3/openOrderList", "").await).clone();
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    // Bob takes the maker: the stop expires, the list is done.
    ok(&bob
        .place(&common::limit("BUY", "0.1", "31000.00"))
        .await
        .unwrap());
    let seen = until(&mut stream, list_status(list_id, "ALL_DONE")).await;
    assert!(seen.iter().any(report(maker_id, "TRADE", "FILLED")));
    assert!(
        seen.iter().any(report(stop_id, "EXPIRED", "EXPIRED")),
        "{seen:#?}"
    );
    common::order_with_status(&alice, BTCEUR, stop_id, "EXPIRED").await;
    let trades = ok(&get(&alice, "/api/v3/myTrades", &format!("symbol={BTCEUR}")).await).clone();
    let maker_trade = trades
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["orderId"] == maker_id)
        .expect("the maker's fill");
    assert_eq!(maker_trade["orderListId"], list_id, "{maker_trade}");
    let q = ok(&get(
        &alice,
        "/api/v3/orderList",
        &format!("orderListId={list_id}"),
    )
    .await)
    .clone();
    assert_eq!(
        (&q["listOrderStatus"], &q["symbol"]),
        (&json!("ALL_DONE"), &json!(BTCEUR))
    );
    let by_client = get(&alice, "/api/v3/orderList", "origClientOrderId=my-oco").await;
    assert_eq!(ok(&by_client)["orderListId"], list_id);
    assert_eq!(
        ok(&get(&alice, "/api/v3/openOrderList", "").await),
        &json!([])
    );
    let all = ok(&get(&alice, "/api/v3/allOrderList", "").await).clone();
    assert_eq!(all[0]["orderListId"], list_id);
    // Bob sees none of it.
    let theirs = get(&bob, "/api/v3/orderList", &format!("orderListId={list_id}")).await;
    assert_eq!(theirs.code(), Some(-2013));
    assert_eq!(ok(&get(&bob, "/api/v3/allOrderList", "").await), &json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_canceled_whole_by_their_owner() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    trade_at(&ex, "30000.00").await;
    // DELETE orderList: both orders canceled.
    let list = ok(&post(&alice, "/api/v3/orderList/oco", &sell_oco("0.1")).await).clone();
    let list_id = list["orderListId"].as_u64().unwrap();
    let q = format!("symbol={BTCEUR}&orderListId={list_id}&newClientOrderId=gone");
    // Another user's list, or the list named on another pair, is unknown:
    // nothing is canceled.
    let theirs = delete(&bob, "/api/v3/orderList", &q).await;
    assert_eq!(theirs.code(), Some(-2011), "{:?}", theirs.body);
    let elsewhere = format!("symbol={ETHEUR}&orderListId={list_id}");
    let wrong_pair = delete(&alice, "/api/v3/orderList", &elsewhere).await;
    assert_eq!(wrong_pair.code(), Some(-2011), "{:?}", wrong_pair.body);
    let canceled = ok(&delete(&alice, "/api/v3/orderList", &q).await).clone();
    assert_eq!(canceled["listStatusType"], "ALL_DONE");
    let statuses: Vec<&Value> = canceled["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, ["CANCELED", "CANCELED"]);
    assert_eq!(canceled["orderReports"][0]["clientOrderId"], "gone");
    let again = delete(&alice, "/api/v3/orderList", &q).await;
    assert_eq!(again.code(), Some(-2011), "{:?}", again.body);
    // DELETE order of one of its orders: Binance answers with the list.
    let oco = with(sell_oco("0.1"), json!({"listClientOrderId": "second"}));
    let oco = with(
        oco,
        json!({"belowClientOrderId": "s2", "aboveClientOrderId": "m2"}),
    );
    let list = ok(&post(&alice, "/api/v3/orderList/oco", &oco).await).clone();
    let maker_id = id_of(&list["orderReports"][1]);
    common::order_with_status(&alice, BTCEUR, maker_id, "NEW").await;
    let q = format!("symbol={BTCEUR}&orderId={maker_id}");
    let answer = ok(&delete(&alice, "/api/v3/order", &q).await).clone();
    assert_eq!(answer["orderListId"], list["orderListId"]);
    let statuses: Vec<&Value> = answer["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, ["CANCELED", "CANCELED"], "{answer}");
    let stop_id = id_of(&list["orderReports"][0]);
    common::order_with_status(&alice, BTCEUR, stop_id, "CANCELED").await;
    // Cancel-all: plain orders one by one, lists whole.
    let third = with(
        sell_oco("0.1"),
        json!({"listClientOrderId": "third",
        "belowClientOrderId": "s3", "aboveClientOrderId": "m3"}),
    );
    ok(&post(&alice, "/api/v3/orderList/oco", &third).await);
    ok(&alice
        .place(&common::limit("BUY", "0.1", "20000.00"))
        .await
        .unwrap());
    let all = ok(&delete(&alice, "/api/v3/openOrders", &format!("symbol={BTCEUR}")).await).clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "one order and one list: {all:#?}");
    assert!(
        all.iter()
            .any(|a| a["contingencyType"] == "OCO"
                && a["orderReports"].as_array().unwrap().len() == 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oto_places_its_pending_order_once_the_working_order_fills() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let mut stream = user_stream(&alice).await;
    let oto = json!({"symbol": BTCEUR, "workingType": "LIMIT", "workingSide": "BUY",
        "workingPrice": "29500.00", "workingQuantity": "0.1", "workingTimeInForce": "GTC",
        "pendingType": "LIMIT", "pendingSide": "SELL", "pendingPrice": "31000.00",
        "pendingQuantity": "0.1", "pendingTimeInForce": "GTC",
        "newOrderRespType": "RESULT"});
    let list = ok(&post(&alice, "/api/v3/orderList/oto", &oto).await).clone();
    let list_id = list["orderListId"].as_u64().unwrap();
    assert_eq!(list["contingencyType"], "OTO");
    let (working, pending) = (&list["orderReports"][0], &list["orderReports"][1]);
    assert_eq!(
        (&working["status"], &pending["status"]),
        (&json!("NEW"), &json!("PENDING_NEW"))
    );
    assert_eq!(pending["workingTime"], -1);
    let pending_id = id_of(pending);
    let seen = until(&mut stream, list_status(list_id, "EXEC_STARTED")).await;
    assert!(
        seen.iter().any(report(pending_id, "NEW", "PENDING_NEW")),
        "{seen:#?}"
    );
    common::order_with_status(&alice, BTCEUR, pending_id, "PENDING_NEW").await;
    // Bob sells to the working order: the pending one goes on the book.
    let take = with(
        common::limit("SELL", "0.1", "29500.00"),
        json!({"timeInForce": "IOC"}),
    );
    ok(&bob.place(&take).await.unwrap());
    let seen = until(&mut stream, list_status(list_id, "ALL_DONE")).await;
    assert!(
        seen.iter().any(report(pending_id, "NEW", "NEW")),
        "released: {seen:#?}"
    );
    let q = common::order_with_status(&alice, BTCEUR, pending_id, "NEW").await;
    assert_eq!(
        (&q["isWorking"], &q["orderListId"]),
        (&json!(true), &json!(list_id))
    );
    let asks = ex
        .public()
        .get("/api/v3/depth", "symbol=BTCEUR")
        .await
        .unwrap();
    assert_eq!(asks.body["asks"], json!([["31000.00", "0.10000000"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_info_lists_what_each_pair_takes() {
    let ex = common::start_with(|c| {
        c.pairs[1].advanced = proto::AdvancedOrders {
            conditional: false,
            trailing: false,
            iceberg: false,
            lists: false,
            good_till_date: false,
        };
    })
    .await;
    let info = ex.public().get("/api/v3/exchangeInfo", "").await.unwrap();
    let symbol = |name: &str| {
        info.body["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["symbol"] == name)
            .unwrap()
            .clone()
    };
    let all = symbol(BTCEUR);
    assert_eq!(all["orderTypes"].as_array().unwrap().len(), 7);
    for flag in [
        "icebergAllowed",
        "ocoAllowed",
        "otoAllowed",
        "allowTrailingStop",
    ] {
        assert_eq!(all[flag], true, "{flag}");
    }
    let filters: Vec<&Value> = all["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["filterType"])
        .collect();
    assert!(
        filters.contains(&&json!("ICEBERG_PARTS")) && filters.contains(&&json!("TRAILING_DELTA"))
    );
    let none = symbol(ETHEUR);
    assert_eq!(
        none["orderTypes"],
        json!(["LIMIT", "LIMIT_MAKER", "MARKET"])
    );
    assert_eq!(
        (&none["ocoAllowed"], &none["icebergAllowed"]),
        (&json!(false), &json!(false))
    );
}

/// The code (and, when given, the message) of each bad request.
async fn refused(c: &Client, path: &str, cases: &[(Value, i64, &str)]) {
    for (params, code, msg) in cases {
        let a = post(c, path, params).await;
        assert_eq!(a.code(), Some(*code), "{params}: {:#}", a.body);
        assert!(a.status.is_client_error(), "{params}: {:?}", a.status);
        if !msg.is_empty() {
            assert_eq!(a.body["msg"], *msg, "{params}");
        }
    }
}

fn order(order_type: &str, fields: Value) -> Value {
    with(
        json!({"symbol": BTCEUR, "side": "SELL", "type": order_type, "quantity": "0.1"}),
        fields,
    )
}

/// Bad stop and trailing parameters of a new order, with Binance's code
/// and message (empty: any message).
fn stop_cases() -> Vec<(Value, i64, &'static str)> {
    let stop = |fields| order("STOP_LOSS", fields);
    let stop_limit = |fields| order("STOP_LOSS_LIMIT", fields);
    vec![
        // Missing.
        (
            stop(json!({})),
            -1102,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        ),
        (
            stop_limit(json!({"stopPrice": "29000", "price": "28900"})),
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            stop_limit(json!({"stopPrice": "29000", "timeInForce": "GTC"})),
            -1102,
            "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
        ),
        (
            json!({"symbol": BTCEUR, "side": "SELL", "type": "STOP_LOSS", "stopPrice": "29000"}),
            -1102,
            "",
        ),
        // Malformed.
        (stop(json!({"stopPrice": "abc"})), -1100, ""),
        (stop(json!({"stopPrice": "29000.001"})), -1111, ""),
        (stop(json!({"stopPrice": "-1"})), -1112, ""),
        (stop(json!({"trailingDelta": "1.5"})), -1100, ""),
        (stop(json!({"trailingDelta": "-100"})), -1100, ""),
        (stop(json!({"trailingDelta": "abc"})), -1100, ""),
    ]
}

/// Stop and trailing parameters out of range or in a wrong combination.
fn stop_combination_cases() -> Vec<(Value, i64, &'static str)> {
    let stop = |fields| order("STOP_LOSS", fields);
    let stop_limit = |fields| order("STOP_LOSS_LIMIT", fields);
    vec![
        // Out of range.
        (
            stop(json!({"stopPrice": "99999999"})),
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            stop(json!({"trailingDelta": 9})),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            stop(json!({"trailingDelta": 2001})),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            stop(json!({"trailingDelta": "99999999999999999999"})),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            stop_limit(
                json!({"stopPrice": "29000", "price": "0.01", "timeInForce": "GTC", "quantity": "0.001"}),
            ),
            -1013,
            "Filter failure: NOTIONAL",
        ),
        // Wrong combinations.
        (
            stop(json!({"stopPrice": "29000", "price": "28900"})),
            -1106,
            "Parameter 'price' sent when not required.",
        ),
        (
            stop(json!({"stopPrice": "29000", "timeInForce": "GTC"})),
            -1106,
            "Parameter 'timeInForce' sent when not required.",
        ),
        (
            stop(json!({"stopPrice": "29000", "icebergQty": "0.01"})),
            -1106,
            "Parameter 'icebergQty' sent when not required.",
        ),
        (
            stop(json!({"stopPrice": "29000", "quoteOrderQty": "100", "quantity": null})),
            -1106,
            "Parameter 'quoteOrderQty' sent when not required.",
        ),
        (
            order(
                "LIMIT",
                json!({"price": "1", "timeInForce": "GTC", "stopPrice": "1"}),
            ),
            -1106,
            "Parameter 'stopPrice' sent when not required.",
        ),
        (
            order("MARKET", json!({"trailingDelta": 100})),
            -1106,
            "Parameter 'trailingDelta' sent when not required.",
        ),
        (
            order("LIMIT_MAKER", json!({"price": "1", "stopPrice": "1"})),
            -1106,
            "",
        ),
        (
            order("STOP", json!({"stopPrice": "1"})),
            -1116,
            "Invalid orderType.",
        ),
        (
            stop(json!({"stopPrice": "29000", "strategyId": 1})),
            -1106,
            "Parameter 'strategyId' sent when not required.",
        ),
        // The stop already met by the last trade (30000).
        (
            stop(json!({"stopPrice": "31000"})),
            -2010,
            "Order would trigger immediately.",
        ),
        (
            order("TAKE_PROFIT", json!({"stopPrice": "29000"})),
            -2010,
            "Order would trigger immediately.",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stop_and_trailing_parameters_get_binances_codes() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    trade_at(&ex, "30000.00").await;
    let stop = |fields| order("STOP_LOSS", fields);
    refused(&alice, "/api/v3/order", &stop_cases()).await;
    refused(&alice, "/api/v3/order", &stop_combination_cases()).await;
    // order/test checks the same.
    let a = post(
        &alice,
        "/api/v3/order/test",
        &stop(json!({"trailingDelta": 5})),
    )
    .await;
    assert_eq!(a.code(), Some(-1013));
    assert_eq!(
        ok(&post(
            &alice,
            "/api/v3/order/test",
            &stop(json!({"stopPrice": "29000"}))
        )
        .await),
        &json!({})
    );
    assert!(
        common::open_orders(&alice, BTCEUR).await.is_empty(),
        "nothing was placed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_iceberg_and_gtd_parameters_get_binances_codes() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let limit = |fields| {
        order(
            "LIMIT",
            with(
                json!({"price": "30000", "timeInForce": "GTC", "quantity": "1"}),
                fields,
            ),
        )
    };
    let soon = common::now_ms() + 60_000;
    let cases = [
        (limit(json!({"icebergQty": "abc"})), -1100, ""),
        (limit(json!({"icebergQty": "0.000000001"})), -1111, ""),
        (
            limit(json!({"icebergQty": "0.000005"})),
            -1013,
            "Filter failure: LOT_SIZE",
        ),
        (
            limit(json!({"icebergQty": "1"})),
            -2010,
            "IcebergQty exceeds QTY.",
        ),
        (
            limit(json!({"icebergQty": "2"})),
            -2010,
            "IcebergQty exceeds QTY.",
        ),
        (
            limit(json!({"icebergQty": "0.001"})),
            -1013,
            "Filter failure: ICEBERG_PARTS",
        ),
        (
            limit(json!({"icebergQty": "0.1", "timeInForce": "IOC"})),
            -2010,
            "Unsupported order combination",
        ),
        (
            order("MARKET", json!({"icebergQty": "0.01"})),
            -1106,
            "Parameter 'icebergQty' sent when not required.",
        ),
        (
            limit(json!({"timeInForce": "GTD"})),
            -1102,
            "Mandatory parameter 'goodTillDate' was not sent, was empty/null, or malformed.",
        ),
        (
            limit(json!({"goodTillDate": soon})),
            -1106,
            "Parameter 'goodTillDate' sent when not required.",
        ),
        (
            limit(json!({"timeInForce": "GTD", "goodTillDate": "tomorrow"})),
            -1100,
            "",
        ),
        (
            limit(json!({"timeInForce": "GTD", "goodTillDate": "1.5"})),
            -1100,
            "",
        ),
        (
            limit(json!({"timeInForce": "GTD", "goodTillDate": 1_000})),
            -2010,
            "",
        ),
        (
            limit(json!({"timeInForce": "GTD", "goodTillDate": "99999999999999999"})),
            -1130,
            "Data sent for parameter 'goodTillDate' is not valid.",
        ),
        (
            limit(json!({"timeInForce": "GTX"})),
            -1116,
            "Invalid timeInForce.",
        ),
        (
            order(
                "MARKET",
                json!({"timeInForce": "GTD", "goodTillDate": soon}),
            ),
            -1106,
            "Parameter 'timeInForce' sent when not required.",
        ),
    ];
    refused(&alice, "/api/v3/order", &cases).await;
    assert!(
        common::open_orders(&alice, BTCEUR).await.is_empty(),
        "nothing was placed"
    );
}

/// Bad OCO parameters, after a trade at 30000, with Binance's code and
/// message (empty: any message).
fn oco_cases() -> Vec<(Value, i64, &'static str)> {
    let oco = |fields| with(sell_oco("0.1"), fields);
    let buy = json!({"side": "BUY", "aboveType": "STOP_LOSS", "aboveStopPrice": "31000",
        "belowType": "LIMIT_MAKER", "belowPrice": "29000", "belowStopPrice": null,
        "belowTimeInForce": null});
    vec![
        (
            oco(json!({"aboveType": null})),
            -1102,
            "Mandatory parameter 'aboveType' was not sent, was empty/null, or malformed.",
        ),
        (oco(json!({"quantity": null})), -1102, ""),
        (
            oco(json!({"aboveType": "LIMIT"})),
            -1158,
            "Order type not supported in OCO.",
        ),
        (oco(json!({"belowType": "MARKET"})), -1158, ""),
        (
            oco(json!({"aboveType": "WHATEVER"})),
            -1116,
            "Invalid aboveType.",
        ),
        (
            oco(json!({"aboveType": "STOP_LOSS", "aboveStopPrice": "29500", "abovePrice": null})),
            -1197,
            "A stop loss order in a sell OCO must be below.",
        ),
        (
            oco(
                json!({"belowType": "LIMIT_MAKER", "belowPrice": "29000", "belowStopPrice": null, "belowTimeInForce": null}),
            ),
            -1168,
            "At least one OCO order must be contingent.",
        ),
        (
            oco(json!({"belowType": "TAKE_PROFIT", "belowPrice": null, "belowTimeInForce": null})),
            -1199,
            "A take profit order in a sell OCO must be above.",
        ),
        (
            with(
                oco(buy.clone()),
                json!({"aboveType": "LIMIT_MAKER", "abovePrice": "31000", "belowType": "STOP_LOSS", "belowStopPrice": "29000"}),
            ),
            -1165,
            "A limit order in a buy OCO must be below.",
        ),
        (
            with(
                oco(buy.clone()),
                json!({"belowType": "STOP_LOSS", "belowStopPrice": "29000"}),
            ),
            -1196,
            "A stop loss order in a buy OCO must be above.",
        ),
        (
            oco(json!({"belowTimeInForce": null})),
            -1102,
            "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            oco(json!({"belowStopPrice": null})),
            -1102,
            "Param 'belowStopPrice' or 'belowTrailingDelta' must be sent, but both were empty/null!",
        ),
        (
            oco(json!({"belowIcebergQty": "0.01", "belowTimeInForce": "IOC"})),
            -1160,
            "Parameter 'belowIcebergQty' is not supported if 'belowTimeInForce' is not GTC.",
        ),
        (
            oco(json!({"belowTrailingDelta": 3})),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (oco(json!({"abovePrice": "30000.001"})), -1111, ""),
        (
            oco(json!({"aboveTimeInForce": "GTC"})),
            -1106,
            "Parameter 'aboveTimeInForce' sent when not required.",
        ),
        (
            oco(json!({"belowStopPrice": "30500"})),
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (
            oco(json!({"aboveStrategyId": 1})),
            -1106,
            "Parameter 'aboveStrategyId' sent when not required.",
        ),
        (oco(json!({"listClientOrderId": "bad id!"})), -1100, ""),
        (oco(json!({"price": "1"})), -1104, ""),
        (oco(json!({"newOrderRespType": "ALL"})), -1116, ""),
    ]
}

/// Bad OTO parameters, with Binance's code and message.
fn oto_cases() -> Vec<(Value, i64, &'static str)> {
    let oto = json!({"symbol": BTCEUR, "workingType": "LIMIT", "workingSide": "BUY",
        "workingPrice": "29500", "workingQuantity": "0.1", "workingTimeInForce": "GTC",
        "pendingType": "STOP_LOSS", "pendingSide": "SELL", "pendingQuantity": "0.1",
        "pendingStopPrice": "29000"});
    let oto_with = |fields| with(oto.clone(), fields);
    vec![
        (
            oto_with(json!({"workingType": "MARKET"})),
            -1116,
            "Invalid workingType.",
        ),
        (
            oto_with(json!({"workingPrice": null})),
            -1102,
            "Mandatory parameter 'workingPrice' was not sent, was empty/null, or malformed.",
        ),
        (
            oto_with(json!({"workingTimeInForce": null})),
            -1102,
            "Mandatory parameter 'workingTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            oto_with(json!({"pendingStopPrice": null})),
            -1102,
            "Param 'pendingStopPrice' or 'pendingTrailingDelta' must be sent, but both were empty/null!",
        ),
        (
            oto_with(json!({"pendingPrice": "1"})),
            -1106,
            "Parameter 'pendingPrice' sent when not required.",
        ),
        (
            oto_with(
                json!({"pendingType": "LIMIT", "pendingStopPrice": null, "pendingPrice": "31000"}),
            ),
            -1102,
            "Mandatory parameter 'pendingTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            oto_with(json!({"pendingSide": "BOTH"})),
            -1116,
            "Invalid pendingSide.",
        ),
        (
            oto_with(json!({"workingIcebergQty": "0.1"})),
            -2010,
            "IcebergQty exceeds QTY.",
        ),
        (oto_with(json!({"pendingQuoteOrderQty": "10"})), -1104, ""),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lists_get_binances_codes() {
    let ex = common::start().await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    trade_at(&ex, "30000.00").await;
    let oco = |fields| with(sell_oco("0.1"), fields);
    refused(&alice, "/api/v3/orderList/oco", &oco_cases()).await;
    // A limit maker above that would take the bid at 30500.
    ok(&bob
        .place(&common::limit("BUY", "0.1", "30500.00"))
        .await
        .unwrap());
    let crossing = oco(json!({"abovePrice": "30400"}));
    let a = post(&alice, "/api/v3/orderList/oco", &crossing).await;
    assert_eq!(
        (a.code(), &a.body["msg"]),
        (
            Some(-2010),
            &json!("Order would immediately match and take.")
        )
    );
    refused(&alice, "/api/v3/orderList/oto", &oto_cases()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_queries_and_cancels_get_binances_codes() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let queries = [
        ("/api/v3/orderList", "", -1102),
        ("/api/v3/orderList", "orderListId=abc", -1100),
        ("/api/v3/orderList", "orderListId=99999", -2013),
        ("/api/v3/allOrderList", "fromId=1&startTime=1", -1128),
        (
            "/api/v3/allOrderList",
            "startTime=1&endTime=90000000",
            -1128,
        ),
        ("/api/v3/allOrderList", "limit=0", -1120),
        ("/api/v3/allOrderList", "limit=1001", -1120),
        ("/api/v3/openOrderList", "symbol=BTCEUR", -1104),
    ];
    for (path, q, code) in queries {
        assert_eq!(get(&alice, path, q).await.code(), Some(code), "{path}?{q}");
    }
    let cancels = [
        ("", -1102),
        ("symbol=BTCEUR", -1102),
        ("symbol=BTCEUR&orderListId=99999", -2011),
        ("symbol=BTCEUR&listClientOrderId=nope", -2011),
        ("symbol=NOPE&orderListId=1", -1121),
    ];
    for (q, code) in cancels {
        assert_eq!(
            delete(&alice, "/api/v3/orderList", q).await.code(),
            Some(code),
            "{q}"
        );
    }
    assert_eq!(
        ok(&get(&alice, "/api/v3/openOrderList", "").await),
        &json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_refuses_the_types_it_does_not_take_by_name() {
    let ex = common::start_with(|c| {
        let none = proto::AdvancedOrders {
            conditional: false,
            trailing: false,
            iceberg: false,
            lists: false,
            good_till_date: false,
        };
        c.pairs[1].advanced = none;
        c.pairs[2].advanced = proto::AdvancedOrders {
            trailing: false,
            ..proto::AdvancedOrders::ALL
        };
    })
    .await;
    let alice = ex.user("alice").await;
    let on = |symbol: &str, order_type: &str, fields: Value| {
        with(
            json!({"symbol": symbol, "side": "SELL", "type": order_type, "quantity": "1"}),
            fields,
        )
    };
    let cases = [
        (
            on(ETHEUR, "STOP_LOSS", json!({"stopPrice": "100"})),
            -2010,
            "Stop loss orders are not supported for this symbol.",
        ),
        (
            on(
                ETHEUR,
                "TAKE_PROFIT_LIMIT",
                json!({"stopPrice": "100", "price": "100", "timeInForce": "GTC"}),
            ),
            -2010,
            "Take profit limit orders are not supported for this symbol.",
        ),
        (
            on(
                ETHEUR,
                "LIMIT",
                json!({"price": "100", "timeInForce": "GTC", "icebergQty": "0.1"}),
            ),
            -2010,
            "Iceberg orders are not supported for this symbol.",
        ),
        (
            on(
                ETHEUR,
                "LIMIT",
                json!({"price": "100", "timeInForce": "GTD", "goodTillDate": common::now_ms() + 60_000}),
            ),
            -2010,
            "GTD orders are not supported for this symbol.",
        ),
        (
            on(ETHBTC, "STOP_LOSS", json!({"trailingDelta": 100})),
            -2010,
            "Trailing stop orders are not supported for this symbol.",
        ),
    ];
    refused(&alice, "/api/v3/order", &cases).await;
    let oco = with(sell_oco("1"), json!({"symbol": ETHEUR}));
    let a = post(&alice, "/api/v3/orderList/oco", &oco).await;
    assert_eq!(
        (a.code(), &a.body["msg"]),
        (
            Some(-2010),
            &json!("OCO orders are not supported for this symbol.")
        )
    );
    // ETH-BTC takes stops by price.
    let stop = on(ETHBTC, "STOP_LOSS", json!({"stopPrice": "0.05"}));
    ok(&alice.place(&stop).await.unwrap());
}

/// The WebSocket API's twins of the new requests: `order.place` with the
/// new parameters, `orderList.place.oco` and `.oto`, `orderList.status`,
/// `openOrderLists.status`, `allOrderLists`, `orderList.cancel`; a logged-on
/// session's user data carries the list statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_api_places_queries_and_cancels_lists() {
    use common::wsapi::WsApi;
    let ex = common::start().await;
    let alice = ex.credentials("alice").await;
    trade_at(&ex, "30000.00").await;
    let mut api = WsApi::connect(&ex).await;
    let logon = api.signed("session.logon", json!({}), &alice).await;
    assert_eq!(logon["status"], 200, "{logon}");
    let sub = api.call("userDataStream.subscribe", json!({})).await;
    assert_eq!(sub["status"], 200, "{sub}");
    // A logged-on session's requests carry their timestamp only.
    let ts = |v: Value| with(v, json!({"timestamp": common::now_ms()}));
    let stop = json!({"symbol": BTCEUR, "side": "SELL", "type": "STOP_LOSS_LIMIT",
        "timeInForce": "GTC", "quantity": "0.1", "price": "28900.00", "stopPrice": "29000.00",
        "icebergQty": "0.01", "newOrderRespType": "RESULT"});
    let placed = api.call("order.place", ts(stop)).await;
    let result = &placed["result"];
    assert_eq!(
        (&placed["status"], &result["stopPrice"]),
        (&json!(200), &json!("29000.00")),
        "{placed}"
    );
    assert_eq!(
        (&result["icebergQty"], &result["workingTime"]),
        (&json!("0.01000000"), &json!(-1))
    );
    let refused = api
        .call(
            "order.place",
            ts(order("STOP_LOSS", json!({"trailingDelta": 1}))),
        )
        .await;
    assert_eq!(
        (&refused["status"], &refused["error"]["code"]),
        (&json!(400), &json!(-1013)),
        "{refused}"
    );
    let oco = api.call("orderList.place.oco", ts(sell_oco("0.1"))).await;
    assert_eq!(oco["status"], 200, "{oco}");
    let list_id = oco["result"]["orderListId"].as_u64().unwrap();
    let status = api
        .call("orderList.status", ts(json!({"orderListId": list_id})))
        .await;
    assert_eq!(status["result"]["listOrderStatus"], "EXECUTING", "{status}");
    let open = api.call("openOrderLists.status", ts(json!({}))).await;
    assert_eq!(open["result"].as_array().map(Vec::len), Some(1), "{open}");
    let oto = json!({"symbol": BTCEUR, "workingType": "LIMIT_MAKER", "workingSide": "BUY",
        "workingPrice": "29500.00", "workingQuantity": "0.1", "pendingType": "TAKE_PROFIT",
        "pendingSide": "SELL", "pendingQuantity": "0.1", "pendingStopPrice": "31000.00"});
    let oto = api.call("orderList.place.oto", ts(oto)).await;
    assert_eq!(
        oto["result"]["orderReports"][1]["status"], "PENDING_NEW",
        "{oto}"
    );
    let all = api.call("allOrderLists", ts(json!({"limit": 10}))).await;
    assert_eq!(all["result"].as_array().map(Vec::len), Some(2), "{all}");
    let canceled = api
        .call(
            "orderList.cancel",
            ts(json!({"symbol": BTCEUR, "orderListId": list_id})),
        )
        .await;
    assert_eq!(
        canceled["result"]["listStatusType"], "ALL_DONE",
        "{canceled}"
    );
    let unknown = api
        .call(
            "orderList.cancel",
            ts(json!({"symbol": BTCEUR, "orderListId": list_id})),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -2011, "{unknown}");
    // The subscription saw the lists placed and the first one end.
    let mut statuses = Vec::new();
    let mut seen = std::mem::take(&mut api.seen).into_iter();
    while statuses.len() < 3 {
        let v = match seen.next() {
            Some(v) => v,
            None => api.next().await,
        };
        if v["event"]["e"] == "listStatus" {
            statuses.push((v["event"]["g"].clone(), v["event"]["l"].clone()));
        }
    }
    assert!(
        statuses.contains(&(json!(list_id), json!("ALL_DONE"))),
        "{statuses:?}"
    );
}

/// With accounts on, the new orders pass the risk stage: a funded stop and
/// OCO are placed and hold the seller's base, an unfunded one is refused,
/// and canceling gives the hold back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_accounts_the_new_orders_hold_and_release_funds() {
    let ex = common::start_with(|c| {
        c.accounts.enabled = true;
        c.accounts.demo_funding.clear();
    })
    .await;
    let ops = common::Admin::of(&ex, "ops").await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let funded = ops
        .post(
            "/admin/v1/deposit",
            &json!({"user": "alice", "asset": "BTC", "amount": "1", "ref": "a"}),
        )
        .await;
    assert!(funded.status.is_success(), "{:?}", funded.body);
    let locked = |c: &Client| {
        let c = c.clone();
        async move {
            let account = get(&c, "/api/v3/account", "").await;
            let balances = ok(&account)["balances"].as_array().unwrap().clone();
            let btc = balances
                .iter()
                .find(|b| b["asset"] == "BTC")
                .cloned()
                .unwrap();
            btc["locked"].as_str().unwrap().to_string()
        }
    };
    let stop = order(
        "STOP_LOSS_LIMIT",
        json!({"stopPrice": "29000", "price": "28900",
        "timeInForce": "GTC", "quantity": "0.3"}),
    );
    let stop_id = id_of(ok(&alice.place(&stop).await.unwrap()));
    let oco = ok(&post(&alice, "/api/v3/orderList/oco", &sell_oco("0.2")).await).clone();
    let list_id = oco["orderListId"].as_u64().unwrap();
    common::eventually(|| async { (locked(&alice).await == "0.50000000").then_some(()) }).await;
    let unfunded = post(&bob, "/api/v3/orderList/oco", &sell_oco("0.2")).await;
    assert_eq!(unfunded.code(), Some(-2010), "{:?}", unfunded.body);
    let q = format!("symbol={BTCEUR}&orderId={stop_id}");
    ok(&delete(&alice, "/api/v3/order", &q).await);
    let q = format!("symbol={BTCEUR}&orderListId={list_id}");
    ok(&delete(&alice, "/api/v3/orderList", &q).await);
    common::eventually(|| async { (locked(&alice).await == "0.00000000").then_some(()) }).await;
}
