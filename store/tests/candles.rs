//! Candles, klines and ticker windows against a naive fold of the fills,
//! in SQLite and Postgres: stored tiers stay exact when batches are written
//! twice or replayed from scratch, the migration backfills candles of fills
//! stored before it, and klines and windows answer as Binance does.

mod common;

use std::collections::BTreeMap;

use common::{DAY, MS, SEC};
use proto::{Price, Seq, Side};
use store::{Batch, Candle, FillRow, Interval, KlineWindow, Store, WindowStats};
use workload::Rng;

const SEED: u64 = 0xc0ffee;
const COMMANDS: u64 = 1_500;
const DAY_MS: i64 = 86_400_000;

/// The bucket open time (UTC ms) of `t` (UTC ms): an implementation apart
/// from the store's.
fn bucket(iv: Interval, t: i64, off: i64) -> i64 {
    let local = t + off;
    let open = match iv {
        Interval::Mo1 => month_start(local),
        Interval::W1 => (local - 4 * DAY_MS).div_euclid(7 * DAY_MS) * 7 * DAY_MS + 4 * DAY_MS,
        _ => {
            let d = i64::try_from(iv.duration_ms().unwrap()).unwrap();
            local.div_euclid(d) * d
        }
    };
    open - off
}

fn next_bucket(iv: Interval, open: i64, off: i64) -> i64 {
    match iv {
        Interval::Mo1 => month_start(open + off + 32 * DAY_MS) - off,
        _ => open + i64::try_from(iv.duration_ms().unwrap()).unwrap(),
    }
}

/// The start (ms) of the month holding `t` (ms, after 1970), by counting.
fn month_start(t: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut days, mut y) = (0, 1970);
    while (days + if leap(y) { 366 } else { 365 }) * DAY_MS <= t {
        days += if leap(y) { 366 } else { 365 };
        y += 1;
    }
    for len in [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ] {
        if (days + len) * DAY_MS > t {
            break;
        }
        days += len;
    }
    days * DAY_MS
}

fn ms(f: &FillRow) -> i64 {
    i64::try_from(f.timestamp.0 / MS).unwrap()
}

/// One fill as a candle of bucket `[open, next)`.
fn one(f: &FillRow, open: i64, next: i64) -> Candle {
    let buy = f.taker_side == Side::Buy;
    let (q, v) = (u128::from(f.qty.0), u128::from(f.quote_qty));
    Candle {
        open_time_ms: open as u64,
        close_time_ms: (next - 1) as u64,
        open: f.price,
        high: f.price,
        low: f.price,
        close: f.price,
        volume: q,
        quote_volume: v,
        trades: 1,
        taker_buy_volume: if buy { q } else { 0 },
        taker_buy_quote_volume: if buy { v } else { 0 },
        first_trade: Some(f.seq),
        last_trade: Some(f.seq),
    }
}

/// Adds `f`, later by seq than every fill in `c`.
fn add(c: &mut Candle, f: &FillRow) {
    let o = one(f, 0, 1);
    c.high = c.high.max(f.price);
    c.low = c.low.min(f.price);
    c.close = f.price;
    c.last_trade = Some(f.seq);
    c.trades += 1;
    c.volume += o.volume;
    c.quote_volume += o.quote_volume;
    c.taker_buy_volume += o.taker_buy_volume;
    c.taker_buy_quote_volume += o.taker_buy_quote_volume;
}

/// The reference klines of one interval and offset: the buckets with
/// trades, and flat ones made between them on demand.
struct Reference {
    iv: Interval,
    off: i64,
    by: BTreeMap<i64, Candle>,
}

impl Reference {
    fn new(fills: &[FillRow], iv: Interval, off: i64) -> Reference {
        let mut by: BTreeMap<i64, Candle> = BTreeMap::new();
        for f in fills {
            let open = bucket(iv, ms(f), off);
            match by.get_mut(&open) {
                Some(c) => add(c, f),
                None => {
                    by.insert(open, one(f, open, next_bucket(iv, open, off)));
                }
            }
        }
        Reference { iv, off, by }
    }

    /// The first bucket opening at or after `t`.
    fn at_or_after(&self, t: i64) -> i64 {
        let o = bucket(self.iv, t, self.off);
        if o < t {
            next_bucket(self.iv, o, self.off)
        } else {
            o
        }
    }

    /// Up to `n` candles opening in `from..=to`, never before the first
    /// trade's bucket nor after the last's.
    fn forward(&self, from: i64, to: i64, n: usize) -> Vec<Candle> {
        let (Some(&first), Some(&last)) = (self.by.keys().next(), self.by.keys().next_back())
        else {
            return Vec::new();
        };
        let (mut open, to) = (from.max(first), to.min(last));
        let mut prev = self.by.range(..open).next_back().map(|(_, c)| c.close);
        let mut out = Vec::new();
        while open <= to && out.len() < n {
            let next = next_bucket(self.iv, open, self.off);
            let c = self
                .by
                .get(&open)
                .copied()
                .or(prev.map(|p| flat(p, open, next)));
            if let Some(c) = c {
                prev = Some(c.close);
                out.push(c);
            }
            open = next;
        }
        out
    }

    /// The last `n` candles opening at or before `to`.
    fn backward(&self, to: i64, n: usize) -> Vec<Candle> {
        let Some(&last) = self.by.keys().next_back() else {
            return Vec::new();
        };
        let to = bucket(self.iv, to, self.off).min(last);
        let mut from = to;
        for _ in 1..n {
            from = bucket(self.iv, from - 1, self.off);
        }
        self.forward(from, to, n)
    }
}

fn flat(p: Price, open: i64, next: i64) -> Candle {
    Candle {
        open_time_ms: open as u64,
        close_time_ms: (next - 1) as u64,
        open: p,
        high: p,
        low: p,
        close: p,
        volume: 0,
        quote_volume: 0,
        trades: 0,
        taker_buy_volume: 0,
        taker_buy_quote_volume: 0,
        first_trade: None,
        last_trade: None,
    }
}

fn flat_fill(p: Price) -> FillRow {
    FillRow {
        pair: common::pair(),
        seq: Seq(0),
        price: p,
        qty: proto::Qty(0),
        quote_qty: 0,
        taker_side: Side::Sell,
        maker_order_id: proto::OrderId(0),
        maker_user: proto::UserId(0),
        taker_order_id: proto::OrderId(0),
        taker_user: proto::UserId(0),
        timestamp: proto::Timestamp(0),
    }
}

/// The stored tier of `iv`, as the reference has it (no flat candles).
fn tier_reference(fills: &[FillRow], iv: Interval) -> Vec<Candle> {
    Reference::new(fills, iv, 0).by.into_values().collect()
}

async fn check_tiers(store: &Store, fills: &[FillRow], when: &str) {
    assert_eq!(
        store.all_fills(common::pair()).await.unwrap(),
        fills,
        "{when}"
    );
    for iv in [Interval::S1, Interval::M1, Interval::H1, Interval::D1] {
        let stored = store.stored_candles(common::pair(), iv).await.unwrap();
        assert_eq!(
            stored,
            tier_reference(fills, iv),
            "{when}: tier {}",
            iv.as_str()
        );
    }
}

/// Every order of the stream's users, as stored.
async fn all_orders(store: &Store) -> Vec<store::OrderRow> {
    let mut out = Vec::new();
    for user in 1..=3 {
        let rows = store.all_orders(
            proto::UserId(user),
            common::pair(),
            None,
            None,
            None,
            100_000,
        );
        out.extend(rows.await.unwrap());
    }
    out
}

/// Writes the stream, then every batch again (a retry after a commit whose
/// answer was lost), then the whole stream as one batch from seq 0 (a
/// replay with its progress lost): the candles never count a fill twice.
async fn duplicates_count_once(store: &Store) {
    let events = common::stream(SEED, COMMANDS);
    let fills = common::fills(&events);
    assert!(fills.len() > 1_000, "only {} fills", fills.len());
    let batches = common::batches(SEED, &events);
    for b in &batches {
        store.write_batch(b).await.unwrap();
    }
    check_tiers(store, &fills, "written once").await;
    let orders = all_orders(store).await;
    for b in &batches {
        store.write_batch(b).await.unwrap();
    }
    check_tiers(store, &fills, "every batch written twice").await;
    // Order updates add deltas: a batch written again must not add them
    // again.
    assert_eq!(
        all_orders(store).await,
        orders,
        "orders after every batch twice"
    );
    let mut replay = Batch::default();
    for e in &events {
        replay.add_events(common::config().qty_scale, &mut Seq(0), e);
    }
    store.write_batch(&replay).await.unwrap();
    check_tiers(store, &fills, "replayed from scratch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candles_count_each_fill_once_in_sqlite() {
    let (store, _dir) = common::sqlite().await;
    duplicates_count_once(&store).await;
    klines_match_the_fills(&store).await;
    windows_match_the_fills(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candles_count_each_fill_once_in_postgres() {
    let Some(store) = common::postgres("candles").await else {
        return;
    };
    duplicates_count_once(&store).await;
    klines_match_the_fills(&store).await;
    windows_match_the_fills(&store).await;
}

/// Every interval at several offsets: all of it, from a start inside the
/// range, up to an end, and both.
async fn klines_match_the_fills(store: &Store) {
    let fills = store.all_fills(common::pair()).await.unwrap();
    let mut rng = Rng::new(SEED);
    for iv in Interval::ALL {
        for off_min in [0, 60, -60, 345, -570, 840] {
            let r = Reference::new(&fills, iv, i64::from(off_min) * 60_000);
            let klines = |start: Option<i64>, end: Option<i64>, limit| {
                let (s, e) = (start.map(|t| t as u64), end.map(|t| t as u64));
                let w = KlineWindow {
                    start_ms: s,
                    end_ms: e,
                    limit,
                    tz_offset_minutes: off_min,
                    now_ms: None,
                };
                store.klines(common::pair(), iv, w)
            };
            let what = format!("{} at {off_min}", iv.as_str());
            let got = klines(None, None, 1_000).await.unwrap();
            assert_eq!(got, r.backward(i64::MAX / 4, 1_000), "{what}");
            let start = ms(&fills[rng.below(fills.len() as u64) as usize]) + 1;
            let end = start + rng.range(0, 40 * DAY_MS as u64) as i64;
            let got = klines(Some(start), None, 7).await.unwrap();
            assert_eq!(
                got,
                r.forward(r.at_or_after(start), i64::MAX, 7),
                "{what} from {start}"
            );
            let got = klines(None, Some(end), 9).await.unwrap();
            assert_eq!(got, r.backward(end, 9), "{what} to {end}");
            let got = klines(Some(start), Some(end), 1_000).await.unwrap();
            let want = r.forward(r.at_or_after(start), end, 1_000);
            assert_eq!(got, want, "{what} {start}..={end}");
        }
    }
    // Before the first trade there is nothing; after the last, nothing
    // unless the present is later: then flat candles run up to it.
    let window = |start_ms, end_ms, now_ms| KlineWindow {
        start_ms,
        end_ms,
        limit: 10,
        tz_offset_minutes: 0,
        now_ms,
    };
    let first = ms(&fills[0]) as u64;
    let got = store.klines(
        common::pair(),
        Interval::M1,
        window(None, Some(first - 120_000), None),
    );
    assert!(got.await.unwrap().is_empty());
    let last = fills.iter().map(ms).max().unwrap() as u64;
    let after = window(Some(last + 60_000), None, None);
    let got = store.klines(common::pair(), Interval::M1, after);
    assert!(got.await.unwrap().is_empty());
    let now = last + 5 * 60_000;
    let up_to_now = window(Some(last + 60_000), None, Some(now));
    let got = store
        .klines(common::pair(), Interval::M1, up_to_now)
        .await
        .unwrap();
    let close = store.klines(common::pair(), Interval::M1, window(None, None, None));
    let close = close.await.unwrap().last().unwrap().close;
    assert!(got.len() >= 4 && got.len() <= 5, "{got:?}");
    assert!(
        got.iter()
            .all(|c| c.trades == 0 && c.open == close && c.close == close)
    );
    assert_eq!(got.last().unwrap().open_time_ms, now / 60_000 * 60_000);
}

/// Windows with edges at any nanosecond, from a millisecond to a week.
async fn windows_match_the_fills(store: &Store) {
    let fills = store.all_fills(common::pair()).await.unwrap();
    let mut rng = Rng::new(SEED ^ 1);
    for _ in 0..200 {
        let t = fills[rng.below(fills.len() as u64) as usize].timestamp.0;
        let from = t - rng.range(0, 2 * SEC);
        let to =
            from + rng.pick(&[MS, SEC, 61 * SEC, 3_700 * SEC, DAY, 7 * DAY]) + rng.range(0, SEC);
        let got = store.ticker_window(common::pair(), from, to).await.unwrap();
        assert_eq!(got, window_reference(&fills, from, to), "{from}..={to}");
    }
    let first = fills.iter().map(|f| f.timestamp.0).min().unwrap();
    let before = store
        .ticker_window(common::pair(), 0, first - 1)
        .await
        .unwrap();
    assert_eq!(before, None);
}

fn window_reference(fills: &[FillRow], from: u64, to: u64) -> Option<WindowStats> {
    let prev_close = fills
        .iter()
        .filter(|f| f.timestamp.0 < from)
        .max_by_key(|f| (f.timestamp, f.seq))
        .map(|f| f.price);
    let inside: Vec<&FillRow> = fills
        .iter()
        .filter(|f| (from..=to).contains(&f.timestamp.0))
        .collect();
    let Some(first) = inside.first() else {
        return prev_close.map(|p| WindowStats {
            open: p,
            high: p,
            low: p,
            close: p,
            volume: 0,
            quote_volume: 0,
            trades: 0,
            first_trade: None,
            last_trade: None,
            prev_close: Some(p),
        });
    };
    let mut c = one(first, 0, 1);
    for f in &inside[1..] {
        add(&mut c, f);
    }
    Some(WindowStats {
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volume: c.volume,
        quote_volume: c.quote_volume,
        trades: c.trades,
        first_trade: c.first_trade,
        last_trade: c.last_trade,
        prev_close,
    })
}

/// Fills stored before the candle migration: inserted into a database at
/// migration 0009, then `Store::connect` migrates it and the backfill
/// gives the candles the write path would have.
async fn backfill(url: &str, dir: &str) {
    sqlx::any::install_default_drivers();
    let mut old = sqlx::migrate::Migrator::new(std::path::Path::new(dir))
        .await
        .unwrap();
    old.migrations.to_mut().retain(|m| m.version <= 9);
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    old.run(&pool).await.unwrap();
    let fills = common::fills(&common::stream(SEED, 400));
    for f in &fills {
        sqlx::query(
            "INSERT INTO fills (pair, seq, price, qty, quote_qty, taker_side, maker_order_id, \
             maker_user, taker_order_id, taker_user, ts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(f.pair.as_str().to_string())
        .bind(f.seq.0 as i64)
        .bind(f.price.0 as i64)
        .bind(f.qty.0 as i64)
        .bind(f.quote_qty as i64)
        .bind(f.taker_side.as_str())
        .bind(f.maker_order_id.0 as i64)
        .bind(f.maker_user.0 as i64)
        .bind(f.taker_order_id.0 as i64)
        .bind(f.taker_user.0 as i64)
        .bind(f.timestamp.0 as i64)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let store = Store::connect(url, 2).await.unwrap();
    check_tiers(&store, &fills, "backfilled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_backfills_candles_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    backfill(&url, "migrations/sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_backfills_candles_in_postgres() {
    let Some(url) = common::postgres_url("backfill").await else {
        return;
    };
    backfill(&url, "migrations/postgres").await;
}

/// Values at the top of what a pair allows (one fill worth 2^63 - 1 in a
/// bucket with others) add up exactly in 128 bits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_past_64_bits_stay_exact() {
    let (store, _dir) = common::sqlite().await;
    let mut fills = Vec::new();
    for seq in 1..=5u64 {
        fills.push(FillRow {
            seq: Seq(seq),
            price: Price(i64::MAX as u64),
            qty: proto::Qty(1),
            quote_qty: i64::MAX as u64,
            taker_side: Side::Buy,
            timestamp: proto::Timestamp(common::START_NS + seq),
            // One fill per order: an order's own total must fit 64 bits.
            maker_order_id: proto::OrderId(2 * seq),
            taker_order_id: proto::OrderId(2 * seq + 1),
            ..flat_fill(Price(0))
        });
    }
    let events: Vec<proto::Event> = fills.iter().map(trade_event).collect();
    let mut b = Batch::default();
    b.add_events(0, &mut Seq(0), &events);
    store.write_batch(&b).await.unwrap();
    let mut b = Batch::default();
    let more: Vec<proto::Event> = fills
        .iter()
        .map(|f| {
            trade_event(&FillRow {
                seq: Seq(f.seq.0 + 5),
                maker_order_id: proto::OrderId(f.maker_order_id.0 + 10),
                taker_order_id: proto::OrderId(f.taker_order_id.0 + 10),
                ..f.clone()
            })
        })
        .collect();
    b.add_events(0, &mut Seq(5), &more);
    store.write_batch(&b).await.unwrap();
    let day = store
        .stored_candles(common::pair(), Interval::D1)
        .await
        .unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].quote_volume, 10 * u128::from(i64::MAX as u64));
    assert_eq!(
        day[0].taker_buy_quote_volume,
        10 * u128::from(i64::MAX as u64)
    );
    assert_eq!(day[0].trades, 10);
}

fn trade_event(f: &FillRow) -> proto::Event {
    proto::Event {
        pair: f.pair,
        seq: f.seq,
        timestamp: f.timestamp,
        body: proto::EventBody::Trade(proto::Trade {
            trade_id: proto::TradeId(f.seq.0),
            price: f.price,
            qty: f.qty,
            taker_side: f.taker_side,
            maker_order_id: f.maker_order_id,
            maker_user: f.maker_user,
            maker_remaining: proto::Qty(0),
            taker_order_id: f.taker_order_id,
            taker_user: f.taker_user,
            taker_remaining: proto::OrderSize::Base(proto::Qty(0)),
        }),
    }
}
