//! A pair listed at runtime on the embedded exchange, through the admin API
//! (`POST /admin/v1/pairs`, the config file's `[[pairs]]` table as JSON):
//! under load on another pair, with no request failing; it trades at once,
//! with its new asset deposited and settled; HALT refuses its new orders
//! with Binance's answer and takes cancels; a tick change holds at once;
//! a restart lists it again with its book, rules, status and balances; and
//! a listing the exchange cannot take (bad values, boundaries, wrong types,
//! a trading key) changes nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use client::{Answer, Client, Method, StatusCode};
use common::money::{balance, balances};
use common::{Admin, limit, limit_on};
use serde_json::{Value, json};

const SOLEUR: &str = "SOLEUR";

/// SOL-EUR: prices at 2 decimals, quantities at 4 (EUR counts at 10
/// decimals already, for BTC-EUR: this pair fits in it).
fn sol_eur() -> Value {
    json!({
        "symbol": "SOL-EUR", "price_scale": 2, "qty_scale": 4,
        "tick_size": "0.01", "lot_size": "0.0001", "min_qty": "0.0001",
        "max_qty": "100000", "min_notional": "1",
        "maker_fee_bps": 5, "taker_fee_bps": 10,
    })
}

async fn symbols(c: &Client) -> Vec<Value> {
    let a = c.get("/api/v3/exchangeInfo", "").await.unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["symbols"].as_array().unwrap().clone()
}

async fn sol_info(c: &Client) -> Value {
    let all = symbols(c).await;
    let sol = all.iter().find(|s| s["symbol"] == SOLEUR);
    sol.cloned()
        .unwrap_or_else(|| panic!("SOLEUR is not listed: {all:?}"))
}

fn id(a: &Answer) -> u64 {
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["orderId"].as_u64().unwrap()
}

async fn deposit(ops: &Admin, user: &str, asset: &str, amount: &str) {
    let reference = format!("{user}-{asset}");
    let body = json!({"user": user, "asset": asset, "amount": amount, "ref": reference});
    let a = ops.post("/admin/v1/deposit", &body).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

/// Orders placed and canceled on BTC-EUR until `stop`; counts those that
/// failed.
fn load(c: Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    let failed = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let placed = c.place(&limit("BUY", "0.1", "90.00")).await.unwrap();
            sent += 1;
            if placed.status != StatusCode::OK {
                failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let q = format!("symbol=BTCEUR&orderId={}", id(&placed));
            let canceled = c.signed(Method::DELETE, "/api/v3/order", &q, None).await;
            if canceled.map_or(true, |a| a.status != StatusCode::OK) {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        (sent, failed.load(Ordering::Relaxed))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_listed_under_load_trades_at_once_and_is_listed_again_after_a_restart() {
    let ex = common::start_with(|c| c.accounts.enabled = true).await;
    let ops = Admin::of(&ex, "ops").await;
    let public = ex.public();
    let (alice_creds, bob_creds) = (ex.credentials("alice").await, ex.credentials("bob").await);
    let carol = ex.user("carol").await;
    for user in ["alice", "carol"] {
        deposit(&ops, user, "EUR", "10000").await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(carol, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let a = ops.post("/admin/v1/pairs", &sol_eur()).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(
        (&a.body["symbol"], &a.body["status"]),
        (&json!(SOLEUR), &json!("TRADING"))
    );
    assert_eq!(sol_info(&public).await["status"], "TRADING");

    // Its new asset takes deposits at once; a trade settles with fees.
    deposit(&ops, "bob", "SOL", "10").await;
    let alice = Client::new(&ex.url, Some(alice_creds.clone()));
    let bob = Client::new(&ex.url, Some(bob_creds.clone()));
    id(&bob
        .place(&limit_on(SOLEUR, "SELL", "1", "20.00"))
        .await
        .unwrap());
    let buy = alice
        .place(&limit_on(SOLEUR, "BUY", "1", "20.00"))
        .await
        .unwrap();
    assert_eq!(buy.body["status"], "FILLED", "{:?}", buy.body);
    let mine = balances(&alice).await;
    assert_eq!(balance(&mine, "SOL", 4), (10_000, 0));
    // 10,000 EUR less 20 and the taker's 10 bps of it, at 10 decimals.
    assert_eq!(balance(&mine, "EUR", 10).0, 99_799_800_000_000);

    closed_market_and_new_tick(&ops, &alice, &bob).await;
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = loader.await.unwrap();
    assert!(
        sent > 0 && failed == 0,
        "{failed} of {sent} load requests failed"
    );
    let audit = ops
        .signed(Method::GET, "/admin/v1/audit", "", None)
        .await
        .unwrap();
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);

    // A restart lists it again, as it was.
    let before = (
        sol_info(&public).await,
        common::open_orders(&bob, SOLEUR).await,
        balances(&alice).await,
    );
    let config = ex.config.clone();
    ex.running.shutdown().await;
    let running = exchange::start(&config).await.unwrap();
    let url = format!("http://{}", running.addr);
    let (alice, bob) = (
        Client::new(&url, Some(alice_creds)),
        Client::new(&url, Some(bob_creds)),
    );
    let after = (
        sol_info(&Client::new(&url, None)).await,
        common::open_orders(&bob, SOLEUR).await,
        balances(&alice).await,
    );
    assert_eq!(after, before);
    let buy = alice
        .place(&limit_on(SOLEUR, "BUY", "0.5", "21.00"))
        .await
        .unwrap();
    assert_eq!(buy.body["status"], "FILLED", "{:?}", buy.body);
    running.shutdown().await;
}

/// HALT: new orders refused as Binance does, cancels taken; then TRADING
/// and a coarser tick, which new orders meet at once. Leaves one order of
/// bob's on the book.
async fn closed_market_and_new_tick(ops: &Admin, alice: &Client, bob: &Client) {
    let resting = id(&bob
        .place(&limit_on(SOLEUR, "SELL", "1", "25.00"))
        .await
        .unwrap());
    let kept = id(&bob
        .place(&limit_on(SOLEUR, "SELL", "1", "21.00"))
        .await
        .unwrap());
    let status = |s: &str| json!({"symbol": SOLEUR, "status": s});
    let a = ops.post("/admin/v1/pairs/status", &status("HALT")).await;
    assert_eq!(a.body["status"], "HALT", "{:?}", a.body);
    let refused = alice
        .place(&limit_on(SOLEUR, "BUY", "1", "20.00"))
        .await
        .unwrap();
    assert_eq!(refused.code(), Some(-2010), "{:?}", refused.body);
    assert_eq!(refused.body["msg"], "Market is closed.");
    let q = format!("symbol={SOLEUR}&orderId={resting}");
    let canceled = bob
        .signed(Method::DELETE, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(canceled.status, StatusCode::OK, "{:?}", canceled.body);
    let a = ops.post("/admin/v1/pairs/status", &status("TRADING")).await;
    assert_eq!(a.body["status"], "TRADING", "{:?}", a.body);
    let rules = json!({"symbol": SOLEUR, "tickSize": "0.05"});
    let a = ops.post("/admin/v1/pairs/rules", &rules).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let off_tick = alice
        .place(&limit_on(SOLEUR, "BUY", "1", "20.01"))
        .await
        .unwrap();
    assert_eq!(off_tick.code(), Some(-1013), "{:?}", off_tick.body);
    let open = common::open_orders(bob, SOLEUR).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["orderId"], kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_accounts_a_listed_pair_streams_its_depth_and_survives_a_restart() {
    let ex = common::start().await;
    let ops = Admin::of(&ex, "ops").await;
    let a = ops.post("/admin/v1/pairs", &sol_eur()).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let public = ex.public();
    let mut ws = common::streams::open(&format!("{}/ws/soleur@depth", public.ws_url())).await;
    let alice = ex.user("alice").await;
    id(&alice
        .place(&limit_on(SOLEUR, "BUY", "2", "19.50"))
        .await
        .unwrap());
    let diff = common::streams::next_json(&mut ws, Duration::from_secs(5)).await;
    let diff = diff.expect("a depth message of the listed pair");
    assert_eq!(
        (&diff["s"], &diff["b"]),
        (&json!(SOLEUR), &json!([["19.50", "2.0000"]]))
    );
    // The OpenAPI document names it among the symbols.
    let doc = public.get("/api/openapi.json", "").await.unwrap();
    assert!(doc.body.to_string().contains(SOLEUR));

    let config = ex.config.clone();
    ex.running.shutdown().await;
    let running = exchange::start(&config).await.unwrap();
    let url = format!("http://{}", running.addr);
    let depth = Client::new(&url, None)
        .get("/api/v3/depth", &format!("symbol={SOLEUR}"))
        .await
        .unwrap();
    assert_eq!(
        depth.body["bids"],
        json!([["19.50", "2.0000"]]),
        "{:?}",
        depth.body
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_the_exchange_cannot_take_changes_nothing() {
    let ex = common::start_with(|c| c.accounts.enabled = true).await;
    let ops = Admin::of(&ex, "ops").await;
    let public = ex.public();
    let before = symbols(&public).await;
    let with = |changes: Value| {
        let mut spec = sol_eur();
        for (k, v) in changes.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    for (spec, code) in [
        // EUR counts at 10 decimals; 4 + 8 would rescale every balance.
        (with(json!({"price_scale": 4, "qty_scale": 8})), -1055),
        (with(json!({"symbol": "BTC-EUR"})), -1056),
        // One name once the dash is dropped.
        (with(json!({"symbol": "BT-CEUR"})), -1056),
        (with(json!({"symbol": "SOLEUR"})), -1100),
        (with(json!({"tick_size": "0.001"})), -1111),
        (with(json!({"tick_size": "abc"})), -1100),
        (
            with(json!({"lot_size": "0.0002", "min_qty": "0.0003"})),
            -1055,
        ),
        (with(json!({"maker_fee_bps": 20})), -1055),
        (with(json!({"default_stp": "SOMETIMES"})), -1116),
        // Boundaries: scales past 18, zero and overflowing amounts, fee
        // rates past 10,000 bps, no room for any order.
        (with(json!({"price_scale": 19})), -1055),
        (with(json!({"qty_scale": 255})), -1055),
        (with(json!({"max_qty": "0"})), -1055),
        (with(json!({"min_notional": "99999999999999999999"})), -1112),
        (with(json!({"taker_fee_bps": 10_001})), -1055),
        (with(json!({"max_open_orders": 0})), -1055),
        (with(json!({"symbol": ""})), -1100),
    ] {
        let a = ops.post("/admin/v1/pairs", &spec).await;
        assert_eq!(a.code(), Some(code), "{spec}: {:?}", a.body);
    }
    for bad in [
        with(json!({"price_scale": "2"})),
        with(json!({"price_scale": -1})),
        with(json!({"qty_scale": 256})),
        with(json!({"maker_fee_bps": 65_536})),
        with(json!({"nope": 1})),
        with(json!({"advanced": {"nope": true}})),
        json!({"symbol": "SOL-EUR"}),
        json!([]),
    ] {
        let a = ops.post("/admin/v1/pairs", &bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", a.body);
        assert!(a.code().is_some_and(|c| c < 0), "{bad}: {:?}", a.body);
    }
    let trader = Client::admin(&ex.url, ex.credentials("alice").await);
    let a = trader
        .signed(Method::POST, "/admin/v1/pairs", "", Some(&sol_eur()))
        .await
        .unwrap();
    assert_eq!(a.code(), Some(-1050), "{:?}", a.body);
    assert_eq!(symbols(&public).await, before);
    assert!(ex.running.store.listed_pairs().await.unwrap().is_empty());

    // And a good one is listed once.
    let a = ops.post("/admin/v1/pairs", &sol_eur()).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let again = ops.post("/admin/v1/pairs", &sol_eur()).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, Some(-1056))
    );
    ex.running.shutdown().await;
}
