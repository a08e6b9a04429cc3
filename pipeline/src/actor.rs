//! One pair's actor: the single writer of its book, a task of the async
//! runtime; restored from the pair's latest snapshot, checked by its state
//! hash.
//!
//! A task, not a thread of its own: applying a command takes well under a
//! microsecond, and the queues around the actor have their other ends on
//! tasks (the journal writer, the engine's consumer, the dispatcher, the
//! emitter). As a thread, each command cost a futex wake-up and a context
//! switch in, and a cross-thread wake of the runtime out; as a task it is
//! scheduled on the worker that fed it (README, "Performance").

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use commandlog::{EventRecord, PairStatus};
use engine::OrderBook;
use proto::{Command, CommandBody, EventBody, PairConfig, Symbol};
use store::{SnapshotRow, Store, StoreError};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::metrics::PipelineMetrics;

/// What actors hand to their event sink, in order per pair.
#[derive(Debug)]
pub enum Output {
    /// One command's events.
    Record(Arc<EventRecord>),
    /// A snapshot covering every record before it.
    Snapshot(SnapshotRow),
}

/// The snapshot row of `book` after the command at `position`.
pub fn snapshot_row(book: &OrderBook, position: u64, taken_at: u64) -> SnapshotRow {
    SnapshotRow {
        pair: book.config().symbol,
        position,
        seq: book.last_seq(),
        state_hash: book.state_hash(),
        data: book.snapshot(),
        taken_at,
        // Only an engine's emitter knows where its events went.
        events_from: None,
    }
}

/// The `kind` label of each event, indexed by [`event_kind`].
const EVENT_KINDS: [&str; 12] = [
    "accepted",
    "rejected",
    "trade",
    "canceled",
    "amended",
    "book_delta",
    "canceled_all",
    "triggered",
    "released",
    "list_accepted",
    "list_done",
    "pair_changed",
];

fn event_kind(body: &EventBody) -> usize {
    match body {
        EventBody::Accepted(_) => 0,
        EventBody::Rejected(_) => 1,
        EventBody::Trade(_) => 2,
        EventBody::Canceled(_) => 3,
        EventBody::Amended(_) => 4,
        EventBody::BookDelta(_) => 5,
        EventBody::CanceledAll(_) => 6,
        EventBody::Triggered(_) => 7,
        EventBody::Released(_) => 8,
        EventBody::ListAccepted(_) => 9,
        EventBody::ListDone(_) => 10,
        EventBody::PairChanged(_) => 11,
    }
}

/// Starts the actor task for `book`, whose last applied command is at
/// `position`. It applies commands from `input` until that closes, then
/// takes a final snapshot. A panic in the book halts this pair only.
/// Must be called within a tokio runtime.
pub fn spawn(
    mut book: OrderBook,
    mut position: u64,
    status: Arc<PairStatus>,
    mut input: mpsc::Receiver<(u64, Command)>,
    output: mpsc::Sender<Output>,
    snapshot_every: u64,
    metrics: PipelineMetrics,
) -> tokio::task::JoinHandle<()> {
    let pair = book.config().symbol;
    tokio::spawn(async move {
        let label = pair.as_str();
        let accepted = metrics.commands.with_label_values(&[label, "accepted"]);
        let rejected = metrics.commands.with_label_values(&[label, "rejected"]);
        // The sequencer's passing of time is no client's request.
        let time = metrics.commands.with_label_values(&[label, "time"]);
        let kinds = EVENT_KINDS.map(|k| metrics.events.with_label_values(&[label, k]));
        let mut since_snapshot = 0u64;
        let mut last_ts = 0u64;
        while let Some((pos, cmd)) = input.recv().await {
            let mut events = Vec::with_capacity(8);
            if catch_unwind(AssertUnwindSafe(|| book.apply(&cmd, &mut events))).is_err() {
                error!(%pair, position = pos, "the book panicked; the pair is halted");
                status.halt(format!(
                    "the book failed applying the command at position {pos}"
                ));
                metrics.observe_halt(&status);
                return;
            }
            position = pos;
            last_ts = cmd.timestamp.0;
            status.set_applied(pos, book.last_seq());
            // The gateway reads the pair's rules from its status: they
            // change before the record reaches anyone waiting for it.
            if let CommandBody::ChangePair(_) = cmd.body {
                status.observe(&events);
            }
            if cmd.body == CommandBody::AdvanceTime {
                time.inc();
            } else if events
                .iter()
                .any(|e| matches!(e.body, EventBody::Rejected(_)))
            {
                rejected.inc();
            } else {
                accepted.inc();
            }
            for e in &events {
                kinds[event_kind(&e.body)].inc();
            }
            let record = Arc::new(EventRecord {
                pair,
                position: pos,
                events,
            });
            if output.send(Output::Record(record)).await.is_err() {
                return;
            }
            since_snapshot += 1;
            if since_snapshot >= snapshot_every {
                since_snapshot = 0;
                let snap = off_worker(|| snapshot_row(&book, position, last_ts));
                if output.send(Output::Snapshot(snap)).await.is_err() {
                    return;
                }
            }
        }
        if since_snapshot > 0 {
            let snap = off_worker(|| snapshot_row(&book, position, last_ts));
            let _ = output.send(Output::Snapshot(snap)).await;
        }
    })
}

/// Runs `f`, work that holds its thread a while (a snapshot: a copy of the
/// whole book; a journal write with fsync), with the runtime's other tasks
/// moved off this worker (`block_in_place`) where the runtime has other
/// workers; on a current-thread runtime it simply runs.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Why a pair's book could not be restored.
#[derive(Debug)]
pub enum RestoreError {
    /// The store could not be read.
    Store(StoreError),
    /// The latest snapshot does not decode, or does not match its state
    /// hash, or the pair's rules make no book.
    Book {
        /// The pair.
        pair: Symbol,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Store(e) => write!(f, "{e}"),
            RestoreError::Book { pair, reason } => write!(f, "pair {pair}: {reason}"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<StoreError> for RestoreError {
    fn from(e: StoreError) -> Self {
        RestoreError::Store(e)
    }
}

/// A pair's book restored by [`restore_book`].
#[derive(Debug)]
pub struct Restored {
    /// The book, checked against the snapshot's state hash.
    pub book: OrderBook,
    /// The command-log position the snapshot covers (0 without one).
    pub position: u64,
    /// Where the pair's events after the snapshot can be read from, if
    /// known (`SnapshotRow::events_from`).
    pub events_from: Option<u64>,
}

/// A pair's book from its latest stored snapshot, checked against the
/// snapshot's state hash, or an empty book.
pub async fn restore_book(
    store: &Store,
    config: &PairConfig,
    capacity: usize,
) -> Result<Restored, RestoreError> {
    let pair = config.symbol;
    let bad = |reason: String| RestoreError::Book { pair, reason };
    match store.latest_snapshot(pair).await? {
        Some(s) => {
            let book = OrderBook::restore(*config, &s.data)
                .map_err(|e| bad(format!("snapshot at position {}: {e}", s.position)))?;
            if book.state_hash() != s.state_hash {
                return Err(bad(format!(
                    "snapshot at position {} does not match its state hash",
                    s.position
                )));
            }
            let changed = changed_rules(config, book.config());
            if !changed.is_empty() {
                warn!(
                    %pair,
                    ?changed,
                    snapshot = s.position,
                    "the config file's rules for the pair differ from its snapshot's (an operator's change): the snapshot's hold"
                );
            }
            Ok(Restored {
                book,
                position: s.position,
                events_from: s.events_from,
            })
        }
        None => Ok(Restored {
            book: OrderBook::with_capacity(*config, capacity).map_err(|e| bad(e.to_string()))?,
            position: 0,
            // Nothing was ever snapshotted: every event is after it.
            events_from: Some(0),
        }),
    }
}

/// The rules `snapshot` holds that differ from the config `file`'s, by name
/// (the scales cannot: restore refuses them).
fn changed_rules(file: &PairConfig, snapshot: &PairConfig) -> Vec<&'static str> {
    let (f, s) = (file, snapshot);
    [
        ("tick_size", f.tick_size != s.tick_size),
        ("lot_size", f.lot_size != s.lot_size),
        ("min_qty", f.min_qty != s.min_qty),
        ("max_qty", f.max_qty != s.max_qty),
        ("max_price", f.max_price != s.max_price),
        ("min_notional", f.min_notional != s.min_notional),
        ("max_notional", f.max_notional != s.max_notional),
        ("max_open_orders", f.max_open_orders != s.max_open_orders),
        ("default_stp", f.default_stp != s.default_stp),
        ("advanced", f.advanced != s.advanced),
        ("fees", f.fees != s.fees),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use commandlog::LagUnit;
    use proto::{
        NewOrder, OrderId, OrderSize, OrderType, Price, Qty, Side, StpMode, Symbol, TimeInForce,
        Timestamp, UserId,
    };

    use super::*;

    #[test]
    fn changed_rules_names_each_rule_the_snapshot_changed() {
        let file = PairConfig::simple(Symbol::new("BTC-EUR").unwrap());
        assert!(changed_rules(&file, &file).is_empty());
        let snapshot = PairConfig {
            tick_size: Price(5),
            default_stp: StpMode::CancelBoth,
            ..file
        };
        assert_eq!(
            changed_rules(&file, &snapshot),
            ["tick_size", "default_stp"]
        );
    }

    fn btc_eur() -> PairConfig {
        PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
    }

    fn place(id: u64, side: Side, price: u64) -> Command {
        let order = NewOrder::plain(
            OrderId(id),
            side,
            OrderType::Limit {
                price: Price(price),
            },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(1)),
        );
        Command {
            pair: btc_eur().symbol,
            user: UserId(id),
            timestamp: Timestamp(id),
            body: CommandBody::NewOrder(order),
        }
    }

    /// Runs an actor over five orders with a snapshot every two commands;
    /// returns its outputs once its input has closed.
    async fn run_actor() -> (Vec<Output>, u64) {
        let config = btc_eur();
        let book = OrderBook::new(config).unwrap();
        let status = Arc::new(PairStatus::new(
            config,
            book.status(),
            LagUnit::Commands,
            0,
            book.last_seq(),
        ));
        let metrics = PipelineMetrics::register(&prometheus::Registry::new()).unwrap();
        let (tx, rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        let actor = spawn(book, 0, status.clone(), rx, out_tx, 2, metrics);
        // Two sells, then a buy that takes the cheaper one, and two more.
        let prices = [(Side::Sell, 101), (Side::Sell, 100), (Side::Buy, 100)];
        let more = [(Side::Buy, 90), (Side::Sell, 110)];
        for (i, (side, price)) in prices.into_iter().chain(more).enumerate() {
            let id = i as u64 + 1;
            tx.send((id, place(id, side, price))).await.unwrap();
        }
        drop(tx);
        actor.await.unwrap();
        let mut outputs = Vec::new();
        while let Some(o) = out_rx.recv().await {
            outputs.push(o);
        }
        (outputs, status.applied_position())
    }

    /// Records in order, a snapshot after every second command, and a
    /// final one when the input closes: whichever runtime the actor is on
    /// (a snapshot moves off a worker only where there are others).
    fn check(outputs: &[Output], applied: u64) {
        let kinds: Vec<String> = outputs
            .iter()
            .map(|o| match o {
                Output::Record(r) => format!("r{}", r.position),
                Output::Snapshot(s) => format!("s{}", s.position),
            })
            .collect();
        assert_eq!(kinds, ["r1", "r2", "s2", "r3", "r4", "s4", "r5", "s5"]);
        assert_eq!(applied, 5);
        let Some(Output::Record(third)) = outputs.get(3) else {
            panic!("no third record: {kinds:?}");
        };
        assert!(
            third
                .events
                .iter()
                .any(|e| matches!(e.body, EventBody::Trade(_))),
            "the buy at 100 trades: {third:?}"
        );
        let Some(Output::Snapshot(last)) = outputs.last() else {
            panic!("no final snapshot: {kinds:?}");
        };
        let restored = OrderBook::restore(btc_eur(), &last.data).unwrap();
        assert_eq!(restored.state_hash(), last.state_hash);
        assert_eq!(
            restored.depth(10).bids.len() + restored.depth(10).asks.len(),
            3
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_actor_on_a_multi_threaded_runtime_applies_in_order_and_snapshots() {
        let (outputs, applied) = run_actor().await;
        check(&outputs, applied);
    }

    #[tokio::test]
    async fn an_actor_on_a_current_thread_runtime_applies_in_order_and_snapshots() {
        let (outputs, applied) = run_actor().await;
        check(&outputs, applied);
    }
}
