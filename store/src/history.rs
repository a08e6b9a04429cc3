//! Binance's history queries over the stored fills and orders, ascending by
//! id: `historicalTrades`, `aggTrades`, `myTrades` and `allOrders`. The
//! rule throughout: from the id given, or else from the start time given,
//! the first `limit` in the window; otherwise the last `limit` (up to the
//! end time, when given). Filters given together all apply. Times are UTC
//! ms, inclusive at both ends, compared with the fill's or order's time.

use proto::{OrderId, Price, Qty, Seq, Side, Symbol, Timestamp, UserId};
use sqlx::Row;

use crate::candles;
use crate::queries::{FILL_COLUMNS, ORDER_COLUMNS, fill_row, order_row};
use crate::{FillRow, OrderRow, Store, StoreError, to_db};

/// Nanoseconds in a millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// The `ts` range `[lo, hi)` (ns) of a window of ms, inclusive at both
/// ends; ids of 2^63 or more name nothing stored, so they bound nothing.
pub(crate) fn ns_window(start_ms: Option<u64>, end_ms: Option<u64>) -> (i64, i64) {
    let ns = |ms: u64| i64::try_from(ms.saturating_mul(NS_PER_MS)).unwrap_or(i64::MAX);
    let lo = start_ms.map_or(0, ns);
    let hi = end_ms.map_or(i64::MAX, |e| ns(e.saturating_add(1)));
    (lo, hi)
}

/// An id as a lower bound: one past every stored id when it is too large.
pub(crate) fn id_from(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// Numbered placeholders for a query built from optional parts: `$1`,
/// `$2`, ... in the order they first appear, as both backends bind them.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) values: Vec<i64>,
}

impl Params {
    /// The placeholder of a new parameter `v`, after `fixed` ones bound
    /// first.
    pub(crate) fn push(&mut self, fixed: usize, v: i64) -> String {
        self.values.push(v);
        format!("${}", fixed + self.values.len())
    }
}

/// An aggregate trade: consecutive fills (by id) of one taker order at one
/// price and one time. Its id is its first fill's id, so ids increase but
/// are not consecutive; `fromId` takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggTrade {
    /// The first fill's id.
    pub id: Seq,
    /// The price of its fills.
    pub price: Price,
    /// Their summed base quantity (they fill one price level of the book,
    /// whose total fits 64 bits).
    pub qty: Qty,
    /// The first fill's id.
    pub first_trade: Seq,
    /// The last fill's id.
    pub last_trade: Seq,
    /// When its fills happened (ns).
    pub timestamp: Timestamp,
    /// True when the taker sold: the buyer was the maker.
    pub buyer_is_maker: bool,
    /// The taker order, to tell whether the next fill belongs here.
    taker_order_id: OrderId,
}

impl AggTrade {
    fn start(f: &FillRow) -> AggTrade {
        AggTrade {
            id: f.seq,
            price: f.price,
            qty: f.qty,
            first_trade: f.seq,
            last_trade: f.seq,
            timestamp: f.timestamp,
            buyer_is_maker: f.taker_side == Side::Sell,
            taker_order_id: f.taker_order_id,
        }
    }

    /// Whether `f` belongs to this aggregate when it is next to it by id.
    fn takes(&self, f: &FillRow) -> bool {
        f.taker_order_id == self.taker_order_id
            && f.price == self.price
            && f.timestamp == self.timestamp
    }

    /// Adds `f`, a fill just after (`later`) or just before this one's.
    fn add(&mut self, f: &FillRow, later: bool) -> Result<(), StoreError> {
        self.qty = Qty(self.qty.0.checked_add(f.qty.0).ok_or_else(|| {
            StoreError::Corrupt(format!("aggregate trade {} passes 2^64", self.id))
        })?);
        if later {
            self.last_trade = f.seq;
        } else {
            self.first_trade = f.seq;
            self.id = f.seq;
        }
        Ok(())
    }
}

/// What `myTrades` asks for, beside the user and pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeFilter {
    /// Only the trades of this order (the user's, on either side).
    pub order_id: Option<OrderId>,
    /// From this time (UTC ms), inclusive.
    pub start_ms: Option<u64>,
    /// Up to this time (UTC ms), inclusive.
    pub end_ms: Option<u64>,
    /// From this trade id, inclusive.
    pub from_id: Option<Seq>,
    /// At most this many rows.
    pub limit: u32,
}

/// A trade as one of its sides saw it. A self-trade (the user is maker and
/// taker) comes back as two of these with the same fill, the maker's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTrade {
    /// The trade.
    pub fill: FillRow,
    /// Whether this is the maker's side. Decide the side by this, not by
    /// `fill.maker_user == user`, which holds for both sides of a self-trade.
    pub is_maker: bool,
}

impl UserTrade {
    /// This side's order.
    pub fn order_id(&self) -> OrderId {
        if self.is_maker {
            self.fill.maker_order_id
        } else {
            self.fill.taker_order_id
        }
    }

    /// Whether this side bought.
    pub fn is_buyer(&self) -> bool {
        (self.fill.taker_side == Side::Buy) != self.is_maker
    }
}

/// Most fills read at once while grouping aggregate trades.
const AGG_PAGE: i64 = 1_000;

impl Store {
    /// Binance's `historicalTrades`: `pair`'s trades from id `from_seq`, or
    /// the most recent; `limit` of them, ascending.
    pub async fn trades_from(
        &self,
        pair: Symbol,
        from_seq: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<FillRow>, StoreError> {
        let Some(from) = from_seq else {
            let mut rows = self.trades(pair, limit).await?;
            rows.reverse();
            return Ok(rows);
        };
        let sql = format!(
            "SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(id_from(from.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fill_row).collect()
    }

    /// One page of `pair`'s fills in the `ts` window `[lo, hi)` with
    /// `after < seq < before`, by id: the first `n` ascending or the last
    /// `n` descending.
    async fn fill_page(
        &self,
        pair: Symbol,
        (lo, hi): (i64, i64),
        (after, before): (i64, i64),
        ascending: bool,
        n: i64,
    ) -> Result<Vec<FillRow>, StoreError> {
        let dir = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 AND seq > $2 AND seq < $3 \
             AND ts >= $4 AND ts < $5 ORDER BY seq {dir} LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(after)
            .bind(before)
            .bind(lo)
            .bind(hi)
            .bind(n)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fill_row).collect()
    }

    /// The seqs (exclusive bounds) of `pair`'s fills in the `ts` window
    /// `[lo, hi)`: `None` when it has none. The window is then walked by
    /// id, from its first fill, on the fills' primary key.
    async fn window_seqs(
        &self,
        pair: Symbol,
        (lo, hi): (i64, i64),
        bounded: bool,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        if !bounded {
            return Ok(Some((-1, i64::MAX)));
        }
        let mut conn = self.pool.acquire().await?;
        let range = candles::seq_range(&mut conn, pair, lo, hi).await?;
        Ok(range.map(|(first, last)| (first - 1, last + 1)))
    }

    /// Binance's `aggTrades` of `pair`: aggregates with id `>= from_id`, or
    /// else from `start_ms`, the first `limit`; without either the last
    /// `limit` (up to `end_ms`); ascending. An aggregate is wholly inside or
    /// outside a time window (its fills share their time).
    pub async fn agg_trades(
        &self,
        pair: Symbol,
        from_id: Option<u64>,
        start_ms: Option<u64>,
        end_ms: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AggTrade>, StoreError> {
        let window = ns_window(start_ms, end_ms);
        let bounded = start_ms.is_some() || end_ms.is_some();
        let Some(seqs) = self.window_seqs(pair, window, bounded).await? else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        if from_id.is_none() && start_ms.is_none() {
            return self.agg_trades_back(pair, window, seqs, limit).await;
        }
        let from = id_from(from_id.unwrap_or(0));
        // A fill at `from` may continue an aggregate that began before it:
        // that aggregate's id is below `from`, so its fills are skipped.
        let before = (seqs.0, from.min(seqs.1));
        let before = self.fill_page(pair, window, before, false, 1).await?;
        let mut skip = before.first().map(AggTrade::start);
        let (mut out, mut current): (Vec<AggTrade>, Option<AggTrade>) = (Vec::new(), None);
        let mut cursor = (from - 1).max(seqs.0);
        loop {
            let page = self
                .fill_page(pair, window, (cursor, seqs.1), true, AGG_PAGE)
                .await?;
            for f in &page {
                if let Some(s) = &mut skip {
                    if s.takes(f) {
                        continue;
                    }
                    skip = None;
                }
                match &mut current {
                    Some(c) if c.takes(f) => c.add(f, true)?,
                    _ => {
                        out.extend(current.take());
                        if out.len() == limit as usize {
                            return Ok(out);
                        }
                        current = Some(AggTrade::start(f));
                    }
                }
            }
            match page.last() {
                Some(f) if page.len() as i64 == AGG_PAGE => cursor = to_db(f.seq.0)?,
                _ => break,
            }
        }
        out.extend(current);
        Ok(out)
    }

    /// The last `limit` aggregates of `pair` in `window`, ascending.
    async fn agg_trades_back(
        &self,
        pair: Symbol,
        window: (i64, i64),
        seqs: (i64, i64),
        limit: u32,
    ) -> Result<Vec<AggTrade>, StoreError> {
        let (mut out, mut current): (Vec<AggTrade>, Option<AggTrade>) = (Vec::new(), None);
        let mut cursor = seqs.1;
        'pages: loop {
            let page = self
                .fill_page(pair, window, (seqs.0, cursor), false, AGG_PAGE)
                .await?;
            for f in &page {
                match &mut current {
                    Some(c) if c.takes(f) => c.add(f, false)?,
                    _ => {
                        out.extend(current.take());
                        if out.len() == limit as usize {
                            break 'pages;
                        }
                        current = Some(AggTrade::start(f));
                    }
                }
            }
            match page.last() {
                Some(f) if page.len() as i64 == AGG_PAGE => cursor = to_db(f.seq.0)?,
                _ => {
                    out.extend(current.take());
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Binance's `myTrades`: `user`'s trades on `pair` through `filter`,
    /// ascending by trade id, each side of a self-trade apart. From
    /// `from_id`, or else `start_ms`, the first `limit` rows; otherwise the
    /// last `limit`. Replaces [`Store::user_trades`] for the REST API.
    pub async fn user_trades_filtered(
        &self,
        user: UserId,
        pair: Symbol,
        filter: TradeFilter,
    ) -> Result<Vec<UserTrade>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let ascending = filter.from_id.is_some() || filter.start_ms.is_some();
        let window = ns_window(filter.start_ms, filter.end_ms);
        let bounded = filter.start_ms.is_some() || filter.end_ms.is_some();
        let Some(seqs) = self.window_seqs(pair, window, bounded).await? else {
            return Ok(Vec::new());
        };
        let (sql, params) = user_trades_sql(filter, ascending, bounded.then_some(seqs));
        let mut q = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(to_db(user.0)?);
        for v in params.values {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(UserTrade {
                    fill: fill_row(r)?,
                    is_maker: r.try_get::<i64, _>(11)? != 0,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if !ascending {
            out.reverse();
        }
        Ok(out)
    }

    /// Binance's `allOrders`: `user`'s orders on `pair` with id `>=
    /// order_id_from`, or else created from `start_ms`, the first `limit`;
    /// otherwise the last `limit` (created up to `end_ms`); ascending by
    /// order id.
    pub async fn all_orders(
        &self,
        user: UserId,
        pair: Symbol,
        order_id_from: Option<OrderId>,
        start_ms: Option<u64>,
        end_ms: Option<u64>,
        limit: u32,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let ascending = order_id_from.is_some() || start_ms.is_some();
        let (lo, hi) = ns_window(start_ms, end_ms);
        let mut p = Params::default();
        let mut conds = String::new();
        if let Some(id) = order_id_from {
            conds += &format!(" AND order_id >= {}", p.push(2, id_from(id.0)));
        }
        if start_ms.is_some() {
            conds += &format!(" AND created_at >= {}", p.push(2, lo));
        }
        if end_ms.is_some() {
            conds += &format!(" AND created_at < {}", p.push(2, hi));
        }
        let dir = if ascending { "ASC" } else { "DESC" };
        let lim = p.push(2, i64::from(limit));
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND pair = $2{conds} \
             ORDER BY order_id {dir} LIMIT {lim}"
        );
        let mut q = sqlx::query(&sql)
            .bind(to_db(user.0)?)
            .bind(pair.as_str().to_string());
        for v in p.values {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = rows.iter().map(order_row).collect::<Result<Vec<_>, _>>()?;
        if !ascending {
            out.reverse();
        }
        Ok(out)
    }
}

/// The `myTrades` query: the user's maker side and taker side, each
/// filtered, ordered and limited on its own index, then merged. `$1` is
/// the pair, `$2` the user; the rest are in the returned params. `seqs`
/// (exclusive) bounds a time window's fills by id, so the user's index is
/// read from the window on.
fn user_trades_sql(
    filter: TradeFilter,
    ascending: bool,
    seqs: Option<(i64, i64)>,
) -> (String, Params) {
    let mut p = Params::default();
    let order = filter.order_id.map(|id| p.push(2, id_from(id.0)));
    let mut shared = String::new();
    if let Some(from) = filter.from_id {
        shared += &format!(" AND seq >= {}", p.push(2, id_from(from.0)));
    }
    if let Some((after, before)) = seqs {
        shared += &format!(" AND seq > {}", p.push(2, after));
        shared += &format!(" AND seq < {}", p.push(2, before));
    }
    let (lo, hi) = ns_window(filter.start_ms, filter.end_ms);
    if filter.start_ms.is_some() {
        shared += &format!(" AND ts >= {}", p.push(2, lo));
    }
    if filter.end_ms.is_some() {
        shared += &format!(" AND ts < {}", p.push(2, hi));
    }
    let lim = p.push(2, i64::from(filter.limit));
    let (dir, maker_first) = if ascending {
        ("ASC", "DESC")
    } else {
        ("DESC", "ASC")
    };
    let side = |role: &str, is_maker: i64| {
        let by_order = order
            .as_ref()
            .map(|o| format!(" AND {role}_order_id = {o}"))
            .unwrap_or_default();
        format!(
            "SELECT * FROM (SELECT {FILL_COLUMNS}, CAST({is_maker} AS BIGINT) AS is_maker FROM fills \
             WHERE pair = $1 AND {role}_user = $2{by_order}{shared} \
             ORDER BY seq {dir} LIMIT {lim}) AS {role}_side"
        )
    };
    let sql = format!(
        "{} UNION ALL {} ORDER BY seq {dir}, is_maker {maker_first} LIMIT {lim}",
        side("maker", 1),
        side("taker", 0)
    );
    (sql, p)
}
