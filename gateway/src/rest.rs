//! REST handlers. Signed endpoints take `timestamp`, `recvWindow` and
//! `signature` in the query string; `POST` and `PUT` take a JSON body.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use commandlog::{EventRecord, SubmitError};
use proto::{
    Amend, ClientOrderId, Command, CommandBody, EventBody, NewOrder, OrderId, OrderRef, OrderSize,
    OrderType, PairConfig, Price, Qty, QuoteQty, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use store::{Batch, OrderLookup};

use crate::auth::{API_KEY_HEADER, Caller};
use crate::errors::{ApiError, code};
use crate::limits::ShedReason;
use crate::{Gateway, now_ns};

type App = State<Arc<Gateway>>;
type ApiResult = Result<Response, ApiError>;

pub(crate) mod account;
mod bodies;
mod raw;

use bodies::{AccountTrade, DepthBody, ExchangeInfo, OrderBody, PairInfo, PublicTrade};

pub use raw::{RawRoute, command_from_raw};

pub(crate) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/time", get(time))
        .route("/api/v1/exchangeInfo", get(exchange_info))
        .route("/api/v1/depth", get(depth))
        .route("/api/v1/trades", get(trades))
        .route(
            "/api/v1/order",
            get(query_order)
                .post(new_order)
                .delete(cancel_order)
                .put(amend_order),
        )
        .route("/api/v1/openOrders", get(open_orders).delete(cancel_all))
        .route("/api/v1/myTrades", get(my_trades))
        .route("/api/v1/account", get(account::account))
        .fallback(|| async { ApiError::new(code::NO_SUCH_ENDPOINT, "No such endpoint.") })
}

/// Counts every answer by route and status.
pub(crate) async fn count_requests(State(gw): App, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let resp = next.run(req).await;
    gw.metrics
        .requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(gw): App) -> Response {
    let mut halted = Vec::new();
    let mut reasons = serde_json::Map::new();
    for p in gw.log.pairs().into_iter().filter(|p| p.is_halted()) {
        let pair = p.config.symbol.to_string();
        reasons.insert(pair.clone(), json!(p.halt_reason()));
        halted.push(pair);
    }
    if halted.is_empty() && !*gw.shutdown.borrow() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        let stopping = *gw.shutdown.borrow();
        let body =
            json!({"ready": false, "halted": halted, "reasons": reasons, "stopping": stopping});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics(State(gw): App) -> Response {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&gw.registry.gather())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn time() -> Json<Value> {
    Json(json!({"serverTime": now_ns() / 1_000_000}))
}

async fn exchange_info(State(gw): App) -> Response {
    let symbols = gw
        .pair_list
        .iter()
        .map(|p| {
            let trading = gw.log.pair(p.symbol).is_some_and(|s| !s.is_halted());
            PairInfo::new(p, trading)
        })
        .collect();
    Json(ExchangeInfo {
        server_time: now_ns() / 1_000_000,
        symbols,
        timezone: "UTC",
    })
    .into_response()
}

/// Parses a query string into `T`; unknown or malformed parameters get a code.
pub(crate) fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| param_error(&e.to_string()))
}

/// Maps a serde message to the closest code.
fn param_error(msg: &str) -> ApiError {
    let code = if msg.contains("missing field") {
        code::MISSING_PARAM
    } else if msg.contains("unknown field") {
        code::UNKNOWN_PARAM
    } else if msg.contains("invalid digit")
        || msg.contains("invalid type")
        || msg.contains("invalid value")
    {
        code::ILLEGAL_CHARS
    } else if msg.contains("number too large") {
        code::BAD_NUMBER
    } else {
        code::MALFORMED_JSON
    };
    ApiError::new(code, msg.to_string())
}

fn symbol<'a>(gw: &'a Gateway, s: &str) -> Result<&'a PairConfig, ApiError> {
    Symbol::new(s)
        .ok()
        .and_then(|s| gw.pairs.get(&s))
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
}

fn enum_value<T>(field: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(value)
        .ok_or_else(|| ApiError::new(code::BAD_ENUM, format!("Invalid {field}: {value:?}.")))
}

fn client_id(field: &str, s: &str) -> Result<ClientOrderId, ApiError> {
    ClientOrderId::new(s).map_err(|e| ApiError::new(code::ILLEGAL_CHARS, format!("{field}: {e}")))
}

fn limit(v: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            code::BAD_NUMBER,
            format!("limit must be 1 to {max}."),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepthQuery {
    symbol: String,
    limit: Option<u32>,
}

async fn depth(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let _ = headers;
    let q: DepthQuery = query(uri.query())?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 100, 5_000)?;
    let d = gw
        .market
        .depth(p.symbol, n as usize)
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    Ok(Json(DepthBody::new(&d, p)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TradesQuery {
    symbol: String,
    limit: Option<u32>,
}

async fn trades(State(gw): App, uri: axum::http::Uri) -> ApiResult {
    let q: TradesQuery = query(uri.query())?;
    let p = symbol(&gw, &q.symbol)?;
    let n = limit(q.limit, 500, 1_000)?;
    let rows = gw
        .store
        .trades(p.symbol, n)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<PublicTrade> = rows.iter().map(|f| PublicTrade::new(f, p)).collect();
    Ok(Json(out).into_response())
}

/// Authenticates and rate-limits a signed request; on a demo exchange, a
/// user's first request in this process is funded first.
async fn signed(
    gw: &Gateway,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let caller = gw
        .keys
        .verify(key, query.unwrap_or(""), body, now_ns() / 1_000_000)
        .await?;
    rate_limit(gw, &caller.api_key)?;
    gw.demo.fund(gw.log.accounts(), caller.user).await;
    Ok(caller)
}

/// Counts a request against `key`'s rate limit (trading and admin keys
/// alike); past it, the request is shed with 429 and when to retry.
pub(crate) fn rate_limit(gw: &Gateway, key: &str) -> Result<(), ApiError> {
    let Err(wait) = gw.rate.check(key, Instant::now()) else {
        return Ok(());
    };
    gw.metrics
        .shed
        .with_label_values(&[ShedReason::RateLimit.as_str()])
        .inc();
    Err(ApiError::retry(
        code::TOO_MANY_REQUESTS,
        "Too many requests; slow down.",
        wait,
    ))
}

/// The body of a `POST`/`PUT`: it must be JSON and within the size limit.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_json_media_type(ct) {
        return Err(ApiError::new(
            code::BAD_CONTENT_TYPE,
            "Content-Type must be application/json (optionally with charset=utf-8).",
        ));
    }
    serde_json::from_slice(body).map_err(|e| param_error(&e.to_string()))
}

/// Whether a `Content-Type` names JSON: the media type `application/json`
/// exactly, in any letter case (RFC 9110 makes type and subtype
/// case-insensitive), with optional `name=value` parameters of which a
/// `charset` must be UTF-8, the only encoding JSON has (RFC 8259). A prefix
/// is not enough: `application/jsonx` is another type.
pub(crate) fn is_json_media_type(ct: &str) -> bool {
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
        token(name)
            && token(value)
            && (!name.eq_ignore_ascii_case("charset")
                || value.eq_ignore_ascii_case("utf-8")
                || value.eq_ignore_ascii_case("utf8"))
    })
}

pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(code::BODY_TOO_LARGE, "Request body too large.")
        } else {
            ApiError::new(code::MALFORMED_JSON, format!("Unreadable body: {e}"))
        }
    })
}

/// The JSON body of `POST /api/v1/order`, as parsed before validation.
/// Public for benchmarks of the request path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewOrderRequest {
    symbol: String,
    side: String,
    #[serde(rename = "type")]
    order_type: String,
    time_in_force: Option<String>,
    quantity: Option<String>,
    quote_order_qty: Option<String>,
    price: Option<String>,
    client_order_id: Option<String>,
    #[serde(default)]
    post_only: bool,
    self_trade_prevention: Option<String>,
    new_order_resp_type: Option<String>,
}

/// `ACK`: answer when the command is in the log. `RESULT` (the default):
/// answer with the engine's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespType {
    Ack,
    Result,
}

fn resp_type(s: Option<&str>) -> Result<RespType, ApiError> {
    match s {
        None | Some("RESULT") => Ok(RespType::Result),
        Some("ACK") => Ok(RespType::Ack),
        Some(other) => Err(ApiError::new(
            code::BAD_ENUM,
            format!("Invalid newOrderRespType: {other:?}; ACK or RESULT."),
        )),
    }
}

/// Validates a parsed order body against its pair's rules and turns it into
/// the engine's `NewOrder` (taking the next order id). Public for
/// benchmarks of the request path.
pub fn new_order_command(
    gw: &Gateway,
    r: &NewOrderRequest,
) -> Result<(PairConfig, NewOrder), ApiError> {
    let p = symbol(gw, &r.symbol)?.clone();
    let order = new_order_for(&p, r, || gw.ids.next())?;
    Ok((p, order))
}

/// [`new_order_command`] once the pair is known; `next_id` is called only
/// for an order that parsed.
fn new_order_for(
    p: &PairConfig,
    r: &NewOrderRequest,
    next_id: impl FnOnce() -> OrderId,
) -> Result<NewOrder, ApiError> {
    let side = enum_value("side", &r.side, Side::from_name)?;
    let order_type = match (r.order_type.as_str(), &r.price) {
        ("LIMIT", Some(price)) => OrderType::Limit {
            price: Price::parse_positive(price, p.price_scale)
                .map_err(|e| ApiError::decimal("price", e))?,
        },
        ("LIMIT", None) => {
            return Err(ApiError::new(
                code::MISSING_PARAM,
                "A LIMIT order needs a price.",
            ));
        }
        ("MARKET", None) => OrderType::Market,
        ("MARKET", Some(_)) => {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "A MARKET order takes no price.",
            ));
        }
        (other, _) => {
            return Err(ApiError::new(
                code::BAD_ENUM,
                format!("Invalid type: {other:?}; LIMIT or MARKET."),
            ));
        }
    };
    let time_in_force = match &r.time_in_force {
        Some(t) => enum_value("timeInForce", t, TimeInForce::from_name)?,
        None if order_type == OrderType::Market => TimeInForce::Ioc,
        None => TimeInForce::Gtc,
    };
    let size = match (&r.quantity, &r.quote_order_qty) {
        (Some(q), None) => OrderSize::Base(
            Qty::parse_positive(q, p.qty_scale).map_err(|e| ApiError::decimal("quantity", e))?,
        ),
        (None, Some(q)) => OrderSize::Quote(
            QuoteQty::parse_positive(q, p.price_scale)
                .map_err(|e| ApiError::decimal("quoteOrderQty", e))?,
        ),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                "Send quantity or quoteOrderQty, not both.",
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                code::MISSING_PARAM,
                "Mandatory parameter 'quantity' (or 'quoteOrderQty') was not sent.",
            ));
        }
    };
    let order = NewOrder {
        order_id: next_id(),
        client_order_id: r
            .client_order_id
            .as_deref()
            .map(|c| client_id("clientOrderId", c))
            .transpose()?,
        side,
        order_type,
        time_in_force,
        post_only: r.post_only,
        stp: r
            .self_trade_prevention
            .as_deref()
            .map(|s| enum_value("selfTradePrevention", s, StpMode::from_name))
            .transpose()?,
        size,
    };
    // The engine checks again; refusing here keeps invalid orders out of the log.
    engine::validate::new_order(p, &order).map_err(ApiError::rejected)?;
    Ok(order)
}

/// Admission for one command, then the log; returns the outcome when asked,
/// or the engine's rejection as the error.
async fn submit(
    gw: &Gateway,
    cmd: Command,
    mode: RespType,
) -> Result<(u64, Option<Arc<EventRecord>>), ApiError> {
    let started = Instant::now();
    let pair = gw
        .log
        .pair(cmd.pair)
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    let shed = |reason: ShedReason| {
        gw.metrics.shed.with_label_values(&[reason.as_str()]).inc();
        let (code, msg) = match reason {
            ShedReason::Halted => (
                code::PAIR_HALTED,
                "Trading on this pair is halted.".to_string(),
            ),
            _ => (
                code::OVERLOADED,
                format!("Overloaded ({}); retry later.", reason.as_str()),
            ),
        };
        ApiError::retry(code, msg, gw.config.retry_after_secs)
    };
    if pair.is_halted() {
        return Err(shed(ShedReason::Halted));
    }
    let risk_reducing = matches!(
        cmd.body,
        CommandBody::Cancel { .. } | CommandBody::CancelAll
    );
    // Held until the answer is sent.
    let _permits = if risk_reducing {
        (Some(gw.in_flight.cancel().map_err(shed)?), None, None)
    } else {
        if gw.config.pair_lag_exceeded(pair.lag()) {
            return Err(shed(ShedReason::PairLag));
        }
        if pair.persister_lag() > gw.config.max_persister_lag {
            return Err(shed(ShedReason::PersisterLag));
        }
        let (process, per_pair) = gw.in_flight.order(cmd.pair).map_err(shed)?;
        (None, Some(process), per_pair)
    };
    let kind = if risk_reducing { "cancels" } else { "orders" };
    let gauge = gw.metrics.in_flight.with_label_values(&[kind]);
    gauge.inc();
    let result = async {
        let submitted = gw.log.submit(cmd, mode == RespType::Result).await.map_err(|e| match e {
            SubmitError::UnknownPair => ApiError::new(code::BAD_SYMBOL, "Invalid symbol."),
            SubmitError::Halted => ApiError::retry(code::PAIR_HALTED, "Trading on this pair is halted.", gw.config.retry_after_secs),
            SubmitError::ShuttingDown => ApiError::retry(code::OVERLOADED, "The exchange is shutting down.", gw.config.retry_after_secs),
            SubmitError::Store(e) => ApiError::internal(e),
            SubmitError::Refused(risk) => ApiError::refused(risk),
        })?;
        let outcome = match submitted.outcome {
            None => None,
            Some(rx) => match tokio::time::timeout(gw.result_timeout(), rx).await {
                Ok(Ok(record)) => match rejection(&record) {
                    Some(e) => return Err(e),
                    None => Some(record),
                },
                _ => {
                    return Err(ApiError::new(
                        code::RESULT_TIMEOUT,
                        format!("The command is in the log at position {}, but its outcome did not arrive in time; query the order.", submitted.position),
                    ));
                }
            },
        };
        Ok((submitted.position, outcome))
    }
    .await;
    gauge.dec();
    let mode_label = if mode == RespType::Ack {
        "ack"
    } else {
        "result"
    };
    gw.metrics
        .latency
        .with_label_values(&[mode_label])
        .observe(started.elapsed().as_secs_f64());
    result
}

fn command(pair: Symbol, caller: &Caller, body: CommandBody) -> Command {
    Command {
        pair,
        user: caller.user,
        timestamp: Timestamp(now_ns()),
        body,
    }
}

/// The first rejection in a record, if the command was refused.
fn rejection(record: &EventRecord) -> Option<ApiError> {
    record.events.iter().find_map(|e| match e.body {
        EventBody::Rejected(r) => Some(ApiError::rejected(r.code)),
        _ => None,
    })
}

/// The fills of a record, as the taker saw them: with the taker's
/// commission, in the quote asset.
fn fills_json(batch: &Batch, p: &PairConfig, fees: Option<accounts::Fees>) -> Value {
    let taker_rate = crate::money::rate(fees, false);
    Value::Array(
        batch
            .fills()
            .iter()
            .map(|f| {
                json!({
                    "price": f.price.to_decimal(p.price_scale),
                    "qty": f.qty.to_decimal(p.qty_scale),
                    "commission": crate::money::commission_text(p, f.price, f.qty, taker_rate),
                    "commissionAsset": crate::money::quote_asset(p),
                    "tradeId": f.seq.0,
                    "makerOrderId": f.maker_order_id.0,
                })
            })
            .collect(),
    )
}

fn fold(record: &EventRecord, p: &PairConfig) -> Batch {
    let mut batch = Batch::default();
    let mut seq = proto::Seq(0);
    batch.add_events(p.qty_scale, &mut seq, &record.events);
    batch
}

async fn new_order(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body_bytes(body)?;
    let caller = signed(&gw, &headers, uri.query(), &body).await?;
    let req: NewOrderRequest = json_body(&headers, &body)?;
    let mode = resp_type(req.new_order_resp_type.as_deref())?;
    let (p, order) = new_order_command(&gw, &req)?;
    let cmd = command(p.symbol, &caller, CommandBody::NewOrder(order));
    let (position, outcome) = submit(&gw, cmd, mode).await?;
    let ack = json!({
        "symbol": p.symbol.as_str(),
        "orderId": order.order_id.0,
        "clientOrderId": order.client_order_id.map(|c| c.as_str().to_string()),
        "transactTime": cmd.timestamp.0 / 1_000_000,
        "logPosition": position,
    });
    let Some(record) = outcome else {
        return Ok(Json(ack).into_response());
    };
    let batch = fold(&record, &p);
    let mut out = batch
        .new_order(p.symbol, order.order_id)
        .map(|o| json!(OrderBody::new(o, &p)))
        .unwrap_or(ack);
    out["transactTime"] = json!(cmd.timestamp.0 / 1_000_000);
    out["fills"] = fills_json(&batch, &p, gw.fees(p.symbol));
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OrderQuery {
    symbol: String,
    order_id: Option<u64>,
    orig_client_order_id: Option<String>,
    new_order_resp_type: Option<String>,
    // Checked by the signature verification, before parsing.
    #[serde(rename = "timestamp")]
    _timestamp: Option<String>,
    #[serde(rename = "recvWindow")]
    _recv_window: Option<String>,
    #[serde(rename = "signature")]
    _signature: Option<String>,
}

fn order_ref(order_id: Option<u64>, cid: Option<&str>) -> Result<OrderRef, ApiError> {
    match (order_id, cid) {
        (Some(id), None) => Ok(OrderRef::Id(OrderId(id))),
        (None, Some(c)) => Ok(OrderRef::Client(client_id("origClientOrderId", c)?)),
        (Some(_), Some(_)) => Err(ApiError::new(
            code::BAD_PARAM_COMBINATION,
            "Send orderId or origClientOrderId, not both.",
        )),
        (None, None) => Err(ApiError::new(
            code::MISSING_PARAM,
            "Either orderId or origClientOrderId must be sent.",
        )),
    }
}

async fn cancel_order(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let caller = signed(&gw, &headers, uri.query(), b"").await?;
    let q: OrderQuery = query(uri.query())?;
    let p = symbol(&gw, &q.symbol)?.clone();
    let target = order_ref(q.order_id, q.orig_client_order_id.as_deref())?;
    let mode = resp_type(q.new_order_resp_type.as_deref())?;
    let cmd = command(p.symbol, &caller, CommandBody::Cancel { target });
    let (position, outcome) = submit(&gw, cmd, mode).await?;
    let Some(record) = outcome else {
        return Ok(
            Json(json!({"symbol": p.symbol.as_str(), "logPosition": position})).into_response(),
        );
    };
    let canceled = record.events.iter().find_map(|e| match e.body {
        EventBody::Canceled(c) => Some(c),
        _ => None,
    });
    let Some(c) = canceled else {
        return Err(ApiError::internal("a cancel without a Canceled event"));
    };
    let remaining = match c.remaining {
        // The REST mapping never sends a budget, but a canceled rest of one
        // is base quantity all the same.
        OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => q.to_decimal(p.qty_scale),
        OrderSize::Quote(q) => q.to_decimal(p.price_scale),
    };
    Ok(Json(json!({
        "symbol": p.symbol.as_str(),
        "orderId": c.order_id.0,
        "clientOrderId": c.client_order_id.map(|x| x.as_str().to_string()),
        "side": c.side.as_str(),
        "status": "CANCELED",
        "canceledQty": remaining,
        "transactTime": cmd.timestamp.0 / 1_000_000,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AmendRequest {
    symbol: String,
    order_id: Option<u64>,
    orig_client_order_id: Option<String>,
    quantity: Option<String>,
    price: Option<String>,
    new_order_resp_type: Option<String>,
}

/// The amend `r` asks of an order on `p`, checked against the pair's rules
/// as a new order's quantity and price would be.
fn amend_for(p: &PairConfig, r: &AmendRequest) -> Result<Amend, ApiError> {
    let target = order_ref(r.order_id, r.orig_client_order_id.as_deref())?;
    let new_qty = r
        .quantity
        .as_deref()
        .map(|q| Qty::parse_positive(q, p.qty_scale).map_err(|e| ApiError::decimal("quantity", e)))
        .transpose()?;
    let new_price = r
        .price
        .as_deref()
        .map(|q| Price::parse_positive(q, p.price_scale).map_err(|e| ApiError::decimal("price", e)))
        .transpose()?;
    if new_qty.is_none() && new_price.is_none() {
        return Err(ApiError::new(
            code::MISSING_PARAM,
            "An amend needs quantity, price or both.",
        ));
    }
    if let Some(q) = new_qty {
        engine::validate::qty(p, q).map_err(ApiError::rejected)?;
    }
    if let Some(x) = new_price {
        engine::validate::price(p, x).map_err(ApiError::rejected)?;
    }
    Ok(Amend {
        target,
        new_qty,
        new_price,
    })
}

async fn amend_order(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body_bytes(body)?;
    let caller = signed(&gw, &headers, uri.query(), &body).await?;
    let r: AmendRequest = json_body(&headers, &body)?;
    let p = symbol(&gw, &r.symbol)?.clone();
    let mode = resp_type(r.new_order_resp_type.as_deref())?;
    let cmd = command(p.symbol, &caller, CommandBody::Amend(amend_for(&p, &r)?));
    let (position, outcome) = submit(&gw, cmd, mode).await?;
    let Some(record) = outcome else {
        return Ok(
            Json(json!({"symbol": p.symbol.as_str(), "logPosition": position})).into_response(),
        );
    };
    let Some(a) = record.events.iter().find_map(|e| match e.body {
        EventBody::Amended(a) => Some(a),
        _ => None,
    }) else {
        return Err(ApiError::internal("an amend without an Amended event"));
    };
    let batch = fold(&record, &p);
    Ok(Json(json!({
        "symbol": p.symbol.as_str(),
        "orderId": a.order_id.0,
        "clientOrderId": a.client_order_id.map(|x| x.as_str().to_string()),
        "price": a.price.to_decimal(p.price_scale),
        "origQty": a.qty.to_decimal(p.qty_scale),
        "leavesQty": a.remaining.to_decimal(p.qty_scale),
        "priorityKept": a.priority_kept,
        "fills": fills_json(&batch, &p, gw.fees(p.symbol)),
        "transactTime": cmd.timestamp.0 / 1_000_000,
    }))
    .into_response())
}

async fn query_order(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let caller = signed(&gw, &headers, uri.query(), b"").await?;
    let q: OrderQuery = query(uri.query())?;
    let p = symbol(&gw, &q.symbol)?;
    let lookup = match order_ref(q.order_id, q.orig_client_order_id.as_deref())? {
        OrderRef::Id(id) => OrderLookup::Id(id),
        OrderRef::Client(c) => OrderLookup::Client(c),
    };
    let row = gw
        .store
        .order(p.symbol, caller.user, lookup)
        .await
        .map_err(ApiError::internal)?;
    let row = row.ok_or_else(|| ApiError::new(code::NO_SUCH_ORDER, "Order does not exist."))?;
    Ok(Json(OrderBody::new(&row, p)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AccountQuery {
    symbol: Option<String>,
    limit: Option<u32>,
    new_order_resp_type: Option<String>,
    // Checked by the signature verification, before parsing.
    #[serde(rename = "timestamp")]
    _timestamp: Option<String>,
    #[serde(rename = "recvWindow")]
    _recv_window: Option<String>,
    #[serde(rename = "signature")]
    _signature: Option<String>,
}

async fn open_orders(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let caller = signed(&gw, &headers, uri.query(), b"").await?;
    let q: AccountQuery = query(uri.query())?;
    let pair = q
        .symbol
        .as_deref()
        .map(|s| symbol(&gw, s).map(|p| p.symbol))
        .transpose()?;
    let rows = gw
        .store
        .open_orders(caller.user, pair)
        .await
        .map_err(ApiError::internal)?;
    let out: Vec<OrderBody> = rows
        .iter()
        .filter_map(|o| gw.pairs.get(&o.pair).map(|p| OrderBody::new(o, p)))
        .collect();
    Ok(Json(out).into_response())
}

async fn cancel_all(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let caller = signed(&gw, &headers, uri.query(), b"").await?;
    let q: AccountQuery = query(uri.query())?;
    let mode = resp_type(q.new_order_resp_type.as_deref())?;
    let pairs: Vec<Symbol> = match q.symbol.as_deref() {
        Some(s) => vec![symbol(&gw, s)?.symbol],
        None => gw.pair_list.iter().map(|p| p.symbol).collect(),
    };
    let mut per_pair = Vec::new();
    for pair in pairs {
        let (position, outcome) =
            submit(&gw, command(pair, &caller, CommandBody::CancelAll), mode).await?;
        let count = outcome.and_then(|r| {
            r.events.iter().find_map(|e| match e.body {
                EventBody::CanceledAll(c) => Some(c.count),
                _ => None,
            })
        });
        per_pair.push(json!({"symbol": pair.as_str(), "logPosition": position, "canceled": count}));
    }
    Ok(Json(json!({"pairs": per_pair})).into_response())
}

async fn my_trades(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let caller = signed(&gw, &headers, uri.query(), b"").await?;
    let q: AccountQuery = query(uri.query())?;
    let Some(s) = q.symbol.as_deref() else {
        return Err(ApiError::new(
            code::MISSING_PARAM,
            "Mandatory parameter 'symbol' was not sent.",
        ));
    };
    let p = symbol(&gw, s)?;
    let n = limit(q.limit, 500, 1_000)?;
    let rows = gw
        .store
        .user_trades(caller.user, p.symbol, n)
        .await
        .map_err(ApiError::internal)?;
    let fees = gw.fees(p.symbol);
    let out: Vec<AccountTrade> = rows
        .iter()
        .map(|f| AccountTrade::new(f, p, caller.user, fees))
        .collect();
    Ok(Json(out).into_response())
}

#[cfg(test)]
mod tests {
    use proto::{ClientOrderId, Seq, UserId};
    use store::{FillRow, OrderRow, OrderStatus};

    use super::*;

    fn pair() -> PairConfig {
        PairConfig {
            price_scale: 2,
            qty_scale: 4,
            ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
        }
    }

    /// 5 bps for makers, 10 for takers.
    fn fees() -> accounts::Fees {
        accounts::Fees {
            maker_bps: 5,
            taker_bps: 10,
        }
    }

    fn fill() -> FillRow {
        FillRow {
            pair: pair().symbol,
            seq: Seq(12),
            price: Price(10_005),
            qty: Qty(100),
            quote_qty: 1_000_500,
            taker_side: Side::Sell,
            maker_order_id: OrderId(7),
            maker_user: UserId(2),
            taker_order_id: OrderId(9),
            taker_user: UserId(1),
            timestamp: Timestamp(1_700_000_000_123_456_789),
        }
    }

    fn order(quote_sized: bool) -> OrderRow {
        OrderRow {
            pair: pair().symbol,
            order_id: OrderId(9),
            client_order_id: (!quote_sized).then(|| ClientOrderId::new("my-1").unwrap()),
            user: UserId(1),
            side: Side::Buy,
            order_type: if quote_sized { "MARKET" } else { "LIMIT" }.into(),
            time_in_force: if quote_sized { "IOC" } else { "GTC" }.into(),
            post_only: !quote_sized,
            price: (!quote_sized).then_some(Price(10_005)),
            orig_qty: (!quote_sized).then_some(Qty(300)),
            orig_quote_qty: quote_sized.then_some(25_000),
            executed_qty: Qty(100),
            cum_quote_qty: 1_000_500,
            status: OrderStatus::PartiallyFilled,
            created_at: Timestamp(1_700_000_000_123_456_789),
            updated_at: Timestamp(1_700_000_001_000_000_000),
        }
    }

    /// The exact bytes of the market and account payloads: clients parse
    /// these, so a change of a name or a value's format must be deliberate.
    #[test]
    fn payloads_keep_their_exact_bytes() {
        let p = pair();
        let got = [
            serde_json::to_string(&PairInfo::new(&p, true)).unwrap(),
            serde_json::to_string(&PairInfo::new(&p, false)).unwrap(),
            serde_json::to_string(&PublicTrade::new(&fill(), &p)).unwrap(),
            serde_json::to_string(&AccountTrade::new(&fill(), &p, UserId(2), None)).unwrap(),
            serde_json::to_string(&AccountTrade::new(&fill(), &p, UserId(1), None)).unwrap(),
            serde_json::to_string(&AccountTrade::new(&fill(), &p, UserId(2), Some(fees())))
                .unwrap(),
            serde_json::to_string(&AccountTrade::new(&fill(), &p, UserId(1), Some(fees())))
                .unwrap(),
            serde_json::to_string(&OrderBody::new(&order(false), &p)).unwrap(),
            serde_json::to_string(&OrderBody::new(&order(true), &p)).unwrap(),
        ];
        let want = [
            r#"{"baseAsset":"BTC","defaultSelfTradePreventionMode":"NONE","filters":[{"filterType":"PRICE_FILTER","maxPrice":"10000.00","minPrice":"0.01","tickSize":"0.01"},{"filterType":"LOT_SIZE","maxQty":"100000000.0000","minQty":"0.0001","stepSize":"0.0001"},{"applyMaxToMarket":false,"applyMinToMarket":false,"avgPriceMins":0,"filterType":"NOTIONAL","maxNotional":"92233720368547758.07","minNotional":"0.00"},{"filterType":"MAX_NUM_ORDERS","maxNumOrders":1000000}],"maxNotional":"92233720368547758.07","maxPrice":"10000.00","maxQty":"100000000.0000","minNotional":"0.00","minQty":"0.0001","orderTypes":["LIMIT","MARKET"],"pricePrecision":2,"quantityPrecision":4,"quoteAsset":"EUR","selfTradePreventionModes":["NONE","EXPIRE_TAKER","EXPIRE_MAKER","EXPIRE_BOTH"],"status":"TRADING","stepSize":"0.0001","symbol":"BTC-EUR","tickSize":"0.01","timeInForce":["GTC","IOC","FOK"]}"#,
            r#"{"baseAsset":"BTC","defaultSelfTradePreventionMode":"NONE","filters":[{"filterType":"PRICE_FILTER","maxPrice":"10000.00","minPrice":"0.01","tickSize":"0.01"},{"filterType":"LOT_SIZE","maxQty":"100000000.0000","minQty":"0.0001","stepSize":"0.0001"},{"applyMaxToMarket":false,"applyMinToMarket":false,"avgPriceMins":0,"filterType":"NOTIONAL","maxNotional":"92233720368547758.07","minNotional":"0.00"},{"filterType":"MAX_NUM_ORDERS","maxNumOrders":1000000}],"maxNotional":"92233720368547758.07","maxPrice":"10000.00","maxQty":"100000000.0000","minNotional":"0.00","minQty":"0.0001","orderTypes":["LIMIT","MARKET"],"pricePrecision":2,"quantityPrecision":4,"quoteAsset":"EUR","selfTradePreventionModes":["NONE","EXPIRE_TAKER","EXPIRE_MAKER","EXPIRE_BOTH"],"status":"HALT","stepSize":"0.0001","symbol":"BTC-EUR","tickSize":"0.01","timeInForce":["GTC","IOC","FOK"]}"#,
            r#"{"id":12,"isBuyerMaker":true,"price":"100.05","qty":"0.0100","quoteQty":"10005.00","time":1700000000123}"#,
            r#"{"commission":"0","commissionAsset":"EUR","id":12,"isBuyer":true,"isBuyerMaker":true,"isMaker":true,"orderId":7,"price":"100.05","qty":"0.0100","quoteQty":"10005.00","time":1700000000123}"#,
            r#"{"commission":"0","commissionAsset":"EUR","id":12,"isBuyer":false,"isBuyerMaker":true,"isMaker":false,"orderId":9,"price":"100.05","qty":"0.0100","quoteQty":"10005.00","time":1700000000123}"#,
            r#"{"commission":"0.000500","commissionAsset":"EUR","id":12,"isBuyer":true,"isBuyerMaker":true,"isMaker":true,"orderId":7,"price":"100.05","qty":"0.0100","quoteQty":"10005.00","time":1700000000123}"#,
            r#"{"commission":"0.001000","commissionAsset":"EUR","id":12,"isBuyer":false,"isBuyerMaker":true,"isMaker":false,"orderId":9,"price":"100.05","qty":"0.0100","quoteQty":"10005.00","time":1700000000123}"#,
            r#"{"clientOrderId":"my-1","cummulativeQuoteQty":"10005.00","executedQty":"0.0100","orderId":9,"origQty":"0.0300","origQuoteOrderQty":null,"postOnly":true,"price":"100.05","side":"BUY","status":"PARTIALLY_FILLED","symbol":"BTC-EUR","time":1700000000123,"timeInForce":"GTC","type":"LIMIT","updateTime":1700000001000}"#,
            r#"{"clientOrderId":null,"cummulativeQuoteQty":"10005.00","executedQty":"0.0100","orderId":9,"origQty":null,"origQuoteOrderQty":"250.00","postOnly":false,"price":null,"side":"BUY","status":"PARTIALLY_FILLED","symbol":"BTC-EUR","time":1700000000123,"timeInForce":"IOC","type":"MARKET","updateTime":1700000001000}"#,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn json_media_type_is_matched_exactly() {
        use super::is_json_media_type;

        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; charset=utf8; q=1",
            "  application/json  ",
        ] {
            assert!(is_json_media_type(ok), "{ok:?}");
        }
        for bad in [
            "",
            "application/jsonx",
            "application/json-patch+json",
            "application/json5",
            "application/json; charset=iso-8859-1",
            "application/json;",
            "application/json; charset",
            "application/json; =utf-8",
            "text/json",
            "application/x-www-form-urlencoded",
        ] {
            assert!(!is_json_media_type(bad), "{bad:?}");
        }
    }
}
