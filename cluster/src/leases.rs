//! The lease keeper: renews this member's leases every heartbeat, reads
//! those of every member of its role, and tells the member's loop which
//! partitions to start and stop (an engine's pairs, a risk role's shards).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use store::{LeaseKey, Role, Store};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::kafka::Partitions;
use crate::listings::{LISTING_POLL, adopt_listings};
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
    /// An engine's pairs, which listings grow (a risk role's shards do
    /// not: `None`).
    pub(crate) listings: Option<Partitions>,
}

/// Renews this member's leases every heartbeat, reads those of its role,
/// and tells the main loop which partitions to start and stop.
pub(crate) async fn keep_leases(k: Keeper, changes: mpsc::UnboundedSender<Change>) {
    let Keeper {
        store,
        me,
        role,
        mut keys,
        config,
        listings,
    } = k;
    let mut pairs: Vec<LeaseKey> = keys.iter().map(|(key, _)| *key).collect();
    let partition_of = |keys: &[(LeaseKey, i32)], key: LeaseKey| {
        keys.iter().find(|(k, _)| *k == key).map(|(_, p)| *p)
    };
    let mut looked = Instant::now();
    let mut liveness = Liveness::new(Duration::from_millis(config.lease_ms.into()));
    let mut held: HashSet<LeaseKey> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.heartbeat_ms.into()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let send = |change: Change| changes.send(change).is_ok();
    loop {
        tick.tick().await;
        if let Some(partitions) = &listings
            && looked.elapsed() >= LISTING_POLL
        {
            looked = Instant::now();
            if grow(&store, partitions, &mut keys).await {
                pairs = keys.iter().map(|(key, _)| *key).collect();
            }
        }
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
            if let Some(partition) = partition_of(&keys, *lost)
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
            if let Some(partition) = partition_of(&keys, pair)
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
                    if let Some(partition) = partition_of(&keys, lease.key)
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

/// Adds the pairs listed since the last look to `keys`, in partition
/// order, with their lease rows; true if any was.
async fn grow(store: &Store, partitions: &Partitions, keys: &mut Vec<(LeaseKey, i32)>) -> bool {
    let listed = match adopt_listings(store, partitions).await {
        Ok(l) if l.is_empty() => return false,
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "reading the listings failed");
            return false;
        }
    };
    let new: Vec<LeaseKey> = listed
        .iter()
        .map(|l| LeaseKey::Pair(l.config.symbol))
        .collect();
    // The rows exist before the plan names the pairs: a lease without a
    // row could never be taken. Retried at the next look if this fails.
    if let Err(e) = store.ensure_leases(&new).await {
        warn!(error = %e, "lease rows for listed pairs");
    }
    for l in listed {
        info!(pair = %l.config.symbol, partition = l.partition, "a listed pair joins the plan");
        keys.push((LeaseKey::Pair(l.config.symbol), l.partition));
    }
    keys.sort_unstable_by_key(|(_, p)| *p);
    true
}
