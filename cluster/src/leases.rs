//! The lease keeper: renews this member's leases every heartbeat, reads
//! those of every member of its role, and tells the member's loop which
//! partitions to start and stop (an engine's pairs, a risk role's shards).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use store::{LeaseKey, Role, Store};
use tokio::sync::mpsc;
use tracing::{info, warn};

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

/// What a lease keeper keeps: the member, its role and the leases the
/// role plans (in partition order), each with its partition.
pub(crate) struct Keeper {
    pub(crate) store: Store,
    pub(crate) me: String,
    pub(crate) role: Role,
    pub(crate) keys: Vec<(LeaseKey, i32)>,
    pub(crate) config: EngineConfig,
}

/// Renews this member's leases every heartbeat, reads those of its role,
/// and tells the main loop which partitions to start and stop.
pub(crate) async fn keep_leases(k: Keeper, changes: mpsc::UnboundedSender<Change>) {
    let Keeper {
        store,
        me,
        role,
        keys,
        config,
    } = k;
    let pairs: Vec<LeaseKey> = keys.iter().map(|(key, _)| *key).collect();
    let partition_of = |key: LeaseKey| keys.iter().find(|(k, _)| *k == key).map(|(_, p)| *p);
    let mut liveness = Liveness::new(Duration::from_millis(config.lease_ms.into()));
    let mut held: HashSet<LeaseKey> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.heartbeat_ms.into()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let send = |change: Change| changes.send(change).is_ok();
    loop {
        tick.tick().await;
        let still: HashSet<LeaseKey> = match store.heartbeat(role, &me).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "heartbeat failed");
                liveness.reset();
                continue;
            }
        };
        for lost in held.difference(&still) {
            warn!(lease = %lost, "lease lost to another member");
            if let Some(partition) = partition_of(*lost)
                && !send(Change::Stop {
                    partition,
                    release: false,
                })
            {
                return;
            }
        }
        held.retain(|p| still.contains(p));
        let (members, leases) = match store.ownership(role).await {
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
            info!(lease = %pair, "handing the lease over");
            if let Some(partition) = partition_of(pair)
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
                    info!(lease = %lease.key, from = ?lease.owner, "lease taken");
                    held.insert(lease.key);
                    if let Some(partition) = partition_of(lease.key)
                        && !send(Change::Start(partition))
                    {
                        return;
                    }
                }
                Ok(false) => {} // another engine was first
                Err(e) => warn!(lease = %lease.key, error = %e, "taking a lease failed"),
            }
        }
        for (id, beat) in liveness.dead(&me, now) {
            if let Err(e) = store.forget_member(&id, beat).await {
                warn!(member = %id, error = %e, "removing a silent member failed");
            }
        }
    }
}
