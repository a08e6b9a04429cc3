//! Starting an exchange in-process on a free port, with its own store.
#![allow(dead_code, unreachable_pub)]

pub mod money;
pub mod raw;

use std::time::Duration;

use client::{Client, Credentials};
use exchange::{Config, Running};
use serde_json::{Value, json};

pub struct TestExchange {
    pub running: Running,
    pub url: String,
    pub config: Config,
    _dir: tempfile::TempDir,
}

/// The config of a test exchange: port 0 and a scratch data directory.
pub fn config(dir: &tempfile::TempDir) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        log: "warn".into(),
        // These tests are not about balances: orders are not checked.
        accounts: exchange::config::AccountsSection {
            enabled: false,
            ..Default::default()
        },
        ..Config::default()
    }
}

pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestExchange {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    f(&mut config);
    let running = exchange::start(&config).await.unwrap();
    let url = format!("http://{}", running.addr);
    TestExchange {
        running,
        url,
        config,
        _dir: dir,
    }
}

pub async fn start() -> TestExchange {
    start_with(|_| {}).await
}

impl TestExchange {
    /// A signed client for a new user.
    pub async fn user(&self, name: &str) -> Client {
        let key = self.running.store.create_api_key(name, 1).await.unwrap();
        Client::new(
            &self.url,
            Some(Credentials {
                api_key: key.api_key,
                secret: key.secret,
            }),
        )
    }

    pub fn public(&self) -> Client {
        Client::new(&self.url, None)
    }
}

pub fn limit(side: &str, qty: &str, price: &str) -> Value {
    json!({"symbol": "BTC-EUR", "side": side, "type": "LIMIT", "quantity": qty, "price": price})
}

/// Polls `f` until it returns `Some`, for reads that trail the engine by
/// the persister's lag.
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

/// A fresh Postgres database for one test, or `None` (with a note on
/// stderr) when no server answers and CI is not set. In CI a missing
/// Postgres fails the test.
pub async fn fresh_postgres() -> Option<String> {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("exchange_test_{}_{nanos}", std::process::id());
    match store::create_postgres_database(&admin, &name).await {
        Ok(url) => Some(url),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("Postgres is required in CI: {admin}: {e}");
            }
            eprintln!("SKIPPED: Postgres not reachable at {admin}: {e}");
            None
        }
    }
}

/// Waits for `c`'s key, revoked at `revoked`, to be refused (401 / -2015)
/// and panics if it still works past 1 s. Returns how long it took.
pub async fn refused_within_1s(c: &Client, revoked: std::time::Instant) -> Duration {
    loop {
        let r = c
            .signed(client::Method::GET, "/api/v1/openOrders", "", None)
            .await
            .unwrap();
        if r.status == client::StatusCode::UNAUTHORIZED {
            assert_eq!(r.code(), Some(-2015), "{:?}", r.body);
            return revoked.elapsed();
        }
        assert_eq!(r.status, client::StatusCode::OK, "{:?}", r.body);
        let waited = revoked.elapsed();
        assert!(
            waited < Duration::from_secs(1),
            "a revoked key still works after {waited:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A signed `GET /api/v1/openOrders` answers 200.
pub async fn works(c: &Client) {
    let r = c
        .signed(client::Method::GET, "/api/v1/openOrders", "", None)
        .await
        .unwrap();
    assert_eq!(r.status, client::StatusCode::OK, "{:?}", r.body);
}

/// The wall clock in milliseconds, as requests are signed with.
pub fn now_ms() -> u64 {
    clientkit::now_ms()
}

/// The key and secret that `exchange keys create` printed.
pub fn printed_credentials(output: &str) -> Credentials {
    Credentials::from_printed(output).expect("`keys create` printed an api key and a secret")
}
