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
use proto::{Command, CommandBody, EventBody, PairConfig, Symbol, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{API_KEY_HEADER, Caller};
use crate::errors::{ApiError, code};
use crate::limits::ShedReason;
use crate::{Gateway, now_ns};

type App = State<Arc<Gateway>>;
type ApiResult = Result<Response, ApiError>;

pub(crate) mod account;
mod bodies;
mod general;
pub(crate) mod openapi;
pub(crate) mod params;
mod public;
mod raw;
mod trading;
pub(crate) mod weights;

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
        .route("/api/v3/myTrades", get(trading::my_trades))
        .route("/api/v3/account", get(account::account))
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

/// The pair Binance's API calls `name` (`BTCEUR`).
fn symbol<'a>(gw: &'a Gateway, name: &str) -> Result<&'a PairConfig, ApiError> {
    gw.by_name
        .get(name)
        .and_then(|s| gw.pairs.get(s))
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
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

/// A request's parameters, from the query string and the form body.
fn request_params<T: DeserializeOwned>(
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Result<T, ApiError> {
    params::parse(uri.query().unwrap_or(""), params::form_body(headers, body)?)
}

/// A signed request: the caller, and its parameters parsed into `T`.
async fn signed_request<T: DeserializeOwned>(
    gw: &Gateway,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Caller, T), ApiError> {
    let body = body_bytes(body)?;
    let form = params::form_body(headers, &body)?;
    let caller = signed(gw, headers, uri.query(), form.as_bytes()).await?;
    let params = params::parse(uri.query().unwrap_or(""), form)?;
    Ok((caller, params))
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
                Ok(Ok(record)) => match rejection(&cmd, &record) {
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

/// The first rejection in `cmd`'s record, if the book refused it, in
/// Binance's terms for the kind of command.
fn rejection(cmd: &Command, record: &EventRecord) -> Option<ApiError> {
    let code = record.events.iter().find_map(|e| match e.body {
        EventBody::Rejected(r) => Some(r.code),
        _ => None,
    })?;
    Some(match &cmd.body {
        CommandBody::NewOrder(o) => {
            ApiError::rejected_order(code, o.order_type == proto::OrderType::Market)
        }
        CommandBody::Cancel { .. } | CommandBody::CancelAll => ApiError::cancel_rejected(code),
        _ => ApiError::rejected(code),
    })
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
