//! Kill -9 the exchange process after trades and start it again: fills,
//! open orders and books are as before, no fill doubled, and the restored
//! book keeps trading.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use client::{Client, Credentials, Method};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_exchange");

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .env("EXCHANGE_DATA_DIR", dir)
        .env("EXCHANGE_LISTEN", "127.0.0.1:0")
        // Not about balances: orders are not checked. Bursts of orders
        // from one key: the order and weight limits raised.
        .env(
            "EXCHANGE_CONFIG_TOML",
            format!(
                "[accounts]\nenabled = false\n{}",
                common::RAISED_LIMITS_TOML
            ),
        )
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
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn create_key(dir: &std::path::Path, user: &str) -> Credentials {
    let out = Command::new(BIN)
        .args(["keys", "create", "--user", user])
        .env("EXCHANGE_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success());
    common::printed_credentials(&String::from_utf8(out.stdout).unwrap())
}

async fn state(c: &Client) -> (Value, Value, Value) {
    let trades = c
        .get("/api/v3/trades", "symbol=BTCEUR&limit=1000")
        .await
        .unwrap()
        .body;
    let depth = c
        .get("/api/v3/depth", "symbol=BTCEUR&limit=1000")
        .await
        .unwrap()
        .body;
    let open = c
        .signed(Method::GET, "/api/v3/openOrders", "", None)
        .await
        .unwrap()
        .body;
    (trades, depth, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_fills_orders_and_books() {
    let dir = tempfile::tempdir().unwrap();
    let alice = create_key(dir.path(), "alice");
    let bob = create_key(dir.path(), "bob");
    let (mut child, url) = start(dir.path());
    let a = Client::new(&url, Some(alice.clone()));
    let b = Client::new(&url, Some(bob.clone()));
    for i in 0..40u32 {
        let price = 30_000 + (i * 7919) % 50;
        a.place(&common::limit("SELL", "0.3", &price.to_string()))
            .await
            .unwrap();
        let r = b
            .place(&common::limit("BUY", "0.2", &(price + 10).to_string()))
            .await
            .unwrap();
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    // Let the persister catch up, then read what a client sees.
    let mut before = state(&a).await;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = state(&a).await;
        if now == before && now.0.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        before = now;
    }
    assert!(!before.0.as_array().unwrap().is_empty(), "no trades");
    // These were acknowledged (in the journal) and may not be stored yet.
    let late = b
        .place(
            &json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.05", "price": "29000", "newOrderRespType": "ACK"}),
        )
        .await
        .unwrap();
    assert!(late.status.is_success());
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, url) = start(dir.path());
    let a = Client::new(&url, Some(alice));
    let after = state(&a).await;
    assert_eq!(after.0, before.0, "fills changed across the restart");
    assert_eq!(after.2, before.2, "open orders changed across the restart");
    let bids = after.1["bids"].as_array().unwrap();
    assert_eq!(after.1["asks"], before.1["asks"]);
    assert!(
        bids.iter().any(|l| l[0] == "29000.00"),
        "the acknowledged late order was lost"
    );

    // The restored book trades: sweep the asks.
    let b = Client::new(&url, Some(bob));
    let r = b
        .place(&json!({"symbol": "BTCEUR", "side": "BUY", "type": "MARKET", "quantity": "100"}))
        .await
        .unwrap();
    assert!(
        !r.body["fills"].as_array().unwrap().is_empty(),
        "{:?}",
        r.body
    );
    let ids: Vec<u64> = r.body["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tradeId"].as_u64().unwrap())
        .collect();
    let max_before = before
        .0
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        ids.iter().all(|id| *id > max_before),
        "trade ids continue after the restart"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// SIGTERM right after a burst of acknowledged orders: the process drains
/// every queue, stores every event, snapshots the book, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_queues_stores_events_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let alice = create_key(dir.path(), "alice");
    let (mut child, url) = start(dir.path());
    let a = Client::new(&url, Some(alice));
    // Crossing orders answered at ACK: many are journaled but not yet
    // applied or stored when the signal arrives.
    let orders: Vec<Value> = (0..200u32)
        .map(|i| {
            let side = if i % 2 == 0 { "SELL" } else { "BUY" };
            let price = 30_000 + (i * 7919) % 20;
            json!({"symbol": "BTCEUR", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                   "quantity": "0.01", "price": price.to_string(),
                   "selfTradePreventionMode": "NONE", "newOrderRespType": "ACK"})
        })
        .collect();
    for chunk in orders.chunks(50) {
        let answers = futures_util::future::join_all(chunk.iter().map(|o| a.place(o))).await;
        for r in answers {
            let r = r.unwrap();
            assert!(r.status.is_success(), "{:?}", r.body);
        }
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit 30 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");

    let url = format!("sqlite://{}", dir.path().join("exchange.sqlite").display());
    let store = store::Store::connect(&url, 1).await.unwrap();
    let btc = proto::Symbol::new("BTC-EUR").unwrap();
    let snap = store
        .latest_snapshot(btc)
        .await
        .unwrap()
        .expect("a final snapshot");
    assert_eq!(
        snap.position, 200,
        "the final snapshot covers every acknowledged order"
    );
    assert_eq!(
        store.last_seqs().await.unwrap().get(&btc),
        Some(&snap.seq),
        "every event of the book is stored"
    );
    assert!(
        !store.all_fills(btc).await.unwrap().is_empty(),
        "the orders traded"
    );
}
