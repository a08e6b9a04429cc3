//! The lease keeper: renews this engine's leases every heartbeat, reads
//! everyone's, and tells the engine's loop which actors to start and stop.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proto::Symbol;
use store::Store;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::kafka::Partitions;
use crate::ownership::{EngineConfig, Liveness, moves};

/// A change of the pairs this engine runs, from the lease keeper to the
/// main loop.
#[derive(Debug)]
pub(crate) enum Change {
    /// The lease of the pair on this partition was taken: start its actor.
    Start(i32),
    /// Stop the actor; then release the lease if `release` (a planned
    /// hand-over), or not (the lease was lost to another engine).
    Stop { partition: i32, release: bool },
}

/// Renews this engine's leases every heartbeat, reads everyone's, and
/// tells the main loop which actors to start and stop.
pub(crate) async fn keep_leases(
    store: Store,
    me: String,
    pairs: Vec<Symbol>,
    partitions: Partitions,
    config: EngineConfig,
    changes: mpsc::UnboundedSender<Change>,
) {
    let mut liveness = Liveness::new(Duration::from_millis(config.lease_ms.into()));
    let mut held: HashSet<Symbol> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.heartbeat_ms.into()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let send = |change: Change| changes.send(change).is_ok();
    loop {
        tick.tick().await;
        let still: HashSet<Symbol> = match store.heartbeat(&me).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "heartbeat failed");
                liveness.reset();
                continue;
            }
        };
        for lost in held.difference(&still) {
            warn!(pair = %lost, "lease lost to another engine");
            if let Some(partition) = partitions.of(*lost)
                && !send(Change::Stop {
                    partition,
                    release: false,
                })
            {
                return;
            }
        }
        held.retain(|p| still.contains(p));
        let (members, leases) = match store.ownership().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "reading the leases failed");
                liveness.reset();
                continue;
            }
        };
        let now = Instant::now();
        liveness.observe(&members, now);
        let live = liveness.live(&me, now);
        let planned = moves(&me, &pairs, &leases, &live, &held);
        for pair in planned.release {
            held.remove(&pair);
            info!(%pair, "handing the pair over");
            if let Some(partition) = partitions.of(pair)
                && !send(Change::Stop {
                    partition,
                    release: true,
                })
            {
                return;
            }
        }
        for lease in planned.take {
            match store.take_lease(&lease, &me).await {
                Ok(true) => {
                    info!(pair = %lease.pair, from = ?lease.owner, "lease taken");
                    held.insert(lease.pair);
                    if let Some(partition) = partitions.of(lease.pair)
                        && !send(Change::Start(partition))
                    {
                        return;
                    }
                }
                Ok(false) => {} // another engine was first
                Err(e) => warn!(pair = %lease.pair, error = %e, "taking a lease failed"),
            }
        }
        for (id, beat) in liveness.dead(&me, now) {
            if let Err(e) = store.forget_member(&id, beat).await {
                warn!(member = %id, error = %e, "removing a silent engine failed");
            }
        }
    }
}
