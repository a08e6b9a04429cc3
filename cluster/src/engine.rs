//! `exchange engine`: owns the partitions the consumer group assigns it and
//! runs one actor per pair on them, restoring each from its snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntGaugeVec, Opts, Registry};
use proto::{Command, PairConfig, Symbol};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use runtime::{Output, PairStatus, RuntimeConfig, RuntimeMetrics};
use store::{Batch, Store};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::{EventBatch, KafkaConfig, Partitions};

/// How long a failed send or store write waits before its retry.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// A partition may lag this many records and still count as caught up.
const READY_LAG: i64 = 1_000;

/// Records partitions taken away by a rebalance, for the main loop to stop
/// their actors.
struct EngineContext {
    revoked: Mutex<Vec<i32>>,
}

impl ClientContext for EngineContext {}

impl ConsumerContext for EngineContext {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(partitions = ?parts, "partitions revoked");
                if let Ok(mut r) = self.revoked.lock() {
                    r.extend(parts);
                }
            }
            Rebalance::Assign(tpl) => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(partitions = ?parts, "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance failed"),
        }
    }
}

/// The engine's live state, for readiness and metrics.
#[derive(Debug)]
pub struct Engine {
    ready: AtomicBool,
    consumer_lag: IntGaugeVec,
    snapshot_age: IntGaugeVec,
    replayed: IntGaugeVec,
    owned: IntGaugeVec,
}

impl Engine {
    /// Registers the engine's gauges.
    pub fn register(registry: &Registry) -> Result<Arc<Engine>, prometheus::Error> {
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "matching_consumer_lag",
                "Records of the partition's command log not yet applied by this engine.",
            ),
            &["partition"],
        )?;
        let snapshot_age = IntGaugeVec::new(
            Opts::new(
                "matching_snapshot_age_seconds",
                "Seconds since the pair's last stored snapshot.",
            ),
            &["pair"],
        )?;
        let replayed = IntGaugeVec::new(
            Opts::new(
                "matching_replay_position",
                "The last position applied per pair (replay progress after a restore).",
            ),
            &["pair"],
        )?;
        let owned = IntGaugeVec::new(
            Opts::new(
                "matching_pair_owned",
                "1 for each pair whose actor runs in this engine (series of other pairs are absent).",
            ),
            &["pair"],
        )?;
        registry.register(Box::new(owned.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        registry.register(Box::new(snapshot_age.clone()))?;
        registry.register(Box::new(replayed.clone()))?;
        Ok(Arc::new(Engine {
            ready: AtomicBool::new(false),
            consumer_lag,
            snapshot_age,
            replayed,
            owned,
        }))
    }

    /// True when every owned partition is caught up.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

struct Actor {
    input: mpsc::Sender<(u64, Command)>,
    /// The last position handed to the actor.
    sent: u64,
    /// The offset of the next record to read: the one after the last read,
    /// or after a restore the one holding the snapshot's position (the
    /// snapshot may cover only part of it).
    next_offset: i64,
    thread: std::thread::JoinHandle<()>,
    status: Arc<PairStatus>,
}

/// Restores `config`'s book from its latest snapshot (or empty) and starts
/// its actor.
async fn start_actor(
    store: &Store,
    config: &PairConfig,
    rc: &RuntimeConfig,
    output: mpsc::Sender<Output>,
    metrics: &RuntimeMetrics,
) -> Result<Actor, String> {
    let pair = config.symbol;
    let (book, position) = runtime::restore_book(store, config, rc.book_capacity)
        .await
        .map_err(|e| e.to_string())?;
    info!(%pair, position, "restored; replaying the log after the snapshot");
    let status = Arc::new(PairStatus::new(
        config.clone(),
        position,
        book.last_seq(),
        metrics,
    ));
    metrics.halted.with_label_values(&[pair.as_str()]).set(0);
    let (tx, rx) = mpsc::channel(rc.actor_queue);
    let thread = runtime::spawn_actor(
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
        next_offset: crate::record_offset(position),
        thread,
        status,
    })
}

/// Runs the engine role until `stop` turns true: joins the group, applies
/// commands, emits events, stores snapshots and commits the positions they
/// cover. On stop every actor takes a final snapshot.
pub async fn run_engine(
    kafka: KafkaConfig,
    store: Store,
    partitions: Partitions,
    rc: RuntimeConfig,
    metrics: RuntimeMetrics,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let consumer: StreamConsumer<EngineContext> = kafka
        .consumer_config(&kafka.engine_group)
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (kafka.session_timeout_ms / 3).to_string(),
        )
        // Incremental rebalances: only the partitions that move stop. With
        // the eager protocol, Tansu 0.6 gave a dead engine's partitions back
        // to it, and its pairs stayed unavailable.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(EngineContext {
            revoked: Mutex::new(Vec::new()),
        })
        .map_err(|e| format!("kafka consumer: {e}"))?;
    consumer
        .subscribe(&[&kafka.orders_topic])
        .map_err(|e| format!("subscribe to {}: {e}", kafka.orders_topic))?;
    let consumer = Arc::new(consumer);
    let producer = kafka.producer()?;
    let (out_tx, out_rx) = mpsc::channel::<Output>(rc.output_queue);
    let snapshots: Arc<Mutex<HashMap<Symbol, Instant>>> = Arc::default();
    let emitter = tokio::spawn(emit(
        out_rx,
        producer,
        consumer.clone(),
        store.clone(),
        kafka.clone(),
        partitions.clone(),
        snapshots.clone(),
    ));
    let mut actors: HashMap<i32, Actor> = HashMap::new();
    let mut watch_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            _ = watch_tick.tick() => {
                stop_revoked(&consumer, &mut actors);
                report(&consumer, &kafka, &actors, &engine, &metrics, &snapshots).await;
                continue;
            }
            m = consumer.recv() => m,
        };
        stop_revoked(&consumer, &mut actors);
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "consuming the command log");
                continue;
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let Some(config) = partitions.pair(partition) else {
            warn!(partition, "a partition with no pair is ignored");
            continue;
        };
        let actor = match actors.entry(partition) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let a = start_actor(&store, config, &rc, out_tx.clone(), &metrics).await?;
                v.insert(a)
            }
        };
        if offset < actor.next_offset {
            continue; // covered by the snapshot, or a redelivery
        }
        if offset > actor.next_offset {
            // The group's committed offset is ahead of the stored snapshot:
            // read the log again from the snapshot on.
            warn!(
                partition,
                from = actor.next_offset,
                to = offset,
                "gap after the snapshot; seeking back"
            );
            if let Err(e) = consumer.seek(
                &kafka.orders_topic,
                partition,
                Offset::Offset(actor.next_offset),
                Duration::from_secs(5),
            ) {
                return Err(format!(
                    "partition {partition}: seeking to {}: {e}",
                    actor.next_offset
                ));
            }
            continue;
        }
        actor.next_offset = offset + 1;
        let cmds = match msg.payload().map(proto::decode_run::<Command>) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                warn!(partition, offset, error = %e, "an undecodable record is skipped");
                continue;
            }
            None => continue,
        };
        for (i, cmd) in cmds.into_iter().enumerate() {
            let position = crate::position(offset, i);
            if position <= actor.sent {
                continue; // the part of the record the snapshot covers
            }
            if cmd.pair != config.symbol {
                warn!(partition, position, pair = %cmd.pair, "a command for another pair is skipped");
                continue;
            }
            actor.sent = position;
            // Waiting here pauses consumption while this actor is full: the
            // broker holds the backlog, not this process.
            if actor.input.send((position, cmd)).await.is_err() {
                warn!(
                    partition,
                    "the pair is halted; its commands wait in the log"
                );
                break;
            }
        }
    }
    info!("engine stopping: final snapshots");
    drop(out_tx);
    for (_, a) in actors.drain() {
        drop(a.input);
        let _ = tokio::task::spawn_blocking(move || a.thread.join()).await;
    }
    let _ = emitter.await;
    consumer.unsubscribe();
    Ok(())
}

/// Stops the actors of revoked partitions; each takes a final snapshot.
fn stop_revoked(consumer: &StreamConsumer<EngineContext>, actors: &mut HashMap<i32, Actor>) {
    let revoked: Vec<i32> = consumer
        .context()
        .revoked
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    for p in revoked {
        if let Some(a) = actors.remove(&p) {
            info!(partition = p, pair = %a.status.config.symbol, "stopping the actor of a revoked partition");
            // Dropping the input ends the thread after its final snapshot.
            drop(a.input);
        }
    }
}

/// Updates lag and snapshot-age gauges and readiness.
async fn report(
    consumer: &Arc<StreamConsumer<EngineContext>>,
    kafka: &KafkaConfig,
    actors: &HashMap<i32, Actor>,
    engine: &Arc<Engine>,
    metrics: &RuntimeMetrics,
    snapshots: &Arc<Mutex<HashMap<Symbol, Instant>>>,
) {
    // Every assigned partition, with the records done: after the one
    // holding the last applied command, or before the consumer's position
    // when no command arrived yet (its actor starts with the first).
    let positions = consumer.position().unwrap_or_default();
    let assigned: Vec<(i32, i64)> = consumer
        .assignment()
        .map(|a| {
            a.elements()
                .iter()
                .map(|e| e.partition())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let done = match actors.get(&p) {
                Some(a) => crate::records_through(a.status.applied_position()) as i64,
                None => match positions
                    .find_partition(&kafka.orders_topic, p)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                },
            };
            (p, done)
        })
        .collect();
    let c = consumer.clone();
    let topic = kafka.orders_topic.clone();
    let lags = tokio::task::spawn_blocking(move || {
        assigned
            .into_iter()
            .map(|(p, done)| {
                let high = c
                    .fetch_watermarks(&topic, p, Duration::from_secs(2))
                    .map_or(i64::MAX, |(_, high)| high);
                (p, high.saturating_sub(done))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    // Ready once every assigned partition is caught up (an engine still
    // joining the group has none yet).
    let mut ready = true;
    engine.owned.reset();
    for a in actors.values() {
        let label = [a.status.config.symbol.as_str()];
        engine.owned.with_label_values(&label).set(1);
        // Positions are not contiguous here: the depth is the queue's own.
        let depth = a.input.max_capacity() - a.input.capacity();
        metrics
            .queue_depth
            .with_label_values(&label)
            .set(depth as i64);
    }
    for (p, lag) in &lags {
        engine
            .consumer_lag
            .with_label_values(&[&p.to_string()])
            .set(*lag);
        ready &= *lag <= READY_LAG;
        if let Some(a) = actors.get(p) {
            engine
                .replayed
                .with_label_values(&[a.status.config.symbol.as_str()])
                .set(a.status.applied_position() as i64);
        }
    }
    if let Ok(s) = snapshots.lock() {
        for (pair, at) in s.iter() {
            engine
                .snapshot_age
                .with_label_values(&[pair.as_str()])
                .set(at.elapsed().as_secs() as i64);
        }
    }
    engine.ready.store(ready, Ordering::Release);
}

/// Sends the actors' events to the events topic, one record per run of a
/// pair's commands, every send awaited in order; stores each snapshot after
/// the events before it were sent, then commits the position it covers.
async fn emit(
    mut input: mpsc::Receiver<Output>,
    producer: FutureProducer,
    consumer: Arc<StreamConsumer<EngineContext>>,
    store: Store,
    kafka: KafkaConfig,
    partitions: Partitions,
    snapshots: Arc<Mutex<HashMap<Symbol, Instant>>>,
) {
    let mut items = Vec::with_capacity(1024);
    let mut pending: Vec<EventBatch> = Vec::new();
    while input.recv_many(&mut items, 1024).await > 0 {
        for item in items.drain(..) {
            match item {
                Output::Record(r) => {
                    // The emitter holds the only reference: no copy.
                    let r = Arc::try_unwrap(r).unwrap_or_else(|shared| (*shared).clone());
                    match pending.iter_mut().find(|b| b.pair == r.pair) {
                        Some(b) => b.records.push((r.position, r.events)),
                        None => pending.push(EventBatch {
                            pair: r.pair,
                            records: vec![(r.position, r.events)],
                        }),
                    }
                }
                Output::Snapshot(s) => {
                    // The snapshot covers events that must be in the log first.
                    send_all(&producer, &kafka, &partitions, &mut pending).await;
                    let mut batch = Batch::default();
                    let (pair, position) = (s.pair, s.position);
                    batch.add_snapshot(s);
                    while let Err(e) = store.write_batch(&batch).await {
                        error!(%pair, error = %e, "storing a snapshot failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                    if let Ok(mut s) = snapshots.lock() {
                        s.insert(pair, Instant::now());
                    }
                    if let Some(p) = partitions.of(pair) {
                        let mut tpl = TopicPartitionList::new();
                        // The committed offset is the next one to read: the
                        // record holding the snapshot's last command, which
                        // may hold more.
                        if tpl
                            .add_partition_offset(
                                &kafka.orders_topic,
                                p,
                                Offset::Offset(crate::record_offset(position)),
                            )
                            .is_ok()
                            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
                        {
                            // Harmless: a restore starts from the snapshot anyway.
                            warn!(%pair, error = %e, "committing the snapshot's position failed");
                        }
                    }
                }
            }
        }
        send_all(&producer, &kafka, &partitions, &mut pending).await;
    }
}

/// Sends every pending batch; retries until the broker takes it.
async fn send_all(
    producer: &FutureProducer,
    kafka: &KafkaConfig,
    partitions: &Partitions,
    pending: &mut Vec<EventBatch>,
) {
    for batch in pending.drain(..) {
        let Some(partition) = partitions.of(batch.pair) else {
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
            let record = FutureRecord::to(&kafka.events_topic)
                .partition(partition)
                .key(batch.pair.as_str())
                .payload(&payload);
            match producer.send(record, Duration::from_secs(5)).await {
                Ok(_) => break,
                Err((e, _)) => {
                    error!(pair = %batch.pair, error = %e, "sending events failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }
}
