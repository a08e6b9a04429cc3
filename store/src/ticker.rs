//! Statistics of the trades in a time window, exact to the nanosecond and
//! cheap: whole days, hours, minutes and seconds come from the candle tiers
//! (coarsest first, [`candles::cover`]), the parts of a second at either
//! edge from the fills. A 7-day window reads at most about 6 + 2 * (23 + 59
//! + 59) candles and two partial seconds of fills.

use proto::{Price, Seq, Symbol};
use sqlx::{AnyConnection, Row};

use crate::candles::{self, Agg, Tier, merge_into};
use crate::queries::{FILL_COLUMNS, fill_row};
use crate::{Store, StoreError, from_db};

/// The trades of a window, for Binance's 24 h and rolling-window tickers.
/// Prices and volumes as in [`crate::Candle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStats {
    /// The price of the window's first trade (lowest id); without trades,
    /// the previous close.
    pub open: Price,
    /// The highest price.
    pub high: Price,
    /// The lowest price.
    pub low: Price,
    /// The price of the window's last trade (highest id).
    pub close: Price,
    /// Base quantity traded.
    pub volume: u128,
    /// Quote value traded.
    pub quote_volume: u128,
    /// Number of trades.
    pub trades: u64,
    /// The lowest trade id in the window, if any.
    pub first_trade: Option<Seq>,
    /// The highest trade id in the window, if any.
    pub last_trade: Option<Seq>,
    /// The price of the last trade before the window (latest in time):
    /// Binance's `prevClosePrice`.
    pub prev_close: Option<Price>,
}

impl Store {
    /// The trades of `pair` with `from_ns <= ts <= to_ns`. `None` when the
    /// pair never traded up to `to_ns`; a window without trades after
    /// earlier ones is flat at the previous close, with no trade ids.
    pub async fn ticker_window(
        &self,
        pair: Symbol,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Option<WindowStats>, StoreError> {
        let a = i64::try_from(from_ns).unwrap_or(i64::MAX);
        let b = i64::try_from(to_ns)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1);
        let (mut pieces, mut rest) = (Vec::new(), Vec::new());
        candles::cover(a, b, &Tier::COARSEST_FIRST, &mut pieces, &mut rest);
        // One snapshot for every statement: the persister may commit
        // between them.
        let mut tx = self.begin_read().await?;
        let mut sum = None;
        for (tier, ranges) in candles::ranges_by_tier(&pieces) {
            for (_, agg) in candles::read_ranges(&mut tx, self.backend, pair, tier, &ranges).await?
            {
                merge_into(&mut sum, &agg);
            }
        }
        for (lo, hi) in rest {
            for f in fills_between(&mut tx, pair, lo, hi).await? {
                merge_into(&mut sum, &Agg::of_fill(&f));
            }
        }
        let prev_close = price_before(&mut tx, pair, a).await?;
        tx.commit().await?;
        Ok(stats(sum, prev_close))
    }
}

fn stats(sum: Option<Agg>, prev_close: Option<Price>) -> Option<WindowStats> {
    match sum {
        Some(a) => Some(WindowStats {
            open: a.open,
            high: a.high,
            low: a.low,
            close: a.close,
            volume: a.volume,
            quote_volume: a.quote_volume,
            trades: a.trades,
            first_trade: Some(a.first_seq),
            last_trade: Some(a.last_seq),
            prev_close,
        }),
        None => prev_close.map(|p| WindowStats {
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
        }),
    }
}

/// `pair`'s fills with `lo <= ts < hi` (ns).
async fn fills_between(
    conn: &mut AnyConnection,
    pair: Symbol,
    lo: i64,
    hi: i64,
) -> Result<Vec<crate::FillRow>, StoreError> {
    let sql = format!("SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 AND ts >= $2 AND ts < $3");
    let rows = sqlx::query(&sql)
        .bind(pair.as_str().to_string())
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(fill_row).collect()
}

/// The price of `pair`'s latest fill before `t` (ns); the highest id among
/// fills of the same time.
async fn price_before(
    conn: &mut AnyConnection,
    pair: Symbol,
    t: i64,
) -> Result<Option<Price>, StoreError> {
    let row = sqlx::query(
        "SELECT price FROM fills WHERE pair = $1 AND ts < $2 ORDER BY ts DESC, seq DESC LIMIT 1",
    )
    .bind(pair.as_str().to_string())
    .bind(t)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok(Price(from_db(r.try_get(0)?)?))).transpose()
}
