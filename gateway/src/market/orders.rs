//! Each pair's open orders as the event stream leaves them: what an
//! `executionReport` says beside the event itself (the order's quantity,
//! price, type, creation time, and what it has filled so far).
//!
//! Kept from the same records as the depth view, under the same lock, so a
//! report always describes the order exactly as the event left it. Orders
//! leave the view when they close: its size is bounded by the books'.

use std::collections::HashMap;

use proto::{
    Accepted, Amended, ClientOrderId, OrderId, OrderSize, OrderType, Price, Qty, Side, TimeInForce,
    Timestamp, UserId,
};
use store::{OrderRow, OrderStatus, quote_value};

/// One order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderState {
    pub(crate) order_id: OrderId,
    pub(crate) client_order_id: Option<ClientOrderId>,
    pub(crate) user: UserId,
    pub(crate) side: Side,
    /// The limit price; `None` for a market order.
    pub(crate) price: Option<Price>,
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
}

impl OrderState {
    fn accepted(a: &Accepted, at: Timestamp) -> Self {
        OrderState {
            order_id: a.order_id,
            client_order_id: a.client_order_id,
            user: a.user,
            side: a.side,
            price: a.order_type.price(),
            time_in_force: a.time_in_force,
            post_only: a.post_only,
            size: a.size,
            executed: Qty(0),
            cum_quote: 0,
            status: OrderStatus::New,
            created: at,
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
            price: r.price,
            time_in_force: TimeInForce::from_name(&r.time_in_force)?,
            post_only: r.post_only,
            size,
            executed: r.executed_qty,
            cum_quote: r.cum_quote_qty,
            status: r.status,
            created: r.created_at,
        })
    }

    /// The order's type as Binance names it.
    pub(crate) fn type_name(&self) -> &'static str {
        match (self.price, self.post_only) {
            (None, _) => OrderType::Market.name(),
            (Some(_), true) => "LIMIT_MAKER",
            (Some(p), false) => OrderType::Limit { price: p }.name(),
        }
    }

    /// Whether the order rests on the book: open, with a limit price, and a
    /// time in force that lets it stay.
    pub(crate) fn is_working(&self) -> bool {
        self.status.is_open() && self.price.is_some() && self.time_in_force == TimeInForce::Gtc
    }
}

/// One pair's open orders.
#[derive(Debug, Default)]
pub(crate) struct OpenOrders {
    orders: HashMap<OrderId, OrderState>,
}

impl OpenOrders {
    /// A new order: its state as accepted.
    pub(crate) fn accept(&mut self, a: &Accepted, at: Timestamp) -> OrderState {
        let state = OrderState::accepted(a, at);
        self.orders.insert(a.order_id, state);
        state
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
        o.status = status;
        Some(o)
    }

    /// An amendment of a resting order's price and quantity.
    pub(crate) fn amend(&mut self, a: &Amended) -> Option<OrderState> {
        let o = self.orders.get_mut(&a.order_id)?;
        o.price = Some(a.price);
        o.size = OrderSize::Base(a.qty);
        Some(*o)
    }

    /// Ends an order that may not rest, at the end of its command: a
    /// quote-sized buy can stop with unspent dust and no cancel event.
    pub(crate) fn end_taker(&mut self, id: OrderId) {
        if self
            .orders
            .get(&id)
            .is_some_and(|o| o.time_in_force != TimeInForce::Gtc || o.price.is_none())
        {
            self.orders.remove(&id);
        }
    }

    /// Orders stored before this view started; one the view already knows
    /// (from an event since) is kept as the view has it.
    pub(crate) fn seed(&mut self, rows: impl IntoIterator<Item = OrderState>) {
        for o in rows {
            if o.status.is_open() {
                self.orders.entry(o.order_id).or_insert(o);
            }
        }
    }

    /// How many orders are open.
    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(id: u64, size: OrderSize, tif: TimeInForce, price: Option<u64>) -> Accepted {
        Accepted {
            order_id: OrderId(id),
            client_order_id: None,
            user: UserId(1),
            side: Side::Buy,
            order_type: price.map_or(OrderType::Market, |p| OrderType::Limit { price: Price(p) }),
            time_in_force: tif,
            post_only: false,
            size,
        }
    }

    #[test]
    fn fills_accumulate_and_close_the_order() {
        let mut v = OpenOrders::default();
        v.accept(
            &accepted(1, OrderSize::Base(Qty(300)), TimeInForce::Gtc, Some(10_000)),
            Timestamp(5),
        );
        // Two decimals of quantity: 1.00 at 100.00 is worth 100.00.
        let first = v.fill(OrderId(1), Price(10_000), Qty(100), 2, false);
        let first = first.expect("known order");
        assert_eq!((first.executed, first.cum_quote), (Qty(100), 10_000));
        assert_eq!(first.status, OrderStatus::PartiallyFilled);
        assert!(first.is_working());
        let last = v.fill(OrderId(1), Price(9_000), Qty(200), 2, true);
        let last = last.expect("known order");
        assert_eq!((last.executed, last.cum_quote), (Qty(300), 28_000));
        assert_eq!(
            (last.status, last.created),
            (OrderStatus::Filled, Timestamp(5))
        );
        assert!(!last.is_working());
        assert_eq!(v.len(), 0, "a filled order leaves the view");
        assert!(v.fill(OrderId(1), Price(1), Qty(1), 2, false).is_none());
    }

    #[test]
    fn cancels_amends_and_takers_end_as_their_events_say() {
        let mut v = OpenOrders::default();
        v.accept(
            &accepted(1, OrderSize::Base(Qty(300)), TimeInForce::Gtc, Some(10_000)),
            Timestamp(5),
        );
        let amended = v.amend(&Amended {
            order_id: OrderId(1),
            client_order_id: None,
            user: UserId(1),
            side: Side::Buy,
            price: Price(9_900),
            qty: Qty(200),
            remaining: Qty(200),
            priority_kept: false,
        });
        let amended = amended.expect("known order");
        assert_eq!(
            (amended.price, amended.size),
            (Some(Price(9_900)), OrderSize::Base(Qty(200)))
        );
        let closed = v
            .close(OrderId(1), OrderStatus::Canceled)
            .expect("known order");
        assert_eq!(closed.status, OrderStatus::Canceled);
        assert_eq!(v.len(), 0);
        // A quote-sized market buy ends with its command, even with no event.
        let quote = OrderSize::Quote(proto::QuoteQty(5_000));
        v.accept(&accepted(2, quote, TimeInForce::Ioc, None), Timestamp(6));
        v.end_taker(OrderId(2));
        assert_eq!(v.len(), 0);
        // A resting order stays.
        v.accept(
            &accepted(3, OrderSize::Base(Qty(1)), TimeInForce::Gtc, Some(1)),
            Timestamp(7),
        );
        v.end_taker(OrderId(3));
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn seeding_keeps_what_events_already_said() {
        let mut v = OpenOrders::default();
        let fresh = v.accept(
            &accepted(1, OrderSize::Base(Qty(300)), TimeInForce::Gtc, Some(10_000)),
            Timestamp(5),
        );
        let stale = OrderState {
            executed: Qty(7),
            ..fresh
        };
        let closed = OrderState {
            order_id: OrderId(2),
            status: OrderStatus::Filled,
            ..fresh
        };
        let older = OrderState {
            order_id: OrderId(3),
            ..fresh
        };
        v.seed([stale, closed, older]);
        assert_eq!(v.len(), 2, "a closed row is not seeded");
        let kept = v
            .close(OrderId(1), OrderStatus::Canceled)
            .expect("known order");
        assert_eq!(kept.executed, Qty(0));
    }
}
