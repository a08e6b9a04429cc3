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

use super::super::params::{self, missing};
use super::super::{ApiResult, App, symbol};
use super::{SymbolOrSymbols, one_or_list, tickers_of};
use crate::errors::{ApiError, code};
use crate::money::decimal;
use crate::{Gateway, now_ns};

pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v3/ticker/24hr", get(day_ticker))
        .route("/api/v3/ticker", get(rolling_ticker))
        .route("/api/v3/avgPrice", get(avg_price))
}

const MINUTE_MS: u64 = 60_000;

/// `avgPrice`'s window, in minutes, as Binance's.
const AVG_PRICE_MINS: u64 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TickerQuery {
    symbol: Option<String>,
    symbols: Option<String>,
    window_size: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

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
    let (n, unit) = size.split_at(size.len().checked_sub(1)?);
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

/// `GET /api/v3/ticker/24hr`: the last 24 hours, with the book's best
/// prices and the last trade's quantity.
async fn day_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: TickerQuery = params::parse(uri.query().unwrap_or(""), "")?;
    if q.window_size.is_some() {
        return Err(params::not_required("windowSize"));
    }
    let mini = mini(q.kind.as_deref())?;
    let pick = SymbolOrSymbols {
        symbol: q.symbol,
        symbols: q.symbols,
    };
    let (pairs, one) = tickers_of(&gw, &pick)?;
    let to = now_ns() / 1_000_000;
    let from = to.saturating_sub(24 * 60 * MINUTE_MS);
    let mut out = Vec::with_capacity(pairs.len());
    for p in pairs {
        let stats = window(&gw, p, from, to).await?;
        let mut t = ticker(p, stats.as_ref(), from, to, mini);
        if !mini {
            day_extras(&gw, p, stats.as_ref(), &mut t).await?;
        }
        out.push(Value::Object(t));
    }
    Ok(Json(one_or_list(out, one)).into_response())
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

/// `GET /api/v3/ticker`: the window `windowSize` (default `1d`) up to now.
async fn rolling_ticker(State(gw): App, uri: Uri) -> ApiResult {
    let q: TickerQuery = params::parse(uri.query().unwrap_or(""), "")?;
    if q.symbol.is_none() && q.symbols.is_none() {
        return Err(missing("symbol"));
    }
    let mini = mini(q.kind.as_deref())?;
    let size = q.window_size.as_deref().unwrap_or("1d");
    let span =
        window_ms(size).ok_or_else(|| ApiError::new(code::BAD_INTERVAL, "Invalid windowSize."))?;
    let pick = SymbolOrSymbols {
        symbol: q.symbol,
        symbols: q.symbols,
    };
    let (pairs, one) = tickers_of(&gw, &pick)?;
    if pairs.len() > 100 {
        return Err(ApiError::new(code::BAD_INTERVAL, "At most 100 symbols."));
    }
    let to = now_ns() / 1_000_000;
    let from = to.saturating_sub(span);
    let mut out = Vec::with_capacity(pairs.len());
    for p in pairs {
        let stats = window(&gw, p, from, to).await?;
        out.push(Value::Object(ticker(p, stats.as_ref(), from, to, mini)));
    }
    Ok(Json(one_or_list(out, one)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvgPriceQuery {
    symbol: String,
}

/// `GET /api/v3/avgPrice`: the volume-weighted price of the last five
/// minutes; the last price when nothing traded in them.
async fn avg_price(State(gw): App, uri: Uri) -> ApiResult {
    let q: AvgPriceQuery = params::parse(uri.query().unwrap_or(""), "")?;
    let p = symbol(&gw, &q.symbol)?;
    let to = now_ns() / 1_000_000;
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
        for bad in ["", "0m", "60m", "24h", "8d", "1w", "m", "-1m", "1"] {
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
