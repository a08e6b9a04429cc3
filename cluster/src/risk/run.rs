//! `exchange risk`: runs a [`ShardRole`] over Kafka for each risk shard
//! whose lease this process holds. A shard that loses its lease, or whose
//! turn fails, is dropped where it stands (as a kill -9 would leave it) and,
//! if still held, started again from its stored snapshot: the turn's order
//! makes that safe (see `role.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline::{PipelineMetrics, RiskSettings};
use prometheus::{IntGaugeVec, Opts, Registry};
use proto::PairConfig;
use store::{LeaseKey, Role, Store};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::error::ClusterError;
use crate::kafka::{KafkaConfig, Partitions};
use crate::leases::{Change, Keeper, keep_leases};
use crate::ownership::EngineConfig;
use crate::risk::kafka::KafkaRiskLogs;
use crate::risk::{RiskCore, ShardId, ShardRole};

/// Most inputs one turn applies.
const MAX_RUN: usize = 4_096;

/// Most events records one pass of the feed reads per partition.
const FEED_MAX: usize = 1_024;

/// How long a failed shard waits before it starts again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// The longest a shard that applied inputs goes without a snapshot, however
/// few: a quiet shard's snapshot must not outlive the topics' retention.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// A shard may lag this many inputs and still count as caught up.
const READY_LAG: i64 = 1_000;

/// The risk role's live state, for readiness and metrics.
#[derive(Debug)]
pub struct RiskRole {
    /// Shards started and not yet caught up once.
    starting: Mutex<HashSet<u16>>,
    lag: IntGaugeVec,
    owned: IntGaugeVec,
    snapshot_age: IntGaugeVec,
}

impl RiskRole {
    /// Registers the role's gauges.
    pub fn register(registry: &Registry) -> Result<Arc<RiskRole>, prometheus::Error> {
        let lag = IntGaugeVec::new(
            Opts::new(
                "risk_partition_lag",
                "Inputs of the shard's risk partition not yet applied (alarm when it grows).",
            ),
            &["shard"],
        )?;
        let owned = IntGaugeVec::new(
            Opts::new(
                "risk_shard_owned",
                "1 for each risk shard run by this process.",
            ),
            &["shard"],
        )?;
        let snapshot_age = IntGaugeVec::new(
            Opts::new(
                "risk_snapshot_age_seconds",
                "Seconds since the shard's last stored snapshot (events must be retained longer).",
            ),
            &["shard"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(owned.clone()))?;
        registry.register(Box::new(snapshot_age.clone()))?;
        Ok(Arc::new(RiskRole {
            starting: Mutex::default(),
            lag,
            owned,
            snapshot_age,
        }))
    }

    /// True when every shard this process runs has caught up once.
    pub fn is_ready(&self) -> bool {
        self.starting.lock().is_ok_and(|s| s.is_empty())
    }

    fn set_starting(&self, shard: u16, starting: bool) {
        if let Ok(mut s) = self.starting.lock() {
            if starting {
                s.insert(shard);
            } else {
                s.remove(&shard);
            }
        }
    }
}

/// What a risk role is made of.
#[derive(Debug)]
pub struct RiskParts {
    /// The brokers and topics.
    pub kafka: KafkaConfig,
    /// The lease cadence (the engines').
    pub config: EngineConfig,
    /// Where snapshots and leases live.
    pub store: Store,
    /// The pairs and their partitions.
    pub partitions: Partitions,
    /// The pairs, validated.
    pub pairs: Vec<PairConfig>,
    /// Fees and the snapshot cadence.
    pub settings: RiskSettings,
    /// How many shards (`accounts.shards`).
    pub shards: u16,
    /// The pipeline's series (the stage's counters).
    pub metrics: PipelineMetrics,
    /// The role's own series and readiness.
    pub role: Arc<RiskRole>,
}

/// Runs the risk role until `stop` turns true.
pub async fn run_risk(
    parts: RiskParts,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let parts = Arc::new(parts);
    let me = format!(
        "{}-{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "risk".into()),
        std::process::id(),
        commandlog::now_ns()
    );
    let keys: Vec<(LeaseKey, i32)> = (0..parts.shards)
        .map(|s| (LeaseKey::RiskShard(s), i32::from(s)))
        .collect();
    let lease_keys: Vec<LeaseKey> = keys.iter().map(|(k, _)| *k).collect();
    parts
        .store
        .ensure_leases(&lease_keys)
        .await
        .map_err(|e| ClusterError::store("lease rows", e))?;
    let (change_tx, mut changes) = mpsc::unbounded_channel();
    info!(member = %me, shards = parts.shards, "joining the risk roles");
    let keeper = tokio::spawn(keep_leases(
        Keeper {
            store: parts.store.clone(),
            me: me.clone(),
            role: Role::Risk,
            keys,
            config: parts.config.clone(),
            listings: None,
        },
        change_tx,
    ));
    let mut shards: HashMap<u16, JoinHandle<()>> = HashMap::new();
    let result = loop {
        let change = tokio::select! {
            _ = stop.changed() => break Ok(()),
            c = changes.recv() => c,
        };
        let Some(change) = change else {
            break Err(ClusterError::Stopped("the lease keeper"));
        };
        apply_change(&parts, &me, &mut shards, change).await;
    };
    keeper.abort();
    for (_, task) in shards.drain() {
        task.abort();
    }
    if let Err(e) = parts.store.leave(&me).await {
        warn!(error = %e, "releasing the leases failed; they expire instead");
    }
    result
}

async fn apply_change(
    parts: &Arc<RiskParts>,
    me: &str,
    shards: &mut HashMap<u16, JoinHandle<()>>,
    change: Change,
) {
    match change {
        Change::Start(n) => {
            let Ok(index) = u16::try_from(n) else { return };
            if shards.contains_key(&index) {
                return;
            }
            info!(shard = index, "starting the risk shard");
            parts.role.set_starting(index, true);
            let label = [index.to_string()];
            parts.role.owned.with_label_values(&label).set(1);
            shards.insert(
                index,
                tokio::spawn(keep_shard(parts.clone(), index, me.to_string())),
            );
        }
        Change::Stop { partition, release } => {
            let Ok(index) = u16::try_from(partition) else {
                return;
            };
            let Some(task) = shards.remove(&index) else {
                return;
            };
            info!(shard = index, release, "stopping the risk shard");
            // Dropped where it stands: a successor replays from the stored
            // snapshot and forwards nothing twice.
            task.abort();
            let _ = task.await;
            parts.role.set_starting(index, false);
            parts
                .role
                .owned
                .with_label_values(&[index.to_string()])
                .set(0);
            if release
                && let Err(e) = parts
                    .store
                    .release_lease(LeaseKey::RiskShard(index), me)
                    .await
            {
                warn!(shard = index, error = %e, "releasing a lease failed; it expires instead");
            }
        }
    }
}

/// Runs shard `index` until aborted, starting it again after a failure.
async fn keep_shard(parts: Arc<RiskParts>, index: u16, me: String) {
    loop {
        let e = run_shard(&parts, index, &me).await;
        error!(shard = index, error = %e, "the risk shard failed; starting it again from its snapshot");
        tokio::time::sleep(RESTART_DELAY).await;
    }
}

/// One life of shard `index`: restore, start, turn and feed until an error.
async fn run_shard(parts: &RiskParts, index: u16, me: &str) -> ClusterError {
    let id = ShardId {
        index,
        count: parts.shards,
    };
    let row = match parts.store.latest_risk_snapshot(index).await {
        Ok(r) => r,
        Err(e) => return ClusterError::store("reading the risk snapshot", e),
    };
    let core = match RiskCore::restore(
        id,
        row.as_ref(),
        &parts.pairs,
        parts.settings.clone(),
        parts.metrics.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return ClusterError::Config(e.to_string()),
    };
    let producer = match parts.kafka.producer() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let lease = Some((parts.store.clone(), me.to_string()));
    let mut logs = match KafkaRiskLogs::new(&parts.kafka, &parts.partitions, index, producer, lease)
    {
        Ok(l) => l,
        Err(e) => return e,
    };
    let events: Vec<i32> = parts.partitions.iter().map(|(p, _)| p).collect();
    let mut role = match ShardRole::start(core, &events, &mut logs, MAX_RUN).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    info!(
        shard = index,
        from = role.core().next(),
        "risk shard running"
    );
    let label = [index.to_string()];
    let mut snapshot_at = Instant::now();
    let mut report = Instant::now();
    loop {
        let anyway = snapshot_at.elapsed() >= SNAPSHOT_INTERVAL;
        let row = match role.turn(&mut logs, anyway).await {
            Ok((_, row)) => row,
            Err(e) => return e,
        };
        if let Some(row) = row {
            // A failure is retried by the next turn's timer.
            snapshot_at = Instant::now();
            if let Err(e) = parts.store.save_risk_snapshot(&row).await {
                warn!(shard = index, error = %e, "storing a risk snapshot failed");
            }
        }
        if let Err(e) = role.feed(&mut logs, FEED_MAX).await {
            return e;
        }
        if report.elapsed() >= Duration::from_secs(1) {
            report = Instant::now();
            let age = i64::try_from(snapshot_at.elapsed().as_secs()).unwrap_or(i64::MAX);
            parts.role.snapshot_age.with_label_values(&label).set(age);
            if let Ok(end) = logs.risk_end().await {
                let lag = (end - role.core().next()).max(0);
                parts.role.lag.with_label_values(&label).set(lag);
                if lag <= READY_LAG {
                    parts.role.set_starting(index, false);
                }
            }
        }
    }
}
