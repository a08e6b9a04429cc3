//! A pair's market status and rules changed at runtime through the admin
//! API, end to end on the embedded exchange: HALT takes cancels only, BREAK
//! nothing, TRADING all; a new tick applies to new orders at once (and to
//! `exchangeInfo`) while an order on the old tick stays; `order/test`
//! answers a closed market as an order would; order bodies show a new
//! default self-trade prevention mode; an invalid change changes nothing;
//! and a restart comes back with the same status and rules.

mod common;

use client::{Answer, Client, Method, StatusCode};
use common::{Admin, BTCEUR, limit};
use serde_json::{Value, json};

async fn set_status(ops: &Admin, status: &str) -> Answer {
    ops.post(
        "/admin/v1/pairs/status",
        &json!({"symbol": BTCEUR, "status": status}),
    )
    .await
}

async fn info(c: &Client) -> Value {
    let a = c
        .get("/api/v3/exchangeInfo", &format!("symbol={BTCEUR}"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["symbols"][0].clone()
}

fn tick_size(symbol: &Value) -> String {
    let filters = symbol["filters"].as_array().unwrap();
    let price = filters
        .iter()
        .find(|f| f["filterType"] == "PRICE_FILTER")
        .unwrap();
    price["tickSize"].as_str().unwrap().to_string()
}

fn assert_refused(a: &Answer, code: i64, msg: &str) {
    assert_eq!(a.code(), Some(code), "{:?}", a.body);
    assert_eq!(a.body["msg"], msg, "{:?}", a.body);
}

async fn place(c: &Client, side: &str, price: &str) -> Answer {
    c.place(&limit(side, "0.1", price)).await.unwrap()
}

async fn cancel(c: &Client, id: u64) -> Answer {
    let q = format!("symbol={BTCEUR}&orderId={id}");
    c.signed(Method::DELETE, "/api/v3/order", &q, None)
        .await
        .unwrap()
}

fn id(a: &Answer) -> u64 {
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["orderId"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_takes_cancels_only_break_nothing_and_trading_all() {
    let ex = common::start().await;
    let ops = Admin::of(&ex, "ops").await;
    let creds = ex.credentials("alice").await;
    let alice = Client::new(&ex.url, Some(creds.clone()));
    let kept = id(&place(&alice, "BUY", "100.01").await);
    let other = id(&place(&alice, "BUY", "100.00").await);

    // HALT: new orders refused with Binance's closed-market answer,
    // cancels taken.
    let a = set_status(&ops, "HALT").await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["status"], "HALT");
    assert_eq!(info(&ex.public()).await["status"], "HALT");
    assert_refused(
        &place(&alice, "BUY", "99.00").await,
        -2010,
        "Market is closed.",
    );
    assert_eq!(cancel(&alice, other).await.status, StatusCode::OK);
    // order/test (and WS order.test, the same handler) answers as an order
    // would.
    let test = alice
        .signed(
            Method::POST,
            "/api/v3/order/test",
            "",
            Some(&limit("BUY", "0.1", "99.00")),
        )
        .await
        .unwrap();
    assert_refused(&test, -2010, "Market is closed.");

    // BREAK: cancels refused too.
    assert_eq!(set_status(&ops, "BREAK").await.body["status"], "BREAK");
    assert_eq!(info(&ex.public()).await["status"], "BREAK");
    assert_refused(&cancel(&alice, kept).await, -2011, "Market is closed.");
    assert_refused(
        &place(&alice, "BUY", "99.00").await,
        -2010,
        "Market is closed.",
    );

    assert_eq!(set_status(&ops, "TRADING").await.body["status"], "TRADING");
    assert_eq!(info(&ex.public()).await["status"], "TRADING");
    id(&place(&alice, "BUY", "99.00").await);
    assert_eq!(cancel(&alice, kept).await.status, StatusCode::OK);
    ex.running.shutdown().await;
}

/// An advanced order type's flag changes alone: the others keep theirs.
async fn one_flag_changes_alone(ops: &Admin) {
    let a = ops
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": BTCEUR, "advanced": {"iceberg": false}}),
        )
        .await;
    let kept_flags = (&a.body["advanced"]["iceberg"], &a.body["advanced"]["lists"]);
    assert_eq!(kept_flags, (&json!(false), &json!(true)), "{:?}", a.body);
    assert_eq!(a.body["icebergAllowed"], false, "{:?}", a.body);
}

/// A new default self-trade prevention mode shows in the order bodies (and
/// the execution reports) at once, for `kept`, placed before it.
async fn stp_mode_shows_at_once(ops: &Admin, alice: &Client, kept: u64) {
    let a = ops
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": BTCEUR, "defaultSelfTradePreventionMode": "EXPIRE_BOTH"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let open = common::open_orders(alice, BTCEUR).await;
    assert!(
        open.iter()
            .any(|o| o["orderId"] == kept && o["selfTradePreventionMode"] == "EXPIRE_BOTH"),
        "{open:?}"
    );
    let q = format!("symbol={BTCEUR}&orderId={kept}");
    let one = alice
        .signed(Method::GET, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(
        one.body["selfTradePreventionMode"], "EXPIRE_BOTH",
        "{:?}",
        one.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rules_apply_at_once_keep_old_orders_and_survive_a_restart() {
    // With the risk stage, which sequences the change like any command.
    let ex = common::start_with(|c| c.accounts.enabled = true).await;
    let ops = Admin::of(&ex, "ops").await;
    let creds = ex.credentials("alice").await;
    let deposit = json!({"user": "alice", "asset": "EUR", "amount": "100000", "ref": "a"});
    let a = ops.post("/admin/v1/deposit", &deposit).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let alice = Client::new(&ex.url, Some(creds.clone()));
    let kept = id(&place(&alice, "BUY", "100.01").await);

    // A coarser tick.
    let a = ops
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": "BTC-EUR", "tickSize": "0.05"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    // The answer is the pair's exchangeInfo entry, with its name and its
    // advanced order types by flag.
    assert_eq!(
        (tick_size(&a.body).as_str(), a.body["status"].as_str()),
        ("0.05", Some("TRADING"))
    );
    assert_eq!(
        (&a.body["symbol"], &a.body["pair"]),
        (&json!(BTCEUR), &json!("BTC-EUR"))
    );
    assert_eq!(a.body["advanced"]["iceberg"], true, "{:?}", a.body);
    one_flag_changes_alone(&ops).await;
    let shown = info(&ex.public()).await;
    assert_eq!(
        (tick_size(&shown).as_str(), shown["status"].as_str()),
        ("0.05", Some("TRADING"))
    );
    // The old-tick order stays; a new-tick price is taken, an old-only one
    // refused by the price filter.
    let open = common::open_orders(&alice, BTCEUR).await;
    assert!(
        open.iter()
            .any(|o| o["orderId"] == kept && o["price"] == "100.01"),
        "{open:?}"
    );
    id(&place(&alice, "BUY", "100.05").await);
    assert_refused(
        &place(&alice, "BUY", "100.02").await,
        -1013,
        "Filter failure: PRICE_FILTER",
    );

    stp_mode_shows_at_once(&ops, &alice, kept).await;

    // An invalid change is refused and changes nothing.
    let a = ops
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": BTCEUR, "tickSize": "0"}),
        )
        .await;
    assert_eq!(a.code(), Some(-1055), "{:?}", a.body);
    assert_eq!(tick_size(&info(&ex.public()).await), "0.05");
    let a = ops
        .post(
            "/admin/v1/pairs/status",
            &json!({"symbol": BTCEUR, "status": "OPEN"}),
        )
        .await;
    assert_eq!(a.code(), Some(-1122), "{:?}", a.body);

    // A restart while halted comes back halted, with the new tick and the
    // old-tick order.
    assert_eq!(set_status(&ops, "HALT").await.body["status"], "HALT");
    let config = ex.config.clone();
    ex.running.shutdown().await;
    let running = exchange::start(&config).await.unwrap();
    let url = format!("http://{}", running.addr);
    let alice = Client::new(&url, Some(creds));
    let public = Client::new(&url, None);
    let shown = info(&public).await;
    assert_eq!(
        (tick_size(&shown).as_str(), shown["status"].as_str()),
        ("0.05", Some("HALT"))
    );
    assert_refused(
        &place(&alice, "BUY", "100.05").await,
        -2010,
        "Market is closed.",
    );
    let open = common::open_orders(&alice, BTCEUR).await;
    assert!(
        open.iter()
            .any(|o| o["orderId"] == kept && o["price"] == "100.01"),
        "{open:?}"
    );
    let k = running.store.create_admin_key("ops2", 1).await.unwrap();
    let ops = Admin::new(
        &url,
        client::Credentials {
            api_key: k.admin_key,
            secret: k.secret,
        },
    );
    assert_eq!(set_status(&ops, "TRADING").await.body["status"], "TRADING");
    id(&place(&alice, "BUY", "100.10").await);
    assert_refused(
        &place(&alice, "BUY", "100.02").await,
        -1013,
        "Filter failure: PRICE_FILTER",
    );
    running.shutdown().await;
}

/// The `matching_events_total` series that counted something (each
/// actor creates its series at zero when it starts): an operator's change
/// that reached the book would count a `pair_changed` or a `rejected`
/// event.
async fn event_counts(c: &Client) -> Vec<String> {
    let m = c.get("/metrics", "").await.unwrap();
    let text = m.body.as_str().unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("matching_events_total") && !l.ends_with(" 0"))
        .map(str::to_string)
        .collect()
}

/// Wrong types, out-of-range numbers, unknown fields and values: a 400
/// with a code, whatever the route.
async fn refuses_malformed(ops: &Admin) {
    for (route, body) in [
        ("rules", json!({"maxOpenOrders": "x"})),
        ("rules", json!({"maxOpenOrders": -1})),
        ("rules", json!({"maxOpenOrders": 4_294_967_296_u64})),
        ("rules", json!({"tickSize": 5})),
        ("rules", json!({"tickSize": "abc"})),
        ("rules", json!({"tickSize": "-0.05"})),
        ("rules", json!({"maxQty": "99999999999999999999"})),
        ("rules", json!({"tickSize": "0.05", "foo": 1})),
        ("rules", json!({"advanced": {"nope": true}})),
        ("rules", json!({"advanced": {"iceberg": "yes"}})),
        ("rules", json!({"makerFeeBps": "5"})),
        ("rules", json!({"makerFeeBps": -1})),
        ("rules", json!({"takerFeeBps": 65_536})),
        ("rules", json!({"takerFeeBps": 1.5})),
        ("rules", json!({"takerFeeBps": true})),
        ("rules", json!({"takerFeeBps": null, "makerFee": 1})),
        (
            "rules",
            json!({"defaultSelfTradePreventionMode": "SOMETIMES"}),
        ),
        ("status", json!({"status": 1})),
        ("status", json!({})),
        ("status", json!({"status": "HALT", "reason": "x"})),
    ] {
        let mut body = body;
        body["symbol"] = json!(BTCEUR);
        let a = ops.post(&format!("/admin/v1/pairs/{route}"), &body).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{route} {body}: {:?}",
            a.body
        );
        assert!(
            a.code().is_some_and(|c| c < 0),
            "{route} {body}: {:?}",
            a.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_refuse_what_they_can_check_before_anything_is_logged() {
    let ex = common::start().await;
    let ops = Admin::of(&ex, "ops").await;
    let public = ex.public();
    let before = (info(&public).await, event_counts(&public).await);

    // A trading key is no admin key.
    let trader = Client::admin(&ex.url, ex.credentials("alice").await);
    let a = trader
        .signed(
            Method::POST,
            "/admin/v1/pairs/status",
            "",
            Some(&json!({"symbol": BTCEUR, "status": "HALT"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, Some(-1050)),
        "{:?}",
        a.body
    );
    let rules = |body: Value| {
        let ops = &ops;
        async move { ops.post("/admin/v1/pairs/rules", &body).await }
    };
    let a = rules(json!({"symbol": "BTCUSD", "tickSize": "0.05"})).await;
    assert_eq!(a.code(), Some(-1121), "{:?}", a.body);
    let a = ops
        .post(
            "/admin/v1/pairs/status",
            &json!({"symbol": "BTCUSD", "status": "HALT"}),
        )
        .await;
    assert_eq!(a.code(), Some(-1121), "{:?}", a.body);
    let a = rules(json!({"symbol": BTCEUR, "tickSize": "0.001"})).await;
    assert_eq!(a.code(), Some(-1111), "{:?}", a.body);
    let a = rules(json!({"symbol": BTCEUR})).await;
    assert_refused(&a, -1102, "Name at least one rule to change.");
    let a = rules(json!({})).await;
    assert_eq!(a.code(), Some(-1102), "{:?}", a.body);

    // Rules that cannot work together: -1055 with what is wrong.
    for (body, says) in [
        (
            json!({"tickSize": "0"}),
            "tick_size must be greater than zero",
        ),
        (
            json!({"maxOpenOrders": 0}),
            "max_open_orders must be greater than zero",
        ),
        (
            json!({"minQty": "0.000015"}),
            "must be a positive multiple of lot_size",
        ),
        (json!({"minQty": "2000"}), "is below min_qty"),
        (
            json!({"minNotional": "200000000"}),
            "must be positive and at least min_notional",
        ),
        // The pair charges 10/10 bps: a maker rate above the taker rate,
        // either way round, and a taker rate above the whole value.
        (
            json!({"makerFeeBps": 21}),
            "maker_fee_bps 21 must be at most taker_fee_bps 10",
        ),
        (
            json!({"makerFeeBps": 30, "takerFeeBps": 25}),
            "maker_fee_bps 30 must be at most taker_fee_bps 25",
        ),
        (
            json!({"takerFeeBps": 5}),
            "maker_fee_bps 10 must be at most taker_fee_bps 5",
        ),
        (
            json!({"takerFeeBps": 10_001}),
            "taker_fee_bps at most 10000",
        ),
    ] {
        let mut body = body;
        body["symbol"] = json!(BTCEUR);
        let a = rules(body.clone()).await;
        assert_eq!(a.code(), Some(-1055), "{body}: {:?}", a.body);
        let msg = a.body["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(says) && msg.ends_with("Nothing changed."),
            "{body}: {msg}"
        );
    }

    refuses_malformed(&ops).await;

    // None of it reached the pair's log: its rules and its events are as
    // they were.
    let after = (info(&public).await, event_counts(&public).await);
    assert_eq!(after, before);
    // A valid change does reach it (so the count above could move).
    let a = rules(json!({"symbol": BTCEUR, "maxOpenOrders": 50})).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_ne!(event_counts(&public).await, before.1);
    ex.running.shutdown().await;
}

/// `user`'s free EUR, in units of 10^-10 EUR (the finest EUR unit here).
async fn free_eur(ops: &Admin, user: &str) -> i128 {
    let body = common::signed_get(ops, "/admin/v1/balances", &format!("user={user}")).await;
    let empty = Vec::new();
    let eur = body["balances"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .find(|b| b["asset"] == "EUR");
    units(eur.map_or("0", |b| b["free"].as_str().unwrap_or("0")))
}

/// A decimal EUR amount in units of 10^-10 EUR.
fn units(text: &str) -> i128 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = format!("{frac:0<10}");
    whole.parse::<i128>().unwrap() * 10_000_000_000 + frac[..10].parse::<i128>().unwrap()
}

/// The commission of each of `c`'s trades, oldest first, in units of
/// 10^-10 EUR.
async fn commissions(c: &Client) -> Vec<i128> {
    let body = common::signed_get(c, "/api/v3/myTrades", &format!("symbol={BTCEUR}")).await;
    let empty = Vec::new();
    let trades = body.as_array().unwrap_or(&empty);
    trades
        .iter()
        .map(|t| units(t["commission"].as_str().unwrap_or_default()))
        .collect()
}

/// The rates `order/test` says an order placed now is charged.
async fn quoted_rates(c: &Client) -> (String, String) {
    let mut order = limit("BUY", "0.1", "99.00");
    order["computeCommissionRates"] = json!("true");
    let a = c
        .signed(Method::POST, "/api/v3/order/test", "", Some(&order))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let rates = &a.body["standardCommissionForOrder"];
    (
        rates["maker"].as_str().unwrap_or_default().to_string(),
        rates["taker"].as_str().unwrap_or_default().to_string(),
    )
}

/// 0.1 BTC at 100.00 EUR: 10 EUR, in units of 10^-10 EUR.
const TEN_EUR: i128 = 100_000_000_000;

/// `bps` of 10 EUR, in units of 10^-10 EUR.
fn fee_of_ten_eur(bps: i128) -> i128 {
    TEN_EUR * bps / 10_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_change_charges_the_orders_placed_after_it_and_survives_a_restart() {
    let ex = common::start_with(|c| c.accounts.enabled = true).await;
    let ops = Admin::of(&ex, "ops").await;
    let (alice_creds, bob_creds) = (ex.credentials("alice").await, ex.credentials("bob").await);
    for (user, asset, amount) in [("alice", "EUR", "1000"), ("bob", "BTC", "1")] {
        let body = json!({"user": user, "asset": asset, "amount": amount, "ref": user});
        let a = ops.post("/admin/v1/deposit", &body).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    }
    let alice = Client::new(&ex.url, Some(alice_creds.clone()));
    let bob = Client::new(&ex.url, Some(bob_creds.clone()));
    assert_eq!(
        quoted_rates(&alice).await,
        ("0.00100000".into(), "0.00100000".into())
    );
    // Placed at 10/10 bps, resting through the change.
    id(&place(&bob, "SELL", "100.00").await);

    let a = ops
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": BTCEUR, "makerFeeBps": 0, "takerFeeBps": 50}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(
        (&a.body["makerFeeBps"], &a.body["takerFeeBps"]),
        (&json!(0), &json!(50))
    );
    assert_eq!(
        quoted_rates(&alice).await,
        ("0.00000000".into(), "0.00500000".into())
    );

    // Alice's buy takes at the new 50 bps; bob's sell keeps its 10 bps.
    let start = 1000 * 10_000_000_000;
    id(&place(&alice, "BUY", "100.00").await);
    common::eventually(|| async {
        (free_eur(&ops, "bob").await == TEN_EUR - fee_of_ten_eur(10)).then_some(())
    })
    .await;
    assert_eq!(
        free_eur(&ops, "alice").await,
        start - TEN_EUR - fee_of_ten_eur(50)
    );
    // Each side reports what it was charged: the rates its order was
    // accepted at.
    assert_eq!(commissions(&bob).await, [fee_of_ten_eur(10)]);
    assert_eq!(commissions(&alice).await, [fee_of_ten_eur(50)]);

    // A restart keeps the new rates; a sell placed now pays the new maker
    // rate, nothing.
    let ex = ex.restart().await;
    let (alice, bob) = (
        Client::new(&ex.url, Some(alice_creds)),
        Client::new(&ex.url, Some(bob_creds)),
    );
    assert_eq!(
        quoted_rates(&alice).await,
        ("0.00000000".into(), "0.00500000".into())
    );
    let ops = Admin::of(&ex, "ops2").await;
    id(&place(&bob, "SELL", "100.00").await);
    id(&place(&alice, "BUY", "100.00").await);
    common::eventually(|| async {
        (free_eur(&ops, "bob").await == 2 * TEN_EUR - fee_of_ten_eur(10)).then_some(())
    })
    .await;
    assert_eq!(
        free_eur(&ops, "alice").await,
        start - 2 * (TEN_EUR + fee_of_ten_eur(50))
    );
    assert_eq!(commissions(&bob).await, [fee_of_ten_eur(10), 0]);
    assert_eq!(
        commissions(&alice).await,
        [fee_of_ten_eur(50), fee_of_ten_eur(50)]
    );
    common::signed_get(&ops, "/admin/v1/audit", "").await;
    ex.running.shutdown().await;
}
