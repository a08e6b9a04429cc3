//! The engine's event sink: the actors' events go to the events topic, one
//! record per run of a pair's commands, every send awaited in order; each
//! snapshot is stored once the events before it were sent, and the
//! position it covers committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commandlog::EventRecord;
use pipeline::{EventSink, RETRY_DELAY};
use proto::Symbol;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use store::{Batch, SnapshotRow, Store};
use tracing::{error, warn};

use crate::commands::record_offset;
use crate::fence::Fences;
use crate::kafka::{EventBatch, KafkaConfig, Partitions};

/// When, and at which position, each pair's last snapshot was stored.
pub(crate) type Snapshots = Arc<Mutex<HashMap<Symbol, (Instant, u64)>>>;

/// Sends the actors' events to the events topic and stores their snapshots.
pub(crate) struct Emitter {
    pub(crate) producer: FutureProducer,
    pub(crate) consumer: Arc<StreamConsumer>,
    pub(crate) store: Store,
    pub(crate) kafka: KafkaConfig,
    pub(crate) partitions: Partitions,
    pub(crate) snapshots: Snapshots,
    /// The forward fences, stored with each snapshot.
    pub(crate) fences: Fences,
    /// Records gathered since the last send, one batch per pair.
    pub(crate) pending: Vec<EventBatch>,
    /// Per pair, the offset after its last events record this engine sent:
    /// every later event of the pair is sent after it, by this engine or,
    /// replayed, by a later owner, so a snapshot taken now can tell a
    /// gateway to start its view there. Unknown until the first send.
    pub(crate) events_next: HashMap<Symbol, u64>,
}

impl EventSink for Emitter {
    async fn record(&mut self, record: Arc<EventRecord>) {
        // The emitter holds the only reference: no copy.
        let r = Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone());
        match self.pending.iter_mut().find(|b| b.pair == r.pair) {
            Some(b) => b.records.push((r.position, r.events)),
            None => self.pending.push(EventBatch {
                pair: r.pair,
                records: vec![(r.position, r.events)],
            }),
        }
    }

    async fn snapshot(&mut self, mut row: SnapshotRow) {
        // The snapshot covers events that must be in the log first.
        self.send_all().await;
        let (pair, position) = (row.pair, row.position);
        // Unknown before this engine sent any of the pair's events: the
        // store then keeps the offset of the snapshot it replaces.
        row.events_from = self.events_next.get(&pair).copied();
        let fence = self
            .fences
            .lock()
            .ok()
            .and_then(|mut f| f.get_mut(&pair).map(|f| f.at(position)));
        let mut batch = Batch::default();
        match fence {
            Some(Some(fence)) => batch.add_fence(pair, position, fence),
            // Not known at this position yet: a snapshot without its fence
            // would let a replay from it admit what the live engine
            // dropped. Skipped; the next one covers its commands.
            Some(None) => return,
            None => {}
        }
        batch.add_snapshot(row);
        if let Err(e) = pipeline::write_retrying(&self.store, &batch).await {
            // Only a cost: the next snapshot covers this one's commands, and
            // until then a restore replays a little more.
            error!(%pair, error = %e, "the store refuses a snapshot; it is skipped");
            return;
        }
        if let Ok(mut s) = self.snapshots.lock() {
            s.insert(pair, (Instant::now(), position));
        }
        self.commit(pair, position);
    }

    async fn flush(&mut self) {
        self.send_all().await;
    }
}

impl Emitter {
    /// Commits the offset a restore of `pair` would start from, for
    /// operators' lag tools.
    fn commit(&self, pair: Symbol, position: u64) {
        let Some(p) = self.partitions.of(pair) else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        // The committed offset is the next one to read: the record holding
        // the snapshot's last command, which may hold more.
        if tpl
            .add_partition_offset(
                &self.kafka.orders_topic,
                p,
                Offset::Offset(record_offset(position)),
            )
            .is_ok()
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            // Harmless: a restore starts from the snapshot anyway.
            warn!(%pair, error = %e, "committing the snapshot's position failed");
        }
    }

    /// Sends every pending batch; retries until the broker takes it.
    async fn send_all(&mut self) {
        for batch in self.pending.drain(..) {
            let Some(partition) = self.partitions.of(batch.pair) else {
                continue;
            };
            let payload = match proto::encode(&batch) {
                Ok(p) => p,
                Err(e) => {
                    error!(pair = %batch.pair, error = %e, "an event batch cannot be encoded");
                    continue;
                }
            };
            loop {
                let record = FutureRecord::to(&self.kafka.events_topic)
                    .partition(partition)
                    .key(batch.pair.as_str())
                    .payload(&payload);
                match self.producer.send(record, Duration::from_secs(5)).await {
                    Ok(delivery) => {
                        if let Ok(at) = u64::try_from(delivery.offset) {
                            self.events_next.insert(batch.pair, at + 1);
                        }
                        break;
                    }
                    Err((e, _)) => {
                        error!(pair = %batch.pair, error = %e, "sending events failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
            }
        }
    }
}
