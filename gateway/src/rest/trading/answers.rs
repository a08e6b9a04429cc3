//! The answers of the order endpoints, in Binance's shapes: a new order's
//! `ACK`, `RESULT` and `FULL`, a cancel's, an amend's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use proto::{Canceled, CommandBody, Event, EventBody, NewOrder, OrderSize, PairConfig, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::{Batch, OrderRow};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::super::bodies::{self, OrderBody, client_order_id, ms};
use super::super::openapi::{
    CommandErrors, OrderStatus, OrderTypeName, SideName, SignedErrors, StpModeName,
    TimeInForceName, any_of, merged,
};
use super::super::{ApiResult, App, command, signed_request, submit, symbol};
use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::money::{commission_text, quote_asset, rate};

/// `newOrderRespType`: how much a new order's answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespType {
    /// When the order is in the log.
    Ack,
    /// With the order's state once the engine applied it.
    Result,
    /// `Result` with the fills.
    Full,
}

impl RespType {
    /// The type asked for; Binance's default is `FULL` for `LIMIT` and
    /// `MARKET` and `ACK` for the others.
    pub(crate) fn of(asked: Option<&str>, order_type: &str) -> Result<RespType, ApiError> {
        match asked {
            Some("ACK") => Ok(RespType::Ack),
            Some("RESULT") => Ok(RespType::Result),
            Some("FULL") => Ok(RespType::Full),
            Some(_) => Err(ApiError::new(code::BAD_ENUM, "Invalid newOrderRespType.")),
            None if matches!(order_type, "LIMIT" | "MARKET") => Ok(RespType::Full),
            None => Ok(RespType::Ack),
        }
    }
}

/// `fields` of `body`'s JSON, in that order.
fn pick(body: &impl serde::Serialize, fields: &[&str]) -> Map<String, Value> {
    let Ok(Value::Object(mut all)) = serde_json::to_value(body) else {
        return Map::new();
    };
    fields
        .iter()
        .filter_map(|f| all.remove(*f).map(|v| (f.to_string(), v)))
        .collect()
}

/// The fields of `RESULT` after the `ACK` ones. `stopPrice` and
/// `icebergQty` appear only for the orders they concern (see [`shown`]),
/// the trailing fields and `goodTillDate` only for orders that have them.
const RESULT_FIELDS: [&str; 16] = [
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "stopPrice",
    "trailingDelta",
    "trailingTime",
    "workingTime",
    "icebergQty",
    "goodTillDate",
    "selfTradePreventionMode",
];

/// `fields` without Binance's conditional ones that do not concern `row`:
/// `stopPrice` is a conditional order's, `icebergQty` an iceberg's.
fn shown<'f>(fields: &[&'f str], row: &OrderRow) -> Vec<&'f str> {
    fields
        .iter()
        .copied()
        .filter(|f| match *f {
            "stopPrice" => row.is_conditional(),
            "icebergQty" => row.iceberg_qty.is_some(),
            _ => true,
        })
        .collect()
}

/// `ACK`: a new order's answer when it is in the log.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `new_order_answer`
pub(crate) struct NewOrderAck {
    symbol: String,
    order_id: u64,
    /// The order's list, or -1.
    order_list_id: i64,
    /// The one sent, or `x-<orderId>`.
    client_order_id: String,
    /// Unix milliseconds.
    transact_time: u64,
}

/// What `RESULT` adds to `ACK`: [`RESULT_FIELDS`] of [`OrderBody`].
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `new_order_answer`
struct ResultFields {
    price: String,
    orig_qty: String,
    executed_qty: String,
    orig_quote_order_qty: String,
    cummulative_quote_qty: String,
    #[schema(value_type = OrderStatus, inline)]
    status: String,
    #[schema(value_type = TimeInForceName, inline)]
    time_in_force: String,
    #[schema(rename = "type", value_type = OrderTypeName, inline)]
    order_type: String,
    #[schema(value_type = SideName, inline)]
    side: String,
    /// Conditional orders only.
    stop_price: Option<String>,
    /// Trailing stops only.
    trailing_delta: Option<u32>,
    /// Trailing stops only: when it started trailing, or -1.
    trailing_time: Option<i64>,
    /// -1 while the order waits (a trigger, an OTO's working order).
    working_time: i64,
    /// Icebergs only.
    iceberg_qty: Option<String>,
    /// GTD orders only (Unix ms).
    good_till_date: Option<u64>,
    #[schema(value_type = StpModeName, inline)]
    self_trade_prevention_mode: String,
}

/// What `FULL` adds to `RESULT`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `new_order_answer`
struct FullFields {
    /// The order's fills as its taker, from the `json!` of [`fills`].
    #[schema(inline)]
    fills: Vec<OrderFill>,
}

/// One fill of a new order.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `fills`
struct OrderFill {
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    trade_id: u64,
}

/// A new order's answer: `FULL`, `RESULT` or `ACK` as asked
/// (`newOrderRespType`); `ACK` also when the order's outcome is not
/// known yet.
#[derive(Debug)]
pub(crate) struct NewOrderAnswer;

impl PartialSchema for NewOrderAnswer {
    fn schema() -> RefOr<Schema> {
        let result = || merged(NewOrderAck::schema(), ResultFields::schema());
        any_of([
            merged(result(), FullFields::schema()),
            result(),
            NewOrderAck::schema(),
        ])
    }
}

impl ToSchema for NewOrderAnswer {}

/// A new order's answer in `mode`; `batch` is what the engine made of it,
/// when the request waited for that; `list_id` the list it was placed in.
pub(crate) fn new_order_answer(
    p: &PairConfig,
    order: &NewOrder,
    at: Timestamp,
    batch: Option<&Batch>,
    mode: RespType,
    fees: Option<accounts::Fees>,
    list_id: Option<proto::OrderId>,
) -> Value {
    let mut out = Map::new();
    out.insert("symbol".into(), json!(p.symbol.joined()));
    out.insert("orderId".into(), json!(order.order_id.0));
    out.insert("orderListId".into(), json!(bodies::list_id(list_id)));
    let cid = client_order_id(order.order_id, order.client_order_id.as_ref());
    out.insert("clientOrderId".into(), json!(cid));
    out.insert("transactTime".into(), json!(ms(at)));
    let row = batch.and_then(|b| b.new_order(p.symbol, order.order_id));
    let (Some(batch), Some(row), false) = (batch, row, mode == RespType::Ack) else {
        return Value::Object(out);
    };
    out.extend(pick(&OrderBody::new(row, p), &shown(&RESULT_FIELDS, row)));
    if mode == RespType::Full {
        out.insert("fills".into(), fills(batch, p, order, fees));
    }
    Value::Object(out)
}

/// The fills of a new order, as its taker saw them.
fn fills(batch: &Batch, p: &PairConfig, order: &NewOrder, fees: Option<accounts::Fees>) -> Value {
    let taker_rate = rate(fees, false);
    batch
        .fills()
        .iter()
        .filter(|f| f.taker_order_id == order.order_id)
        .map(|f| {
            json!({
                "price": f.price.to_decimal(p.price_scale),
                "qty": f.qty.to_decimal(p.qty_scale),
                "commission": commission_text(p, f.price, f.qty, taker_rate),
                "commissionAsset": quote_asset(p),
                "tradeId": f.seq.0,
            })
        })
        .collect()
}

/// A cancel's answer: the order as it stood, `CANCELED`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `cancel_answer`
pub(crate) struct CancelAnswer {
    symbol: String,
    orig_client_order_id: String,
    order_id: u64,
    /// The order's list, or -1.
    order_list_id: i64,
    /// `newClientOrderId` when sent, else the order's own.
    client_order_id: String,
    /// Unix milliseconds.
    transact_time: u64,
    price: String,
    orig_qty: String,
    executed_qty: String,
    orig_quote_order_qty: String,
    cummulative_quote_qty: String,
    #[schema(value_type = OrderStatus, inline)]
    status: String,
    #[schema(value_type = TimeInForceName, inline)]
    time_in_force: String,
    #[schema(rename = "type", value_type = OrderTypeName, inline)]
    order_type: String,
    #[schema(value_type = SideName, inline)]
    side: String,
    /// Conditional orders only.
    stop_price: Option<String>,
    /// Trailing stops only.
    trailing_delta: Option<u32>,
    /// Trailing stops only: when it started trailing, or -1.
    trailing_time: Option<i64>,
    /// Icebergs only.
    iceberg_qty: Option<String>,
    /// GTD orders only (Unix ms).
    good_till_date: Option<u64>,
    #[schema(value_type = StpModeName, inline)]
    self_trade_prevention_mode: String,
}

/// The fields of a cancel's answer taken from the order (the conditional
/// ones as in [`RESULT_FIELDS`]).
const CANCEL_FIELDS: [&str; 15] = [
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "stopPrice",
    "trailingDelta",
    "trailingTime",
    "icebergQty",
    "goodTillDate",
    "selfTradePreventionMode",
];

/// A cancel's answer: the order as it stood, `CANCELED`. `row` is the
/// stored order, which may trail the engine by the persister's lag: the
/// executed quantity comes from the cancel itself.
pub(crate) fn cancel_answer(
    p: &PairConfig,
    c: &Canceled,
    row: Option<&OrderRow>,
    at: Timestamp,
    new_cid: Option<&str>,
) -> Value {
    cancel_answer_as(p, c, row, at, new_cid, store::OrderStatus::Canceled)
}

/// [`cancel_answer`] for an order the cancel left in `status`: the other
/// order of a list, `EXPIRED` when Binance says so.
pub(crate) fn cancel_answer_as(
    p: &PairConfig,
    c: &Canceled,
    row: Option<&OrderRow>,
    at: Timestamp,
    new_cid: Option<&str>,
    status: store::OrderStatus,
) -> Value {
    let orig_cid = client_order_id(c.order_id, c.client_order_id.as_ref());
    let mut order = row.cloned().unwrap_or_else(|| unstored(p, c, at));
    let mut out = Map::new();
    out.insert("symbol".into(), json!(p.symbol.joined()));
    out.insert("origClientOrderId".into(), json!(orig_cid));
    out.insert("orderId".into(), json!(c.order_id.0));
    out.insert(
        "orderListId".into(),
        json!(bodies::list_id(order.order_list_id)),
    );
    out.insert("clientOrderId".into(), json!(new_cid.unwrap_or(&orig_cid)));
    out.insert("transactTime".into(), json!(ms(at)));
    if let (OrderSize::Base(left), Some(orig)) = (c.remaining, order.orig_qty) {
        order.executed_qty = proto::Qty(orig.0.saturating_sub(left.0));
    }
    order.status = status;
    let fields = shown(&CANCEL_FIELDS, &order);
    out.extend(pick(&OrderBody::new(&order, p), &fields));
    Value::Object(out)
}

/// What a cancel tells of an order the store does not have yet.
fn unstored(p: &PairConfig, c: &Canceled, at: Timestamp) -> OrderRow {
    let (orig_qty, orig_quote_qty) = store::stored_size(c.remaining);
    OrderRow {
        pair: p.symbol,
        order_id: c.order_id,
        client_order_id: c.client_order_id,
        user: c.user,
        side: c.side,
        order_type: "LIMIT".into(),
        time_in_force: "GTC".into(),
        post_only: false,
        price: None,
        stop_price: None,
        trailing_delta: None,
        iceberg_qty: None,
        good_till: None,
        order_list_id: None,
        working_time: Some(at),
        orig_qty,
        orig_quote_qty,
        executed_qty: proto::Qty(0),
        cum_quote_qty: 0,
        status: store::OrderStatus::Canceled,
        created_at: at,
        updated_at: at,
        accepted_seq: proto::Seq(0),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct CancelAllQuery {
    symbol: String,
}

/// Cancels every open order of the caller on one pair, in one command.
#[utoipa::path(delete, path = "/api/v3/openOrders", tag = "Trading", params(CancelAllQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Each canceled order.", body = Vec<CancelAnswer>),
        SignedErrors, CommandErrors))]
pub(crate) async fn cancel_all(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, CancelAllQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let p = symbol(&gw, &q.symbol)?;
    super::super::read_own_writes(&gw, &[p.symbol]).await;
    let rows = gw
        .store
        .open_orders(caller.user, Some(p.symbol))
        .await
        .map_err(ApiError::internal)?;
    let lists = gw
        .store
        .open_order_lists(caller.user)
        .await
        .map_err(ApiError::internal)?;
    let cmd = command(p.symbol, &caller, CommandBody::CancelAll);
    let at = cmd.timestamp;
    let (_, outcome) = submit(&gw, cmd, true).await?;
    let record = outcome.ok_or_else(|| ApiError::internal("a cancel-all without its outcome"))?;
    let answers = cancel_all_answers(&p, &record.events, &rows, &lists, at);
    Ok(Json(answers).into_response())
}

/// A cancel-all's answer, Binance's: each canceled order that is in no
/// list, and each list it ended with its orders' reports. Only the
/// command's own cancels count: expiries of GTD orders may come before.
fn cancel_all_answers(
    p: &PairConfig,
    events: &[Event],
    rows: &[OrderRow],
    lists: &[store::OrderListRow],
    at: Timestamp,
) -> Vec<Value> {
    let mut out = Vec::new();
    for e in events {
        match e.body {
            EventBody::Canceled(c) if c.reason == proto::CancelReason::CancelAll => {
                let row = rows.iter().find(|r| r.order_id == c.order_id);
                if row.is_none_or(|r| r.order_list_id.is_none()) {
                    out.push(cancel_answer(p, &c, row, at, None));
                }
            }
            EventBody::ListDone(d) => {
                if let Some(l) = lists.iter().find(|l| l.list_id == d.list_id) {
                    let legs: Vec<Event> = events
                        .iter()
                        .filter(|e| {
                            matches!(e.body, EventBody::Canceled(c)
                            if c.reason == proto::CancelReason::CancelAll
                                && l.orders.iter().any(|o| o.order_id == c.order_id))
                        })
                        .chain([e])
                        .copied()
                        .collect();
                    out.push(super::lists::ended_list_answer(p, l, &legs, rows, None));
                }
            }
            _ => {}
        }
    }
    out
}

/// `order/amend/keepPriority`'s answer.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `amend_answer`
pub(crate) struct AmendAnswer {
    /// Unix milliseconds.
    transact_time: u64,
    /// The amend's event sequence number.
    execution_id: u64,
    #[schema(inline)]
    amended_order: AmendedOrder,
}

/// The order after an amend.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `amend_answer`
struct AmendedOrder {
    symbol: String,
    order_id: u64,
    /// Always -1.
    order_list_id: i64,
    orig_client_order_id: String,
    client_order_id: String,
    price: String,
    /// The new quantity.
    qty: String,
    executed_qty: String,
    prevented_qty: String,
    quote_order_qty: String,
    cumulative_quote_qty: String,
    #[schema(value_type = OrderStatus, inline)]
    status: String,
    #[schema(value_type = TimeInForceName, inline)]
    time_in_force: String,
    #[schema(rename = "type", value_type = OrderTypeName, inline)]
    order_type: String,
    #[schema(value_type = SideName, inline)]
    side: String,
    working_time: u64,
    #[schema(value_type = StpModeName, inline)]
    self_trade_prevention_mode: String,
}

/// An amend's answer: `row` is the order before it; `None` when the
/// events hold no amend.
pub(crate) fn amend_answer(
    p: &PairConfig,
    row: &OrderRow,
    events: &[Event],
    at: Timestamp,
) -> Option<Value> {
    let (seq, a) = events.iter().find_map(|e| match e.body {
        EventBody::Amended(a) => Some((e.seq, a)),
        _ => None,
    })?;
    let mut order = row.clone();
    order.orig_qty = Some(a.qty);
    order.executed_qty = proto::Qty(a.qty.0.saturating_sub(a.remaining.0));
    let body = OrderBody::new(&order, p);
    let mut amended = pick(&body, &["symbol", "orderId", "orderListId"]);
    let cid = client_order_id(order.order_id, order.client_order_id.as_ref());
    amended.insert("origClientOrderId".into(), json!(cid));
    amended.insert("clientOrderId".into(), json!(cid));
    amended.extend(pick(&body, &["price"]));
    amended.insert("qty".into(), json!(a.qty.to_decimal(p.qty_scale)));
    amended.extend(pick(&body, &["executedQty"]));
    amended.insert(
        "preventedQty".into(),
        json!(proto::Qty(0).to_decimal(p.qty_scale)),
    );
    amended.insert(
        "quoteOrderQty".into(),
        json!(proto::QuoteQty(0).to_decimal(p.price_scale)),
    );
    let fields = [
        "status",
        "timeInForce",
        "type",
        "side",
        "workingTime",
        "selfTradePreventionMode",
    ];
    let mut rest = pick(&body, &fields);
    // Binance leaves `workingTime` out for an order that does not work yet
    // (an OTO's pending order, a waiting stop).
    if order.working_time.is_none() {
        rest.remove("workingTime");
    }
    amended.insert(
        "cumulativeQuoteQty".into(),
        pick(&body, &["cummulativeQuoteQty"])
            .remove("cummulativeQuoteQty")
            .unwrap_or(Value::Null),
    );
    amended.append(&mut rest);
    Some(json!({
        "transactTime": ms(at),
        "executionId": seq.0,
        "amendedOrder": amended,
    }))
}
