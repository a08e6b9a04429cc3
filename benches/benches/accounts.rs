//! Criterion benchmarks of the risk shard: the pre-trade check (a place that
//! locks, or is refused) and settlement (a trade both of whose sides the
//! shard holds, and the release when an order ends).
//! Run: `cargo bench -p benches --bench accounts`.
//!
//! The events are built by hand, not by a book, so only the shard is timed.
//! A throughput element is one shard input.

use std::hint::black_box;

use accounts::{Fees, Input, Output, Place, Reference, Shard};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proto::{
    CancelReason, Canceled, Event, EventBody, NewOrder, OrderId, OrderSize, OrderType, PairConfig,
    Price, Qty, Seq, Side, Symbol, TimeInForce, Timestamp, Trade, TradeId, UserId,
};

/// Funded users the orders cycle through: the accounts a live shard touches.
const USERS: u64 = 10_000;
const FEES: Fees = Fees {
    maker_bps: 10,
    taker_bps: 20,
};

fn pair() -> Symbol {
    Symbol::new("BTC-EUR").expect("symbol")
}

/// A shard whose users all hold plenty of both assets.
fn funded() -> Shard {
    let mut shard = Shard::new(&[PairConfig::simple(pair())]).expect("pair");
    let mut out = Vec::new();
    for user in 0..USERS {
        for asset in 0..2 {
            shard.apply(
                &Input::Deposit {
                    user: UserId(user),
                    asset: accounts::AssetId(asset),
                    amount: 1 << 100,
                    reference: Reference(user * 2 + u64::from(asset)),
                },
                &mut out,
            );
        }
    }
    shard
}

fn place(id: u64, user: u64, side: Side, qty: u64) -> Input {
    Input::Place(Place {
        pair: pair(),
        user: UserId(user),
        order: NewOrder::plain(
            OrderId(id),
            side,
            OrderType::Limit {
                price: Price(10_000 + id % 100),
            },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(qty)),
        ),
        fees: FEES,
    })
}

fn event(seq: u64, body: EventBody) -> Input {
    Input::Settle(Event {
        pair: pair(),
        seq: Seq(seq),
        timestamp: Timestamp(seq),
        body,
    })
}

fn cancel(id: u64, user: u64, side: Side) -> EventBody {
    EventBody::Canceled(Canceled {
        order_id: OrderId(id),
        client_order_id: None,
        user: UserId(user),
        side,
        remaining: OrderSize::Base(Qty(10)),
        reason: CancelReason::UserRequest,
    })
}

fn trade(seq: u64, maker: (u64, u64), taker: (u64, u64), qty: u64) -> EventBody {
    EventBody::Trade(Trade {
        trade_id: TradeId(seq),
        price: Price(10_000 + maker.0 % 100),
        qty: Qty(qty),
        taker_side: Side::Buy,
        maker_order_id: OrderId(maker.0),
        maker_user: UserId(maker.1),
        maker_remaining: Qty::ZERO,
        taker_order_id: OrderId(taker.0),
        taker_user: UserId(taker.1),
        taker_remaining: OrderSize::Base(Qty::ZERO),
    })
}

fn shard_inputs(c: &mut Criterion) {
    let mut g = c.benchmark_group("accounts");
    let mut out: Vec<Output> = Vec::with_capacity(16);

    // A check that locks, then the cancel that releases it: 2 inputs.
    g.throughput(Throughput::Elements(2));
    let mut shard = funded();
    let mut k = 0u64;
    g.bench_function("place_then_cancel", |b| {
        b.iter(|| {
            k += 1;
            let user = k % USERS;
            out.clear();
            shard.apply(black_box(&place(k, user, Side::Buy, 10)), &mut out);
            shard.apply(black_box(&event(k, cancel(k, user, Side::Buy))), &mut out);
        })
    });

    // A check refused for lack of funds: 1 input, nothing changes.
    g.throughput(Throughput::Elements(1));
    let mut shard = funded();
    let broke = USERS + 1;
    g.bench_function("place_refused", |b| {
        b.iter(|| {
            k += 1;
            out.clear();
            shard.apply(black_box(&place(k, broke, Side::Sell, 10)), &mut out);
        })
    });

    // Two checks (a maker sell, a taker buy) and the trade that fills both: 3 inputs.
    g.throughput(Throughput::Elements(3));
    let mut shard = funded();
    let mut seq = 0u64;
    g.bench_function("place_place_trade", |b| {
        b.iter(|| {
            k += 2;
            seq += 1;
            let (maker, taker) = ((k, k % USERS), (k + 1, (k + 7) % USERS));
            out.clear();
            shard.apply(
                black_box(&place(maker.0, maker.1, Side::Sell, 10)),
                &mut out,
            );
            shard.apply(black_box(&place(taker.0, taker.1, Side::Buy, 10)), &mut out);
            shard.apply(
                black_box(&event(seq, trade(seq, maker, taker, 10))),
                &mut out,
            );
        })
    });
    g.finish();
    // What was timed did what it claims: every trade settled both sides and
    // every hold was released.
    let fills = out
        .iter()
        .filter(|o| matches!(o, Output::Filled { .. }))
        .count();
    assert_eq!(fills, 2, "the last trade settled both sides: {out:?}");
    assert_eq!(shard.open_holds(), 0);
    assert_eq!(shard.audit(), Ok(()));
}

criterion_group!(benches, shard_inputs);
criterion_main!(benches);
