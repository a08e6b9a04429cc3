//! Starting an exchange in-process on a free port, with its own store.
#![allow(dead_code, unreachable_pub)]

pub mod money;
pub mod raw;
pub mod streams;
pub mod wsapi;

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

/// Binance's REST names of the default pairs (`BTC-EUR` and so on in the
/// config and the WebSocket streams).
pub const BTCEUR: &str = "BTCEUR";
pub const ETHEUR: &str = "ETHEUR";
pub const ETHBTC: &str = "ETHBTC";

/// The `[gateway]` limits a test sets instead of Binance's: every test
/// sends from 127.0.0.1 with a few keys, in bursts of hundreds of requests
/// (weights of up to 80 each) and orders, which Binance's 6,000 weight per
/// minute and 50 orders per 10 s would refuse. Tests of those limits set
/// their own.
pub fn raise_limits(gateway: &mut gateway::GatewayConfig) {
    gateway.request_weight_per_minute = 100_000_000;
    gateway.orders_per_10s = 10_000_000;
    gateway.orders_per_day = 100_000_000;
    gateway.ws_connections_per_5min = 1_000_000;
}

/// The same, as a `[gateway]` TOML section for exchanges started as
/// processes.
pub const RAISED_LIMITS_TOML: &str = "[gateway]\nrequest_weight_per_minute = 100000000\n\
    orders_per_10s = 10000000\norders_per_day = 100000000\nws_connections_per_5min = 1000000\n";

/// The config of a test exchange: port 0, a scratch data directory and
/// the request-weight and order limits raised ([`raise_limits`]).
pub fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        log: "warn".into(),
        // These tests are not about balances: orders are not checked.
        accounts: exchange::config::AccountsSection {
            enabled: false,
            ..Default::default()
        },
        ..Config::default()
    };
    raise_limits(&mut config.gateway);
    config
}

pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestExchange {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    f(&mut config);
    TestExchange::start(config, dir).await
}

pub async fn start() -> TestExchange {
    start_with(|_| {}).await
}

impl TestExchange {
    /// A signed client for a new user.
    pub async fn user(&self, name: &str) -> Client {
        Client::new(&self.url, Some(self.credentials(name).await))
    }

    /// A new user's API key and secret.
    pub async fn credentials(&self, name: &str) -> Credentials {
        let key = self.running.store.create_api_key(name, 1).await.unwrap();
        Credentials {
            api_key: key.api_key,
            secret: key.secret,
        }
    }

    pub fn public(&self) -> Client {
        Client::new(&self.url, None)
    }

    /// Stops the exchange and starts it again on the same config and data
    /// (a new port: use the returned `url`).
    pub async fn restart(self) -> TestExchange {
        let TestExchange {
            running,
            config,
            _dir,
            ..
        } = self;
        running.shutdown().await;
        TestExchange::start(config, _dir).await
    }

    /// Starts an exchange on `config`, whose data lives in `dir`.
    async fn start(config: Config, dir: tempfile::TempDir) -> TestExchange {
        let running = exchange::start(&config).await.unwrap();
        let url = format!("http://{}", running.addr);
        TestExchange {
            running,
            url,
            config,
            _dir: dir,
        }
    }
}

/// `GET path?query`, signed by `c`'s key: its answer, asserted 200.
pub async fn signed_get(c: &Client, path: &str, query: &str) -> Value {
    let a = c
        .signed(client::Method::GET, path, query, None)
        .await
        .unwrap();
    assert_eq!(
        a.status,
        client::StatusCode::OK,
        "{path}?{query}: {:?}",
        a.body
    );
    a.body
}

/// A good-till-canceled limit order on BTCEUR (Binance's `LIMIT` needs its
/// `timeInForce`).
pub fn limit(side: &str, qty: &str, price: &str) -> Value {
    limit_on(BTCEUR, side, qty, price)
}

/// [`limit`] on another pair.
pub fn limit_on(symbol: &str, side: &str, qty: &str, price: &str) -> Value {
    json!({"symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
           "quantity": qty, "price": price})
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
            .signed(client::Method::GET, "/api/v3/openOrders", "", None)
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

/// A signed `GET /api/v3/openOrders` answers 200.
pub async fn works(c: &Client) {
    let r = c
        .signed(client::Method::GET, "/api/v3/openOrders", "", None)
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

/// A signed request sent as Binance's clients send it (the signature last
/// in the query, `body` a form), answered with its headers: for the
/// `X-MBX-*` usage headers, which [`client::Answer`] does not keep.
pub async fn send_signed(
    base: &str,
    credentials: &Credentials,
    method: client::Method,
    path: &str,
    query: &str,
    body: &str,
) -> reqwest::Response {
    let url = clientkit::Signer::new(credentials).sign(path, query, body.as_bytes(), now_ms());
    let mut req = client::HttpClient::new()
        .request(method, format!("{base}{url}"))
        .header(clientkit::API_KEY_HEADER, &credentials.api_key);
    if !body.is_empty() {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
    }
    req.send().await.unwrap()
}

/// A header of `r` as text.
pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Sleeps until a fixed window of `window_ms` (aligned to the epoch, as
/// the gateway's limits count) has just begun, unless the current one
/// still has `need_ms` left: a test that counts within one window must not
/// see it roll over.
pub async fn within_one_window(window_ms: u64, need_ms: u64) {
    let into = now_ms() % window_ms;
    if window_ms - into < need_ms {
        tokio::time::sleep(Duration::from_millis(window_ms - into + 50)).await;
    }
}

/// `c`'s open orders on `symbol`, as `GET /api/v3/openOrders` lists them.
pub async fn open_orders(c: &Client, symbol: &str) -> Vec<Value> {
    let r = c
        .signed(
            client::Method::GET,
            "/api/v3/openOrders",
            &format!("symbol={symbol}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, client::StatusCode::OK, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// `c`'s order `id` on `symbol`, as `GET /api/v3/order` answers.
pub async fn query_order(c: &Client, symbol: &str, id: u64) -> client::Answer {
    c.signed(
        client::Method::GET,
        "/api/v3/order",
        &format!("symbol={symbol}&orderId={id}"),
        None,
    )
    .await
    .unwrap()
}

/// Waits until the store shows `c`'s order `id` with `status`, and returns
/// it: reads trail the engine by the persister's lag.
pub async fn order_with_status(c: &Client, symbol: &str, id: u64, status: &str) -> Value {
    eventually(|| async {
        let r = query_order(c, symbol, id).await;
        (r.status == client::StatusCode::OK && r.body["status"] == status).then_some(r.body)
    })
    .await
}

/// An operator's client of the admin API (`/admin/v1/...`): signed like
/// any request, with the admin key in its own header, and `POST`
/// parameters as a JSON body, which that API takes (and the trading API
/// refuses).
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl std::ops::Deref for Admin {
    type Target = Client;

    /// Reads (`GET`) go through the client as they are.
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Admin {
    pub fn new(url: &str, credentials: Credentials) -> Admin {
        Admin {
            client: Client::admin(url, credentials),
        }
    }

    /// A new admin key's client on `ex`.
    pub async fn of(ex: &TestExchange, name: &str) -> Admin {
        let k = ex.running.store.create_admin_key(name, 1).await.unwrap();
        Admin::new(
            &ex.url,
            Credentials {
                api_key: k.admin_key,
                secret: k.secret,
            },
        )
    }

    /// `POST path` with `body` as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> client::Answer {
        self.client
            .signed(client::Method::POST, path, "", Some(body))
            .await
            .unwrap()
    }
}
