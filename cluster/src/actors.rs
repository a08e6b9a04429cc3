//! The engine's actors: one per pair whose lease it holds, each restored
//! from the pair's snapshot and fed from its partition of the command log.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commandlog::{LagUnit, PairStatus};
use pipeline::{Output, PipelineMetrics, RuntimeConfig};
use proto::{Command, PairConfig};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{Consumer, StreamConsumer};
use store::{LeaseKey, Store};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::commands::record_offset;
use crate::emitter::Snapshots;
use crate::error::ClusterError;

/// How long a hand-over waits for the final snapshot to be stored before it
/// releases the lease anyway (the next owner then replays a little more).
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// One running pair.
pub(crate) struct Actor {
    pub(crate) input: mpsc::Sender<(u64, Command)>,
    /// The last position read for the actor (handed over or in `backlog`).
    pub(crate) sent: u64,
    /// Commands read while the actor's queue was full, oldest first: at
    /// most the rest of one record plus what the consumer had fetched
    /// before the partition was paused.
    pub(crate) backlog: VecDeque<(u64, Command)>,
    /// The position of the snapshot the actor started from.
    restored: u64,
    /// The offset of the next record to read: the one after the last read,
    /// or after a restore the one holding the snapshot's position (the
    /// snapshot may cover only part of it).
    pub(crate) next_offset: i64,
    task: tokio::task::JoinHandle<()>,
    pub(crate) status: Arc<PairStatus>,
}

impl Actor {
    /// Restores `config`'s book from its latest snapshot (or empty) and
    /// starts its actor.
    pub(crate) async fn start(
        store: &Store,
        config: &PairConfig,
        rc: &RuntimeConfig,
        output: mpsc::Sender<Output>,
        metrics: &PipelineMetrics,
    ) -> Result<Actor, ClusterError> {
        let pair = config.symbol;
        let pipeline::Restored { book, position, .. } =
            pipeline::restore_book(store, config, rc.book_capacity).await?;
        info!(%pair, position, "restored; replaying the log after the snapshot");
        // Counts positions: the engine reads its lag from the broker instead.
        let status = Arc::new(PairStatus::new(
            *book.config(),
            book.status(),
            LagUnit::Commands,
            position,
            book.last_seq(),
        ));
        metrics.observe_halt(&status);
        let (tx, rx) = mpsc::channel(rc.actor_queue);
        let task = pipeline::spawn_actor(
            book,
            position,
            status.clone(),
            rx,
            output,
            rc.snapshot_every,
            metrics.clone(),
        );
        Ok(Actor {
            input: tx,
            sent: position,
            backlog: VecDeque::new(),
            restored: position,
            next_offset: record_offset(position),
            task,
            status,
        })
    }

    /// Hands the backlog to the actor's queue while there is room; true
    /// once the backlog is empty (or the pair halted: its commands wait in
    /// the log).
    pub(crate) fn feed(&mut self) -> bool {
        while let Some(item) = self.backlog.pop_front() {
            match self.input.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => {
                    self.backlog.push_front(item);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    warn!(
                        pair = %self.status.symbol,
                        "the pair is halted; its commands wait in the log"
                    );
                    self.backlog.clear();
                }
            }
        }
        true
    }

    /// Waits for the task to end after its final snapshot.
    pub(crate) async fn join(self) {
        drop(self.input);
        let _ = self.task.await;
    }

    /// Stops the actor in the background; with `release` (a planned
    /// hand-over) releases the lease once its final snapshot is stored, so
    /// the next owner restores exactly where this actor stopped.
    pub(crate) fn stop(self, release: bool, store: Store, me: String, snapshots: Snapshots) {
        let pair = self.status.symbol;
        let (status, restored) = (self.status.clone(), self.restored);
        tokio::spawn(async move {
            // Dropping the input ends the task after its final snapshot.
            self.join().await;
            if !release {
                return;
            }
            let last = status.applied_position();
            let stored = || {
                last <= restored
                    || snapshots
                        .lock()
                        .ok()
                        .and_then(|s| s.get(&pair).map(|(_, p)| *p))
                        .is_some_and(|p| p >= last)
            };
            let waiting = Instant::now();
            while !stored() && waiting.elapsed() < HANDOVER_WAIT {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Err(e) = store.release_lease(LeaseKey::Pair(pair), &me).await {
                warn!(%pair, error = %e, "releasing a lease failed; it expires instead");
            }
        });
    }
}

/// Pauses or resumes fetching one partition.
pub(crate) fn pause(consumer: &StreamConsumer, topic: &str, partition: i32, paused: bool) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let done = if paused {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    if let Err(e) = done {
        warn!(partition, paused, error = %e, "pausing or resuming a partition failed");
    }
}
