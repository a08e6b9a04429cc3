//! The embedded ends of the pipeline: the dispatcher (the actors' event
//! sink: observers, RESULT waiters, then the persister's queue; with the
//! risk stage on, also the balances and the answers to movements and
//! audits) and the persister's source (that queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commandlog::{
    AccountUpdate, AuditReport, EventRecord, MovementOutcome, Observer, SubmitError, Waiters,
};
use pipeline::{EventSink, Output, PipelineMetrics, Source, Stored};
use proto::{Seq, Symbol};
use store::{HaltedPair, SnapshotRow};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

/// What the journal writer hands the dispatcher with the risk stage on, in
/// the order it must reach observers and requests: each group commit's
/// balances before the answers and records that reflect them.
pub(crate) enum Settled {
    /// The balances one group commit changed (movements first), each
    /// published with `Observer::on_account` before anything behind it.
    Accounts(Vec<AccountUpdate>),
    /// A record or snapshot whose settlement is journaled.
    Output(Output),
    /// A movement's answer, behind its balance.
    Moved(
        oneshot::Sender<Result<MovementOutcome, SubmitError>>,
        MovementOutcome,
    ),
    /// An audit's answer, taken after its group's commit.
    Audit(oneshot::Sender<AuditReport>, AuditReport),
}

/// The dispatcher with the risk stage on: hands each item of `input` on,
/// in order, until the writer dropped its sender.
pub(crate) async fn dispatch_settled(
    mut input: mpsc::Receiver<Settled>,
    mut sink: Dispatcher,
    max_batch: usize,
) {
    let mut items = Vec::with_capacity(max_batch);
    while input.recv_many(&mut items, max_batch).await > 0 {
        for item in items.drain(..) {
            match item {
                Settled::Accounts(updates) => {
                    for u in updates {
                        sink.observer.on_account(&Arc::new(u));
                    }
                }
                Settled::Output(Output::Record(r)) => sink.record(r).await,
                Settled::Output(Output::Snapshot(s)) => sink.snapshot(s).await,
                Settled::Moved(reply, outcome) => {
                    let _ = reply.send(Ok(outcome));
                }
                Settled::Audit(reply, report) => {
                    let _ = reply.send(report);
                }
            }
        }
    }
}

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
    /// Cuts the linger short: a reader waits for the store.
    pub(crate) store_wanted: Arc<tokio::sync::Notify>,
    pub(crate) pairs: crate::exchange::PairMap,
    pub(crate) metrics: PipelineMetrics,
}

impl Source for Queue {
    async fn fill(&mut self, items: &mut Vec<Stored>, max: usize) -> bool {
        if self.input.recv_many(items, max).await == 0 {
            return false;
        }
        // Answers come from the engine, so let more records arrive: this
        // turns a transaction per record (at low rates) or per few records
        // into one per `linger`, and the index pages a transaction rewrites
        // are shared by more rows. A read of one's own orders or trades
        // does wait for the store: it cuts the linger short.
        if !self.linger.is_zero() && items.len() < max {
            tokio::select! {
                () = tokio::time::sleep(self.linger) => {}
                () = self.store_wanted.notified() => {}
            }
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
        let Ok(pairs) = self.pairs.read() else { return };
        // The journal writer deletes segments the stored snapshots cover.
        for (pair, position) in snapshots {
            if let Some(status) = pairs.get(pair) {
                status.snapshot_stored(*position);
            }
        }
        for (pair, status) in pairs.iter() {
            if let Some(seq) = last_seqs.get(pair) {
                status.persisted(*seq);
                self.metrics.observe(status);
            }
        }
    }

    fn halted(&mut self, halt: &HaltedPair) {
        let status = self
            .pairs
            .read()
            .ok()
            .and_then(|p| p.get(&halt.pair).cloned());
        if let Some(status) = status {
            status.halt(format!("events could not be stored: {}", halt.reason));
            self.metrics.observe_halt(&status);
        }
    }
}
