//! Klines from the stored candle tiers, in any interval and time zone
//! offset, with Binance's rules: buckets named by their open time, ascending;
//! `startTime`/`endTime` (UTC ms) select buckets by open time; without
//! them, the most recent; a bucket without trades between two with trades
//! is a flat candle at the previous close.
//!
//! Each bucket is read as whole candles of the coarsest tier inside it, the
//! finer tiers only at its edges ([`candles::cover`]): a bucket whose
//! bounds are multiples of a tier costs one row per tier bucket (a 1d kline
//! at offset 0: one row; 1w: 7; 1M: up to 31; 30m: 30), and an offset such
//! as +05:45 adds at most 59 + 23 rows per bucket bound.

use proto::{Price, Seq, Symbol};
use sqlx::{AnyConnection, Row};

use crate::candles::{self, Agg, NS_PER_MS, Tier, merge_into};
use crate::{Backend, Interval, Store, StoreError};

/// One kline. Prices and volumes are integers at the pair's scales, as in
/// `fills` (quote volume in the units of `quote_qty`). Volumes are 128-bit:
/// one fill's value fits 63 bits, a month of them need not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candle {
    /// The bucket's start, UTC ms.
    pub open_time_ms: u64,
    /// The next bucket's start less 1 ms.
    pub close_time_ms: u64,
    /// The price of the bucket's lowest trade id; for a flat candle the
    /// previous close.
    pub open: Price,
    /// The highest price.
    pub high: Price,
    /// The lowest price.
    pub low: Price,
    /// The price of the bucket's highest trade id.
    pub close: Price,
    /// Base quantity traded.
    pub volume: u128,
    /// Quote value traded.
    pub quote_volume: u128,
    /// Number of trades.
    pub trades: u64,
    /// Base quantity of the trades whose taker bought.
    pub taker_buy_volume: u128,
    /// Quote value of the trades whose taker bought.
    pub taker_buy_quote_volume: u128,
    /// The bucket's lowest trade id; `None` for a flat candle.
    pub first_trade: Option<Seq>,
    /// The bucket's highest trade id; `None` for a flat candle.
    pub last_trade: Option<Seq>,
}

fn ms(t: i64) -> u64 {
    // Buckets before 1970 only arise around the epoch with a negative offset.
    u64::try_from(t).unwrap_or(0)
}

impl Candle {
    fn new(open: i64, next: i64, a: &Agg) -> Candle {
        Candle {
            open_time_ms: ms(open),
            close_time_ms: ms(next - 1),
            open: a.open,
            high: a.high,
            low: a.low,
            close: a.close,
            volume: a.volume,
            quote_volume: a.quote_volume,
            trades: a.trades,
            taker_buy_volume: a.taker_buy_volume,
            taker_buy_quote_volume: a.taker_buy_quote_volume,
            first_trade: Some(a.first_seq),
            last_trade: Some(a.last_seq),
        }
    }

    fn flat(open: i64, next: i64, price: Price) -> Candle {
        Candle {
            open_time_ms: ms(open),
            close_time_ms: ms(next - 1),
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0,
            quote_volume: 0,
            trades: 0,
            taker_buy_volume: 0,
            taker_buy_quote_volume: 0,
            first_trade: None,
            last_trade: None,
        }
    }
}

/// The latest time (ms) a query bound may name: later ones are clamped, so
/// that every bucket bound stays within `i64` nanoseconds (year 2262).
const MAX_MS: i64 = i64::MAX / NS_PER_MS - 400 * 86_400_000;

fn clamp_ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(MAX_MS).min(MAX_MS)
}

/// Which candles a [`Store::klines`] query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlineWindow {
    /// Buckets opening at or after this time (UTC ms): the first `limit`.
    pub start_ms: Option<u64>,
    /// Buckets opening at or before this time (UTC ms).
    pub end_ms: Option<u64>,
    /// At most this many candles.
    pub limit: u32,
    /// Local time's offset ahead of UTC, in minutes (`timeZone`).
    pub tz_offset_minutes: i32,
    /// The present (UTC ms): flat candles run up to its bucket. `None`
    /// stops at the latest trade's bucket.
    pub now_ms: Option<u64>,
}

/// [`KlineWindow`]'s times as the queries take them.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: Option<i64>,
    end: Option<i64>,
    now: Option<i64>,
}

/// The buckets a klines query answers: `bounds[i]..bounds[i + 1]` is the
/// `i`th, and the close before the first, if anything traded before it.
#[derive(Debug)]
struct Span {
    bounds: Vec<i64>,
    prev_close: Option<Price>,
}

impl Store {
    /// Binance's klines of `pair`: buckets of `interval` in local time
    /// `tz_offset_minutes` ahead of UTC, ascending. Buckets whose open time
    /// is in `start_ms..=end_ms` (UTC); the first `limit` of them from
    /// `start_ms` when it is given, else the last `limit` up to `end_ms`.
    /// Never before the bucket of the first trade ever, nor past the bucket
    /// of `now_ms` (or, without it, of the latest trade); between them a
    /// bucket without trades is a flat candle at the previous close, so a
    /// chart runs up to the present. The gateway bounds `limit` (Binance:
    /// default 500, at most 1000).
    pub async fn klines(
        &self,
        pair: Symbol,
        interval: Interval,
        w: KlineWindow,
    ) -> Result<Vec<Candle>, StoreError> {
        let offset = i64::from(w.tz_offset_minutes) * 60_000;
        // One snapshot for every statement: the persister may commit
        // between them.
        let mut tx = self.begin_read().await?;
        let range = Range {
            start: w.start_ms.map(clamp_ms),
            end: w.end_ms.map(clamp_ms),
            now: w.now_ms.map(clamp_ms),
        };
        let span = span(
            &mut tx,
            self.backend,
            pair,
            interval,
            offset,
            range,
            w.limit,
        )
        .await?;
        let Some(span) = span else {
            return Ok(Vec::new());
        };
        let aggs = read_buckets(&mut tx, self.backend, pair, &span.bounds).await?;
        tx.commit().await?;
        let mut prev = span.prev_close;
        let mut out = Vec::with_capacity(aggs.len());
        for (i, agg) in aggs.iter().enumerate() {
            let (open, next) = (span.bounds[i], span.bounds[i + 1]);
            match agg {
                Some(a) => {
                    out.push(Candle::new(open, next, a));
                    prev = Some(a.close);
                }
                None => out.extend(prev.map(|p| Candle::flat(open, next, p))),
            }
        }
        Ok(out)
    }

    /// The stored candles of one tier (`1s`, `1m`, `1h` or `1d`; any other
    /// interval has none), oldest first, without flat ones: for checks.
    pub async fn stored_candles(
        &self,
        pair: Symbol,
        interval: Interval,
    ) -> Result<Vec<Candle>, StoreError> {
        let tier = match interval {
            Interval::S1 => Tier::Second,
            Interval::M1 => Tier::Minute,
            Interval::H1 => Tier::Hour,
            Interval::D1 => Tier::Day,
            _ => return Ok(Vec::new()),
        };
        let mut conn = self.pool.acquire().await?;
        let rows = candles::read_all(&mut conn, pair, tier).await?;
        Ok(rows
            .iter()
            .map(|(open, a)| Candle::new(*open, open + tier.ms(), a))
            .collect())
    }
}

/// Which buckets `klines` answers with; `None` when none.
async fn span(
    conn: &mut AnyConnection,
    backend: Backend,
    pair: Symbol,
    iv: Interval,
    offset: i64,
    Range { start, end, now }: Range,
    limit: u32,
) -> Result<Option<Span>, StoreError> {
    if limit == 0 {
        return Ok(None);
    }
    // Flat candles may run up to the end, but never past the present (the
    // caller's `now`, or else the latest trade).
    let Some(latest) = second(conn, pair, "MAX", "<", i64::MAX).await? else {
        return Ok(None);
    };
    let latest = now.map_or(latest, |n| n.max(latest));
    let mut last_open = iv.open_of(latest, offset);
    if let Some(e) = end {
        last_open = last_open.min(iv.open_of(e, offset));
    }
    let mut first = match start {
        Some(s) => {
            let o = iv.open_of(s, offset);
            if o < s { iv.next_open(o, offset) } else { o }
        }
        None => (1..limit).fold(last_open, |o, _| iv.prev_open(o, offset)),
    };
    if first > last_open {
        return Ok(None);
    }
    // The close before `first` is that of the last bucket with trades
    // before it (its highest seq), as a query from further back would have
    // it: not always the latest trade in time, which may have a lower seq.
    let prev_close = match second(conn, pair, "MAX", "<", first).await? {
        Some(t) => {
            let open = iv.open_of(t, offset);
            let bounds = [open, iv.next_open(open, offset)];
            let prev = read_buckets(conn, backend, pair, &bounds).await?;
            prev.first().copied().flatten().map(|a| a.close)
        }
        None => None,
    };
    if prev_close.is_none() {
        // Nothing traded before: the klines start with the first trade.
        let Some(t) = second(conn, pair, "MIN", ">=", first).await? else {
            return Ok(None);
        };
        first = iv.open_of(t, offset);
        if first > last_open {
            return Ok(None);
        }
    }
    let mut bounds = vec![first];
    let mut open = first;
    while open <= last_open && bounds.len() <= limit as usize {
        open = iv.next_open(open, offset);
        bounds.push(open);
    }
    Ok(Some(Span { bounds, prev_close }))
}

/// `MIN` or `MAX` of the open times (ms) of `pair`'s 1 s candles `op`
/// `bound`: the first or last second with a trade.
async fn second(
    conn: &mut AnyConnection,
    pair: Symbol,
    agg: &str,
    op: &str,
    bound: i64,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT {agg}(open_time) FROM candles WHERE pair = $1 AND tier = $2 AND open_time {op} $3"
    );
    let row = sqlx::query(&sql)
        .bind(pair.as_str().to_string())
        .bind(Tier::Second.secs())
        .bind(bound)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// The trades of each bucket `bounds[i]..bounds[i + 1]` (ms), merged from
/// the coarsest tier candles that fit.
async fn read_buckets(
    conn: &mut AnyConnection,
    backend: Backend,
    pair: Symbol,
    bounds: &[i64],
) -> Result<Vec<Option<Agg>>, StoreError> {
    let (mut pieces, mut rest) = (Vec::new(), Vec::new());
    for w in bounds.windows(2) {
        let (a, b) = (w[0] * NS_PER_MS, w[1] * NS_PER_MS);
        candles::cover(a, b, &Tier::COARSEST_FIRST, &mut pieces, &mut rest);
    }
    // Bucket bounds are whole seconds (offsets are whole minutes), so the
    // 1 s tier covers whatever the coarser ones leave: `rest` is empty.
    let mut out = vec![None; bounds.len().saturating_sub(1)];
    for (tier, ranges) in candles::ranges_by_tier(&pieces) {
        for (open, agg) in candles::read_ranges(conn, backend, pair, tier, &ranges).await? {
            let i = bounds.partition_point(|&b| b <= open).saturating_sub(1);
            if let Some(slot) = out.get_mut(i) {
                merge_into(slot, &agg);
            }
        }
    }
    Ok(out)
}
