//! The accounts surfaces end to end: admin keys kept apart from trading
//! keys, the admin API's answers for every bad input, `GET /api/v3/account`,
//! commission in fills and trades, the user stream's account messages and
//! the operator commands. With `[accounts] enabled = false` these surfaces
//! answer -1051, which is tested too.

mod common;

use std::process::Command;
use std::time::Duration;

use client::{Answer, Client, Credentials, Method, StatusCode};
use common::Admin;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_exchange");

/// An exchange with accounts as asked; demo funding off unless a test sets it.
async fn start(accounts: bool) -> common::TestExchange {
    common::start_with(|c| {
        c.accounts.enabled = accounts;
        c.accounts.demo_funding.clear();
    })
    .await
}

/// A new admin key's client.
async fn admin(ex: &common::TestExchange) -> Admin {
    Admin::of(ex, "ops").await
}

/// A `POST` to the admin API, whose parameters are JSON.
async fn post(c: &Admin, path: &str, body: Value) -> Answer {
    c.post(path, &body).await
}

async fn get(c: &Client, path: &str, query: &str) -> Answer {
    c.signed(Method::GET, path, query, None).await.unwrap()
}

fn movement(user: &str, asset: &str, amount: &str, r: &str) -> Value {
    json!({"user": user, "asset": asset, "amount": amount, "ref": r})
}

fn assert_error(a: &Answer, status: StatusCode, code: i64) {
    assert_eq!((a.status, a.code()), (status, Some(code)), "{:?}", a.body);
    assert!(a.body["msg"].is_string(), "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_trading_keys_are_refused_on_each_others_routes() {
    let ex = start(false).await;
    let ops = admin(&ex).await;
    let alice = ex.user("alice").await;
    let alice_key = alice.api_key().unwrap().to_string();
    let ops_creds = {
        let k = ex.running.store.create_admin_key("ops2", 1).await.unwrap();
        Credentials {
            api_key: k.admin_key,
            secret: k.secret,
        }
    };
    // A trading key, signed correctly, in the admin header: unknown there.
    let trading_as_admin = Client::admin(
        &ex.url,
        Credentials {
            api_key: alice_key.clone(),
            secret: String::new(),
        },
    );
    let a = get(&trading_as_admin, "/admin/v1/audit", "").await;
    assert_error(&a, StatusCode::UNAUTHORIZED, -1050);
    // The trading client itself on an admin route: no admin header at all.
    let a = get(&alice, "/admin/v1/audit", "").await;
    assert_error(&a, StatusCode::UNAUTHORIZED, -2014);
    assert!(a.body["msg"].as_str().unwrap().contains("X-ADMIN-KEY"));
    // An admin key as a trading key: unknown to the trading API.
    let admin_as_trader = Client::new(&ex.url, Some(ops_creds.clone()));
    let a = get(&admin_as_trader, "/api/v3/openOrders", "").await;
    assert_error(&a, StatusCode::UNAUTHORIZED, -2015);
    let a = get(&admin_as_trader, "/api/v3/account", "").await;
    assert_error(&a, StatusCode::UNAUTHORIZED, -2015);
    // A bad signature with a real admin key.
    let forged = Admin::new(
        &ex.url,
        Credentials {
            api_key: ops_creds.api_key.clone(),
            secret: "not-the-secret".into(),
        },
    );
    let a = post(
        &forged,
        "/admin/v1/deposit",
        movement("alice", "EUR", "1", "r"),
    )
    .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, -1022);
    // The real admin key passes authentication; with accounts off the
    // answer says so.
    let a = get(&ops, "/admin/v1/audit", "").await;
    assert_error(&a, StatusCode::NOT_IMPLEMENTED, -1051);
    // A revoked admin key stops working.
    assert!(
        ex.running
            .store
            .revoke_admin_key(&ops_creds.api_key)
            .await
            .unwrap()
    );
    let revoked = Client::admin(&ex.url, ops_creds);
    common::eventually(|| async {
        (get(&revoked, "/admin/v1/audit", "").await.code() == Some(-1050)).then_some(())
    })
    .await;
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_accounts_disabled_every_accounts_surface_says_so() {
    let ex = start(false).await;
    let ops = admin(&ex).await;
    let alice = ex.user("alice").await;
    for path in ["/admin/v1/deposit", "/admin/v1/withdraw"] {
        let a = post(&ops, path, movement("alice", "EUR", "1", "r-1")).await;
        assert_error(&a, StatusCode::NOT_IMPLEMENTED, -1051);
    }
    let a = get(&ops, "/admin/v1/balances", "user=alice").await;
    assert_error(&a, StatusCode::NOT_IMPLEMENTED, -1051);
    let a = get(&alice, "/api/v3/account", "").await;
    assert_error(&a, StatusCode::NOT_IMPLEMENTED, -1051);
    // Unsigned: an authentication error first, never the account.
    let a = get(&ex.public(), "/api/v3/account", "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{:?}", a.body);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_accounts_disabled_fills_and_trades_carry_a_zero_commission() {
    let ex = start(false).await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let a = bob
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let a = alice
        .place(&common::limit("BUY", "0.2", "30100"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let fill = &a.body["fills"][0];
    assert_eq!(fill["commission"], "0", "{fill:?}");
    assert_eq!(fill["commissionAsset"], "EUR");
    let trades = common::eventually(|| async {
        let t = get(&alice, "/api/v3/myTrades", "symbol=BTCEUR").await;
        t.body.as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(trades[0]["commission"], "0");
    assert_eq!(trades[0]["commissionAsset"], "EUR");
    ex.running.shutdown().await;
}

/// `exchange accounts deposit|withdraw` post through
/// `client::Client::admin(..).signed`, which sends JSON (the admin API's
/// bodies) while trading clients send forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_commands_move_money() {
    let ex = start(true).await;
    ex.user("alice").await;
    let k = ex.running.store.create_admin_key("ops", 1).await.unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("accounts")
            .args(args)
            .args(["--url", &ex.url])
            .env("EXCHANGE_ADMIN_KEY", &k.admin_key)
            .env("EXCHANGE_ADMIN_SECRET", &k.secret)
            .env_remove("EXCHANGE_CONFIG")
            .env_remove("EXCHANGE_CONFIG_TOML")
            .output()
            .unwrap()
    };
    let out = run(&[
        "deposit", "--user", "alice", "--asset", "EUR", "--amount", "5", "--ref", "cli-1",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("5.0000000000"),
        "deposit: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["balances", "--user", "alice"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("5.0000000000"),
        "{stdout}"
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_audit_exits_non_zero_when_it_cannot_run() {
    let ex = start(false).await;
    let k = ex.running.store.create_admin_key("ops", 1).await.unwrap();
    let out = Command::new(BIN)
        .args(["audit", "--url", &ex.url])
        .env("EXCHANGE_ADMIN_KEY", &k.admin_key)
        .env("EXCHANGE_ADMIN_SECRET", &k.secret)
        .env_remove("EXCHANGE_CONFIG")
        .env_remove("EXCHANGE_CONFIG_TOML")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("-1051"), "{stdout}");
    // Without an admin key it does not even ask.
    let out = Command::new(BIN)
        .args(["audit", "--url", &ex.url])
        .env_remove("EXCHANGE_ADMIN_KEY")
        .env_remove("EXCHANGE_ADMIN_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin key"));
    // `admin-keys create` prints a key the API accepts.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["admin-keys", "create", "--name", "ops"])
        .env("EXCHANGE_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("admin key: ") && text.contains("secret:"),
        "{text}"
    );
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_admin_input_has_its_code() {
    let ex = start(true).await;
    let ops = admin(&ex).await;
    ex.user("alice").await;
    let dep = "/admin/v1/deposit";
    let cases = [
        (movement("alice", "EUR", "0", "z"), -1112),
        (movement("alice", "EUR", "-5", "n"), -1112),
        (movement("alice", "EUR", "1.00000000001", "d"), -1111),
        (movement("alice", "DOGE", "1", "a"), -1052),
        (movement("nobody", "EUR", "1", "u"), -1053),
        (movement("alice", "EUR", "abc", "x"), -1100),
        (movement("alice", "EUR", "1", ""), -1102),
    ];
    for (body, code) in cases {
        let a = post(&ops, dep, body.clone()).await;
        assert_error(&a, StatusCode::BAD_REQUEST, code);
    }
    let a = post(&ops, dep, json!({"user": "alice", "asset": "EUR"})).await;
    assert_error(&a, StatusCode::BAD_REQUEST, -1102);
    // A deposit, then the same reference again: a duplicate, same status.
    let first = post(&ops, dep, movement("alice", "EUR", "1000", "wire-1")).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["duplicate"], false);
    assert_eq!(first.body["free"], "1000.0000000000");
    let again = post(&ops, dep, movement("alice", "EUR", "1000", "wire-1")).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["duplicate"], true);
    // Withdrawing more than is free.
    let a = post(
        &ops,
        "/admin/v1/withdraw",
        movement("alice", "EUR", "1000.01", "out-1"),
    )
    .await;
    assert_error(&a, StatusCode::BAD_REQUEST, -2010);
    assert_eq!(
        a.body["msg"],
        "Account has insufficient balance for requested action."
    );
    let a = post(
        &ops,
        "/admin/v1/withdraw",
        movement("alice", "EUR", "400", "out-2"),
    )
    .await;
    assert_eq!(a.body["free"], "600.0000000000", "{:?}", a.body);
    let b = get(
        &ops,
        "/admin/v1/balances",
        "user=alice&omitZeroBalances=true",
    )
    .await;
    assert_eq!(b.body["balances"][0]["asset"], "EUR", "{:?}", b.body);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_trade_and_see_balances_fees_and_the_audit() {
    let ex = start(true).await;
    let ops = admin(&ex).await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    let dep = "/admin/v1/deposit";
    assert!(
        post(&ops, dep, movement("alice", "EUR", "10000", "a-eur"))
            .await
            .status
            .is_success()
    );
    assert!(
        post(&ops, dep, movement("bob", "BTC", "1", "b-btc"))
            .await
            .status
            .is_success()
    );
    // Unfunded orders are refused before they reach the book.
    let carol = ex.user("carol").await;
    let a = carol
        .place(&common::limit("BUY", "0.1", "100"))
        .await
        .unwrap();
    assert_error(&a, StatusCode::BAD_REQUEST, -2010);
    let a = bob
        .place(&common::limit("SELL", "0.5", "30000"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let a = alice
        .place(&common::limit("BUY", "0.2", "30100"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    // 6,000 EUR at the default 10 bps taker rate: 6 EUR.
    assert_eq!(a.body["fills"][0]["commission"], "6.0000000000");
    let account = get(&alice, "/api/v3/account", "").await;
    assert_eq!(account.status, StatusCode::OK, "{:?}", account.body);
    for field in [
        "makerCommission",
        "takerCommission",
        "commissionRates",
        "canTrade",
        "canWithdraw",
        "canDeposit",
        "brokered",
        "requireSelfTradePrevention",
        "preventSor",
        "updateTime",
        "accountType",
        "balances",
        "permissions",
        "uid",
    ] {
        assert!(
            account.body.get(field).is_some(),
            "{field} missing: {:?}",
            account.body
        );
    }
    let balance = |asset: &str| {
        account.body["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .cloned()
            .unwrap()
    };
    assert_eq!(balance("BTC")["free"], "0.20000000");
    // 10,000 - 6,000 - 6.
    assert_eq!(balance("EUR")["free"], "3994.0000000000");
    let bob_trades = common::eventually(|| async {
        let t = get(&bob, "/api/v3/myTrades", "symbol=BTCEUR").await;
        t.body.as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(bob_trades[0]["commission"], "6.0000000000");
    let audit = get(&ops, "/admin/v1/audit", "").await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    assert_eq!(audit.body["passed"], true);
    ex.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_funding_credits_a_new_user_once() {
    let ex = common::start_with(|c| {
        c.accounts.enabled = true;
        c.accounts.demo_funding = [("EUR".to_string(), "1000".to_string())].into();
    })
    .await;
    let alice = ex.user("alice").await;
    let first = get(&alice, "/api/v3/account", "omitZeroBalances=true").await;
    assert_eq!(
        first.body["balances"],
        json!([{"asset": "EUR", "free": "1000.0000000000", "locked": "0.0000000000"}]),
        "{:?}",
        first.body
    );
    let second = get(&alice, "/api/v3/account", "omitZeroBalances=true").await;
    assert_eq!(second.body["balances"], first.body["balances"]);
    ex.running.shutdown().await;
}

/// An amend of another user's order, named by id or by client id, answers
/// like an amend of an order that does not exist. A quantity increase is
/// refused (-2010) before the risk stage sees it: keepPriority only
/// lowers. What raising an order past the free balance became, a
/// cancel-replace with a larger new order, has its new order refused by
/// the risk stage with -2010 (the cancel done, -2021), and the hold of the
/// canceled order released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one story, read top to bottom")]
async fn amends_of_other_users_orders_look_like_unknown_ones() {
    let ex = start(true).await;
    let ops = admin(&ex).await;
    let (alice, bob) = (ex.user("alice").await, ex.user("bob").await);
    for (user, r) in [("alice", "a"), ("bob", "b")] {
        let m = post(&ops, "/admin/v1/deposit", movement(user, "EUR", "1000", r)).await;
        assert!(m.status.is_success(), "{:?}", m.body);
    }
    let mut order = common::limit("BUY", "0.02", "100");
    order["newClientOrderId"] = json!("mine");
    let placed = alice.place(&order).await.unwrap();
    assert!(placed.status.is_success(), "{:?}", placed.body);
    let id = placed.body["orderId"].as_u64().unwrap();
    // keepPriority reads the order from the store.
    common::order_with_status(&alice, "BTCEUR", id, "NEW").await;
    let amend = |target: Value, qty: &str| {
        let mut body = json!({"symbol": "BTCEUR", "newQty": qty});
        body.as_object_mut()
            .unwrap()
            .extend(target.as_object().unwrap().clone());
        body
    };
    let by_id = amend(json!({"orderId": id}), "0.01");
    let by_client = amend(json!({"origClientOrderId": "mine"}), "0.01");
    let nobody = amend(json!({"orderId": id + 1_000}), "0.01");
    let answer = |c: &Client, b: Value| {
        let c = c.clone();
        async move {
            c.signed(
                Method::PUT,
                "/api/v3/order/amend/keepPriority",
                "",
                Some(&b),
            )
            .await
            .unwrap()
        }
    };
    let missing = answer(&bob, nobody).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, -2013);
    for b in [by_id.clone(), by_client.clone()] {
        let theirs = answer(&bob, b).await;
        assert_eq!(
            (theirs.status, &theirs.body),
            (missing.status, &missing.body)
        );
    }
    // Her own increase is refused, whatever her balance.
    let huge = amend(json!({"origClientOrderId": "mine"}), "100");
    assert_error(&answer(&alice, huge).await, StatusCode::BAD_REQUEST, -2010);
    let ok = answer(&alice, by_id).await;
    assert!(ok.status.is_success(), "{:?}", ok.body);
    assert_eq!(
        ok.body["amendedOrder"]["qty"], "0.01000000",
        "{:?}",
        ok.body
    );
    // 0.01 at 100 and its 10 bps fee stay held; the rest of the 0.02 is free.
    let held = |c: Client, free: &'static str, locked: &'static str| async move {
        let mut last = Value::Null;
        for _ in 0..200 {
            let a = get(&c, "/api/v3/account", "").await;
            let eur = a.body["balances"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["asset"] == "EUR")
                .cloned()
                .unwrap();
            if (eur["free"].as_str(), eur["locked"].as_str()) == (Some(free), Some(locked)) {
                return;
            }
            last = eur;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("EUR not {free} free, {locked} locked: {last}");
    };
    held(alice.clone(), "998.9990000000", "1.0010000000").await;
    // Far past her balance through cancel-replace: the cancel is done, the
    // new order refused by the risk stage.
    common::order_with_status(&alice, "BTCEUR", id, "NEW").await;
    let mut bigger = common::limit("BUY", "100", "100");
    bigger["cancelReplaceMode"] = json!("STOP_ON_FAILURE");
    bigger["cancelOrderId"] = json!(id);
    let r = alice
        .signed(
            Method::POST,
            "/api/v3/order/cancelReplace",
            "",
            Some(&bigger),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some(-2021)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["data"]["cancelResult"], "SUCCESS", "{:?}", r.body);
    assert_eq!(r.body["data"]["newOrderResult"], "FAILURE");
    assert_eq!(r.body["data"]["newOrderResponse"]["code"], -2010);
    assert_eq!(
        r.body["data"]["newOrderResponse"]["msg"],
        "Account has insufficient balance for requested action."
    );
    held(alice.clone(), "1000.0000000000", "0.0000000000").await;
    common::eventually(|| async {
        common::open_orders(&alice, "BTCEUR")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    ex.running.shutdown().await;
}
