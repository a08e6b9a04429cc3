//! The persister: stores event records and snapshots in batches, in order.
//!
//! A failure that may pass (the database down, busy or failing over) is
//! retried as it is (the rows are idempotent), so an outage stalls the
//! pipeline, which the gateway sees as lag and sheds. A failure that
//! retrying cannot fix (a value or row the database refuses) is narrowed to
//! its pairs: they are halted and recorded as such in the store, and every
//! other pair's rows are stored. So no single pair can stop the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proto::{Seq, Symbol};
use store::{Batch, HaltedPair, Store, StoreError};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::actor::Output;
use crate::exchange::RETRY_DELAY;
use commandlog::PairStatus;

use crate::RuntimeMetrics;

/// Runs until `input` closes and everything received is stored.
pub(crate) async fn run(
    store: Store,
    mut input: mpsc::Receiver<Output>,
    mut last_seqs: HashMap<Symbol, Seq>,
    pairs: HashMap<Symbol, Arc<PairStatus>>,
    max_batch: usize,
    linger: std::time::Duration,
    metrics: RuntimeMetrics,
) {
    let mut items = Vec::with_capacity(max_batch);
    // Pairs halted by a store failure: their later events are not stored,
    // so that the store never holds a gap.
    let mut halted: HashSet<Symbol> = HashSet::new();
    while input.recv_many(&mut items, max_batch).await > 0 {
        // Nothing waits for the store (answers come from the engine), so
        // let a few more records arrive: at low rates this turns a
        // transaction per record, and the thread wake-ups of each of its
        // statements, into a transaction per `linger`.
        if !linger.is_zero() && items.len() < max_batch {
            tokio::time::sleep(linger).await;
            while items.len() < max_batch {
                match input.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
        }
        let stored = last_seqs.clone();
        let mut batch = Batch::default();
        let mut snapshots = Vec::new();
        for item in items.drain(..) {
            match item {
                Output::Record(r) if halted.contains(&r.pair) => {}
                Output::Record(r) => {
                    let Some(status) = pairs.get(&r.pair) else {
                        warn!(pair = %r.pair, "events of an unknown pair are dropped");
                        continue;
                    };
                    let last = last_seqs.entry(r.pair).or_default();
                    batch.add_events(status.config.qty_scale, last, &r.events);
                }
                Output::Snapshot(s) if halted.contains(&s.pair) => {}
                Output::Snapshot(s) => {
                    snapshots.push((s.pair, s.position));
                    batch.add_snapshot(s);
                }
            }
        }
        metrics.batches.with_label_values(&["persister"]).inc();
        for halt in store_batch(&store, batch, &stored, |_, _| None).await {
            if let Some(status) = pairs.get(&halt.pair) {
                status.halt(format!("events could not be stored: {}", halt.reason));
                metrics.observe_halt(status);
            }
            last_seqs.insert(halt.pair, halt.seq);
            halted.insert(halt.pair);
        }
        // The journal writer deletes segments the stored snapshots cover.
        for (pair, position) in snapshots {
            if let Some(status) = pairs.get(&pair).filter(|_| !halted.contains(&pair)) {
                status.snapshot_stored(position);
            }
        }
        for (pair, status) in &pairs {
            if let Some(seq) = last_seqs.get(pair) {
                status.persisted(*seq);
                metrics.observe(status);
            }
        }
    }
}

/// Stores `batch`, retrying failures that may pass until they do. A failure
/// that retrying cannot fix is narrowed down: each pair's rows are stored
/// on their own (a log offset with the pair `pair_of` names), and the pairs
/// whose rows the store still refuses are recorded as halted after their
/// seq in `stored` and returned. Every other pair's rows are stored.
pub async fn store_batch(
    store: &Store,
    batch: Batch,
    stored: &HashMap<Symbol, Seq>,
    pair_of: impl Fn(&str, i32) -> Option<Symbol>,
) -> Vec<HaltedPair> {
    let Err(e) = write_retrying(store, &batch).await else {
        return Vec::new();
    };
    warn!(error = %e, "a batch cannot be stored; storing it pair by pair");
    let mut halted = Vec::new();
    for (pair, part) in batch.split_by_pair(pair_of) {
        let Err(e) = write_retrying(store, &part).await else {
            continue;
        };
        error!(%pair, error = %e, "the pair's events cannot be stored; the pair is halted");
        let halt = HaltedPair {
            pair,
            seq: stored.get(&pair).copied().unwrap_or_default(),
            reason: e.to_string(),
            halted_at: commandlog::now_ns(),
        };
        while let Err(e) = store.halt_pair(&halt).await {
            error!(%pair, error = %e, "recording the halt failed; retrying");
            if e.is_permanent() {
                break;
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
        halted.push(halt);
    }
    halted
}

/// Writes `batch`, retrying failures that may pass; returns one that will not.
async fn write_retrying(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    loop {
        match store.write_batch(batch).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                error!(error = %e, "storing a batch failed; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}
