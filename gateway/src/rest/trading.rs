//! Binance's "Trading endpoints": placing, testing, querying, canceling,
//! replacing and amending orders. New orders are checked against the
//! pair's filters here and again by the engine, so nothing the engine
//! would refuse reaches the log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use proto::{
    Amend, CancelReason, CommandBody, EventBody, NewOrder, OrderId, OrderRef, PairConfig, Qty, Seq,
};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Batch, OrderLookup, OrderRow};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::bodies::{OrderBody, client_order_id};
use super::openapi::{
    self, BoolText, CommandErrors, EmptyObject, ErrorBody, OrderCountErrors, ReplaceResult,
    SignedErrors, any_of, merged,
};
use super::params::{self, not_required};
use super::{ApiResult, App, command, signed_params, signed_request, submit, symbol};
use crate::Gateway;
use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::market::Viewed;
use crate::now_ms;

pub(super) mod answers;
pub(super) mod form;
pub(super) mod history;
pub(super) mod lists;

pub(super) use answers::cancel_all;
pub(super) use history::{all_orders, my_trades, open_orders};

pub(super) use answers::RespType;
use answers::{AmendAnswer, CancelAnswer, NewOrderAnswer, cancel_answer, new_order_answer};
use form::OrderForm;
pub(super) use form::client_id;

/// The parameters of `POST /api/v3/order` (and `order/test`), as parsed
/// before validation. Public for benchmarks of the request path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(description = "A new order.")]
pub struct NewOrderRequest {
    pub(super) symbol: String,
    #[schema(value_type = openapi::SideName, inline)]
    side: String,
    #[serde(rename = "type")]
    #[schema(value_type = openapi::OrderTypeName, inline)]
    pub(super) order_type: String,
    /// Mandatory for `LIMIT`, `STOP_LOSS_LIMIT` and `TAKE_PROFIT_LIMIT`;
    /// not with the other types (-1106).
    #[schema(value_type = Option<openapi::TimeInForceName>, inline)]
    time_in_force: Option<String>,
    /// In the base asset.
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    quantity: Option<String>,
    /// `MARKET` only, instead of `quantity`: the quote to spend or receive.
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    quote_order_qty: Option<String>,
    /// Mandatory for `LIMIT`, `LIMIT_MAKER`, `STOP_LOSS_LIMIT` and
    /// `TAKE_PROFIT_LIMIT`; not with the other types (-1106).
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    price: Option<String>,
    /// Unique among the account's open orders; without one the order's
    /// is `x-<orderId>`.
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    new_client_order_id: Option<String>,
    /// Default `FULL` for `LIMIT` and `MARKET`, `ACK` for `LIMIT_MAKER`.
    #[schema(value_type = Option<openapi::RespTypeName>, inline)]
    pub(super) new_order_resp_type: Option<String>,
    /// Default: the pair's.
    #[schema(value_type = Option<openapi::StpModeName>, inline)]
    self_trade_prevention_mode: Option<String>,
    /// `STOP_LOSS`, `TAKE_PROFIT` and their `_LIMIT` types: the last trade
    /// price that fires the order (with `trailingDelta`, the price from
    /// which it starts trailing). It or `trailingDelta` is mandatory.
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    stop_price: Option<String>,
    /// A trailing stop: basis points the price must move back from its
    /// best since the order started trailing (`TRAILING_DELTA` filter).
    #[schema(value_type = Option<u32>, minimum = 1)]
    trailing_delta: Option<String>,
    /// An iceberg: the visible slice of a `LIMIT`, `LIMIT_MAKER` or
    /// conditional `_LIMIT` order with `timeInForce` GTC or GTD.
    #[schema(value_type = Option<openapi::Decimal>, inline)]
    iceberg_qty: Option<String>,
    /// With `timeInForce=GTD` only, and then mandatory: when the order
    /// expires, in Unix milliseconds.
    #[schema(value_type = Option<u64>, minimum = 1)]
    good_till_date: Option<String>,
    // Binance's parameters for what this exchange does not offer: read,
    // so that sending one is refused by name (-1106), and not described.
    #[schema(ignore)]
    strategy_id: Option<String>,
    #[schema(ignore)]
    strategy_type: Option<String>,
    /// Read by `order/test` only: `true` or `false`. A string because a
    /// cancel-replace flattens this struct into its own, and flattened
    /// fields reach serde as text. Described by [`TestOrderForm`].
    #[schema(ignore)]
    compute_commission_rates: Option<String>,
}

/// `order/test`'s form: a new order's, and `computeCommissionRates`.
#[derive(Debug)]
struct TestOrderForm;

impl PartialSchema for TestOrderForm {
    fn schema() -> RefOr<Schema> {
        merged(NewOrderRequest::schema(), CommissionRatesParam::schema())
    }
}

impl ToSchema for TestOrderForm {}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the field of `NewOrderRequest` its schema leaves out
struct CommissionRatesParam {
    /// `true` answers the commission rates the order would pay.
    #[schema(value_type = Option<BoolText>, inline)]
    compute_commission_rates: Option<String>,
}

/// Validates a parsed order against its pair's rules and turns it into the
/// engine's `NewOrder` (taking the next order id). Public for benchmarks
/// of the request path.
pub fn new_order_command(
    gw: &Gateway,
    r: &NewOrderRequest,
) -> Result<(PairConfig, NewOrder), ApiError> {
    let p = symbol(gw, &r.symbol)?;
    let order = new_order_for(&p, r, || gw.ids.next())?;
    Ok((p, order))
}

impl NewOrderRequest {
    /// The order's parameters as one order's form.
    fn form(&self) -> OrderForm<'_> {
        OrderForm {
            prefix: "",
            side: &self.side,
            order_type: &self.order_type,
            time_in_force: self.time_in_force.as_deref(),
            quantity: self.quantity.as_deref(),
            quote_order_qty: self.quote_order_qty.as_deref(),
            price: self.price.as_deref(),
            stop_price: self.stop_price.as_deref(),
            trailing_delta: self.trailing_delta.as_deref(),
            iceberg_qty: self.iceberg_qty.as_deref(),
            good_till_date: self.good_till_date.as_deref(),
            client_order_id: self.new_client_order_id.as_deref(),
            stp: self.self_trade_prevention_mode.as_deref(),
            strategy_id: self.strategy_id.as_deref(),
            strategy_type: self.strategy_type.as_deref(),
        }
    }
}

/// [`new_order_command`] once the pair is known; `next_id` is called only
/// for an order that parsed.
pub(super) fn new_order_for(
    p: &PairConfig,
    r: &NewOrderRequest,
    next_id: impl FnOnce() -> OrderId,
) -> Result<NewOrder, ApiError> {
    r.form()
        .parse(p, proto::Timestamp(crate::now_ns()), next_id)
}

/// Places a new order.
#[utoipa::path(post, path = "/api/v3/order", tag = "Trading",
    request_body(content = inline(NewOrderRequest), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses(
        (status = 200, description = "`ACK`, `RESULT` or `FULL`.", body = NewOrderAnswer, headers(
            ("X-MBX-ORDER-COUNT-10S" = u32, description = "New orders of this account in the current 10 s."),
            ("X-MBX-ORDER-COUNT-1D" = u32, description = "New orders of this account in the current UTC day."))),
        SignedErrors, CommandErrors, OrderCountErrors))]
pub(super) async fn new_order(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, req): (Caller, NewOrderRequest) =
        signed_request(&gw, &headers, &uri, body).await?;
    if req.compute_commission_rates.is_some() {
        return Err(not_required("computeCommissionRates"));
    }
    let mode = RespType::of(req.new_order_resp_type.as_deref(), &req.order_type)?;
    let (p, order) = new_order_command(&gw, &req)?;
    let counts = match gw.usage.charge_orders(caller.user, 1, now_ms()) {
        Ok(counts) => counts,
        // The refusal carries the counts in its headers too.
        Err(refused) => return Ok(refused.into_response()),
    };
    let mut resp = Json(place(&gw, &caller, &p, order, mode).await?).into_response();
    resp.headers_mut().extend(counts.headers());
    Ok(resp)
}

/// Submits `order` and answers in `mode`.
async fn place(
    gw: &Gateway,
    caller: &Caller,
    p: &PairConfig,
    order: NewOrder,
    mode: RespType,
) -> Result<Value, ApiError> {
    let cmd = command(p.symbol, caller, CommandBody::NewOrder(order));
    let at = cmd.timestamp;
    // A LIMIT_MAKER that would take, or a stop the last price already
    // met, is refused, as on Binance, whatever the answer's shape: only the
    // book can tell, so it is waited for.
    let wait = mode != RespType::Ack || order.post_only || order.order_type.trigger().is_some();
    let (_, outcome) = submit(gw, cmd, wait).await?;
    let batch = match outcome {
        Some(record) => {
            let batch = fold(&record.events, p);
            if batch
                .fills()
                .iter()
                .any(|f| f.taker_order_id == order.order_id)
            {
                // Binance gives an order back to the count on its first fill.
                gw.usage.order_filled(caller.user, now_ms());
            }
            if crossed_as_maker(&record.events, order.order_id) {
                return Err(ApiError::rejected_order(
                    proto::RejectCode::PostOnlyWouldCross,
                    false,
                ));
            }
            Some(batch)
        }
        None => None,
    };
    let fees = gw.fees(p.symbol);
    Ok(new_order_answer(
        p,
        &order,
        at,
        batch.as_ref(),
        mode,
        fees,
        None,
    ))
}

/// Whether `order_id` was a `LIMIT_MAKER` that would have taken: the book
/// ends it at once, and Binance answers that as a rejection.
fn crossed_as_maker(events: &[proto::Event], order_id: OrderId) -> bool {
    events.iter().any(|e| {
        matches!(e.body, EventBody::Canceled(c)
            if c.order_id == order_id && c.reason == CancelReason::PostOnlyWouldCross)
    })
}

/// The store rows a record's events make, for the answer.
fn fold(events: &[proto::Event], p: &PairConfig) -> Batch {
    let mut batch = Batch::default();
    let mut seq = proto::Seq(0);
    batch.add_events(p.qty_scale, &mut seq, events);
    batch
}

/// `order/test`'s answer with `computeCommissionRates=true`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `test_order_answer`
struct TestOrderCommissions {
    #[schema(inline)]
    standard_commission_for_order: MakerTaker,
    #[schema(inline)]
    special_commission_for_order: MakerTaker,
    #[schema(inline)]
    tax_commission_for_order: MakerTaker,
    #[schema(inline)]
    discount: Discount,
}

/// Rates as decimal fractions.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a `json!` of `test_order_answer`
struct MakerTaker {
    maker: String,
    taker: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes a `json!` of `test_order_answer`
struct Discount {
    enabled_for_account: bool,
    enabled_for_symbol: bool,
    /// Always null.
    #[schema(required = true)]
    discount_asset: Option<String>,
    discount: String,
}

/// `order/test`'s answer: `{}`, or the commission rates when asked.
#[derive(Debug)]
struct TestOrderAnswer;

impl PartialSchema for TestOrderAnswer {
    fn schema() -> RefOr<Schema> {
        any_of([EmptyObject::schema(), TestOrderCommissions::schema()])
    }
}

impl ToSchema for TestOrderAnswer {}

/// Checks a new order as `order` would (the pair's rules and trading
/// status now), and places nothing.
#[utoipa::path(post, path = "/api/v3/order/test", tag = "Trading",
    request_body(content = inline(TestOrderForm), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The order would be accepted.", body = TestOrderAnswer),
        SignedErrors))]
pub(super) async fn test_order(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (_, req): (Caller, NewOrderRequest) = signed_request(&gw, &headers, &uri, body).await?;
    RespType::of(req.new_order_resp_type.as_deref(), &req.order_type)?;
    let p = &symbol(&gw, &req.symbol)?;
    let order = new_order_for(p, &req, || OrderId(0))?;
    // As `order` would answer: a closed market refuses it.
    if let Some(pair) = gw.log.pair(p.symbol) {
        super::check_trading_status(pair.trading_status(), &CommandBody::NewOrder(order))?;
    }
    let rates = (req.compute_commission_rates.as_deref() == Some("true")).then(|| {
        gw.fees(p.symbol).unwrap_or(accounts::Fees {
            maker_bps: 0,
            taker_bps: 0,
        })
    });
    Ok(Json(test_order_answer(rates)).into_response())
}

/// `order/test`'s answer: `{}`, or with `computeCommissionRates=true` the
/// pair's rates `fees`, no special or tax rates, no discount.
pub(super) fn test_order_answer(fees: Option<accounts::Fees>) -> Value {
    let Some(fees) = fees else {
        return json!({});
    };
    let rate = crate::money::rate_text;
    json!({
        "standardCommissionForOrder": {"maker": rate(fees.maker_bps), "taker": rate(fees.taker_bps)},
        "specialCommissionForOrder": {"maker": rate(0), "taker": rate(0)},
        "taxCommissionForOrder": {"maker": rate(0), "taker": rate(0)},
        "discount": {"enabledForAccount": false, "enabledForSymbol": false, "discountAsset": null, "discount": rate(0)},
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct OrderQuery {
    pub(super) symbol: String,
    /// The order; when `origClientOrderId` is sent too, it must match.
    pub(super) order_id: Option<u64>,
    /// The order, by its client id; one of the two is mandatory.
    #[param(value_type = Option<openapi::ClientOrderIdText>, inline)]
    pub(super) orig_client_order_id: Option<String>,
    /// The cancel's own client id, answered as `clientOrderId`.
    #[param(value_type = Option<openapi::ClientOrderIdText>, inline)]
    new_client_order_id: Option<String>,
    /// Cancel only an order in this status (else -2011).
    #[param(value_type = Option<openapi::CancelRestrictions>, inline)]
    cancel_restrictions: Option<String>,
}

/// The order a request names. Binance looks an order up by `orderId`
/// when both are sent, and then requires the client id to match.
pub(super) fn order_ref(order_id: Option<u64>, cid: Option<&str>) -> Result<OrderRef, ApiError> {
    match (order_id, cid) {
        (Some(id), _) => Ok(OrderRef::Id(OrderId(id))),
        (None, Some(c)) => Ok(OrderRef::Client(client_id("origClientOrderId", c)?)),
        (None, None) => Err(ApiError::new(
            code::MISSING_PARAM,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )),
    }
}

/// The caller's order `target` on `p`, as stored, if it exists and
/// matches the client id also sent.
///
/// It waits until the store holds what the engine had done when the request
/// arrived: a query, and a cancel or an amend the order view cannot serve,
/// need the order as it stands (an amend a moment ago changed its
/// quantity), not as it was.
async fn stored_order(
    gw: &Gateway,
    p: &PairConfig,
    caller: &Caller,
    target: &OrderRef,
    cid: Option<&str>,
) -> Result<Option<OrderRow>, ApiError> {
    let lookup = match target {
        OrderRef::Id(id) => OrderLookup::Id(*id),
        OrderRef::Client(c) => OrderLookup::Client(*c),
    };
    super::read_own_writes(gw, &[p.symbol]).await;
    let row = gw
        .store
        .order(p.symbol, caller.user, lookup)
        .await
        .map_err(ApiError::internal)?;
    Ok(row.filter(|o| matches_cid(o, cid)))
}

/// The caller's order `target` on `p` as a cancel or an amend needs it,
/// as it stood when the engine had emitted `arrived` (the pair's seq when
/// the request arrived): from the gateway's view of open orders, which
/// folds each event as it is emitted, so the request waits for no store
/// write. From the store when the view cannot say: it is behind, or the
/// order is not open and `closed_matters` (a cancel restriction answers by
/// a closed order's status).
async fn order_to_change(
    gw: &Gateway,
    p: &PairConfig,
    caller: &Caller,
    target: &OrderRef,
    cid: Option<&str>,
    arrived: Option<Seq>,
    closed_matters: bool,
) -> Result<Option<OrderRow>, ApiError> {
    if let Some(seq) = arrived {
        let deadline = super::own_writes_deadline();
        match gw
            .market
            .open_order(p.symbol, caller.user, *target, seq, deadline)
            .await
        {
            Viewed::Open(row) => return Ok(Some(*row).filter(|o| matches_cid(o, cid))),
            Viewed::NotOpen if !closed_matters => return Ok(None),
            Viewed::NotOpen | Viewed::Behind => {}
        }
    }
    stored_order(gw, p, caller, target, cid).await
}

/// Whether `o` has the client id `cid`, when one was sent.
fn matches_cid(o: &OrderRow, cid: Option<&str>) -> bool {
    cid.is_none_or(|c| client_order_id(o.order_id, o.client_order_id.as_ref()) == c)
}

/// An order of the caller's, by `orderId` or `origClientOrderId`.
#[utoipa::path(get, path = "/api/v3/order", tag = "Trading",
    params(
        ("symbol" = String, Query),
        ("orderId" = Option<u64>, Query, minimum = 0, description = "The order; when `origClientOrderId` is sent too, it must match."),
        ("origClientOrderId" = inline(Option<openapi::ClientOrderIdText>), Query, description = "The order, by its client id; one of the two is mandatory."),
    ),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The order.", body = OrderBody), SignedErrors))]
pub(super) async fn query_order(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, OrderQuery) = signed_request(&gw, &headers, &uri, body).await?;
    if q.new_client_order_id.is_some() {
        return Err(not_required("newClientOrderId"));
    }
    if q.cancel_restrictions.is_some() {
        return Err(not_required("cancelRestrictions"));
    }
    let p = &symbol(&gw, &q.symbol)?;
    let target = order_ref(q.order_id, q.orig_client_order_id.as_deref())?;
    let cid = q.orig_client_order_id.as_deref();
    let row = stored_order(&gw, p, &caller, &target, cid).await?;
    let row = row.ok_or_else(|| ApiError::new(code::NO_SUCH_ORDER, "Order does not exist."))?;
    Ok(Json(order_body(&gw, &row, p)).into_response())
}

/// A stored order as a query answers it, with when a trailing stop
/// started tracking from the order view, which alone knows it.
pub(super) fn order_body(gw: &Gateway, row: &OrderRow, p: &PairConfig) -> OrderBody {
    let since = row
        .trailing_delta
        .and_then(|_| gw.market.trailing_since(row.pair, row.order_id));
    OrderBody::with_trailing_time(row, p, since)
}

/// `cancelRestrictions` is one of Binance's values, when sent.
fn check_restrictions(r: Option<&str>) -> Result<(), ApiError> {
    match r {
        None | Some("ONLY_NEW" | "ONLY_PARTIALLY_FILLED") => Ok(()),
        Some(_) => Err(ApiError::new(code::BAD_ENUM, "Invalid cancelRestrictions.")),
    }
}

/// Cancels `target` and answers as Binance's `DELETE /api/v3/order` does.
async fn cancel(
    gw: &Gateway,
    caller: &Caller,
    p: &PairConfig,
    q: &OrderQuery,
) -> Result<Value, ApiError> {
    check_restrictions(q.cancel_restrictions.as_deref())?;
    let target = order_ref(q.order_id, q.orig_client_order_id.as_deref())?;
    let cid = q.orig_client_order_id.as_deref();
    let arrived = gw.log.pair(p.symbol).map(|s| s.engine_seq());
    let closed_matters = q.cancel_restrictions.is_some();
    let row = order_to_change(gw, p, caller, &target, cid, arrived, closed_matters).await?;
    if q.order_id.is_some() && cid.is_some() && row.is_none() {
        return Err(ApiError::cancel_rejected(proto::RejectCode::UnknownOrder));
    }
    let restricted = match (q.cancel_restrictions.as_deref(), &row) {
        (Some("ONLY_NEW"), Some(o)) => o.status != store::OrderStatus::New,
        (Some(_), Some(o)) => o.status != store::OrderStatus::PartiallyFilled,
        _ => false,
    };
    if restricted {
        return Err(ApiError::new(
            code::CANCEL_REJECTED,
            "Order was not canceled due to cancel restrictions.",
        ));
    }
    let cmd = command(p.symbol, caller, CommandBody::Cancel { target });
    let at = cmd.timestamp;
    let (_, outcome) = submit(gw, cmd, true).await?;
    let record = outcome.ok_or_else(|| ApiError::internal("a cancel without its outcome"))?;
    // The command's own cancel: expiries of GTD orders may come before it.
    let canceled = record.events.iter().find_map(|e| match e.body {
        EventBody::Canceled(c) if c.reason == CancelReason::UserRequest => Some(c),
        _ => None,
    });
    let c = canceled.ok_or_else(|| ApiError::internal("a cancel without a Canceled event"))?;
    let new_cid = q.new_client_order_id.as_deref();
    // An order of a list ends its list: Binance answers with the list, as
    // stored when the cancel arrived and changed by its events.
    if let Some(list_id) = row.as_ref().and_then(|o| o.order_list_id)
        && super::stored_up_to(gw, p.symbol, arrived, super::own_writes_deadline()).await
        && let Some(list) = gw
            .store
            .order_list(caller.user, store::ListLookup::Id(list_id), None)
            .await
            .map_err(ApiError::internal)?
        && record
            .events
            .iter()
            .any(|e| matches!(e.body, EventBody::ListDone(d) if d.list_id == list_id))
    {
        let rows = gw
            .store
            .list_orders(&list)
            .await
            .map_err(ApiError::internal)?;
        return Ok(lists::ended_list_answer(
            p,
            &list,
            &record.events,
            &rows,
            new_cid,
        ));
    }
    Ok(cancel_answer(p, &c, row.as_ref(), at, new_cid))
}

/// Cancels an open order.
#[utoipa::path(delete, path = "/api/v3/order", tag = "Trading", params(OrderQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The order as it stood, `CANCELED`.", body = CancelAnswer),
        SignedErrors, CommandErrors))]
pub(super) async fn cancel_order(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, q): (Caller, OrderQuery) = signed_request(&gw, &headers, &uri, body).await?;
    let p = symbol(&gw, &q.symbol)?;
    Ok(Json(cancel(&gw, &caller, &p, &q).await?).into_response())
}

/// The new order's fields are flattened in, so every field reaches serde as
/// text; the new order's struct refuses unknown parameters.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancelReplaceRequest {
    /// `STOP_ON_FAILURE` places nothing when the cancel fails;
    /// `ALLOW_FAILURE` places the new order regardless.
    #[schema(value_type = openapi::CancelReplaceMode, inline)]
    cancel_replace_mode: String,
    /// The order to cancel; or `cancelOrigClientOrderId`.
    #[schema(value_type = Option<u64>, minimum = 0)]
    cancel_order_id: Option<String>,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    cancel_orig_client_order_id: Option<String>,
    /// The cancel's own client id.
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    cancel_new_client_order_id: Option<String>,
    #[schema(value_type = Option<openapi::CancelRestrictions>, inline)]
    cancel_restrictions: Option<String>,
    /// Described by [`CancelReplaceForm`].
    #[serde(flatten)]
    #[schema(ignore)]
    order: NewOrderRequest,
}

/// `order/cancelReplace`'s form: the cancel's fields and the new order's.
#[derive(Debug)]
struct CancelReplaceForm;

impl PartialSchema for CancelReplaceForm {
    fn schema() -> RefOr<Schema> {
        merged(NewOrderRequest::schema(), CancelReplaceRequest::schema())
    }
}

impl ToSchema for CancelReplaceForm {}

/// `order/cancelReplace`'s answer when both parts succeeded.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `replace_success`
struct CancelReplaceAnswer {
    /// `SUCCESS`.
    #[schema(value_type = ReplaceResult, inline)]
    cancel_result: String,
    /// `SUCCESS`.
    #[schema(value_type = ReplaceResult, inline)]
    new_order_result: String,
    #[schema(inline)]
    cancel_response: CancelAnswer,
    #[schema(inline)]
    new_order_response: NewOrderAnswer,
}

/// `order/cancelReplace`'s answer when a part failed: -2022 (400) when
/// nothing happened, -2021 (409) when one part did.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `replace_failure_body`
struct CancelReplaceFailure {
    code: i32,
    msg: String,
    #[schema(inline)]
    data: ReplaceParts,
}

/// Each part's outcome.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `replace_failure_body`
struct ReplaceParts {
    #[schema(value_type = ReplaceResult, inline)]
    cancel_result: String,
    #[schema(value_type = ReplaceResult, inline)]
    new_order_result: String,
    /// The cancel's answer, or its error.
    #[schema(inline)]
    cancel_response: CancelOrError,
    /// The new order's answer, its error, or null when not attempted.
    #[schema(inline)]
    new_order_response: OrderOrError,
}

#[derive(Debug)]
struct CancelOrError;

impl PartialSchema for CancelOrError {
    fn schema() -> RefOr<Schema> {
        any_of([CancelAnswer::schema(), ErrorBody::schema()])
    }
}

impl ToSchema for CancelOrError {}

#[derive(Debug)]
struct OrderOrError;

impl PartialSchema for OrderOrError {
    fn schema() -> RefOr<Schema> {
        let null = utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Null);
        any_of([NewOrderAnswer::schema(), ErrorBody::schema(), null.into()])
    }
}

impl ToSchema for OrderOrError {}

#[derive(Debug)]
struct ErrorOrFailure;

impl PartialSchema for ErrorOrFailure {
    fn schema() -> RefOr<Schema> {
        any_of([CancelReplaceFailure::schema(), ErrorBody::schema()])
    }
}

impl ToSchema for ErrorOrFailure {}

/// Cancels an order, then places a new one.
///
/// `STOP_ON_FAILURE` places nothing when the cancel fails; `ALLOW_FAILURE`
/// places the new order regardless.
#[utoipa::path(post, path = "/api/v3/order/cancelReplace", tag = "Trading",
    request_body(content = inline(CancelReplaceForm), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses(
        (status = 200, description = "Both parts succeeded.", body = CancelReplaceAnswer),
        SignedErrors,
        (status = 400, description = "The parameters were refused, or neither part succeeded (-2022, with each part's outcome).", body = ErrorOrFailure),
        (status = 409, description = "One part succeeded, the other failed (-2021).", body = CancelReplaceFailure)))]
pub(super) async fn cancel_replace(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, params) = signed_params(&gw, &headers, &uri, body).await?;
    let r: CancelReplaceRequest = params::parse(&params, "")?;
    // serde does not refuse unknown fields through `flatten`: the new
    // order's own struct refuses them once the cancel's are taken out.
    let cancel_keys = [
        "cancelReplaceMode",
        "cancelOrderId",
        "cancelOrigClientOrderId",
        "cancelNewClientOrderId",
        "cancelRestrictions",
    ];
    let _: NewOrderRequest = params::parse(&params::without(&params, &cancel_keys), "")?;
    if r.order.compute_commission_rates.is_some() {
        return Err(not_required("computeCommissionRates"));
    }
    let allow_failure = match r.cancel_replace_mode.as_str() {
        "STOP_ON_FAILURE" => false,
        "ALLOW_FAILURE" => true,
        _ => return Err(ApiError::new(code::BAD_ENUM, "Invalid cancelReplaceMode.")),
    };
    let mode = RespType::of(r.order.new_order_resp_type.as_deref(), &r.order.order_type)?;
    // A malformed parameter is refused before anything happens, as any
    // other endpoint refuses one.
    check_restrictions(r.cancel_restrictions.as_deref())?;
    let (p, order) = new_order_command(&gw, &r.order)?;
    // Binance counts the new order even when it is not attempted.
    let counts = match gw.usage.charge_orders(caller.user, 1, now_ms()) {
        Ok(counts) => counts,
        // The refusal carries the counts in its headers too.
        Err(refused) => return Ok(refused.into_response()),
    };
    let cancel_order_id = r
        .cancel_order_id
        .as_deref()
        .map(|id| {
            id.parse::<u64>().map_err(|_| {
                ApiError::new(
                    code::ILLEGAL_CHARS,
                    "Illegal characters found in parameter 'cancelOrderId'.",
                )
            })
        })
        .transpose()?;
    let q = OrderQuery {
        symbol: r.order.symbol.clone(),
        order_id: cancel_order_id,
        orig_client_order_id: r.cancel_orig_client_order_id.clone(),
        new_client_order_id: r.cancel_new_client_order_id.clone(),
        cancel_restrictions: r.cancel_restrictions.clone(),
    };
    let canceled = cancel(&gw, &caller, &p, &q).await;
    let mut resp = if canceled.is_err() && !allow_failure {
        replace_failure(canceled, None)
    } else {
        match (canceled, place(&gw, &caller, &p, order, mode).await) {
            (Ok(c), Ok(n)) => Json(replace_success(c, n)).into_response(),
            (canceled, placed) => replace_failure(canceled, Some(placed)),
        }
    };
    resp.headers_mut().extend(counts.headers());
    Ok(resp)
}

/// A cancel-replace's answer when both parts succeeded.
pub(super) fn replace_success(canceled: Value, placed: Value) -> Value {
    json!({
        "cancelResult": "SUCCESS",
        "newOrderResult": "SUCCESS",
        "cancelResponse": canceled,
        "newOrderResponse": placed,
    })
}

/// Binance's answer when a part of a cancel-replace failed: -2022 when
/// nothing happened, -2021 when one part did.
fn replace_failure(
    canceled: Result<Value, ApiError>,
    placed: Option<Result<Value, ApiError>>,
) -> Response {
    let (status, body) = replace_failure_body(canceled, placed);
    (status, Json(body)).into_response()
}

/// [`replace_failure`]'s status and body; `placed` is `None` when the new
/// order was not attempted.
pub(super) fn replace_failure_body(
    canceled: Result<Value, ApiError>,
    placed: Option<Result<Value, ApiError>>,
) -> (StatusCode, Value) {
    let part = |r: &Result<Value, ApiError>| match r {
        Ok(v) => ("SUCCESS", v.clone()),
        Err(e) => ("FAILURE", json!({"code": e.code, "msg": e.msg})),
    };
    let (cancel_result, cancel_response) = part(&canceled);
    let (new_result, new_response) = match &placed {
        Some(p) => part(p),
        None => ("NOT_ATTEMPTED", Value::Null),
    };
    let all_failed = canceled.is_err() && !placed.as_ref().is_some_and(Result::is_ok);
    let (status, code, msg) = if all_failed {
        (
            StatusCode::BAD_REQUEST,
            -2022,
            "Order cancel-replace failed.",
        )
    } else {
        (
            StatusCode::CONFLICT,
            -2021,
            "Order cancel-replace partially failed.",
        )
    };
    let body = json!({
        "code": code,
        "msg": msg,
        "data": {
            "cancelResult": cancel_result,
            "newOrderResult": new_result,
            "cancelResponse": cancel_response,
            "newOrderResponse": new_response,
        },
    });
    (status, body)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AmendRequest {
    pub(super) symbol: String,
    /// The order; or `origClientOrderId`.
    pub(super) order_id: Option<u64>,
    #[schema(value_type = Option<openapi::ClientOrderIdText>, inline)]
    pub(super) orig_client_order_id: Option<String>,
    /// Refused (-1106): the order keeps its client id.
    #[schema(ignore)]
    new_client_order_id: Option<String>,
    /// Lower than the order's quantity.
    #[schema(value_type = openapi::Decimal, inline)]
    pub(super) new_qty: String,
}

/// Lowers an order's quantity and keeps its place in the queue.
#[utoipa::path(put, path = "/api/v3/order/amend/keepPriority", tag = "Trading",
    request_body(content = inline(AmendRequest), content_type = "application/x-www-form-urlencoded"),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The amended order.", body = AmendAnswer),
        SignedErrors, CommandErrors))]
pub(super) async fn amend_keep_priority(
    State(gw): App,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (caller, r): (Caller, AmendRequest) = signed_request(&gw, &headers, &uri, body).await?;
    if r.new_client_order_id.is_some() {
        return Err(not_required("newClientOrderId"));
    }
    let p = symbol(&gw, &r.symbol)?;
    let target = order_ref(r.order_id, r.orig_client_order_id.as_deref())?;
    let new_qty =
        Qty::parse_positive(&r.new_qty, p.qty_scale).map_err(|e| ApiError::decimal("newQty", e))?;
    engine::validate::qty(&p, new_qty).map_err(ApiError::rejected)?;
    let cid = r.orig_client_order_id.as_deref();
    let arrived = gw.log.pair(p.symbol).map(|s| s.engine_seq());
    // Only an open order can be amended: any other is -2013, as the book
    // would answer.
    let row = order_to_change(&gw, &p, &caller, &target, cid, arrived, false).await?;
    let row = row.ok_or_else(|| ApiError::new(code::NO_SUCH_ORDER, "Order does not exist."))?;
    if row.orig_qty.is_none_or(|q| new_qty >= q) {
        return Err(ApiError::new(
            code::ORDER_REFUSED,
            "Order amend (quantity increase) is not supported.",
        ));
    }
    let amend = Amend {
        target,
        new_qty: Some(new_qty),
        new_price: None,
        new_stop_price: None,
    };
    let cmd = command(p.symbol, &caller, CommandBody::Amend(amend));
    let at = cmd.timestamp;
    let (_, outcome) = submit(&gw, cmd, true).await?;
    let record = outcome.ok_or_else(|| ApiError::internal("an amend without its outcome"))?;
    let mut answer = answers::amend_answer(&p, &row, &record.events, at)
        .ok_or_else(|| ApiError::internal("an amend without an Amended event"))?;
    // An order of a list: Binance adds the list's status, as stored.
    if let Some(list_id) = row.order_list_id
        && super::stored_up_to(&gw, p.symbol, arrived, super::own_writes_deadline()).await
        && let Some(list) = gw
            .store
            .order_list(caller.user, store::ListLookup::Id(list_id), None)
            .await
            .map_err(ApiError::internal)?
        && let Some(obj) = answer.as_object_mut()
    {
        obj.insert("listStatus".into(), lists::amend_list_status(&p, &list));
    }
    Ok(Json(answer).into_response())
}
