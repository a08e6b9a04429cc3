//! The HTTP and WebSocket edge of the exchange: Binance-shaped REST with
//! signed requests, market-data and user streams, rate limits, load-shedding,
//! health and metrics.
//!
//! Architecture Invariant: nothing reaches the command log unless it parsed,
//! validated against the pair's rules, authenticated, and passed every
//! admission bound. A refused request leaves no trace but a metric, so the
//! client may retry it unchanged.

mod admin;
mod auth;
mod demo;
mod errors;
mod limits;
mod market;
mod metrics;
mod money;
mod pairs;
mod rest;
mod serve;
mod usage;
mod ws;
mod wsapi;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use accounts::Fees;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use commandlog::{CommandLog, Lag};
use proto::{OrderId, PairConfig, Symbol};
use serde::Deserialize;
use store::Store;
use tokio::sync::{Semaphore, watch};

pub use auth::{ADMIN_KEY_HEADER, API_KEY_HEADER, Caller, KeyCache, Operator, sign};
/// The wall clock that stamps commands (re-exported for the gateway's users).
pub use commandlog::now_ns;

/// Milliseconds since the Unix epoch: Binance's times.
pub(crate) fn now_ms() -> u64 {
    now_ns() / 1_000_000
}
pub use demo::{DemoFundingError, demo_reference, parse_demo_funding};
pub use errors::{ApiError, code};
pub use limits::ShedReason;
pub use market::{AccountSnapshot, MarketData, Published, Registry, Speed, StreamMessage, Topic};
pub use metrics::GatewayMetrics;
pub use rest::{NewOrderRequest, RawRoute, command_from_raw, new_order_command};
pub use serve::{
    HYPER_MAX_BUF, HYPER_MAX_HEADERS, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES, ServeTimeouts,
    serve,
};
pub use ws::{MAX_CLIENT_FRAME, MAX_CLIENT_MESSAGE, MAX_WRITE_BUFFER};

/// The gateway's bounds and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Requests per second each API key may make, on average.
    pub rate_limit_per_sec: u32,
    /// Requests an API key may make at once after being idle.
    pub rate_limit_burst: u32,
    /// New orders and amends between intake and answer, process-wide. By
    /// Little's law this bounds the queueing delay: 1,024 at 5,000 orders/s
    /// is about 200 ms; past it requests are shed (503) instead of waiting.
    pub max_in_flight: usize,
    /// The same, per pair.
    pub max_in_flight_per_pair: usize,
    /// Cancels between intake and answer, process-wide (a separate budget).
    pub max_in_flight_cancels: usize,
    /// New orders for a pair are shed (503) while more than this many of its
    /// commands are logged but not yet applied by its engine. The embedded
    /// journal counts commands.
    pub max_pair_lag: u64,
    /// The same bound in distributed mode, where the Kafka command log
    /// counts records (each of up to `cluster::RUN_MAX` commands), not
    /// commands: new orders are shed while more than this many records of
    /// a pair's log are not yet applied.
    pub max_pair_lag_records: u64,
    /// New orders are shed while the store trails a pair's engine by more
    /// than this many events.
    pub max_persister_lag: u64,
    /// How long a `RESULT` request waits for the engine.
    pub result_timeout_ms: u64,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Stream messages a WebSocket client may fall behind by before it is
    /// disconnected.
    pub ws_buffer: usize,
    /// Seconds between server pings on a WebSocket.
    pub ws_ping_secs: u64,
    /// How long one message may wait for a WebSocket client to take it
    /// before the client is dropped as a slow consumer (a client that
    /// stopped reading would otherwise hold its session forever).
    pub ws_send_timeout_ms: u64,
    /// WebSocket connections open at once, per process; an upgrade past it
    /// gets 503 `{code,msg}`. With the per-connection buffers bounded (see
    /// the README), this bounds the memory WebSocket clients can take.
    pub max_ws_connections: usize,
    /// Streams one WebSocket connection may subscribe to, in one SUBSCRIBE
    /// and in all: Binance's 1,024. Past it a SUBSCRIBE is refused (code
    /// 2) and a connection naming more in its path gets 400 (-1191).
    pub ws_max_streams: usize,
    /// WebSocket API requests one connection may have in flight (each is
    /// served on its own task and answered when ready); one more is
    /// answered at once with 429, code -1003. Bounds the tasks and answers
    /// a single connection can make the gateway hold.
    pub ws_api_max_in_flight: usize,
    /// Messages a stream client may send per second (pings, pongs and
    /// control messages): Binance's 5. One more closes the connection.
    pub ws_messages_per_sec: u32,
    /// WebSocket connection attempts one IP may make in 5 minutes, on the
    /// streams and the WebSocket API together: Binance's 300. Past it the
    /// upgrade is refused with 429, -1003 and `Retry-After`.
    pub ws_connections_per_5min: u32,
    /// How long a listen key lives after it was made or last kept alive:
    /// Binance's 60 minutes.
    pub listen_key_ttl_secs: u64,
    /// Time a client has to send a whole request head (request line and
    /// headers), and the longest a keep-alive connection may sit idle; then
    /// the connection is closed. 5 s: a head is at most 16 KiB, seconds of
    /// work even on a slow link, and an idle connection costs a socket.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a whole request body once its head
    /// arrived; then the answer is 408 and the connection is closed. 10 s:
    /// a body is at most `max_body_bytes` (16 KiB), which even 16 kbit/s
    /// delivers in 8 s, while a stalled body holds a connection and a task.
    pub body_read_timeout_ms: u64,
    /// The `Retry-After` sent with 503s.
    pub retry_after_secs: u32,
    /// Request weight one IP (an IPv6 /64) may use per minute, in windows
    /// aligned to the minute: Binance's `REQUEST_WEIGHT`, 6,000. A load
    /// test driving one loopback address raises it.
    pub request_weight_per_minute: u32,
    /// New orders one account may place per 10 seconds (aligned windows):
    /// Binance's `ORDERS` limit, 50. An order's first fill gives one back.
    pub orders_per_10s: u32,
    /// New orders one account may place per UTC day: Binance's 160,000.
    pub orders_per_day: u32,
    /// Answers of 429 an IP may receive in one minute for its request
    /// weight; its next request within the minute is banned (418). 100
    /// tolerates the requests a client had in flight when the first 429
    /// came back, and bans one that ignores them within moments.
    pub ip_ban_after_429s: u32,
    /// An IP's first ban, in seconds: Binance's 2 minutes. Each further
    /// ban doubles it, up to `ip_ban_max_secs`; an IP with no ban for
    /// `ip_ban_max_secs` after its last one ended starts over.
    pub ip_ban_min_secs: u64,
    /// The longest ban, in seconds: Binance's 3 days.
    pub ip_ban_max_secs: u64,
    /// IPs whose request weight is tracked at once. An entry holds about
    /// 100 bytes; entries whose minute is over (and hold no ban) make room
    /// for new ones, and past the bound a newcomer is counted for its own
    /// request only. Bounds what a flood of distinct IPs can make the
    /// gateway hold.
    pub max_tracked_ips: usize,
    /// Accounts whose order counts are tracked at once: the same bound for
    /// accounts, whose entries last the UTC day.
    pub max_tracked_accounts: usize,
    /// Proxies in front of the gateway that append the client's address
    /// to `X-Forwarded-For` (1 behind one load balancer such as AWS's
    /// ALB). Request weights are counted against the address that many
    /// entries from the right of the header, the one the nearest trusted
    /// proxy saw; 0 (the default) counts the TCP peer and ignores the
    /// header, which a client could otherwise forge.
    pub forwarded_for_hops: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            rate_limit_per_sec: 2_000,
            rate_limit_burst: 4_000,
            max_in_flight: 1_024,
            max_in_flight_per_pair: 512,
            max_in_flight_cancels: 1_024,
            max_pair_lag: 20_000,
            max_pair_lag_records: 20_000,
            max_persister_lag: 500_000,
            result_timeout_ms: 5_000,
            max_body_bytes: 16 * 1024,
            ws_buffer: 8_192,
            ws_ping_secs: 20,
            ws_send_timeout_ms: 5_000,
            max_ws_connections: 4_096,
            ws_max_streams: 1_024,
            ws_api_max_in_flight: 64,
            ws_messages_per_sec: 5,
            listen_key_ttl_secs: 3_600,
            ws_connections_per_5min: 300,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            retry_after_secs: 1,
            request_weight_per_minute: 6_000,
            orders_per_10s: 50,
            orders_per_day: 160_000,
            ip_ban_after_429s: 100,
            ip_ban_min_secs: 120,
            ip_ban_max_secs: 3 * 24 * 3_600,
            max_tracked_ips: 65_536,
            max_tracked_accounts: 262_144,
            forwarded_for_hops: 0,
        }
    }
}

impl GatewayConfig {
    /// Checks that every bound is usable, naming the bad one.
    pub fn validate(&self) -> Result<(), GatewayConfigError> {
        let positive = [
            ("rate_limit_per_sec", self.rate_limit_per_sec as u64),
            ("rate_limit_burst", self.rate_limit_burst as u64),
            ("max_in_flight", self.max_in_flight as u64),
            ("max_in_flight_per_pair", self.max_in_flight_per_pair as u64),
            ("max_in_flight_cancels", self.max_in_flight_cancels as u64),
            ("max_pair_lag", self.max_pair_lag),
            ("max_pair_lag_records", self.max_pair_lag_records),
            ("max_persister_lag", self.max_persister_lag),
            ("result_timeout_ms", self.result_timeout_ms),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("ws_buffer", self.ws_buffer as u64),
            ("ws_ping_secs", self.ws_ping_secs),
            ("ws_send_timeout_ms", self.ws_send_timeout_ms),
            ("max_ws_connections", self.max_ws_connections as u64),
            ("ws_max_streams", self.ws_max_streams as u64),
            ("ws_api_max_in_flight", self.ws_api_max_in_flight as u64),
            ("ws_messages_per_sec", self.ws_messages_per_sec.into()),
            ("listen_key_ttl_secs", self.listen_key_ttl_secs),
            (
                "ws_connections_per_5min",
                self.ws_connections_per_5min.into(),
            ),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            (
                "request_weight_per_minute",
                self.request_weight_per_minute.into(),
            ),
            ("orders_per_10s", self.orders_per_10s.into()),
            ("orders_per_day", self.orders_per_day.into()),
            ("ip_ban_after_429s", self.ip_ban_after_429s.into()),
            ("ip_ban_min_secs", self.ip_ban_min_secs),
            ("ip_ban_max_secs", self.ip_ban_max_secs),
            ("max_tracked_ips", self.max_tracked_ips as u64),
            ("max_tracked_accounts", self.max_tracked_accounts as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(GatewayConfigError::Zero(name));
            }
        }
        if self.ip_ban_min_secs > self.ip_ban_max_secs {
            return Err(GatewayConfigError::Exceeds(
                "ip_ban_min_secs",
                "ip_ban_max_secs",
            ));
        }
        Ok(())
    }

    /// True when `lag` passes the bound for its unit.
    pub fn pair_lag_exceeded(&self, lag: Lag) -> bool {
        match lag {
            Lag::Commands(n) => n > self.max_pair_lag,
            Lag::Records(n) => n > self.max_pair_lag_records,
        }
    }

    /// The timeouts [`serve`] applies.
    pub fn serve_timeouts(&self) -> ServeTimeouts {
        ServeTimeouts {
            header_read: Duration::from_millis(self.header_read_timeout_ms),
            body_read: Duration::from_millis(self.body_read_timeout_ms),
        }
    }
}

/// Why a [`GatewayConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayConfigError {
    /// A bound that must be positive is zero; named as in the config file.
    Zero(&'static str),
    /// The first bound is above the second, which caps it.
    Exceeds(&'static str, &'static str),
}

impl std::fmt::Display for GatewayConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayConfigError::Zero(name) => {
                write!(f, "gateway.{name} must be greater than zero")
            }
            GatewayConfigError::Exceeds(low, high) => {
                write!(f, "gateway.{low} must not exceed gateway.{high}")
            }
        }
    }
}

impl std::error::Error for GatewayConfigError {}

/// Order ids: unique per process start and increasing. Seeded from the wall
/// clock in milliseconds times 1,000 (and above every stored id), so ids stay
/// below 2^53, exact in JavaScript clients, until the year 2255.
#[derive(Debug)]
pub struct OrderIds {
    next: AtomicU64,
    /// Bits below the counter that hold `instance`.
    shift: u32,
    instance: u64,
}

impl OrderIds {
    /// Starts above `max_stored` and above the clock: for the one gateway
    /// of the embedded exchange.
    pub fn new(max_stored: u64) -> Self {
        OrderIds {
            next: AtomicU64::new((now_ns() / 1_000_000 * 1_000).max(max_stored + 1)),
            shift: 0,
            instance: 0,
        }
    }

    /// For one of several gateways: ids end in the gateway's own
    /// `instance` number, so no two gateways hand out the same id.
    pub fn for_instance(max_stored: u64, instance: proto::InstanceId) -> Self {
        let shift = proto::InstanceId::BITS;
        OrderIds {
            next: AtomicU64::new((now_ns() / 1_000_000 * 1_000).max((max_stored >> shift) + 1)),
            shift,
            instance: u64::from(instance.get()),
        }
    }

    fn next(&self) -> OrderId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        OrderId((n << self.shift) | self.instance)
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    /// Where commands go: the embedded journal or the Kafka command log.
    log: Arc<dyn CommandLog>,
    store: Store,
    market: Arc<MarketData>,
    /// Every pair, configured or listed since.
    pairs: RwLock<pairs::PairTable>,
    keys: auth::KeyCache,
    /// Operators' keys: a cache of their own table.
    admin_keys: auth::KeyCache,
    /// Credits for new users on a local demo exchange.
    demo: demo::DemoFunding,
    rate: limits::RateLimiter,
    /// Binance's request weights per IP and order counts per account.
    usage: usage::Usage,
    in_flight: limits::InFlight,
    ids: OrderIds,
    metrics: GatewayMetrics,
    registry: prometheus::Registry,
    shutdown: watch::Receiver<bool>,
    /// One permit per open WebSocket connection.
    ws_connections: Arc<Semaphore>,
    /// The OpenAPI document, as `GET /api/openapi.json` serves it (its
    /// symbols are the pairs': a listing rebuilds it).
    openapi: RwLock<axum::body::Bytes>,
}

/// What a [`Gateway`] is made of.
#[derive(Debug)]
pub struct GatewayParts {
    /// Its bounds and timeouts.
    pub config: GatewayConfig,
    /// The command log it submits to: the embedded journal or the Kafka log.
    pub log: Arc<dyn CommandLog>,
    /// The store it answers queries and authenticates from.
    pub store: Store,
    /// The observer that sees `log`'s events.
    pub market: Arc<MarketData>,
    /// The pairs traded, in the configured order.
    pub pairs: Vec<PairConfig>,
    /// Where new order ids come from.
    pub ids: OrderIds,
    /// What `/metrics` renders.
    pub registry: prometheus::Registry,
    /// The gateway's own series, registered on `registry`.
    pub metrics: GatewayMetrics,
    /// Turning true closes the streams.
    pub shutdown: watch::Receiver<bool>,
    /// Demo funding, already checked against the assets (see
    /// [`parse_demo_funding`]); empty for none.
    pub demo_funding: Vec<(accounts::AssetId, u128)>,
}

impl Gateway {
    /// A gateway in front of `parts.log`.
    pub fn new(parts: GatewayParts) -> Arc<Gateway> {
        let GatewayParts {
            config,
            log,
            store,
            market,
            pairs,
            ids,
            registry,
            metrics,
            shutdown,
            demo_funding,
        } = parts;
        let symbols: Vec<Symbol> = pairs.iter().map(|p| p.symbol).collect();
        let openapi = rest::openapi::document_json(&pairs);
        let limit = |name: &str, v: u64| {
            metrics.limits.with_label_values(&[name]).set(v as i64);
        };
        limit("rate_limit_per_sec", config.rate_limit_per_sec.into());
        limit("rate_limit_burst", config.rate_limit_burst.into());
        limit("max_in_flight", config.max_in_flight as u64);
        limit(
            "max_in_flight_per_pair",
            config.max_in_flight_per_pair as u64,
        );
        limit("max_in_flight_cancels", config.max_in_flight_cancels as u64);
        limit("max_pair_lag", config.max_pair_lag);
        limit("max_pair_lag_records", config.max_pair_lag_records);
        limit("max_persister_lag", config.max_persister_lag);
        limit("ws_buffer", config.ws_buffer as u64);
        limit("max_ws_connections", config.max_ws_connections as u64);
        limit("ws_max_streams", config.ws_max_streams as u64);
        limit("ws_api_max_in_flight", config.ws_api_max_in_flight as u64);
        limit("ws_messages_per_sec", config.ws_messages_per_sec.into());
        limit("listen_key_ttl_secs", config.listen_key_ttl_secs);
        limit(
            "ws_connections_per_5min",
            config.ws_connections_per_5min.into(),
        );
        limit("header_read_timeout_ms", config.header_read_timeout_ms);
        limit("body_read_timeout_ms", config.body_read_timeout_ms);
        limit("max_body_bytes", config.max_body_bytes as u64);
        limit(
            "request_weight_per_minute",
            config.request_weight_per_minute.into(),
        );
        limit("orders_per_10s", config.orders_per_10s.into());
        limit("orders_per_day", config.orders_per_day.into());
        limit("ip_ban_after_429s", config.ip_ban_after_429s.into());
        limit("ip_ban_min_secs", config.ip_ban_min_secs);
        limit("ip_ban_max_secs", config.ip_ban_max_secs);
        limit("max_tracked_ips", config.max_tracked_ips as u64);
        limit("max_tracked_accounts", config.max_tracked_accounts as u64);
        Arc::new(Gateway {
            keys: auth::KeyCache::new(store.clone()),
            admin_keys: auth::KeyCache::admin(store.clone()),
            demo: demo::DemoFunding::new(demo_funding),
            rate: limits::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            usage: usage::Usage::new(&config),
            in_flight: limits::InFlight::new(
                config.max_in_flight,
                config.max_in_flight_cancels,
                config.max_in_flight_per_pair,
                &symbols,
            ),
            pairs: RwLock::new(pairs::PairTable::new(&pairs)),
            ws_connections: Arc::new(Semaphore::new(config.max_ws_connections)),
            openapi: RwLock::new(openapi),
            config,
            log,
            store,
            market,
            ids,
            metrics,
            registry,
            shutdown,
        })
    }

    /// The HTTP routes, with the layers every request passes (outermost
    /// first): every error answer made `{code,msg}` JSON, the request
    /// count (refusals included), the request-head bounds, the body
    /// deadline and size limit. Serve it with [`serve`] for the header read
    /// timeout.
    pub fn router(self: &Arc<Self>) -> Router {
        use axum::middleware::{from_fn, from_fn_with_state};
        let body_timeout = Duration::from_millis(self.config.body_read_timeout_ms);
        Router::new()
            .merge(rest::routes())
            .merge(admin::routes())
            .route("/ws", get(ws::upgrade))
            .route("/ws-api/v3", get(wsapi::upgrade))
            .route("/ws/{*streams}", get(ws::upgrade_path))
            .route("/stream", get(ws::upgrade_combined))
            .layer(DefaultBodyLimit::max(self.config.max_body_bytes))
            .layer(from_fn_with_state(body_timeout, serve::body_deadline))
            .layer(from_fn(serve::head_limits))
            .layer(from_fn(errors::catch_panics))
            .layer(from_fn_with_state(self.clone(), rest::weights::charge))
            .layer(from_fn_with_state(self.clone(), rest::count_requests))
            .layer(from_fn(errors::json_errors))
            .with_state(self.clone())
    }

    /// `exchangeInfo`'s `rateLimits`.
    fn rate_limits(&self) -> [usage::RateLimit; 3] {
        self.usage.rate_limits()
    }

    /// `pair`'s rules now, if it is configured: an operator may have
    /// changed them since start (the pair's status follows its engine's
    /// events and starts from its restored snapshot). The config file's
    /// copy only where the pair's status is not known; its scales and
    /// symbol never change.
    pub(crate) fn rules(&self, pair: Symbol) -> Option<PairConfig> {
        let file = *self.pairs.read().ok()?.listed(pair)?;
        Some(self.log.pair(pair).map_or(file, |s| s.config()))
    }

    /// The rates an order placed on `pair` now is charged, when the
    /// exchange charges fees (keeps accounts): the pair's rules', which
    /// follow an operator's change as its book applies it.
    fn fees(&self, pair: Symbol) -> Option<Fees> {
        self.log.accounts()?;
        Some(self.rules(pair)?.fees)
    }

    /// Serves a pair the log just listed (here, or through another
    /// gateway): its bounds, its assets, its place in every list and in the
    /// OpenAPI document's symbols. A pair served already stays as it is.
    pub fn add_pair(&self, pair: PairConfig) {
        self.in_flight.add_pair(pair.symbol);
        if let Some(accounts) = self.log.accounts() {
            self.market.set_assets(accounts.assets());
        }
        let list = match self.pairs.write() {
            Ok(mut table) => {
                table.add(pair);
                table.list().to_vec()
            }
            Err(_) => return,
        };
        if let Ok(mut doc) = self.openapi.write() {
            *doc = rest::openapi::document_json(&list);
        }
    }

    /// The pair Binance's API names `name` (`BTCEUR`).
    pub(crate) fn symbol_named(&self, name: &str) -> Option<Symbol> {
        self.pairs.read().ok()?.named(name)
    }

    /// Every pair's symbol, configured then listed.
    pub(crate) fn symbols(&self) -> Vec<Symbol> {
        self.pairs
            .read()
            .map(|t| t.list().iter().map(|p| p.symbol).collect())
            .unwrap_or_default()
    }

    /// Every pair as configured or listed, in that order.
    pub(crate) fn pair_list(&self) -> Vec<PairConfig> {
        self.pairs
            .read()
            .map(|t| t.list().to_vec())
            .unwrap_or_default()
    }

    pub(crate) fn result_timeout(&self) -> Duration {
        Duration::from_millis(self.config.result_timeout_ms)
    }
}
