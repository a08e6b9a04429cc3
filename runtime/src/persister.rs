//! The persister: stores event records and snapshots in batches, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use proto::{Seq, Symbol};
use store::{Batch, Store};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::actor::Output;
use crate::exchange::RETRY_DELAY;
use crate::{PairStatus, RuntimeMetrics};

/// Runs until `input` closes and everything received is stored. A failed
/// transaction is retried as it is (the rows are idempotent), so a database
/// outage stalls the pipeline, which the gateway sees as lag and sheds.
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
        let mut batch = Batch::default();
        let mut snapshots = Vec::new();
        for item in items.drain(..) {
            match item {
                Output::Record(r) => {
                    let Some(status) = pairs.get(&r.pair) else {
                        warn!(pair = %r.pair, "events of an unknown pair are dropped");
                        continue;
                    };
                    let last = last_seqs.entry(r.pair).or_default();
                    batch.add_events(status.config.qty_scale, last, &r.events);
                }
                Output::Snapshot(s) => {
                    snapshots.push((s.pair, s.position));
                    batch.add_snapshot(s);
                }
            }
        }
        metrics.batches.with_label_values(&["persister"]).inc();
        while let Err(e) = store.write_batch(&batch).await {
            error!(error = %e, "storing a batch failed; retrying");
            tokio::time::sleep(RETRY_DELAY).await;
        }
        // The journal writer deletes segments the stored snapshots cover.
        for (pair, position) in snapshots {
            if let Some(status) = pairs.get(&pair) {
                status
                    .snapshot_position
                    .fetch_max(position, Ordering::AcqRel);
            }
        }
        for (pair, status) in &pairs {
            if let Some(seq) = last_seqs.get(pair) {
                status.persisted_seq.store(seq.0, Ordering::Release);
                status.update_gauges();
            }
        }
    }
}
