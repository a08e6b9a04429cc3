//! `exchange engine`: runs one actor per pair whose lease it holds (see
//! `ownership` and `leases`), restoring each from its snapshot and reading
//! the pair's partition of the command log from the position the snapshot
//! covers. In stages: set up (leases, clients, emitter), run (commands in,
//! lease changes, reports, the passing of time on idle pairs), drain (final
//! snapshots, leases back).
//!
//! The passing of time: a pair whose partition brought no command for
//! `runtime.gtd_tick_ms` gets an `AdvanceTime` command from the engine
//! that leases it, produced into its partition of the command log as a
//! gateway produces commands (`CommandWriter`), so it is in the log and
//! every replay applies it where the live engine did.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipeline::{Output, PipelineMetrics, RuntimeConfig, Ticks};
use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};
use proto::{Command, Symbol};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use store::{LeaseKey, Role, Store};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::actors::{Actor, pause};
use crate::commands::{CommandWriter, position, records_through};
use crate::emitter::{Emitter, Snapshots};
use crate::error::ClusterError;
use crate::fence::{Fence, Fences};
use crate::kafka::{KafkaConfig, Partitions};
use crate::leases::{Change, Keeper, keep_leases};
use crate::ownership::EngineConfig;
use crate::risk::{decode_tag, risk_tag};

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

/// What an engine is made of.
#[derive(Debug)]
pub struct EngineParts {
    /// The brokers and topics.
    pub kafka: KafkaConfig,
    /// The lease cadence.
    pub config: EngineConfig,
    /// Where snapshots and leases live.
    pub store: Store,
    /// The pairs and their partitions.
    pub partitions: Partitions,
    /// The actors' bounds and cadences.
    pub runtime: RuntimeConfig,
    /// The pipeline's series.
    pub metrics: PipelineMetrics,
    /// The engine's own series and readiness.
    pub engine: Arc<Engine>,
}

/// Runs the engine role until `stop` turns true: holds leases, applies
/// commands, emits events, stores snapshots and commits the positions they
/// cover. On stop every actor takes a final snapshot, and then the engine
/// releases its leases.
pub async fn run_engine(
    parts: EngineParts,
    stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let (mut node, tasks) = Node::set_up(parts).await?;
    node.run(tasks.changes, stop).await?;
    info!("engine stopping: final snapshots");
    node.drain(tasks.emitter, tasks.keeper).await;
    Ok(())
}

/// The engine's state while it runs.
struct Node {
    kafka: KafkaConfig,
    store: Store,
    /// This engine's member id.
    me: String,
    partitions: Partitions,
    rc: RuntimeConfig,
    metrics: PipelineMetrics,
    engine: Arc<Engine>,
    consumer: Arc<StreamConsumer>,
    output: mpsc::Sender<Output>,
    snapshots: Snapshots,
    fences: Fences,
    actors: HashMap<i32, Actor>,
    /// Which running pairs are idle.
    ticks: Ticks,
    /// Where their `AdvanceTime` commands go: the command log.
    writer: Arc<CommandWriter>,
}

/// The tasks beside the main loop.
struct Tasks {
    emitter: JoinHandle<()>,
    keeper: JoinHandle<()>,
    changes: mpsc::UnboundedReceiver<Change>,
}

impl Node {
    /// Joins the engines: lease rows, the clients, the emitter and the
    /// lease keeper.
    async fn set_up(parts: EngineParts) -> Result<(Node, Tasks), ClusterError> {
        let EngineParts {
            kafka,
            config,
            store,
            partitions,
            runtime: rc,
            metrics,
            engine,
        } = parts;
        // Unique per process start: a restarted engine is a new member.
        let me = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "engine".into()),
            std::process::id(),
            commandlog::now_ns()
        );
        let legacy = store.has_legacy_journal().await;
        if legacy.map_err(|e| ClusterError::store("reading the journal table", e))? {
            return Err(ClusterError::Config(
                "the store's journal table still holds commands written by a version before the \
                 file journal; start that version's embedded exchange once on this store so its \
                 snapshots cover (and empty) the table"
                    .into(),
            ));
        }
        let mut pairs: Vec<(i32, Symbol)> = partitions.iter().map(|(p, c)| (p, c.symbol)).collect();
        pairs.sort_unstable();
        let keys: Vec<(LeaseKey, i32)> = pairs
            .iter()
            .map(|(p, s)| (LeaseKey::Pair(*s), *p))
            .collect();
        let lease_keys: Vec<LeaseKey> = keys.iter().map(|(k, _)| *k).collect();
        store
            .ensure_leases(&lease_keys)
            .await
            .map_err(|e| ClusterError::store("lease rows", e))?;
        // Partitions are assigned by this engine, not by a group: the group
        // id only names whose offsets the commits record.
        let consumer: StreamConsumer = kafka
            .consumer_config(&kafka.engine_group)
            .create()
            .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
        let consumer = Arc::new(consumer);
        let (output, out_rx) = mpsc::channel::<Output>(rc.output_queue);
        let snapshots: Snapshots = Arc::default();
        let fences: Fences = Arc::default();
        let emitter = Emitter {
            producer: kafka.producer()?,
            consumer: consumer.clone(),
            store: store.clone(),
            kafka: kafka.clone(),
            partitions: partitions.clone(),
            snapshots: snapshots.clone(),
            fences: fences.clone(),
            pending: Vec::new(),
            events_next: HashMap::new(),
        };
        let emitter = tokio::spawn(pipeline::drain(out_rx, emitter, EMIT_BATCH));
        let (change_tx, changes) = mpsc::unbounded_channel();
        info!(engine = %me, lease_ms = config.lease_ms, "joining the engines");
        let keeper = tokio::spawn(keep_leases(
            Keeper {
                store: store.clone(),
                me: me.clone(),
                role: Role::Engine,
                keys,
                config,
                listings: Some(partitions.clone()),
            },
            change_tx,
        ));
        let ticks = Ticks::new(rc.gtd_tick_ms, [], Instant::now());
        let writer = CommandWriter::new(&kafka, &partitions)?;
        let node = Node {
            kafka,
            store,
            me,
            partitions,
            ticks,
            writer,
            rc,
            metrics,
            engine,
            consumer,
            output,
            snapshots,
            fences,
            actors: HashMap::new(),
        };
        Ok((
            node,
            Tasks {
                emitter,
                keeper,
                changes,
            },
        ))
    }

    /// Applies commands and lease changes until `stop` turns true.
    async fn run(
        &mut self,
        mut changes: mpsc::UnboundedReceiver<Change>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ClusterError> {
        let mut watch_tick = tokio::time::interval(Duration::from_secs(1));
        let consumer = self.consumer.clone();
        loop {
            let msg = tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = watch_tick.tick() => {
                    self.report().await;
                    continue;
                }
                change = changes.recv() => {
                    let change = change.ok_or(ClusterError::Stopped("the lease keeper"))?;
                    self.apply_change(change).await?;
                    self.assign()?;
                    continue;
                }
                // While a partition is paused, offer its backlog to the
                // actor every millisecond; resume once it is all handed over.
                _ = tokio::time::sleep(Duration::from_millis(1)), if self.any_backlog() => {
                    self.feed_backlogs();
                    continue;
                }
                due = self.ticks.next_due() => {
                    self.advance_time(due);
                    continue;
                }
                m = consumer.recv() => m,
            };
            self.on_message(msg)?;
        }
    }

    /// Stops every actor after its final snapshot, lets the emitter store
    /// them, then gives the leases back at once, so the other engines take
    /// the pairs without waiting.
    async fn drain(mut self, emitter: JoinHandle<()>, keeper: JoinHandle<()>) {
        drop(self.output);
        for (_, a) in self.actors.drain() {
            a.join().await;
        }
        let _ = emitter.await;
        // Heartbeats ran until the final snapshots were stored.
        keeper.abort();
        if let Err(e) = self.store.leave(&self.me).await {
            warn!(error = %e, "releasing the leases failed; they expire instead");
        }
    }

    /// Produces an `AdvanceTime` command into the partition of each idle
    /// pair that runs here, in the background: the loop does not wait for
    /// the broker, and the command reaches the actor as any other does.
    fn advance_time(&self, due: Vec<Symbol>) {
        for pair in due {
            let running = self
                .actors
                .values()
                .any(|a| a.status.symbol == pair && !a.status.is_halted());
            if !running {
                continue;
            }
            let writer = self.writer.clone();
            tokio::spawn(async move {
                if let Err(e) = writer.write(&pipeline::advance_time(pair)).await {
                    // The next period's tick sends another.
                    warn!(%pair, error = %e, "producing the passing of time failed");
                }
            });
        }
    }

    fn any_backlog(&self) -> bool {
        self.actors.values().any(|a| !a.backlog.is_empty())
    }

    fn feed_backlogs(&mut self) {
        for (p, a) in self.actors.iter_mut() {
            if !a.backlog.is_empty() && a.feed() {
                pause(&self.consumer, &self.kafka.orders_topic, *p, false);
            }
        }
    }

    /// Hands one record of the command log to its pair's actor.
    fn on_message(&mut self, msg: KafkaResult<BorrowedMessage<'_>>) -> Result<(), ClusterError> {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "consuming the command log");
                return Ok(());
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let Some(actor) = self.actors.get_mut(&partition) else {
            return Ok(()); // fetched before its actor stopped
        };
        let pair = actor.status.symbol;
        if offset < actor.next_offset {
            return Ok(()); // covered by the snapshot, or a redelivery
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
            let next = actor.next_offset;
            return self
                .consumer
                .seek(
                    &self.kafka.orders_topic,
                    partition,
                    Offset::Offset(next),
                    Duration::from_secs(5),
                )
                .map_err(|e| {
                    ClusterError::kafka(format!("partition {partition}: seeking to {next}"), e)
                });
        }
        actor.next_offset = offset + 1;
        let cmds = match msg.payload().map(proto::decode_run::<Command>) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                warn!(partition, offset, error = %e, "an undecodable record is skipped");
                return Ok(());
            }
            None => return Ok(()),
        };
        let was_paused = !actor.backlog.is_empty();
        let now = Instant::now();
        // A risk role's record: its shard and each command's risk offset.
        let tag = risk_tag(&msg)
            .and_then(|t| decode_tag(&t))
            .filter(|(_, offsets)| offsets.len() == cmds.len());
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let mut fence = fences.get_mut(&pair);
        for (i, cmd) in cmds.into_iter().enumerate() {
            let position = position(offset, i);
            if position <= actor.sent {
                continue; // the part of the record the snapshot covers
            }
            if cmd.pair != pair {
                warn!(partition, position, pair = %cmd.pair, "a command for another pair is skipped");
                continue;
            }
            actor.sent = position;
            self.ticks.saw(&cmd, now);
            if let Some(f) = fence.as_deref_mut() {
                let first = match &tag {
                    Some((shard, offsets)) => f.admit(position, *shard, offsets[i]),
                    None => {
                        f.pass(position);
                        true
                    }
                };
                if !first {
                    warn!(
                        partition,
                        position, "a second copy of a forwarded command is dropped"
                    );
                    continue;
                }
            }
            actor.backlog.push_back((position, cmd));
        }
        drop(fences);
        if !actor.feed() && !was_paused {
            // The actor is full: stop fetching its partition, not the
            // others; the broker holds the backlog, not this process.
            pause(&self.consumer, &self.kafka.orders_topic, partition, true);
            self.engine.pauses.inc();
        }
        Ok(())
    }

    /// Starts or stops an actor as the lease keeper says.
    async fn apply_change(&mut self, change: Change) -> Result<(), ClusterError> {
        match change {
            Change::Start(partition) => {
                let Some(config) = self.partitions.pair(partition) else {
                    return Ok(());
                };
                if !self.actors.contains_key(&partition) {
                    let actor = Actor::start(
                        &self.store,
                        &config,
                        &self.rc,
                        self.output.clone(),
                        &self.metrics,
                    )
                    .await?;
                    let fence = self.restore_fence(config.symbol, actor.sent).await?;
                    if let Ok(mut f) = self.fences.lock() {
                        f.insert(config.symbol, fence);
                    }
                    self.actors.insert(partition, actor);
                    self.ticks.start(config.symbol, Instant::now());
                }
            }
            Change::Stop { partition, release } => {
                let Some(a) = self.actors.remove(&partition) else {
                    return Ok(());
                };
                let pair = a.status.symbol;
                self.ticks.stop(pair);
                info!(partition, %pair, release, "stopping the pair's actor");
                a.stop(
                    release,
                    self.store.clone(),
                    self.me.clone(),
                    self.snapshots.clone(),
                );
            }
        }
        Ok(())
    }

    /// The pair's fence as of its snapshot at `position`: stored in the
    /// same transaction, so at that position (older only for a snapshot
    /// written before fences, or by the embedded exchange).
    async fn restore_fence(&self, pair: Symbol, position: u64) -> Result<Fence, ClusterError> {
        let stored = self
            .store
            .forward_fence(pair)
            .await
            .map_err(|e| ClusterError::store("reading the forward fence", e))?;
        if let Some((at, _)) = &stored
            && *at != position
        {
            warn!(%pair, fence = at, snapshot = position, "the forward fence is not the snapshot's");
        }
        Ok(Fence::restore(
            stored.as_ref().map(|(_, b)| b.as_slice()),
            position,
        ))
    }

    /// Reads exactly the partitions of the running actors, each from the
    /// next record its actor needs.
    fn assign(&self) -> Result<(), ClusterError> {
        let topic = &self.kafka.orders_topic;
        let mut tpl = TopicPartitionList::new();
        for (p, a) in &self.actors {
            tpl.add_partition_offset(topic, *p, Offset::Offset(a.next_offset))
                .map_err(|e| ClusterError::kafka(format!("partition {p}"), e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| ClusterError::kafka(format!("assigning {topic}"), e))
    }

    /// Updates lag and snapshot-age gauges and readiness.
    async fn report(&self) {
        let lags = self.lags().await;
        // Ready once every assigned partition is caught up (an engine still
        // joining has none yet).
        let mut ready = true;
        self.engine.owned.reset();
        for a in self.actors.values() {
            let label = [a.status.symbol.as_str()];
            self.engine.owned.with_label_values(&label).set(1);
            // Positions are not contiguous here: the depth is the queue's
            // own, plus what waits for room in it.
            let depth = a.input.max_capacity() - a.input.capacity() + a.backlog.len();
            self.metrics
                .queue_depth
                .with_label_values(&label)
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            self.metrics.observe_halt(&a.status);
        }
        for (p, lag) in &lags {
            self.engine
                .consumer_lag
                .with_label_values(&[&p.to_string()])
                .set(*lag);
            ready &= *lag <= READY_LAG;
            if let Some(a) = self.actors.get(p) {
                self.engine
                    .replayed
                    .with_label_values(&[a.status.symbol.as_str()])
                    .set(a.status.applied_position() as i64);
            }
        }
        if let Ok(s) = self.snapshots.lock() {
            for (pair, (at, _)) in s.iter() {
                self.engine
                    .snapshot_age
                    .with_label_values(&[pair.as_str()])
                    .set(at.elapsed().as_secs() as i64);
            }
        }
        self.engine.ready.store(ready, Ordering::Release);
    }

    /// Every assigned partition's lag in records: its end minus the
    /// records done (after the one holding the last applied command, or
    /// before the consumer's position when no command arrived yet: its
    /// actor starts with the first).
    async fn lags(&self) -> Vec<(i32, i64)> {
        let topic = self.kafka.orders_topic.clone();
        let positions = self.consumer.position().unwrap_or_default();
        let assigned: Vec<(i32, i64)> = self
            .consumer
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
                let done = match self.actors.get(&p) {
                    Some(a) => records_through(a.status.applied_position()) as i64,
                    None => match positions.find_partition(&topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => 0,
                    },
                };
                (p, done)
            })
            .collect();
        let c = self.consumer.clone();
        tokio::task::spawn_blocking(move || {
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
        .unwrap_or_default()
    }
}

/// Actor outputs the emitter takes between sends.
const EMIT_BATCH: usize = 1024;
