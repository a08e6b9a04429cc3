//! The fast order book of one pair.
//!
//! Layout: orders and price levels live in slabs and link by `u32` index.
//! Each level is a doubly linked FIFO of its orders; each side maps price to
//! level in a `BTreeMap`. So: cancel by id is a hash lookup plus O(1)
//! unlinking (a `BTreeMap` removal only when the level empties), the best
//! price is the first or last key (O(log levels)), and resting an order
//! allocates nothing once the slabs have grown to the book's working size.
//!
//! Event order, which the reference book in the tests reproduces exactly:
//! a new order emits `Accepted`, then for each level it reaches, in price
//! priority, its `Trade`s and self-trade-prevention `Canceled`s in FIFO
//! order followed by one `BookDelta` for that level; then either a
//! `BookDelta` where its rest joins the book or a `Canceled` for its rest.
//!
//! A market buy sized `BaseWithin { qty, budget }` matches like a base-sized
//! one, except that before each fill it takes only the whole lots whose cost
//! at the maker's price fits its unspent budget (exact, at scale
//! `price_scale + qty_scale`). It stops when `qty` is filled, when the budget
//! cannot pay for one more lot at the best price, or when the book runs out;
//! its rest is then canceled like any IOC remainder. A FOK walk honours the
//! budget the same way. Its `Trade::taker_remaining` and the `Canceled` for
//! its rest report the unfilled base quantity (`OrderSize::Base`), never the
//! unspent budget: the order is for a quantity, the budget only caps it.

mod flow;
mod lists;
pub(crate) mod restore;
mod waiting;

use std::collections::{BTreeMap, VecDeque};

use proto::{
    Amend, Amended, BookDelta, CancelReason, Canceled, CanceledAll, ClientOrderId, Command,
    CommandBody, Event, EventBody, NewOrder, OrderId, OrderRef, OrderSize, OrderType, PairChange,
    PairChanged, PairConfig, PairConfigError, Price, Qty, QuoteQty, RejectCode, Seq, Side, StpMode,
    Symbol, TimeInForce, Timestamp, Trade, TradeId, TradingStatus, UserId,
};
use serde::{Deserialize, Serialize};

use crate::hash::IdMap;
use crate::inconsistency::Inconsistency;
use crate::slab::{NIL, Slab};
use crate::validate;
use flow::FollowUp;
use lists::Lists;
pub use lists::OrderList;
use waiting::WaitingSet;
pub use waiting::{WaitFor, WaitingOrder};

/// An open order as it rests on the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Bid or ask.
    pub side: Side,
    /// Its limit price.
    pub price: Price,
    /// Total quantity (filled plus open).
    pub qty: Qty,
    /// Open quantity.
    pub remaining: Qty,
    /// Maker only.
    pub post_only: bool,
    /// Its own self-trade-prevention mode, if it chose one.
    pub stp: Option<StpMode>,
    /// The slice size of an iceberg order.
    pub iceberg_qty: Option<Qty>,
    /// What shows in depth and can trade now: the open quantity, or an
    /// iceberg's current slice.
    pub visible: Qty,
    /// When a GTD order expires.
    pub good_till: Option<Timestamp>,
    /// Its order list, if any (kept after the list is done, for reports).
    pub list_id: Option<OrderId>,
    /// Its placement number.
    pub placed: u64,
}

impl RestingOrder {
    /// The event saying this order's open quantity was canceled.
    pub fn canceled(&self, reason: CancelReason) -> EventBody {
        EventBody::Canceled(Canceled {
            order_id: self.order_id,
            client_order_id: self.client_order_id,
            user: self.user,
            side: self.side,
            remaining: OrderSize::Base(self.remaining),
            reason,
        })
    }
}

/// One price level of an L2 view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthLevel {
    /// The price.
    pub price: Price,
    /// Total open quantity at that price.
    pub qty: Qty,
}

/// Top-of-book view: best levels first on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// The `seq` of the last event applied to the book this view reflects.
    pub last_seq: Seq,
    /// Highest price first.
    pub bids: Vec<DepthLevel>,
    /// Lowest price first.
    pub asks: Vec<DepthLevel>,
}

#[derive(Debug, Clone, Copy)]
struct Order {
    data: RestingOrder,
    /// Arrival counter: strictly increasing along a level's FIFO.
    arrival: u64,
    level: u32,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    price: Price,
    total: Qty,
    head: u32,
    tail: u32,
}

/// What is left for an incoming order to fill.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Base(u64),
    /// Unspent quote amount at scale `price_scale + qty_scale`, so that every
    /// `price * qty` subtracts exactly, and the base quantity it may still
    /// take (the pair's `max_qty` in whole lots, like any other order).
    Quote {
        exact: u128,
        base_left: u64,
    },
    /// Base quantity left and the unspent quote budget, exact as for `Quote`.
    Within {
        base: u64,
        exact: u128,
    },
}

impl Budget {
    /// What is left after buying or selling `fill` at `price`. The caller
    /// never fills beyond [`OrderBook::capacity`], so nothing underflows.
    fn spend(self, price: Price, fill: u64) -> Budget {
        let cost = || u128::from(price.0) * u128::from(fill);
        match self {
            Budget::Base(q) => Budget::Base(q - fill),
            Budget::Quote { exact, base_left } => Budget::Quote {
                exact: exact - cost(),
                base_left: base_left - fill,
            },
            Budget::Within { base, exact } => Budget::Within {
                base: base - fill,
                exact: exact - cost(),
            },
        }
    }

    /// True when the whole base quantity has been filled.
    fn filled(self) -> bool {
        matches!(self, Budget::Base(0) | Budget::Within { base: 0, .. })
    }
}

/// An incoming order (new, fired, released, or amended to lose priority)
/// while it matches.
#[derive(Debug, Clone, Copy)]
struct Taker {
    order_id: OrderId,
    client_order_id: Option<ClientOrderId>,
    user: UserId,
    side: Side,
    limit: Option<Price>,
    budget: Budget,
    stp: StpMode,
    list_id: Option<OrderId>,
}

/// Appends events with contiguous `seq` numbers, and holds the command's
/// follow-up queue (see [`flow`]).
struct Out<'a> {
    pair: Symbol,
    timestamp: Timestamp,
    seq: u64,
    events: &'a mut Vec<Event>,
    follow: VecDeque<FollowUp>,
}

impl Out<'_> {
    #[inline]
    fn next_seq(&self) -> Seq {
        Seq(self.seq + 1)
    }

    #[inline]
    fn emit(&mut self, body: EventBody) {
        self.seq += 1;
        self.events.push(Event {
            pair: self.pair,
            seq: Seq(self.seq),
            timestamp: self.timestamp,
            body,
        });
    }
}

/// Where a held order is.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// On a level, in this slot.
    Resting(u32),
    /// Off the book, with this placement number.
    Waiting(u64),
}

/// True when an order may be held by the book: it may rest (a limit GTC or
/// GTD order), or it waits for a trigger.
fn may_be_held(o: &NewOrder) -> bool {
    o.order_type.trigger().is_some()
        || (o.order_type.price().is_some()
            && matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd))
}

/// True for an iceberg part-way through a slice: it shows more than nothing
/// and no more than its slice and its open quantity.
fn shows_part(d: &RestingOrder) -> bool {
    d.iceberg_qty
        .is_some_and(|s| !d.visible.is_zero() && d.visible <= s && d.visible <= d.remaining)
}

/// What of `open` shows: an iceberg's slice, or all of it.
fn slice(iceberg_qty: Option<Qty>, open: Qty) -> Qty {
    iceberg_qty.map_or(open, |s| s.min(open))
}

/// True when an order on `side` limited at `limit` may trade at `price`.
#[inline]
fn crosses(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => limit >= price,
        Side::Sell => limit <= price,
    }
}

/// The largest bounds any of the book's rules have had. A change of rules
/// keeps the orders the book holds (as real venues do), so those may exceed
/// today's `max_qty`, `max_price` or `max_open_orders`; the arithmetic
/// bounds `PairConfig::validate` guarantees must hold for them too, and a
/// change is checked against these together with its own values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The largest `max_qty`.
    pub max_qty: Qty,
    /// The largest `max_price`.
    pub max_price: Price,
    /// The largest `max_open_orders`.
    pub max_open_orders: u32,
}

impl Envelope {
    /// The bounds of one config.
    pub fn of(config: &PairConfig) -> Envelope {
        Envelope {
            max_qty: config.max_qty,
            max_price: config.max_price,
            max_open_orders: config.max_open_orders,
        }
    }

    /// These bounds widened to cover `config`'s too.
    pub fn widened(self, config: &PairConfig) -> Envelope {
        Envelope {
            max_qty: self.max_qty.max(config.max_qty),
            max_price: self.max_price.max(config.max_price),
            max_open_orders: self.max_open_orders.max(config.max_open_orders),
        }
    }

    /// `config` with these bounds: what every held order fits within.
    pub fn applied_to(self, config: &PairConfig) -> PairConfig {
        PairConfig {
            max_qty: self.max_qty,
            max_price: self.max_price,
            max_open_orders: self.max_open_orders,
            ..*config
        }
    }
}

/// The order book of one pair: a pure state machine. Feed it commands in log
/// order with [`OrderBook::apply`]; it appends the events they cause.
#[derive(Debug, Clone)]
pub struct OrderBook {
    config: PairConfig,
    /// `TRADING`, `HALT` or `BREAK`: which commands the book takes.
    status: TradingStatus,
    /// The widest bounds its rules have had (see [`Envelope`]).
    envelope: Envelope,
    last_seq: u64,
    arrivals: u64,
    orders: Slab<Order>,
    levels: Slab<Level>,
    bids: BTreeMap<Price, u32>,
    asks: BTreeMap<Price, u32>,
    by_id: IdMap<OrderId, u32>,
    by_client_id: IdMap<(UserId, ClientOrderId), u32>,
    /// The last placement number given (see [`RestingOrder::placed`]).
    placements: u64,
    /// The last trade's price: what conditional orders are checked against.
    last_price: Option<Price>,
    /// Orders held off the levels: conditional and OTO pending orders.
    waiting: WaitingSet,
    /// Open order lists.
    lists: Lists,
    /// Every held GTD order by (expiry, placement).
    expiries: BTreeMap<(Timestamp, u64), OrderId>,
    /// Scratch for the placements a trade fires; empty between trades.
    fired: Vec<u64>,
}

impl OrderBook {
    /// An empty book for a pair.
    pub fn new(config: PairConfig) -> Result<Self, PairConfigError> {
        config.validate()?;
        Ok(OrderBook {
            envelope: Envelope::of(&config),
            config,
            status: TradingStatus::Trading,
            last_seq: 0,
            arrivals: 0,
            orders: Slab::default(),
            levels: Slab::default(),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            by_id: IdMap::default(),
            by_client_id: IdMap::default(),
            placements: 0,
            last_price: None,
            waiting: WaitingSet::default(),
            lists: Lists::default(),
            expiries: BTreeMap::new(),
            fired: Vec::new(),
        })
    }

    /// An empty book with room for `orders` open orders before any of its
    /// tables grows, so that a book sized for its working set never allocates.
    pub fn with_capacity(config: PairConfig, orders: usize) -> Result<Self, PairConfigError> {
        let mut book = OrderBook::new(config)?;
        book.orders = Slab::with_capacity(orders);
        book.levels = Slab::with_capacity(orders);
        book.by_id.reserve(orders);
        book.by_client_id.reserve(orders);
        Ok(book)
    }

    /// The pair's rules.
    pub fn config(&self) -> &PairConfig {
        &self.config
    }

    /// The pair's trading status.
    pub fn status(&self) -> TradingStatus {
        self.status
    }

    /// The widest bounds the pair's rules have had.
    pub fn envelope(&self) -> Envelope {
        self.envelope
    }

    /// The `seq` of the last event emitted (0 before any).
    pub fn last_seq(&self) -> Seq {
        Seq(self.last_seq)
    }

    /// Number of orders on the book's levels.
    pub fn open_orders(&self) -> usize {
        self.orders.len()
    }

    /// Number of orders held: on the levels, or waiting off them.
    pub fn held_orders(&self) -> usize {
        self.orders.len() + self.waiting.len()
    }

    /// The last trade price, if there has been a trade.
    pub fn last_price(&self) -> Option<Price> {
        self.last_price
    }

    /// Orders waiting off the book, in placement order.
    pub fn waiting_orders(&self) -> impl Iterator<Item = WaitingOrder> + '_ {
        self.waiting.iter().copied()
    }

    /// Open order lists, by list id.
    pub fn open_lists(&self) -> Vec<OrderList> {
        self.lists.canonical()
    }

    /// An open order by id.
    pub fn order(&self, id: OrderId) -> Option<RestingOrder> {
        self.by_id.get(&id).map(|&i| self.orders[i].data)
    }

    /// Highest bid price.
    pub fn best_bid(&self) -> Option<Price> {
        self.bids.last_key_value().map(|(p, _)| *p)
    }

    /// Lowest ask price.
    pub fn best_ask(&self) -> Option<Price> {
        self.asks.first_key_value().map(|(p, _)| *p)
    }

    /// The best `limit` levels of each side.
    pub fn depth(&self, limit: usize) -> Depth {
        let level = |&i: &u32| DepthLevel {
            price: self.levels[i].price,
            qty: self.levels[i].total,
        };
        Depth {
            last_seq: self.last_seq(),
            bids: self.bids.values().rev().take(limit).map(level).collect(),
            asks: self.asks.values().take(limit).map(level).collect(),
        }
    }

    /// Every open order in canonical order: bids best price first, then asks
    /// best price first, each level in time priority.
    pub fn resting_orders(&self) -> impl Iterator<Item = RestingOrder> + '_ {
        self.slots_in_order().map(|i| self.orders[i].data)
    }

    /// The slots of all open orders, in canonical order.
    fn slots_in_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.bids
            .values()
            .rev()
            .chain(self.asks.values())
            .flat_map(|&l| self.level_orders(l))
    }

    fn level_orders(&self, level: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.levels[level].head;
        std::iter::from_fn(move || {
            (cur != NIL).then(|| {
                let i = cur;
                cur = self.orders[i].next;
                i
            })
        })
    }

    /// Applies one command, appending the events it causes to `events`.
    /// Every command emits at least one event.
    pub fn apply(&mut self, cmd: &Command, events: &mut Vec<Event>) {
        let mut out = Out {
            pair: self.config.symbol,
            timestamp: cmd.timestamp,
            seq: self.last_seq,
            events,
            follow: VecDeque::new(),
        };
        let result = if cmd.pair != self.config.symbol {
            Err(RejectCode::UnknownPair)
        } else {
            // Time passes in every status: an expiry is the order's own
            // term, like a cancel, and only ever removes.
            self.expire(cmd.timestamp, &mut out);
            match &cmd.body {
                _ if let Some(code) = self.status.refusal(cmd.body.kind()) => Err(code),
                CommandBody::NewOrder(o) => self.new_order(cmd.user, o, &mut out),
                CommandBody::Cancel { target } => self.cancel(cmd.user, *target, &mut out),
                CommandBody::Amend(a) => self.amend(cmd.user, a, &mut out),
                CommandBody::CancelAll => {
                    self.cancel_all(cmd.user, &mut out);
                    Ok(())
                }
                CommandBody::NewOrderList(l) => self.new_order_list(cmd.user, l, &mut out),
                CommandBody::CancelList { target } => self.cancel_list(cmd.user, *target, &mut out),
                CommandBody::AdvanceTime => Ok(()),
                CommandBody::ChangePair(c) => self.change_pair(c, &mut out),
            }
        };
        match result {
            Ok(()) => self.run_follow_ups(&mut out),
            Err(code) => out.emit(EventBody::Rejected(cmd.rejected(code))),
        }
        self.last_seq = out.seq;
    }

    /// An operator's change: the merged rules must be valid, alone and with
    /// the widest bounds the held orders may have been placed under (see
    /// [`Envelope`]); then they apply to every later command. Held orders
    /// stay, whatever the new rules would say of them as new orders.
    fn change_pair(&mut self, c: &PairChange, out: &mut Out<'_>) -> Result<(), RejectCode> {
        let config = c.merged(&self.config);
        let envelope = self.envelope.widened(&config);
        if config.validate().is_err() || envelope.applied_to(&config).validate().is_err() {
            return Err(RejectCode::InvalidPairChange);
        }
        self.config = config;
        self.envelope = envelope;
        self.status = c.status.unwrap_or(self.status);
        out.emit(EventBody::PairChanged(PairChanged {
            config,
            status: self.status,
        }));
        Ok(())
    }

    /// Convenience for tests and tools: the events of one command.
    pub fn apply_one(&mut self, cmd: &Command) -> Vec<Event> {
        let mut events = Vec::new();
        self.apply(cmd, &mut events);
        events
    }

    fn new_order(
        &mut self,
        user: UserId,
        o: &NewOrder,
        out: &mut Out<'_>,
    ) -> Result<(), RejectCode> {
        validate::new_order(&self.config, o)?;
        self.check_unique(user, o)?;
        self.check_good_till(o, out.timestamp)?;
        if may_be_held(o) && self.held_orders() >= self.config.max_open_orders as usize {
            return Err(RejectCode::BookFull);
        }
        if self.would_fire_now(o) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        let placed = self.next_placement();
        out.emit(EventBody::Accepted(o.accepted(user)));
        self.enter(user, o, None, placed, out);
        Ok(())
    }

    /// Refuses an order id or client order id already held.
    fn check_unique(&self, user: UserId, o: &NewOrder) -> Result<(), RejectCode> {
        if self.by_id.contains_key(&o.order_id) || self.waiting.contains_id(o.order_id) {
            return Err(RejectCode::DuplicateOrderId);
        }
        if let Some(cid) = o.client_order_id
            && (self.by_client_id.contains_key(&(user, cid))
                || self.waiting.contains_client_id(user, cid))
        {
            return Err(RejectCode::DuplicateClientOrderId);
        }
        Ok(())
    }

    /// Refuses a GTD order whose time has already come.
    fn check_good_till(&self, o: &NewOrder, now: Timestamp) -> Result<(), RejectCode> {
        match o.good_till {
            Some(t) if t <= now => Err(RejectCode::GoodTillPassed),
            _ => Ok(()),
        }
    }

    /// True for a conditional order whose stop price the last trade price
    /// has already reached (Binance refuses those: "would trigger
    /// immediately"), trailing ones with a stop price included.
    fn would_fire_now(&self, o: &NewOrder) -> bool {
        match (o.order_type, self.last_price) {
            (
                OrderType::Conditional {
                    kind,
                    trigger:
                        proto::Trigger {
                            stop_price: Some(stop),
                            ..
                        },
                    ..
                },
                Some(last),
            ) => waiting::stop_met(kind.fires_on_rise(o.side), stop, last),
            _ => false,
        }
    }

    fn next_placement(&mut self) -> u64 {
        self.placements += 1;
        self.placements
    }

    /// An accepted order goes to work, or waits for its trigger.
    fn enter(
        &mut self,
        user: UserId,
        o: &NewOrder,
        list_id: Option<OrderId>,
        placed: u64,
        out: &mut Out<'_>,
    ) {
        if o.order_type.trigger().is_some() {
            let wait = self.initial_wait(o);
            self.hold_waiting(WaitingOrder {
                order: *o,
                user,
                list_id,
                placed,
                wait,
            });
        } else {
            self.work(user, o, list_id, placed, out);
        }
    }

    /// A conditional order's trailing state when it starts waiting: a
    /// trailing order without a stop price trails from the last trade price.
    fn initial_wait(&self, o: &NewOrder) -> WaitFor {
        let trails_now = o
            .order_type
            .trigger()
            .is_some_and(|t| t.trailing_delta.is_some() && t.stop_price.is_none());
        WaitFor::Trigger {
            tracking: if trails_now { self.last_price } else { None },
        }
    }

    /// An order that works now (new, fired or released): it takes what it
    /// may, then rests or has its rest canceled.
    fn work(
        &mut self,
        user: UserId,
        o: &NewOrder,
        list_id: Option<OrderId>,
        placed: u64,
        out: &mut Out<'_>,
    ) {
        let limit = o.order_type.working().price();
        let may_rest =
            limit.is_some() && matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        let mut taker = Taker {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user,
            side: o.side,
            limit,
            budget: self.budget(o.size),
            stp: o.stp.unwrap_or(self.config.default_stp),
            list_id,
        };
        if o.post_only && self.would_take(&taker) {
            self.cancel_taker(&taker, CancelReason::PostOnlyWouldCross, out);
            return;
        }
        if o.time_in_force == TimeInForce::Fok && !self.fok_fillable(&taker) {
            self.cancel_taker(&taker, CancelReason::FokNotFillable, out);
            return;
        }
        if self.take(&mut taker, out) {
            self.cancel_taker(&taker, CancelReason::SelfTradePrevention, out);
        } else if let (true, Some(price), OrderSize::Base(qty), Budget::Base(rest)) =
            (may_rest, limit, o.size, taker.budget)
        {
            // Only limit GTC/GTD orders get here, and validation keeps those base-sized.
            if rest > 0 {
                self.rest(
                    RestingOrder {
                        order_id: o.order_id,
                        client_order_id: o.client_order_id,
                        user,
                        side: o.side,
                        price,
                        qty,
                        remaining: Qty(rest),
                        post_only: o.post_only,
                        stp: o.stp,
                        iceberg_qty: o.iceberg_qty,
                        visible: slice(o.iceberg_qty, Qty(rest)),
                        good_till: o.good_till,
                        list_id,
                        placed,
                    },
                    out,
                );
            }
        } else {
            self.cancel_taker(&taker, CancelReason::IocRemainder, out);
        }
    }

    /// What an order of `size` may fill, in the matching loop's terms.
    fn budget(&self, size: OrderSize) -> Budget {
        match size {
            OrderSize::Base(q) => Budget::Base(q.0),
            OrderSize::BaseWithin { qty, budget } => Budget::Within {
                base: qty.0,
                exact: u128::from(validate::capped_budget(&self.config, budget).0)
                    * proto::pow10(self.config.qty_scale),
            },
            OrderSize::Quote(q) => {
                let (max, lot) = (self.config.max_qty.0, self.config.lot_size.0);
                Budget::Quote {
                    exact: u128::from(q.0) * proto::pow10(self.config.qty_scale),
                    base_left: max - max % lot,
                }
            }
        }
    }

    /// Emits `Canceled` for the taker's unfilled rest, if it has one.
    fn cancel_taker(&mut self, t: &Taker, reason: CancelReason, out: &mut Out<'_>) {
        let remaining = self.remaining(t.budget);
        if matches!(
            remaining,
            OrderSize::Base(Qty::ZERO) | OrderSize::Quote(QuoteQty::ZERO)
        ) {
            return;
        }
        out.emit(EventBody::Canceled(Canceled {
            order_id: t.order_id,
            client_order_id: t.client_order_id,
            user: t.user,
            side: t.side,
            remaining,
            reason,
        }));
        self.ended(t.list_id, out);
    }

    /// What an event reports as left of a taker: base quantity, or for a
    /// quote-sized order the unspent quote amount (rounded down).
    fn remaining(&self, b: Budget) -> OrderSize {
        match b {
            Budget::Base(base) | Budget::Within { base, .. } => OrderSize::Base(Qty(base)),
            Budget::Quote { exact, .. } => OrderSize::Quote(QuoteQty(self.quote_units(exact))),
        }
    }

    /// An exact unspent quote amount in whole price units, rounded down. It
    /// only ever shrinks from the order's quote amount, a `u64`.
    fn quote_units(&self, exact: u128) -> u64 {
        u64::try_from(exact / proto::pow10(self.config.qty_scale))
            .expect("unspent quote never exceeds the order's quote amount")
    }

    /// The best level of the side `t` trades against, if `t` may trade there.
    fn best_for(&self, t: &Taker) -> Option<(Price, u32)> {
        let best = match t.side {
            Side::Buy => self.asks.first_key_value(),
            Side::Sell => self.bids.last_key_value(),
        };
        let (&price, &level) = best?;
        match t.limit {
            Some(limit) if !crosses(t.side, limit, price) => None,
            _ => Some((price, level)),
        }
    }

    fn would_take(&self, t: &Taker) -> bool {
        self.best_for(t).is_some()
    }

    /// How much base quantity a taker with `budget` may still take at
    /// `price`: whole lots only where a quote amount bounds it.
    fn capacity(&self, budget: Budget, price: Price) -> u64 {
        let (exact, most) = match budget {
            Budget::Base(q) => return q,
            Budget::Quote { exact, base_left } => (exact, base_left),
            Budget::Within { base, exact } => (exact, base),
        };
        let affordable = (exact / u128::from(price.0)).min(u128::from(most));
        let q = u64::try_from(affordable).expect("at most a u64 base quantity");
        q - q % self.config.lot_size.0
    }

    /// Walks the book the way [`Self::take`] would, without changing it: can a
    /// FOK order fill completely? Own orders end the walk where self-trade
    /// prevention would cancel the taker, and are skipped where it would
    /// cancel them instead.
    fn fok_fillable(&self, t: &Taker) -> bool {
        // Validation keeps quote-sized orders IOC.
        if let Budget::Quote { .. } = t.budget {
            return false;
        }
        match t.side {
            Side::Buy => self.fok_walk(t, self.asks.iter()),
            Side::Sell => self.fok_walk(t, self.bids.iter().rev()),
        }
    }

    /// [`Self::fok_fillable`] over the opposite side's levels, best first.
    fn fok_walk<'a>(&self, t: &Taker, levels: impl Iterator<Item = (&'a Price, &'a u32)>) -> bool {
        let mut budget = t.budget;
        for (&price, &level) in levels {
            if t.limit.is_some_and(|limit| !crosses(t.side, limit, price)) {
                return false;
            }
            for i in self.level_orders(level) {
                let m = &self.orders[i].data;
                if m.user == t.user && t.stp != StpMode::None {
                    if t.stp == StpMode::CancelMaker {
                        continue;
                    }
                    return false;
                }
                // Zero means a budget that cannot pay for one more lot here,
                // nor at any later (worse) level.
                let cap = self.capacity(budget, price);
                if cap == 0 {
                    return false;
                }
                budget = budget.spend(price, cap.min(m.remaining.0));
                if budget.filled() {
                    return true;
                }
            }
        }
        false
    }

    /// Matches `t` against the opposite side. Returns true when self-trade
    /// prevention canceled the taker (its rest must then be canceled).
    fn take(&mut self, t: &mut Taker, out: &mut Out<'_>) -> bool {
        loop {
            let Some((price, level)) = self.best_for(t) else {
                return false;
            };
            if self.capacity(t.budget, price) == 0 {
                return false;
            }
            let (mut stp_hit, mut touched) = (false, false);
            let mut cur = self.levels[level].head;
            while cur != NIL {
                let cap = self.capacity(t.budget, price);
                if cap == 0 {
                    break;
                }
                let m = self.orders[cur].data;
                if m.user == t.user && t.stp != StpMode::None {
                    if t.stp == StpMode::CancelTaker {
                        stp_hit = true;
                        break;
                    }
                    touched = true;
                    let next = self.orders[cur].next;
                    self.unlink(cur);
                    out.emit(m.canceled(CancelReason::SelfTradePrevention));
                    // A resting order's list sibling always waits off the
                    // levels, so this cannot unlink `next`.
                    self.ended(m.list_id, out);
                    if t.stp == StpMode::CancelBoth {
                        stp_hit = true;
                        break;
                    }
                    cur = next;
                    continue;
                }
                let fill = cap.min(m.visible.0);
                touched = true;
                let maker_remaining = Qty(m.remaining.0 - fill);
                let maker_visible = Qty(m.visible.0 - fill);
                let d = &mut self.orders[cur].data;
                d.remaining = maker_remaining;
                d.visible = maker_visible;
                self.levels[level].total.0 -= fill;
                t.budget = t.budget.spend(price, fill);
                out.emit(EventBody::Trade(Trade {
                    trade_id: TradeId(out.next_seq().0),
                    price,
                    qty: Qty(fill),
                    taker_side: t.side,
                    maker_order_id: m.order_id,
                    maker_user: m.user,
                    maker_remaining,
                    taker_order_id: t.order_id,
                    taker_user: t.user,
                    taker_remaining: self.remaining(t.budget),
                }));
                self.after_trade(price, &m, maker_remaining, t, out);
                // Read after the trade's effects, which may have removed an
                // order behind this one (a fired stop's sibling).
                let next = self.orders[cur].next;
                if maker_remaining.is_zero() {
                    self.unlink(cur);
                } else if maker_visible.is_zero() {
                    self.refill(cur, level);
                    // Alone or last, it is met again at once.
                    cur = if next == NIL { cur } else { next };
                    continue;
                }
                cur = next;
            }
            let level_exhausted = self.levels[level].head == NIL;
            if touched {
                self.level_changed(level, t.side.opposite(), out);
            }
            if stp_hit {
                return true;
            }
            if !level_exhausted {
                // The taker ran out (of quantity or of budget for one more lot).
                return false;
            }
        }
    }

    /// Puts an order at the back of its price level.
    fn rest(&mut self, data: RestingOrder, out: &mut Out<'_>) {
        let level = self.insert(data);
        self.level_changed(level, data.side, out);
    }

    /// Stores and indexes a new order at the back of its level (creating the
    /// level). Emits nothing.
    fn insert(&mut self, data: RestingOrder) -> u32 {
        let level = self.level_at(data.side, data.price);
        let i = self.orders.insert(Order {
            data,
            arrival: 0,
            level,
            prev: NIL,
            next: NIL,
        });
        self.attach(i, level);
        self.by_id.insert(data.order_id, i);
        if let Some(cid) = data.client_order_id {
            self.by_client_id.insert((data.user, cid), i);
        }
        if let Some(t) = data.good_till {
            self.expiries.insert((t, data.placed), data.order_id);
        }
        level
    }

    /// An iceberg whose slice ran out shows its next slice at the back of
    /// its level.
    fn refill(&mut self, i: u32, level: u32) {
        self.detach(i);
        let d = &mut self.orders[i].data;
        d.visible = slice(d.iceberg_qty, d.remaining);
        self.attach(i, level);
    }

    /// The level of `side` at `price`, created empty if there is none.
    fn level_at(&mut self, side: Side, price: Price) -> u32 {
        let side_map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let levels = &mut self.levels;
        *side_map.entry(price).or_insert_with(|| {
            levels.insert(Level {
                price,
                total: Qty::ZERO,
                head: NIL,
                tail: NIL,
            })
        })
    }

    /// Links stored order `i` at the back of `level`, as its newest arrival.
    fn attach(&mut self, i: u32, level: u32) {
        self.arrivals += 1;
        let tail = self.levels[level].tail;
        let o = &mut self.orders[i];
        o.arrival = self.arrivals;
        o.level = level;
        o.prev = tail;
        o.next = NIL;
        let visible = o.data.visible.0;
        if tail == NIL {
            self.levels[level].head = i;
        } else {
            self.orders[tail].next = i;
        }
        let l = &mut self.levels[level];
        l.tail = i;
        l.total.0 += visible;
    }

    /// Unlinks order `i` from its level, which stays (possibly empty) until
    /// [`Self::level_changed`]. The order keeps its slot and index entries.
    fn detach(&mut self, i: u32) {
        let o = self.orders[i];
        if o.prev == NIL {
            self.levels[o.level].head = o.next;
        } else {
            self.orders[o.prev].next = o.next;
        }
        if o.next == NIL {
            self.levels[o.level].tail = o.prev;
        } else {
            self.orders[o.next].prev = o.prev;
        }
        self.levels[o.level].total.0 -= o.data.visible.0;
    }

    /// Drops a detached order from the indexes and frees its slot.
    fn forget(&mut self, i: u32) {
        let d = self.orders[i].data;
        self.by_id.remove(&d.order_id);
        if let Some(cid) = d.client_order_id {
            self.by_client_id.remove(&(d.user, cid));
        }
        if let Some(t) = d.good_till {
            self.expiries.remove(&(t, d.placed));
        }
        self.orders.remove(i);
    }

    /// Removes order `i` from the book: [`Self::detach`] then [`Self::forget`].
    fn unlink(&mut self, i: u32) {
        self.detach(i);
        self.forget(i);
    }

    /// Emits the level's new total and drops the level if it emptied.
    fn level_changed(&mut self, level: u32, side: Side, out: &mut Out<'_>) {
        let l = self.levels[level];
        out.emit(EventBody::BookDelta(BookDelta {
            side,
            price: l.price,
            qty: l.total,
        }));
        if l.head == NIL {
            match side {
                Side::Buy => self.bids.remove(&l.price),
                Side::Sell => self.asks.remove(&l.price),
            };
            self.levels.remove(level);
        }
    }

    /// Finds the user's held order named by `target`: on a level, or
    /// waiting off the book.
    fn find(&self, user: UserId, target: OrderRef) -> Result<Held, RejectCode> {
        let held = match target {
            OrderRef::Id(id) => (self.by_id.get(&id).map(|&i| Held::Resting(i)))
                .or_else(|| self.waiting.placed_of(id).map(Held::Waiting)),
            OrderRef::Client(cid) => (self.by_client_id.get(&(user, cid)))
                .map(|&i| Held::Resting(i))
                .or_else(|| self.waiting.placed_of_client(user, cid).map(Held::Waiting)),
        };
        let owner = match held {
            Some(Held::Resting(i)) => Some(self.orders[i].data.user),
            Some(Held::Waiting(p)) => self.waiting.get(p).map(|w| w.user),
            None => None,
        };
        // Another user's order is answered exactly like one that does not
        // exist: the answer must not tell which ids are live.
        match held {
            Some(h) if owner == Some(user) => Ok(h),
            _ => Err(RejectCode::UnknownOrder),
        }
    }

    fn cancel(
        &mut self,
        user: UserId,
        target: OrderRef,
        out: &mut Out<'_>,
    ) -> Result<(), RejectCode> {
        match self.find(user, target)? {
            Held::Resting(i) => self.cancel_resting(i, CancelReason::UserRequest, out),
            Held::Waiting(p) => self.cancel_waiting(p, CancelReason::UserRequest, out),
        }
        Ok(())
    }

    /// Removes a resting order: `Canceled`, its level's `BookDelta`, then
    /// its list's ending effect.
    fn cancel_resting(&mut self, i: u32, reason: CancelReason, out: &mut Out<'_>) {
        let o = self.orders[i];
        self.unlink(i);
        out.emit(o.data.canceled(reason));
        self.level_changed(o.level, o.data.side, out);
        self.ended(o.data.list_id, out);
    }

    /// Removes a waiting order: `Canceled` with its whole size, then its
    /// list's ending effect.
    fn cancel_waiting(&mut self, placed: u64, reason: CancelReason, out: &mut Out<'_>) {
        if let Some(w) = self.take_waiting(placed) {
            out.emit(EventBody::Canceled(Canceled {
                order_id: w.order.order_id,
                client_order_id: w.order.client_order_id,
                user: w.user,
                side: w.order.side,
                remaining: w.order.size,
                reason,
            }));
            self.ended(w.list_id, out);
        }
    }

    /// Holds an order off the levels (and its expiry).
    fn hold_waiting(&mut self, w: WaitingOrder) {
        if let Some(t) = w.order.good_till {
            self.expiries.insert((t, w.placed), w.order.order_id);
        }
        self.waiting.insert(w);
    }

    /// Takes a waiting order out of the book's hold (and its expiry).
    fn take_waiting(&mut self, placed: u64) -> Option<WaitingOrder> {
        let w = self.waiting.remove(placed)?;
        if let Some(t) = w.order.good_till {
            self.expiries.remove(&(t, w.placed));
        }
        Some(w)
    }

    /// Cancels every order the user holds, ending their lists without
    /// resolutions: the resting ones in canonical order, then the waiting
    /// ones in placement order, then `ListDone` per list, then the count.
    fn cancel_all(&mut self, user: UserId, out: &mut Out<'_>) {
        let lists = self.lists.of_user(user);
        for l in &lists {
            self.lists.remove(l.list_id);
        }
        // Canceling frees slots but fills none, so the collected slots stay valid.
        let mine: Vec<u32> = self
            .slots_in_order()
            .filter(|&i| self.orders[i].data.user == user)
            .collect();
        for &i in &mine {
            self.cancel_resting(i, CancelReason::CancelAll, out);
        }
        let waiting: Vec<u64> = (self.waiting.iter())
            .filter(|w| w.user == user)
            .map(|w| w.placed)
            .collect();
        for &p in &waiting {
            self.cancel_waiting(p, CancelReason::CancelAll, out);
        }
        for l in &lists {
            out.emit(l.done());
        }
        out.emit(EventBody::CanceledAll(CanceledAll {
            user,
            count: u32::try_from(mine.len() + waiting.len()).unwrap_or(u32::MAX),
        }));
    }

    fn amend(&mut self, user: UserId, a: &Amend, out: &mut Out<'_>) -> Result<(), RejectCode> {
        match self.find(user, a.target)? {
            Held::Resting(i) => self.amend_resting(i, a, out),
            Held::Waiting(p) => self.amend_waiting(p, a, out),
        }
    }

    /// Amends an order on a level: a quantity decrease keeps its place, any
    /// other change re-queues it (and a new price may trade at once).
    fn amend_resting(&mut self, i: u32, a: &Amend, out: &mut Out<'_>) -> Result<(), RejectCode> {
        let o = self.orders[i].data;
        let user = o.user;
        if a.new_stop_price.is_some() {
            return Err(RejectCode::InvalidTrigger);
        }
        if a.new_qty.is_none() && a.new_price.is_none() {
            return Err(RejectCode::NothingToAmend);
        }
        if let Some(p) = a.new_price {
            validate::price(&self.config, p)?;
        }
        if let Some(q) = a.new_qty {
            validate::qty(&self.config, q)?;
        }
        let price = a.new_price.unwrap_or(o.price);
        let qty = a.new_qty.unwrap_or(o.qty);
        validate::notional(&self.config, price, qty)?;
        let filled = o.qty.0 - o.remaining.0;
        if qty.0 <= filled {
            return Err(RejectCode::AmendBelowFilled);
        }
        if price == o.price && qty == o.qty {
            return Err(RejectCode::NothingToAmend);
        }
        let remaining = Qty(qty.0 - filled);
        let mut taker = Taker {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user,
            side: o.side,
            limit: Some(price),
            budget: Budget::Base(remaining.0),
            stp: o.stp.unwrap_or(self.config.default_stp),
            list_id: o.list_id,
        };
        if o.post_only && price != o.price && self.would_take(&taker) {
            return Err(RejectCode::PostOnlyWouldCross);
        }
        let priority_kept = price == o.price && remaining <= o.remaining;
        out.emit(EventBody::Amended(Amended {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user,
            side: o.side,
            price,
            stop_price: None,
            qty,
            remaining,
            priority_kept,
        }));
        let level = self.orders[i].level;
        if priority_kept {
            // What shows shrinks only where the new open quantity is below it.
            let visible = o.visible.min(remaining);
            let order = &mut self.orders[i].data;
            order.qty = qty;
            order.remaining = remaining;
            order.visible = visible;
            self.levels[level].total.0 -= o.visible.0 - visible.0;
            if visible != o.visible {
                self.level_changed(level, o.side, out);
            }
            return Ok(());
        }
        // The order keeps its slot and index entries while it moves; only its
        // place in a level changes.
        self.detach(i);
        let order = &mut self.orders[i].data;
        order.price = price;
        order.qty = qty;
        order.remaining = remaining;
        order.visible = slice(o.iceberg_qty, remaining);
        if price == o.price {
            // A quantity increase: to the back of the same level, which it
            // cannot cross from. One delta, and the level never looks empty.
            self.attach(i, level);
            self.level_changed(level, o.side, out);
            return Ok(());
        }
        self.level_changed(level, o.side, out);
        // Detached, the order is in no level while it matches, so it cannot
        // meet itself.
        if self.take(&mut taker, out) {
            self.forget(i);
            self.cancel_taker(&taker, CancelReason::SelfTradePrevention, out);
        } else if let Budget::Base(rest) = taker.budget
            && rest > 0
        {
            let order = &mut self.orders[i].data;
            order.remaining = Qty(rest);
            order.visible = slice(o.iceberg_qty, Qty(rest));
            let level = self.level_at(o.side, price);
            self.attach(i, level);
            self.level_changed(level, o.side, out);
        } else {
            self.forget(i);
        }
        Ok(())
    }

    /// Checks the book's internal consistency; for tests and after a restore.
    /// Verifies: levels sorted and non-empty with correct totals, FIFO links
    /// consistent in both directions, arrival order increasing along each
    /// level, indexes matching the orders, and the book not crossed.
    pub fn check_invariants(&self) -> Result<(), Inconsistency> {
        let mut count = 0usize;
        let mut with_cid = 0usize;
        for (side, map) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (&price, &level) in map {
                let l = self.levels[level];
                if l.price != price {
                    return Err(Inconsistency::LevelPrice {
                        side,
                        key: price,
                        held: l.price,
                    });
                }
                if l.head == NIL {
                    return Err(Inconsistency::EmptyLevel(side, price));
                }
                let (mut sum, mut prev, mut last_arrival) = (0u64, NIL, 0u64);
                for i in self.level_orders(level) {
                    let o = self.orders[i];
                    let d = o.data;
                    if o.prev != prev || o.level != level || d.side != side || d.price != price {
                        return Err(Inconsistency::Mislinked(d.order_id, side, price));
                    }
                    if o.arrival <= last_arrival {
                        return Err(Inconsistency::FifoBroken(d.order_id, side, price));
                    }
                    if d.remaining.is_zero() || d.remaining > d.qty {
                        return Err(Inconsistency::Remaining {
                            order: d.order_id,
                            remaining: d.remaining,
                            qty: d.qty,
                        });
                    }
                    if d.visible != slice(d.iceberg_qty, d.remaining) && !shows_part(&d) {
                        return Err(Inconsistency::Visible(d.order_id));
                    }
                    if self.by_id.get(&d.order_id) != Some(&i) {
                        return Err(Inconsistency::NotIndexed(d.order_id));
                    }
                    if let Some(cid) = d.client_order_id {
                        with_cid += 1;
                        if self.by_client_id.get(&(d.user, cid)) != Some(&i) {
                            return Err(Inconsistency::ClientIdNotIndexed(d.order_id));
                        }
                    }
                    sum += d.visible.0;
                    prev = i;
                    last_arrival = o.arrival;
                    count += 1;
                }
                if l.tail != prev {
                    return Err(Inconsistency::Tail(side, price));
                }
                if sum != l.total.0 {
                    return Err(Inconsistency::Total {
                        side,
                        price,
                        total: l.total,
                        sum,
                    });
                }
            }
        }
        if count != self.orders.len() || count != self.by_id.len() {
            return Err(Inconsistency::OrderCount {
                linked: count,
                stored: self.orders.len(),
                indexed: self.by_id.len(),
            });
        }
        if with_cid != self.by_client_id.len() {
            return Err(Inconsistency::ClientIdCount {
                linked: with_cid,
                indexed: self.by_client_id.len(),
            });
        }
        if self.levels.len() != self.bids.len() + self.asks.len() {
            return Err(Inconsistency::LeakedLevels);
        }
        self.check_held()?;
        if let (Some(bid), Some(ask)) = (self.best_bid(), self.best_ask())
            && bid >= ask
        {
            return Err(Inconsistency::Crossed { bid, ask });
        }
        Ok(())
    }
}
