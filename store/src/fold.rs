//! Folds event records into the rows one store transaction writes: fills,
//! new orders in their state at the end of the batch, and changes to orders
//! that were already stored. Pure: no database here.

use std::cell::Cell;
use std::collections::BTreeMap;

use proto::{
    Accepted, CancelReason, ClientOrderId, Event, EventBody, Fees, ListKind, OrderId, OrderSize,
    Price, Qty, Seq, Side, Symbol, TimeInForce, Timestamp, UserId, pow10,
};

use crate::SnapshotRow;

/// An order's lifecycle state, with Binance's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, nothing filled yet; open (a conditional order waiting for
    /// its trigger too).
    New,
    /// An OTO list's pending order, waiting for its working order to fill;
    /// open.
    PendingNew,
    /// Some filled; open.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Canceled by its owner (one cancel or a cancel-all).
    Canceled,
    /// Ended by its own rules: the rest of an IOC or market order, a FOK that
    /// could not fill, a post-only order that would have crossed, a GTD
    /// order whose time came, the other order of a list that filled.
    Expired,
    /// Ended by self-trade prevention.
    ExpiredInMatch,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::New,
        OrderStatus::PendingNew,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
        OrderStatus::ExpiredInMatch,
    ];

    /// The status a stored name stands for.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The stored and published name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PendingNew => "PENDING_NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::ExpiredInMatch => "EXPIRED_IN_MATCH",
        }
    }

    /// Whether the order may still trade (or, pending, be placed).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::PendingNew
        )
    }

    /// The status a cancel reason leaves, `by_user` when the command that
    /// caused it was the owner's cancel: Binance shows the other order of
    /// a list canceled with its sibling as `CANCELED`, and one ended
    /// because its sibling filled, fired or expired as `EXPIRED`.
    pub fn after_cancel_in(reason: CancelReason, by_user: bool) -> Self {
        match reason {
            CancelReason::UserRequest | CancelReason::CancelAll => OrderStatus::Canceled,
            CancelReason::ListSibling if by_user => OrderStatus::Canceled,
            CancelReason::SelfTradePrevention => OrderStatus::ExpiredInMatch,
            CancelReason::IocRemainder
            | CancelReason::FokNotFillable
            | CancelReason::PostOnlyWouldCross
            | CancelReason::Expired
            | CancelReason::ListSibling => OrderStatus::Expired,
        }
    }
}

/// Tells, event by event through one command, whether a `ListSibling`
/// cancel is its owner's doing: the last cancel before it of another
/// reason was the owner's, with no fill or trigger between.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiblingCause {
    by_user: bool,
}

impl SiblingCause {
    /// Takes the next event of the command; returns the status a cancel in
    /// it leaves.
    pub fn status_after(&mut self, body: &EventBody) -> Option<OrderStatus> {
        match body {
            EventBody::Canceled(c) => {
                if c.reason != CancelReason::ListSibling {
                    self.by_user = matches!(
                        c.reason,
                        CancelReason::UserRequest | CancelReason::CancelAll
                    );
                }
                Some(OrderStatus::after_cancel_in(c.reason, self.by_user))
            }
            EventBody::Trade(_) | EventBody::Triggered(_) | EventBody::Released(_) => {
                self.by_user = false;
                None
            }
            _ => None,
        }
    }
}

/// What one command's fold keeps between its events.
#[derive(Debug, Default)]
struct CommandFold {
    /// Orders that worked in this command (took liquidity or rested), in
    /// order: accepted ordinary orders, fired ones, released ones.
    workers: Vec<OrderId>,
    /// The pending order of an OTO list accepted in this command.
    pending: Option<OrderId>,
    sibling: SiblingCause,
}

/// One trade as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillRow {
    /// The pair.
    pub pair: Symbol,
    /// The trade event's seq, which is also the trade id.
    pub seq: Seq,
    /// The maker's price.
    pub price: Price,
    /// Base quantity.
    pub qty: Qty,
    /// `price * qty` in price units.
    pub quote_qty: u64,
    /// The aggressor's side.
    pub taker_side: Side,
    /// The resting order.
    pub maker_order_id: OrderId,
    /// Its owner.
    pub maker_user: UserId,
    /// The incoming order.
    pub taker_order_id: OrderId,
    /// Its owner.
    pub taker_user: UserId,
    /// When the command that caused it was accepted.
    pub timestamp: Timestamp,
}

/// An order's size as its row stores it: `(orig_qty, orig_quote_qty)`.
pub fn stored_size(size: OrderSize) -> (Option<Qty>, Option<u64>) {
    match size {
        // A budget caps what the order spends; it is sized in base.
        OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => (Some(q), None),
        OrderSize::Quote(q) => (None, Some(q.0)),
    }
}

/// One order's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// The pair.
    pub pair: Symbol,
    /// The order.
    pub order_id: OrderId,
    /// Its client order id.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
    /// `LIMIT`, `MARKET`, `STOP_LOSS`, `STOP_LOSS_LIMIT`, `TAKE_PROFIT` or
    /// `TAKE_PROFIT_LIMIT`.
    pub order_type: String,
    /// `GTC`, `IOC`, `FOK` or `GTD`.
    pub time_in_force: String,
    /// Maker only.
    pub post_only: bool,
    /// The limit price, for limit orders (conditional ones included).
    pub price: Option<Price>,
    /// A conditional order's stop price.
    pub stop_price: Option<Price>,
    /// A trailing conditional order's delta, in basis points.
    pub trailing_delta: Option<u32>,
    /// An iceberg's visible slice.
    pub iceberg_qty: Option<Qty>,
    /// When a GTD order expires.
    pub good_till: Option<Timestamp>,
    /// The order list it belongs to.
    pub order_list_id: Option<OrderId>,
    /// When it started working: placed on the book or trading. `None`
    /// while a conditional order waits for its trigger or an OTO's pending
    /// order for its working order (Binance's `-1`).
    pub working_time: Option<Timestamp>,
    /// The total base quantity, for orders sized in base.
    pub orig_qty: Option<Qty>,
    /// The quote budget, for market buys sized in quote.
    pub orig_quote_qty: Option<u64>,
    /// Base quantity filled so far.
    pub executed_qty: Qty,
    /// Quote value filled so far, in price units.
    pub cum_quote_qty: u64,
    /// Where it stands.
    pub status: OrderStatus,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The seq of its `Accepted` event: the fee rates in force there are
    /// the ones it is charged. 0 where unknown (stored before it was kept).
    pub accepted_seq: Seq,
}

impl OrderRow {
    /// The row of order `a` of `pair` as accepted at `at` by event `seq`,
    /// nothing filled; `pending` for an OTO's pending order. A pending or
    /// conditional order does not work yet.
    pub fn accepted(pair: Symbol, a: &Accepted, at: Timestamp, seq: Seq, pending: bool) -> Self {
        let (orig_qty, orig_quote_qty) = stored_size(a.size);
        let trigger = a.order_type.trigger();
        OrderRow {
            pair,
            order_id: a.order_id,
            client_order_id: a.client_order_id,
            user: a.user,
            side: a.side,
            order_type: a.order_type.name().to_string(),
            time_in_force: a.time_in_force.as_str().to_string(),
            post_only: a.post_only,
            price: a.order_type.price(),
            stop_price: trigger.and_then(|t| t.stop_price),
            trailing_delta: trigger.and_then(|t| t.trailing_delta),
            iceberg_qty: a.iceberg_qty,
            good_till: a.good_till,
            order_list_id: a.list_id,
            working_time: (trigger.is_none() && !pending).then_some(at),
            orig_qty,
            orig_quote_qty,
            executed_qty: Qty(0),
            cum_quote_qty: 0,
            status: if pending {
                OrderStatus::PendingNew
            } else {
                OrderStatus::New
            },
            created_at: at,
            updated_at: at,
            accepted_seq: seq,
        }
    }

    /// Whether it is a conditional order (`STOP_LOSS`, `TAKE_PROFIT` and
    /// their `_LIMIT` kinds).
    pub fn is_conditional(&self) -> bool {
        self.stop_price.is_some() || self.trailing_delta.is_some()
    }

    /// Binance's `isWorking`: open and working (on the book, or trading).
    pub fn is_working(&self) -> bool {
        self.status.is_open() && self.working_time.is_some()
    }
}

/// A change to an order stored by an earlier batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrderUpdate {
    pub(crate) executed_delta: u64,
    pub(crate) quote_delta: u64,
    pub(crate) status: Option<OrderStatus>,
    pub(crate) price: Option<Price>,
    pub(crate) orig_qty: Option<Qty>,
    pub(crate) stop_price: Option<Price>,
    /// Its trigger fired: it works from then.
    pub(crate) working_time: Option<Timestamp>,
    /// It was released from its OTO list: it works from then unless it is
    /// conditional (which the stored row tells).
    pub(crate) released_at: Option<Timestamp>,
    pub(crate) updated_at: Timestamp,
}

/// Where an order list stands, with Binance's `listOrderStatus` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    /// Placed, not over.
    Executing,
    /// Over: its orders ended, or live on by themselves.
    AllDone,
}

impl ListStatus {
    /// The stored and published name.
    pub fn as_str(self) -> &'static str {
        match self {
            ListStatus::Executing => "EXECUTING",
            ListStatus::AllDone => "ALL_DONE",
        }
    }

    /// The status a stored name stands for.
    pub fn from_name(s: &str) -> Option<Self> {
        [ListStatus::Executing, ListStatus::AllDone]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One order of a list, as the list names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLeg {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id.
    pub client_order_id: Option<ClientOrderId>,
}

/// One order list as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderListRow {
    /// The pair.
    pub pair: Symbol,
    /// The list, from the order ids' sequence.
    pub list_id: OrderId,
    /// Its client list id.
    pub client_list_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// OCO or OTO.
    pub kind: ListKind,
    /// Where it stands.
    pub status: ListStatus,
    /// Its orders, in the order given (an OTO's working order first).
    pub orders: [ListLeg; 2],
    /// When it was placed.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// The rows of one store transaction, folded from event records in log
/// order. Events at or below a pair's `last_seq` are skipped, so adding a
/// record twice, or again after a restart, changes nothing.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) fills: Vec<FillRow>,
    pub(crate) new_orders: BTreeMap<(Symbol, OrderId), OrderRow>,
    pub(crate) updates: BTreeMap<(Symbol, OrderId), OrderUpdate>,
    pub(crate) new_lists: BTreeMap<(Symbol, OrderId), OrderListRow>,
    /// Lists stored by an earlier batch that ended in this one, with when.
    pub(crate) lists_done: BTreeMap<(Symbol, OrderId), Timestamp>,
    pub(crate) snapshots: BTreeMap<Symbol, SnapshotRow>,
    /// Each pair's changes in this batch: the seq of its `PairChanged` and
    /// the fee rates after it (`pair_fee_changes`).
    pub(crate) fee_changes: BTreeMap<(Symbol, Seq), Fees>,
    /// Per pair: the forward fence as of its snapshot in this batch.
    pub(crate) fences: BTreeMap<Symbol, (u64, Vec<u8>)>,
    pub(crate) progress: BTreeMap<Symbol, Seq>,
    pub(crate) log_offsets: BTreeMap<(String, i32), u64>,
    /// Pairs whose events produced a value no column can hold, with why;
    /// writing the batch refuses them (see [`crate::StoreError::Unstorable`]).
    pub(crate) faults: BTreeMap<Symbol, String>,
}

/// `price * qty` in price units, for a pair whose quantities have `qty_scale`
/// decimals, rounded down; `None` above `u64`. A validated pair config keeps
/// every trade's value within [`proto::MAX_VALUE`].
pub fn quote_value(price: Price, qty: Qty, qty_scale: u8) -> Option<u64> {
    u64::try_from(u128::from(price.0) * u128::from(qty.0) / pow10(qty_scale)).ok()
}

impl Batch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.progress.is_empty() && self.snapshots.is_empty() && self.log_offsets.is_empty()
    }

    /// Records that the records of `topic`'s `partition` before `next` are
    /// in this batch: stored with its rows, so a restart resumes there.
    pub fn set_log_offset(&mut self, topic: &str, partition: i32, next: u64) {
        self.log_offsets
            .insert((topic.to_string(), partition), next);
    }

    /// The fills, in seq order.
    pub fn fills(&self) -> &[FillRow] {
        &self.fills
    }

    /// The state, at the end of the batch, of an order the batch created.
    pub fn new_order(&self, pair: Symbol, id: OrderId) -> Option<&OrderRow> {
        self.new_orders.get(&(pair, id))
    }

    /// The state, at the end of the batch, of a list the batch created.
    pub fn new_list(&self, pair: Symbol, id: OrderId) -> Option<&OrderListRow> {
        self.new_lists.get(&(pair, id))
    }

    /// Adds the events of one command of `pair` (whose quantities have
    /// `qty_scale` decimals). `last_seq` is the pair's persisted progress;
    /// it advances past the events taken.
    pub fn add_events(&mut self, qty_scale: u8, last_seq: &mut Seq, events: &[Event]) {
        let mut cmd = CommandFold::default();
        for e in events {
            if e.seq <= *last_seq {
                continue;
            }
            *last_seq = e.seq;
            self.progress.insert(e.pair, e.seq);
            self.add_event(qty_scale, e, &mut cmd);
        }
        self.end_takers(events.first().map(|e| e.pair), &cmd.workers);
    }

    /// One event of a command.
    fn add_event(&mut self, qty_scale: u8, e: &Event, cmd: &mut CommandFold) {
        let cancel_status = cmd.sibling.status_after(&e.body);
        match e.body {
            EventBody::Accepted(a) => self.add_accepted(e, &a, cmd),
            EventBody::Trade(t) => {
                let Some(quote) = quote_value(t.price, t.qty, qty_scale) else {
                    self.fault(e.pair, format!("trade {} is worth over 2^64", e.seq));
                    return;
                };
                self.fills.push(FillRow {
                    pair: e.pair,
                    seq: e.seq,
                    price: t.price,
                    qty: t.qty,
                    quote_qty: quote,
                    taker_side: t.taker_side,
                    maker_order_id: t.maker_order_id,
                    maker_user: t.maker_user,
                    taker_order_id: t.taker_order_id,
                    taker_user: t.taker_user,
                    timestamp: e.timestamp,
                });
                self.add_trade_to_orders(e, &t, quote);
            }
            EventBody::Canceled(c) => {
                let status = cancel_status.unwrap_or(OrderStatus::Canceled);
                self.change(
                    e.pair,
                    c.order_id,
                    e.timestamp,
                    |o| o.status = status,
                    |u| u.status = Some(status),
                );
            }
            EventBody::Amended(a) => self.add_amended(e, &a),
            EventBody::Triggered(_) | EventBody::Released(_) => self.add_working(e, cmd),
            EventBody::ListAccepted(_) | EventBody::ListDone(_) => self.add_list_event(e, cmd),
            // A pair's new rules and status are the book's snapshot's; its
            // fee rates are stored too, for the commission of later fills.
            EventBody::PairChanged(c) => {
                self.fee_changes.insert((e.pair, e.seq), c.config.fees);
            }
            EventBody::Rejected(_) | EventBody::BookDelta(_) | EventBody::CanceledAll(_) => {}
        }
    }

    /// An amend's new price, quantity and stop price.
    fn add_amended(&mut self, e: &Event, a: &proto::Amended) {
        // A conditional order that will work as a market order reports
        // price zero: it still has no limit.
        let price = (a.price.0 != 0).then_some(a.price);
        self.change(
            e.pair,
            a.order_id,
            e.timestamp,
            |o| {
                o.price = price.or(o.price);
                o.orig_qty = Some(a.qty);
                o.stop_price = a.stop_price.or(o.stop_price);
            },
            |u| {
                u.price = price;
                u.orig_qty = Some(a.qty);
                u.stop_price = a.stop_price;
            },
        );
    }

    /// An order that starts working: a conditional one fired, or an OTO's
    /// pending one released (which, conditional, still waits).
    fn add_working(&mut self, e: &Event, cmd: &mut CommandFold) {
        let ts = e.timestamp;
        match e.body {
            EventBody::Triggered(t) => {
                cmd.workers.push(t.order_id);
                self.change(
                    e.pair,
                    t.order_id,
                    ts,
                    |o| o.working_time = Some(ts),
                    |u| u.working_time = Some(ts),
                );
            }
            EventBody::Released(r) => {
                cmd.workers.push(r.order_id);
                self.change(
                    e.pair,
                    r.order_id,
                    ts,
                    |o| {
                        o.status = OrderStatus::New;
                        if !o.is_conditional() {
                            o.working_time = Some(ts);
                        }
                    },
                    |u| {
                        u.status = Some(OrderStatus::New);
                        u.released_at = Some(ts);
                    },
                );
            }
            _ => {}
        }
    }

    /// A list placed (its orders' `Accepted` follow) or over.
    fn add_list_event(&mut self, e: &Event, cmd: &mut CommandFold) {
        match e.body {
            EventBody::ListAccepted(l) => {
                if l.kind == ListKind::Oto {
                    cmd.pending = Some(l.orders[1]);
                }
                let leg = |order_id| ListLeg {
                    order_id,
                    client_order_id: None,
                };
                self.new_lists.insert(
                    (e.pair, l.list_id),
                    OrderListRow {
                        pair: e.pair,
                        list_id: l.list_id,
                        client_list_id: l.client_list_id,
                        user: l.user,
                        kind: l.kind,
                        status: ListStatus::Executing,
                        orders: [leg(l.orders[0]), leg(l.orders[1])],
                        created_at: e.timestamp,
                        updated_at: e.timestamp,
                    },
                );
            }
            EventBody::ListDone(d) => {
                if let Some(l) = self.new_lists.get_mut(&(e.pair, d.list_id)) {
                    l.status = ListStatus::AllDone;
                    l.updated_at = e.timestamp;
                } else {
                    self.lists_done.insert((e.pair, d.list_id), e.timestamp);
                }
            }
            _ => {}
        }
    }

    /// An accepted order's row. An OTO's pending order (the second order of
    /// a list accepted in the same command) is `PENDING_NEW`; it and a
    /// conditional order do not work yet.
    fn add_accepted(&mut self, e: &Event, a: &Accepted, cmd: &mut CommandFold) {
        let pending = cmd.pending == Some(a.order_id);
        let row = OrderRow::accepted(e.pair, a, e.timestamp, e.seq, pending);
        if row.working_time.is_some() {
            cmd.workers.push(a.order_id);
        }
        if let Some(list_id) = a.list_id
            && let Some(l) = self.new_lists.get_mut(&(e.pair, list_id))
            && let Some(leg) = l.orders.iter_mut().find(|g| g.order_id == a.order_id)
        {
            leg.client_order_id = a.client_order_id;
        }
        self.new_orders.insert((e.pair, a.order_id), row);
    }

    /// Ends the orders that worked in a command and may not rest, at the
    /// end of it: a quote-sized buy can stop with unspent dust and no
    /// cancel event. Only orders this batch holds are known well enough;
    /// the others are base-sized (conditional and pending orders cannot be
    /// quote-sized), and the book ends those with an event.
    fn end_takers(&mut self, pair: Option<Symbol>, workers: &[OrderId]) {
        let Some(pair) = pair else {
            return;
        };
        for id in workers {
            // A released conditional order waits for its trigger.
            if let Some(o) = self.new_orders.get_mut(&(pair, *id))
                && o.status.is_open()
                && o.working_time.is_some()
                && (o.price.is_none()
                    || !matches!(
                        TimeInForce::from_name(&o.time_in_force),
                        Some(TimeInForce::Gtc | TimeInForce::Gtd)
                    ))
            {
                o.status = if o.executed_qty.is_zero() {
                    OrderStatus::Expired
                } else {
                    OrderStatus::Filled
                };
            }
        }
    }

    /// A trade's fill, quantity and value added to both of its orders.
    fn add_trade_to_orders(&mut self, e: &Event, t: &proto::Trade, quote: u64) {
        let maker_status = if t.maker_remaining.is_zero() {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let taker_status = match t.taker_remaining {
            OrderSize::Base(q) if q.is_zero() => OrderStatus::Filled,
            OrderSize::Quote(q) if q.is_zero() => OrderStatus::Filled,
            _ => OrderStatus::PartiallyFilled,
        };
        // Checked sums: an order's value never saturates into a wrong figure.
        let overflow = Cell::new(false);
        let add = |sum: &mut u64| match sum.checked_add(quote) {
            Some(v) => *sum = v,
            None => overflow.set(true),
        };
        for (id, status) in [
            (t.maker_order_id, maker_status),
            (t.taker_order_id, taker_status),
        ] {
            self.change(
                e.pair,
                id,
                e.timestamp,
                |o| {
                    o.executed_qty = Qty(o.executed_qty.0 + t.qty.0);
                    add(&mut o.cum_quote_qty);
                    o.status = status;
                },
                |u| {
                    u.executed_delta += t.qty.0;
                    add(&mut u.quote_delta);
                    u.status = Some(status);
                },
            );
        }
        if overflow.get() {
            self.fault(
                e.pair,
                format!("an order's value passes 2^64 at trade {}", e.seq),
            );
        }
    }

    /// Marks `pair` as not storable; the first reason is kept.
    fn fault(&mut self, pair: Symbol, reason: String) {
        self.faults.entry(pair).or_insert(reason);
    }

    /// The batch cut into one batch per pair, so that one pair's rows can
    /// be stored without another's. A log offset goes with the pair
    /// `pair_of(topic, partition)` names (its offset must not pass events
    /// that were not stored); one that names no pair is dropped, and its
    /// records are read again after a restart.
    pub fn split_by_pair(
        self,
        pair_of: impl Fn(&str, i32) -> Option<Symbol>,
    ) -> BTreeMap<Symbol, Batch> {
        let mut out: BTreeMap<Symbol, Batch> = BTreeMap::new();
        for ((topic, partition), next) in self.log_offsets {
            if let Some(pair) = pair_of(&topic, partition) {
                let b = out.entry(pair).or_default();
                b.log_offsets.insert((topic, partition), next);
            }
        }
        for f in self.fills {
            out.entry(f.pair).or_default().fills.push(f);
        }
        for (k, v) in self.new_orders {
            out.entry(k.0).or_default().new_orders.insert(k, v);
        }
        for (k, v) in self.updates {
            out.entry(k.0).or_default().updates.insert(k, v);
        }
        for (k, v) in self.new_lists {
            out.entry(k.0).or_default().new_lists.insert(k, v);
        }
        for (k, v) in self.lists_done {
            out.entry(k.0).or_default().lists_done.insert(k, v);
        }
        for (k, v) in self.snapshots {
            out.entry(k).or_default().snapshots.insert(k, v);
        }
        for (k, v) in self.fee_changes {
            out.entry(k.0).or_default().fee_changes.insert(k, v);
        }
        for (k, v) in self.fences {
            out.entry(k).or_default().fences.insert(k, v);
        }
        for (k, v) in self.progress {
            out.entry(k).or_default().progress.insert(k, v);
        }
        for (k, v) in self.faults {
            out.entry(k).or_default().faults.insert(k, v);
        }
        out
    }

    /// Applies a change to an order: to its row if this batch created it,
    /// otherwise to the update of the stored row.
    fn change(
        &mut self,
        pair: Symbol,
        id: OrderId,
        ts: Timestamp,
        on_row: impl FnOnce(&mut OrderRow),
        on_update: impl FnOnce(&mut OrderUpdate),
    ) {
        if let Some(row) = self.new_orders.get_mut(&(pair, id)) {
            on_row(row);
            row.updated_at = ts;
        } else {
            let u = self.updates.entry((pair, id)).or_default();
            on_update(u);
            u.updated_at = ts;
        }
    }

    /// Adds a snapshot; it replaces an older one of the same pair in the batch.
    pub fn add_snapshot(&mut self, snapshot: SnapshotRow) {
        self.snapshots.insert(snapshot.pair, snapshot);
    }

    /// Adds `pair`'s forward fence as of its snapshot at `position`.
    pub fn add_fence(&mut self, pair: Symbol, position: u64, fence: Vec<u8>) {
        self.fences.insert(pair, (position, fence));
    }
}
