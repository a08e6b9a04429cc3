//! Folds event records into the rows one store transaction writes: fills,
//! new orders in their state at the end of the batch, and changes to orders
//! that were already stored. Pure: no database here.

use std::cell::Cell;
use std::collections::BTreeMap;

use proto::{
    CancelReason, ClientOrderId, Event, EventBody, OrderId, OrderSize, Price, Qty, Seq, Side,
    Symbol, TimeInForce, Timestamp, UserId, pow10,
};

use crate::SnapshotRow;

/// An order's lifecycle state, with Binance's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, nothing filled yet; open.
    New,
    /// Some filled; open.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Canceled by its owner (one cancel or a cancel-all).
    Canceled,
    /// Ended by its own rules: the rest of an IOC or market order, a FOK that
    /// could not fill, a post-only order that would have crossed.
    Expired,
    /// Ended by self-trade prevention.
    ExpiredInMatch,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::New,
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
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::ExpiredInMatch => "EXPIRED_IN_MATCH",
        }
    }

    /// Whether the order may still trade.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }

    /// The status a cancel reason leaves.
    pub fn after_cancel(reason: CancelReason) -> Self {
        match reason {
            CancelReason::UserRequest | CancelReason::CancelAll => OrderStatus::Canceled,
            CancelReason::SelfTradePrevention => OrderStatus::ExpiredInMatch,
            CancelReason::IocRemainder
            | CancelReason::FokNotFillable
            | CancelReason::PostOnlyWouldCross
            | CancelReason::Expired
            | CancelReason::ListSibling => OrderStatus::Expired,
        }
    }
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
    /// `LIMIT` or `MARKET`.
    pub order_type: String,
    /// `GTC`, `IOC` or `FOK`.
    pub time_in_force: String,
    /// Maker only.
    pub post_only: bool,
    /// The limit price, for limit orders.
    pub price: Option<Price>,
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
}

/// A change to an order stored by an earlier batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrderUpdate {
    pub(crate) executed_delta: u64,
    pub(crate) quote_delta: u64,
    pub(crate) status: Option<OrderStatus>,
    pub(crate) price: Option<Price>,
    pub(crate) orig_qty: Option<Qty>,
    pub(crate) updated_at: Timestamp,
}

/// The rows of one store transaction, folded from event records in log
/// order. Events at or below a pair's `last_seq` are skipped, so adding a
/// record twice, or again after a restart, changes nothing.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) fills: Vec<FillRow>,
    pub(crate) new_orders: BTreeMap<(Symbol, OrderId), OrderRow>,
    pub(crate) updates: BTreeMap<(Symbol, OrderId), OrderUpdate>,
    pub(crate) snapshots: BTreeMap<Symbol, SnapshotRow>,
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

    /// Adds the events of one command of `pair` (whose quantities have
    /// `qty_scale` decimals). `last_seq` is the pair's persisted progress;
    /// it advances past the events taken.
    pub fn add_events(&mut self, qty_scale: u8, last_seq: &mut Seq, events: &[Event]) {
        let mut taker: Option<(Symbol, OrderId, TimeInForce, bool)> = None;
        for e in events {
            if e.seq <= *last_seq {
                continue;
            }
            *last_seq = e.seq;
            self.progress.insert(e.pair, e.seq);
            let ts = e.timestamp;
            match e.body {
                EventBody::Accepted(a) => {
                    let (orig_qty, orig_quote_qty) = match a.size {
                        // A budget caps what the order spends; it is sized in base.
                        OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => {
                            (Some(q), None)
                        }
                        OrderSize::Quote(q) => (None, Some(q.0)),
                    };
                    let market = a.order_type.price().is_none();
                    taker = Some((e.pair, a.order_id, a.time_in_force, market));
                    self.new_orders.insert(
                        (e.pair, a.order_id),
                        OrderRow {
                            pair: e.pair,
                            order_id: a.order_id,
                            client_order_id: a.client_order_id,
                            user: a.user,
                            side: a.side,
                            order_type: a.order_type.name().to_string(),
                            time_in_force: a.time_in_force.as_str().to_string(),
                            post_only: a.post_only,
                            price: a.order_type.price(),
                            orig_qty,
                            orig_quote_qty,
                            executed_qty: Qty(0),
                            cum_quote_qty: 0,
                            status: OrderStatus::New,
                            created_at: ts,
                            updated_at: ts,
                        },
                    );
                }
                EventBody::Trade(t) => {
                    let Some(quote) = quote_value(t.price, t.qty, qty_scale) else {
                        self.fault(e.pair, format!("trade {} is worth over 2^64", e.seq));
                        continue;
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
                        timestamp: ts,
                    });
                    self.add_trade_to_orders(e, &t, quote);
                }
                EventBody::Canceled(c) => {
                    let status = OrderStatus::after_cancel(c.reason);
                    self.change(
                        e.pair,
                        c.order_id,
                        ts,
                        |o| o.status = status,
                        |u| u.status = Some(status),
                    );
                }
                EventBody::Amended(a) => {
                    self.change(
                        e.pair,
                        a.order_id,
                        ts,
                        |o| {
                            o.price = Some(a.price);
                            o.orig_qty = Some(a.qty);
                        },
                        |u| {
                            u.price = Some(a.price);
                            u.orig_qty = Some(a.qty);
                        },
                    );
                }
                EventBody::Rejected(_)
                | EventBody::BookDelta(_)
                | EventBody::CanceledAll(_)
                | EventBody::Triggered(_)
                | EventBody::Released(_)
                | EventBody::ListAccepted(_)
                | EventBody::ListDone(_) => {}
            }
        }
        // An order that may not rest is over when its command is: a
        // quote-sized buy can end with unspent dust and no cancel event.
        if let Some((pair, id, tif, market)) = taker
            && (tif != TimeInForce::Gtc || market)
            && let Some(o) = self.new_orders.get_mut(&(pair, id))
            && o.status.is_open()
        {
            o.status = if o.executed_qty.is_zero() {
                OrderStatus::Expired
            } else {
                OrderStatus::Filled
            };
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
        for (k, v) in self.snapshots {
            out.entry(k).or_default().snapshots.insert(k, v);
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
