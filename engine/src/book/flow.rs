//! What advanced orders add around the matching loop: the expiry of GTD
//! orders before each command, the effects of each trade (stops fired,
//! order lists resolved or released), the follow-up queue that puts fired
//! and released orders to work after the step that caused them, and the
//! commands on lists and waiting orders.
//!
//! Event order, which the reference book reproduces:
//! - before a command's body, every held order whose expiry time has come,
//!   by (expiry, placement): `Canceled{Expired}` (with the `BookDelta` of
//!   its level when it rested), then its list's ending effect;
//! - right after each `Trade`: the maker's list effect, the taker's, then
//!   the orders this trade fires in placement order, each `Triggered` then
//!   (an OCO leg) its list resolved; the matching then goes on;
//! - a list resolved: `Canceled{ListSibling}` for each other order still
//!   held (a resting one with its level's `BookDelta`), then `ListDone`;
//! - after the body, the follow-up queue, first in first out: a fired order
//!   works as a new order would (no second `Accepted`); a released OTO
//!   pending order emits `Released` and `ListDone`, then works, or waits for
//!   its trigger (or fires at once when its stop has been reached).

use proto::{
    Amend, Amended, CancelReason, ClientOrderId, EventBody, ListAccepted, ListDone, ListKind,
    NewOrderList, OrderId, OrderRef, OrderSize, OrderType, Price, Qty, RejectCode, Released,
    Timestamp, Triggered, UserId,
};

use super::{OrderBook, OrderList, Out, RestingOrder, Taker, WaitFor, WaitingOrder};
use crate::validate;

/// Work left for after the current matching step.
#[derive(Debug, Clone, Copy)]
pub(super) enum FollowUp {
    /// A fired conditional order, to work as a new order would.
    Fire(WaitingOrder),
    /// An OTO list whose working order filled: place its pending order.
    Release(OrderId),
}

impl OrderList {
    /// The event saying this list is done.
    pub(super) fn done(&self) -> EventBody {
        EventBody::ListDone(ListDone {
            list_id: self.list_id,
            client_list_id: self.client_list_id,
            user: self.user,
        })
    }
}

impl OrderBook {
    /// The prelude of every command: expire what is due at `now`.
    pub(super) fn expire(&mut self, now: Timestamp, out: &mut Out<'_>) {
        while let Some((&(t, placed), &id)) = self.expiries.first_key_value()
            && t <= now
        {
            if let Some(&i) = self.by_id.get(&id) {
                self.cancel_resting(i, CancelReason::Expired, out);
            } else if self.waiting.get(placed).is_some() {
                self.cancel_waiting(placed, CancelReason::Expired, out);
            } else {
                // Unreachable while the indexes agree; never loop on it.
                self.expiries.remove(&(t, placed));
            }
        }
    }

    /// The effects of one trade at `price` between maker `m` (now with
    /// `maker_remaining` open) and taker `t`.
    pub(super) fn after_trade(
        &mut self,
        price: Price,
        m: &RestingOrder,
        maker_remaining: Qty,
        t: &Taker,
        out: &mut Out<'_>,
    ) {
        self.last_price = Some(price);
        self.traded(m.list_id, m.order_id, maker_remaining.is_zero(), out);
        self.traded(t.list_id, t.order_id, t.budget.filled(), out);
        if self.waiting.len() == 0 {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.waiting.fired_by(price, &mut fired);
        for &placed in &fired {
            // An earlier one's list may have canceled this one.
            if let Some(w) = self.take_waiting(placed) {
                self.fire(w, price, out);
            }
        }
        fired.clear();
        self.fired = fired;
    }

    /// Emits `Triggered`, resolves the order's OCO list with it surviving,
    /// and queues the order to work.
    fn fire(&mut self, w: WaitingOrder, price: Price, out: &mut Out<'_>) {
        out.emit(EventBody::Triggered(Triggered {
            order_id: w.order.order_id,
            client_order_id: w.order.client_order_id,
            user: w.user,
            side: w.order.side,
            price,
        }));
        self.resolve(w.list_id, Some(w.order.order_id), out);
        out.follow.push_back(FollowUp::Fire(w));
    }

    /// A list order traded: an OCO is resolved with it surviving; an OTO
    /// whose working order is now filled releases its pending order.
    fn traded(&mut self, list: Option<OrderId>, order: OrderId, filled: bool, out: &mut Out<'_>) {
        let Some(l) = list.and_then(|id| self.lists.get(id)).copied() else {
            return;
        };
        match l.kind {
            ListKind::Oco => self.resolve(Some(l.list_id), Some(order), out),
            ListKind::Oto if filled && l.legs[0] == order => {
                out.follow.push_back(FollowUp::Release(l.list_id));
            }
            ListKind::Oto => {}
        }
    }

    /// An order of `list` ended without filling (or its rest did): the
    /// list's other order is canceled and the list is done.
    pub(super) fn ended(&mut self, list: Option<OrderId>, out: &mut Out<'_>) {
        self.resolve(list, None, out);
    }

    /// Ends an open list: every order of it but `survivor` still held is
    /// canceled, then `ListDone`.
    fn resolve(&mut self, list: Option<OrderId>, survivor: Option<OrderId>, out: &mut Out<'_>) {
        let Some(l) = list.and_then(|id| self.lists.remove(id)) else {
            return;
        };
        for leg in l.legs {
            if Some(leg) != survivor {
                self.cancel_held(leg, CancelReason::ListSibling, out);
            }
        }
        out.emit(l.done());
    }

    /// Cancels the order with `id` wherever the book holds it, if it does.
    fn cancel_held(&mut self, id: OrderId, reason: CancelReason, out: &mut Out<'_>) {
        if let Some(&i) = self.by_id.get(&id) {
            self.cancel_resting(i, reason, out);
        } else if let Some(placed) = self.waiting.placed_of(id) {
            self.cancel_waiting(placed, reason, out);
        }
    }

    /// Works the follow-up queue until it is empty. Each waiting order
    /// fires or is released at most once, so this ends.
    pub(super) fn run_follow_ups(&mut self, out: &mut Out<'_>) {
        while let Some(f) = out.follow.pop_front() {
            match f {
                FollowUp::Fire(w) => self.work(w.user, &w.order, w.list_id, w.placed, out),
                FollowUp::Release(list) => self.release(list, out),
            }
        }
    }

    /// Places an OTO list's pending order once its working order filled.
    fn release(&mut self, list: OrderId, out: &mut Out<'_>) {
        let Some(l) = self.lists.get(list).copied() else {
            return;
        };
        let Some(placed) = self.waiting.placed_of(l.legs[1]) else {
            return;
        };
        let Some(w) = self.take_waiting(placed) else {
            return;
        };
        self.lists.remove(list);
        out.emit(EventBody::Released(Released {
            order_id: w.order.order_id,
            client_order_id: w.order.client_order_id,
            user: w.user,
            side: w.order.side,
        }));
        out.emit(l.done());
        if w.order.order_type.trigger().is_none() {
            self.work(w.user, &w.order, w.list_id, w.placed, out);
        } else if let (true, Some(last)) = (self.stop_reached(&w), self.last_price) {
            self.fire(w, last, out);
        } else {
            let wait = self.initial_wait(&w.order);
            self.hold_waiting(WaitingOrder { wait, ..w });
        }
    }

    /// True when a static (non-trailing) stop's price has been reached by
    /// the last trade.
    fn stop_reached(&self, w: &WaitingOrder) -> bool {
        matches!(w.order.order_type.trigger(), Some(t) if t.trailing_delta.is_none())
            && self.would_fire_now(&w.order)
    }

    /// Places an order list: both orders or neither.
    pub(super) fn new_order_list(
        &mut self,
        user: UserId,
        l: &NewOrderList,
        out: &mut Out<'_>,
    ) -> Result<(), RejectCode> {
        validate::order_list(&self.config, l)?;
        self.check_list(user, l, out.timestamp)?;
        let placed = [self.next_placement(), self.next_placement()];
        out.emit(EventBody::ListAccepted(ListAccepted {
            list_id: l.list_id,
            client_list_id: l.client_list_id,
            user,
            kind: l.kind,
            orders: l.orders.map(|o| o.order_id),
        }));
        for o in &l.orders {
            out.emit(EventBody::Accepted(o.accepted_in(user, Some(l.list_id))));
        }
        self.lists.insert(OrderList {
            list_id: l.list_id,
            client_list_id: l.client_list_id,
            user,
            kind: l.kind,
            legs: l.orders.map(|o| o.order_id),
            placed: placed[0],
        });
        let [first, second] = &l.orders;
        match l.kind {
            ListKind::Oco => {
                self.enter(user, first, Some(l.list_id), placed[0], out);
                self.enter(user, second, Some(l.list_id), placed[1], out);
            }
            ListKind::Oto => {
                self.hold_waiting(WaitingOrder {
                    order: *second,
                    user,
                    list_id: Some(l.list_id),
                    placed: placed[1],
                    wait: WaitFor::List,
                });
                self.work(user, first, Some(l.list_id), placed[0], out);
            }
        }
        Ok(())
    }

    /// The stateful checks of a new list, in the documented order.
    fn check_list(&self, user: UserId, l: &NewOrderList, now: Timestamp) -> Result<(), RejectCode> {
        let [a, b] = &l.orders;
        let cid_open = |cid: ClientOrderId| self.lists.by_client(user, cid).is_some();
        if self.lists.get(l.list_id).is_some() || l.client_list_id.is_some_and(cid_open) {
            return Err(RejectCode::DuplicateOrderListId);
        }
        if a.order_id == b.order_id || a.order_id == l.list_id || b.order_id == l.list_id {
            return Err(RejectCode::DuplicateOrderId);
        }
        for o in &l.orders {
            if self.by_id.contains_key(&o.order_id) || self.waiting.contains_id(o.order_id) {
                return Err(RejectCode::DuplicateOrderId);
            }
        }
        if a.client_order_id.is_some() && a.client_order_id == b.client_order_id {
            return Err(RejectCode::DuplicateClientOrderId);
        }
        for o in &l.orders {
            self.check_unique(user, o)?;
        }
        for o in &l.orders {
            self.check_good_till(o, now)?;
        }
        if self.held_orders() + 2 > self.config.max_open_orders as usize {
            return Err(RejectCode::BookFull);
        }
        if l.kind == ListKind::Oco && l.orders.iter().any(|o| self.would_fire_now(o)) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        let makers = match l.kind {
            ListKind::Oco => &l.orders[..],
            ListKind::Oto => &l.orders[..1],
        };
        for o in makers.iter().filter(|o| o.post_only) {
            if self.would_take(&self.probe(user, o)) {
                return Err(RejectCode::PostOnlyWouldCross);
            }
        }
        Ok(())
    }

    /// A taker for `o` that is only asked where it would trade.
    fn probe(&self, user: UserId, o: &proto::NewOrder) -> Taker {
        Taker {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user,
            side: o.side,
            limit: o.order_type.working().price(),
            budget: self.budget(o.size),
            stp: o.stp.unwrap_or(self.config.default_stp),
            list_id: None,
        }
    }

    /// Cancels an open list and every order of it still held.
    pub(super) fn cancel_list(
        &mut self,
        user: UserId,
        target: OrderRef,
        out: &mut Out<'_>,
    ) -> Result<(), RejectCode> {
        let id = match target {
            OrderRef::Id(id) => Some(id),
            OrderRef::Client(cid) => self.lists.by_client(user, cid),
        };
        let l = match id.and_then(|id| self.lists.get(id)) {
            Some(l) if l.user == user => *l,
            // Another user's list is answered like one that does not exist.
            _ => return Err(RejectCode::UnknownOrderList),
        };
        self.lists.remove(l.list_id);
        for leg in l.legs {
            self.cancel_held(leg, CancelReason::UserRequest, out);
        }
        out.emit(l.done());
        Ok(())
    }

    /// Amends an order waiting off the book: its quantity, limit price or
    /// stop price. It keeps its placement; a trailing order starts trailing
    /// again.
    pub(super) fn amend_waiting(
        &mut self,
        placed: u64,
        a: &Amend,
        out: &mut Out<'_>,
    ) -> Result<(), RejectCode> {
        let Some(mut w) = self.waiting.get(placed).copied() else {
            return Err(RejectCode::UnknownOrder);
        };
        let o = w.order;
        let amended = amended_order(&o, a)?;
        if let Some(p) = a.new_price {
            validate::price(&self.config, p)?;
        }
        if let Some(q) = a.new_qty {
            validate::qty(&self.config, q)?;
        }
        if let Some(stop) = a.new_stop_price {
            validate::price(&self.config, stop)?;
        }
        if let (Some(price), OrderSize::Base(qty)) = (amended.order_type.price(), amended.size) {
            validate::notional(&self.config, price, qty)?;
        }
        // A quantity at or below its slice would make an iceberg no
        // iceberg: refused as at placement.
        if let Some(slice) = amended.iceberg_qty {
            validate::iceberg(&self.config, &amended, slice)?;
        }
        if amended == o {
            return Err(RejectCode::NothingToAmend);
        }
        if a.new_stop_price.is_some() && self.would_fire_now(&amended) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        let qty = match amended.size {
            OrderSize::Base(q) => q,
            _ => Qty::ZERO,
        };
        out.emit(EventBody::Amended(Amended {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user: w.user,
            side: o.side,
            price: amended.order_type.price().unwrap_or(Price::ZERO),
            stop_price: amended.order_type.trigger().and_then(|t| t.stop_price),
            qty,
            remaining: qty,
            priority_kept: true,
        }));
        w.order = amended;
        if let WaitFor::Trigger { .. } = w.wait
            && a.new_stop_price.is_some()
        {
            w.wait = self.initial_wait(&amended);
        }
        self.waiting.replace(w);
        Ok(())
    }
}

/// A waiting order with an amend's changes, or the amend's fault: nothing
/// asked, a quantity for an order sized otherwise, a price for an order
/// without a limit, a stop price for an order without one.
fn amended_order(o: &proto::NewOrder, a: &Amend) -> Result<proto::NewOrder, RejectCode> {
    if a.new_qty.is_none() && a.new_price.is_none() && a.new_stop_price.is_none() {
        return Err(RejectCode::NothingToAmend);
    }
    let mut amended = *o;
    if let Some(q) = a.new_qty {
        match amended.size {
            OrderSize::Base(_) => amended.size = OrderSize::Base(q),
            _ => return Err(RejectCode::QuoteSizeNotAllowed),
        }
    }
    match (&mut amended.order_type, a.new_price) {
        (_, None) => {}
        (OrderType::Limit { price }, Some(p)) => *price = p,
        (
            OrderType::Conditional {
                limit: Some(price), ..
            },
            Some(p),
        ) => *price = p,
        _ => return Err(RejectCode::NothingToAmend),
    }
    match (&mut amended.order_type, a.new_stop_price) {
        (_, None) => {}
        (
            OrderType::Conditional {
                trigger:
                    proto::Trigger {
                        stop_price: Some(stop),
                        ..
                    },
                ..
            },
            Some(s),
        ) => *stop = s,
        _ => return Err(RejectCode::InvalidTrigger),
    }
    Ok(amended)
}
