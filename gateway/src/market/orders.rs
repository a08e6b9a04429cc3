//! Each pair's open orders as the event stream leaves them: what an
//! `executionReport` says beside the event itself (the order's quantity,
//! price, type, creation time, and what it has filled so far). Conditional
//! orders waiting for their trigger and an OTO's pending orders are held
//! too, and so are the open order lists, for `listStatus`.
//!
//! Kept from the same records as the depth view, under the same lock, so a
//! report always describes the order exactly as the event left it. Orders
//! leave the view when they close: its size is bounded by the books'.
//!
//! A trailing stop's `trailingTime` (when it started tracking the price)
//! has no event of its own: the view follows the book's rule for it from
//! the trades it sees and the pair's last trade price.

use std::collections::{BTreeSet, HashMap};

use proto::{
    Accepted, Amended, ClientOrderId, ConditionalKind, Fees, ListKind, OrderId, OrderRef,
    OrderSize, OrderType, Price, Qty, Seq, Side, Symbol, TimeInForce, Timestamp, Trigger, UserId,
};
use store::{OrderListRow, OrderRow, OrderStatus, quote_value};

/// One order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderState {
    pub(crate) order_id: OrderId,
    pub(crate) client_order_id: Option<ClientOrderId>,
    pub(crate) user: UserId,
    pub(crate) side: Side,
    /// Its type, with its limit price and trigger.
    pub(crate) order_type: OrderType,
    pub(crate) time_in_force: TimeInForce,
    pub(crate) post_only: bool,
    /// What the order was sized in: base quantity or quote budget.
    pub(crate) size: OrderSize,
    /// Base quantity filled so far.
    pub(crate) executed: Qty,
    /// Quote value filled so far, in price units.
    pub(crate) cum_quote: u64,
    pub(crate) status: OrderStatus,
    pub(crate) created: Timestamp,
    pub(crate) iceberg_qty: Option<Qty>,
    pub(crate) good_till: Option<Timestamp>,
    pub(crate) list_id: Option<OrderId>,
    /// When it started working; `None` while it waits for its trigger or
    /// its OTO's working order.
    pub(crate) working_time: Option<Timestamp>,
    /// When a trailing stop started tracking the price.
    pub(crate) trailing_since: Option<Timestamp>,
    /// The pair's fee rates when this view saw it accepted: the ones it is
    /// charged. `None` for an order seeded from the store (the pair's
    /// current rates are reported).
    pub(crate) fees: Option<Fees>,
}

impl OrderState {
    fn accepted(a: &Accepted, at: Timestamp, pending: bool, fees: Fees) -> Self {
        let works = a.order_type.trigger().is_none() && !pending;
        OrderState {
            order_id: a.order_id,
            client_order_id: a.client_order_id,
            user: a.user,
            side: a.side,
            order_type: a.order_type,
            time_in_force: a.time_in_force,
            post_only: a.post_only,
            size: a.size,
            executed: Qty(0),
            cum_quote: 0,
            status: if pending {
                OrderStatus::PendingNew
            } else {
                OrderStatus::New
            },
            created: at,
            iceberg_qty: a.iceberg_qty,
            good_till: a.good_till,
            list_id: a.list_id,
            working_time: works.then_some(at),
            trailing_since: None,
            fees: Some(fees),
        }
    }

    /// The state a stored row describes; `None` for a row this gateway
    /// cannot read back (a type or time in force it does not know).
    pub(crate) fn from_row(r: &OrderRow) -> Option<Self> {
        let size = match (r.orig_qty, r.orig_quote_qty) {
            (Some(q), _) => OrderSize::Base(q),
            (None, Some(q)) => OrderSize::Quote(proto::QuoteQty(q)),
            (None, None) => return None,
        };
        Some(OrderState {
            order_id: r.order_id,
            client_order_id: r.client_order_id,
            user: r.user,
            side: r.side,
            order_type: type_of_row(r)?,
            time_in_force: TimeInForce::from_name(&r.time_in_force)?,
            post_only: r.post_only,
            size,
            executed: r.executed_qty,
            cum_quote: r.cum_quote_qty,
            status: r.status,
            created: r.created_at,
            iceberg_qty: r.iceberg_qty,
            good_till: r.good_till,
            list_id: r.order_list_id,
            working_time: r.working_time,
            trailing_since: None,
            fees: None,
        })
    }

    /// The order as a stored row of `pair` would show it now. The view
    /// keeps neither when the order last changed nor the seq it was
    /// accepted at: `updated_at` is its creation and `accepted_seq` 0, so
    /// the row serves answers that show neither (a cancel's, an amend's).
    pub(crate) fn to_row(self, pair: Symbol) -> OrderRow {
        let accepted = Accepted {
            order_id: self.order_id,
            client_order_id: self.client_order_id,
            user: self.user,
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            post_only: self.post_only,
            size: self.size,
            iceberg_qty: self.iceberg_qty,
            good_till: self.good_till,
            list_id: self.list_id,
        };
        let pending = self.status == OrderStatus::PendingNew;
        OrderRow {
            executed_qty: self.executed,
            cum_quote_qty: self.cum_quote,
            status: self.status,
            working_time: self.working_time,
            ..OrderRow::accepted(pair, &accepted, self.created, Seq(0), pending)
        }
    }

    /// The limit price; `None` for an order that works as a market order.
    pub(crate) fn price(&self) -> Option<Price> {
        self.order_type.price()
    }

    /// The trigger of a conditional order.
    pub(crate) fn trigger(&self) -> Option<Trigger> {
        self.order_type.trigger()
    }

    /// The order's type as Binance names it.
    pub(crate) fn type_name(&self) -> &'static str {
        match (self.order_type, self.post_only) {
            (OrderType::Limit { .. }, true) => "LIMIT_MAKER",
            (t, _) => t.name(),
        }
    }

    /// Whether it may rest on the book once working: a limit price and a
    /// time in force that lets it stay.
    pub(crate) fn may_rest(&self) -> bool {
        self.price().is_some() && matches!(self.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd)
    }

    /// Whether the order rests on the book: open, working, and of a kind
    /// that stays.
    pub(crate) fn is_working(&self) -> bool {
        self.status.is_open() && self.working_time.is_some() && self.may_rest()
    }

    /// A trailing stop that has not fired.
    fn trails(&self) -> bool {
        self.working_time.is_none()
            && self.status != OrderStatus::PendingNew
            && self.trigger().is_some_and(|t| t.trailing_delta.is_some())
    }

    /// Whether a trade at `p` starts a waiting trailing stop's tracking:
    /// at once without a stop price, else once the stop condition holds.
    fn starts_trailing_at(&self, p: Price) -> bool {
        let OrderType::Conditional { kind, trigger, .. } = self.order_type else {
            return false;
        };
        match trigger.stop_price {
            None => true,
            Some(stop) if kind.fires_on_rise(self.side) => p >= stop,
            Some(stop) => p <= stop,
        }
    }
}

/// A stored order's type, from its name, limit price and trigger.
fn type_of_row(r: &OrderRow) -> Option<OrderType> {
    let trigger = Trigger {
        stop_price: r.stop_price,
        trailing_delta: r.trailing_delta,
    };
    let conditional = |kind, limit| {
        Some(OrderType::Conditional {
            kind,
            limit,
            trigger,
        })
    };
    match r.order_type.as_str() {
        "LIMIT" => r.price.map(|price| OrderType::Limit { price }),
        "MARKET" => Some(OrderType::Market),
        "STOP_LOSS" => conditional(ConditionalKind::StopLoss, None),
        "STOP_LOSS_LIMIT" => conditional(ConditionalKind::StopLoss, Some(r.price?)),
        "TAKE_PROFIT" => conditional(ConditionalKind::TakeProfit, None),
        "TAKE_PROFIT_LIMIT" => conditional(ConditionalKind::TakeProfit, Some(r.price?)),
        _ => None,
    }
}

/// An open order list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListState {
    pub(crate) list_id: OrderId,
    pub(crate) client_list_id: Option<ClientOrderId>,
    pub(crate) user: UserId,
    pub(crate) kind: ListKind,
    /// Its orders, with their client ids once accepted.
    pub(crate) orders: [(OrderId, Option<ClientOrderId>); 2],
}

impl ListState {
    pub(crate) fn from_row(l: &OrderListRow) -> Self {
        ListState {
            list_id: l.list_id,
            client_list_id: l.client_list_id,
            user: l.user,
            kind: l.kind,
            orders: l.orders.map(|o| (o.order_id, o.client_order_id)),
        }
    }
}

/// One pair's open orders and lists.
#[derive(Debug, Default)]
pub(crate) struct OpenOrders {
    orders: HashMap<OrderId, OrderState>,
    lists: HashMap<OrderId, ListState>,
    /// Trailing stops that wait and have not started tracking, by id.
    untracked: BTreeSet<OrderId>,
    /// The pair's last trade price.
    last_price: Option<Price>,
}

impl OpenOrders {
    /// A new order: its state as accepted. The second order of an OTO
    /// accepted just before is its pending order.
    /// `fees` are the pair's rates now.
    pub(crate) fn accept(&mut self, a: &Accepted, at: Timestamp, fees: Fees) -> OrderState {
        let pending = a
            .list_id
            .and_then(|l| self.lists.get(&l))
            .is_some_and(|l| l.kind == ListKind::Oto && l.orders[1].0 == a.order_id);
        if let Some(l) = a.list_id.and_then(|l| self.lists.get_mut(&l))
            && let Some(leg) = l.orders.iter_mut().find(|o| o.0 == a.order_id)
        {
            leg.1 = a.client_order_id;
        }
        let mut state = OrderState::accepted(a, at, pending, fees);
        self.start_trailing(&mut state, at);
        self.orders.insert(a.order_id, state);
        state
    }

    /// Tracking of a trailing stop placed (or released, or amended) at
    /// `at`: from the last price at once when it has no stop price, else
    /// from the first trade that meets its stop.
    fn start_trailing(&mut self, o: &mut OrderState, at: Timestamp) {
        if !o.trails() {
            return;
        }
        o.trailing_since = None;
        let now = o.trigger().is_some_and(|t| t.stop_price.is_none()) && self.last_price.is_some();
        if now {
            o.trailing_since = Some(at);
            self.untracked.remove(&o.order_id);
        } else {
            self.untracked.insert(o.order_id);
        }
    }

    /// A trade at `price` at `at`: the pair's last price, and the trailing
    /// stops it starts.
    pub(crate) fn traded(&mut self, price: Price, at: Timestamp) {
        self.last_price = Some(price);
        let orders = &mut self.orders;
        self.untracked.retain(|id| match orders.get_mut(id) {
            Some(o) if o.starts_trailing_at(price) => {
                o.trailing_since = Some(at);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    /// A fill of `qty` at `price` of order `id`, which `filled` says is now
    /// complete; `None` for an order the view does not know.
    pub(crate) fn fill(
        &mut self,
        id: OrderId,
        price: Price,
        qty: Qty,
        qty_scale: u8,
        filled: bool,
    ) -> Option<OrderState> {
        let o = self.orders.get_mut(&id)?;
        o.executed = Qty(o.executed.0.saturating_add(qty.0));
        let value = quote_value(price, qty, qty_scale).unwrap_or(u64::MAX);
        o.cum_quote = o.cum_quote.saturating_add(value);
        o.status = if filled {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let state = *o;
        if filled {
            self.orders.remove(&id);
        }
        Some(state)
    }

    /// Order `id` left the book with `status`; its last state.
    pub(crate) fn close(&mut self, id: OrderId, status: OrderStatus) -> Option<OrderState> {
        let mut o = self.orders.remove(&id)?;
        self.untracked.remove(&id);
        o.status = status;
        Some(o)
    }

    /// An amendment of an order's price, quantity or stop price; a waiting
    /// trailing stop whose stop price changed starts tracking again, as the
    /// book's does.
    pub(crate) fn amend(&mut self, a: &Amended, at: Timestamp) -> Option<OrderState> {
        let mut o = *self.orders.get(&a.order_id)?;
        let old_stop = o.trigger().and_then(|t| t.stop_price);
        o.order_type = match o.order_type {
            OrderType::Limit { .. } => OrderType::Limit { price: a.price },
            OrderType::Conditional {
                kind,
                limit,
                trigger,
            } => OrderType::Conditional {
                kind,
                // A market conditional order reports price zero.
                limit: limit.map(|_| a.price),
                trigger: Trigger {
                    stop_price: a.stop_price.or(trigger.stop_price),
                    ..trigger
                },
            },
            OrderType::Market => OrderType::Market,
        };
        o.size = OrderSize::Base(a.qty);
        if a.stop_price.is_some() && a.stop_price != old_stop {
            self.start_trailing(&mut o, at);
        }
        self.orders.insert(a.order_id, o);
        Some(o)
    }

    /// A conditional order fired at `at`: it works from now.
    pub(crate) fn trigger(&mut self, id: OrderId, at: Timestamp) -> Option<OrderState> {
        let o = self.orders.get_mut(&id)?;
        o.working_time = Some(at);
        self.untracked.remove(&id);
        Some(*o)
    }

    /// An OTO's pending order released at `at`: it works from now, or waits
    /// for its trigger.
    pub(crate) fn release(&mut self, id: OrderId, at: Timestamp) -> Option<OrderState> {
        let mut o = *self.orders.get(&id)?;
        o.status = OrderStatus::New;
        if o.trigger().is_none() {
            o.working_time = Some(at);
        }
        self.start_trailing(&mut o, at);
        self.orders.insert(id, o);
        Some(o)
    }

    /// A list accepted: its orders follow.
    pub(crate) fn add_list(&mut self, l: ListState) {
        self.lists.insert(l.list_id, l);
    }

    /// A list as the view holds it.
    pub(crate) fn list(&self, id: OrderId) -> Option<&ListState> {
        self.lists.get(&id)
    }

    /// A list is over; its last state.
    pub(crate) fn end_list(&mut self, id: OrderId) -> Option<ListState> {
        self.lists.remove(&id)
    }

    /// Ends an order that worked in a command and may not rest, at its
    /// end: a quote-sized buy can stop with unspent dust and no cancel
    /// event.
    pub(crate) fn end_taker(&mut self, id: OrderId) {
        if self
            .orders
            .get(&id)
            .is_some_and(|o| o.working_time.is_some() && !o.may_rest())
        {
            self.orders.remove(&id);
        }
    }

    /// `user`'s open order `target`, if this view holds it. By client id
    /// it is a scan of the pair's open orders: the view is kept for the
    /// event stream, which names orders by id.
    pub(crate) fn find(&self, user: UserId, target: OrderRef) -> Option<&OrderState> {
        let found = match target {
            OrderRef::Id(id) => self.orders.get(&id),
            OrderRef::Client(c) => self
                .orders
                .values()
                .find(|o| o.user == user && o.client_order_id == Some(c)),
        };
        found.filter(|o| o.user == user)
    }

    /// When trailing stop `id` started tracking the price, if it is held
    /// and did.
    pub(crate) fn trailing_since(&self, id: OrderId) -> Option<Timestamp> {
        self.orders.get(&id).and_then(|o| o.trailing_since)
    }

    /// Orders and lists stored before this view started, and the pair's
    /// last trade price; what the view already knows (from an event since)
    /// is kept as the view has it.
    pub(crate) fn seed(
        &mut self,
        rows: impl IntoIterator<Item = OrderState>,
        lists: impl IntoIterator<Item = ListState>,
        last_price: Option<Price>,
    ) {
        for o in rows {
            if o.status.is_open() && !self.orders.contains_key(&o.order_id) {
                // When a seeded stop started trailing is not stored; it is
                // known again from the next trade that would start it.
                if o.trails() {
                    self.untracked.insert(o.order_id);
                }
                self.orders.insert(o.order_id, o);
            }
        }
        for l in lists {
            self.lists.entry(l.list_id).or_insert(l);
        }
        if self.last_price.is_none() {
            self.last_price = last_price;
        }
    }

    /// How many orders are open.
    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }
}

#[cfg(test)]
mod tests;
