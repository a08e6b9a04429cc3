//! The embedded runtime's handle: start (recover, then run), submit,
//! shutdown.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commandlog::{
    CommandLog, LagUnit, Observer, PairStatus, SubmitError, SubmitFuture, Submitted, Waiters,
};
use pipeline::{Output, Persister, PipelineMetrics, RuntimeConfig, Stored};
use proto::{Command, PairConfig, Symbol};
use store::Store;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::dispatch::{Dispatcher, Queue};
use crate::error::StartError;
use crate::journal::Journal;
use crate::recovery::{self, HeldPair, PairBook};
use crate::risk::RiskSettings;
use crate::writer::{JournalRequest, JournalWriter};

/// Actor outputs the dispatcher takes at a time (it forwards each at once;
/// this only sizes its buffer).
const DISPATCH_BATCH: usize = 1_024;

/// How often the pairs' gauges are set from their counters.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

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
    metrics: PipelineMetrics,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

/// The running pairs' actors, and every pair's counters.
struct Actors {
    inputs: HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    statuses: HashMap<Symbol, Arc<PairStatus>>,
    output: mpsc::Receiver<Output>,
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
        metrics: PipelineMetrics,
        risk: Option<RiskSettings>,
    ) -> Result<Exchange, StartError> {
        // Restore: each book from its snapshot.
        recovery::refuse_legacy_journal(&store).await?;
        let mut restored = recovery::restore(&store, pairs, config.book_capacity).await?;
        // Replay: the journal after each snapshot.
        let (mut journal, tail) =
            Journal::open(journal_dir, &restored.positions()).map_err(StartError::Journal)?;
        journal
            .set_fsync(config.journal_fsync)
            .map_err(StartError::Journal)?;
        for pair in tail.keys() {
            if !pairs.iter().any(|p| p.symbol == *pair) {
                warn!(%pair, "the journal holds commands for a pair that is not configured");
            }
        }
        recovery::replay_tail(&store, &mut restored.running, tail).await?;
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
        let actors = spawn_actors(
            restored.running,
            restored.held,
            &config,
            &*observer,
            &metrics,
        );
        Ok(Exchange::run(
            store,
            journal,
            actors,
            stored_seqs,
            config,
            observer,
            metrics,
        ))
    }

    /// Starts the dispatcher, the persister, the journal writer and the
    /// gauges around the running actors.
    fn run(
        store: Store,
        journal: Journal,
        actors: Actors,
        stored_seqs: HashMap<Symbol, proto::Seq>,
        config: RuntimeConfig,
        observer: Arc<dyn Observer>,
        metrics: PipelineMetrics,
    ) -> Exchange {
        let pairs = actors.statuses;
        // Registered before the command reaches its actor: no record can
        // come first, so none is kept for a late request.
        let waiters = Arc::new(Mutex::new(Waiters::new(0)));
        let (persist_tx, persist_rx) = mpsc::channel::<Stored>(config.output_queue);
        let persister = Persister {
            store,
            qty_scales: pairs
                .iter()
                .map(|(s, p)| (*s, p.config.qty_scale))
                .collect(),
            last_seqs: stored_seqs,
            halted: Default::default(),
            max_batch: config.persister_batch,
            log: None,
            metrics: metrics.clone(),
        };
        let queue = Queue {
            input: persist_rx,
            linger: Duration::from_millis(config.persister_linger_ms),
            pairs: pairs.clone(),
            metrics: metrics.clone(),
        };
        let persister = tokio::spawn(persister.run(queue));
        let dispatcher = Dispatcher {
            observer,
            waiters: waiters.clone(),
            persist: persist_tx,
        };
        let dispatcher = tokio::spawn(pipeline::drain(actors.output, dispatcher, DISPATCH_BATCH));
        let (journal_tx, journal_rx) = mpsc::channel(config.journal_queue);
        let (stop, stop_rx) = watch::channel(false);
        let writer = JournalWriter {
            journal,
            actors: actors.inputs,
            pairs: pairs.clone(),
            waiters,
            max_batch: config.journal_batch,
            metrics: metrics.clone(),
        };
        let journal = tokio::spawn(writer.run(journal_rx, stop_rx));
        let gauges = metrics.watch(pairs.values().cloned().collect(), GAUGE_PERIOD);
        Exchange {
            journal: journal_tx,
            pairs,
            stop,
            metrics,
            tasks: Mutex::new(Some(Tasks {
                gauges,
                journal,
                actors: actors.threads,
                dispatcher,
                persister,
            })),
        }
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

/// Starts an actor per running pair and the counters of every pair; held
/// pairs start halted, with no actor.
fn spawn_actors(
    running: Vec<PairBook>,
    held: Vec<HeldPair>,
    config: &RuntimeConfig,
    observer: &dyn Observer,
    metrics: &PipelineMetrics,
) -> Actors {
    let (out_tx, output) = mpsc::channel::<Output>(config.output_queue);
    let mut actors = Actors {
        inputs: HashMap::new(),
        threads: Vec::new(),
        statuses: HashMap::new(),
        output,
    };
    for p in running {
        let sym = p.config.symbol;
        observer.on_start(&p.config, p.book.depth(usize::MAX));
        let status = Arc::new(PairStatus::new(
            p.config,
            LagUnit::Commands,
            p.position,
            p.book.last_seq(),
        ));
        metrics
            .queue_capacity
            .with_label_values(&[sym.as_str()])
            .set(i64::try_from(config.actor_queue).unwrap_or(i64::MAX));
        let (tx, rx) = mpsc::channel(config.actor_queue);
        actors.inputs.insert(sym, tx);
        actors.threads.push(pipeline::spawn_actor(
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
        observer.on_start(&p.config, p.book.depth(usize::MAX));
        let sym = p.config.symbol;
        let status = Arc::new(PairStatus::new(
            p.config,
            LagUnit::Commands,
            p.position,
            p.stored_seq,
        ));
        status.halt(format!("halted by the store: {}", p.reason));
        metrics.observe(&status);
        actors.statuses.insert(sym, status);
    }
    actors
}
