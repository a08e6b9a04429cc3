//! The gateway's side of the Kafka logs: commands go to the orders topic
//! (acknowledged once the broker has them), and the events topic feeds the
//! RESULT answers, the market-data streams and the per-pair lag.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use proto::{Command, PairSpec, Seq, Symbol, TradingStatus};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;

use commandlog::{
    Accounts, CommandLog, EventRecord, LagUnit, ListError, ListFuture, Listing, Observer,
    PairStatus, SubmitError, SubmitFuture, Submitted, Waiters,
};
use rdkafka::{Offset, TopicPartitionList};
use store::{ListedPair, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::commands::{CommandWriter, records_through};
use crate::error::ClusterError;
use crate::kafka::{EventBatch, KafkaConfig, Partitions};
use crate::listings::{LISTING_POLL, Listed, adopt, stored_listings};
use crate::risk::{
    GatewayAccounts, RiskPort, RiskRequest, Route, route, start_risk_port, submitted,
};

/// The command log in Kafka, as the gateway sees it.
///
/// Its pairs' `PairStatus` counts records of the command log, not
/// positions (which are not contiguous): a pair's lag is
/// [`commandlog::Lag::Records`], each of up to [`crate::RUN_MAX`] commands,
/// and the gateway sheds on `max_pair_lag_records`.
pub struct KafkaLog {
    writer: Arc<CommandWriter>,
    statuses: Statuses,
    waiters: Arc<Mutex<Waiters>>,
    /// The risk stage, with accounts on: orders and amends go through it.
    risk: Option<RiskPort>,
    /// What a pair listed at runtime joins.
    listings: Listings,
}

/// Each pair's counters, shared by the log, its follower and its progress
/// poller; it grows when a pair is listed.
type Statuses = Arc<RwLock<HashMap<Symbol, Arc<PairStatus>>>>;

/// What a listing, here or through another gateway, grows: the pairs'
/// partitions (which the writer shares), the events consumer's
/// assignment, the observer's views; one listing at a time.
struct Listings {
    kafka: KafkaConfig,
    store: Store,
    partitions: Partitions,
    events: Arc<StreamConsumer>,
    observer: Arc<dyn Observer>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// The pairs listed through other gateways, for the gateway's tables.
    heard: mpsc::UnboundedSender<Listed>,
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLog")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    async fn send(&self, cmd: Command, want_outcome: bool) -> Result<Submitted, SubmitError> {
        let pair = cmd.pair;
        let Some(status) = self.pair(pair) else {
            return Err(SubmitError::UnknownPair);
        };
        let position = match &self.risk {
            Some(risk) => match route(&cmd, risk.shards) {
                Route::Risk { shard } => {
                    let fees = status.config().fees;
                    let outcome = risk.ask(shard, RiskRequest::Order(cmd, fees)).await?;
                    submitted(outcome)?.1
                }
                Route::Orders => self.write(&cmd).await?,
            },
            None => self.write(&cmd).await?,
        };
        status.logged(records_through(position));
        let outcome = want_outcome.then(|| match self.waiters.lock() {
            Ok(mut w) => w.register(pair, position),
            Err(_) => oneshot::channel().1,
        });
        Ok(Submitted { position, outcome })
    }
}

impl KafkaLog {
    async fn write(&self, cmd: &Command) -> Result<u64, SubmitError> {
        self.writer
            .write(cmd)
            .await
            .map_err(|e| SubmitError::Store(e.to_string()))
    }

    /// Lists a pair on the lowest partition of both topics that no pair
    /// has: the store's row first (every role learns the pair from it),
    /// then this gateway's own maps. The engines start its empty book at
    /// their next look; a command sent before waits in its partition.
    ///
    /// The partition is also what orders listings: each is checked against
    /// every listing stored before it (this gateway serves them all first),
    /// and two gateways listing at once pick the same lowest partition, so
    /// the unique column lets one through and the other looks again. So
    /// partition order is the order listings were accepted in, and every
    /// role adds them in it (new assets take their ids in that order).
    async fn list(&self, listing: Listing) -> Result<Arc<PairStatus>, ListError> {
        let l = &self.listings;
        let _one = l.one_at_a_time.lock().await;
        let pair = listing.config.symbol;
        let mut spec: PairSpec =
            serde_json::from_str(&listing.spec).map_err(|e| ListError::Refused(e.to_string()))?;
        let room = self.topic_room().await?;
        let stored = |e: store::StoreError| ListError::Store(e.to_string());
        for _ in 0..LIST_TRIES {
            // One read: the listing is checked against exactly the rows
            // whose partitions it avoids.
            let rows = self
                .catch_up()
                .await
                .map_err(|e| ListError::Store(e.to_string()))?;
            if self.pair(pair).is_some() || rows.iter().any(|r| r.pair == pair) {
                return Err(ListError::Exists);
            }
            // What the shards would refuse is refused before anything is
            // written: a stored listing is one every shard takes.
            if let Some(why) = self.risk.as_ref().and_then(|r| r.refuses(&listing.config)) {
                return Err(ListError::Refused(why));
            }
            let taken: HashSet<i32> = (l.partitions.iter().map(|(p, _)| p))
                .chain(rows.iter().filter_map(|r| r.partition))
                .collect();
            let Some(partition) = (0..room).find(|p| !taken.contains(p)) else {
                return Err(ListError::Refused(format!(
                    "No spare partition: the {} and {} topics have {room} and every one has a \
                     pair; grow both topics (deploy/README.md, Add a pair)",
                    l.kafka.orders_topic, l.kafka.events_topic
                )));
            };
            spec.partition = Some(partition);
            let row = ListedPair {
                pair,
                spec: serde_json::to_string(&spec).map_err(|e| ListError::Store(e.to_string()))?,
                listed_at: commandlog::now_ns(),
                partition: Some(partition),
            };
            // Not written: another gateway listed first; look again.
            if !l.store.list_pair(&row).await.map_err(stored)? {
                continue;
            }
            let listed = Listed {
                config: listing.config,
                partition,
            };
            l.partitions
                .add(&listed.config, partition)
                .map_err(|e| ListError::Store(e.to_string()))?;
            self.join(&listed);
            return self.pair(pair).ok_or(ListError::ShuttingDown);
        }
        Err(ListError::Store(
            "other listings kept taking the spare partition; try again".into(),
        ))
    }

    /// How many partitions both `orders` and `events` have, from the
    /// brokers' metadata.
    async fn topic_room(&self) -> Result<i32, ListError> {
        let consumer = self.listings.events.clone();
        let topics = [
            self.listings.kafka.orders_topic.clone(),
            self.listings.kafka.events_topic.clone(),
        ];
        tokio::task::spawn_blocking(move || {
            let mut room = i32::MAX;
            for topic in topics {
                let meta = consumer
                    .fetch_metadata(Some(&topic), Duration::from_secs(10))
                    .map_err(|e| ListError::Store(format!("reading {topic}'s partitions: {e}")))?;
                let n = meta.topics().first().map_or(0, |t| t.partitions().len());
                room = room.min(i32::try_from(n).unwrap_or(i32::MAX));
            }
            Ok(room)
        })
        .await
        .map_err(|_| ListError::ShuttingDown)?
    }

    /// Serves a pair listed here or elsewhere, already in `partitions`:
    /// its empty view, its events partition from the start, and last its
    /// counters, which let commands in.
    fn join(&self, listed: &Listed) {
        let l = &self.listings;
        let empty = engine::Depth {
            last_seq: Seq(0),
            bids: Vec::new(),
            asks: Vec::new(),
        };
        if let Some(risk) = &self.risk {
            // Its assets before any request can name them.
            risk.add_pair(&listed.config);
        }
        l.observer.on_start(&listed.config, empty);
        let mut tpl = TopicPartitionList::new();
        let assigned = tpl
            .add_partition_offset(&l.kafka.events_topic, listed.partition, Offset::Beginning)
            .and_then(|()| l.events.incremental_assign(&tpl));
        if let Err(e) = assigned {
            // Its orders are still taken and applied; their answers and
            // streams wait for a restart of this gateway.
            tracing::error!(pair = %listed.config.symbol, error = %e, "following a listed pair's events");
        }
        let status = PairStatus::new(
            listed.config,
            TradingStatus::Trading,
            LagUnit::Records,
            0,
            Seq(0),
        );
        self.statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(listed.config.symbol, Arc::new(status));
        info!(pair = %listed.config.symbol, partition = listed.partition, "listed pair served");
    }

    /// Serves the pairs listed through other gateways since the last look,
    /// in listing order, and tells the gateway's tables.
    async fn hear_listings(&self) {
        let _one = self.listings.one_at_a_time.lock().await;
        if let Err(e) = self.catch_up().await.map(drop) {
            warn!(error = %e, "reading the listings failed");
        }
    }

    /// [`KafkaLog::hear_listings`], with the listing lock held; returns
    /// the rows it read.
    async fn catch_up(&self) -> Result<Vec<ListedPair>, ClusterError> {
        let l = &self.listings;
        let rows = stored_listings(&l.store).await?;
        for listed in adopt(&rows, &l.partitions) {
            self.join(&listed);
            let _ = l.heard.send(listed);
        }
        Ok(rows)
    }
}

/// Attempts at a listing while other gateways take the spare partitions.
const LIST_TRIES: usize = 8;

impl CommandLog for KafkaLog {
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_> {
        Box::pin(self.send(cmd, want_outcome))
    }

    fn pair(&self, pair: Symbol) -> Option<Arc<PairStatus>> {
        read(&self.statuses).get(&pair).cloned()
    }

    fn pairs(&self) -> Vec<Arc<PairStatus>> {
        read(&self.statuses).values().cloned().collect()
    }

    fn accounts(&self) -> Option<&dyn Accounts> {
        self.risk.as_ref().map(|r| r as &dyn Accounts)
    }

    fn list_pair(&self, listing: Listing) -> ListFuture<'_> {
        Box::pin(self.list(listing))
    }
}

fn read(statuses: &Statuses) -> std::sync::RwLockReadGuard<'_, HashMap<Symbol, Arc<PairStatus>>> {
    statuses.read().unwrap_or_else(|e| e.into_inner())
}

/// How often a gateway reads the persister's progress from the store: a
/// trader's query of their own orders waits for it (`read_own_writes` in
/// the gateway), so it is read often; two small queries per tick.
const PERSISTED_POLL: Duration = Duration::from_millis(50);

/// Each pair's counters, the last seq its view holds, and the offset of
/// its events partition its view follows from.
struct Views {
    statuses: HashMap<Symbol, Arc<PairStatus>>,
    seen: HashMap<Symbol, Seq>,
    starts: Vec<(i32, Offset)>,
}

/// Starts the gateway's Kafka log: each pair's book view from its latest
/// snapshot, then the events topic from the offset stored with that
/// snapshot (records before it hold no event after the snapshot; those the
/// snapshot covers are dropped by seq), so the start does not grow with
/// the history. Feeds `observer` and the RESULT waiters.
/// With `accounts`, orders and amends go through the risk stage, and the
/// balances start from the shards' snapshots, followed by `risk-events`.
/// The receiver hears of each pair listed through another gateway, once
/// this log serves it.
pub async fn start_kafka_log(
    kafka: &KafkaConfig,
    store: &Store,
    partitions: Partitions,
    observer: Arc<dyn Observer>,
    accounts: Option<GatewayAccounts>,
) -> Result<
    (
        Arc<KafkaLog>,
        JoinHandle<()>,
        mpsc::UnboundedReceiver<Listed>,
    ),
    ClusterError,
> {
    let Views {
        statuses,
        seen,
        starts,
    } = restore_views(store, &partitions, &*observer).await?;
    let consumer = Arc::new(events_consumer(kafka, &starts)?);
    let (risk, risk_follower) = match accounts {
        Some(a) => {
            let (port, follower) = start_risk_port(kafka, store, a, observer.clone()).await?;
            (Some(port), Some(follower))
        }
        None => (None, None),
    };
    let statuses: Statuses = Arc::new(RwLock::new(statuses));
    let (heard, hear) = mpsc::unbounded_channel();
    let log = Arc::new(KafkaLog {
        writer: CommandWriter::new(kafka, &partitions)?,
        statuses: statuses.clone(),
        waiters: Arc::default(),
        risk,
        listings: Listings {
            kafka: kafka.clone(),
            store: store.clone(),
            partitions,
            events: consumer.clone(),
            observer: observer.clone(),
            one_at_a_time: tokio::sync::Mutex::new(()),
            heard,
        },
    });
    // The persister is another process: its progress is what the store
    // says, polled beside the follower, so a slow query never holds up the
    // events.
    let progress = follow_progress(store.clone(), statuses.clone());
    let follow = follow_events(consumer, statuses, seen, observer, log.waiters.clone());
    let listings = follow_listings(Arc::downgrade(&log));
    let follower = tokio::spawn(async move {
        let risk = async move {
            match risk_follower {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = progress => {}
            () = follow => {}
            () = risk => {}
            () = listings => {}
        }
    });
    Ok((log, follower, hear))
}

/// Looks for pairs listed through other gateways every [`LISTING_POLL`],
/// while the log lives.
async fn follow_listings(log: std::sync::Weak<KafkaLog>) {
    let mut tick = tokio::time::interval(LISTING_POLL);
    loop {
        tick.tick().await;
        let Some(log) = log.upgrade() else { return };
        log.hear_listings().await;
    }
}

/// Each pair's book view from its latest snapshot, handed to `observer`,
/// and where its events partition is read from.
async fn restore_views(
    store: &Store,
    partitions: &Partitions,
    observer: &dyn Observer,
) -> Result<Views, ClusterError> {
    let mut views = Views {
        statuses: HashMap::new(),
        seen: HashMap::new(),
        starts: Vec::new(),
    };
    for (partition, config) in partitions.iter() {
        let pair = config.symbol;
        // Capacity 0: this book only gives the depth to start the views from.
        let restored = pipeline::restore_book(store, &config, 0).await?;
        let (book, position) = (restored.book, restored.position);
        // The snapshot's rules, not the file's; later changes come with the
        // events this gateway follows.
        observer.on_start(book.config(), book.depth(usize::MAX));
        let from = match restored.events_from.map(i64::try_from) {
            Some(Ok(offset)) => Offset::Offset(offset),
            // A snapshot stored before offsets were: the whole partition.
            _ => Offset::Beginning,
        };
        info!(%pair, seq = book.last_seq().0, events_from = ?from, "view restored");
        views.starts.push((partition, from));
        views.seen.insert(pair, book.last_seq());
        let status = PairStatus::new(
            *book.config(),
            book.status(),
            LagUnit::Records,
            records_through(position),
            book.last_seq(),
        );
        views.statuses.insert(pair, Arc::new(status));
    }
    Ok(views)
}

/// A consumer of the events topic, each partition from its view's start.
fn events_consumer(
    kafka: &KafkaConfig,
    starts: &[(i32, Offset)],
) -> Result<StreamConsumer, ClusterError> {
    let consumer: StreamConsumer = kafka
        .consumer_config("gateways")
        .create()
        .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (p, from) in starts {
        tpl.add_partition_offset(&kafka.events_topic, *p, *from)
            .map_err(|e| ClusterError::kafka(format!("partition {p}"), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| ClusterError::kafka(format!("assigning {}", kafka.events_topic), e))?;
    Ok(consumer)
}

/// Reads the persister's progress and the halts from the store once a
/// second (the gateway sheds on them), forever.
async fn follow_progress(store: Store, statuses: Statuses) {
    let mut tick = tokio::time::interval(PERSISTED_POLL);
    loop {
        tick.tick().await;
        match store.last_seqs().await {
            Ok(stored) => {
                let statuses = read(&statuses);
                for (pair, seq) in stored {
                    if let Some(status) = statuses.get(&pair) {
                        status.persisted(seq);
                    }
                }
            }
            Err(e) => warn!(error = %e, "reading the persister's progress"),
        }
        // A pair the persister halted takes no more commands.
        match store.halted_pairs().await {
            Ok(halts) => {
                let statuses = read(&statuses);
                for h in halts {
                    if let Some(status) = statuses.get(&h.pair) {
                        status.halt(format!("halted by the store: {}", h.reason));
                    }
                }
            }
            Err(e) => warn!(error = %e, "reading the halted pairs"),
        }
    }
}

/// Hands each new record of the events topic to `observer` and its
/// waiting request, forever.
async fn follow_events(
    consumer: Arc<StreamConsumer>,
    statuses: Statuses,
    mut seen: HashMap<Symbol, Seq>,
    observer: Arc<dyn Observer>,
    waiters: Arc<Mutex<Waiters>>,
) {
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "consuming the event log");
                continue;
            }
        };
        let Some(Ok(batch)) = msg.payload().map(proto::decode::<EventBatch>) else {
            warn!(
                partition = msg.partition(),
                offset = msg.offset(),
                "a bad event record is skipped"
            );
            continue;
        };
        // A pair listed after this gateway started has no seq yet: its
        // log starts empty.
        let Some(status) = read(&statuses).get(&batch.pair).cloned() else {
            continue;
        };
        let last = seen.entry(batch.pair).or_insert(Seq(0));
        for (position, events) in batch.records {
            // A command that emitted nothing (the passing of time on an
            // idle book) was still applied: the pair's lag counts it, and
            // the next command's record would otherwise seem to trail it.
            let Some(seq) = events.last().map(|e| e.seq) else {
                status.applied(records_through(position), *last);
                continue;
            };
            // A record whose events were all seen is a replay's duplicate.
            if seq <= *last {
                continue;
            }
            *last = seq;
            let record = Arc::new(EventRecord {
                pair: batch.pair,
                position,
                events,
            });
            // The rules first: the request waiting for this record (an
            // operator's change) reads them once it is answered.
            status.observe(&record.events);
            observer.on_record(&record);
            status.applied(records_through(position), seq);
            if let Ok(mut w) = waiters.lock() {
                w.complete(&record);
            }
        }
    }
}
