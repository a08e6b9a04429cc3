//! Binance's order lists: `orderList/oco` (the above/below form),
//! `orderList/oto`, canceling one (`DELETE orderList`) and the queries
//! (`orderList`, `allOrderList`, `openOrderList`), with the list answer
//! every one of them shares. A list's id comes from the order ids'
//! sequence, so list ids are unique across pairs and the queries name none.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use proto::{
    CommandBody, Event, EventBody, ListKind, NewOrder, NewOrderList, OrderId, OrderRef, PairConfig,
    Side, Timestamp,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::{ListFilter, ListLookup, ListStatus, OrderListRow, OrderRow, SiblingCause};
use utoipa::{IntoParams, ToSchema};

use super::super::bodies::{client_order_id, ms};
use super::super::openapi::{self, CommandErrors, OrderCountErrors, SignedErrors};
use super::super::{
    ApiResult, App, command, enum_value, limit, read_own_writes, signed_request, submit, symbol,
};
use super::answers::{RespType, cancel_answer_as, new_order_answer};
use super::form::{OrderForm, TypeRules, client_id, numbered};
use super::{CancelAnswer, NewOrderAnswer, fold};
use crate::Gateway;
use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::now_ms;

/// Binance's widest `startTime`..`endTime` window: 24 hours.
const DAY_MS: u64 = 24 * 60 * 60 * 1_000;

/// The parameters of `POST /api/v3/orderList/oco`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OcoRequest {
    symbol: String,
    /// Unique among the account's open lists; made up when not sent.
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    list_client_order_id: Option<String>,
    #[schema(value_type = openapi::SideName, inline)]
    side: String,
    /// Both orders'.
    #[schema(value_type = openapi::Decimal, inline)]
    quantity: String,
    /// `LIMIT_MAKER`, `TAKE_PROFIT(_LIMIT)` (a sell's), `STOP_LOSS(_LIMIT)`
    /// (a buy's).
    #[schema(value_type = openapi::OcoTypeName, inline)]
    above_type: String,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    above_client_order_id: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    above_iceberg_qty: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    above_price: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    above_stop_price: Option<String>,
    #[schema(value_type = Option<u32>, minimum = 1)]
    above_trailing_delta: Option<String>,
    #[schema(value_type = Option<openapi::TimeInForceName>, inline)]
    above_time_in_force: Option<String>,
    /// With `aboveTimeInForce=GTD` (Unix ms).
    #[schema(value_type = Option<u64>, minimum = 1)]
    above_good_till_date: Option<String>,
    #[schema(ignore)]
    above_strategy_id: Option<String>,
    #[schema(ignore)]
    above_strategy_type: Option<String>,
    /// `STOP_LOSS(_LIMIT)` (a sell's), `LIMIT_MAKER`, `TAKE_PROFIT(_LIMIT)`
    /// (a buy's).
    #[schema(value_type = openapi::OcoTypeName, inline)]
    below_type: String,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    below_client_order_id: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    below_iceberg_qty: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    below_price: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    below_stop_price: Option<String>,
    #[schema(value_type = Option<u32>, minimum = 1)]
    below_trailing_delta: Option<String>,
    #[schema(value_type = Option<openapi::TimeInForceName>, inline)]
    below_time_in_force: Option<String>,
    /// With `belowTimeInForce=GTD` (Unix ms).
    #[schema(value_type = Option<u64>, minimum = 1)]
    below_good_till_date: Option<String>,
    #[schema(ignore)]
    below_strategy_id: Option<String>,
    #[schema(ignore)]
    below_strategy_type: Option<String>,
    /// Default `FULL`: the orders' reports as a new order's.
    #[schema(value_type = Option<openapi::RespTypeName>, inline)]
    new_order_resp_type: Option<String>,
    /// Both orders'; default the pair's.
    #[schema(value_type = Option<openapi::StpModeName>, inline)]
    self_trade_prevention_mode: Option<String>,
}

/// The parameters of `POST /api/v3/orderList/oto`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OtoRequest {
    symbol: String,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    list_client_order_id: Option<String>,
    /// Default `FULL`.
    #[schema(value_type = Option<openapi::RespTypeName>, inline)]
    new_order_resp_type: Option<String>,
    #[schema(value_type = Option<openapi::StpModeName>, inline)]
    self_trade_prevention_mode: Option<String>,
    /// `LIMIT` or `LIMIT_MAKER`.
    #[schema(value_type = openapi::OrderTypeName, inline)]
    working_type: String,
    #[schema(value_type = openapi::SideName, inline)]
    working_side: String,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    working_client_order_id: Option<String>,
    #[schema(value_type = openapi::Decimal, inline)]
    working_price: String,
    #[schema(value_type = openapi::Decimal, inline)]
    working_quantity: String,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    working_iceberg_qty: Option<String>,
    /// Mandatory for `LIMIT`.
    #[schema(value_type = Option<openapi::TimeInForceName>, inline)]
    working_time_in_force: Option<String>,
    #[schema(value_type = Option<u64>, minimum = 1)]
    working_good_till_date: Option<String>,
    #[schema(ignore)]
    working_strategy_id: Option<String>,
    #[schema(ignore)]
    working_strategy_type: Option<String>,
    /// Any type; placed once the working order filled.
    #[schema(value_type = openapi::OrderTypeName, inline)]
    pending_type: String,
    #[schema(value_type = openapi::SideName, inline)]
    pending_side: String,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    pending_client_order_id: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    pending_price: Option<String>,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    pending_stop_price: Option<String>,
    #[schema(value_type = Option<u32>, minimum = 1)]
    pending_trailing_delta: Option<String>,
    #[schema(value_type = openapi::Decimal, inline)]
    pending_quantity: String,
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    pending_iceberg_qty: Option<String>,
    #[schema(value_type = Option<openapi::TimeInForceName>, inline)]
    pending_time_in_force: Option<String>,
    #[schema(value_type = Option<u64>, minimum = 1)]
    pending_good_till_date: Option<String>,
    #[schema(ignore)]
    pending_strategy_id: Option<String>,
    #[schema(ignore)]
    pending_strategy_type: Option<String>,
}

/// What an OCO's order does: rests as a maker, or fires on a price that
/// falls to it or rises to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OcoRole {
    Maker,
    StopLoss,
    TakeProfit,
}

impl OcoRole {
    fn of(prefix: &str, type_name: &str) -> Result<OcoRole, ApiError> {
        let rules = TypeRules::of(type_name)
            .ok_or_else(|| ApiError::new(code::BAD_ENUM, format!("Invalid {prefix}Type.")))?;
        match (rules.conditional, rules.maker) {
            (Some(proto::ConditionalKind::StopLoss), _) => Ok(OcoRole::StopLoss),
            (Some(proto::ConditionalKind::TakeProfit), _) => Ok(OcoRole::TakeProfit),
            (None, true) => Ok(OcoRole::Maker),
            (None, false) => Err(ApiError::new(
                code::OCO_ORDER_TYPE_REJECTED,
                "Order type not supported in OCO.",
            )),
        }
    }
}

/// Binance's rules for which order goes above and which below: a sell's
/// maker or take-profit above and stop-loss below, a buy's the other way.
fn check_oco_roles(side: Side, above: OcoRole, below: OcoRole) -> Result<(), ApiError> {
    use OcoRole::{Maker, StopLoss, TakeProfit};
    let e = |c, m: &str| Err(ApiError::new(c, m));
    match (side, above, below) {
        (_, Maker, Maker) => e(
            code::BOTH_OCO_ORDERS_CANNOT_BE_LIMIT,
            "At least one OCO order must be contingent.",
        ),
        (Side::Sell, Maker | TakeProfit, StopLoss) | (Side::Buy, StopLoss, Maker | TakeProfit) => {
            Ok(())
        }
        (Side::Sell, StopLoss, _) => e(
            code::SELL_OCO_STOP_LOSS_MUST_BE_BELOW,
            "A stop loss order in a sell OCO must be below.",
        ),
        (Side::Sell, _, Maker) => e(
            code::SELL_OCO_LIMIT_MUST_BE_ABOVE,
            "A limit order in a sell OCO must be above.",
        ),
        (Side::Sell, _, TakeProfit) => e(
            code::SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE,
            "A take profit order in a sell OCO must be above.",
        ),
        (Side::Buy, Maker, _) => e(
            code::BUY_OCO_LIMIT_MUST_BE_BELOW,
            "A limit order in a buy OCO must be below.",
        ),
        (Side::Buy, TakeProfit, _) => e(
            code::BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW,
            "A take profit order in a buy OCO must be below.",
        ),
        (Side::Buy, _, StopLoss) => e(
            code::BUY_OCO_STOP_LOSS_MUST_BE_ABOVE,
            "A stop loss order in a buy OCO must be above.",
        ),
    }
}

/// An OCO order's iceberg needs GTC (or GTD): Binance's -1160.
fn check_oco_iceberg(f: &OrderForm<'_>) -> Result<(), ApiError> {
    let rules = TypeRules::of(f.order_type);
    let tif_sent = rules.is_some_and(|r| r.limit && !r.maker);
    if f.iceberg_qty.is_some() && tif_sent && !matches!(f.time_in_force, Some("GTC" | "GTD")) {
        return Err(ApiError::new(
            code::OCO_ICEBERGQTY_TIMEINFORCE,
            format!(
                "Parameter '{}' is not supported if '{}' is not GTC.",
                f.name("icebergQty"),
                f.name("timeInForce")
            ),
        ));
    }
    Ok(())
}

impl OcoRequest {
    /// The two orders' forms: below, then above (Binance's order).
    fn forms(&self) -> [OrderForm<'_>; 2] {
        [
            OrderForm {
                prefix: "below",
                side: &self.side,
                order_type: &self.below_type,
                time_in_force: self.below_time_in_force.as_deref(),
                quantity: Some(&self.quantity),
                quote_order_qty: None,
                price: self.below_price.as_deref(),
                stop_price: self.below_stop_price.as_deref(),
                trailing_delta: self.below_trailing_delta.as_deref(),
                iceberg_qty: self.below_iceberg_qty.as_deref(),
                good_till_date: self.below_good_till_date.as_deref(),
                client_order_id: self.below_client_order_id.as_deref(),
                stp: self.self_trade_prevention_mode.as_deref(),
                strategy_id: self.below_strategy_id.as_deref(),
                strategy_type: self.below_strategy_type.as_deref(),
            },
            OrderForm {
                prefix: "above",
                side: &self.side,
                order_type: &self.above_type,
                time_in_force: self.above_time_in_force.as_deref(),
                quantity: Some(&self.quantity),
                quote_order_qty: None,
                price: self.above_price.as_deref(),
                stop_price: self.above_stop_price.as_deref(),
                trailing_delta: self.above_trailing_delta.as_deref(),
                iceberg_qty: self.above_iceberg_qty.as_deref(),
                good_till_date: self.above_good_till_date.as_deref(),
                client_order_id: self.above_client_order_id.as_deref(),
                stp: self.self_trade_prevention_mode.as_deref(),
                strategy_id: self.above_strategy_id.as_deref(),
                strategy_type: self.above_strategy_type.as_deref(),
            },
        ]
    }
}

impl OtoRequest {
    /// The working order's form, then the pending one's.
    fn forms(&self) -> [OrderForm<'_>; 2] {
        [
            OrderForm {
                prefix: "working",
                side: &self.working_side,
                order_type: &self.working_type,
                time_in_force: self.working_time_in_force.as_deref(),
                quantity: Some(&self.working_quantity),
                quote_order_qty: None,
                price: Some(&self.working_price),
                stop_price: None,
                trailing_delta: None,
                iceberg_qty: self.working_iceberg_qty.as_deref(),
                good_till_date: self.working_good_till_date.as_deref(),
                client_order_id: self.working_client_order_id.as_deref(),
                stp: self.self_trade_prevention_mode.as_deref(),
                strategy_id: self.working_strategy_id.as_deref(),
                strategy_type: self.working_strategy_type.as_deref(),
            },
            OrderForm {
                prefix: "pending",
                side: &self.pending_side,
                order_type: &self.pending_type,
                time_in_force: self.pending_time_in_force.as_deref(),
                quantity: Some(&self.pending_quantity),
                quote_order_qty: None,
                price: self.pending_price.as_deref(),
                stop_price: self.pending_stop_price.as_deref(),
                trailing_delta: self.pending_trailing_delta.as_deref(),
                iceberg_qty: self.pending_iceberg_qty.as_deref(),
                good_till_date: self.pending_good_till_date.as_deref(),
                client_order_id: self.pending_client_order_id.as_deref(),
                stp: self.self_trade_prevention_mode.as_deref(),
                strategy_id: self.pending_strategy_id.as_deref(),
                strategy_type: self.pending_strategy_type.as_deref(),
            },
        ]
    }
}

/// A list the pair takes: Binance's message names the kind.
fn check_lists_allowed(p: &PairConfig, kind: ListKind) -> Result<(), ApiError> {
    if p.advanced.lists {
        return Ok(());
    }
    Err(ApiError::new(
        code::ORDER_REFUSED,
        format!(
            "{} orders are not supported for this symbol.",
            kind.as_str()
        ),
    ))
}

/// A list of `kind` whose orders passed, numbered: the list's id first,
/// then its orders', from the order ids' sequence.
fn numbered_list(
    gw: &Gateway,
    kind: ListKind,
    client_list_id: Option<&str>,
    orders: [NewOrder; 2],
) -> Result<NewOrderList, ApiError> {
    let client = client_list_id
        .map(|c| client_id("listClientOrderId", c))
        .transpose()?;
    let list_id = gw.ids.next();
    let client_list_id = match client {
        Some(c) => c,
        None => client_id("listClientOrderId", &client_order_id(list_id, None))?,
    };
    let [a, b] = orders;
    Ok(NewOrderList {
        list_id,
        client_list_id: Some(client_list_id),
        kind,
        orders: [numbered(a, gw.ids.next())?, numbered(b, gw.ids.next())?],
    })
}

/// Places an OCO: two orders of one side and quantity, one above the
/// last price and one below; the first to fill or fire cancels the other.
#[utoipa::path(post, path = "/api/v3/orderList/oco", tag = "Trading",
    request_body(content = inline(OcoRequest), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses(
        (status = 200, description = "The list, and each order's report in `newOrderRespType`.", body = ListAnswer),
        SignedErrors, CommandErrors, OrderCountErrors))]
pub(crate) async fn new_oco(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, r): (Caller, OcoRequest) = signed_request(&gw, &headers, &uri, body).await?;
    let mode = RespType::of(r.new_order_resp_type.as_deref(), "LIMIT")?;
    let p = symbol(&gw, &r.symbol)?;
    let side = enum_value("side", &r.side, Side::from_name)?;
    let above = OcoRole::of("above", &r.above_type)?;
    let below = OcoRole::of("below", &r.below_type)?;
    check_oco_roles(side, above, below)?;
    check_lists_allowed(&p, ListKind::Oco)?;
    let forms = r.forms();
    let now = Timestamp(crate::now_ns());
    let mut orders = Vec::with_capacity(2);
    for f in &forms {
        check_oco_iceberg(f)?;
        orders.push(f.parse_unnumbered(&p, now)?);
    }
    let orders: [NewOrder; 2] = orders
        .try_into()
        .map_err(|_| ApiError::internal("an OCO without two orders"))?;
    let list = numbered_list(
        &gw,
        ListKind::Oco,
        r.list_client_order_id.as_deref(),
        orders,
    )?;
    place_list(&gw, &caller, &p, list, mode).await
}

/// Places an OTO: a working limit order, and a pending order placed once
/// the working order has filled.
#[utoipa::path(post, path = "/api/v3/orderList/oto", tag = "Trading",
    request_body(content = inline(OtoRequest), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses(
        (status = 200, description = "The list, and each order's report in `newOrderRespType`.", body = ListAnswer),
        SignedErrors, CommandErrors, OrderCountErrors))]
pub(crate) async fn new_oto(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, r): (Caller, OtoRequest) = signed_request(&gw, &headers, &uri, body).await?;
    let mode = RespType::of(r.new_order_resp_type.as_deref(), "LIMIT")?;
    let p = symbol(&gw, &r.symbol)?;
    if !matches!(r.working_type.as_str(), "LIMIT" | "LIMIT_MAKER") {
        return Err(ApiError::new(code::BAD_ENUM, "Invalid workingType."));
    }
    check_lists_allowed(&p, ListKind::Oto)?;
    let now = Timestamp(crate::now_ns());
    let [working, pending] = r.forms();
    let orders = [
        working.parse_unnumbered(&p, now)?,
        pending.parse_unnumbered(&p, now)?,
    ];
    let list = numbered_list(
        &gw,
        ListKind::Oto,
        r.list_client_order_id.as_deref(),
        orders,
    )?;
    place_list(&gw, &caller, &p, list, mode).await
}

/// Submits a list (it counts as two orders) and answers with it.
async fn place_list(
    gw: &Gateway,
    caller: &Caller,
    p: &PairConfig,
    list: NewOrderList,
    mode: RespType,
) -> ApiResult {
    let counts = match gw.usage.charge_orders(caller.user, 2, now_ms()) {
        Ok(counts) => counts,
        // The refusal carries the counts in its headers too.
        Err(refused) => return Ok(refused.into_response()),
    };
    let cmd = command(p.symbol, caller, CommandBody::NewOrderList(Box::new(list)));
    let at = cmd.timestamp;
    // Always waited for: the book alone can tell an OCO's orders cross.
    let (_, outcome) = submit(gw, cmd, true).await?;
    let record = outcome.ok_or_else(|| ApiError::internal("a list without its outcome"))?;
    let batch = fold(&record.events, p);
    for o in &list.orders {
        if batch.fills().iter().any(|f| f.taker_order_id == o.order_id) {
            // Binance gives an order back to the count on its first fill.
            gw.usage.order_filled(caller.user, now_ms());
        }
    }
    let fees = gw.fees(p.symbol);
    let reports = list
        .orders
        .iter()
        .map(|o| new_order_answer(p, o, at, Some(&batch), mode, fees, Some(list.list_id)))
        .collect();
    let row = batch
        .new_list(p.symbol, list.list_id)
        .cloned()
        .unwrap_or_else(|| placed_row(p, caller, &list, at));
    let mut resp = Json(list_answer(p, &row, Some(reports))).into_response();
    resp.headers_mut().extend(counts.headers());
    Ok(resp)
}

/// The row of a list the record does not show accepted (it always does).
fn placed_row(p: &PairConfig, caller: &Caller, list: &NewOrderList, at: Timestamp) -> OrderListRow {
    OrderListRow {
        pair: p.symbol,
        list_id: list.list_id,
        client_list_id: list.client_list_id,
        user: caller.user,
        kind: list.kind,
        status: ListStatus::Executing,
        orders: list.orders.map(|o| store::ListLeg {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
        }),
        created_at: at,
        updated_at: at,
    }
}

/// Binance's `contingencyType`, `listStatusType` and `listOrderStatus`
/// and the rest of a list, as every list answer starts; `reports` are the
/// orders' reports (`orderReports`), when the answer has them.
pub(crate) fn list_answer(p: &PairConfig, l: &OrderListRow, reports: Option<Vec<Value>>) -> Value {
    let (status_type, order_status) = match l.status {
        ListStatus::Executing => ("EXEC_STARTED", "EXECUTING"),
        ListStatus::AllDone => ("ALL_DONE", "ALL_DONE"),
    };
    let mut out = Map::new();
    out.insert("orderListId".into(), json!(l.list_id.0));
    out.insert("contingencyType".into(), json!(l.kind.as_str()));
    out.insert("listStatusType".into(), json!(status_type));
    out.insert("listOrderStatus".into(), json!(order_status));
    out.insert(
        "listClientOrderId".into(),
        json!(client_order_id(l.list_id, l.client_list_id.as_ref())),
    );
    out.insert("transactionTime".into(), json!(ms(l.updated_at)));
    out.insert("symbol".into(), json!(p.symbol.joined()));
    let orders: Vec<Value> = l
        .orders
        .iter()
        .map(|o| {
            json!({
                "symbol": p.symbol.joined(),
                "orderId": o.order_id.0,
                "clientOrderId": client_order_id(o.order_id, o.client_order_id.as_ref()),
            })
        })
        .collect();
    out.insert("orders".into(), Value::Array(orders));
    if let Some(reports) = reports {
        out.insert("orderReports".into(), Value::Array(reports));
    }
    Value::Object(out)
}

/// The `listStatus` of an amend's answer for an order of list `l`:
/// Binance's list fields without `listStatusType` and `transactionTime`.
pub(crate) fn amend_list_status(p: &PairConfig, l: &OrderListRow) -> Value {
    let mut v = list_answer(p, l, None);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("listStatusType");
        obj.remove("transactionTime");
    }
    v
}

/// The answer of a command that ended list `l`: the list as the record
/// left it (`ALL_DONE`) with each order the command ended, as a cancel's
/// answer. `rows` are the orders as stored before; `new_cid` the cancel's
/// own client id.
pub(crate) fn ended_list_answer(
    p: &PairConfig,
    l: &OrderListRow,
    events: &[Event],
    rows: &[OrderRow],
    new_cid: Option<&str>,
) -> Value {
    let mut cause = SiblingCause::default();
    let mut reports = Vec::new();
    let mut done = l.clone();
    for e in events {
        let status = cause.status_after(&e.body);
        match e.body {
            EventBody::Canceled(c) if done.orders.iter().any(|o| o.order_id == c.order_id) => {
                let row = rows.iter().find(|r| r.order_id == c.order_id);
                let status = status.unwrap_or(store::OrderStatus::Canceled);
                reports.push(cancel_answer_as(p, &c, row, e.timestamp, new_cid, status));
            }
            EventBody::ListDone(d) if d.list_id == l.list_id => {
                done.status = ListStatus::AllDone;
                done.updated_at = e.timestamp;
            }
            _ => {}
        }
    }
    list_answer(p, &done, Some(reports))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct CancelListQuery {
    symbol: String,
    /// The list; or `listClientOrderId`. When both are sent, they must name
    /// the same list.
    order_list_id: Option<u64>,
    #[param(value_type = Option<openapi::ClientOrderIdText>, inline)]
    list_client_order_id: Option<String>,
    /// The cancel's own client id, answered as each order's
    /// `clientOrderId`.
    #[param(value_type = Option<openapi::ClientOrderIdText>, inline)]
    new_client_order_id: Option<String>,
}

/// The list a request names, by `orderListId` or else its client id.
fn list_ref(id: Option<u64>, cid: Option<&str>, cid_name: &str) -> Result<OrderRef, ApiError> {
    match (id, cid) {
        (Some(id), _) => Ok(OrderRef::Id(OrderId(id))),
        (None, Some(c)) => Ok(OrderRef::Client(client_id(cid_name, c)?)),
        (None, None) => Err(ApiError::new(
            code::MISSING_PARAM,
            format!("Param 'orderListId' or '{cid_name}' must be sent, but both were empty/null!"),
        )),
    }
}

/// The caller's list a request names, as stored (on `pair` when the
/// request names one), if it matches the client id also sent.
async fn stored_list(
    gw: &Gateway,
    caller: &Caller,
    target: OrderRef,
    cid: Option<&str>,
    pair: Option<proto::Symbol>,
) -> Result<Option<OrderListRow>, ApiError> {
    let lookup = match target {
        OrderRef::Id(id) => ListLookup::Id(id),
        OrderRef::Client(c) => ListLookup::Client(c),
    };
    let pairs = gw.symbols();
    read_own_writes(gw, &pairs).await;
    let row = gw
        .store
        .order_list(caller.user, lookup, pair)
        .await
        .map_err(ApiError::internal)?;
    Ok(row
        .filter(|l| cid.is_none_or(|c| client_order_id(l.list_id, l.client_list_id.as_ref()) == c)))
}

/// Cancels an open list: each of its open orders, then the list.
#[utoipa::path(delete, path = "/api/v3/orderList", tag = "Trading", params(CancelListQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The list, `ALL_DONE`, with each canceled order.", body = ListAnswer),
        SignedErrors, CommandErrors))]
pub(crate) async fn cancel_list(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, CancelListQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let p = symbol(&gw, &q.symbol)?;
    let cid = q.list_client_order_id.as_deref();
    let target = list_ref(q.order_list_id, cid, "listClientOrderId")?;
    let new_cid = q
        .new_client_order_id
        .as_deref()
        .map(|c| client_id("newClientOrderId", c).map(|_| c))
        .transpose()?;
    let unknown = || ApiError::cancel_rejected(proto::RejectCode::UnknownOrderList);
    let list = stored_list(&gw, &caller, target, cid, Some(p.symbol))
        .await?
        .filter(|l| l.pair == p.symbol)
        .ok_or_else(unknown)?;
    let rows = gw
        .store
        .list_orders(&list)
        .await
        .map_err(ApiError::internal)?;
    let cmd = command(p.symbol, &caller, CommandBody::CancelList { target });
    let (_, outcome) = submit(&gw, cmd, true).await?;
    let record = outcome.ok_or_else(|| ApiError::internal("a cancel without its outcome"))?;
    let answer = ended_list_answer(&p, &list, &record.events, &rows, new_cid);
    Ok(Json(answer).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The list; or `origClientOrderId`, its client id.
    order_list_id: Option<u64>,
    #[param(value_type = Option<openapi::ClientOrderIdText>, inline)]
    orig_client_order_id: Option<String>,
}

/// One of the caller's lists, on any pair.
#[utoipa::path(get, path = "/api/v3/orderList", tag = "Trading", params(ListQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The list.", body = ListAnswer), SignedErrors))]
pub(crate) async fn query_list(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, ListQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let cid = q.orig_client_order_id.as_deref();
    let target = list_ref(q.order_list_id, cid, "origClientOrderId")?;
    let list = stored_list(&gw, &caller, target, cid, None).await?;
    let list =
        list.ok_or_else(|| ApiError::new(code::NO_SUCH_ORDER, "Order list does not exist."))?;
    let p = gw
        .rules(list.pair)
        .ok_or_else(|| ApiError::internal("a list of an unknown pair"))?;
    Ok(Json(list_answer(&p, &list, None)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct AllListsQuery {
    /// Lists from this id on; not with `startTime` or `endTime` (-1128).
    from_id: Option<u64>,
    /// Unix milliseconds; at most 24 hours before `endTime`.
    start_time: Option<u64>,
    /// Unix milliseconds.
    end_time: Option<u64>,
    /// 1 to 1,000, default 500.
    #[param(minimum = 1, maximum = 1_000)]
    limit: Option<u32>,
}

/// The caller's lists on every pair, from `fromId` or in a window.
#[utoipa::path(get, path = "/api/v3/allOrderList", tag = "Trading", params(AllListsQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Lists, by id.", body = Vec<ListAnswer>), SignedErrors))]
pub(crate) async fn all_lists(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, AllListsQuery) = signed_request(&gw, &headers, &uri, body).await?;
    if q.from_id.is_some() && (q.start_time.is_some() || q.end_time.is_some()) {
        return Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "fromId cannot be sent with startTime or endTime.",
        ));
    }
    if let (Some(s), Some(e)) = (q.start_time, q.end_time) {
        if s > e {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "startTime must not be after endTime.",
            ));
        }
        if e - s > DAY_MS {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "The time between startTime and endTime can't be longer than 24 hours.",
            ));
        }
    }
    let filter = ListFilter {
        from_id: q.from_id.map(OrderId),
        start_ms: q.start_time,
        end_ms: q.end_time,
        limit: limit(q.limit, 500, 1_000)?,
    };
    let pairs = gw.symbols();
    read_own_writes(&gw, &pairs).await;
    let lists = gw
        .store
        .order_lists(caller.user, filter)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(answers(&gw, &lists)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OpenListsQuery {}

/// The caller's open lists on every pair.
#[utoipa::path(get, path = "/api/v3/openOrderList", tag = "Trading", params(OpenListsQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Open lists, by id.", body = Vec<ListAnswer>), SignedErrors))]
pub(crate) async fn open_lists(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, _): (Caller, OpenListsQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let pairs = gw.symbols();
    read_own_writes(&gw, &pairs).await;
    let lists = gw
        .store
        .open_order_lists(caller.user)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(answers(&gw, &lists)).into_response())
}

/// Each list's answer, without reports.
fn answers(gw: &Gateway, lists: &[OrderListRow]) -> Vec<Value> {
    lists
        .iter()
        .filter_map(|l| gw.rules(l.pair).map(|p| list_answer(&p, l, None)))
        .collect()
}

/// A list answer, for the description: Binance's list fields, then the
/// orders' reports where the answer has them.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `list_answer`
pub(crate) struct ListAnswer {
    order_list_id: u64,
    /// `OCO` or `OTO`.
    #[schema(value_type = openapi::ContingencyType, inline)]
    contingency_type: String,
    /// `EXEC_STARTED` or `ALL_DONE`.
    #[schema(value_type = openapi::ListStatusType, inline)]
    list_status_type: String,
    /// `EXECUTING` or `ALL_DONE`.
    #[schema(value_type = openapi::ListOrderStatus, inline)]
    list_order_status: String,
    list_client_order_id: String,
    /// Unix milliseconds.
    transaction_time: u64,
    symbol: String,
    #[schema(inline)]
    orders: Vec<ListOrder>,
    /// Placing: each order's answer in `newOrderRespType`; canceling: each
    /// canceled order's. Queries have none.
    #[schema(inline)]
    order_reports: Option<Vec<ListReport>>,
}

/// One order of a list, by name.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes a `json!` of `list_answer`
struct ListOrder {
    symbol: String,
    order_id: u64,
    client_order_id: String,
}

/// A list order's report.
#[derive(Debug)]
struct ListReport;

impl utoipa::PartialSchema for ListReport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        openapi::any_of([NewOrderAnswer::schema(), CancelAnswer::schema()])
    }
}

impl ToSchema for ListReport {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oco_orders_go_above_and_below_by_binance_rules() {
        use OcoRole::{Maker, StopLoss, TakeProfit};
        let code = |side, above, below| check_oco_roles(side, above, below).map_err(|e| e.code);
        assert_eq!(code(Side::Sell, Maker, StopLoss), Ok(()));
        assert_eq!(code(Side::Sell, TakeProfit, StopLoss), Ok(()));
        assert_eq!(code(Side::Buy, StopLoss, Maker), Ok(()));
        assert_eq!(code(Side::Buy, StopLoss, TakeProfit), Ok(()));
        assert_eq!(code(Side::Sell, Maker, Maker), Err(-1168));
        assert_eq!(code(Side::Sell, StopLoss, StopLoss), Err(-1197));
        assert_eq!(code(Side::Sell, TakeProfit, Maker), Err(-1166));
        assert_eq!(code(Side::Sell, TakeProfit, TakeProfit), Err(-1199));
        assert_eq!(code(Side::Buy, Maker, StopLoss), Err(-1165));
        assert_eq!(code(Side::Buy, TakeProfit, StopLoss), Err(-1198));
        assert_eq!(code(Side::Buy, StopLoss, StopLoss), Err(-1196));
        let role = |t| OcoRole::of("above", t).map_err(|e| e.code);
        assert_eq!(role("LIMIT"), Err(-1158));
        assert_eq!(role("MARKET"), Err(-1158));
        assert_eq!(role("STOP"), Err(code::BAD_ENUM));
        assert_eq!(role("TAKE_PROFIT_LIMIT"), Ok(TakeProfit));
    }

    #[test]
    fn an_oco_iceberg_needs_gtc() {
        let f = OrderForm {
            prefix: "above",
            order_type: "TAKE_PROFIT_LIMIT",
            iceberg_qty: Some("1"),
            time_in_force: Some("IOC"),
            ..OrderForm::default()
        };
        let e = check_oco_iceberg(&f).unwrap_err();
        assert_eq!(e.code, -1160);
        assert_eq!(
            e.msg,
            "Parameter 'aboveIcebergQty' is not supported if 'aboveTimeInForce' is not GTC."
        );
        let gtc = OrderForm {
            time_in_force: Some("GTC"),
            ..f
        };
        assert!(check_oco_iceberg(&gtc).is_ok());
        let maker = OrderForm {
            order_type: "LIMIT_MAKER",
            time_in_force: None,
            ..f
        };
        assert!(check_oco_iceberg(&maker).is_ok());
    }
}
