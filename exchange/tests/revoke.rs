//! Revocation in embedded mode: `exchange keys revoke`, a separate process
//! on the same SQLite file, stops a key the gateway has cached within 1 s.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_exchange");

fn keys(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("keys")
        .args(args)
        .env("EXCHANGE_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_the_cli_stops_within_1s() {
    let ex = common::start().await;
    let dir = ex.config.data_dir.clone();
    let alice = Client::new(
        &ex.url,
        Some(common::printed_credentials(&keys(
            &dir,
            &["create", "--user", "alice"],
        ))),
    );
    let bob = Client::new(
        &ex.url,
        Some(common::printed_credentials(&keys(
            &dir,
            &["create", "--user", "bob"],
        ))),
    );
    // Both keys are in use, so cached.
    common::works(&alice).await;
    common::works(&bob).await;
    let key = alice.api_key().unwrap().to_string();
    assert_eq!(keys(&dir, &["revoke", &key]).trim(), "revoked");
    let took = common::refused_within_1s(&alice, Instant::now()).await;
    eprintln!("revoked key refused after {took:?}");
    common::works(&bob).await;
    // It stays refused, however often it is tried.
    for _ in 0..20 {
        let r = alice
            .signed(client::Method::GET, "/api/v3/openOrders", "", None)
            .await
            .unwrap();
        assert_eq!(r.code(), Some(-2015));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_while_unused_is_refused_at_its_next_use() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    common::works(&alice).await;
    let key = alice.api_key().unwrap().to_string();
    assert!(ex.running.store.revoke_api_key(&key).await.unwrap());
    // Unused for longer than the cache trusts an entry.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = alice
        .signed(client::Method::GET, "/api/v3/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(r.code(), Some(-2015), "{:?}", r.body);
}

#[test]
fn the_pairs_command_refuses_bad_names_and_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("pairs")
            .args(args)
            .env("EXCHANGE_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(&["halted"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no pair is halted"
    );
    let out = run(&["resume", "ETH-EUR"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "not halted");
    for bad in ["btc/eur", "", "A-B-C-D-E-F-G-H-I-J-K", "ETH EUR"] {
        let out = run(&["resume", bad]);
        assert!(!out.status.success(), "{bad:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{bad:?}: no message");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_user_stream_within_1s() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let mut ws = common::streams::user_stream(&alice).await;
    let key = alice.api_key().unwrap().to_string();
    assert!(ex.running.store.revoke_api_key(&key).await.unwrap());
    let revoked = Instant::now();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame within 2 s: {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "API key revoked");
    // A check every 300 ms of a cache at most 800 ms old; the rest is
    // slack for a loaded machine.
    assert!(
        revoked.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        revoked.elapsed()
    );
}
