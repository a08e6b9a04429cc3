//! Rebuilding a book from a snapshot's parts, and the invariants of what
//! the book holds off its levels (waiting orders, lists, expiries).

use std::collections::BTreeSet;

use proto::{
    AdvancedOrders, ListKind, MAX_VALUE, OrderId, PairConfig, Price, Qty, QuoteQty, Seq,
    TradingStatus,
};

use super::{Envelope, OrderBook, OrderList, RestingOrder, WaitFor, WaitingOrder};
use crate::inconsistency::Inconsistency;
use crate::validate;

/// A book's whole state in canonical order (see [`crate::snapshot`]).
pub(crate) struct Parts {
    pub(crate) status: TradingStatus,
    pub(crate) envelope: Envelope,
    pub(crate) last_seq: Seq,
    pub(crate) placements: u64,
    pub(crate) last_price: Option<Price>,
    pub(crate) orders: Vec<RestingOrder>,
    pub(crate) waiting: Vec<WaitingOrder>,
    pub(crate) lists: Vec<OrderList>,
}

impl OrderBook {
    /// The book's parts, in canonical order.
    pub(crate) fn parts(&self) -> Parts {
        Parts {
            status: self.status,
            envelope: self.envelope,
            last_seq: self.last_seq(),
            placements: self.placements,
            last_price: self.last_price,
            orders: self.resting_orders().collect(),
            waiting: self.waiting_orders().collect(),
            lists: self.lists.canonical(),
        }
    }

    /// Rebuilds a book from canonical parts, refusing anything the book
    /// itself could not have reached.
    pub(crate) fn from_parts(config: PairConfig, parts: &Parts) -> Result<Self, Inconsistency> {
        let mut book = OrderBook::new(config).map_err(Inconsistency::Config)?;
        // The held orders' bounds must cover today's rules and be usable.
        if parts.envelope.widened(&config) != parts.envelope {
            return Err(Inconsistency::Envelope);
        }
        parts
            .envelope
            .applied_to(&config)
            .validate()
            .map_err(Inconsistency::Config)?;
        book.status = parts.status;
        book.envelope = parts.envelope;
        // Leaves room for every seq this book could still emit.
        if parts.last_seq.0 > u64::MAX / 2 || parts.placements > u64::MAX / 2 {
            return Err(Inconsistency::LastSeq(parts.last_seq));
        }
        book.last_seq = parts.last_seq.0;
        book.placements = parts.placements;
        if let Some(p) = parts.last_price {
            validate::price(&book.lenient(), p)
                .map_err(|_| Inconsistency::InvalidOrder(OrderId(0)))?;
        }
        book.last_price = parts.last_price;
        for o in &parts.orders {
            book.restore_resting(o)?;
        }
        for w in &parts.waiting {
            book.restore_waiting(w)?;
        }
        for l in &parts.lists {
            if book.lists.get(l.list_id).is_some() {
                return Err(Inconsistency::List(l.list_id));
            }
            book.lists.insert(*l);
        }
        if book.held_orders() > book.envelope.max_open_orders as usize {
            return Err(Inconsistency::TooManyOrders);
        }
        book.check_invariants()?;
        // Canonical order is best-first; a level's FIFO must also come back intact.
        if !book.resting_orders().eq(parts.orders.iter().copied())
            || !book.waiting_orders().eq(parts.waiting.iter().copied())
        {
            return Err(Inconsistency::NotCanonical);
        }
        Ok(book)
    }

    fn restore_resting(&mut self, o: &RestingOrder) -> Result<(), Inconsistency> {
        self.check_new_id(o.order_id, o.user, o.client_order_id)?;
        // Quantities and prices within the widest maxima the pair's rules
        // had keep every level total in u64 and every fill's value in range
        // (see `PairConfig::validate` and [`Envelope`]). Tick and lot are
        // rules for new orders only: an order placed before the operator
        // changed them stays on the book off the new ones.
        if o.price.is_zero()
            || o.remaining.is_zero()
            || o.remaining > o.qty
            || o.qty > self.envelope.max_qty
            || o.price > self.envelope.max_price
            || o.iceberg_qty.is_some_and(|s| s.is_zero())
            || !shows_rightly(o)
        {
            return Err(Inconsistency::InvalidOrder(o.order_id));
        }
        if self.orders.len() >= self.envelope.max_open_orders as usize {
            return Err(Inconsistency::TooManyOrders);
        }
        self.insert(*o);
        Ok(())
    }

    fn restore_waiting(&mut self, w: &WaitingOrder) -> Result<(), Inconsistency> {
        let id = w.order.order_id;
        self.check_new_id(id, w.user, w.order.client_order_id)?;
        let lenient = self.lenient();
        if validate::new_order(&lenient, &w.order).is_err() {
            return Err(Inconsistency::Waiting(id));
        }
        let fits = match w.wait {
            WaitFor::Trigger { tracking } => {
                w.order.order_type.trigger().is_some()
                    && tracking.is_none_or(|p| validate::price(&lenient, p).is_ok())
            }
            WaitFor::List => w.list_id.is_some(),
        };
        if !fits {
            return Err(Inconsistency::Waiting(id));
        }
        self.hold_waiting(*w);
        Ok(())
    }

    /// The rules any held order satisfies. The rules an order was placed
    /// under may have changed since (a tick or lot changed, a minimum
    /// raised, a maximum lowered, a type switched off): what the book holds
    /// stays, as on real venues; only what no book could hold is refused.
    fn lenient(&self) -> PairConfig {
        PairConfig {
            tick_size: Price(1),
            lot_size: Qty(1),
            min_qty: Qty(1),
            min_notional: QuoteQty(0),
            max_notional: QuoteQty(MAX_VALUE),
            advanced: AdvancedOrders::ALL,
            ..self.envelope.applied_to(&self.config)
        }
    }

    fn check_new_id(
        &self,
        id: OrderId,
        user: proto::UserId,
        cid: Option<proto::ClientOrderId>,
    ) -> Result<(), Inconsistency> {
        if self.by_id.contains_key(&id) || self.waiting.contains_id(id) {
            return Err(Inconsistency::DuplicateOrderId(id));
        }
        if let Some(cid) = cid
            && (self.by_client_id.contains_key(&(user, cid))
                || self.waiting.contains_client_id(user, cid))
        {
            return Err(Inconsistency::DuplicateClientOrderId(cid));
        }
        Ok(())
    }

    /// The invariants of held orders beyond the levels: unique placement
    /// numbers within the counter, the waiting set's indexes, the expiry
    /// index, and each open list's orders held, its own and owned alike.
    pub(super) fn check_held(&self) -> Result<(), Inconsistency> {
        let mut placements = BTreeSet::new();
        let resting = self
            .resting_orders()
            .map(|o| (o.order_id, o.placed, o.good_till));
        let waiting =
            (self.waiting.iter()).map(|w| (w.order.order_id, w.placed, w.order.good_till));
        let mut gtd = 0;
        for (id, placed, good_till) in resting.chain(waiting) {
            if placed == 0 || placed > self.placements || !placements.insert(placed) {
                return Err(Inconsistency::Placement(id));
            }
            if let Some(t) = good_till {
                gtd += 1;
                if self.expiries.get(&(t, placed)) != Some(&id) {
                    return Err(Inconsistency::Expiries);
                }
            }
        }
        if gtd != self.expiries.len() {
            return Err(Inconsistency::Expiries);
        }
        if let Some(w) = self
            .waiting
            .iter()
            .find(|w| !self.waiting.consistent_for(w))
        {
            return Err(Inconsistency::Waiting(w.order.order_id));
        }
        if !self.waiting.indexes_match() {
            return Err(Inconsistency::Waiting(OrderId(0)));
        }
        for l in self.lists.canonical() {
            self.check_open_list(&l)?;
        }
        Ok(())
    }

    /// An open list's orders are held, belong to it and to its owner; an
    /// OTO's pending order waits for it.
    fn check_open_list(&self, l: &OrderList) -> Result<(), Inconsistency> {
        let bad = Err(Inconsistency::List(l.list_id));
        let mut first_placed = None;
        for (n, leg) in l.legs.iter().enumerate() {
            let (user, list, placed, wait) = if let Some(o) = self.order(*leg) {
                (o.user, o.list_id, o.placed, None)
            } else if let Some(w) = self
                .waiting
                .placed_of(*leg)
                .and_then(|p| self.waiting.get(p))
            {
                (w.user, w.list_id, w.placed, Some(w.wait))
            } else {
                // Between commands both orders of an open list are held: a
                // filled OTO working order releases its pending order in the
                // same command.
                return bad;
            };
            if user != l.user || list != Some(l.list_id) {
                return bad;
            }
            if l.kind == ListKind::Oto && n == 1 && wait != Some(WaitFor::List) {
                return bad;
            }
            first_placed.get_or_insert(placed);
        }
        if first_placed != Some(l.placed) {
            return bad;
        }
        Ok(())
    }
}

/// What a restored order shows: something, no more than it has open, and
/// all of it unless it is an iceberg, whose part of a slice is at most the
/// slice. Checked before the order joins a level, whose total it adds to.
fn shows_rightly(o: &RestingOrder) -> bool {
    let within = !o.visible.is_zero() && o.visible <= o.remaining;
    match o.iceberg_qty {
        Some(slice) => within && o.visible <= slice,
        None => within && o.visible == o.remaining,
    }
}

#[cfg(test)]
mod tests {
    use proto::{OrderId, PairConfig, Price, Qty, Seq, Side, Symbol, UserId};

    use super::*;

    fn order(visible: u64, remaining: u64, iceberg: Option<u64>) -> RestingOrder {
        RestingOrder {
            order_id: OrderId(1),
            client_order_id: None,
            user: UserId(1),
            side: Side::Buy,
            price: Price(100),
            qty: Qty(10),
            remaining: Qty(remaining),
            post_only: false,
            stp: None,
            iceberg_qty: iceberg.map(Qty),
            visible: Qty(visible),
            good_till: None,
            list_id: None,
            placed: 1,
        }
    }

    fn restore(o: RestingOrder) -> Result<OrderBook, Inconsistency> {
        let config = PairConfig::simple(Symbol::new("BTC-EUR").expect("valid"));
        let parts = Parts {
            status: TradingStatus::Trading,
            envelope: Envelope::of(&config),
            last_seq: Seq(1),
            placements: 1,
            last_price: None,
            orders: vec![o],
            waiting: Vec::new(),
            lists: Vec::new(),
        };
        OrderBook::from_parts(config, &parts)
    }

    #[test]
    fn a_visible_part_that_no_book_could_show_is_refused_before_it_joins_a_level() {
        assert!(restore(order(10, 10, None)).is_ok());
        assert!(restore(order(3, 10, Some(3))).is_ok());
        assert!(restore(order(2, 10, Some(3))).is_ok(), "part of a slice");
        for bad in [
            order(u64::MAX, 10, None),
            order(u64::MAX, 10, Some(3)),
            order(0, 10, Some(3)),
            order(4, 10, Some(3)),
            order(9, 10, None),
        ] {
            assert_eq!(
                restore(bad).err(),
                Some(Inconsistency::InvalidOrder(OrderId(1)))
            );
        }
    }
}
