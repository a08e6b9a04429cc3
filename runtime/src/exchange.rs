//! The embedded runtime's handle: start (recover, then run), submit,
//! shutdown.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU64;

use accounts::AssetInfo;
use commandlog::{
    Accounts, AuditFuture, CommandLog, LagUnit, ListError, ListFuture, Listing, Movement,
    MovementFuture, Observer, PairStatus, SubmitError, SubmitFuture, Submitted, Waiters,
};
use engine::OrderBook;
use pipeline::{Output, Persister, PipelineMetrics, RuntimeConfig, Stored, Ticks};
use proto::{Command, PairConfig, Symbol};
use store::Store;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::dispatch::{self, Dispatcher, Queue, Settled};
use crate::error::StartError;
use crate::journal::Journal;
use crate::listing::{self, Lister, NewPair, RiskInfo};
use crate::recovery::{self, HeldPair, PairBook};
use crate::sequencer::{self, Request, Sequencer};
use crate::writer::{JournalRequest, JournalWriter};
use pipeline::{RiskSettings, RiskStage};

/// Risk snapshots waiting to be stored; one more due while one waits is
/// skipped (the next comes `snapshot_every` inputs later).
const RISK_SNAPSHOT_QUEUE: usize = 1;

/// Actor outputs the dispatcher takes at a time (it forwards each at once;
/// this only sizes its buffer).
const DISPATCH_BATCH: usize = 1_024;

/// How often the pairs' gauges are set from their counters.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

struct Tasks {
    gauges: JoinHandle<()>,
    journal: JoinHandle<()>,
    actors: Vec<JoinHandle<()>>,
    /// Without the risk stage only: the journal writer reads the actors'
    /// outputs when it is on.
    dispatcher: Option<JoinHandle<()>>,
    persister: JoinHandle<()>,
    /// Cuts the persister's linger short (its queue has closed).
    store_wanted: Arc<Notify>,
    /// With the risk stage only.
    risk_snapshots: Option<JoinHandle<()>>,
}

/// Where requests enter: the plain journal writer, or the one that runs
/// the risk stage too.
enum Intake {
    Plain(mpsc::Sender<JournalRequest>),
    Risk(mpsc::Sender<Request>),
}

/// Every pair's counters, shared by the port, the persister's queue and
/// the gauges; a listing adds to it.
pub(crate) type PairMap = Arc<RwLock<HashMap<Symbol, Arc<PairStatus>>>>;

/// The running embedded exchange core.
pub struct Exchange {
    intake: Intake,
    pairs: PairMap,
    stop: watch::Sender<bool>,
    tasks: Mutex<Option<Tasks>>,
    metrics: PipelineMetrics,
    risk: Option<RwLock<RiskInfo>>,
    /// Taken at shutdown; its lock makes listings one at a time.
    lister: tokio::sync::Mutex<Option<Lister>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("pairs", &self.pairs().len())
            .finish()
    }
}

/// The running pairs' actors, and every pair's counters.
struct Actors {
    inputs: HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
    tasks: Vec<JoinHandle<()>>,
    statuses: HashMap<Symbol, Arc<PairStatus>>,
    output: mpsc::Receiver<Output>,
    /// For the actors of pairs listed later.
    output_tx: mpsc::Sender<Output>,
}

impl Exchange {
    /// Recovers every pair (snapshot, then journal replay) and starts the
    /// actors, the dispatcher and the persister. The journal lives in
    /// `journal_dir`. With `risk`, recovers the accounts shard too (see
    /// `recovery`) and runs it in the journal writer.
    pub async fn start(
        store: Store,
        pairs: &[PairConfig],
        journal_dir: &Path,
        config: RuntimeConfig,
        observer: Arc<dyn Observer>,
        metrics: PipelineMetrics,
        risk: Option<RiskSettings>,
    ) -> Result<Exchange, StartError> {
        // Restore: each book from its snapshot, the shard from its own.
        recovery::refuse_legacy_journal(&store).await?;
        let mut restored = recovery::restore(&store, pairs, config.book_capacity).await?;
        let shard = match &risk {
            Some(_) => Some(recovery::restore_shard(&store, pairs).await?),
            None => None,
        };
        let risk_snapshot = shard.as_ref().map_or(0, |(_, position)| *position);
        // Replay: the journal after each snapshot.
        let (mut journal, tail, risk_tail) =
            Journal::open(journal_dir, &restored.positions(), risk_snapshot)
                .map_err(StartError::Journal)?;
        journal
            .set_fsync(config.journal_fsync)
            .map_err(StartError::Journal)?;
        for pair in tail.keys() {
            if !pairs.iter().any(|p| p.symbol == *pair) {
                warn!(%pair, "the journal holds commands for a pair that is not configured");
            }
        }
        let mut stage = match (shard, risk) {
            (Some((mut shard, position)), Some(settings)) => {
                let position = recovery::replay_risk(&mut shard, position, risk_tail)?;
                let mut stage =
                    RiskStage::new(shard, 0, position, pairs, settings, metrics.clone());
                stage.start_group();
                Some(stage)
            }
            _ => None,
        };
        recovery::replay_tail(&store, &mut restored.running, tail, stage.as_mut()).await?;
        if let Some(stage) = &mut stage {
            // The replay's settlements, before anything new.
            journal
                .append(Some(&stage.run), &[])
                .map_err(StartError::Journal)?;
            stage.start_group();
            observer.on_accounts_start(&stage.shard.balances().collect::<Vec<_>>());
        }
        recovery::snapshot_replayed(&store, &restored.running).await?;
        // Run.
        let stored_seqs = restored
            .running
            .iter()
            .map(|p| (p.config.symbol, p.stored_seq))
            .chain(
                restored
                    .held
                    .iter()
                    .map(|p| (p.config.symbol, p.stored_seq)),
            )
            .collect();
        let store_wanted = Arc::new(Notify::new());
        let actors = spawn_actors(
            restored.running,
            restored.held,
            &config,
            &*observer,
            &metrics,
            &store_wanted,
        );
        let parts = Parts {
            store,
            journal,
            actors,
            stored_seqs,
            store_wanted,
            config,
            observer,
            metrics,
        };
        Ok(match stage {
            None => parts.run(),
            Some(stage) => parts.run_risk(stage, risk_snapshot, pairs.to_vec()),
        })
    }

    /// Journals `cmd`; returns once it is durably in the command log. With
    /// `want_outcome`, the result also carries a receiver of its events.
    /// With the risk stage on, an order or amend whose worst case the
    /// user's free balance does not cover is refused
    /// ([`SubmitError::Refused`]) and nothing is journaled.
    pub async fn submit_command(
        &self,
        cmd: Command,
        want_outcome: bool,
    ) -> Result<Submitted, SubmitError> {
        let status = self.pair_status(cmd.pair).ok_or(SubmitError::UnknownPair)?;
        if status.is_halted() {
            return Err(SubmitError::Halted);
        }
        let (reply, rx) = oneshot::channel();
        let request = JournalRequest {
            cmd,
            want_outcome,
            reply,
        };
        let sent = match &self.intake {
            Intake::Plain(tx) => tx.send(request).await.is_ok(),
            Intake::Risk(tx) => tx.send(Request::Submit(request)).await.is_ok(),
        };
        if !sent {
            return Err(SubmitError::ShuttingDown);
        }
        rx.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Submissions waiting for the journal writer.
    pub fn journal_queue_depth(&self) -> usize {
        match &self.intake {
            Intake::Plain(tx) => tx.max_capacity() - tx.capacity(),
            Intake::Risk(tx) => tx.max_capacity() - tx.capacity(),
        }
    }

    /// Stops taking commands, lets every queued command reach its book and
    /// every event reach the store, snapshots every book (and the accounts
    /// shard), and returns when all of that is done. Later calls return at
    /// once.
    pub async fn shutdown(&self) {
        // No listing from now on; the queues it could feed may close.
        self.lister.lock().await.take();
        let tasks = self.tasks.lock().ok().and_then(|mut t| t.take());
        let Some(tasks) = tasks else { return };
        let _ = self.stop.send(true);
        let _ = tasks.journal.await;
        for a in tasks.actors {
            let _ = a.await;
        }
        if let Some(d) = tasks.dispatcher {
            let _ = d.await;
        }
        // Nothing more is coming: a lingering persister stores now.
        tasks.store_wanted.notify_one();
        let _ = tasks.persister.await;
        if let Some(r) = tasks.risk_snapshots {
            let _ = r.await;
        }
        tasks.gauges.abort();
        for status in self.pairs() {
            self.metrics.observe(&status);
        }
        info!("runtime stopped: queues drained, books snapshotted, events stored");
    }

    /// Stops every task at once, as a killed process would: nothing queued
    /// is applied, stored or snapshotted (what was journaled stays). For
    /// tests of recovery; the actor tasks end on their own once their
    /// queues close.
    pub fn abort(&self) {
        if let Ok(mut lister) = self.lister.try_lock() {
            lister.take();
        }
        let tasks = self.tasks.lock().ok().and_then(|mut t| t.take());
        let Some(tasks) = tasks else { return };
        tasks.journal.abort();
        if let Some(d) = &tasks.dispatcher {
            d.abort();
        }
        tasks.persister.abort();
        if let Some(r) = &tasks.risk_snapshots {
            r.abort();
        }
        tasks.gauges.abort();
    }

    /// Sends `request` to the risk stage's writer.
    async fn ask_risk(&self, request: Request) -> Result<(), SubmitError> {
        match &self.intake {
            Intake::Risk(tx) => tx
                .send(request)
                .await
                .map_err(|_| SubmitError::ShuttingDown),
            Intake::Plain(_) => Err(SubmitError::ShuttingDown),
        }
    }

    /// A pair's counters.
    fn pair_status(&self, pair: Symbol) -> Option<Arc<PairStatus>> {
        self.pairs.read().ok()?.get(&pair).cloned()
    }

    /// Lists a new pair (see `listing`): recorded in the store, then
    /// started with an empty book. With the risk stage on, a pair that
    /// would count an asset the shard has more finely is refused first.
    pub async fn list_pair(&self, listing: Listing) -> Result<Arc<PairStatus>, ListError> {
        let lister = self.lister.lock().await;
        let Some(lister) = lister.as_ref() else {
            return Err(ListError::ShuttingDown);
        };
        let (status, actor) =
            listing::list(lister, &self.pairs, self.risk.as_ref(), listing).await?;
        match self.tasks.lock() {
            Ok(mut t) => match t.as_mut() {
                Some(t) => t.actors.push(actor),
                None => drop(actor),
            },
            Err(_) => drop(actor),
        }
        Ok(status)
    }
}

/// What `start` recovered, ready to run.
struct Parts {
    store: Store,
    journal: Journal,
    actors: Actors,
    stored_seqs: HashMap<Symbol, proto::Seq>,
    /// Readers waiting for the store tell the persister here (every
    /// pair's status, a listed one's too).
    store_wanted: Arc<Notify>,
    config: RuntimeConfig,
    observer: Arc<dyn Observer>,
    metrics: PipelineMetrics,
}

impl Parts {
    /// The passing of time for the running pairs (halted ones take no
    /// command).
    fn ticks(&self) -> Ticks {
        let running = self.actors.inputs.keys().copied();
        Ticks::new(self.config.gtd_tick_ms, running, Instant::now())
    }

    /// What listing a pair later needs of these parts.
    fn lister(&self, persist: mpsc::Sender<Stored>, writer: mpsc::Sender<NewPair>) -> Lister {
        Lister {
            store: self.store.clone(),
            config: self.config.clone(),
            observer: self.observer.clone(),
            metrics: self.metrics.clone(),
            outputs: self.actors.output_tx.clone(),
            persist,
            store_wanted: self.store_wanted.clone(),
            writer,
        }
    }

    /// The persister and its queue's sender.
    fn persister(&mut self, pairs: &PairMap) -> (JoinHandle<()>, mpsc::Sender<Stored>) {
        let (persist_tx, persist_rx) = mpsc::channel::<Stored>(self.config.output_queue);
        let persister = Persister {
            store: self.store.clone(),
            qty_scales: self
                .actors
                .statuses
                .iter()
                .map(|(s, p)| (*s, p.config().qty_scale))
                .collect(),
            last_seqs: std::mem::take(&mut self.stored_seqs),
            halted: Default::default(),
            max_batch: self.config.persister_batch,
            log: None,
            metrics: self.metrics.clone(),
        };
        let queue = Queue {
            input: persist_rx,
            linger: Duration::from_millis(self.config.persister_linger_ms),
            store_wanted: self.store_wanted.clone(),
            pairs: pairs.clone(),
            metrics: self.metrics.clone(),
        };
        (tokio::spawn(persister.run(queue)), persist_tx)
    }

    /// Starts the dispatcher, the persister, the journal writer and the
    /// gauges around the running actors.
    fn run(mut self) -> Exchange {
        let pairs: PairMap = Arc::new(RwLock::new(self.actors.statuses.clone()));
        let ticks = self.ticks();
        // Registered before the command reaches its actor: no record can
        // come first, so none is kept for a late request.
        let waiters = Arc::new(Mutex::new(Waiters::new(0)));
        let (persister, persist_tx) = self.persister(&pairs);
        // One listing at a time (the lister's lock).
        let (listings, listings_rx) = mpsc::channel(1);
        let lister = self.lister(persist_tx.clone(), listings);
        let dispatcher = Dispatcher {
            observer: self.observer,
            waiters: waiters.clone(),
            persist: persist_tx,
        };
        let dispatcher = tokio::spawn(pipeline::drain(
            self.actors.output,
            dispatcher,
            DISPATCH_BATCH,
        ));
        let (journal_tx, journal_rx) = mpsc::channel(self.config.journal_queue);
        let (stop, stop_rx) = watch::channel(false);
        let writer = JournalWriter {
            journal: self.journal,
            actors: self.actors.inputs,
            pairs: self.actors.statuses,
            listings: listings_rx,
            waiters,
            max_batch: self.config.journal_batch,
            metrics: self.metrics.clone(),
            ticks,
        };
        let journal = tokio::spawn(writer.run(journal_rx, stop_rx));
        let gauges = self.metrics.watch(statuses_of(&pairs), GAUGE_PERIOD);
        Exchange {
            intake: Intake::Plain(journal_tx),
            pairs,
            stop,
            metrics: self.metrics,
            risk: None,
            lister: tokio::sync::Mutex::new(Some(lister)),
            tasks: Mutex::new(Some(Tasks {
                gauges,
                journal,
                actors: self.actors.tasks,
                dispatcher: Some(dispatcher),
                persister,
                store_wanted: self.store_wanted.clone(),
                risk_snapshots: None,
            })),
        }
    }

    /// Starts the persister, the dispatcher, the risk snapshots' writer,
    /// the journal writer running `stage` (it reads the actors' outputs and
    /// hands each settled one to the dispatcher) and the gauges.
    /// `risk_snapshot` is the stored risk snapshot's position.
    fn run_risk(
        mut self,
        stage: RiskStage,
        risk_snapshot: u64,
        configs: Vec<PairConfig>,
    ) -> Exchange {
        let pairs: PairMap = Arc::new(RwLock::new(self.actors.statuses.clone()));
        let ticks = self.ticks();
        let waiters = Arc::new(Mutex::new(Waiters::new(0)));
        let (persister, persist_tx) = self.persister(&pairs);
        // The fan-out of balances and settled records (observers, answers,
        // RESULT waiters, the persister's queue) runs beside the writer, as
        // without risk.
        let (settled_tx, settled_rx) = mpsc::channel::<Settled>(self.config.output_queue);
        // One listing at a time (the lister's lock).
        let (listings, listings_rx) = mpsc::channel(1);
        let lister = self.lister(persist_tx.clone(), listings);
        let dispatcher = Dispatcher {
            observer: self.observer,
            waiters: waiters.clone(),
            persist: persist_tx,
        };
        let dispatcher = tokio::spawn(dispatch::dispatch_settled(
            settled_rx,
            dispatcher,
            DISPATCH_BATCH,
        ));
        let risk_stored = Arc::new(AtomicU64::new(risk_snapshot));
        let (snap_tx, snap_rx) = mpsc::channel(RISK_SNAPSHOT_QUEUE);
        let risk_snapshots = tokio::spawn(sequencer::store_risk_snapshots(
            self.store.clone(),
            snap_rx,
            risk_stored.clone(),
        ));
        let info = RiskInfo {
            assets: stage.shard.assets().to_vec(),
            pairs: configs,
        };
        let (journal_tx, journal_rx) = mpsc::channel(self.config.journal_queue);
        let (stop, stop_rx) = watch::channel(false);
        let writer = Sequencer {
            journal: self.journal,
            actors: self.actors.inputs,
            pairs: self.actors.statuses,
            listings: listings_rx,
            waiters,
            max_batch: self.config.journal_batch,
            metrics: self.metrics.clone(),
            risk: stage,
            outputs: self.actors.output,
            settled: settled_tx,
            snapshots: snap_tx,
            risk_stored,
            ticks,
        };
        let journal = tokio::spawn(writer.run(journal_rx, stop_rx));
        let gauges = self.metrics.watch(statuses_of(&pairs), GAUGE_PERIOD);
        Exchange {
            intake: Intake::Risk(journal_tx),
            pairs,
            stop,
            metrics: self.metrics,
            risk: Some(RwLock::new(info)),
            lister: tokio::sync::Mutex::new(Some(lister)),
            tasks: Mutex::new(Some(Tasks {
                gauges,
                journal,
                actors: self.actors.tasks,
                dispatcher: Some(dispatcher),
                persister,
                store_wanted: self.store_wanted.clone(),
                risk_snapshots: Some(risk_snapshots),
            })),
        }
    }
}

impl Accounts for Exchange {
    fn assets(&self) -> Vec<AssetInfo> {
        let risk = self.risk.as_ref().and_then(|r| r.read().ok());
        risk.map_or_else(Vec::new, |r| r.assets.clone())
    }

    fn move_funds(&self, movement: Movement) -> MovementFuture<'_> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.ask_risk(Request::Move(movement, reply)).await?;
            rx.await.map_err(|_| SubmitError::ShuttingDown)?
        })
    }

    fn audit(&self) -> AuditFuture<'_> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.ask_risk(Request::Audit(reply)).await?;
            rx.await.map_err(|_| SubmitError::ShuttingDown)
        })
    }
}

impl CommandLog for Exchange {
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_> {
        Box::pin(self.submit_command(cmd, want_outcome))
    }

    fn pair(&self, pair: Symbol) -> Option<Arc<PairStatus>> {
        self.pair_status(pair)
    }

    fn pairs(&self) -> Vec<Arc<PairStatus>> {
        statuses_of(&self.pairs)()
    }

    fn list_pair(&self, listing: Listing) -> ListFuture<'_> {
        Box::pin(self.list_pair(listing))
    }

    fn accounts(&self) -> Option<&dyn Accounts> {
        self.risk.is_some().then_some(self as &dyn Accounts)
    }
}

/// Reads the pairs' counters as they are now (a listing adds to them).
fn statuses_of(pairs: &PairMap) -> impl Fn() -> Vec<Arc<PairStatus>> + Send + 'static {
    let pairs = pairs.clone();
    move || {
        pairs
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Starts an actor per running pair and the counters of every pair; held
/// pairs start halted, with no actor.
fn spawn_actors(
    running: Vec<PairBook>,
    held: Vec<HeldPair>,
    config: &RuntimeConfig,
    observer: &dyn Observer,
    metrics: &PipelineMetrics,
    store_wanted: &Arc<Notify>,
) -> Actors {
    let (out_tx, output) = mpsc::channel::<Output>(config.output_queue);
    let mut actors = Actors {
        inputs: HashMap::new(),
        tasks: Vec::new(),
        statuses: HashMap::new(),
        output,
        output_tx: out_tx.clone(),
    };
    // A pair's counters, with the book's rules and status, at `position`
    // of the journal with events up to `seq`.
    let status_of = |book: &OrderBook, position, seq| {
        Arc::new(
            PairStatus::new(
                *book.config(),
                book.status(),
                LagUnit::Commands,
                position,
                seq,
            )
            .asking_store_through(store_wanted.clone()),
        )
    };
    for p in running {
        let sym = p.config.symbol;
        // The book's rules, not the file's: an operator may have changed
        // them, and the book restored them from its snapshot and the log.
        observer.on_start(p.book.config(), p.book.depth(usize::MAX));
        let status = status_of(&p.book, p.position, p.book.last_seq());
        metrics
            .queue_capacity
            .with_label_values(&[sym.as_str()])
            .set(i64::try_from(config.actor_queue).unwrap_or(i64::MAX));
        let (tx, rx) = mpsc::channel(config.actor_queue);
        actors.inputs.insert(sym, tx);
        actors.tasks.push(pipeline::spawn_actor(
            p.book,
            p.position,
            status.clone(),
            rx,
            out_tx.clone(),
            config.snapshot_every,
            metrics.clone(),
        ));
        actors.statuses.insert(sym, status);
    }
    for p in held {
        observer.on_start(p.book.config(), p.book.depth(usize::MAX));
        let sym = p.config.symbol;
        let status = status_of(&p.book, p.position, p.stored_seq);
        status.halt(format!("halted by the store: {}", p.reason));
        metrics.observe(&status);
        actors.statuses.insert(sym, status);
    }
    actors
}
