//! The gateway's side of the Kafka logs: commands go to the orders topic
//! (acknowledged once the broker has them), and the events topic feeds the
//! RESULT answers, the market-data streams and the per-pair lag.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::{Command, Seq, Symbol};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;

use commandlog::{
    Accounts, CommandLog, EventRecord, LagUnit, Observer, PairStatus, SubmitError, SubmitFuture,
    Submitted, Waiters,
};
use rdkafka::{Offset, TopicPartitionList};
use store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::commands::{CommandWriter, records_through};
use crate::error::ClusterError;
use crate::kafka::{EventBatch, KafkaConfig, Partitions};
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
    statuses: HashMap<Symbol, Arc<PairStatus>>,
    waiters: Arc<Mutex<Waiters>>,
    /// The risk stage, with accounts on: orders and amends go through it.
    risk: Option<RiskPort>,
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLog")
            .field("writer", &self.writer)
            .field("pairs", &self.statuses.len())
            .finish()
    }
}

impl KafkaLog {
    async fn send(&self, cmd: Command, want_outcome: bool) -> Result<Submitted, SubmitError> {
        let pair = cmd.pair;
        let Some(status) = self.statuses.get(&pair) else {
            return Err(SubmitError::UnknownPair);
        };
        let position = match &self.risk {
            Some(risk) => match route(&cmd, risk.shards) {
                Route::Risk { shard } => {
                    let outcome = risk.ask(shard, RiskRequest::Order(cmd)).await?;
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
}

impl CommandLog for KafkaLog {
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_> {
        Box::pin(self.send(cmd, want_outcome))
    }

    fn pair(&self, pair: Symbol) -> Option<Arc<PairStatus>> {
        self.statuses.get(&pair).cloned()
    }

    fn pairs(&self) -> Vec<Arc<PairStatus>> {
        self.statuses.values().cloned().collect()
    }

    fn accounts(&self) -> Option<&dyn Accounts> {
        self.risk.as_ref().map(|r| r as &dyn Accounts)
    }
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
pub async fn start_kafka_log(
    kafka: &KafkaConfig,
    store: &Store,
    partitions: Partitions,
    observer: Arc<dyn Observer>,
    accounts: Option<GatewayAccounts>,
) -> Result<(Arc<KafkaLog>, JoinHandle<()>), ClusterError> {
    let Views {
        statuses,
        seen,
        starts,
    } = restore_views(store, &partitions, &*observer).await?;
    let consumer = events_consumer(kafka, &starts)?;
    let (risk, risk_follower) = match accounts {
        Some(a) => {
            let (port, follower) = start_risk_port(kafka, store, a, observer.clone()).await?;
            (Some(port), Some(follower))
        }
        None => (None, None),
    };
    let log = Arc::new(KafkaLog {
        writer: CommandWriter::new(kafka, &partitions)?,
        statuses: statuses.clone(),
        waiters: Arc::default(),
        risk,
    });
    // The persister is another process: its progress is what the store
    // says, polled beside the follower, so a slow query never holds up the
    // events.
    let progress = follow_progress(store.clone(), statuses.clone());
    let follow = follow_events(consumer, statuses, seen, observer, log.waiters.clone());
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
        }
    });
    Ok((log, follower))
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
        let restored = pipeline::restore_book(store, config, 0).await?;
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
async fn follow_progress(store: Store, statuses: HashMap<Symbol, Arc<PairStatus>>) {
    let mut tick = tokio::time::interval(PERSISTED_POLL);
    loop {
        tick.tick().await;
        match store.last_seqs().await {
            Ok(stored) => {
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
    consumer: StreamConsumer,
    statuses: HashMap<Symbol, Arc<PairStatus>>,
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
        let (Some(status), Some(last)) = (statuses.get(&batch.pair), seen.get_mut(&batch.pair))
        else {
            continue;
        };
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
