//! One pair's actor: the single writer of its book, on its own thread;
//! restored from the pair's latest snapshot, checked by its state hash.

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

/// Starts the actor thread for `book`, whose last applied command is at
/// `position`. It applies commands from `input` until that closes, then
/// takes a final snapshot. A panic in the book halts this pair only.
pub fn spawn(
    mut book: OrderBook,
    mut position: u64,
    status: Arc<PairStatus>,
    mut input: mpsc::Receiver<(u64, Command)>,
    output: mpsc::Sender<Output>,
    snapshot_every: u64,
    metrics: PipelineMetrics,
) -> std::thread::JoinHandle<()> {
    let pair = book.config().symbol;
    let run = move || {
        let label = pair.as_str();
        let accepted = metrics.commands.with_label_values(&[label, "accepted"]);
        let rejected = metrics.commands.with_label_values(&[label, "rejected"]);
        // The sequencer's passing of time is no client's request.
        let time = metrics.commands.with_label_values(&[label, "time"]);
        let kinds = EVENT_KINDS.map(|k| metrics.events.with_label_values(&[label, k]));
        let mut since_snapshot = 0u64;
        let mut last_ts = 0u64;
        while let Some((pos, cmd)) = input.blocking_recv() {
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
            if output.blocking_send(Output::Record(record)).is_err() {
                return;
            }
            since_snapshot += 1;
            if since_snapshot >= snapshot_every {
                since_snapshot = 0;
                let snap = snapshot_row(&book, position, last_ts);
                if output.blocking_send(Output::Snapshot(snap)).is_err() {
                    return;
                }
            }
        }
        if since_snapshot > 0 {
            let _ = output.blocking_send(Output::Snapshot(snapshot_row(&book, position, last_ts)));
        }
    };
    std::thread::Builder::new()
        .name(format!("actor-{pair}"))
        .spawn(run)
        .unwrap_or_else(|e| panic!("cannot start the actor thread of {pair}: {e}"))
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
    use proto::{Price, StpMode, Symbol};

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
}
