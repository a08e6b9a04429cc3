//! `exchange persister`: stores the events topic in Postgres. Each
//! transaction holds a batch's rows and the offsets after it, so a restart
//! resumes exactly where the store left off; `(pair, seq)` drops duplicates.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proto::{Seq, Symbol};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use runtime::RuntimeMetrics;
use store::{Batch, Store};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{EventBatch, KafkaConfig, Partitions};

/// How long the persister waits for more records before writing a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Runs the persister until `stop` turns true; what was read is stored
/// before it returns.
pub async fn run_persister(
    kafka: KafkaConfig,
    store: Store,
    partitions: Partitions,
    max_batch: usize,
    metrics: RuntimeMetrics,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let consumer: StreamConsumer = kafka
        .consumer_config("persister")
        .create()
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let stored = store
        .log_offsets(&kafka.events_topic)
        .await
        .map_err(|e| format!("reading the stored offsets: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for (p, _) in partitions.iter() {
        let offset = stored
            .get(&p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o as i64));
        tpl.add_partition_offset(&kafka.events_topic, p, offset)
            .map_err(|e| format!("partition {p}: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("assigning {}: {e}", kafka.events_topic))?;
    info!(offsets = ?stored, "persister resuming");
    // The next offset to store per partition, for the lag gauge.
    let mut next_offsets: HashMap<i32, i64> = partitions
        .iter()
        .map(|(p, _)| (p, stored.get(&p).map_or(0, |o| *o as i64)))
        .collect();
    let mut lag_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_seqs: HashMap<Symbol, Seq> = store
        .last_seqs()
        .await
        .map_err(|e| format!("reading progress: {e}"))?;
    // Pairs whose events the store refused: their partitions are not read
    // past the refused records, so resuming them stores every event.
    let mut halted: HashSet<Symbol> = store
        .halted_pairs()
        .await
        .map_err(|e| format!("reading halted pairs: {e}"))?
        .into_iter()
        .map(|h| h.pair)
        .collect();
    loop {
        let first = tokio::select! {
            _ = stop.changed() => break,
            _ = lag_tick.tick() => {
                report_lag(&consumer, &kafka, &partitions, &next_offsets, &metrics);
                continue;
            }
            m = consumer.recv() => m,
        };
        let stored = last_seqs.clone();
        let mut batch = Batch::default();
        let mut count = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Ok(m)
                    if partitions
                        .pair(m.partition())
                        .is_some_and(|c| halted.contains(&c.symbol)) => {}
                Ok(m) => {
                    let partition = m.partition();
                    match partitions.pair(partition) {
                        Some(config) => match m.payload().map(proto::decode::<EventBatch>) {
                            Some(Ok(b)) if b.pair == config.symbol => {
                                let last = last_seqs.entry(b.pair).or_default();
                                for (_, events) in &b.records {
                                    batch.add_events(config.qty_scale, last, events);
                                }
                            }
                            _ => warn!(
                                partition,
                                offset = m.offset(),
                                "a bad event record is skipped"
                            ),
                        },
                        None => warn!(partition, "a partition with no pair is skipped"),
                    }
                    batch.set_log_offset(&kafka.events_topic, partition, m.offset() as u64 + 1);
                    next_offsets.insert(partition, m.offset() + 1);
                    count += 1;
                }
                Err(e) => warn!(error = %e, "consuming the event log"),
            }
            if count < max_batch {
                next = tokio::time::timeout(BATCH_WINDOW, consumer.recv())
                    .await
                    .ok();
            }
        }
        metrics.batches.with_label_values(&["persister"]).inc();
        let pair_of = |_: &str, p: i32| partitions.pair(p).map(|c| c.symbol);
        for halt in runtime::store_batch(&store, batch, &stored, pair_of).await {
            // Gateways read the halt from the store and refuse the pair.
            last_seqs.insert(halt.pair, halt.seq);
            halted.insert(halt.pair);
        }
    }
    Ok(())
}

/// Sets `matching_persister_lag_events{pair}` to the event records in the
/// log that are not stored yet (high watermark minus the next offset).
fn report_lag(
    consumer: &StreamConsumer,
    kafka: &KafkaConfig,
    partitions: &Partitions,
    next_offsets: &HashMap<i32, i64>,
    metrics: &RuntimeMetrics,
) {
    for (p, config) in partitions.iter() {
        // A blocking round trip to the broker, once a second, on the task
        // that has nothing else to do while it waits.
        if let Ok((_, high)) =
            consumer.fetch_watermarks(&kafka.events_topic, p, Duration::from_millis(500))
        {
            let next = next_offsets.get(&p).copied().unwrap_or(0);
            metrics
                .persister_lag
                .with_label_values(&[config.symbol.as_str()])
                .set((high - next).max(0));
        }
    }
}
