//! `exchange engine`: runs one actor per pair whose lease it holds (see
//! `ownership`), restoring each from its snapshot and reading the pair's
//! partition of the command log from the position the snapshot covers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commandlog::{LagUnit, PairStatus};
use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};
use proto::{Command, PairConfig, Symbol};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use runtime::{Output, RuntimeConfig, RuntimeMetrics};
use store::{Batch, Store};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::ownership::{EngineConfig, Liveness, moves};
use crate::{EventBatch, KafkaConfig, Partitions};

/// How long a failed send or store write waits before its retry.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// A partition may lag this many records and still count as caught up.
const READY_LAG: i64 = 1_000;

/// The engine's live state, for readiness and metrics.
#[derive(Debug)]
pub struct Engine {
    ready: AtomicBool,
    consumer_lag: IntGaugeVec,
    snapshot_age: IntGaugeVec,
    replayed: IntGaugeVec,
    owned: IntGaugeVec,
    pauses: IntCounter,
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
        let pauses = IntCounter::new(
            "matching_partition_pauses_total",
            "Times a partition's fetching was paused because its actor's queue was full.",
        )?;
        registry.register(Box::new(pauses.clone()))?;
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
            pauses,
        }))
    }

    /// True when every owned partition is caught up.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

struct Actor {
    input: mpsc::Sender<(u64, Command)>,
    /// The last position read for the actor (handed over or in `backlog`).
    sent: u64,
    /// Commands read while the actor's queue was full, oldest first: at
    /// most the rest of one record plus what the consumer had fetched
    /// before the partition was paused.
    backlog: VecDeque<(u64, Command)>,
    /// The position of the snapshot the actor started from.
    restored: u64,
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
    // Counts positions: the engine reads its lag from the broker instead.
    let status = Arc::new(PairStatus::new(
        config.clone(),
        LagUnit::Commands,
        position,
        book.last_seq(),
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
        backlog: VecDeque::new(),
        restored: position,
        next_offset: crate::record_offset(position),
        thread,
        status,
    })
}

/// When, and at which position, each pair's last snapshot was stored.
type Snapshots = Arc<Mutex<HashMap<Symbol, (Instant, u64)>>>;

/// How long a hand-over waits for the final snapshot to be stored before it
/// releases the lease anyway (the next owner then replays a little more).
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// A change of the pairs this engine runs, from the lease keeper to the
/// main loop.
#[derive(Debug)]
enum Change {
    /// The lease of the pair on this partition was taken: start its actor.
    Start(i32),
    /// Stop the actor; then release the lease if `release` (a planned
    /// hand-over), or not (the lease was lost to another engine).
    Stop { partition: i32, release: bool },
}

/// Runs the engine role until `stop` turns true: holds leases, applies
/// commands, emits events, stores snapshots and commits the positions they
/// cover. On stop every actor takes a final snapshot, and then the engine
/// releases its leases.
#[allow(clippy::too_many_arguments)]
pub async fn run_engine(
    kafka: KafkaConfig,
    config: EngineConfig,
    store: Store,
    partitions: Partitions,
    rc: RuntimeConfig,
    metrics: RuntimeMetrics,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    // Unique per process start: a restarted engine is a new member.
    let me = format!(
        "{}-{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "engine".into()),
        std::process::id(),
        commandlog::now_ns()
    );
    let mut pairs: Vec<(i32, Symbol)> = partitions.iter().map(|(p, c)| (p, c.symbol)).collect();
    pairs.sort_unstable();
    let symbols: Vec<Symbol> = pairs.iter().map(|(_, s)| *s).collect();
    store
        .ensure_leases(&symbols)
        .await
        .map_err(|e| format!("lease rows: {e}"))?;
    // Partitions are assigned by this engine, not by a group: the group id
    // only names whose offsets the commits record.
    let consumer: StreamConsumer = kafka
        .consumer_config(&kafka.engine_group)
        .create()
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let consumer = Arc::new(consumer);
    let producer = kafka.producer()?;
    let (out_tx, out_rx) = mpsc::channel::<Output>(rc.output_queue);
    let snapshots: Snapshots = Arc::default();
    let emitter = tokio::spawn(emit(
        out_rx,
        producer,
        consumer.clone(),
        store.clone(),
        kafka.clone(),
        partitions.clone(),
        snapshots.clone(),
    ));
    let (change_tx, mut changes) = mpsc::unbounded_channel();
    info!(engine = %me, lease_ms = config.lease_ms, "joining the engines");
    let keeper = tokio::spawn(keep_leases(
        store.clone(),
        me.clone(),
        symbols,
        partitions.clone(),
        config,
        change_tx,
    ));
    let mut actors: HashMap<i32, Actor> = HashMap::new();
    let mut watch_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            _ = watch_tick.tick() => {
                report(&consumer, &kafka, &actors, &engine, &metrics, &snapshots).await;
                continue;
            }
            change = changes.recv() => {
                let Some(change) = change else {
                    return Err("the lease keeper stopped".into());
                };
                apply_change(change, &mut actors, &store, &me, &partitions, &rc, &out_tx, &metrics, &snapshots).await?;
                assign(&consumer, &kafka.orders_topic, &actors)?;
                continue;
            }
            // While a partition is paused, offer its backlog to the actor
            // every millisecond; resume once it is all handed over.
            _ = tokio::time::sleep(Duration::from_millis(1)), if actors.values().any(|a| !a.backlog.is_empty()) => {
                for (p, a) in actors.iter_mut() {
                    if !a.backlog.is_empty() && feed(a) {
                        pause(&consumer, &kafka.orders_topic, *p, false);
                    }
                }
                continue;
            }
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "consuming the command log");
                continue;
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let Some(actor) = actors.get_mut(&partition) else {
            continue; // fetched before its actor stopped
        };
        let pair = actor.status.config.symbol;
        if offset < actor.next_offset {
            continue; // covered by the snapshot, or a redelivery
        }
        if offset > actor.next_offset {
            // Not expected (every assignment names the next offset), but
            // never skip a command: read again from the one needed.
            warn!(
                partition,
                from = actor.next_offset,
                to = offset,
                "gap in the command log; seeking back"
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
        let was_paused = !actor.backlog.is_empty();
        for (i, cmd) in cmds.into_iter().enumerate() {
            let position = crate::position(offset, i);
            if position <= actor.sent {
                continue; // the part of the record the snapshot covers
            }
            if cmd.pair != pair {
                warn!(partition, position, pair = %cmd.pair, "a command for another pair is skipped");
                continue;
            }
            actor.sent = position;
            actor.backlog.push_back((position, cmd));
        }
        if !feed(actor) && !was_paused {
            // The actor is full: stop fetching its partition, not the
            // others; the broker holds the backlog, not this process.
            pause(&consumer, &kafka.orders_topic, partition, true);
            engine.pauses.inc();
        }
    }
    info!("engine stopping: final snapshots");
    drop(out_tx);
    for (_, a) in actors.drain() {
        drop(a.input);
        let _ = tokio::task::spawn_blocking(move || a.thread.join()).await;
    }
    let _ = emitter.await;
    // Heartbeats run until the final snapshots are stored; then the leases
    // go back at once, so the other engines take the pairs without waiting.
    keeper.abort();
    if let Err(e) = store.leave(&me).await {
        warn!(error = %e, "releasing the leases failed; they expire instead");
    }
    Ok(())
}

/// Hands the actor's backlog to its queue while there is room; true once
/// the backlog is empty (or the pair halted: its commands wait in the log).
fn feed(actor: &mut Actor) -> bool {
    while let Some(item) = actor.backlog.pop_front() {
        match actor.input.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                actor.backlog.push_front(item);
                return false;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                warn!(
                    pair = %actor.status.config.symbol,
                    "the pair is halted; its commands wait in the log"
                );
                actor.backlog.clear();
            }
        }
    }
    true
}

/// Pauses or resumes fetching one partition.
fn pause(consumer: &StreamConsumer, topic: &str, partition: i32, paused: bool) {
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

/// Starts or stops an actor as the lease keeper says.
#[allow(clippy::too_many_arguments)]
async fn apply_change(
    change: Change,
    actors: &mut HashMap<i32, Actor>,
    store: &Store,
    me: &str,
    partitions: &Partitions,
    rc: &RuntimeConfig,
    output: &mpsc::Sender<Output>,
    metrics: &RuntimeMetrics,
    snapshots: &Snapshots,
) -> Result<(), String> {
    match change {
        Change::Start(partition) => {
            let Some(config) = partitions.pair(partition) else {
                return Ok(());
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = actors.entry(partition) {
                slot.insert(start_actor(store, config, rc, output.clone(), metrics).await?);
            }
        }
        Change::Stop { partition, release } => {
            let Some(a) = actors.remove(&partition) else {
                return Ok(());
            };
            let pair = a.status.config.symbol;
            info!(partition, %pair, release, "stopping the pair's actor");
            // Dropping the input ends the thread after its final snapshot.
            drop(a.input);
            let (store, me, snapshots) = (store.clone(), me.to_string(), snapshots.clone());
            let (status, restored) = (a.status.clone(), a.restored);
            tokio::spawn(async move {
                let _ = tokio::task::spawn_blocking(move || a.thread.join()).await;
                if !release {
                    return;
                }
                // Hand over once the final snapshot is stored (after the
                // events before it were sent): the next owner restores
                // exactly where this actor stopped.
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
                if let Err(e) = store.release_lease(pair, &me).await {
                    warn!(%pair, error = %e, "releasing a lease failed; it expires instead");
                }
            });
        }
    }
    Ok(())
}

/// Reads exactly the partitions of the running actors, each from the next
/// record its actor needs.
fn assign(
    consumer: &StreamConsumer,
    topic: &str,
    actors: &HashMap<i32, Actor>,
) -> Result<(), String> {
    let mut tpl = TopicPartitionList::new();
    for (p, a) in actors {
        tpl.add_partition_offset(topic, *p, Offset::Offset(a.next_offset))
            .map_err(|e| format!("partition {p}: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("assigning {topic}: {e}"))
}

/// Renews this engine's leases every heartbeat, reads everyone's, and
/// tells the main loop which actors to start and stop.
async fn keep_leases(
    store: Store,
    me: String,
    pairs: Vec<Symbol>,
    partitions: Partitions,
    config: EngineConfig,
    changes: mpsc::UnboundedSender<Change>,
) {
    let mut liveness = Liveness::new(Duration::from_millis(config.lease_ms.into()));
    let mut held: HashSet<Symbol> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.heartbeat_ms.into()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let send = |change: Change| changes.send(change).is_ok();
    loop {
        tick.tick().await;
        let still: HashSet<Symbol> = match store.heartbeat(&me).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "heartbeat failed");
                liveness.reset();
                continue;
            }
        };
        for lost in held.difference(&still) {
            warn!(pair = %lost, "lease lost to another engine");
            if let Some(partition) = partitions.of(*lost)
                && !send(Change::Stop {
                    partition,
                    release: false,
                })
            {
                return;
            }
        }
        held.retain(|p| still.contains(p));
        let (members, leases) = match store.ownership().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "reading the leases failed");
                liveness.reset();
                continue;
            }
        };
        let now = Instant::now();
        liveness.observe(&members, now);
        let live = liveness.live(&me, now);
        let planned = moves(&me, &pairs, &leases, &live, &held);
        for pair in planned.release {
            held.remove(&pair);
            info!(%pair, "handing the pair over");
            if let Some(partition) = partitions.of(pair)
                && !send(Change::Stop {
                    partition,
                    release: true,
                })
            {
                return;
            }
        }
        for lease in planned.take {
            match store.take_lease(&lease, &me).await {
                Ok(true) => {
                    info!(pair = %lease.pair, from = ?lease.owner, "lease taken");
                    held.insert(lease.pair);
                    if let Some(partition) = partitions.of(lease.pair)
                        && !send(Change::Start(partition))
                    {
                        return;
                    }
                }
                Ok(false) => {} // another engine was first
                Err(e) => warn!(pair = %lease.pair, error = %e, "taking a lease failed"),
            }
        }
        for (id, beat) in liveness.dead(&me, now) {
            if let Err(e) = store.forget_member(&id, beat).await {
                warn!(member = %id, error = %e, "removing a silent engine failed");
            }
        }
    }
}

/// Updates lag and snapshot-age gauges and readiness.
async fn report(
    consumer: &Arc<StreamConsumer>,
    kafka: &KafkaConfig,
    actors: &HashMap<i32, Actor>,
    engine: &Arc<Engine>,
    metrics: &RuntimeMetrics,
    snapshots: &Snapshots,
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
        // Positions are not contiguous here: the depth is the queue's own,
        // plus what waits for room in it.
        let depth = a.input.max_capacity() - a.input.capacity() + a.backlog.len();
        metrics
            .queue_depth
            .with_label_values(&label)
            .set(depth as i64);
        metrics.observe_halt(&a.status);
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
        for (pair, (at, _)) in s.iter() {
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
    consumer: Arc<StreamConsumer>,
    store: Store,
    kafka: KafkaConfig,
    partitions: Partitions,
    snapshots: Snapshots,
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
                        s.insert(pair, (Instant::now(), position));
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
