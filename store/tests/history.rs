//! The history queries (`historicalTrades`, `aggTrades`, `myTrades`,
//! `allOrders`) against naive filters of the stream, in SQLite and
//! Postgres, with Binance's parameter rules: from an id, from a start time,
//! up to an end time, the most recent; self-trades as two rows.

mod common;

use proto::{OrderId, Seq, Side, UserId};
use store::{AggTrade, FillRow, Store, TradeFilter, UserTrade};
use workload::Rng;

const SEED: u64 = 0xa99;
const COMMANDS: u64 = 1_500;

fn ms(f: &FillRow) -> u64 {
    f.timestamp.0 / common::MS
}

fn in_window(t_ms: u64, start: Option<u64>, end: Option<u64>) -> bool {
    start.is_none_or(|s| t_ms >= s) && end.is_none_or(|e| t_ms <= e)
}

/// Binance's selection: from an id or a start, the first `limit`; else the
/// last `limit`. `rows` are ascending and already filtered.
fn pick<T: Clone>(rows: &[T], from_start: bool, limit: usize) -> Vec<T> {
    if from_start {
        rows.iter().take(limit).cloned().collect()
    } else {
        rows[rows.len().saturating_sub(limit)..].to_vec()
    }
}

/// An aggregate as comparable fields: id, price, qty, first, last, time,
/// buyer is maker.
type Agg = (u64, u64, u64, u64, u64, u64, bool);

fn agg_fields(a: &AggTrade) -> Agg {
    let t = a.timestamp.0;
    (
        a.id.0,
        a.price.0,
        a.qty.0,
        a.first_trade.0,
        a.last_trade.0,
        t,
        a.buyer_is_maker,
    )
}

fn aggregates(fills: &[FillRow]) -> Vec<(Agg, u64)> {
    let mut out: Vec<(Agg, u64)> = Vec::new();
    let mut prev: Option<&FillRow> = None;
    for f in fills {
        let joins = prev.is_some_and(|p| {
            p.taker_order_id == f.taker_order_id && p.price == f.price && p.timestamp == f.timestamp
        });
        if joins {
            let a = &mut out.last_mut().unwrap().0;
            a.2 += f.qty.0;
            a.4 = f.seq.0;
        } else {
            let buyer_is_maker = f.taker_side == Side::Sell;
            let a = (
                f.seq.0,
                f.price.0,
                f.qty.0,
                f.seq.0,
                f.seq.0,
                f.timestamp.0,
                buyer_is_maker,
            );
            out.push((a, ms(f)));
        }
        prev = Some(f);
    }
    out
}

async fn agg_trades_match(store: &Store, fills: &[FillRow], rng: &mut Rng) {
    let all = aggregates(fills);
    assert!(
        all.iter().any(|(a, _)| a.3 != a.4),
        "no aggregate of several fills"
    );
    let get = |from, start, end, limit| store.agg_trades(common::pair(), from, start, end, limit);
    let fields = |v: Vec<AggTrade>| v.iter().map(agg_fields).collect::<Vec<_>>();
    let mut answered = 0;
    for _ in 0..60 {
        let f = &fills[rng.below(fills.len() as u64) as usize];
        let from = rng.percent(50).then_some(f.seq.0);
        let start = rng.percent(40).then(|| ms(f) - rng.range(0, 5_000));
        let end = rng.percent(40).then(|| ms(f) + rng.range(0, 50_000_000));
        let limit = rng.pick(&[1, 7, 1_000]);
        let want: Vec<Agg> = all
            .iter()
            .filter(|(a, t)| from.is_none_or(|id| a.0 >= id) && in_window(*t, start, end))
            .map(|(a, _)| *a)
            .collect();
        let want = pick(&want, from.is_some() || start.is_some(), limit as usize);
        let got = fields(get(from, start, end, limit).await.unwrap());
        assert_eq!(
            got, want,
            "from {from:?} start {start:?} end {end:?} limit {limit}"
        );
        answered += usize::from(!got.is_empty());
    }
    assert!(answered > 40, "only {answered} queries had answers");
    let got = fields(get(None, None, None, 1_000).await.unwrap());
    let want: Vec<Agg> = all.iter().map(|(a, _)| *a).collect();
    assert_eq!(got, pick(&want, false, 1_000), "most recent");
}

fn user_rows(fills: &[FillRow], user: UserId) -> Vec<UserTrade> {
    let mut out = Vec::new();
    for f in fills {
        for (is_maker, who) in [(true, f.maker_user), (false, f.taker_user)] {
            if who == user {
                out.push(UserTrade {
                    fill: f.clone(),
                    is_maker,
                });
            }
        }
    }
    out
}

async fn user_trades_match(store: &Store, fills: &[FillRow], rng: &mut Rng) {
    let mut answered = 0;
    for _ in 0..60 {
        let user = UserId(rng.range(1, 3));
        let f = &fills[rng.below(fills.len() as u64) as usize];
        let filter = TradeFilter {
            order_id: rng
                .percent(30)
                .then(|| rng.pick(&[f.maker_order_id, f.taker_order_id])),
            start_ms: rng.percent(30).then(|| ms(f) - rng.range(0, 5_000)),
            end_ms: rng.percent(30).then(|| ms(f) + rng.range(0, 50_000_000)),
            from_id: rng.percent(30).then_some(f.seq),
            limit: rng.pick(&[1, 5, 1_000]),
        };
        let want: Vec<UserTrade> = user_rows(fills, user)
            .into_iter()
            .filter(|t| {
                filter.order_id.is_none_or(|o| t.order_id() == o)
                    && filter.from_id.is_none_or(|s| t.fill.seq >= s)
                    && in_window(ms(&t.fill), filter.start_ms, filter.end_ms)
            })
            .collect();
        let from_start = filter.from_id.is_some() || filter.start_ms.is_some();
        let want = pick(&want, from_start, filter.limit as usize);
        let got = store.user_trades_filtered(user, common::pair(), filter);
        let got = got.await.unwrap();
        assert_eq!(got, want, "{user:?} {filter:?}");
        answered += usize::from(!got.is_empty());
    }
    assert!(answered > 30, "only {answered} queries had answers");
}

/// A self-trade comes back once per side, maker first, each with its own
/// order and direction.
async fn self_trades_come_back_twice(store: &Store, fills: &[FillRow]) {
    let f = fills
        .iter()
        .find(|f| f.maker_user == f.taker_user)
        .expect("the stream has a self-trade");
    let filter = TradeFilter {
        from_id: Some(f.seq),
        limit: 2,
        ..TradeFilter::default()
    };
    let got = store.user_trades_filtered(f.maker_user, common::pair(), filter);
    let got = got.await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|t| t.fill == *f));
    assert!(got[0].is_maker && !got[1].is_maker);
    assert_eq!(got[0].order_id(), f.maker_order_id);
    assert_eq!(got[1].order_id(), f.taker_order_id);
    assert_eq!(got[1].is_buyer(), f.taker_side == Side::Buy);
    assert_ne!(got[0].is_buyer(), got[1].is_buyer());
    let one_side = TradeFilter {
        order_id: Some(f.taker_order_id),
        ..filter
    };
    let got = store.user_trades_filtered(f.maker_user, common::pair(), one_side);
    let got = got.await.unwrap();
    assert!(!got.is_empty() && got.iter().all(|t| !t.is_maker));
    // Another user's order is like one that does not exist.
    let other = UserId(f.maker_user.0 % 3 + 1);
    let got = store.user_trades_filtered(other, common::pair(), one_side);
    assert!(got.await.unwrap().is_empty());
}

async fn all_orders_match(store: &Store, orders: &[(OrderId, UserId, u64)], rng: &mut Rng) {
    let mut answered = 0;
    for _ in 0..60 {
        let user = UserId(rng.range(1, 3));
        let (id, _, t) = orders[rng.below(orders.len() as u64) as usize];
        let t = t / common::MS;
        let from = rng.percent(40).then_some(id);
        let start = rng.percent(40).then(|| t - rng.range(0, 5_000));
        let end = rng.percent(40).then(|| t + rng.range(0, 50_000_000));
        let limit = rng.pick(&[1, 6, 1_000]);
        let want: Vec<OrderId> = orders
            .iter()
            .filter(|(o, u, created)| {
                *u == user
                    && from.is_none_or(|f| *o >= f)
                    && in_window(created / common::MS, start, end)
            })
            .map(|(o, _, _)| *o)
            .collect();
        let want = pick(&want, from.is_some() || start.is_some(), limit as usize);
        let got = store.all_orders(user, common::pair(), from, start, end, limit);
        let got: Vec<OrderId> = got.await.unwrap().iter().map(|o| o.order_id).collect();
        assert_eq!(
            got, want,
            "{user:?} from {from:?} start {start:?} end {end:?}"
        );
        answered += usize::from(!got.is_empty());
    }
    assert!(answered > 30, "only {answered} queries had answers");
}

async fn trades_from_match(store: &Store, fills: &[FillRow]) {
    let got = store.trades_from(common::pair(), None, 10).await.unwrap();
    assert_eq!(got, fills[fills.len() - 10..]);
    let s = fills[fills.len() / 2].seq;
    let got = store
        .trades_from(common::pair(), Some(s), 10)
        .await
        .unwrap();
    let at = fills.len() / 2;
    assert_eq!(got, fills[at..at + 10]);
    let past = Seq(fills.last().unwrap().seq.0 + 1);
    assert!(
        store
            .trades_from(common::pair(), Some(past), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let huge = store.trades_from(common::pair(), Some(Seq(u64::MAX)), 10);
    assert!(huge.await.unwrap().is_empty());
}

async fn history_matches(store: &Store) {
    let events = common::stream(SEED, COMMANDS);
    for b in common::batches(SEED, &events) {
        store.write_batch(&b).await.unwrap();
    }
    let fills = common::fills(&events);
    assert!(fills.len() > 1_000, "only {} fills", fills.len());
    let mut rng = Rng::new(SEED);
    trades_from_match(store, &fills).await;
    agg_trades_match(store, &fills, &mut rng).await;
    user_trades_match(store, &fills, &mut rng).await;
    self_trades_come_back_twice(store, &fills).await;
    all_orders_match(store, &common::orders(&events), &mut rng).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_in_sqlite() {
    let (store, _dir) = common::sqlite().await;
    history_matches(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_in_postgres() {
    let Some(store) = common::postgres("history").await else {
        return;
    };
    history_matches(&store).await;
}
