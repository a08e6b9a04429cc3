//! `exchange persister`: stores the events topic, through the pipeline's
//! persister loop. Each transaction holds a batch's rows and the offsets
//! after it, so a restart resumes exactly where the store left off;
//! `(pair, seq)` drops duplicates.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use pipeline::{EventLog, Persister, PipelineMetrics, Source, Stored};
use proto::{Seq, Symbol};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use store::{HaltedPair, Store};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::ClusterError;
use crate::kafka::{EventBatch, KafkaConfig, Partitions};
use crate::listings::{LISTING_POLL, adopt_listings};

/// How long the persister waits for more records before writing a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Runs the persister until `stop` turns true; what was read is stored
/// before it returns.
pub async fn run_persister(
    kafka: KafkaConfig,
    store: Store,
    partitions: Partitions,
    max_batch: usize,
    metrics: PipelineMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let stored = store
        .log_offsets(&kafka.events_topic)
        .await
        .map_err(|e| ClusterError::store("reading the stored offsets", e))?;
    let consumer = assign(&kafka, &partitions, &stored)?;
    info!(offsets = ?stored, "persister resuming");
    let last_seqs = store
        .last_seqs()
        .await
        .map_err(|e| ClusterError::store("reading progress", e))?;
    // Pairs whose events the store refused: their partitions are not read
    // past the refused records, so resuming them stores every event.
    let halted: HashSet<Symbol> = store
        .halted_pairs()
        .await
        .map_err(|e| ClusterError::store("reading halted pairs", e))?
        .into_iter()
        .map(|h| h.pair)
        .collect();
    let persister = Persister {
        store,
        qty_scales: partitions
            .iter()
            .map(|(_, c)| (c.symbol, c.qty_scale))
            .collect(),
        last_seqs,
        halted,
        max_batch,
        log: Some(EventLog {
            topic: kafka.events_topic.clone(),
            partitions: partitions.iter().map(|(p, c)| (p, c.symbol)).collect(),
        }),
        metrics: metrics.clone(),
    };
    let source = EventsTopic {
        halted: partitions
            .iter()
            .filter(|(_, c)| persister.halted.contains(&c.symbol))
            .map(|(p, _)| p)
            .collect(),
        next_offsets: partitions
            .iter()
            .map(|(p, _)| (p, stored.get(&p).map_or(0, |o| *o as i64)))
            .collect(),
        consumer,
        kafka,
        partitions,
        metrics,
        stop,
        lag_tick: tokio::time::interval(Duration::from_secs(1)),
        listing_tick: tokio::time::interval(LISTING_POLL),
        store: persister.store.clone(),
    };
    persister.run(source).await;
    Ok(())
}

/// A consumer of the events topic, each partition from its stored offset.
fn assign(
    kafka: &KafkaConfig,
    partitions: &Partitions,
    stored: &HashMap<i32, u64>,
) -> Result<StreamConsumer, ClusterError> {
    let consumer: StreamConsumer = kafka
        .consumer_config("persister")
        .create()
        .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (p, _) in partitions.iter() {
        let offset = stored
            .get(&p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o as i64));
        tpl.add_partition_offset(&kafka.events_topic, p, offset)
            .map_err(|e| ClusterError::kafka(format!("partition {p}"), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| ClusterError::kafka(format!("assigning {}", kafka.events_topic), e))?;
    Ok(consumer)
}

/// The events topic as the persister's source.
struct EventsTopic {
    consumer: StreamConsumer,
    kafka: KafkaConfig,
    partitions: Partitions,
    metrics: PipelineMetrics,
    stop: watch::Receiver<bool>,
    lag_tick: tokio::time::Interval,
    listing_tick: tokio::time::Interval,
    /// Where listings are read.
    store: Store,
    /// The next offset to store per partition, for the lag gauge.
    next_offsets: HashMap<i32, i64>,
    /// Partitions of halted pairs: not read past their refused records.
    halted: HashSet<i32>,
}

impl Source for EventsTopic {
    async fn fill(&mut self, items: &mut Vec<Stored>, max: usize) -> bool {
        let first = loop {
            tokio::select! {
                _ = self.stop.changed() => return false,
                _ = self.lag_tick.tick() => self.report_lag(),
                _ = self.listing_tick.tick() => {
                    if self.adopt_listings(items).await {
                        return true;
                    }
                }
                m = self.consumer.recv() => break m,
            }
        };
        // Borrowed from the consumer, each message is taken apart before
        // the next is read.
        let mut read = Read {
            partitions: &self.partitions,
            halted: &self.halted,
            next_offsets: &mut self.next_offsets,
        };
        let mut count = read.take(first, items);
        while count < max {
            let Ok(next) = tokio::time::timeout(BATCH_WINDOW, self.consumer.recv()).await else {
                break;
            };
            count += read.take(next, items);
        }
        true
    }

    fn stored(&mut self, _: &HashMap<Symbol, Seq>, _: &[(Symbol, u64)]) {}

    fn halted(&mut self, halt: &HaltedPair) {
        // Gateways read the halt from the store and refuse the pair; here
        // its partition is read no further.
        if let Some(p) = self.partitions.of(halt.pair) {
            self.halted.insert(p);
        }
    }
}

impl EventsTopic {
    /// Reads the pairs listed since the last look from offset zero of
    /// their partitions, after an item that tells the persister their
    /// partition and quantity scale; true if any was.
    async fn adopt_listings(&mut self, items: &mut Vec<Stored>) -> bool {
        let listed = match adopt_listings(&self.store, &self.partitions).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "reading the listings failed");
                return false;
            }
        };
        for l in &listed {
            let p = l.partition;
            info!(pair = %l.config.symbol, partition = p, "storing a listed pair's events");
            items.push(Stored::Listed {
                pair: l.config.symbol,
                qty_scale: l.config.qty_scale,
                partition: Some(p),
            });
            self.next_offsets.insert(p, 0);
            let mut tpl = TopicPartitionList::new();
            let added = tpl
                .add_partition_offset(&self.kafka.events_topic, p, Offset::Beginning)
                .and_then(|()| self.consumer.incremental_assign(&tpl));
            if let Err(e) = added {
                // Nothing of the pair is stored until a restart reads it.
                tracing::error!(partition = p, error = %e, "assigning a listed pair's partition");
            }
        }
        !listed.is_empty()
    }

    /// Sets `matching_persister_lag_events{pair}` to the event records in
    /// the log that are not stored yet (high watermark minus the next
    /// offset).
    fn report_lag(&self) {
        for (p, config) in self.partitions.iter() {
            // A blocking round trip to the broker, once a second, on the
            // task that has nothing else to do while it waits.
            if let Ok((_, high)) = self.consumer.fetch_watermarks(
                &self.kafka.events_topic,
                p,
                Duration::from_millis(500),
            ) {
                let next = self.next_offsets.get(&p).copied().unwrap_or(0);
                self.metrics
                    .persister_lag
                    .with_label_values(&[config.symbol.as_str()])
                    .set((high - next).max(0));
            }
        }
    }
}

/// What reading a record of the events topic needs, borrowed from the
/// source while its consumer is borrowed for the next one.
struct Read<'a> {
    partitions: &'a Partitions,
    halted: &'a HashSet<i32>,
    next_offsets: &'a mut HashMap<i32, i64>,
}

impl Read<'_> {
    /// The items of one record of the events topic; 1 when it was a record.
    fn take(&mut self, msg: KafkaResult<BorrowedMessage<'_>>, items: &mut Vec<Stored>) -> usize {
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "consuming the event log");
                return 0;
            }
        };
        let partition = m.partition();
        if self.halted.contains(&partition) {
            return 1;
        }
        match self.partitions.pair(partition) {
            Some(config) => match m.payload().map(proto::decode::<EventBatch>) {
                Some(Ok(b)) if b.pair == config.symbol => items.push(Stored::Records {
                    pair: b.pair,
                    records: b.records,
                }),
                _ => warn!(
                    partition,
                    offset = m.offset(),
                    "a bad event record is skipped"
                ),
            },
            None => warn!(partition, "a partition with no pair is skipped"),
        }
        items.push(Stored::Offset {
            partition,
            next: m.offset() as u64 + 1,
        });
        self.next_offsets.insert(partition, m.offset() + 1);
        1
    }
}
