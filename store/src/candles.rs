//! Candles in tiers of 1 s, 1 m, 1 h and 1 d (UTC buckets), kept from the
//! fills that each batch actually inserts, in the batch's transaction: one
//! multi-row upsert per batch. A candle is a pure function of the fills in
//! its bucket (merging is commutative and associative, open and close are
//! chosen by seq), so the same log gives the same candles, in any batching.
//!
//! Queries read whole candles of the coarsest tier that fits a range and
//! the finer tiers only at its edges ([`cover`]).

use std::collections::BTreeMap;

use proto::{Price, Seq, Side, Symbol};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Backend, FillRow, ROWS_PER_STATEMENT, StoreError, from_db, placeholders, to_db};

/// Nanoseconds in a millisecond.
pub(crate) const NS_PER_MS: i64 = 1_000_000;

/// A stored candle length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Tier {
    Second,
    Minute,
    /// 15 minutes: it divides 15m and 30m candles, which would otherwise
    /// read 15 or 30 minute candles each, and every time zone's offset.
    Quarter,
    Hour,
    Day,
}

impl Tier {
    /// Every tier, coarsest first: the order [`cover`] tries them in.
    pub(crate) const COARSEST_FIRST: [Tier; 5] = [
        Tier::Day,
        Tier::Hour,
        Tier::Quarter,
        Tier::Minute,
        Tier::Second,
    ];

    /// The length in seconds, which is also the stored `tier`.
    pub(crate) fn secs(self) -> i64 {
        match self {
            Tier::Second => 1,
            Tier::Minute => 60,
            Tier::Quarter => 900,
            Tier::Hour => 3_600,
            Tier::Day => 86_400,
        }
    }

    pub(crate) fn ms(self) -> i64 {
        self.secs() * 1_000
    }

    pub(crate) fn ns(self) -> i64 {
        self.ms() * NS_PER_MS
    }
}

/// Trades folded together: a stored candle, or several merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agg {
    /// The price of the lowest seq.
    pub(crate) open: Price,
    pub(crate) high: Price,
    pub(crate) low: Price,
    /// The price of the highest seq.
    pub(crate) close: Price,
    pub(crate) first_seq: Seq,
    pub(crate) last_seq: Seq,
    pub(crate) trades: u64,
    /// Base quantity. Sums are 128-bit: a validated pair bounds one fill's
    /// value by 2^63, not a day's.
    pub(crate) volume: u128,
    /// Quote value, in the units of `fills.quote_qty`.
    pub(crate) quote_volume: u128,
    pub(crate) taker_buy_volume: u128,
    pub(crate) taker_buy_quote_volume: u128,
}

impl Agg {
    /// One fill on its own.
    pub(crate) fn of_fill(f: &FillRow) -> Agg {
        let buy = f.taker_side == Side::Buy;
        let (qty, quote) = (u128::from(f.qty.0), u128::from(f.quote_qty));
        Agg {
            open: f.price,
            high: f.price,
            low: f.price,
            close: f.price,
            first_seq: f.seq,
            last_seq: f.seq,
            trades: 1,
            volume: qty,
            quote_volume: quote,
            taker_buy_volume: if buy { qty } else { 0 },
            taker_buy_quote_volume: if buy { quote } else { 0 },
        }
    }

    /// Adds the trades of `o`, which are not among this one's.
    pub(crate) fn merge(&mut self, o: &Agg) {
        if o.first_seq < self.first_seq {
            self.first_seq = o.first_seq;
            self.open = o.open;
        }
        if o.last_seq > self.last_seq {
            self.last_seq = o.last_seq;
            self.close = o.close;
        }
        self.high = self.high.max(o.high);
        self.low = self.low.min(o.low);
        // Counts and 128-bit sums of 63-bit values cannot wrap in practice;
        // saturating keeps a corrupt row from panicking a query.
        self.trades = self.trades.saturating_add(o.trades);
        self.volume = self.volume.saturating_add(o.volume);
        self.quote_volume = self.quote_volume.saturating_add(o.quote_volume);
        self.taker_buy_volume = self.taker_buy_volume.saturating_add(o.taker_buy_volume);
        self.taker_buy_quote_volume = self
            .taker_buy_quote_volume
            .saturating_add(o.taker_buy_quote_volume);
    }
}

/// Merges `o` into `slot`, or puts it there.
pub(crate) fn merge_into(slot: &mut Option<Agg>, o: &Agg) {
    match slot {
        Some(a) => a.merge(o),
        None => *slot = Some(*o),
    }
}

/// The open time, in ms, of the `tier` bucket holding `ts_ns`.
fn bucket_ms(tier: Tier, ts_ns: u64) -> Result<i64, StoreError> {
    let ns = to_db(ts_ns)?;
    Ok(ns / tier.ns() * tier.ms())
}

/// Every tier's candles of `fills`, keyed by pair, tier and open time (ms).
pub(crate) fn fold<'a>(
    fills: impl IntoIterator<Item = &'a FillRow>,
) -> Result<BTreeMap<(Symbol, Tier, i64), Agg>, StoreError> {
    let mut out: BTreeMap<(Symbol, Tier, i64), Agg> = BTreeMap::new();
    for f in fills {
        let one = Agg::of_fill(f);
        for tier in Tier::COARSEST_FIRST {
            let key = (f.pair, tier, bucket_ms(tier, f.timestamp.0)?);
            out.entry(key).and_modify(|a| a.merge(&one)).or_insert(one);
        }
    }
    Ok(out)
}

/// The stored columns of a candle after `pair, tier`, in this order.
pub(crate) const CANDLE_COLUMNS: &str = "open_time, open, high, low, close, first_seq, last_seq, \
    trades, volume_hi, volume_lo, quote_volume_hi, quote_volume_lo, taker_buy_volume_hi, \
    taker_buy_volume_lo, taker_buy_quote_volume_hi, taker_buy_quote_volume_lo";

/// A volume as its stored `(hi, lo)` pair: `hi * 2^32 + lo`. Storing the
/// low 32 bits apart lets the upsert add sums in 64-bit columns.
fn split(v: u128) -> Result<(i64, i64), StoreError> {
    let hi = i64::try_from(v >> 32)
        .map_err(|_| StoreError::Unstorable(format!("candle volume {v} is too large")))?;
    // Below 2^32 after the mask, so it fits.
    Ok((hi, (v & 0xffff_ffff) as i64))
}

fn joined(r: &AnyRow, hi: usize) -> Result<u128, StoreError> {
    let (h, l) = (from_db(r.try_get(hi)?)?, from_db(r.try_get(hi + 1)?)?);
    Ok((u128::from(h) << 32) + u128::from(l))
}

/// A candle row read with [`CANDLE_COLUMNS`] from column `at`: its open
/// time (ms) and its trades.
pub(crate) fn candle_row(r: &AnyRow, at: usize) -> Result<(i64, Agg), StoreError> {
    let u = |i: usize| -> Result<u64, StoreError> { from_db(r.try_get(at + i)?) };
    let agg = Agg {
        open: Price(u(1)?),
        high: Price(u(2)?),
        low: Price(u(3)?),
        close: Price(u(4)?),
        first_seq: Seq(u(5)?),
        last_seq: Seq(u(6)?),
        trades: u(7)?,
        volume: joined(r, at + 8)?,
        quote_volume: joined(r, at + 10)?,
        taker_buy_volume: joined(r, at + 12)?,
        taker_buy_quote_volume: joined(r, at + 14)?,
    };
    Ok((r.try_get(at)?, agg))
}

/// Adds `candles` (from [`fold`]) to the stored ones: each bucket's row is
/// inserted, or merged into the stored row by the same rules as
/// [`Agg::merge`].
pub(crate) async fn upsert(
    conn: &mut AnyConnection,
    backend: Backend,
    candles: &BTreeMap<(Symbol, Tier, i64), Agg>,
) -> Result<(), StoreError> {
    let rows: Vec<_> = candles.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO candles (pair, tier, {CANDLE_COLUMNS}) VALUES {} \
             ON CONFLICT (pair, tier, open_time) DO UPDATE SET \
             open = CASE WHEN excluded.first_seq < candles.first_seq \
                THEN excluded.open ELSE candles.open END, \
             first_seq = CASE WHEN excluded.first_seq < candles.first_seq \
                THEN excluded.first_seq ELSE candles.first_seq END, \
             close = CASE WHEN excluded.last_seq > candles.last_seq \
                THEN excluded.close ELSE candles.close END, \
             last_seq = CASE WHEN excluded.last_seq > candles.last_seq \
                THEN excluded.last_seq ELSE candles.last_seq END, \
             high = CASE WHEN excluded.high > candles.high \
                THEN excluded.high ELSE candles.high END, \
             low = CASE WHEN excluded.low < candles.low \
                THEN excluded.low ELSE candles.low END, \
             trades = candles.trades + excluded.trades, {}",
            placeholders(backend, chunk.len(), 18),
            sums()
        );
        let mut q = sqlx::query(&sql);
        for ((pair, tier, open_time), a) in chunk {
            q = q
                .bind(pair.as_str().to_string())
                .bind(tier.secs())
                .bind(*open_time)
                .bind(to_db(a.open.0)?)
                .bind(to_db(a.high.0)?)
                .bind(to_db(a.low.0)?)
                .bind(to_db(a.close.0)?)
                .bind(to_db(a.first_seq.0)?)
                .bind(to_db(a.last_seq.0)?)
                .bind(to_db(a.trades)?);
            for v in [
                a.volume,
                a.quote_volume,
                a.taker_buy_volume,
                a.taker_buy_quote_volume,
            ] {
                let (hi, lo) = split(v)?;
                q = q.bind(hi).bind(lo);
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `volume_hi = candles.volume_hi + excluded.volume_hi, ...` for every
/// volume column.
fn sums() -> String {
    let cols = [
        "volume",
        "quote_volume",
        "taker_buy_volume",
        "taker_buy_quote_volume",
    ];
    let mut parts = Vec::new();
    for c in cols {
        for half in ["hi", "lo"] {
            parts.push(format!(
                "{c}_{half} = candles.{c}_{half} + excluded.{c}_{half}"
            ));
        }
    }
    parts.join(", ")
}

/// Splits `[a, b)` (ns) into tier buckets for reading: whole buckets of the
/// coarsest of `tiers` (coarsest first) that has one inside, then each edge
/// the same way with the finer tiers. What no tier covers (parts of a
/// second) goes to `rest`.
pub(crate) fn cover(
    a: i64,
    b: i64,
    tiers: &[Tier],
    pieces: &mut Vec<(Tier, i64, i64)>,
    rest: &mut Vec<(i64, i64)>,
) {
    if a >= b {
        return;
    }
    for (i, &tier) in tiers.iter().enumerate() {
        let n = tier.ns();
        let lo = a.div_euclid(n) * n + if a.rem_euclid(n) == 0 { 0 } else { n };
        let hi = b.div_euclid(n) * n;
        if lo < hi {
            pieces.push((tier, lo, hi));
            cover(a, lo, &tiers[i + 1..], pieces, rest);
            cover(hi, b, &tiers[i + 1..], pieces, rest);
            return;
        }
    }
    rest.push((a, b));
}

/// The pieces of `pieces` of each tier as ranges of open times in ms,
/// sorted, adjacent ones joined.
pub(crate) fn ranges_by_tier(pieces: &[(Tier, i64, i64)]) -> BTreeMap<Tier, Vec<(i64, i64)>> {
    let mut out: BTreeMap<Tier, Vec<(i64, i64)>> = BTreeMap::new();
    for &(tier, lo, hi) in pieces {
        out.entry(tier)
            .or_default()
            .push((lo / NS_PER_MS, hi / NS_PER_MS));
    }
    for ranges in out.values_mut() {
        ranges.sort_unstable();
        let mut joined: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for &(lo, hi) in ranges.iter() {
            match joined.last_mut() {
                Some(last) if last.1 == lo => last.1 = hi,
                _ => joined.push((lo, hi)),
            }
        }
        *ranges = joined;
    }
    out
}

/// The stored candles of `pair` and `tier` whose open time (ms) lies in one
/// of `ranges`, as `(open_time, trades)`.
pub(crate) async fn read_ranges(
    conn: &mut AnyConnection,
    backend: Backend,
    pair: Symbol,
    tier: Tier,
    ranges: &[(i64, i64)],
) -> Result<Vec<(i64, Agg)>, StoreError> {
    let mut out = Vec::new();
    for chunk in ranges.chunks(ROWS_PER_STATEMENT) {
        // The ranges as a joined VALUES list: one index range scan each.
        let n = chunk.len() * 2;
        let (p, t) = match backend {
            Backend::Sqlite => ("?".to_string(), "?".to_string()),
            Backend::Postgres => (format!("${}", n + 1), format!("${}", n + 2)),
        };
        let cols = CANDLE_COLUMNS.replace(", ", ", c.");
        let sql = format!(
            "SELECT c.{cols} FROM (VALUES {}) AS r JOIN candles c \
             ON c.pair = {p} AND c.tier = {t} \
             AND c.open_time >= r.column1 AND c.open_time < r.column2",
            placeholders(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for &(lo, hi) in chunk {
            q = q.bind(lo).bind(hi);
        }
        let rows = q
            .bind(pair.as_str().to_string())
            .bind(tier.secs())
            .fetch_all(&mut *conn)
            .await?;
        for r in &rows {
            out.push(candle_row(r, 0)?);
        }
    }
    Ok(out)
}

/// The lowest and highest seq of `pair`'s fills with `lo <= ts < hi`
/// (ns), or `None` when there are none: from the first and last seqs of
/// the candles that [`cover`] the range, and the fills at its edges. Time
/// windows of the history queries become seq ranges this way, walked by
/// id on an index, even where times and seqs are not in the same order.
pub(crate) async fn seq_range(
    conn: &mut AnyConnection,
    pair: Symbol,
    lo: i64,
    hi: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    let (mut pieces, mut rest) = (Vec::new(), Vec::new());
    cover(lo, hi, &Tier::COARSEST_FIRST, &mut pieces, &mut rest);
    let mut parts: Vec<(Option<i64>, Option<i64>)> = Vec::new();
    for (tier, ranges) in ranges_by_tier(&pieces) {
        for (a, b) in ranges {
            let row = sqlx::query(
                "SELECT MIN(first_seq), MAX(last_seq) FROM candles \
                 WHERE pair = $1 AND tier = $2 AND open_time >= $3 AND open_time < $4",
            )
            .bind(pair.as_str().to_string())
            .bind(tier.secs())
            .bind(a)
            .bind(b)
            .fetch_one(&mut *conn)
            .await?;
            parts.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    for (a, b) in rest {
        let row = sqlx::query(
            "SELECT MIN(seq), MAX(seq) FROM fills WHERE pair = $1 AND ts >= $2 AND ts < $3",
        )
        .bind(pair.as_str().to_string())
        .bind(a)
        .bind(b)
        .fetch_one(&mut *conn)
        .await?;
        parts.push((row.try_get(0)?, row.try_get(1)?));
    }
    let mut out: Option<(i64, i64)> = None;
    for part in parts {
        if let (Some(first), Some(last)) = part {
            out = Some(out.map_or((first, last), |(f, l)| (f.min(first), l.max(last))));
        }
    }
    Ok(out)
}

/// Every stored candle of `pair` in `tier`, oldest first: for checks.
pub(crate) async fn read_all(
    conn: &mut AnyConnection,
    pair: Symbol,
    tier: Tier,
) -> Result<Vec<(i64, Agg)>, StoreError> {
    let sql = format!(
        "SELECT {CANDLE_COLUMNS} FROM candles WHERE pair = $1 AND tier = $2 ORDER BY open_time"
    );
    let rows = sqlx::query(&sql)
        .bind(pair.as_str().to_string())
        .bind(tier.secs())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| candle_row(r, 0)).collect()
}

#[cfg(test)]
mod tests {
    use proto::{OrderId, Qty, Timestamp, UserId};

    use super::*;

    fn fill(seq: u64, price: u64, qty: u64, ts_ms: u64, side: Side) -> FillRow {
        FillRow {
            pair: Symbol::new("BTC-EUR").unwrap(),
            seq: Seq(seq),
            price: Price(price),
            qty: Qty(qty),
            quote_qty: price * qty,
            taker_side: side,
            maker_order_id: OrderId(1),
            maker_user: UserId(1),
            taker_order_id: OrderId(2),
            taker_user: UserId(2),
            timestamp: Timestamp(ts_ms * 1_000_000),
        }
    }

    #[test]
    fn open_and_close_follow_seq_in_any_merge_order() {
        let fills = [
            fill(5, 100, 1, 1_000, Side::Buy),
            fill(3, 90, 2, 1_500, Side::Sell),
            fill(9, 120, 3, 1_200, Side::Buy),
        ];
        let all = fold(&fills).unwrap();
        let mut one_by_one: BTreeMap<(Symbol, Tier, i64), Agg> = BTreeMap::new();
        for f in fills.iter().rev() {
            for (k, v) in fold([f]).unwrap() {
                one_by_one.entry(k).and_modify(|a| a.merge(&v)).or_insert(v);
            }
        }
        assert_eq!(all, one_by_one);
        let pair = Symbol::new("BTC-EUR").unwrap();
        let s = all[&(pair, Tier::Second, 1_000)];
        assert_eq!(
            (s.open, s.close, s.high, s.low),
            (Price(90), Price(120), Price(120), Price(90))
        );
        assert_eq!((s.first_seq, s.last_seq, s.trades), (Seq(3), Seq(9), 3));
        assert_eq!((s.volume, s.quote_volume), (6, 100 + 180 + 360));
        assert_eq!((s.taker_buy_volume, s.taker_buy_quote_volume), (4, 460));
    }

    #[test]
    fn volumes_split_and_join_exactly() {
        for v in [
            0u128,
            1,
            u128::from(u32::MAX),
            1 << 32,
            u128::from(u64::MAX) * 7,
        ] {
            let (hi, lo) = split(v).unwrap();
            assert_eq!(
                (u128::try_from(hi).unwrap() << 32) + u128::try_from(lo).unwrap(),
                v
            );
        }
    }

    #[test]
    fn cover_takes_coarse_buckets_in_the_middle() {
        let (s, m, h, d) = (
            1_000 * NS_PER_MS,
            60_000 * NS_PER_MS,
            3_600_000 * NS_PER_MS,
            86_400_000 * NS_PER_MS,
        );
        // From 23:59:30.5 on day 0 to 01:01:00 on day 2.
        let a = d - 29 * s - s / 2;
        let b = 2 * d + h + m;
        let (mut pieces, mut rest) = (Vec::new(), Vec::new());
        cover(a, b, &Tier::COARSEST_FIRST, &mut pieces, &mut rest);
        pieces.sort();
        assert_eq!(
            pieces,
            vec![
                (Tier::Second, d - 29 * s, d),
                (Tier::Minute, 2 * d + h, 2 * d + h + m),
                (Tier::Hour, 2 * d, 2 * d + h),
                (Tier::Day, d, 2 * d),
            ]
        );
        assert_eq!(rest, vec![(a, d - 29 * s)]);
        let by_tier = ranges_by_tier(&pieces);
        assert_eq!(by_tier[&Tier::Day], vec![(86_400_000, 172_800_000)]);
    }
}
