//! A pair's trading status and rules, changed by an operator at runtime:
//! `POST /admin/v1/pairs/status` and `POST /admin/v1/pairs/rules`. Each
//! builds one `ChangePair` command and submits it through the same
//! `CommandLog::submit` as any order, so it is stamped and sequenced in the
//! pair's own log (both modes) and replays to the same rules; the answer is
//! the pair's rules and status as its book applied them, or the refusal.
//!
//! Not the store's halts (`exchange pairs halted|resume`): those stop a pair
//! whose rows the store refused, outside the log. A status here is the
//! market's (Binance's `TRADING`, `HALT`, `BREAK`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use commandlog::SubmitError;
use proto::{
    AdvancedChange, AdvancedOrders, Command, CommandBody, EventBody, PairChange, PairConfig, Price,
    Qty, QuoteQty, StpMode, Timestamp, TradingStatus, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminErrors, signed_json};
use crate::Gateway;
use crate::errors::{ApiError, code};
use crate::rest::bodies::PairInfo;
use crate::rest::openapi::ErrorBody;

type App = State<Arc<Gateway>>;

/// The user a `ChangePair` command names: no account's (as the sequencer's
/// `AdvanceTime`); the operator is in the gateway's log line.
const OPERATOR_USER: UserId = UserId(0);

/// The body of `POST /admin/v1/pairs/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusRequest {
    /// The pair: `BTC-EUR` or Binance's `BTCEUR`.
    symbol: String,
    /// `TRADING`, `HALT` (cancels only) or `BREAK` (nothing).
    status: String,
}

/// The body of `POST /admin/v1/pairs/rules`: every rule is optional and
/// keeps its value when left out. Decimals at the pair's scales, which
/// never change (nor does the symbol).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RulesRequest {
    /// The pair: `BTC-EUR` or Binance's `BTCEUR`.
    symbol: String,
    /// `PRICE_FILTER`'s `tickSize`.
    tick_size: Option<String>,
    /// `LOT_SIZE`'s `stepSize`.
    step_size: Option<String>,
    /// `LOT_SIZE`'s `minQty`.
    min_qty: Option<String>,
    /// `LOT_SIZE`'s `maxQty`.
    max_qty: Option<String>,
    /// `PRICE_FILTER`'s `maxPrice`.
    max_price: Option<String>,
    /// `NOTIONAL`'s `minNotional`.
    min_notional: Option<String>,
    /// `NOTIONAL`'s `maxNotional`.
    max_notional: Option<String>,
    /// `MAX_NUM_ORDERS`: most orders the book holds.
    max_open_orders: Option<u32>,
    /// `NONE`, `EXPIRE_TAKER`, `EXPIRE_MAKER` or `EXPIRE_BOTH`.
    default_self_trade_prevention_mode: Option<String>,
    /// The advanced order types to allow (`true`) or refuse (`false`):
    /// `conditional`, `trailing`, `iceberg`, `lists`, `good_till_date`.
    /// Each left out keeps its value (merged by the pair's book, in log
    /// order).
    #[schema(value_type = Option<Object>)]
    advanced: Option<AdvancedChange>,
    /// The maker fee in basis points of a trade's value, for orders placed
    /// from the change on (orders open keep theirs). At most
    /// `takerFeeBps`.
    maker_fee_bps: Option<u16>,
    /// The taker fee in basis points, likewise. At most 10000.
    taker_fee_bps: Option<u16>,
}

/// The pair's rules and status after a change: its `exchangeInfo` entry
/// (the same filters, rendered by the same code), with this exchange's name
/// of the pair and its advanced order types by flag.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PairAnswer<'a> {
    #[serde(flatten)]
    info: PairInfo<'a>,
    /// `BTC-EUR`.
    pair: String,
    /// `conditional`, `trailing`, `iceberg`, `lists`, `good_till_date`:
    /// each allowed or not.
    #[schema(value_type = Object)]
    advanced: AdvancedOrders,
    /// The maker rate new orders are charged, in basis points (charged
    /// only when the exchange keeps accounts).
    maker_fee_bps: u16,
    /// The taker rate new orders are charged, in basis points.
    taker_fee_bps: u16,
}

/// Sets a pair's trading status.
#[utoipa::path(post, path = "/admin/v1/pairs/status", tag = "Operators", request_body = inline(StatusRequest),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The pair's rules and status now.", body = PairAnswer), AdminErrors,
        (status = 503, description = "The pair stopped on a fault (-1009), or the exchange is shutting down (-1008).", body = ErrorBody)))]
pub(crate) async fn set_status(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (op, r): (_, StatusRequest) = signed_json(&gw, &headers, &uri, body).await?;
    let p = pair(&gw, &r.symbol)?;
    let status = TradingStatus::from_name(&r.status).ok_or_else(|| {
        ApiError::new(
            code::INVALID_SYMBOL_STATUS,
            "Invalid symbolStatus: TRADING, HALT or BREAK.",
        )
    })?;
    let change = PairChange {
        status: Some(status),
        ..PairChange::default()
    };
    tracing::info!(operator = %op.name, pair = %p.symbol, status = status.as_str(), "pair status");
    change_pair(&gw, &p, change).await
}

/// Changes a pair's rules (those named; the rest keep their values).
#[utoipa::path(post, path = "/admin/v1/pairs/rules", tag = "Operators", request_body = inline(RulesRequest),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The pair's rules and status now.", body = PairAnswer), AdminErrors,
        (status = 503, description = "The pair stopped on a fault (-1009), or the exchange is shutting down (-1008).", body = ErrorBody)))]
pub(crate) async fn set_rules(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (op, r): (_, RulesRequest) = signed_json(&gw, &headers, &uri, body).await?;
    let p = pair(&gw, &r.symbol)?;
    let change = rules_change(&r, &p)?;
    if change.is_empty() {
        return Err(ApiError::new(
            code::MISSING_PARAM,
            "Name at least one rule to change.",
        ));
    }
    // What the gateway can see is refused before it is logged (the book
    // keeps its own check, which also covers the orders it holds and a
    // change that lands first).
    if let Err(e) = change.merged(&p).validate() {
        return Err(ApiError::new(
            code::INVALID_PAIR_CHANGE,
            format!("{e}. Nothing changed."),
        ));
    }
    tracing::info!(operator = %op.name, pair = %p.symbol, ?change, "pair rules");
    change_pair(&gw, &p, change).await
}

/// The pair named `name` (`BTC-EUR` or `BTCEUR`), with its rules now.
fn pair(gw: &Gateway, name: &str) -> Result<PairConfig, ApiError> {
    let symbol = proto::Symbol::new(name)
        .ok()
        .filter(|s| gw.rules(*s).is_some())
        .or_else(|| gw.symbol_named(name))
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    gw.log
        .pair(symbol)
        .map(|s| s.config())
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
}

/// The change a rules request names, its decimals at `p`'s scales.
fn rules_change(r: &RulesRequest, p: &PairConfig) -> Result<PairChange, ApiError> {
    let dec = |field: &str, v: &Option<String>, scale: u8| -> Result<Option<u64>, ApiError> {
        v.as_deref()
            .map(|t| proto::parse_decimal(t, scale).map_err(|e| ApiError::decimal(field, e)))
            .transpose()
    };
    let stp = r
        .default_self_trade_prevention_mode
        .as_deref()
        .map(|s| {
            StpMode::from_name(s).ok_or_else(|| {
                ApiError::new(code::BAD_ENUM, "Invalid defaultSelfTradePreventionMode.")
            })
        })
        .transpose()?;
    Ok(PairChange {
        status: None,
        tick_size: dec("tickSize", &r.tick_size, p.price_scale)?.map(Price),
        lot_size: dec("stepSize", &r.step_size, p.qty_scale)?.map(Qty),
        min_qty: dec("minQty", &r.min_qty, p.qty_scale)?.map(Qty),
        max_qty: dec("maxQty", &r.max_qty, p.qty_scale)?.map(Qty),
        max_price: dec("maxPrice", &r.max_price, p.price_scale)?.map(Price),
        min_notional: dec("minNotional", &r.min_notional, p.price_scale)?.map(QuoteQty),
        max_notional: dec("maxNotional", &r.max_notional, p.price_scale)?.map(QuoteQty),
        max_open_orders: r.max_open_orders,
        default_stp: stp,
        advanced: r.advanced.unwrap_or_default(),
        maker_fee_bps: r.maker_fee_bps,
        taker_fee_bps: r.taker_fee_bps,
    })
}

/// Submits the change to `p`'s log and answers with what its book made of
/// it: the rules and status now, or the refusal (nothing changed).
async fn change_pair(
    gw: &Gateway,
    p: &PairConfig,
    change: PairChange,
) -> Result<Response, ApiError> {
    let cmd = Command {
        pair: p.symbol,
        user: OPERATOR_USER,
        timestamp: Timestamp(commandlog::now_ns()),
        body: CommandBody::ChangePair(Box::new(change)),
    };
    let retry = |code, msg: &str| ApiError::retry(code, msg, gw.config.retry_after_secs);
    let submitted = gw.log.submit(cmd, true).await.map_err(|e| match e {
        SubmitError::Halted => retry(code::PAIR_HALTED, "The pair stopped on a fault."),
        SubmitError::ShuttingDown => retry(code::OVERLOADED, "The exchange is shutting down."),
        SubmitError::UnknownPair => ApiError::new(code::BAD_SYMBOL, "Invalid symbol."),
        SubmitError::Store(_) | SubmitError::Refused(_) => ApiError::internal(e),
    })?;
    let position = submitted.position;
    let timeout = || {
        ApiError::new(
            code::RESULT_TIMEOUT,
            format!(
                "The change is in the log at position {position}, but its outcome did not arrive in time; read exchangeInfo."
            ),
        )
    };
    let rx = submitted.outcome.ok_or_else(timeout)?;
    let record = match tokio::time::timeout(gw.result_timeout(), rx).await {
        Ok(Ok(record)) => record,
        _ => return Err(timeout()),
    };
    for e in &record.events {
        match e.body {
            EventBody::PairChanged(c) => {
                return Ok(answer(&c.config, c.status));
            }
            EventBody::Rejected(r) => {
                return Err(ApiError::new(
                    code::INVALID_PAIR_CHANGE,
                    format!("{} Nothing changed.", r.code.message()),
                ));
            }
            _ => {}
        }
    }
    Err(ApiError::internal(
        "the pair's book answered the change with no outcome",
    ))
}

/// A pair's rules and status, as [`PairAnswer`].
pub(super) fn answer(c: &PairConfig, status: TradingStatus) -> Response {
    Json(PairAnswer {
        info: PairInfo::new(c, status.as_str(), true),
        pair: c.symbol.to_string(),
        advanced: c.advanced,
        maker_fee_bps: c.fees.maker_bps,
        taker_fee_bps: c.fees.taker_bps,
    })
    .into_response()
}
