//! Every value the engine can emit fits the store: random streams of orders
//! at the edges of extreme pair configs (largest quantities at the largest
//! prices, whose values reach `proto::MAX_VALUE`) run through validation and
//! matching, are stored in SQLite and Postgres, and read back unchanged.

use std::collections::BTreeMap;

use engine::OrderBook;
use proto::{
    Command, CommandBody, EventBody, MAX_VALUE, NewOrder, OrderId, OrderRef, OrderSize, OrderType,
    PairConfig, Price, Qty, QuoteQty, Seq, Side, Symbol, TimeInForce, Timestamp, UserId,
};
use store::{Batch, OrderLookup, Store};
use workload::Rng;

/// Pairs whose largest order at the largest price is worth `MAX_VALUE`
/// price units, or just under it.
fn extreme_configs() -> Vec<PairConfig> {
    let base = PairConfig::simple(Symbol::new("MAX-EUR").unwrap());
    let widest = |c: &PairConfig| {
        let p = u128::from(MAX_VALUE) * proto::pow10(c.qty_scale) / u128::from(c.max_qty.0);
        Price(u64::try_from(p.min(u128::from(MAX_VALUE))).unwrap())
    };
    let mut out = Vec::new();
    // Level totals are u64, so `max_qty * max_open_orders` stays under 2^64.
    for (price_scale, qty_scale, max_qty, max_open_orders) in [
        (0, 0, 1u64 << 32, 1_000),
        (2, 8, 10_000_000_000_000_000, 1_000),
        (18, 18, 9_000_000_000_000_000, 1_000),
        (0, 0, MAX_VALUE, 2),
        (0, 0, 1, 1_000),
    ] {
        let mut c = PairConfig {
            price_scale,
            qty_scale,
            max_qty: Qty(max_qty),
            max_notional: QuoteQty(MAX_VALUE),
            max_open_orders,
            ..base
        };
        c.max_price = widest(&c);
        c.validate().unwrap();
        out.push(c);
    }
    out
}

/// A value at an edge of `1..=max` (or past it), or anywhere in it.
fn edgy(rng: &mut Rng, max: u64) -> u64 {
    match rng.below(8) {
        0 => 1,
        1 => 2,
        2 => max.saturating_sub(1).max(1),
        3 => max,
        4 => max.saturating_add(1),
        5 => u64::MAX,
        6 => 1 << 63,
        _ => rng.range(1, max),
    }
}

fn command(rng: &mut Rng, c: &PairConfig, n: u64) -> Command {
    let user = UserId(rng.range(1, 3));
    let side = if rng.percent(50) {
        Side::Buy
    } else {
        Side::Sell
    };
    let body = match rng.below(10) {
        0 => CommandBody::Cancel {
            target: OrderRef::Id(OrderId(rng.range(1, n))),
        },
        1 | 2 => CommandBody::NewOrder(NewOrder {
            order_id: OrderId(n),
            client_order_id: None,
            side,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            stp: None,
            size: if side == Side::Buy && rng.percent(50) {
                OrderSize::Quote(QuoteQty(edgy(rng, c.max_notional.0)))
            } else {
                OrderSize::Base(Qty(edgy(rng, c.max_qty.0)))
            },
            iceberg_qty: None,
            good_till: None,
        }),
        _ => CommandBody::NewOrder(NewOrder {
            order_id: OrderId(n),
            client_order_id: None,
            side,
            order_type: OrderType::Limit {
                price: Price(edgy(rng, c.max_price.0)),
            },
            time_in_force: if rng.percent(25) {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            },
            post_only: false,
            stp: None,
            size: OrderSize::Base(Qty(edgy(rng, c.max_qty.0))),
            iceberg_qty: None,
            good_till: None,
        }),
    };
    Command {
        pair: c.symbol,
        user,
        timestamp: Timestamp(1_700_000_000_000_000_000 + n),
        body,
    }
}

/// Per order: owner, filled quantity, filled value.
type Expected = BTreeMap<OrderId, (UserId, u128, u128)>;

/// Runs a random stream on config `i` into `store` and checks what it holds.
async fn run_one(store: &Store, i: usize) {
    {
        let config = extreme_configs().swap_remove(i);
        let mut book = OrderBook::new(config).unwrap();
        let mut rng = Rng::new(0x5eed ^ i as u64);
        let mut last_seq = Seq(0);
        let mut expected = Expected::new();
        let mut trades = 0;
        for chunk in 0..20u64 {
            let mut batch = Batch::default();
            for k in 1..=50u64 {
                let cmd = command(&mut rng, &config, chunk * 50 + k);
                let events = book.apply_one(&cmd);
                for e in &events {
                    match e.body {
                        EventBody::Accepted(a) => {
                            expected.insert(a.order_id, (a.user, 0, 0));
                        }
                        EventBody::Trade(t) => {
                            trades += 1;
                            let value = u128::from(t.price.0) * u128::from(t.qty.0)
                                / proto::pow10(config.qty_scale);
                            assert!(value <= u128::from(MAX_VALUE), "{t:?}");
                            for id in [t.maker_order_id, t.taker_order_id] {
                                let o = expected.get_mut(&id).unwrap();
                                o.1 += u128::from(t.qty.0);
                                o.2 += value;
                            }
                        }
                        _ => {}
                    }
                }
                batch.add_events(config.qty_scale, &mut last_seq, &events);
            }
            store.write_batch(&batch).await.unwrap();
        }
        assert!(trades > 20, "config {i}: only {trades} trades");
        check_stored(store, &book, &config, &expected).await;
    }
}

async fn check_stored(store: &Store, book: &OrderBook, c: &PairConfig, expected: &Expected) {
    assert_eq!(store.last_seqs().await.unwrap()[&c.symbol], book.last_seq());
    for f in store.all_fills(c.symbol).await.unwrap() {
        let value = u128::from(f.price.0) * u128::from(f.qty.0) / proto::pow10(c.qty_scale);
        assert_eq!(u128::from(f.quote_qty), value, "{f:?}");
        assert!(f.price <= c.max_price && f.qty <= c.max_qty, "{f:?}");
    }
    for (&id, &(user, qty, value)) in expected {
        let row = store
            .order(c.symbol, user, OrderLookup::Id(id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} not stored"));
        assert_eq!(u128::from(row.executed_qty.0), qty, "{row:?}");
        assert_eq!(u128::from(row.cum_quote_qty), value, "{row:?}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_round_trip_through_sqlite() {
    for i in 0..extreme_configs().len() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        run_one(&store, i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_round_trip_through_postgres() {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    for i in 0..extreme_configs().len() {
        let name = format!("store_range_{}_{i}_{}", std::process::id(), now_nanos());
        let url = match store::create_postgres_database(&admin, &name).await {
            Ok(url) => url,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("Postgres is required in CI: {admin}: {e}")
            }
            Err(e) => return eprintln!("SKIPPED: Postgres not reachable at {admin}: {e}"),
        };
        let store = Store::connect(&url, 2).await.unwrap();
        run_one(&store, i).await;
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Events no validated pair can produce (a fill worth more than 2^64), as a
/// foreign or corrupt log could hold them: refused with a permanent error,
/// never stored as a saturated figure, and confined to their pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_past_u64_is_refused_for_its_pair_alone() {
    use proto::{Event, Trade, TradeId};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::connect(&url, 2).await.unwrap();
    let (bad, good) = (
        Symbol::new("BAD-EUR").unwrap(),
        Symbol::new("GOOD-EUR").unwrap(),
    );
    let trade = |pair, price| Event {
        pair,
        seq: Seq(1),
        timestamp: Timestamp(1),
        body: EventBody::Trade(Trade {
            trade_id: TradeId(1),
            price: Price(price),
            qty: Qty(4),
            taker_side: Side::Buy,
            maker_order_id: OrderId(1),
            maker_user: UserId(1),
            maker_remaining: Qty(0),
            taker_order_id: OrderId(2),
            taker_user: UserId(2),
            taker_remaining: OrderSize::Base(Qty(0)),
        }),
    };
    let mut batch = Batch::default();
    batch.add_events(0, &mut Seq(0), &[trade(bad, u64::MAX / 2)]);
    batch.add_events(0, &mut Seq(0), &[trade(good, 100)]);
    let e = store.write_batch(&batch).await.unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("BAD-EUR"), "{e}");
    let mut parts = batch.split_by_pair(|_, _| None);
    assert!(
        store
            .write_batch(&parts.remove(&bad).unwrap())
            .await
            .is_err()
    );
    store
        .write_batch(&parts.remove(&good).unwrap())
        .await
        .unwrap();
    assert!(store.all_fills(bad).await.unwrap().is_empty());
    assert_eq!(store.all_fills(good).await.unwrap()[0].quote_qty, 400);
}
