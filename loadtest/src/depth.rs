//! A WebSocket subscriber that keeps a local L2 book of each pair by the
//! documented procedure, and counts sequence gaps (there must be none):
//!
//! 1. Subscribe to `<symbol>@depth` (`btceur@depth`, Binance's name) and
//!    buffer the diffs.
//! 2. `GET /api/v3/depth` for a snapshot with `lastUpdateId`.
//! 3. Drop buffered diffs with `u <= lastUpdateId`.
//! 4. The first diff applied must have `U <= lastUpdateId + 1 <= u`.
//! 5. From then on each diff's `U` must be the previous `u + 1`.
//!
//! A diff that breaks rule 5 (or a hole between buffered diffs) is a gap:
//! it is counted and the pair resyncs from a new snapshot. A snapshot older
//! than the first buffered diff (rule 4 cannot hold) is not a gap of the
//! stream; it is counted apart and fetched again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

pub use crate::error::DepthError;
use crate::flow::PairRules;
use clientkit::decimal;

/// One depth diff, prices and quantities as integers at the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// `U`: the first seq it covers.
    pub first: u64,
    /// `u`: the last seq it covers.
    pub last: u64,
    /// Changed bid levels `(price, qty)`; qty 0 removes the level.
    pub bids: Vec<(u64, u64)>,
    /// Changed ask levels.
    pub asks: Vec<(u64, u64)>,
}

/// Price levels `(price, qty)` of one side.
pub type Levels = Vec<(u64, u64)>;

/// A REST depth snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The seq of the last event it includes.
    pub last_update_id: u64,
    /// Bid levels, best first.
    pub bids: Vec<(u64, u64)>,
    /// Ask levels, best first.
    pub asks: Vec<(u64, u64)>,
}

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Fetch a snapshot and pass it to [`DepthSync::on_snapshot`].
    FetchSnapshot,
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for a snapshot; diffs are kept.
    Buffering { buffer: Vec<Diff>, fetching: bool },
    /// In sync up to `last`; `fresh` until the first diff after the
    /// snapshot is applied (rule 4 instead of rule 5).
    Synced { last: u64, fresh: bool },
}

/// Most diffs buffered while waiting for a snapshot.
const MAX_BUFFER: usize = 200_000;

/// The sync state of one pair's local book.
#[derive(Debug, Clone)]
pub struct DepthSync {
    state: State,
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
    /// Levels per side a snapshot holds at most.
    limit: usize,
    /// When the snapshot was cut at `limit` bids: the local book knows
    /// nothing below this price except what diffs told it.
    bid_floor: Option<u64>,
    /// The same for asks, above this price.
    ask_ceiling: Option<u64>,
    /// Counters.
    pub counts: SyncCounts,
}

/// What happened to a pair's sync.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct SyncCounts {
    /// Diffs received.
    pub diffs: u64,
    /// Diffs applied to the local book.
    pub applied: u64,
    /// Diffs dropped as already covered (`u <= lastUpdateId`).
    pub dropped: u64,
    /// Sequence gaps: a diff whose `U` is not the previous `u + 1`.
    pub gaps: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Snapshots older than the first buffered diff, fetched again.
    pub stale_snapshots: u64,
    /// Times the buffer overflowed while waiting for a snapshot.
    pub buffer_overflows: u64,
}

fn apply_levels(side: &mut BTreeMap<u64, u64>, levels: &[(u64, u64)]) {
    for &(p, q) in levels {
        if q == 0 {
            side.remove(&p);
        } else {
            side.insert(p, q);
        }
    }
}

impl DepthSync {
    /// A pair not yet synced: diffs are buffered until a snapshot (of at
    /// most `limit` levels per side) comes.
    pub fn new(limit: usize) -> DepthSync {
        DepthSync {
            state: State::Buffering {
                buffer: Vec::new(),
                fetching: false,
            },
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            limit,
            bid_floor: None,
            ask_ceiling: None,
            counts: SyncCounts::default(),
        }
    }

    /// Whether the local book equals `rest` (a later snapshot of at most the
    /// same depth) over the price range both know completely: a snapshot
    /// cut at its limit only covers the levels down to its last one.
    /// Returns the verdict and the number of levels compared.
    pub fn matches(&self, rest: &Snapshot) -> (bool, usize) {
        if !self.is_synced() {
            return (false, 0);
        }
        let cut = |levels: &Levels| {
            (levels.len() >= self.limit)
                .then(|| levels.last().map(|l| l.0))
                .flatten()
        };
        let bid_floor = self.bid_floor.max(cut(&rest.bids));
        let ask_ceiling = match (self.ask_ceiling, cut(&rest.asks)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let local_bids: Levels = self
            .bids
            .iter()
            .rev()
            .take_while(|(p, _)| bid_floor.is_none_or(|f| **p >= f))
            .map(|(p, q)| (*p, *q))
            .collect();
        let local_asks: Levels = self
            .asks
            .iter()
            .take_while(|(p, _)| ask_ceiling.is_none_or(|c| **p <= c))
            .map(|(p, q)| (*p, *q))
            .collect();
        let rest_bids: Vec<&(u64, u64)> = rest
            .bids
            .iter()
            .take_while(|(p, _)| bid_floor.is_none_or(|f| *p >= f))
            .collect();
        let rest_asks: Vec<&(u64, u64)> = rest
            .asks
            .iter()
            .take_while(|(p, _)| ask_ceiling.is_none_or(|c| *p <= c))
            .collect();
        let equal = local_bids.iter().eq(rest_bids.iter().copied())
            && local_asks.iter().eq(rest_asks.iter().copied());
        (equal, rest_bids.len() + rest_asks.len())
    }

    /// True once a snapshot was applied and no gap came after it.
    pub fn is_synced(&self) -> bool {
        matches!(self.state, State::Synced { .. })
    }

    /// The last seq the local book covers, once synced.
    pub fn last(&self) -> Option<u64> {
        match self.state {
            State::Synced { last, .. } => Some(last),
            State::Buffering { .. } => None,
        }
    }

    /// Whether a snapshot should be fetched now (and marks it fetched).
    pub fn want_snapshot(&mut self) -> bool {
        match &mut self.state {
            State::Buffering { fetching, .. } if !*fetching => {
                *fetching = true;
                true
            }
            _ => false,
        }
    }

    /// The best `n` levels of each side: bids highest first, asks lowest
    /// first.
    pub fn top(&self, n: usize) -> (Levels, Levels) {
        (
            self.bids
                .iter()
                .rev()
                .take(n)
                .map(|(p, q)| (*p, *q))
                .collect(),
            self.asks.iter().take(n).map(|(p, q)| (*p, *q)).collect(),
        )
    }

    fn gap(&mut self, d: Diff) -> Action {
        self.counts.gaps += 1;
        self.state = State::Buffering {
            buffer: vec![d],
            fetching: false,
        };
        Action::FetchSnapshot
    }

    fn apply(&mut self, d: &Diff) {
        apply_levels(&mut self.bids, &d.bids);
        apply_levels(&mut self.asks, &d.asks);
        self.counts.applied += 1;
    }

    /// Takes a diff from the stream.
    pub fn on_diff(&mut self, d: Diff) -> Action {
        self.counts.diffs += 1;
        match &mut self.state {
            State::Buffering { buffer, fetching } => {
                if let Some(prev) = buffer.last()
                    && d.first != prev.last + 1
                {
                    // A hole in the stream while waiting: what is buffered
                    // can never be applied.
                    self.counts.gaps += 1;
                    buffer.clear();
                }
                if buffer.len() >= MAX_BUFFER {
                    self.counts.buffer_overflows += 1;
                    buffer.clear();
                }
                buffer.push(d);
                if *fetching {
                    Action::None
                } else {
                    Action::FetchSnapshot
                }
            }
            State::Synced { last, fresh } => {
                let (last, fresh) = (*last, *fresh);
                if d.last <= last {
                    self.counts.dropped += 1;
                    return Action::None;
                }
                let fits = if fresh {
                    d.first <= last + 1
                } else {
                    d.first == last + 1
                };
                if !fits {
                    return self.gap(d);
                }
                self.apply(&d);
                self.state = State::Synced {
                    last: d.last,
                    fresh: false,
                };
                Action::None
            }
        }
    }

    /// Takes a snapshot fetched after [`Action::FetchSnapshot`].
    pub fn on_snapshot(&mut self, s: Snapshot) -> Action {
        let buffer = match &mut self.state {
            State::Buffering { buffer, .. } => std::mem::take(buffer),
            // Already synced (a late duplicate fetch): ignore it.
            State::Synced { .. } => return Action::None,
        };
        let before = buffer.len();
        let pending: Vec<Diff> = buffer
            .into_iter()
            .filter(|d| d.last > s.last_update_id)
            .collect();
        self.counts.dropped += (before - pending.len()) as u64;
        if let Some(first) = pending.first()
            && first.first > s.last_update_id + 1
        {
            // The snapshot predates the first buffered diff: fetch again.
            self.counts.stale_snapshots += 1;
            self.state = State::Buffering {
                buffer: pending,
                fetching: false,
            };
            return Action::FetchSnapshot;
        }
        self.counts.snapshots += 1;
        self.bids = s.bids.iter().copied().collect();
        self.asks = s.asks.iter().copied().collect();
        self.bid_floor = (s.bids.len() >= self.limit)
            .then(|| s.bids.last().map(|l| l.0))
            .flatten();
        self.ask_ceiling = (s.asks.len() >= self.limit)
            .then(|| s.asks.last().map(|l| l.0))
            .flatten();
        // Buffered diffs are contiguous (a hole cleared the buffer), and the
        // first covers lastUpdateId + 1.
        let mut last = s.last_update_id;
        let fresh = pending.is_empty();
        for d in &pending {
            self.apply(d);
            last = d.last;
        }
        self.state = State::Synced { last, fresh };
        Action::None
    }
}

#[derive(Deserialize)]
struct WireDiff<'a> {
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    #[serde(rename = "s", borrow)]
    symbol: &'a str,
    #[serde(rename = "b", borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(rename = "a", borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

fn levels(raw: &[(&str, &str)], r: &PairRules) -> Option<Vec<(u64, u64)>> {
    raw.iter()
        .map(|(p, q)| {
            Some((
                decimal::to_scale(p, r.price_scale).ok()?,
                decimal::to_scale(q, r.qty_scale).ok()?,
            ))
        })
        .collect()
}

/// Parses a REST depth answer at the pair's scales.
pub fn parse_snapshot(v: &Value, r: &PairRules) -> Result<Snapshot, DepthError> {
    let side = |name: &str| -> Result<Vec<(u64, u64)>, DepthError> {
        let raw: Vec<(String, String)> = serde_json::from_value(v[name].clone())
            .map_err(|e| format!("depth {}: {name}: {e}", r.symbol))?;
        let borrowed: Vec<(&str, &str)> =
            raw.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect();
        levels(&borrowed, r)
            .ok_or_else(|| DepthError::from(format!("depth {}: bad level in {name}", r.symbol)))
    };
    Ok(Snapshot {
        last_update_id: v["lastUpdateId"]
            .as_u64()
            .ok_or_else(|| format!("depth {}: no lastUpdateId", r.symbol))?,
        bids: side("bids")?,
        asks: side("asks")?,
    })
}

/// The end state of one pair's sync.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// The pair, as the exchange's config names it (`BTC-EUR`).
    pub symbol: String,
    /// Counters.
    #[serde(flatten)]
    pub counts: SyncCounts,
    /// WebSocket connections lost (each followed by a resync).
    pub disconnects: u64,
    /// After the run, the local book's best levels equal a fresh REST
    /// snapshot's (`None`: not checked, e.g. never synced).
    pub book_matches_at_end: Option<bool>,
    /// Levels compared at the end (bids + asks).
    pub levels_compared: usize,
}

/// Everything the subscriber found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DepthReport {
    /// Per pair.
    pub pairs: Vec<PairReport>,
    /// Sequence gaps over all pairs (must be 0).
    pub gaps: u64,
    /// Why connections ended, if they did.
    pub close_reasons: Vec<String>,
}

/// A running subscriber: live gap count, and a way to finish.
#[derive(Debug)]
pub struct Subscriber {
    /// Gaps so far, for the progress line.
    pub gaps: Arc<AtomicU64>,
    synced: watch::Receiver<usize>,
    pairs: usize,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<DepthReport>,
}

impl Subscriber {
    /// Starts syncing `pairs` against the exchange at `base`
    /// (`http://host:port`); `limit` levels per snapshot.
    pub fn start(base: &str, pairs: Vec<PairRules>, limit: u32) -> Subscriber {
        let gaps = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let (synced_tx, synced) = watch::channel(0);
        let n = pairs.len();
        let task = tokio::spawn(run(
            base.to_string(),
            pairs,
            limit,
            stop_rx,
            gaps.clone(),
            synced_tx,
        ));
        Subscriber {
            gaps,
            synced,
            pairs: n,
            stop,
            task,
        }
    }

    /// Waits until every pair has synced once, up to `wait`; true if they
    /// did.
    pub async fn ready(&mut self, wait: Duration) -> bool {
        let n = self.pairs;
        tokio::time::timeout(wait, self.synced.wait_for(|&s| s >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Ends the run: compares each local book with a fresh snapshot, then
    /// closes.
    pub async fn finish(self) -> Result<DepthReport, DepthError> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(20), self.task).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(DepthError::from(format!("depth subscriber failed: {e}"))),
            Err(_) => Err(DepthError::from(
                "depth subscriber did not finish within 20 s",
            )),
        }
    }
}

async fn fetch_snapshot(
    http: reqwest::Client,
    base: String,
    pair: PairRules,
    limit: u32,
) -> Result<Snapshot, DepthError> {
    let url = format!("{base}/api/v3/depth?symbol={}&limit={limit}", pair.symbol);
    let v: Value = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    parse_snapshot(&v, &pair)
}

struct Pair {
    rules: PairRules,
    sync: DepthSync,
    disconnects: u64,
    matches: Option<bool>,
    compared: usize,
}

/// Why a snapshot is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// To (re)sync.
    Sync,
    /// To compare at the end; the attempt number.
    Final(u32),
}

/// Attempts of the final comparison, 100 ms apart, while the local book
/// may still be missing diffs in flight.
const FINAL_ATTEMPTS: u32 = 20;

type Fetches = JoinSet<(usize, Fetch, Result<Snapshot, DepthError>)>;

type WsRead = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;
type WsWrite = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Fetches REST snapshots in the background.
struct Snapshots {
    http: reqwest::Client,
    base: String,
    limit: u32,
}

impl Snapshots {
    /// Fetches pair `i`'s snapshot into `fetches`; a later final attempt
    /// waits 100 ms first, for diffs still in flight.
    fn fetch(&self, fetches: &mut Fetches, i: usize, rules: &PairRules, why: Fetch) {
        let (http, base, rules, limit) = (
            self.http.clone(),
            self.base.clone(),
            rules.clone(),
            self.limit,
        );
        fetches.spawn(async move {
            if let Fetch::Final(n) = why
                && n > 0
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (i, why, fetch_snapshot(http, base, rules, limit).await)
        });
    }
}

/// How a connection ended.
enum End {
    /// Lost: connect again.
    Reconnect,
    /// The final comparison is done.
    Done,
}

/// One connection's state.
struct Connection {
    fetches: Fetches,
    /// The SUBSCRIBE was answered: diffs flow.
    subscribed: bool,
    /// Final comparisons still running.
    final_pending: usize,
}

/// The subscriber's state across connections.
struct Syncer {
    snapshots: Snapshots,
    pairs: Vec<Pair>,
    close_reasons: Vec<String>,
    live_gaps: Arc<AtomicU64>,
    synced: watch::Sender<usize>,
    stopping: bool,
}

async fn run(
    base: String,
    rules: Vec<PairRules>,
    limit: u32,
    mut stop: watch::Receiver<bool>,
    live_gaps: Arc<AtomicU64>,
    synced: watch::Sender<usize>,
) -> DepthReport {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_default();
    let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let mut s = Syncer {
        snapshots: Snapshots { http, base, limit },
        pairs: rules
            .into_iter()
            .map(|rules| Pair {
                rules,
                sync: DepthSync::new(limit as usize),
                disconnects: 0,
                matches: None,
                compared: 0,
            })
            .collect(),
        close_reasons: Vec::new(),
        live_gaps,
        synced,
        stopping: false,
    };
    let mut attempts = 0;
    while attempts < 20 && !s.stopping {
        attempts += 1;
        let Some((tx, rx)) = s.connect(&ws_url).await else {
            continue;
        };
        let end = s.follow(rx, &mut stop).await;
        // The write half lives as long as the connection is followed.
        drop(tx);
        if let End::Done = end {
            break;
        }
    }
    s.report()
}

impl Syncer {
    /// Connects and subscribes to every pair's diffs; each pair starts
    /// over (its counts kept).
    async fn connect(&mut self, ws_url: &str) -> Option<(WsWrite, WsRead)> {
        let ws = match tokio_tungstenite::connect_async(ws_url).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                self.close_reasons.push(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                return None;
            }
        };
        let (mut tx, rx) = ws.split();
        let streams: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{}@depth", p.rules.symbol.to_ascii_lowercase()))
            .collect();
        let sub = serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": 1});
        if tx.send(Message::text(sub.to_string())).await.is_err() {
            return None;
        }
        let limit = self.snapshots.limit as usize;
        for p in &mut self.pairs {
            p.sync = DepthSync {
                counts: p.sync.counts,
                ..DepthSync::new(limit)
            };
        }
        Some((tx, rx))
    }

    /// Follows one connection until it is lost or the final comparison is
    /// done.
    async fn follow(&mut self, mut rx: WsRead, stop: &mut watch::Receiver<bool>) -> End {
        let mut c = Connection {
            fetches: Fetches::new(),
            subscribed: false,
            final_pending: 0,
        };
        loop {
            tokio::select! {
                m = rx.next() => {
                    let text = match m {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(f))) => {
                            return self.lost(format!("closed by the server: {f:?}"));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return self.lost(format!("read: {e}")),
                        None => return self.lost("stream ended".into()),
                    };
                    self.on_text(&mut c, text.as_str());
                }
                Some(done) = c.fetches.join_next() => {
                    let Ok(done) = done else { continue };
                    self.on_fetched(&mut c, done);
                    if self.stopping && c.final_pending == 0 {
                        return End::Done;
                    }
                }
                _ = stop.changed(), if !self.stopping => {
                    if self.on_stop(&mut c) {
                        return End::Done;
                    }
                }
            }
        }
    }

    fn lost(&mut self, why: String) -> End {
        self.close_reasons.push(why);
        for p in &mut self.pairs {
            p.disconnects += 1;
        }
        End::Reconnect
    }

    /// A text message: the answer to SUBSCRIBE, or a diff.
    fn on_text(&mut self, c: &mut Connection, text: &str) {
        if !c.subscribed {
            // The answer to SUBSCRIBE: from now on every diff arrives, so a
            // snapshot taken now can be joined.
            if text.contains("\"result\"") {
                c.subscribed = true;
                for (i, p) in self.pairs.iter_mut().enumerate() {
                    if p.sync.want_snapshot() {
                        self.snapshots
                            .fetch(&mut c.fetches, i, &p.rules, Fetch::Sync);
                    }
                }
            }
            return;
        }
        let Ok(w) = serde_json::from_str::<WireDiff<'_>>(text) else {
            return;
        };
        // Diffs name the pair as REST does (`s`: `BTCEUR`).
        let Some(i) = self.pairs.iter().position(|p| p.rules.symbol == w.symbol) else {
            return;
        };
        let p = &mut self.pairs[i];
        let (Some(bids), Some(asks)) = (levels(&w.bids, &p.rules), levels(&w.asks, &p.rules))
        else {
            return;
        };
        let action = p.sync.on_diff(Diff {
            first: w.first,
            last: w.last,
            bids,
            asks,
        });
        if action == Action::FetchSnapshot && p.sync.want_snapshot() {
            self.snapshots
                .fetch(&mut c.fetches, i, &p.rules, Fetch::Sync);
        }
        self.live_gaps.store(
            self.pairs.iter().map(|p| p.sync.counts.gaps).sum(),
            Ordering::Relaxed,
        );
    }

    /// A snapshot arrived (or could not be fetched).
    fn on_fetched(
        &mut self,
        c: &mut Connection,
        done: (usize, Fetch, Result<Snapshot, DepthError>),
    ) {
        let (i, why, snap) = done;
        let p = &mut self.pairs[i];
        match (snap, why) {
            (Ok(s), Fetch::Sync) => {
                if p.sync.on_snapshot(s) == Action::FetchSnapshot && p.sync.want_snapshot() {
                    self.snapshots
                        .fetch(&mut c.fetches, i, &p.rules, Fetch::Sync);
                }
                let _ = self
                    .synced
                    .send(self.pairs.iter().filter(|p| p.sync.is_synced()).count());
            }
            (Ok(s), Fetch::Final(n)) => {
                let (equal, compared) = p.sync.matches(&s);
                p.compared = compared;
                if equal || n + 1 >= FINAL_ATTEMPTS || !p.sync.is_synced() {
                    p.matches = p.sync.is_synced().then_some(equal);
                    c.final_pending -= 1;
                } else {
                    // Diffs may still be on the way: look again.
                    self.snapshots
                        .fetch(&mut c.fetches, i, &p.rules, Fetch::Final(n + 1));
                }
            }
            (Err(e), why) => {
                self.close_reasons.push(e.to_string());
                let retry = match why {
                    Fetch::Sync => Some(Fetch::Sync),
                    Fetch::Final(n) if n + 1 < FINAL_ATTEMPTS => Some(Fetch::Final(n + 1)),
                    Fetch::Final(_) => None,
                };
                match retry {
                    Some(w) => self.snapshots.fetch(&mut c.fetches, i, &p.rules, w),
                    None => c.final_pending -= 1,
                }
            }
        }
    }

    /// The run ends: compare every synced pair with a fresh snapshot.
    /// True when there is nothing to compare.
    fn on_stop(&mut self, c: &mut Connection) -> bool {
        self.stopping = true;
        for (i, p) in self.pairs.iter().enumerate() {
            if p.sync.is_synced() {
                c.final_pending += 1;
                self.snapshots
                    .fetch(&mut c.fetches, i, &p.rules, Fetch::Final(0));
            }
        }
        c.final_pending == 0
    }

    fn report(self) -> DepthReport {
        let gaps = self.pairs.iter().map(|p| p.sync.counts.gaps).sum();
        DepthReport {
            pairs: self
                .pairs
                .into_iter()
                .map(|p| PairReport {
                    symbol: p.rules.stream,
                    counts: p.sync.counts,
                    disconnects: p.disconnects,
                    book_matches_at_end: p.matches,
                    levels_compared: p.compared,
                })
                .collect(),
            gaps,
            close_reasons: self.close_reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(first: u64, last: u64, bids: &[(u64, u64)], asks: &[(u64, u64)]) -> Diff {
        Diff {
            first,
            last,
            bids: bids.to_vec(),
            asks: asks.to_vec(),
        }
    }

    fn snapshot(id: u64) -> Snapshot {
        Snapshot {
            last_update_id: id,
            bids: vec![(100, 5), (99, 7)],
            asks: vec![(101, 3)],
        }
    }

    #[test]
    fn contiguous_diffs_sync_without_gaps() {
        let mut s = DepthSync::new(100);
        assert_eq!(
            s.on_diff(diff(8, 9, &[(98, 1)], &[])),
            Action::FetchSnapshot
        );
        assert!(s.want_snapshot());
        assert!(!s.want_snapshot(), "one fetch at a time");
        assert_eq!(s.on_diff(diff(10, 12, &[(100, 0)], &[])), Action::None);
        assert_eq!(s.on_diff(diff(13, 13, &[], &[(102, 4)])), Action::None);
        // Snapshot at 11: the diff 8..9 is covered and dropped; 10..12
        // straddles it (U <= 12 <= u) and is applied, then 13.
        assert_eq!(s.on_snapshot(snapshot(11)), Action::None);
        assert_eq!(s.last(), Some(13));
        assert_eq!(
            s.on_diff(diff(14, 16, &[(99, 0)], &[(101, 1)])),
            Action::None
        );
        // An old diff is ignored, not a gap.
        assert_eq!(s.on_diff(diff(12, 13, &[], &[])), Action::None);
        assert_eq!(s.counts.gaps, 0);
        assert_eq!(s.counts.dropped, 2);
        assert_eq!(s.counts.applied, 3);
        let (bids, asks) = s.top(10);
        // The covered diff's level (98) never reached the book.
        assert!(bids.is_empty(), "{bids:?}");
        assert_eq!(asks, [(101, 1), (102, 4)]);
    }

    #[test]
    fn first_diff_after_an_empty_buffer_may_start_before_the_snapshot() {
        let mut s = DepthSync::new(100);
        assert!(s.want_snapshot());
        assert_eq!(s.on_snapshot(snapshot(20)), Action::None);
        // Seqs 19..22: events without a level change publish nothing, so the
        // next diff may start before lastUpdateId + 1.
        assert_eq!(s.on_diff(diff(19, 22, &[(100, 6)], &[])), Action::None);
        assert_eq!(s.on_diff(diff(23, 23, &[], &[])), Action::None);
        assert_eq!(s.counts.gaps, 0);
        assert_eq!(s.last(), Some(23));
    }

    #[test]
    fn a_gap_is_counted_and_resynced() {
        let mut s = DepthSync::new(100);
        assert!(s.want_snapshot());
        s.on_snapshot(snapshot(10));
        assert_eq!(s.on_diff(diff(11, 12, &[], &[])), Action::None);
        // 13..14 is missing.
        assert_eq!(
            s.on_diff(diff(15, 16, &[(97, 2)], &[])),
            Action::FetchSnapshot
        );
        assert_eq!(s.counts.gaps, 1);
        assert!(!s.is_synced());
        assert!(s.want_snapshot());
        assert_eq!(s.on_diff(diff(17, 18, &[], &[])), Action::None);
        assert_eq!(s.on_snapshot(snapshot(16)), Action::None);
        assert_eq!(s.last(), Some(18));
        assert_eq!(s.on_diff(diff(19, 19, &[], &[])), Action::None);
        assert_eq!(s.counts.gaps, 1);
    }

    #[test]
    fn a_hole_while_buffering_is_a_gap() {
        let mut s = DepthSync::new(100);
        s.on_diff(diff(5, 6, &[], &[]));
        assert!(s.want_snapshot());
        s.on_diff(diff(8, 9, &[], &[]));
        assert_eq!(s.counts.gaps, 1);
        // Only 8..9 is left; a snapshot at 7 joins it.
        assert_eq!(s.on_snapshot(snapshot(7)), Action::None);
        assert_eq!(s.last(), Some(9));
    }

    #[test]
    fn a_snapshot_older_than_the_buffer_is_fetched_again() {
        let mut s = DepthSync::new(100);
        s.on_diff(diff(30, 31, &[], &[]));
        assert!(s.want_snapshot());
        assert_eq!(s.on_snapshot(snapshot(20)), Action::FetchSnapshot);
        assert_eq!(s.counts.stale_snapshots, 1);
        assert_eq!(s.counts.gaps, 0);
        assert!(s.want_snapshot());
        assert_eq!(s.on_snapshot(snapshot(30)), Action::None);
        assert_eq!(s.last(), Some(31));
    }

    #[test]
    fn an_overlapping_diff_is_a_gap_once_synced() {
        let mut s = DepthSync::new(100);
        assert!(s.want_snapshot());
        s.on_snapshot(snapshot(10));
        s.on_diff(diff(11, 15, &[], &[]));
        // Starts inside what was applied: the stream is inconsistent.
        assert_eq!(s.on_diff(diff(14, 18, &[], &[])), Action::FetchSnapshot);
        assert_eq!(s.counts.gaps, 1);
    }

    #[test]
    fn books_compare_over_the_range_both_snapshots_cover() {
        // Snapshots of at most 2 levels a side: the first is cut at 99.
        let mut s = DepthSync::new(2);
        assert!(s.want_snapshot());
        s.on_snapshot(Snapshot {
            last_update_id: 10,
            bids: vec![(100, 1), (99, 1)],
            asks: vec![(101, 1)],
        });
        s.on_diff(diff(11, 11, &[(100, 0)], &[(102, 3)]));
        // Level 98 appeared below what the local book knows: not compared.
        let later = Snapshot {
            last_update_id: 11,
            bids: vec![(99, 1), (98, 5)],
            asks: vec![(101, 1), (102, 3)],
        };
        assert_eq!(s.matches(&later), (true, 3));
        let wrong = Snapshot {
            asks: vec![(101, 2), (102, 3)],
            ..later.clone()
        };
        assert!(!s.matches(&wrong).0);
        assert!(!DepthSync::new(2).matches(&later).0, "never synced");
    }

    #[test]
    fn snapshots_parse_at_the_pair_scales() {
        let r = PairRules {
            symbol: "BTCEUR".into(),
            stream: "BTC-EUR".into(),
            price_scale: 2,
            qty_scale: 8,
            tick: 1,
            lot: 1_000,
            min_qty: 1_000,
            max_qty: 1_000_000,
            min_notional: 100,
        };
        let v = serde_json::json!({"lastUpdateId": 42,
            "bids": [["30000.00", "0.50000000"]], "asks": [["30000.01", "0.00001000"]]});
        let s = parse_snapshot(&v, &r).expect("valid");
        assert_eq!(s.last_update_id, 42);
        assert_eq!(s.bids, [(3_000_000, 50_000_000)]);
        assert_eq!(s.asks, [(3_000_001, 1_000)]);
        assert!(parse_snapshot(&serde_json::json!({"bids": []}), &r).is_err());
    }
}
