//! The advanced order types as stored: a conditional order's stop price,
//! trailing delta and working time (none while it waits, the trigger's
//! time once it fires), an iceberg's slice, a GTD order's expiry and its
//! `EXPIRED` end, an OTO's pending order (`PENDING_NEW` until released),
//! list siblings (`CANCELED` when the owner canceled the list, `EXPIRED`
//! when the other order filled), and the order lists with their queries.
//! Events are written by hand, in the shapes the books emit, and folded in
//! batches cut at every point, so that a change to a row stored by an
//! earlier batch is checked as well as one to a row of the same batch.

mod common;

use proto::{
    Accepted, CancelReason, Canceled, ClientOrderId, ConditionalKind, Event, EventBody,
    ListAccepted, ListDone, ListKind, OrderId, OrderSize, OrderType, Price, Qty, Released, Seq,
    Side, TimeInForce, Timestamp, Trade, TradeId, Trigger, Triggered, UserId,
};
use store::{Batch, ListFilter, ListLookup, ListStatus, OrderLookup, OrderStatus, Store};

const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const MS: u64 = common::MS;

fn cid(s: &str) -> Option<ClientOrderId> {
    Some(ClientOrderId::new(s).unwrap())
}

/// The events of the commands, numbered from seq 1, the n-th command at
/// time `n` seconds.
fn number(commands: Vec<Vec<EventBody>>) -> Vec<Vec<Event>> {
    let mut seq = 0;
    commands
        .into_iter()
        .enumerate()
        .map(|(n, bodies)| {
            bodies
                .into_iter()
                .map(|body| {
                    seq += 1;
                    Event {
                        pair: common::pair(),
                        seq: Seq(seq),
                        timestamp: Timestamp((n as u64 + 1) * 1_000 * MS),
                        body,
                    }
                })
                .collect()
        })
        .collect()
}

fn accepted(id: u64, user: UserId, side: Side, order_type: OrderType) -> Accepted {
    Accepted {
        order_id: OrderId(id),
        client_order_id: cid(&format!("o{id}")),
        user,
        side,
        order_type,
        time_in_force: if order_type.is_market() {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        },
        post_only: false,
        size: OrderSize::Base(Qty(100)),
        iceberg_qty: None,
        good_till: None,
        list_id: None,
    }
}

fn stop(kind: ConditionalKind, stop: u64, limit: Option<u64>, trailing: Option<u32>) -> OrderType {
    OrderType::Conditional {
        kind,
        limit: limit.map(Price),
        trigger: Trigger {
            stop_price: Some(Price(stop)),
            trailing_delta: trailing,
        },
    }
}

fn limit(price: u64) -> OrderType {
    OrderType::Limit {
        price: Price(price),
    }
}

fn trade(price: u64, maker: (u64, UserId, u64), taker: (u64, UserId, u64)) -> EventBody {
    EventBody::Trade(Trade {
        trade_id: TradeId(0),
        price: Price(price),
        qty: Qty(100),
        taker_side: Side::Buy,
        maker_order_id: OrderId(maker.0),
        maker_user: maker.1,
        maker_remaining: Qty(maker.2),
        taker_order_id: OrderId(taker.0),
        taker_user: taker.1,
        taker_remaining: OrderSize::Base(Qty(taker.2)),
    })
}

fn canceled(id: u64, user: UserId, side: Side, reason: CancelReason) -> EventBody {
    EventBody::Canceled(Canceled {
        order_id: OrderId(id),
        client_order_id: cid(&format!("o{id}")),
        user,
        side,
        remaining: OrderSize::Base(Qty(100)),
        reason,
    })
}

fn list_accepted(list: u64, kind: ListKind, orders: [u64; 2]) -> EventBody {
    EventBody::ListAccepted(ListAccepted {
        list_id: OrderId(list),
        client_list_id: cid(&format!("l{list}")),
        user: ALICE,
        kind,
        orders: orders.map(OrderId),
    })
}

fn list_done(list: u64) -> EventBody {
    EventBody::ListDone(ListDone {
        list_id: OrderId(list),
        client_list_id: cid(&format!("l{list}")),
        user: ALICE,
    })
}

fn in_list(mut a: Accepted, list: u64) -> EventBody {
    a.list_id = Some(OrderId(list));
    EventBody::Accepted(a)
}

/// The scenario: every advanced feature once.
fn scenario() -> Vec<Vec<EventBody>> {
    use ConditionalKind::{StopLoss, TakeProfit};
    let gtd = Accepted {
        time_in_force: TimeInForce::Gtd,
        good_till: Some(Timestamp(5_000 * MS)),
        iceberg_qty: Some(Qty(10)),
        ..accepted(3, BOB, Side::Sell, limit(120))
    };
    vec![
        // 1: a stop-limit sell waits; a trailing take-profit too.
        vec![
            EventBody::Accepted(accepted(
                1,
                ALICE,
                Side::Sell,
                stop(StopLoss, 90, Some(89), None),
            )),
            EventBody::Accepted(accepted(
                2,
                ALICE,
                Side::Sell,
                stop(TakeProfit, 110, None, Some(150)),
            )),
        ],
        // 2: a GTD iceberg rests.
        vec![EventBody::Accepted(gtd)],
        // 3: an OTO: a working limit buy, a pending stop-loss sell.
        vec![
            list_accepted(10, ListKind::Oto, [11, 12]),
            in_list(accepted(11, ALICE, Side::Buy, limit(100)), 10),
            in_list(
                accepted(12, ALICE, Side::Sell, stop(StopLoss, 80, None, None)),
                10,
            ),
        ],
        // 4: an OCO: a limit maker sell above, a stop-loss sell below.
        vec![
            list_accepted(20, ListKind::Oco, [21, 22]),
            in_list(accepted(21, ALICE, Side::Sell, limit(130)), 20),
            in_list(
                accepted(22, ALICE, Side::Sell, stop(StopLoss, 85, Some(84), None)),
                20,
            ),
        ],
        // 5: a market sell fills the OTO's working order, which releases
        // the pending one (it waits: it is conditional); the trade at 100
        // does not fire order 1 (stop 90).
        vec![
            EventBody::Accepted(accepted(30, BOB, Side::Sell, OrderType::Market)),
            trade(100, (11, ALICE, 0), (30, BOB, 0)),
            EventBody::Released(Released {
                order_id: OrderId(12),
                client_order_id: cid("o12"),
                user: ALICE,
                side: Side::Sell,
            }),
            list_done(10),
        ],
        // 6: a buy takes the OCO's limit maker: its stop-loss sibling ends.
        vec![
            EventBody::Accepted(accepted(40, BOB, Side::Buy, limit(130))),
            trade(130, (21, ALICE, 0), (40, BOB, 0)),
            canceled(22, ALICE, Side::Sell, CancelReason::ListSibling),
            list_done(20),
        ],
        // 7: order 1 fires and rests at its limit.
        vec![EventBody::Triggered(Triggered {
            order_id: OrderId(1),
            client_order_id: cid("o1"),
            user: ALICE,
            side: Side::Sell,
            price: Price(90),
        })],
        // 8: the GTD order expires in the next command's prelude; an OCO
        // placed and canceled by its owner.
        vec![
            canceled(3, BOB, Side::Sell, CancelReason::Expired),
            list_accepted(50, ListKind::Oco, [51, 52]),
            in_list(accepted(51, ALICE, Side::Buy, limit(70)), 50),
            in_list(
                accepted(52, ALICE, Side::Buy, stop(StopLoss, 140, None, None)),
                50,
            ),
        ],
        vec![
            canceled(51, ALICE, Side::Buy, CancelReason::UserRequest),
            canceled(52, ALICE, Side::Buy, CancelReason::ListSibling),
            list_done(50),
        ],
        // 10: an OTO whose pending order is a plain limit order.
        vec![
            list_accepted(60, ListKind::Oto, [61, 62]),
            in_list(accepted(61, ALICE, Side::Buy, limit(100)), 60),
            in_list(accepted(62, ALICE, Side::Sell, limit(150)), 60),
        ],
        // 11: its working order fills: the pending one works from now.
        vec![
            EventBody::Accepted(accepted(70, BOB, Side::Sell, OrderType::Market)),
            trade(100, (61, ALICE, 0), (70, BOB, 0)),
            EventBody::Released(Released {
                order_id: OrderId(62),
                client_order_id: cid("o62"),
                user: ALICE,
                side: Side::Sell,
            }),
            list_done(60),
        ],
    ]
}

/// The scenario folded in batches cut after `cuts` commands.
fn batches(events: &[Vec<Event>], cut: usize) -> Vec<Batch> {
    let scale = common::config().qty_scale;
    let mut last = Seq(0);
    events
        .chunks(cut)
        .map(|chunk| {
            let mut b = Batch::default();
            for e in chunk {
                b.add_events(scale, &mut last, e);
            }
            b
        })
        .collect()
}

async fn check(store: &Store) {
    let order = |id: u64, user| async move {
        store
            .order(common::pair(), user, OrderLookup::Id(OrderId(id)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} stored"))
    };
    let at = |s: u64| Some(Timestamp(s * 1_000 * MS));
    let fired = order(1, ALICE).await;
    assert_eq!(fired.order_type, "STOP_LOSS_LIMIT");
    assert_eq!(
        (fired.price, fired.stop_price),
        (Some(Price(89)), Some(Price(90)))
    );
    assert_eq!(
        (fired.status, fired.working_time),
        (OrderStatus::New, at(7))
    );
    assert!(fired.is_working());
    let trailing = order(2, ALICE).await;
    assert_eq!(trailing.order_type, "TAKE_PROFIT");
    assert_eq!((trailing.price, trailing.trailing_delta), (None, Some(150)));
    assert_eq!(
        (trailing.status, trailing.working_time),
        (OrderStatus::New, None)
    );
    assert!(!trailing.is_working(), "waiting for its trigger");
    let gtd = order(3, BOB).await;
    assert_eq!(gtd.time_in_force, "GTD");
    assert_eq!(gtd.good_till, Some(Timestamp(5_000 * MS)));
    assert_eq!(gtd.iceberg_qty, Some(Qty(10)));
    assert_eq!(gtd.status, OrderStatus::Expired);
    let working = order(11, ALICE).await;
    assert_eq!(
        (working.status, working.order_list_id),
        (OrderStatus::Filled, Some(OrderId(10)))
    );
    let released = order(12, ALICE).await;
    assert_eq!(
        released.status,
        OrderStatus::New,
        "released from PENDING_NEW"
    );
    assert_eq!(
        released.working_time, None,
        "released but conditional: waits"
    );
    let sibling = order(22, ALICE).await;
    assert_eq!(sibling.status, OrderStatus::Expired, "its sibling filled");
    assert_eq!(order(21, ALICE).await.status, OrderStatus::Filled);
    assert_eq!(order(51, ALICE).await.status, OrderStatus::Canceled);
    assert_eq!(
        order(52, ALICE).await.status,
        OrderStatus::Canceled,
        "canceled with its list by the owner"
    );
    let market = order(30, BOB).await;
    assert_eq!(
        (market.status, market.working_time),
        (OrderStatus::Filled, at(5))
    );

    let open: Vec<u64> = store
        .open_orders(ALICE, None)
        .await
        .unwrap()
        .iter()
        .map(|o| o.order_id.0)
        .collect();
    assert_eq!(open, [1, 2, 12, 62], "waiting and released orders are open");
    let plain = order(62, ALICE).await;
    assert_eq!(
        (plain.status, plain.working_time),
        (OrderStatus::New, at(11))
    );

    check_lists(store).await;
}

/// The scenario's lists as stored, and the list queries.
async fn check_lists(store: &Store) {
    let oto = store
        .order_list(ALICE, ListLookup::Id(OrderId(10)), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((oto.kind, oto.status), (ListKind::Oto, ListStatus::AllDone));
    assert_eq!(oto.orders.map(|l| l.order_id.0), [11, 12]);
    assert_eq!(oto.orders[1].client_order_id, cid("o12"));
    assert_eq!(
        (oto.created_at, oto.updated_at),
        (Timestamp(3_000 * MS), Timestamp(5_000 * MS))
    );
    let by_client = store
        .order_list(ALICE, ListLookup::Client(cid("l20").unwrap()), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_client.list_id, OrderId(20));
    // A cancel names its pair: the id's list on another pair is not it.
    let on = |pair| store.order_list(ALICE, ListLookup::Client(cid("l20").unwrap()), Some(pair));
    let here = on(common::pair()).await.unwrap().map(|l| l.list_id);
    assert_eq!(here, Some(OrderId(20)));
    let elsewhere = proto::Symbol::new("ETH-EUR").unwrap();
    assert!(on(elsewhere).await.unwrap().is_none());
    let legs = store.list_orders(&by_client).await.unwrap();
    assert_eq!(
        legs.iter().map(|o| o.order_id.0).collect::<Vec<_>>(),
        [21, 22]
    );
    assert!(
        store
            .order_list(BOB, ListLookup::Id(OrderId(10)), None)
            .await
            .unwrap()
            .is_none(),
        "another user's list is unknown"
    );
    let all = |filter| async move {
        let rows = store.order_lists(ALICE, filter).await.unwrap();
        rows.iter().map(|l| l.list_id.0).collect::<Vec<_>>()
    };
    let limit = |n| ListFilter {
        limit: n,
        ..ListFilter::default()
    };
    assert_eq!(all(limit(500)).await, [10, 20, 50, 60]);
    assert_eq!(all(limit(2)).await, [50, 60], "the last ones");
    let from = ListFilter {
        from_id: Some(OrderId(20)),
        ..limit(1)
    };
    assert_eq!(all(from).await, [20]);
    let window = ListFilter {
        start_ms: Some(4_000),
        end_ms: Some(8_000),
        ..limit(500)
    };
    assert_eq!(all(window).await, [20, 50]);
    assert_eq!(store.max_order_id().await.unwrap(), 70);
    let lists = store.open_order_lists(ALICE).await.unwrap();
    assert!(lists.is_empty(), "every list is done");
    let ids = [11, 12, 30, 999].map(OrderId);
    let orders = store.trade_orders(common::pair(), &ids).await.unwrap();
    assert_eq!(orders.len(), 3, "every stored order: {orders:?}");
    let in_lists: Vec<_> = orders.values().filter(|o| o.list_id.is_some()).collect();
    assert_eq!(in_lists.len(), 2, "only orders of a list: {in_lists:?}");
    assert_eq!(orders[&OrderId(12)].list_id, Some(OrderId(10)));
    assert!(orders.values().all(|o| o.accepted_seq.0 > 0), "{orders:?}");
}

#[tokio::test]
async fn advanced_orders_and_lists_are_stored_in_sqlite() {
    let events = number(scenario());
    for cut in 1..=events.len() {
        let (store, _dir) = common::sqlite().await;
        for b in batches(&events, cut) {
            store.write_batch(&b).await.unwrap();
        }
        check(&store).await;
    }
}

#[tokio::test]
async fn advanced_orders_and_lists_are_stored_in_postgres() {
    let Some(store) = common::postgres("advanced").await else {
        return;
    };
    let events = number(scenario());
    for b in batches(&events, 2) {
        store.write_batch(&b).await.unwrap();
    }
    check(&store).await;
}

#[tokio::test]
async fn open_lists_are_those_not_done() {
    let events = number(scenario());
    let (store, _dir) = common::sqlite().await;
    for b in batches(&events[..5], 2) {
        store.write_batch(&b).await.unwrap();
    }
    let open = store.open_order_lists(ALICE).await.unwrap();
    assert_eq!(open.iter().map(|l| l.list_id.0).collect::<Vec<_>>(), [20]);
    assert!(store.open_order_lists(BOB).await.unwrap().is_empty());
}

#[test]
fn an_open_list_is_still_executing_and_a_pending_order_pending() {
    let events = number(scenario());
    let mut b = Batch::default();
    let mut last = Seq(0);
    for e in &events[..4] {
        b.add_events(2, &mut last, e);
    }
    let list = b.new_list(common::pair(), OrderId(20)).unwrap();
    assert_eq!(list.status, ListStatus::Executing);
    let pending = b.new_order(common::pair(), OrderId(12)).unwrap();
    assert_eq!(
        (pending.status, pending.working_time),
        (OrderStatus::PendingNew, None)
    );
    let working = b.new_order(common::pair(), OrderId(11)).unwrap();
    assert_eq!(working.working_time, Some(Timestamp(3_000 * MS)));
}

/// Whether the store holds, as open, exactly the orders `book` holds (on
/// the book or waiting), each as the book has it, and its open lists.
/// Returns how many orders wait and how many lists are open.
async fn holds_what_the_book_holds(store: &Store, book: &engine::OrderBook) -> (usize, usize) {
    use std::collections::BTreeMap;
    let pair = book.config().symbol;
    let open: BTreeMap<u64, store::OrderRow> = store
        .open_orders_of_pair(pair)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.order_id.0, o))
        .collect();
    let (mut held, mut waiting) = (0, 0);
    for r in book.resting_orders() {
        held += 1;
        let o = &open[&r.order_id.0];
        let filled = Qty(r.qty.0 - r.remaining.0);
        assert_eq!((o.orig_qty, o.executed_qty), (Some(r.qty), filled), "{o:?}");
        assert_eq!(
            (o.price, o.iceberg_qty),
            (Some(r.price), r.iceberg_qty),
            "{o:?}"
        );
        assert!(o.working_time.is_some(), "a resting order works: {o:?}");
        let status = if filled.is_zero() {
            OrderStatus::New
        } else {
            OrderStatus::PartiallyFilled
        };
        assert_eq!(o.status, status, "{o:?}");
    }
    for w in book.waiting_orders() {
        held += 1;
        waiting += 1;
        let o = &open[&w.order.order_id.0];
        let status = match w.wait {
            engine::WaitFor::List => OrderStatus::PendingNew,
            engine::WaitFor::Trigger { .. } => OrderStatus::New,
        };
        assert_eq!((o.status, o.working_time), (status, None), "{o:?}");
        let trigger = w.order.order_type.trigger();
        assert_eq!(o.stop_price, trigger.and_then(|t| t.stop_price), "{o:?}");
        assert_eq!(o.trailing_delta, trigger.and_then(|t| t.trailing_delta));
        assert_eq!(o.price, w.order.order_type.price(), "{o:?}");
        assert_eq!(o.order_list_id, w.list_id, "{o:?}");
    }
    assert_eq!(open.len(), held, "no other order is open");
    let lists: Vec<(u64, [u64; 2])> = store
        .open_order_lists_of_pair(pair)
        .await
        .unwrap()
        .iter()
        .map(|l| (l.list_id.0, l.orders.map(|o| o.order_id.0)))
        .collect();
    let mut book_lists: Vec<(u64, [u64; 2])> = book
        .open_lists()
        .iter()
        .map(|l| (l.list_id.0, l.legs.map(|o| o.0)))
        .collect();
    book_lists.sort_unstable();
    assert_eq!(lists, book_lists);
    (waiting, lists.len())
}

/// The chaos mix (every order type and list, expiries, crossing,
/// self-trades, refusals) through the real book, stored in batches of
/// random sizes: the store's open orders and lists are the book's, every
/// few hundred commands and at the end.
#[tokio::test]
async fn the_store_holds_what_the_book_holds_through_chaos() {
    let config = proto::PairConfig {
        max_qty: Qty(1_000_000),
        max_open_orders: 10_000,
        ..proto::PairConfig::simple(common::pair())
    };
    let (mut waiting, mut lists) = (0, 0);
    for seed in 0..3 {
        let mut book = engine::OrderBook::new(config).unwrap();
        let mut generator = workload::Generator::new(workload::Mix::Chaos, seed, &config);
        let mut rng = workload::Rng::new(seed ^ 0x5709e);
        let (store, _dir) = common::sqlite().await;
        let (mut last, mut batch) = (Seq(0), Batch::default());
        for n in 1..=2_000 {
            let cmd = generator.next_command();
            let events = book.apply_one(&cmd);
            generator.observe(&events);
            batch.add_events(config.qty_scale, &mut last, &events);
            if rng.percent(15) || n % 400 == 0 {
                store
                    .write_batch(&std::mem::take(&mut batch))
                    .await
                    .unwrap();
            }
            if n % 400 == 0 {
                let (w, l) = holds_what_the_book_holds(&store, &book).await;
                waiting += w;
                lists += l;
            }
        }
    }
    assert!(
        waiting > 0 && lists > 0,
        "the stream holds waiting orders and lists"
    );
}
