//! The embedded ends of the pipeline: the dispatcher (the actors' event
//! sink: observers, RESULT waiters, then the persister's queue) and the
//! persister's source (that queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commandlog::{EventRecord, Observer, PairStatus, Waiters};
use pipeline::{EventSink, PipelineMetrics, Source, Stored};
use proto::{Seq, Symbol};
use store::{HaltedPair, SnapshotRow};
use tokio::sync::mpsc;
use tracing::error;

/// Fans each record out to the observer and the request waiting for it,
/// then queues it for the persister.
pub(crate) struct Dispatcher {
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) waiters: Arc<Mutex<Waiters>>,
    pub(crate) persist: mpsc::Sender<Stored>,
}

impl Dispatcher {
    async fn persist(&mut self, item: Stored) {
        if self.persist.send(item).await.is_err() {
            error!("the persister stopped; events are no longer stored");
            // Keep draining so the actors can finish; the journal still
            // holds every command, and a restart stores what is missing.
        }
    }
}

impl EventSink for Dispatcher {
    async fn record(&mut self, record: Arc<EventRecord>) {
        self.observer.on_record(&record);
        if let Ok(mut w) = self.waiters.lock() {
            w.complete(&record);
        }
        self.persist(Stored::Record(record)).await;
    }

    async fn snapshot(&mut self, row: SnapshotRow) {
        self.persist(Stored::Snapshot(row)).await;
    }

    async fn flush(&mut self) {}
}

/// The dispatcher's queue, as the persister reads it; progress goes to the
/// pairs' counters.
pub(crate) struct Queue {
    pub(crate) input: mpsc::Receiver<Stored>,
    /// How long records may gather before a transaction (0: none).
    pub(crate) linger: Duration,
    pub(crate) pairs: HashMap<Symbol, Arc<PairStatus>>,
    pub(crate) metrics: PipelineMetrics,
}

impl Source for Queue {
    async fn fill(&mut self, items: &mut Vec<Stored>, max: usize) -> bool {
        if self.input.recv_many(items, max).await == 0 {
            return false;
        }
        // Nothing waits for the store (answers come from the engine), so
        // let a few more records arrive: at low rates this turns a
        // transaction per record, and the thread wake-ups of each of its
        // statements, into a transaction per `linger`.
        if !self.linger.is_zero() && items.len() < max {
            tokio::time::sleep(self.linger).await;
            while items.len() < max {
                match self.input.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
        }
        true
    }

    fn stored(&mut self, last_seqs: &HashMap<Symbol, Seq>, snapshots: &[(Symbol, u64)]) {
        // The journal writer deletes segments the stored snapshots cover.
        for (pair, position) in snapshots {
            if let Some(status) = self.pairs.get(pair) {
                status.snapshot_stored(*position);
            }
        }
        for (pair, status) in &self.pairs {
            if let Some(seq) = last_seqs.get(pair) {
                status.persisted(*seq);
                self.metrics.observe(status);
            }
        }
    }

    fn halted(&mut self, halt: &HaltedPair) {
        if let Some(status) = self.pairs.get(&halt.pair) {
            status.halt(format!("events could not be stored: {}", halt.reason));
            self.metrics.observe_halt(status);
        }
    }
}
