//! The order view against the events' rules.

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
        iceberg_qty: None,
        good_till: None,
        list_id: None,
    }
}

#[test]
fn fills_accumulate_and_close_the_order() {
    let mut v = OpenOrders::default();
    v.accept(
        &accepted(1, OrderSize::Base(Qty(300)), TimeInForce::Gtc, Some(10_000)),
        Timestamp(5),
        proto::Fees::ZERO,
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
        proto::Fees::ZERO,
    );
    let amended = v.amend(
        &Amended {
            order_id: OrderId(1),
            client_order_id: None,
            user: UserId(1),
            side: Side::Buy,
            price: Price(9_900),
            qty: Qty(200),
            remaining: Qty(200),
            priority_kept: false,
            stop_price: None,
        },
        Timestamp(6),
    );
    let amended = amended.expect("known order");
    assert_eq!(
        (amended.price(), amended.size),
        (Some(Price(9_900)), OrderSize::Base(Qty(200)))
    );
    let closed = v
        .close(OrderId(1), OrderStatus::Canceled)
        .expect("known order");
    assert_eq!(closed.status, OrderStatus::Canceled);
    assert_eq!(v.len(), 0);
    // A quote-sized market buy ends with its command, even with no event.
    let quote = OrderSize::Quote(proto::QuoteQty(5_000));
    v.accept(
        &accepted(2, quote, TimeInForce::Ioc, None),
        Timestamp(6),
        proto::Fees::ZERO,
    );
    v.end_taker(OrderId(2));
    assert_eq!(v.len(), 0);
    // A resting order stays.
    v.accept(
        &accepted(3, OrderSize::Base(Qty(1)), TimeInForce::Gtc, Some(1)),
        Timestamp(7),
        proto::Fees::ZERO,
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
        proto::Fees::ZERO,
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
    v.seed([stale, closed, older], [], None);
    assert_eq!(v.len(), 2, "a closed row is not seeded");
    let kept = v
        .close(OrderId(1), OrderStatus::Canceled)
        .expect("known order");
    assert_eq!(kept.executed, Qty(0));
}

fn conditional(id: u64, side: Side, stop: Option<u64>, trailing: Option<u32>) -> Accepted {
    Accepted {
        order_type: OrderType::Conditional {
            kind: ConditionalKind::StopLoss,
            limit: None,
            trigger: Trigger {
                stop_price: stop.map(Price),
                trailing_delta: trailing,
            },
        },
        side,
        ..accepted(id, OrderSize::Base(Qty(5)), TimeInForce::Ioc, None)
    }
}

#[test]
fn a_conditional_order_waits_then_works() {
    let mut v = OpenOrders::default();
    let o = v.accept(
        &conditional(1, Side::Sell, Some(90), None),
        Timestamp(5),
        proto::Fees::ZERO,
    );
    assert_eq!((o.status, o.working_time), (OrderStatus::New, None));
    assert_eq!(o.type_name(), "STOP_LOSS");
    assert!(!o.is_working());
    let fired = v.trigger(OrderId(1), Timestamp(9)).expect("held");
    assert_eq!(fired.working_time, Some(Timestamp(9)));
    v.end_taker(OrderId(1));
    assert_eq!(v.len(), 0, "a fired market order ends with its command");
}

#[test]
fn trailing_stops_start_tracking_by_the_books_rule() {
    let mut v = OpenOrders::default();
    // No trade yet: a stop without a stop price waits for the first one.
    v.accept(
        &conditional(1, Side::Sell, None, Some(100)),
        Timestamp(1),
        proto::Fees::ZERO,
    );
    assert_eq!(v.trailing_since(OrderId(1)), None);
    v.traded(Price(100), Timestamp(2));
    assert_eq!(v.trailing_since(OrderId(1)), Some(Timestamp(2)));
    // With a last price it tracks at once.
    v.accept(
        &conditional(2, Side::Sell, None, Some(100)),
        Timestamp(3),
        proto::Fees::ZERO,
    );
    assert_eq!(v.trailing_since(OrderId(2)), Some(Timestamp(3)));
    // With a stop price, once a trade meets it: a sell stop-loss when the
    // price falls to it.
    v.accept(
        &conditional(3, Side::Sell, Some(90), Some(100)),
        Timestamp(4),
        proto::Fees::ZERO,
    );
    v.traded(Price(95), Timestamp(5));
    assert_eq!(v.trailing_since(OrderId(3)), None);
    v.traded(Price(90), Timestamp(6));
    assert_eq!(v.trailing_since(OrderId(3)), Some(Timestamp(6)));
    // A buy stop-loss when it rises to it.
    v.accept(
        &conditional(4, Side::Buy, Some(110), Some(100)),
        Timestamp(7),
        proto::Fees::ZERO,
    );
    v.traded(Price(100), Timestamp(8));
    assert_eq!(v.trailing_since(OrderId(4)), None);
    v.traded(Price(111), Timestamp(9));
    assert_eq!(v.trailing_since(OrderId(4)), Some(Timestamp(9)));
    // An amend of its stop price starts it again.
    let amended = v.amend(
        &Amended {
            order_id: OrderId(4),
            client_order_id: None,
            user: UserId(1),
            side: Side::Buy,
            price: Price(0),
            stop_price: Some(Price(120)),
            qty: Qty(5),
            remaining: Qty(5),
            priority_kept: true,
        },
        Timestamp(10),
    );
    let amended = amended.expect("held");
    assert_eq!(
        amended.trigger().and_then(|t| t.stop_price),
        Some(Price(120))
    );
    assert_eq!(amended.price(), None, "still a market stop");
    assert_eq!(v.trailing_since(OrderId(4)), None);
    // An amend of its quantity alone keeps its tracking.
    v.traded(Price(121), Timestamp(11));
    assert_eq!(v.trailing_since(OrderId(4)), Some(Timestamp(11)));
    let qty_only = Amended {
        order_id: OrderId(4),
        client_order_id: None,
        user: UserId(1),
        side: Side::Buy,
        price: Price(0),
        stop_price: Some(Price(120)),
        qty: Qty(4),
        remaining: Qty(4),
        priority_kept: true,
    };
    v.amend(&qty_only, Timestamp(12));
    assert_eq!(v.trailing_since(OrderId(4)), Some(Timestamp(11)));
}

#[test]
fn an_oto_pending_order_is_pending_until_released() {
    let mut v = OpenOrders::default();
    v.add_list(ListState {
        list_id: OrderId(10),
        client_list_id: None,
        user: UserId(1),
        kind: ListKind::Oto,
        orders: [(OrderId(11), None), (OrderId(12), None)],
    });
    let in_list = |a: Accepted| Accepted {
        list_id: Some(OrderId(10)),
        client_order_id: Some(ClientOrderId::new("leg").unwrap()),
        ..a
    };
    let working = v.accept(
        &in_list(accepted(
            11,
            OrderSize::Base(Qty(5)),
            TimeInForce::Gtc,
            Some(100),
        )),
        Timestamp(1),
        proto::Fees::ZERO,
    );
    assert_eq!(working.status, OrderStatus::New);
    assert!(working.is_working());
    let pending = v.accept(
        &in_list(accepted(
            12,
            OrderSize::Base(Qty(5)),
            TimeInForce::Gtc,
            Some(120),
        )),
        Timestamp(1),
        proto::Fees::ZERO,
    );
    assert_eq!(
        (pending.status, pending.working_time),
        (OrderStatus::PendingNew, None)
    );
    let list = v.list(OrderId(10)).expect("held");
    assert!(
        list.orders.iter().all(|o| o.1.is_some()),
        "client ids known"
    );
    let released = v.release(OrderId(12), Timestamp(4)).expect("held");
    assert_eq!(
        (released.status, released.working_time),
        (OrderStatus::New, Some(Timestamp(4)))
    );
    assert!(v.end_list(OrderId(10)).is_some());
    assert!(v.list(OrderId(10)).is_none());
}

#[test]
fn an_open_order_is_found_by_its_owner_only_and_reads_as_its_row() {
    let mut v = OpenOrders::default();
    let mut a = accepted(7, OrderSize::Base(Qty(300)), TimeInForce::Gtc, Some(10_000));
    a.client_order_id = Some(ClientOrderId::new("mine").expect("a valid id"));
    v.accept(&a, Timestamp(5), proto::Fees::ZERO);
    v.fill(OrderId(7), Price(10_000), Qty(100), 2, false);
    let cid = OrderRef::Client(ClientOrderId::new("mine").expect("a valid id"));
    for target in [OrderRef::Id(OrderId(7)), cid] {
        let found = v.find(UserId(1), target).map(|o| o.order_id);
        assert_eq!(found, Some(OrderId(7)), "{target:?}");
        assert!(
            v.find(UserId(2), target).is_none(),
            "{target:?}: not theirs"
        );
    }
    assert!(v.find(UserId(1), OrderRef::Id(OrderId(8))).is_none());
    let other = OrderRef::Client(ClientOrderId::new("other").expect("a valid id"));
    assert!(v.find(UserId(1), other).is_none());

    // The row says what the store's row of the same events says, and
    // reads back as the same state.
    let state = *v.find(UserId(1), OrderRef::Id(OrderId(7))).expect("open");
    let symbol = Symbol::new("BTC-EUR").expect("a valid symbol");
    let row = state.to_row(symbol);
    assert_eq!(
        (row.order_type.as_str(), row.time_in_force.as_str()),
        ("LIMIT", "GTC")
    );
    assert_eq!(
        (row.price, row.orig_qty),
        (Some(Price(10_000)), Some(Qty(300)))
    );
    assert_eq!((row.executed_qty, row.cum_quote_qty), (Qty(100), 10_000));
    assert_eq!(row.status, OrderStatus::PartiallyFilled);
    assert_eq!(row.working_time, Some(Timestamp(5)));
    let back = OrderState::from_row(&row).expect("readable");
    assert_eq!(
        back,
        OrderState {
            fees: None,
            ..state
        }
    );

    // Closed, it is gone.
    v.close(OrderId(7), OrderStatus::Canceled);
    assert!(v.find(UserId(1), OrderRef::Id(OrderId(7))).is_none());
}
