//! Tickers over a window of trades: `ticker/24hr`, the rolling-window
//! `ticker`, and `avgPrice`. Exact over the window to the nanosecond: the
//! store sums whole candles inside it and single trades at its edges.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::get;
use proto::{PairConfig, Price};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::WindowStats;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::super::openapi::{PublicErrors, any_of, merged, one_or_list_of};
use super::super::params::{self, missing};
use super::super::{ApiResult, App, pairs_named, symbol};
use super::one_or_list;
use crate::Gateway;
use crate::errors::{ApiError, code};
use crate::money::decimal;

pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v3/ticker/24hr", get(day_ticker))
        .route("/api/v3/ticker", get(rolling_ticker))
        .route("/api/v3/avgPrice", get(avg_price))
}

const MINUTE_MS: u64 = 60_000;

/// `avgPrice`'s window, in minutes, as Binance's.
const AVG_PRICE_MINS: u64 = 5;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(in crate::rest) struct TickerQuery {
    /// One pair; not with `symbols` (-1128).
    symbol: Option<String>,
    /// A JSON array of names, at most 100: `["BTCEUR","ETHEUR"]`.
    #[param(value_type = Option<super::super::openapi::SymbolList>, inline)]
    symbols: Option<String>,
    /// The window up to now: `1m`..`59m`, `1h`..`23h`, `1d`..`7d`
    /// (default `1d`).
    #[param(value_type = Option<super::super::openapi::WindowSize>, inline)]
    window_size: Option<String>,
    /// `FULL` (the default) or `MINI`.
    #[serde(rename = "type")]
    #[param(value_type = Option<super::super::openapi::TickerType>, inline)]
    kind: Option<String>,
}

/// A rolling window's statistics (`ticker`, `FULL`), as [`ticker`]
/// builds them.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `ticker`
struct RollingTicker {
    symbol: String,
    price_change: String,
    /// Percent, three decimals.
    price_change_percent: String,
    weighted_avg_price: String,
    open_price: String,
    high_price: String,
    low_price: String,
    last_price: String,
    volume: String,
    quote_volume: String,
    /// Unix milliseconds.
    open_time: u64,
    /// Unix milliseconds.
    close_time: u64,
    /// -1 without trades.
    first_id: i64,
    /// -1 without trades.
    last_id: i64,
    count: u64,
}

/// What [`day_fields`] adds to the 24-hour `FULL` ticker.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `day_fields`
struct DayExtras {
    prev_close_price: String,
    last_qty: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
}

/// The 24-hour `FULL` ticker.
#[derive(Debug)]
struct DayTicker;

impl PartialSchema for DayTicker {
    fn schema() -> RefOr<Schema> {
        merged(RollingTicker::schema(), DayExtras::schema())
    }
}

impl ToSchema for DayTicker {}

/// The `MINI` ticker of either window.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `ticker` with `mini`
struct MiniTicker {
    symbol: String,
    open_price: String,
    high_price: String,
    low_price: String,
    last_price: String,
    volume: String,
    quote_volume: String,
    /// Unix milliseconds.
    open_time: u64,
    /// Unix milliseconds.
    close_time: u64,
    /// -1 without trades.
    first_id: i64,
    /// -1 without trades.
    last_id: i64,
    count: u64,
}

/// `ticker/24hr`'s answer.
#[derive(Debug)]
struct DayTickers;

impl PartialSchema for DayTickers {
    fn schema() -> RefOr<Schema> {
        any_of([
            one_or_list_of(DayTicker::schema()),
            one_or_list_of(MiniTicker::schema()),
        ])
    }
}

impl ToSchema for DayTickers {}

/// `ticker`'s answer.
#[derive(Debug)]
struct RollingTickers;

impl PartialSchema for RollingTickers {
    fn schema() -> RefOr<Schema> {
        any_of([
            one_or_list_of(RollingTicker::schema()),
            one_or_list_of(MiniTicker::schema()),
        ])
    }
}

impl ToSchema for RollingTickers {}

/// Whether the `MINI` shape is asked for.
fn mini(kind: Option<&str>) -> Result<bool, ApiError> {
    match kind {
        None | Some("FULL") => Ok(false),
        Some("MINI") => Ok(true),
        Some(_) => Err(ApiError::new(code::BAD_ENUM, "Invalid type.")),
    }
}

/// A `windowSize` in milliseconds: `1m`..`59m`, `1h`..`23h`, `1d`..`7d`.
fn window_ms(size: &str) -> Option<u64> {
    // The unit is one ASCII letter; anything else is no size (and must not
    // be split inside a character).
    let unit_at = size
        .len()
        .checked_sub(1)
        .filter(|&i| size.is_char_boundary(i))?;
    let (n, unit) = size.split_at(unit_at);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "m" if n <= 59 => Some(n * MINUTE_MS),
        "h" if n <= 23 => Some(n * 60 * MINUTE_MS),
        "d" if n <= 7 => Some(n * 24 * 60 * MINUTE_MS),
        _ => None,
    }
}

/// `quote / base` as a price at the pair's scale: the volume-weighted
/// average price.
fn weighted(p: &PairConfig, s: &WindowStats) -> Price {
    let avg = s
        .quote_volume
        .saturating_mul(10u128.pow(u32::from(p.qty_scale)))
        .checked_div(s.volume)
        .unwrap_or(0);
    Price(u64::try_from(avg).unwrap_or(u64::MAX))
}

/// `(close - open) / open` in percent with three decimals, as Binance
/// writes it; `"0.000"` without an open price.
fn percent(open: Price, close: Price) -> String {
    let (open, close) = (i128::from(open.0), i128::from(close.0));
    let Some(thousandths) = ((close - open) * 100_000).checked_div(open) else {
        return "0.000".into();
    };
    let sign = if thousandths < 0 { "-" } else { "" };
    let t = thousandths.unsigned_abs();
    format!("{sign}{}.{:03}", t / 1_000, t % 1_000)
}

/// The ticker fields of one window, in Binance's order and shape.
pub(in crate::rest) fn ticker(
    p: &PairConfig,
    s: Option<&WindowStats>,
    from_ms: u64,
    to_ms: u64,
    mini: bool,
) -> Map<String, Value> {
    let (ps, qs) = (p.price_scale, p.qty_scale);
    let zero = WindowStats {
        open: Price(0),
        high: Price(0),
        low: Price(0),
        close: Price(0),
        volume: 0,
        quote_volume: 0,
        trades: 0,
        first_trade: None,
        last_trade: None,
        prev_close: None,
    };
    let s = s.unwrap_or(&zero);
    let price = |v: Price| v.to_decimal(ps);
    let id = |t: Option<proto::Seq>| t.map_or(-1, |t| i64::try_from(t.0).unwrap_or(i64::MAX));
    let mut out = Map::new();
    out.insert("symbol".into(), json!(p.symbol.joined()));
    if !mini {
        let change = i128::from(s.close.0) - i128::from(s.open.0);
        let change = proto::Price(change.unsigned_abs().try_into().unwrap_or(u64::MAX));
        let sign = if s.close < s.open { "-" } else { "" };
        out.insert(
            "priceChange".into(),
            json!(format!("{sign}{}", price(change))),
        );
        out.insert("priceChangePercent".into(), json!(percent(s.open, s.close)));
        out.insert("weightedAvgPrice".into(), json!(price(weighted(p, s))));
    }
    out.insert("openPrice".into(), json!(price(s.open)));
    out.insert("highPrice".into(), json!(price(s.high)));
    out.insert("lowPrice".into(), json!(price(s.low)));
    out.insert("lastPrice".into(), json!(price(s.close)));
    out.insert("volume".into(), json!(decimal(s.volume, qs)));
    out.insert("quoteVolume".into(), json!(decimal(s.quote_volume, ps)));
    out.insert("openTime".into(), json!(from_ms));
    out.insert("closeTime".into(), json!(to_ms));
    out.insert("firstId".into(), json!(id(s.first_trade)));
    out.insert("lastId".into(), json!(id(s.last_trade)));
    out.insert("count".into(), json!(s.trades));
    out
}

/// The window statistics of `p` over `[from_ms, to_ms]`.
async fn window(
    gw: &Gateway,
    p: &PairConfig,
    from_ms: u64,
    to_ms: u64,
) -> Result<Option<WindowStats>, ApiError> {
    let ns = |ms: u64| ms.saturating_mul(1_000_000);
    gw.store
        .ticker_window(p.symbol, ns(from_ms), ns(to_ms).saturating_add(999_999))
        .await
        .map_err(ApiError::internal)
}

/// The last 24 hours' statistics, with the book's best prices and the
/// last trade's quantity.
#[utoipa::path(get, path = "/api/v3/ticker/24hr", tag = "Market data",
    params(
        ("symbol" = Option<String>, Query, description = "One pair; not with `symbols` (-1128)."),
        ("symbols" = inline(Option<super::super::openapi::SymbolList>), Query, description = "A JSON array of names: `[\"BTCEUR\",\"ETHEUR\"]`. Neither: every pair."),
        ("type" = inline(Option<super::super::openapi::TickerType>), Query, description = "`FULL` (the default) or `MINI`."),
    ),
    responses((status = 200, description = "Tickers.", body = DayTickers), PublicErrors))]
async fn day_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: TickerQuery = params::parse(uri.query().unwrap_or(""), "")?;
    if q.window_size.is_some() {
        return Err(params::not_required("windowSize"));
    }
    let mini = mini(q.kind.as_deref())?;
    let (pairs, one) = pairs_named(&gw, q.symbol.as_deref(), q.symbols.as_deref())?;
    let to = crate::now_ms();
    let mut out = Vec::with_capacity(pairs.len());
    for p in &pairs {
        out.push(Value::Object(day_ticker_at(&gw, p, mini, to).await?));
    }
    Ok(Json(one_or_list(out, one)).into_response())
}

/// One pair's entry of `ticker/24hr` now: the `@ticker` and `@miniTicker`
/// streams send the same values.
pub(crate) async fn day_ticker_entry(
    gw: &Gateway,
    p: &PairConfig,
    mini: bool,
) -> Result<Map<String, Value>, ApiError> {
    day_ticker_at(gw, p, mini, crate::now_ms()).await
}

/// One pair's entry of `ticker/24hr` for the 24 hours up to `to` (ms).
async fn day_ticker_at(
    gw: &Gateway,
    p: &PairConfig,
    mini: bool,
    to: u64,
) -> Result<Map<String, Value>, ApiError> {
    let from = to.saturating_sub(24 * 60 * MINUTE_MS);
    let stats = window(gw, p, from, to).await?;
    let mut t = ticker(p, stats.as_ref(), from, to, mini);
    if !mini {
        day_extras(gw, p, stats.as_ref(), &mut t).await?;
    }
    Ok(t)
}

/// What the full 24-hour ticker adds: the previous close, the last
/// trade's quantity, the best bid and ask.
async fn day_extras(
    gw: &Gateway,
    p: &PairConfig,
    stats: Option<&WindowStats>,
    t: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let last = gw
        .store
        .trades(p.symbol, 1)
        .await
        .map_err(ApiError::internal)?;
    let last_qty = last.first().map_or(proto::Qty(0), |f| f.qty);
    let d = gw.market.depth(p.symbol, 1);
    let best = |side: Option<&(Price, proto::Qty)>| side.copied().unwrap_or_default();
    let bid = best(d.as_ref().and_then(|d| d.bids.first()));
    let ask = best(d.as_ref().and_then(|d| d.asks.first()));
    day_fields(p, stats, last_qty, bid, ask, t);
    Ok(())
}

/// Adds the full 24-hour ticker's own fields to `t`: the previous close,
/// `last_qty`, and the best `bid` and `ask` as `(price, qty)`.
pub(in crate::rest) fn day_fields(
    p: &PairConfig,
    stats: Option<&WindowStats>,
    last_qty: proto::Qty,
    (bid, bid_qty): (Price, proto::Qty),
    (ask, ask_qty): (Price, proto::Qty),
    t: &mut Map<String, Value>,
) {
    let (ps, qs) = (p.price_scale, p.qty_scale);
    let prev = stats.and_then(|s| s.prev_close).unwrap_or(Price(0));
    t.insert("prevClosePrice".into(), json!(prev.to_decimal(ps)));
    t.insert("lastQty".into(), json!(last_qty.to_decimal(qs)));
    t.insert("bidPrice".into(), json!(bid.to_decimal(ps)));
    t.insert("bidQty".into(), json!(bid_qty.to_decimal(qs)));
    t.insert("askPrice".into(), json!(ask.to_decimal(ps)));
    t.insert("askQty".into(), json!(ask_qty.to_decimal(qs)));
}

/// Statistics of the window `windowSize` (default `1d`) up to now.
///
/// `symbol` or `symbols` is required.
#[utoipa::path(get, path = "/api/v3/ticker", tag = "Market data", params(TickerQuery),
    responses((status = 200, description = "Tickers.", body = RollingTickers), PublicErrors))]
async fn rolling_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: TickerQuery = params::parse(uri.query().unwrap_or(""), "")?;
    if q.symbol.is_none() && q.symbols.is_none() {
        return Err(missing("symbol"));
    }
    let mini = mini(q.kind.as_deref())?;
    let size = q.window_size.as_deref().unwrap_or("1d");
    let span =
        window_ms(size).ok_or_else(|| ApiError::new(code::BAD_INTERVAL, "Invalid windowSize."))?;
    let (pairs, one) = pairs_named(&gw, q.symbol.as_deref(), q.symbols.as_deref())?;
    if pairs.len() > 100 {
        return Err(ApiError::new(code::BAD_INTERVAL, "At most 100 symbols."));
    }
    let to = crate::now_ms();
    let from = to.saturating_sub(span);
    let mut out = Vec::with_capacity(pairs.len());
    for p in &pairs {
        let stats = window(&gw, p, from, to).await?;
        out.push(Value::Object(ticker(p, stats.as_ref(), from, to, mini)));
    }
    Ok(Json(one_or_list(out, one)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(in crate::rest) struct AvgPriceQuery {
    symbol: String,
}

/// `avgPrice`'s answer.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `avg_price_body`
struct AvgPrice {
    /// The window, in minutes: 5.
    mins: u64,
    price: String,
    /// The last trade's time, Unix milliseconds.
    close_time: u64,
}

/// The volume-weighted price of the last five minutes; the last price
/// when nothing traded in them.
#[utoipa::path(get, path = "/api/v3/avgPrice", tag = "Market data", params(AvgPriceQuery),
    responses((status = 200, description = "The average.", body = AvgPrice), PublicErrors))]
async fn avg_price(State(gw): App, uri: Uri) -> ApiResult {
    let q: AvgPriceQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = &symbol(&gw, &q.symbol)?;
    let to = crate::now_ms();
    let from = to.saturating_sub(AVG_PRICE_MINS * MINUTE_MS);
    let stats = window(&gw, p, from, to).await?;
    let price = match &stats {
        Some(s) if s.volume > 0 => weighted(p, s),
        Some(s) => s.prev_close.unwrap_or(s.close),
        None => Price(0),
    };
    // Binance's `closeTime` is the last trade's time.
    let last = gw
        .store
        .trades(p.symbol, 1)
        .await
        .map_err(ApiError::internal)?;
    let last_ms = last.first().map_or(0, |f| f.timestamp.0 / 1_000_000);
    Ok(Json(avg_price_body(p, price, last_ms)).into_response())
}

/// `avgPrice`'s answer: `price`, and the time of the last trade.
pub(in crate::rest) fn avg_price_body(p: &PairConfig, price: Price, last_trade_ms: u64) -> Value {
    json!({
        "mins": AVG_PRICE_MINS,
        "price": price.to_decimal(p.price_scale),
        "closeTime": last_trade_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_are_binances() {
        assert_eq!(window_ms("1m"), Some(60_000));
        assert_eq!(window_ms("59m"), Some(59 * 60_000));
        assert_eq!(window_ms("23h"), Some(23 * 3_600_000));
        assert_eq!(window_ms("7d"), Some(7 * 86_400_000));
        for bad in [
            "", "0m", "60m", "24h", "8d", "1w", "m", "-1m", "1", "\u{80}", "1\u{80}", "é",
        ] {
            assert_eq!(window_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_has_three_decimals_and_a_sign() {
        assert_eq!(percent(Price(10_000), Price(10_500)), "5.000");
        assert_eq!(percent(Price(10_000), Price(9_999)), "-0.010");
        assert_eq!(percent(Price(0), Price(5)), "0.000");
    }
}
