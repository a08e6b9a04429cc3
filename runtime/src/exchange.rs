//! The embedded runtime's handle: start (with recovery), submit, shutdown.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commandlog::{
    CommandLog, LagUnit, Observer, PairStatus, SubmitError, SubmitFuture, Submitted, Waiters,
};
use engine::OrderBook;
use proto::{Command, PairConfig, Seq, Symbol};
use serde::Deserialize;
use store::{Batch, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

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

struct Tasks {
    gauges: JoinHandle<()>,
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
    metrics: RuntimeMetrics,
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
                LagUnit::Commands,
                position,
                book.last_seq(),
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
            let status = Arc::new(PairStatus::new(
                pc.clone(),
                LagUnit::Commands,
                position,
                last_seq,
            ));
            status.halt(format!("halted by the store: {reason}"));
            metrics.observe(&status);
            statuses.insert(pc.symbol, status);
        }
        let pairs = statuses;

        // Registered before the command reaches its actor: no record can
        // come first, so none is kept for a late request.
        let waiters = Arc::new(Mutex::new(Waiters::new(0)));
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
        let dispatcher = tokio::spawn(dispatch(out_rx, persist_tx, observer, waiters.clone()));
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
            metrics.clone(),
        ));
        let gauges = metrics.watch(pairs.values().cloned().collect(), GAUGE_PERIOD);
        Ok(Exchange {
            journal: journal_tx,
            pairs,
            stop,
            metrics,
            tasks: Mutex::new(Some(Tasks {
                gauges,
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
        tasks.gauges.abort();
        for status in self.pairs.values() {
            self.metrics.observe(status);
        }
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
    waiters: Arc<Mutex<Waiters>>,
    max_batch: usize,
    metrics: RuntimeMetrics,
) {
    let mut next: HashMap<Symbol, u64> = pairs
        .iter()
        .map(|(s, p)| (*s, p.logged_position()))
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
                    *pos = status.logged_position();
                }
            }
            for (_, r) in assigned {
                let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
            }
            continue;
        }
        for (position, r) in assigned {
            let pair = r.cmd.pair;
            let outcome = r.want_outcome.then(|| match waiters.lock() {
                Ok(mut w) => w.register(pair, position),
                Err(_) => oneshot::channel().1,
            });
            if let Some(status) = pairs.get(&pair) {
                status.set_logged(position);
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
            journal.trim(|pair| pairs.get(&pair).map_or(0, |s| s.snapshot_position()));
        }
    }
}

/// How often the pairs' gauges are set from their counters.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

/// Group commits between looks for journal segments the snapshots cover.
const TRIM_EVERY: u64 = 1_024;

/// Fans each actor output out to the observer and the waiting requests, then
/// hands it to the persister.
async fn dispatch(
    mut rx: mpsc::Receiver<Output>,
    persist: mpsc::Sender<Output>,
    observer: Arc<dyn Observer>,
    waiters: Arc<Mutex<Waiters>>,
) {
    while let Some(out) = rx.recv().await {
        if let Output::Record(record) = &out {
            observer.on_record(record);
            if let Ok(mut w) = waiters.lock() {
                w.complete(record);
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
