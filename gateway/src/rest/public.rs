//! Binance's "Market data endpoints": the book, trades, candles and
//! tickers. The book comes from the gateway's own view of the events;
//! trades, candles and tickers from the store, which keeps candles as the
//! persister writes fills.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::get;
use proto::PairConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bodies::{DepthBody, PublicTrade};
use super::params;
use super::{ApiResult, App, limit, symbol};
use crate::Gateway;
use crate::errors::{ApiError, code};
use crate::market::DepthView;
use crate::money::decimal;

pub(super) mod tickers;

pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v3/depth", get(depth))
        .route("/api/v3/trades", get(trades))
        .route("/api/v3/historicalTrades", get(historical_trades))
        .route("/api/v3/aggTrades", get(agg_trades))
        .route("/api/v3/klines", get(klines))
        .route("/api/v3/uiKlines", get(klines))
        .route("/api/v3/ticker/price", get(price_ticker))
        .route("/api/v3/ticker/bookTicker", get(book_ticker))
        .merge(tickers::routes())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SymbolLimit {
    symbol: String,
    limit: Option<u32>,
}

async fn depth(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolLimit = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 100, 5_000)?;
    let d = gw
        .market
        .depth(p.symbol, n as usize)
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    Ok(Json(DepthBody::new(&d, p)).into_response())
}

/// `GET /api/v3/trades`: the most recent trades, oldest first.
async fn trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolLimit = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 500, 1_000)?;
    let mut rows = gw
        .store
        .trades(p.symbol, n)
        .await
        .map_err(ApiError::internal)?;
    rows.reverse();
    let out: Vec<PublicTrade> = rows.iter().map(|f| PublicTrade::new(f, p)).collect();
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FromIdQuery {
    symbol: String,
    limit: Option<u32>,
    from_id: Option<u64>,
}

/// `GET /api/v3/historicalTrades`: trades from `fromId`, or the most
/// recent, oldest first.
async fn historical_trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: FromIdQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 500, 1_000)?;
    let rows = gw
        .store
        .trades_from(p.symbol, q.from_id.map(proto::Seq), n)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<PublicTrade> = rows.iter().map(|f| PublicTrade::new(f, p)).collect();
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AggTradesQuery {
    symbol: String,
    from_id: Option<u64>,
    start_time: Option<u64>,
    end_time: Option<u64>,
    limit: Option<u32>,
}

/// Binance's widest `aggTrades` window: one hour.
const HOUR_MS: u64 = 60 * 60 * 1_000;

/// `GET /api/v3/aggTrades`: fills of one taker order at one price, summed.
/// An aggregate's id is its first trade's, so ids increase with gaps.
async fn agg_trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: AggTradesQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 500, 1_000)?;
    if q.from_id.is_some() && (q.start_time.is_some() || q.end_time.is_some()) {
        return Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "fromId cannot be sent with startTime or endTime.",
        ));
    }
    if let (Some(s), Some(e)) = (q.start_time, q.end_time)
        && (s > e || e - s > HOUR_MS)
    {
        return Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "startTime and endTime must be at most an hour apart, in that order.",
        ));
    }
    let rows = gw
        .store
        .agg_trades(p.symbol, q.from_id, q.start_time, q.end_time, n)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = rows.iter().map(|a| agg_trade(a, p)).collect();
    Ok(Json(out).into_response())
}

/// One entry of `aggTrades`.
pub(in crate::rest) fn agg_trade(a: &store::AggTrade, p: &PairConfig) -> Value {
    json!({
        "a": a.id.0,
        "p": a.price.to_decimal(p.price_scale),
        "q": a.qty.to_decimal(p.qty_scale),
        "f": a.first_trade.0,
        "l": a.last_trade.0,
        "T": a.timestamp.0 / 1_000_000,
        "m": a.buyer_is_maker,
        "M": true,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KlinesQuery {
    symbol: String,
    interval: String,
    start_time: Option<u64>,
    end_time: Option<u64>,
    time_zone: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v3/klines` and `uiKlines`: candles, oldest first, each
/// `[openTime, open, high, low, close, volume, closeTime, quoteVolume,
/// trades, takerBuyBaseVolume, takerBuyQuoteVolume, "0"]`. Intervals
/// without trades are flat at the previous close, so `uiKlines` (candles
/// for charts) needs nothing more.
async fn klines(State(gw): App, uri: Uri) -> ApiResult {
    let q: KlinesQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let interval = store::Interval::from_name(&q.interval)
        .ok_or_else(|| ApiError::new(code::BAD_INTERVAL, "Invalid interval."))?;
    let tz = match q.time_zone.as_deref() {
        None => 0,
        Some(z) => store::parse_time_zone(z)
            .ok_or_else(|| ApiError::new(code::ILLEGAL_CHARS, "Invalid timeZone."))?,
    };
    if let (Some(s), Some(e)) = (q.start_time, q.end_time)
        && s > e
    {
        return Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "startTime must not be after endTime.",
        ));
    }
    let n = limit(q.limit, 500, 1_000)?;
    let window = store::KlineWindow {
        start_ms: q.start_time,
        end_ms: q.end_time,
        limit: n,
        tz_offset_minutes: tz,
        // The current bucket is there even before it trades.
        now_ms: Some(crate::now_ns() / 1_000_000),
    };
    let candles = gw
        .store
        .klines(p.symbol, interval, window)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = candles.iter().map(|c| kline_row(c, p)).collect();
    Ok(Json(out).into_response())
}

/// One row of `klines` and `uiKlines`, positions as Binance's.
pub(in crate::rest) fn kline_row(c: &store::Candle, p: &PairConfig) -> Value {
    let (ps, qs) = (p.price_scale, p.qty_scale);
    json!([
        c.open_time_ms,
        c.open.to_decimal(ps),
        c.high.to_decimal(ps),
        c.low.to_decimal(ps),
        c.close.to_decimal(ps),
        decimal(c.volume, qs),
        c.close_time_ms,
        decimal(c.quote_volume, ps),
        c.trades,
        decimal(c.taker_buy_volume, qs),
        decimal(c.taker_buy_quote_volume, ps),
        "0",
    ])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SymbolOrSymbols {
    symbol: Option<String>,
    /// A JSON array of names: `["BTCEUR","ETHEUR"]`.
    symbols: Option<String>,
}

/// The pairs a ticker request names, and whether it named one (answered
/// as an object) or several (a list).
fn tickers_of<'a>(
    gw: &'a Gateway,
    q: &SymbolOrSymbols,
) -> Result<(Vec<&'a PairConfig>, bool), ApiError> {
    match (&q.symbol, &q.symbols) {
        (Some(_), Some(_)) => Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "Send symbol or symbols, not both.",
        )),
        (Some(one), None) => Ok((vec![symbol(gw, one)?], true)),
        (None, Some(list)) => {
            let names: Vec<String> = serde_json::from_str(list).map_err(|_| {
                ApiError::new(
                    code::ILLEGAL_CHARS,
                    "symbols must be a JSON array of names, such as [\"BTCEUR\"].",
                )
            })?;
            let pairs = names
                .iter()
                .map(|n| symbol(gw, n))
                .collect::<Result<_, _>>()?;
            Ok((pairs, false))
        }
        (None, None) => Ok((gw.pair_list.iter().collect(), false)),
    }
}

/// One object for one symbol, a list for several.
fn one_or_list(mut items: Vec<Value>, one: bool) -> Value {
    match (one, items.pop()) {
        (true, Some(v)) => v,
        (_, last) => {
            items.extend(last);
            Value::Array(items)
        }
    }
}

/// `GET /api/v3/ticker/price`: the last trade's price.
async fn price_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolOrSymbols = params::parse(uri.query().unwrap_or(""), "")?;
    let (pairs, one) = tickers_of(&gw, &q)?;
    let mut out = Vec::with_capacity(pairs.len());
    for p in pairs {
        let last = gw
            .store
            .trades(p.symbol, 1)
            .await
            .map_err(ApiError::internal)?;
        let price = last.first().map_or(proto::Price(0), |f| f.price);
        out.push(price_entry(p, price));
    }
    Ok(Json(one_or_list(out, one)).into_response())
}

/// One entry of `ticker/price`.
pub(in crate::rest) fn price_entry(p: &PairConfig, price: proto::Price) -> Value {
    json!({"symbol": p.symbol.joined(), "price": price.to_decimal(p.price_scale)})
}

/// `GET /api/v3/ticker/bookTicker`: the best bid and ask.
async fn book_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolOrSymbols = params::parse(uri.query().unwrap_or(""), "")?;
    let (pairs, one) = tickers_of(&gw, &q)?;
    let out = pairs
        .into_iter()
        .filter_map(|p| Some(book_entry(p, &gw.market.depth(p.symbol, 1)?)))
        .collect();
    Ok(Json(one_or_list(out, one)).into_response())
}

/// One entry of `ticker/bookTicker`: the best levels of `d`, zeros for an
/// empty side.
pub(in crate::rest) fn book_entry(p: &PairConfig, d: &DepthView) -> Value {
    let side = |l: Option<&(proto::Price, proto::Qty)>| {
        let (price, qty) = l.copied().unwrap_or_default();
        (price.to_decimal(p.price_scale), qty.to_decimal(p.qty_scale))
    };
    let (bid, bid_qty) = side(d.bids.first());
    let (ask, ask_qty) = side(d.asks.first());
    json!({
        "symbol": p.symbol.joined(),
        "bidPrice": bid,
        "bidQty": bid_qty,
        "askPrice": ask,
        "askQty": ask_qty,
    })
}
