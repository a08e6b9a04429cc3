//! The embedded runtime's handle: start (with recovery), submit, shutdown.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Depth, OrderBook};
use proto::{Command, Event, PairConfig, Seq, Symbol};
use serde::Deserialize;
use store::{Batch, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use prometheus::IntGauge;

use crate::RuntimeMetrics;
use crate::actor::{self, Output};
use crate::journal::{Journal, JournalError, Run};
use crate::persister;

/// The bounds and cadences of the embedded runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Most submissions waiting for the journal writer.
    pub journal_queue: usize,
    /// Most commands journaled in one transaction.
    pub journal_batch: usize,
    /// Most commands journaled and waiting for their pair's actor.
    pub actor_queue: usize,
    /// Most event records waiting for the dispatcher, and then for the persister.
    pub output_queue: usize,
    /// Most event records stored in one transaction.
    pub persister_batch: usize,
    /// How long the persister lets records gather before a transaction
    /// (0: none). Answers never wait for it; it trades a little persister
    /// lag for far fewer transactions at low and medium rates.
    pub persister_linger_ms: u64,
    /// An actor snapshots its book after this many commands.
    pub snapshot_every: u64,
    /// Orders each book preallocates room for.
    pub book_capacity: usize,
    /// `fdatasync` the journal after each group commit, before answering.
    /// Off: an acknowledged command survives the process being killed (it
    /// is in the kernel), not a power loss of the machine. On: it survives
    /// both, at the cost of one device flush per group commit (see the
    /// README for the measured cost).
    pub journal_fsync: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            journal_queue: 16_384,
            journal_batch: 2_048,
            actor_queue: 16_384,
            output_queue: 16_384,
            persister_batch: 4_096,
            persister_linger_ms: 2,
            snapshot_every: 10_000,
            book_capacity: 65_536,
            journal_fsync: false,
        }
    }
}

impl RuntimeConfig {
    /// Checks that every bound is usable, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("journal_queue", self.journal_queue as u64),
            ("journal_batch", self.journal_batch as u64),
            ("actor_queue", self.actor_queue as u64),
            ("output_queue", self.output_queue as u64),
            ("persister_batch", self.persister_batch as u64),
            ("snapshot_every", self.snapshot_every),
        ] {
            if v == 0 {
                return Err(format!("runtime.{name} must be greater than zero"));
            }
        }
        Ok(())
    }
}

/// What one command caused: all its events, in seq order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The pair.
    pub pair: Symbol,
    /// The command's position in the pair's command log.
    pub position: u64,
    /// The events, contiguous in seq.
    pub events: Vec<Event>,
}

/// Sees every pair's state after recovery and then every event record, in
/// order per pair, on the dispatcher's task. Must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// The pair's book after recovery, before any new command.
    fn on_start(&self, pair: &PairConfig, depth: Depth);
    /// One command's events.
    fn on_record(&self, record: &Arc<EventRecord>);
}

/// A pair's live counters, readable by the gateway for load-shedding.
#[derive(Debug)]
pub struct PairStatus {
    /// The pair's rules.
    pub config: PairConfig,
    pub(crate) appended: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) engine_seq: AtomicU64,
    pub(crate) persisted_seq: AtomicU64,
    /// The position the pair's latest stored snapshot covers.
    pub(crate) snapshot_position: AtomicU64,
    pub(crate) halted: AtomicBool,
    /// Why the pair is halted, once it is.
    halt_reason: Mutex<Option<String>>,
    /// This pair's series, resolved once: no label lookup per command.
    queue_depth: IntGauge,
    persister_lag: IntGauge,
    halted_gauge: IntGauge,
}

impl PairStatus {
    /// A pair whose log is at `position` and whose engine emitted up to `seq`.
    pub fn new(config: PairConfig, position: u64, seq: Seq, metrics: &RuntimeMetrics) -> Self {
        let label = [config.symbol.as_str()];
        let status = PairStatus {
            appended: AtomicU64::new(position),
            applied: AtomicU64::new(position),
            engine_seq: AtomicU64::new(seq.0),
            persisted_seq: AtomicU64::new(seq.0),
            snapshot_position: AtomicU64::new(position),
            halted: AtomicBool::new(false),
            halt_reason: Mutex::new(None),
            queue_depth: metrics.queue_depth.with_label_values(&label),
            persister_lag: metrics.persister_lag.with_label_values(&label),
            halted_gauge: metrics.halted.with_label_values(&label),
            config,
        };
        status.halted_gauge.set(0);
        status.update_gauges();
        status
    }

    /// Stops the pair taking commands, for `reason` (shown by `/readyz` and
    /// counted in `matching_pair_halted`). The first reason is kept.
    pub fn halt(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.halt_reason.lock() {
            r.get_or_insert_with(|| reason.into());
        }
        self.halted.store(true, Ordering::Release);
        self.halted_gauge.set(1);
    }

    /// Why the pair is halted, if it is.
    pub fn halt_reason(&self) -> Option<String> {
        self.halt_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Sets the pair's lag gauges from its counters.
    pub(crate) fn update_gauges(&self) {
        self.queue_depth.set(self.lag() as i64);
        self.persister_lag.set(self.persister_lag() as i64);
    }

    /// Records that the command at `position` is in the log.
    pub fn logged(&self, position: u64) {
        self.appended.fetch_max(position, Ordering::AcqRel);
        self.update_gauges();
    }

    /// Records that the engine applied the command at `position`, emitting
    /// events up to `seq`.
    pub fn applied(&self, position: u64, seq: Seq) {
        self.applied.fetch_max(position, Ordering::AcqRel);
        self.engine_seq.fetch_max(seq.0, Ordering::AcqRel);
        self.update_gauges();
    }

    /// Records that the store holds the pair's events up to `seq`.
    pub fn persisted(&self, seq: Seq) {
        self.persisted_seq.fetch_max(seq.0, Ordering::AcqRel);
        self.update_gauges();
    }

    /// The position of the last command the engine applied.
    pub fn applied_position(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Commands journaled and not yet applied.
    pub fn lag(&self) -> u64 {
        let applied = self.applied.load(Ordering::Acquire);
        self.appended
            .load(Ordering::Acquire)
            .saturating_sub(applied)
    }

    /// Events emitted and not yet stored.
    pub fn persister_lag(&self) -> u64 {
        let stored = self.persisted_seq.load(Ordering::Acquire);
        self.engine_seq
            .load(Ordering::Acquire)
            .saturating_sub(stored)
    }

    /// The last event seq the pair's engine emitted.
    pub fn engine_seq(&self) -> Seq {
        Seq(self.engine_seq.load(Ordering::Acquire))
    }

    /// True once the pair's actor stopped on a fault; it takes no commands.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }
}

/// Where the gateway sends commands: the embedded journal ([`Exchange`]) or,
/// in distributed mode, the Kafka command log.
pub trait CommandLog: Send + Sync + fmt::Debug + 'static {
    /// Appends `cmd`; returns once it is durably in the log. With
    /// `want_outcome`, the result also carries a receiver of its events.
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_>;
    /// A pair's live counters.
    fn pair(&self, pair: Symbol) -> Option<&Arc<PairStatus>>;
    /// Every pair's live counters.
    fn pairs(&self) -> Vec<Arc<PairStatus>>;
}

/// What [`CommandLog::submit`] returns.
pub type SubmitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Submitted, SubmitError>> + Send + 'a>>;

/// A command in the log.
#[derive(Debug)]
pub struct Submitted {
    /// Its position in the pair's command log.
    pub position: u64,
    /// Its events, when they were asked for.
    pub outcome: Option<oneshot::Receiver<Arc<EventRecord>>>,
}

/// Why a command was not logged. Nothing was written in every case, so the
/// sender may retry it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The pair is not traded here.
    UnknownPair,
    /// The pair's actor stopped on a fault.
    Halted,
    /// The runtime is shutting down.
    ShuttingDown,
    /// The journal could not be written.
    Store(String),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::UnknownPair => f.write_str("unknown pair"),
            SubmitError::Halted => f.write_str("pair halted"),
            SubmitError::ShuttingDown => f.write_str("shutting down"),
            SubmitError::Store(e) => write!(f, "journal write failed: {e}"),
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug)]
pub enum StartError {
    /// The store failed.
    Store(StoreError),
    /// A pair's stored state cannot be used.
    Recovery(String),
    /// The journal cannot be read or opened.
    Journal(JournalError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "{e}"),
            StartError::Recovery(m) => write!(f, "recovery: {m}"),
            StartError::Journal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        StartError::Store(e)
    }
}

struct JournalRequest {
    cmd: Command,
    want_outcome: bool,
    reply: oneshot::Sender<Result<Submitted, SubmitError>>,
}

type Waiters = Arc<Mutex<HashMap<(Symbol, u64), oneshot::Sender<Arc<EventRecord>>>>>;

struct Tasks {
    journal: JoinHandle<()>,
    actors: Vec<std::thread::JoinHandle<()>>,
    dispatcher: JoinHandle<()>,
    persister: JoinHandle<()>,
}

/// The running embedded exchange core.
pub struct Exchange {
    journal: mpsc::Sender<JournalRequest>,
    pairs: HashMap<Symbol, Arc<PairStatus>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Option<Tasks>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

/// Journal rows read per query when replaying the journal table older
/// versions wrote.
const REPLAY_PAGE: u32 = 64;

/// Replayed commands whose events are stored per transaction.
const REPLAY_BATCH: usize = 4_096;

/// A pair's book from its latest stored snapshot, checked against the
/// snapshot's state hash, or an empty book; and the log position it covers.
pub async fn restore_book(
    store: &Store,
    config: &PairConfig,
    capacity: usize,
) -> Result<(OrderBook, u64), StartError> {
    let pair = config.symbol;
    let bad = |m: String| StartError::Recovery(format!("pair {pair}: {m}"));
    match store.latest_snapshot(pair).await? {
        Some(s) => {
            let book = OrderBook::restore(config.clone(), &s.data)
                .map_err(|e| bad(format!("snapshot at position {}: {e}", s.position)))?;
            if book.state_hash() != s.state_hash {
                return Err(bad(format!(
                    "snapshot at position {} does not match its state hash",
                    s.position
                )));
            }
            Ok((book, s.position))
        }
        None => Ok((
            OrderBook::with_capacity(config.clone(), capacity).map_err(|e| bad(e.to_string()))?,
            0,
        )),
    }
}

/// Applies `cmds` (the commands after `position`, in order) to `book`,
/// storing the events the persister had not stored before the stop.
async fn replay(
    store: &Store,
    book: &mut OrderBook,
    position: &mut u64,
    last_seq: &mut Seq,
    cmds: Vec<(u64, Command)>,
) -> Result<(), StartError> {
    let config = book.config().clone();
    let mut events = Vec::new();
    let mut batch = Batch::default();
    let count = cmds.len();
    for (i, (p, cmd)) in cmds.into_iter().enumerate() {
        if p != *position + 1 {
            return Err(StartError::Recovery(format!(
                "pair {}: journal gap: position {p} after {position}",
                config.symbol
            )));
        }
        events.clear();
        book.apply(&cmd, &mut events);
        batch.add_events(config.qty_scale, last_seq, &events);
        *position = p;
        if (i + 1) % REPLAY_BATCH == 0 || i + 1 == count {
            store.write_batch(&batch).await?;
            batch = Batch::default();
        }
    }
    Ok(())
}

impl Exchange {
    /// Recovers every pair (snapshot, then journal replay) and starts the
    /// actors, the dispatcher and the persister. The journal lives in
    /// `journal_dir`.
    pub async fn start(
        store: Store,
        pairs: &[PairConfig],
        journal_dir: &Path,
        config: RuntimeConfig,
        observer: Arc<dyn Observer>,
        metrics: RuntimeMetrics,
    ) -> Result<Exchange, StartError> {
        let mut persisted = store.last_seqs().await?;
        let mut halts: HashMap<Symbol, String> = store
            .halted_pairs()
            .await?
            .into_iter()
            .map(|h| (h.pair, h.reason))
            .collect();
        // Each book from its snapshot, then the journal table that versions
        // before the file journal wrote (empty once snapshots covered it).
        let mut restored = Vec::with_capacity(pairs.len());
        let mut after = HashMap::new();
        let mut held = Vec::new();
        for pc in pairs {
            let sym = pc.symbol;
            let mut last_seq = persisted.get(&sym).copied().unwrap_or_default();
            let (mut book, snapshot_position) =
                restore_book(&store, pc, config.book_capacity).await?;
            if let Some(reason) = halts.remove(&sym) {
                // Not replayed: its journal is kept for when it resumes.
                warn!(pair = %sym, %reason, "the pair is halted; `exchange pairs resume` restarts it");
                after.insert(sym, snapshot_position);
                held.push((pc, book, snapshot_position, last_seq, reason));
                continue;
            }
            let mut position = snapshot_position;
            loop {
                let page = store.commands_after(sym, position, REPLAY_PAGE).await?;
                if page.is_empty() {
                    break;
                }
                replay(&store, &mut book, &mut position, &mut last_seq, page).await?;
            }
            after.insert(sym, position);
            restored.push((pc, book, snapshot_position, position, last_seq));
        }
        let (mut journal, mut tail) =
            Journal::open(journal_dir, &after).map_err(StartError::Journal)?;
        journal
            .set_fsync(config.journal_fsync)
            .map_err(StartError::Journal)?;
        for pair in tail.keys() {
            if !pairs.iter().any(|p| p.symbol == *pair) {
                warn!(%pair, "the journal holds commands for a pair that is not configured");
            }
        }
        let (out_tx, out_rx) = mpsc::channel::<Output>(config.output_queue);
        let mut statuses = HashMap::new();
        let mut actor_inputs = HashMap::new();
        let mut actors = Vec::new();
        for (pc, mut book, snapshot_position, mut position, mut last_seq) in restored {
            let sym = pc.symbol;
            let cmds = tail.remove(&sym).unwrap_or_default();
            replay(&store, &mut book, &mut position, &mut last_seq, cmds).await?;
            if last_seq > book.last_seq() {
                return Err(StartError::Recovery(format!(
                    "pair {sym}: the store holds events up to seq {last_seq} but the journal rebuilds only {}",
                    book.last_seq()
                )));
            }
            if position > snapshot_position {
                info!(pair = %sym, from = snapshot_position, to = position, "replayed the journal");
                let mut batch = Batch::default();
                batch.add_snapshot(actor::snapshot_row(&book, position, 0));
                store.write_batch(&batch).await?;
            }
            persisted.insert(sym, last_seq);
            observer.on_start(pc, book.depth(usize::MAX));
            let status = Arc::new(PairStatus::new(
                pc.clone(),
                position,
                book.last_seq(),
                &metrics,
            ));
            let label = [sym.as_str()];
            metrics
                .queue_capacity
                .with_label_values(&label)
                .set(config.actor_queue as i64);
            let (tx, rx) = mpsc::channel(config.actor_queue);
            actor_inputs.insert(sym, tx);
            actors.push(actor::spawn(
                book,
                position,
                status.clone(),
                rx,
                out_tx.clone(),
                config.snapshot_every,
                metrics.clone(),
            ));
            statuses.insert(sym, status);
        }
        drop(out_tx);
        for (pc, book, position, last_seq, reason) in held {
            tail.remove(&pc.symbol);
            observer.on_start(pc, book.depth(usize::MAX));
            let status = Arc::new(PairStatus::new(pc.clone(), position, last_seq, &metrics));
            status.halt(format!("halted by the store: {reason}"));
            statuses.insert(pc.symbol, status);
        }
        let pairs = statuses;

        let waiters: Waiters = Arc::default();
        let (persist_tx, persist_rx) = mpsc::channel(config.output_queue);
        let persister = tokio::spawn(persister::run(
            store.clone(),
            persist_rx,
            persisted,
            pairs.clone(),
            config.persister_batch,
            Duration::from_millis(config.persister_linger_ms),
            metrics.clone(),
        ));
        let dispatcher = tokio::spawn(dispatch(
            out_rx,
            persist_tx,
            observer,
            waiters.clone(),
            pairs.clone(),
        ));
        let (journal_tx, journal_rx) = mpsc::channel(config.journal_queue);
        let (stop, stop_rx) = watch::channel(false);
        let journal = tokio::spawn(journal_writer(
            journal,
            journal_rx,
            stop_rx,
            actor_inputs,
            pairs.clone(),
            waiters,
            config.journal_batch,
            metrics,
        ));
        Ok(Exchange {
            journal: journal_tx,
            pairs,
            stop,
            tasks: Mutex::new(Some(Tasks {
                journal,
                actors,
                dispatcher,
                persister,
            })),
        })
    }

    /// Journals `cmd`; returns once it is durably in the command log. With
    /// `want_outcome`, the result also carries a receiver of its events.
    pub async fn submit_command(
        &self,
        cmd: Command,
        want_outcome: bool,
    ) -> Result<Submitted, SubmitError> {
        let status = self.pairs.get(&cmd.pair).ok_or(SubmitError::UnknownPair)?;
        if status.is_halted() {
            return Err(SubmitError::Halted);
        }
        let (reply, rx) = oneshot::channel();
        self.journal
            .send(JournalRequest {
                cmd,
                want_outcome,
                reply,
            })
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Submissions waiting for the journal writer.
    pub fn journal_queue_depth(&self) -> usize {
        self.journal.max_capacity() - self.journal.capacity()
    }

    /// Stops taking commands, lets every queued command reach its book and
    /// every event reach the store, snapshots every book, and returns when
    /// all of that is done. Later calls return at once.
    pub async fn shutdown(&self) {
        let tasks = self.tasks.lock().ok().and_then(|mut t| t.take());
        let Some(tasks) = tasks else { return };
        let _ = self.stop.send(true);
        let _ = tasks.journal.await;
        for a in tasks.actors {
            let _ = tokio::task::spawn_blocking(move || a.join()).await;
        }
        let _ = tasks.dispatcher.await;
        let _ = tasks.persister.await;
        info!("runtime stopped: queues drained, books snapshotted, events stored");
    }
}

impl CommandLog for Exchange {
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_> {
        Box::pin(self.submit_command(cmd, want_outcome))
    }

    fn pair(&self, pair: Symbol) -> Option<&Arc<PairStatus>> {
        self.pairs.get(&pair)
    }

    fn pairs(&self) -> Vec<Arc<PairStatus>> {
        self.pairs.values().cloned().collect()
    }
}

/// Journals submissions in group commits, then hands each to its actor.
#[allow(clippy::too_many_arguments)]
async fn journal_writer(
    mut journal: Journal,
    mut rx: mpsc::Receiver<JournalRequest>,
    mut stop: watch::Receiver<bool>,
    actors: HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
    pairs: HashMap<Symbol, Arc<PairStatus>>,
    waiters: Waiters,
    max_batch: usize,
    metrics: RuntimeMetrics,
) {
    let mut next: HashMap<Symbol, u64> = pairs
        .iter()
        .map(|(s, p)| (*s, p.appended.load(Ordering::Acquire)))
        .collect();
    let mut requests = Vec::with_capacity(max_batch);
    let mut runs: Vec<Run> = Vec::new();
    let mut group_commits = 0u64;
    // `block_in_place` needs a multi-threaded runtime; elsewhere the flush
    // simply blocks this task.
    let fsync = journal.syncs()
        && tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => {
                // Refuse new submissions; those already queued still go in.
                rx.close();
                continue;
            }
        };
        let Some(first) = first else { break };
        requests.push(first);
        while requests.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => requests.push(r),
                Err(_) => break,
            }
        }
        // The runs (one per pair) keep their buffers from batch to batch.
        for run in &mut runs {
            run.count = 0;
            run.body.clear();
        }
        let mut assigned = Vec::with_capacity(requests.len());
        for r in requests.drain(..) {
            let (Some(pos), Some(status)) = (next.get_mut(&r.cmd.pair), pairs.get(&r.cmd.pair))
            else {
                let _ = r.reply.send(Err(SubmitError::UnknownPair));
                continue;
            };
            if status.is_halted() {
                let _ = r.reply.send(Err(SubmitError::Halted));
                continue;
            }
            let position = *pos + 1;
            // One run per pair per batch: its positions are contiguous.
            let i = match runs.iter().position(|run| run.pair == r.cmd.pair) {
                Some(i) => i,
                None => {
                    runs.push(Run {
                        pair: r.cmd.pair,
                        first_position: position,
                        count: 0,
                        body: Vec::new(),
                    });
                    runs.len() - 1
                }
            };
            let run = &mut runs[i];
            if run.count == 0 {
                run.first_position = position;
            }
            if let Err(e) = proto::encode_into(&r.cmd, &mut run.body) {
                let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
                continue;
            }
            run.count += 1;
            *pos = position;
            assigned.push((position, r));
        }
        if assigned.is_empty() {
            continue;
        }
        metrics.batches.with_label_values(&["journal"]).inc();
        // A write of a few KiB into the page cache: done here, on this
        // task, rather than paying two thread switches to hand it off. With
        // fsync it waits for the device, so other tasks move off this thread.
        let appended = if fsync {
            tokio::task::block_in_place(|| journal.append(&runs))
        } else {
            journal.append(&runs)
        };
        if let Err(e) = appended {
            error!(error = %e, "journal write failed; the batch is refused");
            // Nothing of the batch was written: hand its positions out again.
            for (pair, pos) in next.iter_mut() {
                if let Some(status) = pairs.get(pair) {
                    *pos = status.appended.load(Ordering::Acquire);
                }
            }
            for (_, r) in assigned {
                let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
            }
            continue;
        }
        for (position, r) in assigned {
            let pair = r.cmd.pair;
            let outcome = r.want_outcome.then(|| {
                let (tx, rx) = oneshot::channel();
                if let Ok(mut w) = waiters.lock() {
                    w.insert((pair, position), tx);
                }
                rx
            });
            if let Some(status) = pairs.get(&pair) {
                status.appended.store(position, Ordering::Release);
                status.update_gauges();
            }
            if let Some(actor) = actors.get(&pair)
                && actor.send((position, r.cmd)).await.is_err()
            {
                // The actor halted after this command was journaled; a
                // restart replays it.
                warn!(%pair, position, "journaled a command for a halted pair");
            }
            let _ = r.reply.send(Ok(Submitted { position, outcome }));
        }
        group_commits += 1;
        if group_commits.is_multiple_of(TRIM_EVERY) {
            journal.trim(|pair| {
                pairs
                    .get(&pair)
                    .map_or(0, |s| s.snapshot_position.load(Ordering::Acquire))
            });
        }
    }
}

/// Group commits between looks for journal segments the snapshots cover.
const TRIM_EVERY: u64 = 1_024;

/// Fans each actor output out to the observer and the waiting requests, then
/// hands it to the persister.
async fn dispatch(
    mut rx: mpsc::Receiver<Output>,
    persist: mpsc::Sender<Output>,
    observer: Arc<dyn Observer>,
    waiters: Waiters,
    pairs: HashMap<Symbol, Arc<PairStatus>>,
) {
    while let Some(out) = rx.recv().await {
        if let Output::Record(record) = &out {
            observer.on_record(record);
            let waiter = waiters
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&(record.pair, record.position)));
            if let Some(w) = waiter {
                let _ = w.send(record.clone());
            }
            if let Some(status) = pairs.get(&record.pair) {
                status.update_gauges();
            }
        }
        if persist.send(out).await.is_err() {
            error!("the persister stopped; events are no longer stored");
            // Keep draining so the actors can finish; the journal still
            // holds every command, and a restart stores what is missing.
        }
    }
}

/// How long the persister waits before retrying a failed transaction.
pub(crate) const RETRY_DELAY: Duration = Duration::from_millis(200);
