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
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::bodies::{DepthBody, PublicTrade};
use super::openapi::{Decimal, ParamErrors, PublicErrors, one_or_list_of};
use super::params;
use super::{ApiResult, App, limit, pairs_named, symbol};
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
        .route("/api/v3/uiKlines", get(ui_klines))
        .route("/api/v3/ticker/price", get(price_ticker))
        .route("/api/v3/ticker/bookTicker", get(book_ticker))
        .merge(tickers::routes())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SymbolLimit {
    symbol: String,
    /// `depth`: 1 to 5,000, default 100; `trades`: 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 5_000)]
    limit: Option<u32>,
}

/// The order book, best levels first.
#[utoipa::path(get, path = "/api/v3/depth", tag = "Market data", params(SymbolLimit),
    responses((status = 200, description = "Bids and asks.", body = DepthBody), ParamErrors))]
async fn depth(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolLimit = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 100, 5_000)?;
    let d = gw
        .market
        .depth(p.symbol, n as usize)
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    Ok(Json(DepthBody::new(&d, p)).into_response())
}

/// The most recent trades, oldest first.
#[utoipa::path(get, path = "/api/v3/trades", tag = "Market data", params(SymbolLimit),
    responses((status = 200, description = "Trades.", body = Vec<PublicTrade>), PublicErrors))]
async fn trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolLimit = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct FromIdQuery {
    symbol: String,
    /// 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 1_000)]
    limit: Option<u32>,
    /// The first trade's id.
    from_id: Option<u64>,
}

/// Trades from `fromId`, or the most recent, oldest first.
#[utoipa::path(get, path = "/api/v3/historicalTrades", tag = "Market data", params(FromIdQuery),
    responses((status = 200, description = "Trades.", body = Vec<PublicTrade>), PublicErrors))]
async fn historical_trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: FromIdQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 500, 1_000)?;
    let rows = gw
        .store
        .trades_from(p.symbol, q.from_id.map(proto::Seq), n)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<PublicTrade> = rows.iter().map(|f| PublicTrade::new(f, p)).collect();
    Ok(Json(out).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct AggTradesQuery {
    symbol: String,
    /// The first aggregate's id; not with `startTime` or `endTime` (-1128).
    from_id: Option<u64>,
    /// Unix milliseconds; at most an hour before `endTime`.
    start_time: Option<u64>,
    /// Unix milliseconds.
    end_time: Option<u64>,
    /// 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 1_000)]
    limit: Option<u32>,
}

/// One entry of `aggTrades`, as [`agg_trade`] builds it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `agg_trade`
struct AggTrade {
    /// The aggregate's id: its first trade's.
    a: u64,
    /// Price.
    p: String,
    /// Quantity.
    q: String,
    /// First trade id.
    f: u64,
    /// Last trade id.
    l: u64,
    /// Unix milliseconds.
    #[schema(rename = "T")]
    time: u64,
    /// Whether the buyer was the maker.
    m: bool,
    /// Always `true`.
    #[schema(rename = "M")]
    best_match: bool,
}

/// Binance's widest `aggTrades` window: one hour.
const HOUR_MS: u64 = 60 * 60 * 1_000;

/// Compressed trades: fills of one taker order at one price, summed.
///
/// An aggregate's id is its first trade's, so ids increase with gaps.
#[utoipa::path(get, path = "/api/v3/aggTrades", tag = "Market data", params(AggTradesQuery),
    responses((status = 200, description = "Aggregates, oldest first.", body = Vec<AggTrade>), PublicErrors))]
async fn agg_trades(State(gw): App, uri: Uri) -> ApiResult {
    let q: AggTradesQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct KlinesQuery {
    symbol: String,
    #[param(value_type = super::openapi::KlineInterval, inline)]
    interval: String,
    /// Unix milliseconds.
    start_time: Option<u64>,
    /// Unix milliseconds; not before `startTime` (-1128).
    end_time: Option<u64>,
    /// The offset candles are aligned in (default 0, UTC); the times
    /// stay UTC.
    #[param(value_type = Option<super::openapi::TimeZone>, inline)]
    time_zone: Option<String>,
    /// 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 1_000)]
    limit: Option<u32>,
}

/// A candle as the `json!` of `kline_row` builds it. (Its positions are
/// described rather than given as `prefixItems`, which Schemathesis 4
/// cannot read.)
#[derive(Debug)]
struct Kline;

impl PartialSchema for Kline {
    fn schema() -> RefOr<Schema> {
        let int = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0));
        ArrayBuilder::new()
            .items(super::openapi::any_of([int.into(), Decimal::schema()]))
            .min_items(Some(12))
            .max_items(Some(12))
            .description(Some(
                "`[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, \
                 takerBuyBaseVolume, takerBuyQuoteVolume, \"0\"]`: times in Unix milliseconds and \
                 the number of trades as integers, prices and volumes as decimal strings.",
            ))
            .into()
    }
}

impl ToSchema for Kline {}

/// Candles of a pair, oldest first.
///
/// Intervals without trades are flat at the previous close.
#[utoipa::path(get, path = "/api/v3/klines", tag = "Market data", params(KlinesQuery),
    responses((status = 200, description = "Candles.", body = Vec<Kline>), PublicErrors))]
async fn klines(State(gw): App, uri: Uri) -> ApiResult {
    let q: KlinesQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
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
        now_ms: Some(crate::now_ms()),
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
pub(crate) fn kline_row(c: &store::Candle, p: &PairConfig) -> Value {
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

/// Candles for charts: the same as `klines`, whose intervals without
/// trades are already flat at the previous close.
#[utoipa::path(get, path = "/api/v3/uiKlines", tag = "Market data", params(KlinesQuery),
    responses((status = 200, description = "Candles.", body = Vec<Kline>), PublicErrors))]
async fn ui_klines(state: App, uri: Uri) -> ApiResult {
    klines(state, uri).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SymbolOrSymbols {
    /// One pair; not with `symbols` (-1128).
    symbol: Option<String>,
    /// A JSON array of names: `["BTCEUR","ETHEUR"]`. Neither: every pair.
    #[param(value_type = Option<super::openapi::SymbolList>, inline)]
    symbols: Option<String>,
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

/// `ticker/price`'s entry.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `price_entry`
struct PriceTicker {
    symbol: String,
    /// The last trade's price; 0 before any trade.
    price: String,
}

/// `ticker/price`'s answer.
#[derive(Debug)]
struct PriceTickers;

impl PartialSchema for PriceTickers {
    fn schema() -> RefOr<Schema> {
        one_or_list_of(PriceTicker::schema())
    }
}

impl ToSchema for PriceTickers {}

/// The last trade's price.
#[utoipa::path(get, path = "/api/v3/ticker/price", tag = "Market data", params(SymbolOrSymbols),
    responses((status = 200, description = "Prices.", body = PriceTickers), PublicErrors))]
async fn price_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolOrSymbols = params::parse(uri.query().unwrap_or(""), "")?;
    let (pairs, one) = pairs_named(&gw, q.symbol.as_deref(), q.symbols.as_deref())?;
    let mut out = Vec::with_capacity(pairs.len());
    for p in &pairs {
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

/// `ticker/bookTicker`'s entry; an empty side is 0 at 0.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `book_entry`
struct BookTicker {
    symbol: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
}

/// `ticker/bookTicker`'s answer.
#[derive(Debug)]
struct BookTickers;

impl PartialSchema for BookTickers {
    fn schema() -> RefOr<Schema> {
        one_or_list_of(BookTicker::schema())
    }
}

impl ToSchema for BookTickers {}

/// The best bid and ask.
#[utoipa::path(get, path = "/api/v3/ticker/bookTicker", tag = "Market data", params(SymbolOrSymbols),
    responses((status = 200, description = "Best prices.", body = BookTickers), ParamErrors))]
async fn book_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: SymbolOrSymbols = params::parse(uri.query().unwrap_or(""), "")?;
    let (pairs, one) = pairs_named(&gw, q.symbol.as_deref(), q.symbols.as_deref())?;
    let out = pairs
        .iter()
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
