//! Wires the embedded exchange together: store, runtime, gateway, HTTP
//! server, and the order in which they stop.

pub mod config;
mod error;
pub mod operator;
pub mod roles;

use std::net::SocketAddr;
use std::sync::Arc;

use commandlog::CommandLog;
use gateway::{Gateway, GatewayMetrics, GatewayParts, MarketData, OrderIds};
use pipeline::PipelineMetrics;
use runtime::Exchange;
use store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

pub use config::{Config, ConfigError};
pub use error::StartError;

/// A running embedded exchange.
#[derive(Debug)]
pub struct Running {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// The store it writes (for checks and key management).
    pub store: Store,
    exchange: Arc<Exchange>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

/// The risk stage's settings, when accounts are enabled.
fn risk_settings(config: &Config) -> Result<Option<runtime::RiskSettings>, StartError> {
    if !config.accounts.enabled {
        return Ok(None);
    }
    Ok(Some(runtime::RiskSettings {
        snapshot_every: config.accounts.snapshot_every,
    }))
}

/// The longest start waits for the store to hold every recovered event
/// before the gateway's order view is read from it.
const SEED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the exchange described by `config`: recovers every book, then
/// serves HTTP. Listening on port 0 picks a free port (see [`Running::addr`]).
pub async fn start(config: &Config) -> Result<Running, StartError> {
    config.validate().map_err(StartError::Config)?;
    let url = config.database_url();
    // The journal is always here; the SQLite store too, unless a database
    // URL names another.
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartError::DataDir(config.data_dir.clone(), e))?;
    let store = Store::connect(&url, config.db_connections)
        .await
        .map_err(|e| StartError::Connect(url.clone(), e))?;
    // The pairs listed at runtime, after the file's.
    let listed = store.listed_pairs().await.map_err(StartError::Store)?;
    let config = &config.with_listed(&listed).map_err(StartError::Config)?;
    let pairs = config.validate().map_err(StartError::Config)?;
    let registry = prometheus::Registry::new();
    let rm = PipelineMetrics::register(&registry).map_err(StartError::Metrics)?;
    let gm = GatewayMetrics::register(&registry).map_err(StartError::Metrics)?;
    let market = Arc::new(
        MarketData::new(&pairs, config.gateway.ws_buffer).charging_fees(config.accounts.enabled),
    );
    let exchange = Exchange::start(
        store.clone(),
        &pairs,
        &config.data_dir.join("journal"),
        config.runtime.clone(),
        market.clone(),
        rm,
        risk_settings(config)?,
    )
    .await
    .map_err(StartError::Runtime)?;
    let exchange = Arc::new(exchange);
    // Before the listener opens: no command can change an order between
    // the store's read and the view's.
    market
        .seed_from_store(exchange.as_ref(), &store, SEED_WAIT)
        .await
        .map_err(StartError::Store)?;
    // Read with the risk stage's own asset table; no risk stage, no funding.
    let demo_funding = match exchange.accounts() {
        Some(a) => config
            .demo_credits(&a.assets())
            .map_err(StartError::Config)?,
        None => Vec::new(),
    };
    let ids = OrderIds::new(store.max_order_id().await.map_err(StartError::Store)?);
    let (stop, stop_rx) = watch::channel(false);
    let gw = Gateway::new(GatewayParts {
        config: config.gateway.clone(),
        log: exchange.clone(),
        store: store.clone(),
        market,
        pairs,
        ids,
        registry,
        metrics: gm,
        shutdown: stop_rx.clone(),
        demo_funding,
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(config.listen.clone(), e))?;
    let app = gw.router();
    let mut stopping = stop_rx;
    let timeouts = config.gateway.serve_timeouts();
    let server = tokio::spawn(gateway::serve(listener, app, timeouts, async move {
        let _ = stopping.wait_for(|s| *s).await;
    }));
    info!(%addr, store = %url, "exchange listening");
    Ok(Running {
        addr,
        store,
        exchange,
        stop,
        server,
    })
}

impl Running {
    /// Stops intake (the listener and every stream), lets queued commands
    /// reach their books and every event reach the store, snapshots the
    /// books, and closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        self.exchange.shutdown().await;
        self.store.close().await;
        info!("exchange stopped");
    }
}
