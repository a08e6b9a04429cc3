//! The caller's orders and trades: `openOrders`, `allOrders`, `myTrades`,
//! from the store, once it holds what the engine had done when the request
//! arrived.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use proto::{Fees, OrderId, Seq};
use serde::Deserialize;
use store::TradeFilter;
use utoipa::IntoParams;

use super::super::bodies::{AccountTrade, OrderBody};
use super::super::openapi::SignedErrors;
use super::super::params::not_required;
use super::super::{ApiResult, App, limit, read_own_writes, signed_request, symbol};
use crate::auth::Caller;
use crate::errors::{ApiError, code};

/// Binance's widest `startTime`..`endTime` window for trades: 24 hours.
const DAY_MS: u64 = 24 * 60 * 60 * 1_000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct OpenOrdersQuery {
    /// One pair; every pair when not sent.
    symbol: Option<String>,
}

/// The caller's open orders.
#[utoipa::path(get, path = "/api/v3/openOrders", tag = "Trading", params(OpenOrdersQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Open orders.", body = Vec<OrderBody>), SignedErrors))]
pub(crate) async fn open_orders(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, OpenOrdersQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let pair = q
        .symbol
        .as_deref()
        .map(|s| symbol(&gw, s).map(|p| p.symbol))
        .transpose()?;
    let pairs: Vec<_> = match pair {
        Some(p) => vec![p],
        None => gw.symbols(),
    };
    read_own_writes(&gw, &pairs).await;
    let rows = gw
        .store
        .open_orders(caller.user, pair)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<OrderBody> = rows
        .iter()
        .filter_map(|o| gw.rules(o.pair).map(|p| super::order_body(&gw, o, &p)))
        .collect();
    Ok(Json(out).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    symbol: String,
    /// Only this order's trades.
    order_id: Option<u64>,
    /// Unix milliseconds; at most 24 hours before `endTime`.
    start_time: Option<u64>,
    /// Unix milliseconds.
    end_time: Option<u64>,
    /// The first trade's id; not with `startTime` or `endTime` (-1128).
    from_id: Option<u64>,
    /// 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 1_000)]
    limit: Option<u32>,
}

/// `startTime` and `endTime` as a window no wider than `max_ms` (when
/// given), with Binance's codes for a window backwards or too wide.
fn window(q: &HistoryQuery, max_ms: Option<u64>) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let (start, end) = (q.start_time, q.end_time);
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "startTime must not be after endTime.",
            ));
        }
        if max_ms.is_some_and(|m| e - s > m) {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "The time between startTime and endTime can't be longer than 24 hours.",
            ));
        }
    }
    Ok((start, end))
}

/// The caller's orders on a pair, open or not, from `orderId` or in a
/// window.
#[utoipa::path(get, path = "/api/v3/allOrders", tag = "Trading",
    params(
        ("symbol" = String, Query),
        ("orderId" = Option<u64>, Query, minimum = 0, description = "Orders from this id on."),
        ("startTime" = Option<u64>, Query, minimum = 0, description = "Unix milliseconds; at most 24 hours before `endTime`."),
        ("endTime" = Option<u64>, Query, minimum = 0, description = "Unix milliseconds."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1,000, default 500."),
    ),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Orders.", body = Vec<OrderBody>), SignedErrors))]
pub(crate) async fn all_orders(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, HistoryQuery) = signed_request(&gw, &headers, &uri, body).await?;
    if q.from_id.is_some() {
        return Err(not_required("fromId"));
    }
    let p = &symbol(&gw, &q.symbol)?;
    let (start_ms, end_ms) = window(&q, Some(DAY_MS))?;
    let n = limit(q.limit, 500, 1_000)?;
    let from = q.order_id.map(OrderId);
    read_own_writes(&gw, &[p.symbol]).await;
    let rows = gw
        .store
        .all_orders(caller.user, p.symbol, from, start_ms, end_ms, n)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<OrderBody> = rows.iter().map(|o| super::order_body(&gw, o, p)).collect();
    Ok(Json(out).into_response())
}

/// The caller's trades on a pair.
#[utoipa::path(get, path = "/api/v3/myTrades", tag = "Trading", params(HistoryQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Trades, as the caller's side saw each.", body = Vec<AccountTrade>), SignedErrors))]
pub(crate) async fn my_trades(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, HistoryQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let p = &symbol(&gw, &q.symbol)?;
    if q.from_id.is_some() && (q.start_time.is_some() || q.end_time.is_some()) {
        return Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "fromId cannot be sent with startTime or endTime.",
        ));
    }
    let (start_ms, end_ms) = window(&q, Some(DAY_MS))?;
    let filter = TradeFilter {
        order_id: q.order_id.map(OrderId),
        start_ms,
        end_ms,
        from_id: q.from_id.map(Seq),
        limit: limit(q.limit, 500, 1_000)?,
    };
    let order_id = filter.order_id;
    read_own_writes(&gw, &[p.symbol]).await;
    let rows = gw
        .store
        .user_trades_filtered(caller.user, p.symbol, filter)
        .await
        .map_err(ApiError::internal)?;
    let fees = match gw.fees(p.symbol) {
        Some(_) => Some(fee_history(&gw, p.symbol).await?),
        None => None,
    };
    let ids: Vec<OrderId> = rows.iter().map(store::UserTrade::order_id).collect();
    let orders = gw
        .store
        .trade_orders(p.symbol, &ids)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<AccountTrade> = rows
        .iter()
        // A self-trade has both sides; only the asked order's is wanted.
        .filter(|t| order_id.is_none_or(|id| t.order_id() == id))
        .map(|t| {
            let order = orders.get(&t.order_id());
            let list = order.and_then(|o| o.list_id);
            // Charged at the rates in force when the order was accepted
            // (at the fill where that is not known).
            let accepted = order.map_or(Seq(0), |o| o.accepted_seq);
            let at = if accepted.0 == 0 {
                t.fill.seq
            } else {
                accepted
            };
            let rates = fees.as_ref().map(|h| h.at(at));
            AccountTrade::new(&t.fill, p, t.is_maker, rates, list)
        })
        .collect();
    Ok(Json(out).into_response())
}

/// A pair's fee rates over its log, as `myTrades` reports them: the pair's
/// configured (or listed) rates, then each operator's change from its seq
/// on.
struct FeeHistory {
    first: Fees,
    changes: Vec<(Seq, Fees)>,
}

impl FeeHistory {
    /// The rates in force at `seq`.
    fn at(&self, seq: Seq) -> Fees {
        self.changes
            .iter()
            .rev()
            .find(|(at, _)| *at <= seq)
            .map_or(self.first, |(_, f)| *f)
    }
}

async fn fee_history(gw: &crate::Gateway, pair: proto::Symbol) -> Result<FeeHistory, ApiError> {
    let first = gw
        .pairs
        .read()
        .map_err(ApiError::internal)?
        .listed(pair)
        .map_or(Fees::ZERO, |c| c.fees);
    let changes = gw
        .store
        .fee_changes(pair)
        .await
        .map_err(ApiError::internal)?;
    Ok(FeeHistory { first, changes })
}
