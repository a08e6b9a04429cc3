//! The holds of the advanced order types, rule by rule, through the real
//! order book (the scenario files in `testdata/19_*` to `27_*` walk through
//! each type; these check what a file cannot show: the holds' own records,
//! refusals that change nothing, snapshots with lists open). Every input is
//! audited (see `common`).

mod common;

use accounts::{Fees, Input, Output, PlaceList, RiskCode, Shard};
use common::{Harness, btc_eur, iceberg, limit, list, market, post_only, stop, sym};
use proto::{
    CancelReason, Canceled, CommandKind, ConditionalKind, Event, EventBody, ListDone, ListKind,
    OrderId, OrderSize, Price, Qty, QuoteQty, RejectCode, Rejected, Released, Seq, Side, Timestamp,
    Triggered, UserId,
};

const NO_FEES: Fees = Fees::ZERO;

fn harness() -> Harness {
    Harness::new(&[btc_eur()])
}

/// A trade at `price` between two orders of user 9, so conditional orders
/// have a last price to be checked against.
fn trade_at(h: &mut Harness, price: u64, id: u64) {
    let pair = sym("BTC-EUR");
    h.deposit(9, "BTC", 1);
    h.deposit(9, "EUR", u128::from(price));
    h.place(pair, 9, limit(id, Side::Sell, price, 1), NO_FEES)
        .expect("ask");
    h.place(pair, 9, limit(id + 1, Side::Buy, price, 1), NO_FEES)
        .expect("bid");
}

/// A sell OCO of `qty`: a limit maker at 110 and a stop-loss-limit at 90
/// firing at 95.
fn sell_oco(id: u64, qty: u64) -> proto::NewOrderList {
    list(
        id,
        ListKind::Oco,
        [
            post_only(limit(id + 1, Side::Sell, 110, qty)),
            stop(
                id + 2,
                Side::Sell,
                ConditionalKind::StopLoss,
                Some(90),
                95,
                OrderSize::Base(Qty(qty)),
            ),
        ],
    )
}

#[test]
fn an_oco_locks_once_under_its_list_and_its_orders_only_size_it() {
    let pair = sym("BTC-EUR");
    let mut h = harness();
    trade_at(&mut h, 100, 1);
    h.deposit(1, "BTC", 10);
    h.place_list(pair, 1, sell_oco(10, 10), NO_FEES)
        .expect("oco");
    let l = h.shard.list_hold(pair, OrderId(10)).expect("list");
    assert_eq!(
        (l.kind, l.amount, l.orders),
        (ListKind::Oco, 10, [OrderId(11), OrderId(12)])
    );
    assert_eq!((h.free(1, "BTC"), h.locked(1, "BTC")), (0, 10));
    // Each order records what it would lock alone, and its list.
    for id in [11, 12] {
        let hold = h.shard.hold(pair, OrderId(id)).expect("order");
        assert_eq!((hold.amount, hold.list), (10, Some(OrderId(10))));
    }
    assert!(
        h.shard
            .hold(pair, OrderId(12))
            .is_some_and(|x| x.conditional)
    );
    assert_eq!(h.shard.list_holds().count(), 1);
    // Cancel the list: both orders end, the list is forgotten.
    h.cancel_list(pair, 1, 10);
    assert_eq!(h.shard.list_hold(pair, OrderId(10)), None);
    assert_eq!(
        (h.free(1, "BTC"), h.locked(1, "BTC"), h.shard.open_holds()),
        (10, 0, 0)
    );
}

#[test]
fn an_amend_of_an_oco_order_locks_into_its_lists_hold() {
    let pair = sym("BTC-EUR");
    let mut h = harness();
    trade_at(&mut h, 100, 1);
    h.deposit(1, "BTC", 16);
    h.place_list(pair, 1, sell_oco(10, 10), NO_FEES)
        .expect("oco");
    // The limit maker up to 15: the list needs 15 now, 5 more.
    let out = h.input(Input::Amend(accounts::Amend {
        pair,
        user: UserId(1),
        order_id: OrderId(11),
        new_qty: Some(Qty(15)),
        new_price: None,
    }));
    assert!(matches!(out[..], [Output::Locked { amount: 5, .. }]));
    assert_eq!(
        h.shard.list_hold(pair, OrderId(10)).map(|l| l.amount),
        Some(15)
    );
    // The other order cannot go past what is free (1 more at most).
    let refused = h.input(Input::Amend(accounts::Amend {
        pair,
        user: UserId(1),
        order_id: OrderId(12),
        new_qty: Some(Qty(17)),
        new_price: None,
    }));
    assert_eq!(
        refused,
        vec![Output::Rejected(RiskCode::InsufficientBalance)]
    );
    assert_eq!(h.locked(1, "BTC"), 15);
}

#[test]
fn a_refused_list_changes_nothing_even_when_its_second_order_is_the_one_short() {
    let pair = sym("BTC-EUR");
    let mut h = harness();
    h.deposit(1, "BTC", 5);
    h.deposit(1, "EUR", 100);
    let before = h.shard.state_hash();
    // An OTO selling 5 BTC (there) then buying 2 @ 100 (200 EUR: not there).
    let oto = list(
        1,
        ListKind::Oto,
        [limit(2, Side::Sell, 120, 5), limit(3, Side::Buy, 100, 2)],
    );
    assert_eq!(
        h.place_list(pair, 1, oto, NO_FEES),
        Err(RiskCode::InsufficientBalance)
    );
    // Two orders with one id, and an OCO on both sides.
    let same = list(
        4,
        ListKind::Oto,
        [limit(5, Side::Sell, 120, 1), limit(5, Side::Sell, 130, 1)],
    );
    assert_eq!(
        h.place_list(pair, 1, same, NO_FEES),
        Err(RiskCode::DuplicateOrder)
    );
    let two_sides = list(
        6,
        ListKind::Oco,
        [limit(7, Side::Sell, 120, 1), limit(8, Side::Buy, 90, 1)],
    );
    assert_eq!(
        h.place_list(pair, 1, two_sides, NO_FEES),
        Err(RiskCode::UnsupportedOrder)
    );
    // A market buy by base without a budget in a list, and bad fees.
    let unbounded = list(
        9,
        ListKind::Oto,
        [
            limit(10, Side::Sell, 120, 1),
            market(11, Side::Buy, OrderSize::Base(Qty(1))),
        ],
    );
    assert_eq!(
        h.place_list(pair, 1, unbounded, NO_FEES),
        Err(RiskCode::BudgetRequired)
    );
    let bad_fees = Fees {
        maker_bps: 30,
        taker_bps: 20,
    };
    assert_eq!(
        h.place_list(pair, 1, sell_oco(12, 1), bad_fees),
        Err(RiskCode::BadFees)
    );
    assert_eq!(h.shard.state_hash(), before, "refusals change nothing");
}

#[test]
fn the_list_events_move_no_money_and_a_refused_list_releases_both_orders() {
    let pair = sym("BTC-EUR");
    let event = |seq: u64, body| Event {
        pair,
        seq: Seq(seq),
        timestamp: Timestamp(1),
        body,
    };
    let user = UserId(1);
    let quiet = [
        EventBody::Triggered(Triggered {
            order_id: OrderId(2),
            client_order_id: None,
            user,
            side: Side::Sell,
            price: Price(100),
        }),
        EventBody::Released(Released {
            order_id: OrderId(2),
            client_order_id: None,
            user,
            side: Side::Sell,
        }),
        EventBody::ListDone(ListDone {
            list_id: OrderId(1),
            client_list_id: None,
            user,
        }),
    ];
    for body in quiet {
        assert!(!accounts::moves_money(&event(1, body)), "{body:?}");
    }
    let expired = EventBody::Canceled(Canceled {
        order_id: OrderId(2),
        client_order_id: None,
        user,
        side: Side::Sell,
        remaining: OrderSize::Base(Qty(1)),
        reason: CancelReason::Expired,
    });
    assert!(accounts::moves_money(&event(1, expired)));
    // The book refusing a list: both orders' holds go back, by the list's id.
    let mut shard = Shard::new(&[btc_eur()]).expect("pair");
    let btc = shard.asset_id("BTC").expect("BTC");
    shard.apply_one(&Input::Deposit {
        user,
        asset: btc,
        amount: 10,
        reference: accounts::Reference(1),
    });
    let oto = list(
        1,
        ListKind::Oto,
        [limit(2, Side::Sell, 120, 4), limit(3, Side::Sell, 130, 6)],
    );
    shard.apply_one(&Input::PlaceList(PlaceList {
        pair,
        user,
        list: oto,
        fees: NO_FEES,
    }));
    assert_eq!(shard.balance(user, btc).locked, 10);
    let refused = EventBody::Rejected(Rejected {
        user,
        command: CommandKind::NewOrderList,
        order_id: Some(OrderId(1)),
        client_order_id: None,
        code: RejectCode::InvalidOrderList,
    });
    assert!(accounts::moves_money(&event(1, refused)));
    // Someone else's refusal of a list with that id changes nothing.
    let theirs = EventBody::Rejected(Rejected {
        user: UserId(2),
        command: CommandKind::NewOrderList,
        order_id: Some(OrderId(1)),
        client_order_id: None,
        code: RejectCode::DuplicateOrderListId,
    });
    shard.apply_one(&Input::Settle(event(1, theirs)));
    assert_eq!(shard.balance(user, btc).locked, 10);
    let out = shard.apply_one(&Input::Settle(event(2, refused)));
    let released: u128 = out
        .iter()
        .map(|o| match o {
            Output::Released { amount, .. } => *amount,
            _ => 0,
        })
        .sum();
    assert_eq!(released, 10);
    assert_eq!(shard.balance(user, btc).locked, 0);
    assert_eq!((shard.open_holds(), shard.list_holds().count()), (0, 0));
    assert_eq!(shard.audit(), Ok(()));
}

#[test]
fn a_plain_market_order_is_not_amendable_but_a_waiting_conditional_one_is() {
    let pair = sym("BTC-EUR");
    let mut shard = Shard::new(&[btc_eur()]).expect("pair");
    let (btc, eur) = (
        shard.asset_id("BTC").expect("BTC"),
        shard.asset_id("EUR").expect("EUR"),
    );
    let user = UserId(1);
    for (asset, reference) in [(btc, 1), (eur, 2)] {
        shard.apply_one(&Input::Deposit {
            user,
            asset,
            amount: 1_000,
            reference: accounts::Reference(reference),
        });
    }
    let place = |order| {
        Input::Place(accounts::Place {
            pair,
            user,
            order,
            fees: NO_FEES,
        })
    };
    let amend = |id: u64, qty: u64| {
        Input::Amend(accounts::Amend {
            pair,
            user,
            order_id: OrderId(id),
            new_qty: Some(Qty(qty)),
            new_price: None,
        })
    };
    shard.apply_one(&place(market(1, Side::Sell, OrderSize::Base(Qty(5)))));
    assert_eq!(
        shard.apply_one(&amend(1, 7)),
        vec![Output::Rejected(RiskCode::NotAmendable)]
    );
    let stop_sell = stop(
        2,
        Side::Sell,
        ConditionalKind::StopLoss,
        None,
        90,
        OrderSize::Base(Qty(5)),
    );
    shard.apply_one(&place(stop_sell));
    assert!(matches!(
        shard.apply_one(&amend(2, 8))[..],
        [Output::Locked { amount: 3, .. }]
    ));
    // A waiting market buy holds its quote amount: no amend changes it.
    let stop_buy = stop(
        3,
        Side::Buy,
        ConditionalKind::StopLoss,
        None,
        110,
        OrderSize::Quote(QuoteQty(500)),
    );
    shard.apply_one(&place(stop_buy));
    assert!(matches!(
        shard.apply_one(&amend(3, 9))[..],
        [Output::Locked { amount: 0, .. }]
    ));
    assert_eq!(shard.balance(user, eur).locked, 500);
    assert_eq!(shard.audit(), Ok(()));
}

#[test]
fn a_snapshot_with_lists_icebergs_and_waiting_orders_open_continues_identically() {
    let pair = sym("BTC-EUR");
    let mut h = harness();
    trade_at(&mut h, 100, 1);
    h.deposit(1, "BTC", 30);
    h.deposit(2, "EUR", 100_000);
    h.place_list(pair, 1, sell_oco(10, 10), NO_FEES)
        .expect("oco");
    let oto = list(
        20,
        ListKind::Oto,
        [limit(21, Side::Buy, 95, 5), limit(22, Side::Sell, 130, 5)],
    );
    h.deposit(1, "EUR", 1_000);
    h.place_list(pair, 1, oto, NO_FEES).expect("oto");
    h.place(pair, 2, iceberg(limit(30, Side::Buy, 99, 30), 5), NO_FEES)
        .expect("iceberg");
    let bytes = h.shard.snapshot();
    let (from_input, from_output) = (h.inputs.len(), h.outputs.len());
    // Then: the OCO's limit maker trades (its stop is canceled), the
    // iceberg fills slice by slice, the OTO's working buy fills (its sell is
    // released).
    h.deposit(3, "EUR", 10_000);
    h.deposit(3, "BTC", 100);
    h.place(pair, 3, limit(40, Side::Buy, 110, 3), NO_FEES)
        .expect("buy");
    h.place(pair, 3, limit(41, Side::Sell, 95, 40), NO_FEES)
        .expect("sell");
    let mut restored = Shard::restore(&bytes).expect("restore");
    let mut outputs = Vec::new();
    for i in &h.inputs[from_input..] {
        restored.apply(i, &mut outputs);
    }
    assert_eq!(outputs, h.outputs[from_output..]);
    assert_eq!(restored.state_hash(), h.shard.state_hash());
    assert!(
        h.shard.list_hold(pair, OrderId(10)).is_some(),
        "the OCO's survivor holds"
    );
    assert!(
        h.shard.list_hold(pair, OrderId(20)).is_some(),
        "the OTO's sell holds"
    );
}
