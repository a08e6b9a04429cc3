//! The distributed mode's processes: `gateway`, `engine` and `persister`
//! (see the `cluster` crate), each serving health and metrics, each stopped
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
use tracing::info;

use crate::Config;

/// A distributed-mode process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Stateless HTTP and WebSocket edge.
    Gateway,
    /// Owns partitions of the command log and matches them.
    Engine,
    /// Stores the event log.
    Persister,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Engine => "engine",
            Role::Persister => "persister",
        }
    }
}

async fn connect(config: &Config) -> Result<Store, String> {
    let url = config.database_url();
    Store::connect(&url, config.db_connections)
        .await
        .map_err(|e| format!("store: {e}"))
}

/// Runs `role` until `stop` turns true; `on_listen` gets the bound address.
pub async fn run(
    role: Role,
    config: &Config,
    stop: watch::Receiver<bool>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let partitions = config.partitions()?;
    let pairs = config.validate()?;
    let store = connect(config).await?;
    let registry = Registry::new();
    let rm = PipelineMetrics::register(&registry).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    info!(role = role.name(), %addr, brokers = %config.kafka.brokers, "starting");
    let result = match role {
        Role::Gateway => {
            let gm = GatewayMetrics::register(&registry).map_err(|e| e.to_string())?;
            let market = Arc::new(MarketData::new(&pairs, config.gateway.ws_buffer));
            let (log, follower) =
                cluster::start_kafka_log(&config.kafka, &store, partitions, market.clone()).await?;
            let instance = store
                .register_instance("gateway", gateway::now_ns())
                .await
                .map_err(|e| e.to_string())?;
            let max_id = store.max_order_id().await.map_err(|e| e.to_string())?;
            let log: Arc<dyn CommandLog> = log;
            // The persister's progress and the halts, as this gateway sees them.
            let gauges = rm.watch(log.pairs(), std::time::Duration::from_secs(1));
            let gw = Gateway::new(GatewayParts {
                config: config.gateway.clone(),
                log,
                store: store.clone(),
                market,
                pairs,
                ids: OrderIds::for_instance(max_id, instance),
                registry,
                metrics: gm,
                shutdown: stop.clone(),
            });
            on_listen(addr);
            let mut stopping = stop;
            let timeouts = config.gateway.serve_timeouts();
            let served = gateway::serve(listener, gw.router(), timeouts, async move {
                let _ = stopping.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| e.to_string());
            follower.abort();
            gauges.abort();
            served
        }
        Role::Engine => {
            let engine = Engine::register(&registry).map_err(|e| e.to_string())?;
            let ready = engine.clone();
            let health = serve_health(listener, registry, move || ready.is_ready(), stop.clone());
            on_listen(addr);
            let parts = EngineParts {
                kafka: config.kafka.clone(),
                config: config.engine.clone(),
                store: store.clone(),
                partitions,
                runtime: config.runtime.clone(),
                metrics: rm,
                engine,
            };
            let r = cluster::run_engine(parts, stop)
                .await
                .map_err(|e| e.to_string());
            health.abort();
            r
        }
        Role::Persister => {
            // Ready once its partitions are assigned, which run_persister
            // does before reading; it has no state to catch up on.
            let health = serve_health(listener, registry, || true, stop.clone());
            on_listen(addr);
            let r = cluster::run_persister(
                config.kafka.clone(),
                store.clone(),
                partitions,
                config.runtime.persister_batch,
                rm,
                stop,
            )
            .await
            .map_err(|e| e.to_string());
            health.abort();
            r
        }
    };
    store.close().await;
    info!(role = role.name(), "stopped");
    result
}

/// Creates the topics: one partition per pair.
pub async fn create_topics(config: &Config) -> Result<(), String> {
    let partitions: Partitions = config.partitions()?;
    Ok(cluster::create_topics(&config.kafka, &partitions).await?)
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
