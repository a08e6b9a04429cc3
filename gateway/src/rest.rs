//! Binance's Spot REST API under `/api/v3`, field by field: parameters in
//! the query string or a form body, signed by Binance's rules
//! ([`crate::auth`]), symbols as Binance writes them (`BTCEUR`), Binance's
//! error codes. Health, readiness and metrics sit beside it.

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
use axum::routing::{get, post, put};
use commandlog::{EventRecord, SubmitError};
use proto::{
    Command, CommandBody, EventBody, PairConfig, RejectCode, Symbol, Timestamp, TradingStatus,
};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{API_KEY_HEADER, Caller};
use crate::errors::{ApiError, code};
use crate::limits::ShedReason;
use crate::{Gateway, now_ns};

type App = State<Arc<Gateway>>;
type ApiResult = Result<Response, ApiError>;

pub(crate) mod account;
pub(crate) mod bodies;
pub(crate) use bodies::{client_order_id, list_id};
mod general;
pub(crate) mod openapi;
pub(crate) mod params;
mod public;
mod raw;
#[cfg(test)]
pub(crate) mod shapes;
mod trading;
pub(crate) mod userstream;
pub(crate) mod weights;

/// REST's candle rows and tickers, which the kline and ticker streams
/// reuse so that both say the same.
pub(crate) use public::kline_row;
pub(crate) use public::tickers::day_ticker_entry;
pub use raw::{RawRoute, command_from_raw};
pub use trading::{NewOrderRequest, new_order_command};

pub(crate) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .merge(general::routes())
        .merge(public::routes())
        .route(
            "/api/v3/order",
            get(trading::query_order)
                .post(trading::new_order)
                .delete(trading::cancel_order),
        )
        .route("/api/v3/order/test", post(trading::test_order))
        .route("/api/v3/order/cancelReplace", post(trading::cancel_replace))
        .route(
            "/api/v3/order/amend/keepPriority",
            put(trading::amend_keep_priority),
        )
        .route(
            "/api/v3/openOrders",
            get(trading::open_orders).delete(trading::cancel_all),
        )
        .route("/api/v3/allOrders", get(trading::all_orders))
        .route("/api/v3/orderList/oco", post(trading::lists::new_oco))
        .route("/api/v3/orderList/oto", post(trading::lists::new_oto))
        .route(
            "/api/v3/orderList",
            get(trading::lists::query_list).delete(trading::lists::cancel_list),
        )
        .route("/api/v3/allOrderList", get(trading::lists::all_lists))
        .route("/api/v3/openOrderList", get(trading::lists::open_lists))
        .route("/api/v3/myTrades", get(trading::my_trades))
        .route("/api/v3/account", get(account::account))
        .route("/api/v3/rateLimit/order", get(account::order_rate_limits))
        .route(
            "/api/v3/userDataStream",
            post(userstream::open)
                .put(userstream::keep_alive)
                .delete(userstream::close),
        )
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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "Service",
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// `readyz`'s answer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the `json!` of `readyz`
struct Readiness {
    ready: bool,
    /// Halted pairs (`BTC-EUR`); only when not ready.
    halted: Option<Vec<String>>,
    /// Why each halted pair stopped; only when not ready.
    #[schema(value_type = Option<Object>)]
    reasons: Option<()>,
    /// Whether the exchange is shutting down; only when not ready.
    stopping: Option<bool>,
}

/// Readiness: no pair halted and not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "Service",
    responses((status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "A pair is halted, or the exchange is shutting down.", body = Readiness)))]
async fn readyz(State(gw): App) -> Response {
    let mut halted = Vec::new();
    let mut reasons = serde_json::Map::new();
    for p in gw.log.pairs().into_iter().filter(|p| p.is_halted()) {
        let pair = p.symbol.to_string();
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

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "Service",
    responses((status = 200, description = "The text exposition format.", body = String, content_type = "text/plain")))]
async fn metrics(State(gw): App) -> Response {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&gw.registry.gather())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Parses a query string into `T` (the operators' API).
pub(crate) fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    params::parse(raw.unwrap_or(""), "")
}

/// The pair Binance's API names `name` (`BTCEUR`), with its rules now
/// ([`Gateway::rules`]): what orders are checked against before they go to
/// the log, and what answers say of the pair.
fn symbol(gw: &Gateway, name: &str) -> Result<PairConfig, ApiError> {
    gw.symbol_named(name)
        .and_then(|s| gw.rules(s))
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
}

/// Refuses a command the pair's trading status refuses
/// (`TradingStatus::refusal`, the book's own table), before it is logged:
/// an ACK must not say "accepted" for an order the book will refuse.
/// Binance's words for a closed market: `-2010`/`-2011 Market is closed.`
fn check_trading_status(status: TradingStatus, body: &CommandBody) -> Result<(), ApiError> {
    match status.refusal(body.kind()) {
        Some(code) => Err(refused(Asked::of(body), code)),
        None => Ok(()),
    }
}

/// The pairs a request names by `symbol` (one) or `symbols` (a JSON list
/// of names), or every pair when it names none; and whether it named one
/// (answered with an object rather than a list).
fn pairs_named(
    gw: &Gateway,
    one: Option<&str>,
    list: Option<&str>,
) -> Result<(Vec<PairConfig>, bool), ApiError> {
    match (one, list) {
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
        (None, None) => Ok((
            gw.symbols()
                .into_iter()
                .filter_map(|s| gw.rules(s))
                .collect(),
            false,
        )),
    }
}

fn enum_value<T>(field: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| ApiError::new(code::BAD_ENUM, format!("Invalid {field}.")))
}

/// `v` within `1..=max`, or `default` when not sent.
fn limit(v: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            code::BAD_INTERVAL,
            format!("Invalid limit: it must be 1 to {max}."),
        )),
    }
}

/// The longest a read of the caller's own orders and trades waits for the
/// store to catch up with the engine.
const OWN_WRITES_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits, at most [`OWN_WRITES_WAIT`], until the store holds every event
/// `pairs` had emitted when the request arrived, so that a trader reads
/// their own writes: an order answered a moment ago is in `openOrders`.
/// The pair's status learns the store's progress (embedded at once, in
/// distributed mode every 50 ms) and wakes the waiters.
async fn read_own_writes(gw: &Gateway, pairs: &[Symbol]) {
    let deadline = own_writes_deadline();
    for p in pairs {
        let seq = gw.log.pair(*p).map(|s| s.engine_seq());
        stored_up_to(gw, *p, seq, deadline).await;
    }
}

/// The longest a read of one's own writes waits: [`OWN_WRITES_WAIT`] from
/// now.
fn own_writes_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + OWN_WRITES_WAIT
}

/// Waits, until `deadline` at most, until the store holds `pair`'s events
/// up to `seq`; true when it does, or when either is unknown.
async fn stored_up_to(
    gw: &Gateway,
    pair: Symbol,
    seq: Option<proto::Seq>,
    deadline: tokio::time::Instant,
) -> bool {
    match (gw.log.pair(pair), seq) {
        (Some(status), Some(seq)) => status.stored_up_to(seq, deadline).await,
        _ => true,
    }
}

/// A signed request: the caller, and its parameters parsed into `T`.
async fn signed_request<T: DeserializeOwned>(
    gw: &Gateway,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Caller, T), ApiError> {
    let (caller, params) = signed_params(gw, headers, uri, body).await?;
    Ok((caller, params::parse(&params, "")?))
}

/// A signed request: the caller, and its parameters from the query and the
/// form body as one query string.
async fn signed_params(
    gw: &Gateway,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Caller, String), ApiError> {
    let body = body_bytes(body)?;
    let form = params::form_body(headers, &body)?;
    let caller = signed(gw, headers, uri.query(), form.as_bytes()).await?;
    Ok((
        caller,
        params::merged(uri.query().unwrap_or(""), form).into_owned(),
    ))
}

/// Authenticates and rate-limits a signed request; on a demo exchange, a
/// user's first request in this process is funded first.
async fn signed(
    gw: &Gateway,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Caller, ApiError> {
    // A WebSocket API request arrives already authenticated: its signature
    // covers the sorted JSON params, not this query string (see `wsapi`).
    let caller = match crate::wsapi::pre_authenticated() {
        Some(caller) => caller,
        None => {
            let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
            gw.keys
                .verify(key, query.unwrap_or(""), body, crate::now_ms())
                .await?
        }
    };
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

/// The body of an operator's `POST`: it must be JSON.
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
    serde_json::from_slice(body).map_err(|e| json_error(&e.to_string()))
}

/// A JSON body's fault: a field's error by its Binance code, anything
/// else as malformed JSON.
fn json_error(msg: &str) -> ApiError {
    let e = params::param_error(msg);
    if e.code == code::ILLEGAL_CHARS && !msg.contains("invalid") {
        return ApiError::new(code::MALFORMED_JSON, msg.to_string());
    }
    e
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

/// Admission for one command, then the log; returns the outcome when asked,
/// or the engine's rejection as the error.
async fn submit(
    gw: &Gateway,
    cmd: Command,
    wait: bool,
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
    check_trading_status(pair.trading_status(), &cmd.body)?;
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
    let asked = Asked::of(&cmd.body);
    let result = async {
        let submitted = gw.log.submit(cmd, wait).await.map_err(|e| match e {
            SubmitError::UnknownPair => ApiError::new(code::BAD_SYMBOL, "Invalid symbol."),
            SubmitError::Halted => ApiError::retry(code::PAIR_HALTED, "Trading on this pair is halted.", gw.config.retry_after_secs),
            SubmitError::ShuttingDown => ApiError::retry(code::OVERLOADED, "The exchange is shutting down.", gw.config.retry_after_secs),
            SubmitError::Store(e) => ApiError::internal(e),
            SubmitError::Refused(risk) => ApiError::refused(risk),
        })?;
        let outcome = match submitted.outcome {
            None => None,
            Some(rx) => match tokio::time::timeout(gw.result_timeout(), rx).await {
                Ok(Ok(record)) => match rejection(asked, &record) {
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
    let mode_label = if wait { "result" } else { "ack" };
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

/// What a command asked, as far as Binance's code for its rejection
/// depends on it: kept before the command goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// A new order; a plain market order's size is `MARKET_LOT_SIZE`'s.
    Order { market: bool },
    /// A cancel of an order, a list or all.
    Cancel,
    /// An order list.
    List,
    /// An amend.
    Amend,
    /// Anything else.
    Other,
}

impl Asked {
    fn of(body: &CommandBody) -> Asked {
        match body {
            CommandBody::NewOrder(o) => Asked::Order {
                market: o.order_type == proto::OrderType::Market,
            },
            CommandBody::Cancel { .. }
            | CommandBody::CancelAll
            | CommandBody::CancelList { .. } => Asked::Cancel,
            CommandBody::NewOrderList(_) => Asked::List,
            CommandBody::Amend(_) => Asked::Amend,
            CommandBody::AdvanceTime | CommandBody::ChangePair(_) => Asked::Other,
        }
    }
}

/// The first rejection in a command's record, if the book refused it, in
/// Binance's terms for what the command `asked`.
fn rejection(asked: Asked, record: &EventRecord) -> Option<ApiError> {
    let code = record.events.iter().find_map(|e| match e.body {
        EventBody::Rejected(r) => Some(r.code),
        _ => None,
    })?;
    Some(refused(asked, code))
}

/// The book's refusal `code` of a command that `asked`, in Binance's terms.
fn refused(asked: Asked, code: RejectCode) -> ApiError {
    match asked {
        Asked::Order { market } => ApiError::rejected_order(code, market),
        Asked::Cancel => ApiError::cancel_rejected(code),
        // Binance's word for an OCO whose order would fire or take at once.
        Asked::List if code == proto::RejectCode::WouldTriggerImmediately => ApiError::new(
            crate::errors::code::ORDER_REFUSED,
            "The relationship of the prices for the orders is not correct.",
        ),
        // An amend names an order that must exist: Binance's -2013.
        Asked::Amend if code == proto::RejectCode::UnknownOrder => {
            ApiError::new(crate::errors::code::NO_SUCH_ORDER, "Order does not exist.")
        }
        Asked::List | Asked::Amend | Asked::Other => ApiError::rejected(code),
    }
}

#[cfg(test)]
mod tests {
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
