//! The distributed mode's processes: `gateway`, `engine`, `persister` and
//! `risk` (see the `cluster` crate), each serving health and metrics, each stopped
//! by `stop` turning true.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use cluster::EngineParts;
use cluster::{Engine, Partitions};
use commandlog::CommandLog;
use gateway::{Gateway, GatewayMetrics, GatewayParts, MarketData, OrderIds};
use pipeline::PipelineMetrics;
use prometheus::{Encoder, Registry, TextEncoder};
use store::Store;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{Config, StartError};

/// A distributed-mode process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Stateless HTTP and WebSocket edge.
    Gateway,
    /// Owns partitions of the command log and matches them.
    Engine,
    /// Stores the event log.
    Persister,
    /// Runs the risk shards whose leases it holds.
    Risk,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Engine => "engine",
            Role::Persister => "persister",
            Role::Risk => "risk",
        }
    }
}

async fn connect(config: &Config) -> Result<Store, StartError> {
    let url = config.database_url();
    Store::connect(&url, config.db_connections)
        .await
        .map_err(|e| StartError::Connect(url.clone(), e))
}

/// What every role starts with.
struct Started {
    store: Store,
    registry: Registry,
    metrics: PipelineMetrics,
    listener: tokio::net::TcpListener,
    addr: std::net::SocketAddr,
    partitions: Partitions,
    pairs: Vec<proto::PairConfig>,
}

/// Runs `role` until `stop` turns true; `on_listen` gets the bound address.
pub async fn run(
    role: Role,
    config: &Config,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), StartError> {
    if role == Role::Risk && !config.accounts.enabled {
        return Err(StartError::AccountsDisabled);
    }
    // The file alone first: a bad one fails before the store is reached.
    config.partitions().map_err(StartError::Config)?;
    let store = connect(config).await?;
    let config = &with_listed(config, &store).await?;
    let partitions = config.partitions().map_err(StartError::Config)?;
    let pairs = config.validate().map_err(StartError::Config)?;
    let registry = Registry::new();
    let metrics = PipelineMetrics::register(&registry).map_err(StartError::Metrics)?;
    let listen = |e| StartError::Listen(config.listen.clone(), e);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    info!(role = role.name(), %addr, brokers = %config.kafka.brokers, "starting");
    let started = Started {
        store: store.clone(),
        registry,
        metrics,
        listener,
        addr,
        partitions,
        pairs,
    };
    let result = match role {
        Role::Gateway => run_gateway(config, started, stop, on_listen).await,
        Role::Engine => run_engine(config, started, stop, on_listen).await,
        Role::Persister => run_persister(config, started, stop, on_listen).await,
        Role::Risk => run_risk(config, started, stop, on_listen).await,
    };
    store.close().await;
    info!(role = role.name(), "stopped");
    result
}

/// Every pair with its partition: the config file's, then those listed at
/// runtime (`exchange replay` needs them too).
pub async fn partitions(config: &Config) -> Result<Partitions, StartError> {
    let store = connect(config).await?;
    let listed = with_listed(config, &store).await;
    store.close().await;
    listed?.partitions().map_err(StartError::Config)
}

/// The config with the pairs listed at runtime after the file's, in
/// listing order (a pair the file names too is the file's): their
/// partitions, rules and fees, as if configured.
async fn with_listed(config: &Config, store: &Store) -> Result<Config, StartError> {
    let mut rows = store.listed_pairs().await.map_err(StartError::Store)?;
    rows.retain(|row| {
        if row.partition.is_none() {
            warn!(pair = %row.pair, "a pair listed on an embedded exchange is not run here");
        }
        row.partition.is_some()
    });
    config.with_listed(&rows).map_err(StartError::Config)
}

/// The gateway role: the HTTP and WebSocket edge in front of the Kafka log.
async fn run_gateway(
    config: &Config,
    s: Started,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), StartError> {
    let gm = GatewayMetrics::register(&s.registry).map_err(StartError::Metrics)?;
    let market = Arc::new(
        MarketData::new(&s.pairs, config.gateway.ws_buffer).charging_fees(config.accounts.enabled),
    );
    let accounts = config.accounts.enabled.then(|| cluster::GatewayAccounts {
        // Unique per process start: the risk shards' decisions name it.
        gateway: gateway::now_ns() ^ (u64::from(std::process::id()) << 40),
        shards: config.accounts.shards,
        pairs: s.pairs.clone(),
    });
    let (log, follower, mut heard) = cluster::start_kafka_log(
        &config.kafka,
        &s.store,
        s.partitions,
        market.clone(),
        accounts,
    )
    .await?;
    let instance = s
        .store
        .register_instance("gateway", gateway::now_ns())
        .await
        .map_err(StartError::Store)?;
    let max_id = s.store.max_order_id().await.map_err(StartError::Store)?;
    let log: Arc<dyn CommandLog> = log;
    // Other gateways may already be taking orders: an order changed between
    // the store's read and the first event this gateway follows can be
    // reported from the state the store had (ARCHITECTURE.md, user data).
    market
        .seed_from_store(log.as_ref(), &s.store, std::time::Duration::from_secs(10))
        .await
        .map_err(StartError::Store)?;
    // The persister's progress and the halts, as this gateway sees them.
    let watched = log.pairs();
    let gauges = s
        .metrics
        .watch(move || watched.clone(), std::time::Duration::from_secs(1));
    let gw = Gateway::new(GatewayParts {
        config: config.gateway.clone(),
        log,
        store: s.store.clone(),
        market,
        pairs: s.pairs,
        ids: OrderIds::for_instance(max_id, instance),
        registry: s.registry,
        metrics: gm,
        shutdown: stop.clone(),
        // Demo funding is for a local embedded exchange only.
        demo_funding: Vec::new(),
    });
    // Pairs listed through other gateways: served once the log serves them.
    let listed_gw = gw.clone();
    let listings = tokio::spawn(async move {
        while let Some(l) = heard.recv().await {
            listed_gw.add_pair(l.config);
        }
    });
    on_listen(s.addr);
    let mut stopping = stop;
    let timeouts = config.gateway.serve_timeouts();
    let served = gateway::serve(s.listener, gw.router(), timeouts, async move {
        let _ = stopping.wait_for(|s| *s).await;
    })
    .await
    .map_err(StartError::Serve);
    follower.abort();
    gauges.abort();
    listings.abort();
    served
}

/// The engine role, with its health port.
async fn run_engine(
    config: &Config,
    s: Started,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), StartError> {
    let engine = Engine::register(&s.registry).map_err(StartError::Metrics)?;
    let ready = engine.clone();
    let health = serve_health(
        s.listener,
        s.registry,
        move || ready.is_ready(),
        stop.clone(),
    );
    on_listen(s.addr);
    let parts = EngineParts {
        kafka: config.kafka.clone(),
        config: config.engine.clone(),
        store: s.store,
        partitions: s.partitions,
        runtime: config.runtime.clone(),
        metrics: s.metrics,
        engine,
    };
    let r = cluster::run_engine(parts, stop)
        .await
        .map_err(StartError::Cluster);
    health.abort();
    r
}

/// The persister role, with its health port.
async fn run_persister(
    config: &Config,
    s: Started,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), StartError> {
    // Ready once its partitions are assigned, which run_persister does
    // before reading; it has no state to catch up on.
    let health = serve_health(s.listener, s.registry, || true, stop.clone());
    on_listen(s.addr);
    let r = cluster::run_persister(
        config.kafka.clone(),
        s.store,
        s.partitions,
        config.runtime.persister_batch,
        s.metrics,
        stop,
    )
    .await
    .map_err(StartError::Cluster);
    health.abort();
    r
}

/// The risk role, with its health port.
async fn run_risk(
    config: &Config,
    s: Started,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), StartError> {
    let role = cluster::RiskRole::register(&s.registry).map_err(StartError::Metrics)?;
    let ready = role.clone();
    let health = serve_health(
        s.listener,
        s.registry,
        move || ready.is_ready(),
        stop.clone(),
    );
    on_listen(s.addr);
    // The embedded exchange's settings: the same fees and cadence.
    let settings = crate::risk_settings(config)?.ok_or(StartError::AccountsDisabled)?;
    let parts = cluster::RiskParts {
        kafka: config.kafka.clone(),
        config: config.engine.clone(),
        store: s.store,
        partitions: s.partitions,
        pairs: s.pairs,
        settings,
        shards: config.accounts.shards,
        metrics: s.metrics,
        role,
    };
    let r = cluster::run_risk(parts, stop)
        .await
        .map_err(StartError::Cluster);
    health.abort();
    r
}

/// Creates the topics: one partition per pair and `kafka.spare_partitions`
/// for listings, and with accounts enabled one partition of the risk
/// topics per shard.
pub async fn create_topics(config: &Config) -> Result<(), StartError> {
    let partitions: Partitions = config.partitions().map_err(StartError::Config)?;
    let shards = config.accounts.enabled.then_some(config.accounts.shards);
    Ok(cluster::create_topics(&config.kafka, &partitions, shards).await?)
}

type Ready = Arc<dyn Fn() -> bool + Send + Sync>;

/// `/healthz`, `/readyz` (503 until `ready`) and `/metrics`.
fn serve_health(
    listener: tokio::net::TcpListener,
    registry: Registry,
    ready: impl Fn() -> bool + Send + Sync + 'static,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let ready: Ready = Arc::new(ready);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State((ready, _)): State<(Ready, Registry)>| async move {
                if ready() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "catching up\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(
                |State((_, registry)): State<(Ready, Registry)>| async move {
                    let mut out = Vec::new();
                    match TextEncoder::new().encode(&registry.gather(), &mut out) {
                        Ok(()) => (StatusCode::OK, out).into_response(),
                        Err(e) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                        }
                    }
                },
            ),
        )
        .with_state((ready, registry));
    // Internal, but on a port all the same: the gateway's header timeout
    // keeps a stalled scraper from holding a connection.
    let timeouts = gateway::GatewayConfig::default().serve_timeouts();
    tokio::spawn(async move {
        let _ = gateway::serve(listener, app, timeouts, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    })
}
