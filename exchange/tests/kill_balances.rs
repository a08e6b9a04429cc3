//! Kill -9 the exchange while four funded users trade with each other, start
//! it again, and check the money: the live audit passes, every user's
//! balance equals their deposits moved by exactly the fills the store
//! lists (commission included), and every user's `locked` equals what their
//! open orders still need. A fill settled twice, or lost, or a hold left
//! behind by an order that never reached its book, breaks one of them.

mod common;

use common::money::{BTC_SCALE, EUR_SCALE, balance, balances, from_fills, open_needs};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use client::{Client, Credentials, Method};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_exchange");

/// Accounts on, no demo credit (a config is given), and snapshots of the
/// books and of the shard every few inputs, so the restart restores from
/// them and replays only the rest; the order and weight limits raised for
/// the load's few hundred orders a second per key.
fn config() -> String {
    format!(
        "[accounts]\nsnapshot_every = 40\n[runtime]\nsnapshot_every = 25\n{}",
        common::RAISED_LIMITS_TOML
    )
}

const USERS: [&str; 4] = ["ann", "ben", "cat", "dan"];

/// The exchange process, killed when dropped: a failed assertion must not
/// leave it running (it holds the test's output pipe open).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Process, String) {
    let mut child = Command::new(BIN)
        .env("EXCHANGE_DATA_DIR", dir)
        .env("EXCHANGE_LISTEN", "127.0.0.1:0")
        .env("EXCHANGE_CONFIG_TOML", config())
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("exchange exited").unwrap();
        if let Some(url) = line.strip_prefix("exchange listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), url)
}

fn cli(dir: &std::path::Path, args: &[&str], key_label: &str) -> Credentials {
    let out = Command::new(BIN)
        .args(args)
        .env("EXCHANGE_DATA_DIR", dir)
        .env("EXCHANGE_CONFIG_TOML", config())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    Credentials {
        api_key: field(key_label),
        secret: field("secret:"),
    }
}

/// One user's random orders for `for_ms`, until the exchange goes away.
async fn trade(c: Client, seed: u64, for_ms: u64) {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let end = std::time::Instant::now() + Duration::from_millis(for_ms);
    while std::time::Instant::now() < end {
        let r = next();
        let side = if r % 2 == 0 { "BUY" } else { "SELL" };
        let price = format!("{}.{:02}", 100 + (r >> 8) % 2, (r >> 16) % 100);
        let qty = format!("0.0{}", 1 + (r >> 24) % 5);
        let order = json!({"symbol": "BTCEUR", "side": side, "type": "LIMIT",
            "timeInForce": "GTC", "quantity": qty, "price": price,
            "selfTradePreventionMode": "EXPIRE_TAKER", "newOrderRespType": "ACK"});
        if c.place(&order).await.is_err() {
            return; // killed
        }
        // A few hundred orders a second each: the fills fit one page.
        tokio::time::sleep(Duration::from_millis(3)).await;
        if r % 5 == 0 {
            let _ = c
                .signed(Method::DELETE, "/api/v3/openOrders", "symbol=BTCEUR", None)
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_and_doubles_no_money() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Credentials> = USERS
        .iter()
        .map(|u| cli(dir.path(), &["keys", "create", "--user", u], "api key:"))
        .collect();
    let ops = cli(
        dir.path(),
        &["admin-keys", "create", "--name", "ops"],
        "admin key:",
    );
    let (mut child, url) = start(dir.path());
    let admin = common::Admin::new(&url, ops.clone());
    for (i, user) in USERS.iter().enumerate() {
        for (asset, amount) in [("EUR", "300"), ("BTC", "3")] {
            let body = json!({"user": user, "asset": asset, "amount": amount, "ref": format!("{user}-{asset}-{i}")});
            let r = admin.post("/admin/v1/deposit", &body).await;
            assert!(r.status.is_success(), "{:?}", r.body);
        }
    }
    let load: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            tokio::spawn(trade(
                Client::new(&url, Some(k.clone())),
                7 + i as u64,
                3_000,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    for l in load {
        let _ = l.await;
    }

    let (_restarted, url) = start(dir.path());
    let users: Vec<Client> = keys
        .iter()
        .map(|k| Client::new(&url, Some(k.clone())))
        .collect();
    // The restart replays; the persister then stores what it had not.
    let mut seen = Vec::new();
    for _ in 0..100 {
        let mut now = Vec::new();
        for c in &users {
            now.push((from_fills(c, 0, 0).await, balances(c).await));
        }
        if now == seen {
            break;
        }
        seen = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut fills = 0;
    for (user, c) in USERS.iter().zip(&users) {
        let all = balances(c).await;
        let (eur_free, eur_locked) = balance(&all, "EUR", EUR_SCALE);
        let (btc_free, btc_locked) = balance(&all, "BTC", BTC_SCALE);
        let deposited = (300 * 10i128.pow(10), 3 * 10i128.pow(8));
        let expected = from_fills(c, deposited.0, deposited.1).await;
        assert_eq!(
            (eur_free + eur_locked, btc_free + btc_locked),
            expected,
            "{user}: balances against deposits and fills"
        );
        assert_eq!(
            (eur_locked, btc_locked),
            open_needs(c).await,
            "{user}: locked against open orders"
        );
        fills += usize::from(expected != deposited);
    }
    assert!(fills > 0, "the load traded");
    let audit = Client::admin(&url, ops)
        .signed(Method::GET, "/admin/v1/audit", "", None)
        .await
        .unwrap();
    assert_eq!(audit.body["passed"], true, "{:?}", audit.body);
}
