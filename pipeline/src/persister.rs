//! The persister, the same loop in both modes: stores event records and
//! snapshots in batches, in order, from a [`Source`] (embedded: the
//! dispatcher's queue; distributed: the events topic, whose offsets are
//! stored with each batch).
//!
//! A failure that may pass (the database down, busy or failing over) is
//! retried as it is (the rows are idempotent), so an outage stalls the
//! pipeline, which the gateway sees as lag and sheds. A failure that
//! retrying cannot fix (a value or row the database refuses) is narrowed to
//! its pairs: they are halted and recorded as such in the store, and every
//! other pair's rows are stored. So no single pair can stop the store.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use commandlog::EventRecord;
use proto::{Event, Seq, Symbol};
use store::{Batch, HaltedPair, SnapshotRow, Store, StoreError};
use tracing::{error, warn};

use crate::metrics::PipelineMetrics;

/// How long a failed store write or broker send waits before its retry,
/// everywhere in the pipeline.
pub const RETRY_DELAY: Duration = Duration::from_millis(200);

/// One thing for the persister to store.
#[derive(Debug)]
pub enum Stored {
    /// One command's events.
    Record(Arc<EventRecord>),
    /// Several commands' events of one pair, in order: `(position, events)`.
    Records {
        /// The pair.
        pair: Symbol,
        /// Per command, its position and its events.
        records: Vec<(u64, Vec<Event>)>,
    },
    /// A snapshot covering every record of its pair before it.
    Snapshot(SnapshotRow),
    /// A pair listed at runtime, ahead of its first record.
    Listed {
        /// The pair.
        pair: Symbol,
        /// Its quantities' decimals.
        qty_scale: u8,
        /// Its partition of the event log, if read from one.
        partition: Option<i32>,
    },
    /// Where reading `partition` of the event log resumes once this batch
    /// is stored (stored in the same transaction).
    Offset {
        /// The partition.
        partition: i32,
        /// The next offset to read.
        next: u64,
    },
}

/// Where a persister's input comes from, and who hears of its progress.
pub trait Source: Send {
    /// Waits for input and appends at most `max` items to `items`; false
    /// once there is no more (the loop then ends).
    fn fill(&mut self, items: &mut Vec<Stored>, max: usize) -> impl Future<Output = bool> + Send;

    /// A batch is stored: the pairs' stored seqs, and the snapshots it held
    /// as `(pair, position)`.
    fn stored(&mut self, last_seqs: &HashMap<Symbol, Seq>, snapshots: &[(Symbol, u64)]);

    /// The store refused `halt.pair`'s rows for good: the pair is halted
    /// (already recorded in the store) and none of its later rows are
    /// stored, so the store never holds a gap.
    fn halted(&mut self, halt: &HaltedPair);
}

/// The event log whose offsets a distributed persister stores.
#[derive(Debug, Clone)]
pub struct EventLog {
    /// The topic.
    pub topic: String,
    /// The pair of each partition.
    pub partitions: HashMap<i32, Symbol>,
}

/// The persister's state between batches.
#[derive(Debug)]
pub struct Persister {
    /// Where the rows go.
    pub store: Store,
    /// Each pair's quantity scale (its rows need it); events of any other
    /// pair are dropped.
    pub qty_scales: HashMap<Symbol, u8>,
    /// The last event seq stored per pair: older events are duplicates.
    pub last_seqs: HashMap<Symbol, Seq>,
    /// Pairs whose rows the store refused; nothing more of theirs is stored.
    pub halted: HashSet<Symbol>,
    /// Most items per transaction.
    pub max_batch: usize,
    /// The event log whose offsets [`Stored::Offset`] names, if any.
    pub log: Option<EventLog>,
    /// `matching_store_batches_total{writer="persister"}`.
    pub metrics: PipelineMetrics,
}

impl Persister {
    /// Stores what `source` gives until it has no more.
    pub async fn run(mut self, mut source: impl Source) {
        let mut items = Vec::with_capacity(self.max_batch);
        while source.fill(&mut items, self.max_batch).await {
            if items.is_empty() {
                continue;
            }
            let stored = self.last_seqs.clone();
            let (batch, mut snapshots) = self.fold(&mut items);
            self.metrics.batches.with_label_values(&["persister"]).inc();
            let log = self.log.as_ref();
            let pair_of = |_: &str, p: i32| log.and_then(|l| l.partitions.get(&p).copied());
            for halt in store_batch(&self.store, batch, &stored, pair_of).await {
                self.last_seqs.insert(halt.pair, halt.seq);
                self.halted.insert(halt.pair);
                source.halted(&halt);
            }
            snapshots.retain(|(pair, _)| !self.halted.contains(pair));
            source.stored(&self.last_seqs, &snapshots);
        }
    }

    /// The rows of `items` (emptied), and the snapshots among them.
    fn fold(&mut self, items: &mut Vec<Stored>) -> (Batch, Vec<(Symbol, u64)>) {
        let mut batch = Batch::default();
        let mut snapshots = Vec::new();
        for item in items.drain(..) {
            match item {
                Stored::Record(r) => self.add_events(&mut batch, r.pair, &r.events),
                Stored::Records { pair, records } => {
                    for (_, events) in &records {
                        self.add_events(&mut batch, pair, events);
                    }
                }
                Stored::Listed {
                    pair,
                    qty_scale,
                    partition,
                } => {
                    self.qty_scales.insert(pair, qty_scale);
                    if let (Some(log), Some(p)) = (self.log.as_mut(), partition) {
                        log.partitions.insert(p, pair);
                    }
                }
                Stored::Snapshot(s) if self.halted.contains(&s.pair) => {}
                Stored::Snapshot(s) => {
                    snapshots.push((s.pair, s.position));
                    batch.add_snapshot(s);
                }
                Stored::Offset { partition, next } => {
                    let Some(log) = &self.log else { continue };
                    // A halted pair's partition is not read past its
                    // refused records, so resuming it stores every event.
                    if log
                        .partitions
                        .get(&partition)
                        .is_some_and(|p| self.halted.contains(p))
                    {
                        continue;
                    }
                    batch.set_log_offset(&log.topic, partition, next);
                }
            }
        }
        (batch, snapshots)
    }

    fn add_events(&mut self, batch: &mut Batch, pair: Symbol, events: &[Event]) {
        if self.halted.contains(&pair) {
            return;
        }
        let Some(&scale) = self.qty_scales.get(&pair) else {
            warn!(%pair, "events of an unknown pair are dropped");
            return;
        };
        let last = self.last_seqs.entry(pair).or_default();
        batch.add_events(scale, last, events);
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

/// Writes `batch`, retrying failures that may pass; returns one that will
/// not. The pipeline's one retry policy for the store.
pub async fn write_retrying(store: &Store, batch: &Batch) -> Result<(), StoreError> {
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
