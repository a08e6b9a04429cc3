//! Market data: each pair's L2 view, kept from the engine's book deltas, and
//! the stream messages WebSocket clients receive, built once per record
//! (market messages in `market/public.rs`, topics in `market/topic.rs`).
//!
//! Depth messages carry `U` (first seq) and `u` (last seq). Consecutive
//! messages of a pair are contiguous (`U` = previous `u` + 1), and the REST
//! depth's `lastUpdateId` is the `u` of the last level change, taken under
//! the same lock that publishes, so a client can sync a local book with no
//! gap: the next diff starts at exactly `lastUpdateId + 1`, which
//! python-binance's `DepthCacheManager` insists on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use accounts::{AssetId, Balance};
use commandlog::{AccountUpdate, EventRecord, Observer};
use engine::Depth;
use proto::{
    Event, EventBody, OrderId, PairConfig, Price, Qty, Seq, Side, Symbol, Timestamp, UserId,
};
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

mod account;
mod messages;
mod orders;
mod public;
mod reports;
#[cfg(test)]
mod shapes;
mod topic;

pub use account::AccountSnapshot;
pub(crate) use account::AccountViews;

pub(crate) use messages::{Levels, levels};
use orders::{ListState, OpenOrders, OrderState};
pub use public::Published;
pub(crate) use public::{kline_text, ticker_text};
use reports::PairContext;
pub use topic::{Registry, Speed, Topic};

/// What the order view says of an order.
#[derive(Debug)]
pub(crate) enum Viewed {
    /// It is open, in this state (as a stored row would show it).
    Open(Box<store::OrderRow>),
    /// The caller has no such open order: closed, never placed, or
    /// another user's.
    NotOpen,
    /// The view has not folded the events asked for within the wait (or
    /// holds no such pair): ask the store.
    Behind,
}

/// One message for WebSocket clients: to a market topic's subscribers, or
/// to one user.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// A market message, encoded once for all its topic's subscribers.
    Market(Arc<Published>),
    /// An execution report or account message for `user`.
    User {
        /// The owner of the order.
        user: UserId,
        /// The JSON text.
        text: Arc<str>,
    },
}

#[derive(Debug)]
struct PairView {
    /// The pair's rules now: the restored book's at start (`on_start`),
    /// then each `PairChanged`'s, for what the execution reports say of
    /// them (the default self-trade prevention mode). The scales never
    /// change.
    cfg: PairConfig,
    /// The pair as Binance's API names it (`BTCEUR`), made once rather
    /// than per message.
    name: Arc<str>,
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
    last_seq: Seq,
    /// Woken whenever `last_seq` moves: requests that answer from the
    /// order view wait on it for the events they must see.
    folded: Arc<Notify>,
    /// The seq of the last record that changed a level: the `u` of the
    /// last diff (made or not, as someone watched or not), and REST's
    /// `lastUpdateId`. The next diff starts after it.
    published: Seq,
    /// The pair's open orders, for the execution reports.
    orders: OpenOrders,
}

/// The market-data side of the gateway: an [`Observer`] of the runtime.
#[derive(Debug)]
pub struct MarketData {
    /// Each pair's view; a listed pair's is added by its `on_start`.
    pairs: RwLock<HashMap<Symbol, Arc<Mutex<PairView>>>>,
    stream: broadcast::Sender<StreamMessage>,
    /// Every user's balances, from the risk stage's updates.
    accounts: AccountViews,
    /// The market topics and who watches them.
    topics: Registry,
    /// Whether the exchange charges fees (keeps accounts): execution
    /// reports then show the commission at the pair's rates, else `"0"`.
    charges_fees: bool,
}

/// A depth answer: levels best first, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthView {
    /// The seq of the last record that changed the view: the `u` of the
    /// depth diff that brought it here.
    pub last_update_id: Seq,
    /// `(price, qty)`, highest price first.
    pub bids: Vec<(Price, Qty)>,
    /// `(price, qty)`, lowest price first.
    pub asks: Vec<(Price, Qty)>,
}

impl MarketData {
    /// Views for `pairs`; `stream_capacity` bounds how far a WebSocket client
    /// may fall behind before it is disconnected.
    pub fn new(pairs: &[PairConfig], stream_capacity: usize) -> Self {
        // The risk stage derives its asset table from the same pairs with
        // the same function; a pair set it refuses has no accounts at all.
        let assets = accounts::Shard::new(pairs)
            .map(|s| s.assets().to_vec())
            .unwrap_or_default();
        MarketData {
            pairs: RwLock::new(
                pairs
                    .iter()
                    .map(|p| (p.symbol, Arc::new(Mutex::new(PairView::new(*p)))))
                    .collect(),
            ),
            stream: broadcast::channel(stream_capacity).0,
            accounts: AccountViews::new(assets),
            topics: Registry::new(pairs),
            charges_fees: false,
        }
    }

    /// The same views, reporting commission at each pair's rates when
    /// `charged` (accounts are enabled), else `"0"`.
    pub fn charging_fees(mut self, charged: bool) -> Self {
        self.charges_fees = charged;
        self
    }

    /// The asset table once a listing added to it.
    pub(crate) fn set_assets(&self, assets: Vec<accounts::AssetInfo>) {
        self.accounts.set_assets(assets);
    }

    /// `pair`'s view.
    fn view(&self, pair: Symbol) -> Option<Arc<Mutex<PairView>>> {
        self.pairs.read().ok()?.get(&pair).cloned()
    }

    /// A listed pair's view and topics, with an empty book.
    fn add_pair(&self, pair: &PairConfig) -> Option<Arc<Mutex<PairView>>> {
        let view = Arc::new(Mutex::new(PairView::new(*pair)));
        self.pairs.write().ok()?.insert(pair.symbol, view.clone());
        self.topics.add_pair(pair.symbol);
        Some(view)
    }

    /// `user`'s balances in every asset, as the risk stage last published
    /// them (zeros for an account it never mentioned).
    pub fn account(&self, user: UserId) -> AccountSnapshot {
        self.accounts.snapshot(user)
    }

    /// The market topics and their subscriber counts.
    pub fn topics(&self) -> &Registry {
        &self.topics
    }

    /// A new receiver of every stream message from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamMessage> {
        self.stream.subscribe()
    }

    /// The best `limit` levels of each side of `pair`.
    pub fn depth(&self, pair: Symbol, limit: usize) -> Option<DepthView> {
        let view = self.view(pair)?;
        let v = view.lock().ok()?;
        Some(DepthView {
            last_update_id: v.published,
            bids: v
                .bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            asks: v.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect(),
        })
    }

    /// Counts one subscriber of `user`'s events for as long as the guard
    /// lives: the observer makes reports only for watched users.
    pub(crate) fn watch_user(self: &Arc<Self>, user: UserId) -> UserWatch {
        let topic = Topic::User(user);
        self.topics.watch(&topic);
        UserWatch {
            market: self.clone(),
            topic,
        }
    }

    /// Sends `msg` to every connection (each keeps what it subscribed to).
    pub(crate) fn publish(&self, msg: StreamMessage) {
        // No receiver is not an error: nobody is watching.
        let _ = self.stream.send(msg);
    }

    /// Seeds every pair's order view from `store`, once it holds each
    /// pair's events up to what `log`'s engine had emitted (waiting at most
    /// `wait` for it). Call before the gateway serves, so that no order is
    /// both seeded and changed by an event the view already saw.
    pub async fn seed_from_store(
        &self,
        log: &dyn commandlog::CommandLog,
        store: &store::Store,
        wait: std::time::Duration,
    ) -> Result<(), store::StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let pairs: Vec<Symbol> = match self.pairs.read() {
            Ok(p) => p.keys().copied().collect(),
            Err(_) => Vec::new(),
        };
        for pair in &pairs {
            if let Some(status) = log.pair(*pair)
                && !status.stored_up_to(status.engine_seq(), deadline).await
            {
                tracing::warn!(%pair, "the store is behind the engine: order view seeded from it as it is");
            }
            let rows = store.open_orders_of_pair(*pair).await?;
            let lists = store.open_order_lists_of_pair(*pair).await?;
            let last_price = store.trades(*pair, 1).await?.first().map(|f| f.price);
            let held = self.seed_orders(*pair, &rows, &lists, last_price);
            tracing::debug!(%pair, held, "order view seeded");
        }
        Ok(())
    }

    /// Orders that were open when the pair's book was recovered, read from
    /// the store once it holds every event up to then; the view learns the
    /// rest from the events. Returns how many the view now holds.
    fn seed_orders(
        &self,
        pair: Symbol,
        rows: &[store::OrderRow],
        lists: &[store::OrderListRow],
        last_price: Option<Price>,
    ) -> usize {
        let Some(view) = self.view(pair) else {
            return 0;
        };
        let Ok(mut v) = view.lock() else { return 0 };
        v.orders.seed(
            rows.iter().filter_map(OrderState::from_row),
            lists.iter().map(ListState::from_row),
            last_price,
        );
        v.orders.len()
    }

    /// `user`'s order `target` on `pair` as the order view holds it once it
    /// has folded every event up to `seq`, waiting until `deadline` at
    /// most. The view sees each record as it is emitted, before the store
    /// does, so a request answered from it waits for no database.
    pub(crate) async fn open_order(
        &self,
        pair: Symbol,
        user: UserId,
        target: proto::OrderRef,
        seq: Seq,
        deadline: tokio::time::Instant,
    ) -> Viewed {
        let Some(view) = self.view(pair) else {
            return Viewed::Behind;
        };
        loop {
            let folded = {
                let Ok(v) = view.lock() else {
                    return Viewed::Behind;
                };
                if v.last_seq >= seq {
                    return match v.orders.find(user, target) {
                        Some(o) => Viewed::Open(Box::new(o.to_row(pair))),
                        None => Viewed::NotOpen,
                    };
                }
                v.folded.clone()
            };
            // A move between the check and `notified` is seen by checking
            // again; one after it wakes `moved`.
            let moved = folded.notified();
            if view.lock().is_ok_and(|v| v.last_seq >= seq) {
                continue;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return Viewed::Behind;
            }
        }
    }

    /// When trailing stop `id` of `pair` started tracking the price, if
    /// the order view holds it and it did: Binance's `trailingTime`.
    pub(crate) fn trailing_since(&self, pair: Symbol, id: OrderId) -> Option<Timestamp> {
        self.view(pair)?.lock().ok()?.orders.trailing_since(id)
    }
}

impl Observer for MarketData {
    fn on_start(&self, pair: &PairConfig, depth: Depth) {
        let view = self.view(pair.symbol).or_else(|| self.add_pair(pair));
        if let Some(view) = view
            && let Ok(mut v) = view.lock()
        {
            // The restored book's rules: an operator's changes included.
            v.cfg = *pair;
            v.bids = depth.bids.iter().map(|l| (l.price, l.qty)).collect();
            v.asks = depth.asks.iter().map(|l| (l.price, l.qty)).collect();
            v.last_seq = depth.last_seq;
            v.published = depth.last_seq;
            v.folded.notify_waiters();
        }
    }

    fn on_accounts_start(&self, balances: &[(UserId, AssetId, Balance)]) {
        self.accounts.start(balances);
    }

    fn on_account(&self, update: &Arc<AccountUpdate>) {
        self.accounts.apply(update);
        if !self.topics.watched(&Topic::User(update.user)) {
            return;
        }
        for text in self.accounts.messages(update) {
            self.publish(StreamMessage::User {
                user: update.user,
                text: Arc::from(text),
            });
        }
    }

    fn on_record(&self, record: &Arc<EventRecord>) {
        let Some(view) = self.view(record.pair) else {
            return;
        };
        let Some(last) = record.events.last() else {
            return;
        };
        let watched = self.stream.receiver_count() > 0;
        let Ok(mut v) = view.lock() else { return };
        // A change of the pair's rules holds for the record's own reports
        // on (its book emits nothing else with it).
        for e in &record.events {
            if let EventBody::PairChanged(c) = &e.body {
                v.cfg = c.config;
            }
        }
        // A copy: the view is changed below while the reports read it.
        let cfg = v.cfg;
        let before = (v.best_bid(), v.best_ask());
        let (bids, asks) = v.apply_deltas(&record.events);
        v.last_seq = last.seq;
        v.folded.notify_waiters();
        // Depth messages are made only when a level changed; the next one's
        // `U` still starts right after the previous one's `u`. Under the
        // view's lock, so a REST depth is never between two messages.
        if !bids.is_empty() || !asks.is_empty() {
            if watched {
                let change = public::BookChange {
                    bids: &bids,
                    asks: &asks,
                    first: Seq(v.published.0 + 1),
                    last,
                    best_changed: before != (v.best_bid(), v.best_ask()),
                };
                self.publish_book(&cfg, &v, &change);
            }
            v.published = last.seq;
        }
        let name = v.name.clone();
        let context = PairContext {
            cfg: &cfg,
            fees: self.charges_fees.then_some(cfg.fees),
            name: &name,
        };
        let wanted = |user| watched && self.topics.watched(&Topic::User(user));
        let reports = reports::apply_record(&mut v.orders, context, &record.events, &wanted);
        drop(v);
        if watched {
            self.publish_trades(&cfg, &name, &record.events);
            for (user, text) in reports {
                self.publish(StreamMessage::User { user, text });
            }
        }
    }
}

/// One subscriber of a user's events, counted until dropped.
#[derive(Debug)]
pub(crate) struct UserWatch {
    market: Arc<MarketData>,
    topic: Topic,
}

impl Drop for UserWatch {
    fn drop(&mut self) {
        self.market.topics.unwatch(&self.topic);
    }
}

/// Price levels and their totals.
type LevelTotals = Vec<(Price, Qty)>;

impl PairView {
    fn new(cfg: PairConfig) -> Self {
        PairView {
            cfg,
            name: Arc::from(cfg.symbol.joined()),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_seq: Seq::default(),
            folded: Arc::default(),
            published: Seq::default(),
            orders: OpenOrders::default(),
        }
    }

    /// The highest bid and its total.
    fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    /// The lowest ask and its total.
    fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    /// Applies a record's book deltas to the view; returns the levels they
    /// changed, `(bids, asks)`, each at its last total in the record.
    fn apply_deltas(&mut self, events: &[Event]) -> (LevelTotals, LevelTotals) {
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for e in events {
            let EventBody::BookDelta(d) = e.body else {
                continue;
            };
            let (side, out) = match d.side {
                Side::Buy => (&mut self.bids, &mut bids),
                Side::Sell => (&mut self.asks, &mut asks),
            };
            if d.qty.is_zero() {
                side.remove(&d.price);
            } else {
                side.insert(d.price, d.qty);
            }
            // A later delta of the same level in the record supersedes.
            out.retain(|(p, _)| *p != d.price);
            out.push((d.price, d.qty));
        }
        (bids, asks)
    }
}

/// A user message as shared JSON text (see [`public::encode`]).
fn text(msg: &impl Serialize) -> Option<Arc<str>> {
    public::encode(msg).map(Arc::from)
}

#[cfg(test)]
mod tests {
    use proto::{
        Accepted, Amended, BookDelta, CancelReason, Canceled, ClientOrderId, OrderId, OrderRef,
        OrderSize, OrderType, PairChanged, QuoteQty, RejectCode, Rejected, TimeInForce, Timestamp,
        Trade, TradeId,
    };

    use serde_json::json;

    use super::*;

    /// `market` with users 1 to 4 watched: reports are made only for users
    /// someone listens to.
    pub(super) fn watching_users(market: MarketData) -> MarketData {
        for u in 1..=4 {
            market.topics().watch(&Topic::User(UserId(u)));
        }
        market
    }

    pub(super) fn pair() -> PairConfig {
        PairConfig {
            price_scale: 2,
            qty_scale: 4,
            ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
        }
    }

    pub(super) fn event(seq: u64, body: EventBody) -> Event {
        Event {
            pair: pair().symbol,
            seq: Seq(seq),
            timestamp: Timestamp(1_700_000_000_123_456_789),
            body,
        }
    }

    fn trade() -> Trade {
        Trade {
            trade_id: TradeId(3),
            price: Price(10_005),
            qty: Qty(100),
            taker_side: Side::Buy,
            maker_order_id: OrderId(7),
            maker_user: UserId(2),
            maker_remaining: Qty(50),
            taker_order_id: OrderId(9),
            taker_user: UserId(1),
            taker_remaining: OrderSize::Base(Qty(0)),
        }
    }

    /// A resting limit order's acceptance (order 7 without a client id).
    fn resting(
        id: u64,
        user: u64,
        side: Side,
        price: u64,
        qty: u64,
        cid: Option<ClientOrderId>,
    ) -> EventBody {
        EventBody::Accepted(Accepted {
            order_id: OrderId(id),
            client_order_id: cid.filter(|_| id != 7),
            user: UserId(user),
            side,
            order_type: OrderType::Limit {
                price: Price(price),
            },
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            size: OrderSize::Base(Qty(qty)),
            iceberg_qty: None,
            good_till: None,
            list_id: None,
        })
    }

    /// One record with every kind of event the streams report.
    fn record() -> EventRecord {
        let cid = Some(ClientOrderId::new("my-1").unwrap());
        let trade = trade();
        let bodies = [
            // The makers, accepted earlier in the record so that the view
            // knows them.
            resting(7, 2, Side::Sell, 10_005, 250, cid),
            resting(4, 3, Side::Sell, 10_100, 20, cid),
            resting(6, 3, Side::Buy, 9_990, 400, cid),
            EventBody::Accepted(Accepted {
                order_id: OrderId(9),
                client_order_id: cid,
                user: UserId(1),
                side: Side::Buy,
                order_type: OrderType::Limit {
                    price: Price(10_005),
                },
                time_in_force: TimeInForce::Gtc,
                post_only: false,
                size: OrderSize::Base(Qty(100)),
                iceberg_qty: None,
                good_till: None,
                list_id: None,
            }),
            EventBody::Trade(trade),
            EventBody::BookDelta(BookDelta {
                side: Side::Sell,
                price: Price(10_005),
                qty: Qty(50),
            }),
            EventBody::Accepted(Accepted {
                order_id: OrderId(10),
                client_order_id: None,
                user: UserId(1),
                side: Side::Buy,
                order_type: OrderType::Market,
                time_in_force: TimeInForce::Ioc,
                post_only: false,
                size: OrderSize::Quote(QuoteQty(25_000)),
                iceberg_qty: None,
                good_till: None,
                list_id: None,
            }),
            EventBody::Trade(Trade {
                trade_id: TradeId(5),
                taker_order_id: OrderId(10),
                taker_remaining: OrderSize::Quote(QuoteQty(19_997)),
                ..trade
            }),
            EventBody::BookDelta(BookDelta {
                side: Side::Sell,
                price: Price(10_005),
                qty: Qty(0),
            }),
            EventBody::Canceled(Canceled {
                order_id: OrderId(10),
                client_order_id: None,
                user: UserId(1),
                side: Side::Buy,
                remaining: OrderSize::Quote(QuoteQty(19_997)),
                reason: CancelReason::IocRemainder,
            }),
            EventBody::Canceled(Canceled {
                order_id: OrderId(4),
                client_order_id: cid,
                user: UserId(3),
                side: Side::Sell,
                remaining: OrderSize::Base(Qty(20)),
                reason: CancelReason::UserRequest,
            }),
            EventBody::Amended(Amended {
                order_id: OrderId(6),
                client_order_id: cid,
                user: UserId(3),
                side: Side::Buy,
                price: Price(9_990),
                qty: Qty(300),
                remaining: Qty(200),
                priority_kept: true,
                stop_price: None,
            }),
            EventBody::BookDelta(BookDelta {
                side: Side::Buy,
                price: Price(9_990),
                qty: Qty(200),
            }),
            EventBody::Rejected(Rejected {
                user: UserId(4),
                command: proto::CommandKind::Cancel,
                order_id: None,
                client_order_id: cid,
                code: RejectCode::UnknownOrder,
            }),
        ];
        EventRecord {
            pair: pair().symbol,
            position: 1,
            events: bodies
                .into_iter()
                .enumerate()
                .map(|(i, b)| event(i as u64 + 1, b))
                .collect(),
        }
    }

    #[tokio::test]
    async fn an_order_lookup_waits_for_the_events_it_must_see() {
        let market = Arc::new(MarketData::new(&[pair()], 16));
        let pair = pair().symbol;
        let soon = || tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let lookup = {
            let market = market.clone();
            tokio::spawn(async move {
                market
                    .open_order(pair, UserId(2), OrderRef::Id(OrderId(7)), Seq(1), soon())
                    .await
            })
        };
        tokio::task::yield_now().await;
        let placed = EventRecord {
            pair,
            position: 1,
            events: vec![event(1, resting(7, 2, Side::Sell, 10_005, 250, None))],
        };
        market.on_record(&Arc::new(placed));
        let Viewed::Open(row) = lookup.await.expect("the lookup ends") else {
            panic!("the order placed at seq 1 is open");
        };
        assert_eq!((row.order_id, row.price), (OrderId(7), Some(Price(10_005))));
        // Someone else's, and one never placed: not open.
        for (user, id) in [(3, 7), (2, 8)] {
            let seen = market
                .open_order(
                    pair,
                    UserId(user),
                    OrderRef::Id(OrderId(id)),
                    Seq(1),
                    soon(),
                )
                .await;
            assert!(matches!(seen, Viewed::NotOpen), "{user} {id}: {seen:?}");
        }
        // Events the view has not folded by the deadline: it cannot say.
        let ahead = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        let seen = market
            .open_order(pair, UserId(2), OrderRef::Id(OrderId(7)), Seq(2), ahead)
            .await;
        assert!(matches!(seen, Viewed::Behind), "{seen:?}");
        let unknown = Symbol::new("XRP-EUR").expect("a valid symbol");
        let seen = market
            .open_order(unknown, UserId(2), OrderRef::Id(OrderId(7)), Seq(0), soon())
            .await;
        assert!(matches!(seen, Viewed::Behind), "{seen:?}");
    }

    fn text(m: &StreamMessage) -> String {
        let (to, text) = match m {
            StreamMessage::Market(p) => (p.topic.to_string(), Arc::from(p.raw().as_str())),
            StreamMessage::User { user, text } => (format!("user {user}"), text.clone()),
        };
        format!("{to} {text}")
    }

    /// The exact bytes of every stream message: clients parse these, so a
    /// change of a name or a value's format must be deliberate.
    #[test]
    fn stream_messages_keep_their_exact_bytes() {
        let market = watching_users(MarketData::new(&[pair()], 64));
        for name in [
            "btceur@depth",
            "btceur@trade",
            "btceur@aggTrade",
            "btceur@bookTicker",
        ] {
            let topic = market.topics().parse(name).unwrap();
            market.topics().watch(&topic);
        }
        let mut rx = market.subscribe();
        market.on_record(&Arc::new(record()));
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push(text(&m));
        }
        // The book's and the trades' messages come first (they are made
        // under the view's lock or right after it), then the reports.
        let want = [
            r#"btceur@depth {"e":"depthUpdate","E":1700000000123,"s":"BTCEUR","U":1,"u":14,"b":[["99.90","0.0200"]],"a":[["100.05","0.00000000"]]}"#,
            r#"btceur@bookTicker {"u":14,"s":"BTCEUR","b":"99.90","B":"0.0200","a":"0.00","A":"0.0000"}"#,
            r#"btceur@trade {"e":"trade","E":1700000000123,"s":"BTCEUR","t":5,"p":"100.05","q":"0.0100","T":1700000000123,"m":false,"M":true}"#,
            r#"btceur@trade {"e":"trade","E":1700000000123,"s":"BTCEUR","t":8,"p":"100.05","q":"0.0100","T":1700000000123,"m":false,"M":true}"#,
            r#"btceur@aggTrade {"e":"aggTrade","E":1700000000123,"s":"BTCEUR","a":5,"p":"100.05","q":"0.0100","f":5,"l":5,"T":1700000000123,"m":false,"M":true}"#,
            r#"btceur@aggTrade {"e":"aggTrade","E":1700000000123,"s":"BTCEUR","a":8,"p":"100.05","q":"0.0100","f":8,"l":8,"T":1700000000123,"m":false,"M":true}"#,
            r#"user 2 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-7","S":"SELL","o":"LIMIT","f":"GTC","q":"0.0250","p":"100.05","P":"0.00","F":"0.0000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":7,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":1,"w":true,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 3 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"SELL","o":"LIMIT","f":"GTC","q":"0.0020","p":"101.00","P":"0.00","F":"0.0000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":4,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":2,"w":true,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 3 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"BUY","o":"LIMIT","f":"GTC","q":"0.0400","p":"99.90","P":"0.00","F":"0.0000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":6,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":3,"w":true,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 1 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"BUY","o":"LIMIT","f":"GTC","q":"0.0100","p":"100.05","P":"0.00","F":"0.0000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":9,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":4,"w":true,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 2 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-7","S":"SELL","o":"LIMIT","f":"GTC","q":"0.0250","p":"100.05","P":"0.00","F":"0.0000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":7,"l":"0.0100","z":"0.0100","L":"100.05","n":"0","N":"EUR","T":1700000000123,"t":5,"I":5,"w":true,"m":true,"M":false,"O":1700000000123,"Z":"1.00","Y":"1.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 1 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"BUY","o":"LIMIT","f":"GTC","q":"0.0100","p":"100.05","P":"0.00","F":"0.0000","g":-1,"C":"","x":"TRADE","X":"FILLED","r":"NONE","i":9,"l":"0.0100","z":"0.0100","L":"100.05","n":"0","N":"EUR","T":1700000000123,"t":5,"I":5,"w":false,"m":false,"M":false,"O":1700000000123,"Z":"1.00","Y":"1.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 1 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-10","S":"BUY","o":"MARKET","f":"IOC","q":"0.0000","p":"0.00","P":"0.00","F":"0.0000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":10,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":7,"w":false,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"250.00","V":"NONE"}"#,
            r#"user 2 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-7","S":"SELL","o":"LIMIT","f":"GTC","q":"0.0250","p":"100.05","P":"0.00","F":"0.0000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":7,"l":"0.0100","z":"0.0200","L":"100.05","n":"0","N":"EUR","T":1700000000123,"t":8,"I":8,"w":true,"m":true,"M":false,"O":1700000000123,"Z":"2.00","Y":"1.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 1 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-10","S":"BUY","o":"MARKET","f":"IOC","q":"0.0000","p":"0.00","P":"0.00","F":"0.0000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":10,"l":"0.0100","z":"0.0100","L":"100.05","n":"0","N":"EUR","T":1700000000123,"t":8,"I":8,"w":false,"m":false,"M":false,"O":1700000000123,"Z":"1.00","Y":"1.00","Q":"250.00","V":"NONE"}"#,
            r#"user 1 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"x-10","S":"BUY","o":"MARKET","f":"IOC","q":"0.0000","p":"0.00","P":"0.00","F":"0.0000","g":-1,"C":"","x":"EXPIRED","X":"EXPIRED","r":"NONE","i":10,"l":"0.0000","z":"0.0100","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":10,"w":false,"m":false,"M":false,"O":1700000000123,"Z":"1.00","Y":"0.00","Q":"250.00","V":"NONE"}"#,
            r#"user 3 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"SELL","o":"LIMIT","f":"GTC","q":"0.0020","p":"101.00","P":"0.00","F":"0.0000","g":-1,"C":"my-1","x":"CANCELED","X":"CANCELED","r":"NONE","i":4,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":11,"w":false,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
            r#"user 3 {"e":"executionReport","E":1700000000123,"s":"BTCEUR","c":"my-1","S":"BUY","o":"LIMIT","f":"GTC","q":"0.0300","p":"99.90","P":"0.00","F":"0.0000","g":-1,"C":"","x":"REPLACED","X":"NEW","r":"NONE","i":6,"l":"0.0000","z":"0.0000","L":"0.00","n":"0","N":null,"T":1700000000123,"t":-1,"I":12,"w":true,"m":false,"M":false,"O":1700000000123,"Z":"0.00","Y":"0.00","Q":"0.00","W":1700000000123,"V":"NONE"}"#,
        ];
        assert_eq!(got, want);
    }

    /// Execution reports name the pair's default self-trade prevention mode
    /// now: the restored book's at start (not the config file's), then each
    /// `PairChanged`'s, from the record that carries it on.
    #[test]
    fn execution_reports_follow_the_pairs_rules_now() {
        let market = watching_users(MarketData::new(&[pair()], 64));
        let restored = PairConfig {
            default_stp: proto::StpMode::CancelTaker,
            ..pair()
        };
        let depth = Depth {
            last_seq: Seq(0),
            bids: Vec::new(),
            asks: Vec::new(),
        };
        market.on_start(&restored, depth);
        let mut rx = market.subscribe();
        let one = |seq: u64, id: u64, body: Option<EventBody>| EventRecord {
            pair: pair().symbol,
            position: seq,
            events: body
                .into_iter()
                .chain([resting(id, 1, Side::Buy, 9_000, 10, None)])
                .enumerate()
                .map(|(i, b)| event(seq + i as u64, b))
                .collect(),
        };
        let modes = |rx: &mut broadcast::Receiver<StreamMessage>| -> Vec<String> {
            std::iter::from_fn(|| rx.try_recv().ok())
                .filter_map(|m| match m {
                    StreamMessage::User { text, .. } => Some(text),
                    StreamMessage::Market(_) => None,
                })
                .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap()["V"].to_string())
                .collect()
        };
        market.on_record(&Arc::new(one(1, 1, None)));
        assert_eq!(modes(&mut rx), [r#""EXPIRE_TAKER""#]);
        let changed = PairChanged {
            config: PairConfig {
                default_stp: proto::StpMode::CancelBoth,
                ..restored
            },
            status: proto::TradingStatus::Trading,
        };
        market.on_record(&Arc::new(one(2, 2, Some(EventBody::PairChanged(changed)))));
        assert_eq!(modes(&mut rx), [r#""EXPIRE_BOTH""#]);
    }

    /// With fees, each side of a trade reports its own role's commission.
    #[test]
    fn trade_reports_carry_each_sides_commission() {
        let fees = accounts::Fees {
            maker_bps: 5,
            taker_bps: 10,
        };
        let cfg = PairConfig { fees, ..pair() };
        let market = watching_users(MarketData::new(&[cfg], 64).charging_fees(true));
        let mut rx = market.subscribe();
        market.on_record(&Arc::new(record()));
        let mut commissions = Vec::new();
        while let Ok(m) = rx.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&text(&m)[7..]).unwrap_or_default();
            if v["x"] == "TRADE" {
                commissions.push((v["m"].as_bool(), v["n"].clone(), v["N"].clone()));
            }
        }
        // 100.05 x 0.0100 = 1.000500 EUR: 5 bps floor to 0.000500, 10 bps
        // to 0.001000.
        let maker = (Some(true), json!("0.000500"), json!("EUR"));
        let taker = (Some(false), json!("0.001000"), json!("EUR"));
        assert_eq!(commissions, [maker.clone(), taker.clone(), maker, taker]);
    }

    /// Balances from the risk stage: the view answers them, and a logged-in
    /// user gets `balanceUpdate` for a movement and `outboundAccountPosition`.
    #[test]
    fn account_updates_are_kept_and_streamed() {
        let market = watching_users(MarketData::new(&[pair()], 64));
        let b = |free, locked| Balance { free, locked };
        market.on_accounts_start(&[(UserId(1), AssetId(0), b(5, 0))]);
        let mut rx = market.subscribe();
        market.on_account(&Arc::new(AccountUpdate {
            user: UserId(1),
            time_ns: 1_700_000_000_123_456_789,
            balances: vec![(AssetId(1), b(1_500_000, 0))],
            movement: Some((AssetId(1), 1_500_000)),
        }));
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| text(&m))
            .collect();
        assert_eq!(
            got,
            [
                r#"user 1 {"E":1700000000123,"T":1700000000123,"a":"EUR","d":"1.500000","e":"balanceUpdate"}"#,
                r#"user 1 {"B":[{"a":"EUR","f":"1.500000","l":"0.000000"}],"E":1700000000123,"e":"outboundAccountPosition","u":1700000000123}"#,
            ]
        );
        let account = market.account(UserId(1));
        assert_eq!(account.update_time, 1_700_000_000_123);
        let balances: Vec<_> = account
            .balances
            .iter()
            .map(|(a, b)| (a.name.as_str(), a.scale, b.free))
            .collect();
        assert_eq!(balances, [("BTC", 4, 5), ("EUR", 6, 1_500_000)]);
        // A user never mentioned has zeros in every asset.
        assert!(
            market
                .account(UserId(9))
                .balances
                .iter()
                .all(|(_, b)| b.free == 0)
        );
    }
}
