//! Listing a pair on the running embedded exchange: the pair is recorded in
//! the store first (every later start lists it again, after the configured
//! pairs), then its empty book gets an actor, the persister and the
//! observer learn it, and the journal writer (with the risk stage: its
//! shard too) takes it, before the pair accepts its first command.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use accounts::{AssetInfo, Shard};
use commandlog::{LagUnit, ListError, Listing, Observer, PairStatus};
use engine::OrderBook;
use pipeline::{Output, PipelineMetrics, RiskStage, RuntimeConfig, Stored, Ticks};
use proto::{Command, PairConfig, Seq, Symbol, TradingStatus};
use store::{ListedPair, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A listed pair, handed to the journal writer.
pub(crate) struct NewPair {
    pub(crate) config: PairConfig,
    pub(crate) status: Arc<PairStatus>,
    pub(crate) actor: mpsc::Sender<(u64, Command)>,
    /// Refused only by the risk stage's shard (the message says why).
    pub(crate) reply: oneshot::Sender<Result<(), String>>,
}

impl NewPair {
    /// Takes the pair into a journal writer's maps: its commands get
    /// positions from 1 and go to its actor, and its time passes.
    pub(crate) fn install(
        self,
        actors: &mut HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
        pairs: &mut HashMap<Symbol, Arc<PairStatus>>,
        next: &mut HashMap<Symbol, u64>,
        ticks: &mut Ticks,
    ) {
        let pair = self.config.symbol;
        actors.insert(pair, self.actor);
        pairs.insert(pair, self.status);
        next.insert(pair, 0);
        ticks.start(pair, std::time::Instant::now());
        let _ = self.reply.send(Ok(()));
    }

    /// The risk stage's turn: the shard learns the pair first.
    pub(crate) fn admit(self, risk: &mut RiskStage) -> Option<NewPair> {
        match risk.add_pair(&self.config) {
            Ok(()) => Some(self),
            Err(e) => {
                let _ = self.reply.send(Err(e.to_string()));
                None
            }
        }
    }
}

/// What listing needs of the running exchange. Dropped at shutdown, so
/// that the channels it holds close.
pub(crate) struct Lister {
    pub(crate) store: Store,
    pub(crate) config: RuntimeConfig,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) metrics: PipelineMetrics,
    /// Every actor's output queue.
    pub(crate) outputs: mpsc::Sender<Output>,
    /// The persister's queue.
    pub(crate) persist: mpsc::Sender<Stored>,
    /// Where the pairs' readers ask the persister to commit.
    pub(crate) store_wanted: Arc<tokio::sync::Notify>,
    /// The journal writer.
    pub(crate) writer: mpsc::Sender<NewPair>,
}

/// The accounts' view of the pairs, where the risk stage runs: what a
/// listing is checked against before anything is written.
#[derive(Debug)]
pub(crate) struct RiskInfo {
    pub(crate) assets: Vec<AssetInfo>,
    /// Every pair, configured then listed: the order the shard knows them.
    pub(crate) pairs: Vec<PairConfig>,
}

impl RiskInfo {
    /// The asset table with `pair` listed, or why the shard refuses it.
    fn with(&self, pair: &PairConfig) -> Result<Vec<AssetInfo>, ListError> {
        let refused = |e: accounts::ConfigError| ListError::Refused(e.to_string());
        let mut probe = Shard::new(&self.pairs).map_err(refused)?;
        probe.add_pair(pair).map_err(refused)?;
        Ok(probe.assets().to_vec())
    }
}

/// Lists `listing` (see `Exchange::list_pair`).
pub(crate) async fn list(
    lister: &Lister,
    pairs: &RwLock<HashMap<Symbol, Arc<PairStatus>>>,
    risk: Option<&RwLock<RiskInfo>>,
    listing: Listing,
) -> Result<(Arc<PairStatus>, JoinHandle<()>), ListError> {
    let config = listing.config;
    let pair = config.symbol;
    let taken = pairs
        .read()
        .map_err(|_| ListError::ShuttingDown)?
        .keys()
        .any(|p| p.joined() == pair.joined());
    if taken {
        return Err(ListError::Exists);
    }
    let assets = match risk {
        Some(r) => Some(
            r.read()
                .map_err(|_| ListError::ShuttingDown)?
                .with(&config)?,
        ),
        None => None,
    };
    let book = OrderBook::with_capacity(config, lister.config.book_capacity)
        .map_err(|e| ListError::Refused(e.to_string()))?;
    let row = ListedPair {
        pair,
        spec: listing.spec,
        listed_at: commandlog::now_ns(),
        partition: None,
    };
    match lister.store.list_pair(&row).await {
        Ok(true) => {}
        Ok(false) => return Err(ListError::Exists),
        Err(e) => return Err(ListError::Store(e.to_string())),
    }
    let status = Arc::new(
        PairStatus::new(config, TradingStatus::Trading, LagUnit::Commands, 0, Seq(0))
            .asking_store_through(lister.store_wanted.clone()),
    );
    let started = start(lister, book, &status).await;
    let handle = match started {
        Ok(handle) => handle,
        Err(e) => {
            // Nothing took a command: forget the row, so that a retry
            // lists it afresh.
            let _ = lister.store.unlist_pair(pair).await;
            return Err(e);
        }
    };
    if let (Some(r), Some(assets)) = (risk, assets)
        && let Ok(mut r) = r.write()
    {
        r.assets = assets;
        r.pairs.push(config);
    }
    pairs
        .write()
        .map_err(|_| ListError::ShuttingDown)?
        .insert(pair, status.clone());
    Ok((status, handle))
}

/// Starts the pair's actor and hands the pair to the persister, the
/// observer and the journal writer, in that order: each learns it before
/// anything of the pair can reach it.
async fn start(
    lister: &Lister,
    book: OrderBook,
    status: &Arc<PairStatus>,
) -> Result<JoinHandle<()>, ListError> {
    let config = *book.config();
    let pair = config.symbol;
    let gone = |_| ListError::ShuttingDown;
    lister
        .persist
        .send(Stored::Listed {
            pair,
            qty_scale: config.qty_scale,
            partition: None,
        })
        .await
        .map_err(gone)?;
    lister.observer.on_start(&config, book.depth(usize::MAX));
    let capacity = i64::try_from(lister.config.actor_queue).unwrap_or(i64::MAX);
    lister
        .metrics
        .queue_capacity
        .with_label_values(&[pair.as_str()])
        .set(capacity);
    let (tx, rx) = mpsc::channel(lister.config.actor_queue);
    let handle = pipeline::spawn_actor(
        book,
        0,
        status.clone(),
        rx,
        lister.outputs.clone(),
        lister.config.snapshot_every,
        lister.metrics.clone(),
    );
    let (reply, answer) = oneshot::channel();
    let new = NewPair {
        config,
        status: status.clone(),
        actor: tx,
        reply,
    };
    lister
        .writer
        .send(new)
        .await
        .map_err(|_| ListError::ShuttingDown)?;
    match answer.await {
        Ok(Ok(())) => Ok(handle),
        // The actor's queue is dropped with the refused pair: its task ends.
        Ok(Err(why)) => Err(ListError::Refused(why)),
        Err(_) => Err(ListError::ShuttingDown),
    }
}
