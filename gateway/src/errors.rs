//! API errors: an HTTP status, a stable numeric code and a message, sent as
//! `{"code": -1121, "msg": "Invalid symbol."}`. Codes are Binance's where it
//! has one (the engine's reject reasons map to them in
//! [`ApiError::rejected_order`] and [`ApiError::cancel_rejected`]); codes
//! -1040 to -1059 are this exchange's own, for what Binance has none for.

use accounts::RiskCode;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::{DecimalError, RejectCode};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: i32,
    /// What went wrong, for a person.
    pub msg: String,
    /// Seconds the client should wait, for 429 and 503.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: i32,
    msg: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(Body {
                code: self.code,
                msg: &self.msg,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = ($code:literal, $status:ident);)*) => {
        /// The gateway's own error codes (the engine's are `-RejectCode`).
        pub mod code {
            $($(#[$doc])* pub const $name: i32 = $code;)*
        }

        fn status_of(code: i32) -> axum::http::StatusCode {
            match code {
                $($code => axum::http::StatusCode::$status,)*
                _ => axum::http::StatusCode::BAD_REQUEST,
            }
        }
    };
}

codes! {
    /// An unexpected failure inside the service.
    UNKNOWN = (-1000, INTERNAL_SERVER_ERROR);
    /// The command is in the log, but its outcome did not arrive in time.
    RESULT_TIMEOUT = (-1007, GATEWAY_TIMEOUT);
    /// Too many requests for this API key, or too much request weight for
    /// this IP; also sent with status 418 while the IP is banned.
    TOO_MANY_REQUESTS = (-1003, TOO_MANY_REQUESTS);
    /// Too many new orders for this account in the current 10 seconds or
    /// UTC day.
    TOO_MANY_ORDERS = (-1015, TOO_MANY_REQUESTS);
    /// The service sheds load: too many commands in flight, or the pair lags.
    OVERLOADED = (-1008, SERVICE_UNAVAILABLE);
    /// The pair's engine stopped on a fault.
    PAIR_HALTED = (-1009, SERVICE_UNAVAILABLE);
    /// The method is not served on this path (the `Allow` header lists
    /// those that are). Binance's UNSUPPORTED_OPERATION.
    UNSUPPORTED_OPERATION = (-1020, METHOD_NOT_ALLOWED);
    /// No endpoint at this path. Codes -1040 to -1049 are this exchange's
    /// own, for answers of the HTTP layer that Binance has no code for.
    NO_SUCH_ENDPOINT = (-1040, NOT_FOUND);
    /// The request body did not arrive within `body_read_timeout_ms`; the
    /// connection is closed.
    REQUEST_TIMEOUT = (-1041, REQUEST_TIMEOUT);
    /// The request target (path and query) is longer than allowed.
    URI_TOO_LONG = (-1042, URI_TOO_LONG);
    /// Too many request headers, or too many bytes of them.
    HEADERS_TOO_LARGE = (-1043, REQUEST_HEADER_FIELDS_TOO_LARGE);
    /// A request to `/ws` that is not a valid WebSocket upgrade.
    BAD_UPGRADE = (-1044, BAD_REQUEST);
    /// An HTTP-level refusal with no more specific code (the status says
    /// which); the message carries the framework's reason.
    BAD_HTTP_REQUEST = (-1045, BAD_REQUEST);
    /// The admin key does not exist (a trading key is not an admin key).
    /// Codes -1050 to -1059 are this exchange's own, for the operators'
    /// API and accounts.
    UNKNOWN_ADMIN_KEY = (-1050, UNAUTHORIZED);
    /// Accounts are not enabled on this exchange: no balances, movements
    /// or audit.
    ACCOUNTS_DISABLED = (-1051, NOT_IMPLEMENTED);
    /// The asset is not one of the traded pairs' assets.
    UNKNOWN_ASSET = (-1052, BAD_REQUEST);
    /// No user by that name.
    UNKNOWN_USER = (-1053, BAD_REQUEST);
    /// The audit ran and found a failure; the body carries the report.
    AUDIT_FAILED = (-1054, INTERNAL_SERVER_ERROR);
    /// An operator's change of a pair whose rules together are not valid
    /// (or not with the orders the book holds); nothing changed.
    INVALID_PAIR_CHANGE = (-1055, BAD_REQUEST);
    /// A listing of a pair that is traded here already (or one with its
    /// name once the dash is dropped); nothing changed.
    PAIR_LISTED = (-1056, CONFLICT);
    /// This exchange lists pairs only from its config file, at start
    /// (distributed mode, for now).
    LISTING_UNSUPPORTED = (-1057, NOT_IMPLEMENTED);
    /// The request's timestamp is outside its receive window.
    STALE_TIMESTAMP = (-1021, UNAUTHORIZED);
    /// The signature does not match.
    BAD_SIGNATURE = (-1022, UNAUTHORIZED);
    /// Illegal characters or an unparsable value.
    ILLEGAL_CHARS = (-1100, BAD_REQUEST);
    /// A parameter was sent twice (in the query, the body, or both).
    DUPLICATE_PARAM = (-1101, BAD_REQUEST);
    /// A mandatory parameter is missing or empty.
    MISSING_PARAM = (-1102, BAD_REQUEST);
    /// A parameter this endpoint does not read.
    UNREAD_PARAMS = (-1104, BAD_REQUEST);
    /// A parameter sent with an order type or another parameter that
    /// takes none.
    PARAM_NOT_REQUIRED = (-1106, BAD_REQUEST);
    /// A value outside its range, such as `limit` or `windowSize`.
    BAD_INTERVAL = (-1120, BAD_REQUEST);
    /// A value of the right form that cannot be taken (a `goodTillDate`
    /// past what can be stored): Binance's INVALID_PARAMETER.
    INVALID_PARAMETER = (-1130, BAD_REQUEST);
    /// An order type an OCO does not take as that order (`aboveType`,
    /// `belowType`): Binance's OCO_ORDER_TYPE_REJECTED.
    OCO_ORDER_TYPE_REJECTED = (-1158, BAD_REQUEST);
    /// An OCO order's `icebergQty` without GTC: Binance's
    /// OCO_ICEBERGQTY_TIMEINFORCE.
    OCO_ICEBERGQTY_TIMEINFORCE = (-1160, BAD_REQUEST);
    /// A limit order above a buy OCO: Binance's BUY_OCO_LIMIT_MUST_BE_BELOW.
    BUY_OCO_LIMIT_MUST_BE_BELOW = (-1165, BAD_REQUEST);
    /// A limit order below a sell OCO: Binance's
    /// SELL_OCO_LIMIT_MUST_BE_ABOVE.
    SELL_OCO_LIMIT_MUST_BE_ABOVE = (-1166, BAD_REQUEST);
    /// An OCO of two limit orders: Binance's BOTH_OCO_ORDERS_CANNOT_BE_LIMIT.
    BOTH_OCO_ORDERS_CANNOT_BE_LIMIT = (-1168, BAD_REQUEST);
    /// A stop loss below a buy OCO: Binance's
    /// BUY_OCO_STOP_LOSS_MUST_BE_ABOVE.
    BUY_OCO_STOP_LOSS_MUST_BE_ABOVE = (-1196, BAD_REQUEST);
    /// A stop loss above a sell OCO: Binance's
    /// SELL_OCO_STOP_LOSS_MUST_BE_BELOW.
    SELL_OCO_STOP_LOSS_MUST_BE_BELOW = (-1197, BAD_REQUEST);
    /// A take profit above a buy OCO: Binance's
    /// BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW.
    BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW = (-1198, BAD_REQUEST);
    /// A take profit below a sell OCO: Binance's
    /// SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE.
    SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE = (-1199, BAD_REQUEST);
    /// Two parameters that cannot be sent together, or neither of a
    /// required pair: Binance's OPTIONAL_PARAMS_BAD_COMBO.
    BAD_PARAM_COMBINATION = (-1128, BAD_REQUEST);
    /// The order fails one of the pair's filters; the message names it
    /// (`Filter failure: LOT_SIZE`).
    FILTER_FAILURE = (-1013, BAD_REQUEST);
    /// The body is not valid JSON of the expected shape.
    MALFORMED_JSON = (-1105, BAD_REQUEST);
    /// More decimals than the pair allows.
    TOO_MANY_DECIMALS = (-1111, BAD_REQUEST);
    /// A number is zero, negative or too large.
    BAD_NUMBER = (-1112, BAD_REQUEST);
    /// An unknown value for an enumerated field (side, type, time in force...).
    BAD_ENUM = (-1116, BAD_REQUEST);
    /// The symbol is not traded here.
    BAD_SYMBOL = (-1121, BAD_REQUEST);
    /// A symbol status that is not one: Binance's INVALID_SYMBOLSTATUS.
    INVALID_SYMBOL_STATUS = (-1122, BAD_REQUEST);
    /// The request body is larger than allowed.
    BODY_TOO_LARGE = (-1131, PAYLOAD_TOO_LARGE);
    /// The body is in a media type the route does not read: `/api/v3` takes
    /// forms, `/admin/v1` JSON.
    BAD_CONTENT_TYPE = (-1132, UNSUPPORTED_MEDIA_TYPE);
    /// A listen key that does not exist (never made, expired or closed),
    /// or is not the caller's.
    INVALID_LISTEN_KEY = (-1125, BAD_REQUEST);
    /// More streams named in a stream path than a connection may hold, or
    /// more WebSocket API subscriptions than a connection may start.
    TOO_MANY_SUBSCRIPTIONS = (-1191, BAD_REQUEST);
    /// The risk stage refused a new order or an amend: Binance's
    /// NEW_ORDER_REJECTED, whose message says why (for a lack of funds:
    /// "Account has insufficient balance for requested action.").
    ORDER_REFUSED = (-2010, BAD_REQUEST);
    /// A cancel the book refused: no such open order among the caller's.
    CANCEL_REJECTED = (-2011, BAD_REQUEST);
    /// No such order (among the caller's own).
    NO_SUCH_ORDER = (-2013, BAD_REQUEST);
    /// The API key header is missing or malformed.
    BAD_API_KEY_FORMAT = (-2014, UNAUTHORIZED);
    /// The API key does not exist.
    UNKNOWN_API_KEY = (-2015, UNAUTHORIZED);
}

impl ApiError {
    /// The same error answered with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// An error with one of the gateway's codes.
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        ApiError {
            status: status_of(code),
            code,
            msg: msg.into(),
            retry_after: None,
        }
    }

    /// A 429 or 503 that tells the client when to come back.
    pub fn retry(code: i32, msg: impl Into<String>, after_secs: u32) -> Self {
        ApiError {
            retry_after: Some(after_secs),
            ..ApiError::new(code, msg)
        }
    }

    /// The engine refused a new order or an amend: a pair's rule is
    /// Binance's `-1013 Filter failure: NAME`, any other refusal
    /// `-2010` with the engine's reason.
    pub fn rejected(reject: RejectCode) -> Self {
        ApiError::rejected_order(reject, false)
    }

    /// [`ApiError::rejected`] for an order of the given kind: a market
    /// order's size is checked by `MARKET_LOT_SIZE`.
    pub fn rejected_order(reject: RejectCode, market: bool) -> Self {
        use RejectCode as R;
        let refused = |msg: &str| ApiError::new(code::ORDER_REFUSED, msg);
        let filter = match reject {
            R::PriceOffTick | R::PriceZero | R::PriceAboveMax => "PRICE_FILTER",
            R::InvalidTrigger => "TRAILING_DELTA",
            R::WouldTriggerImmediately => return refused("Order would trigger immediately."),
            R::PairHalted | R::PairBreak => return refused("Market is closed."),
            R::IcebergNotAllowed | R::InvalidOrderList | R::InvalidGoodTill => {
                return refused("Unsupported order combination");
            }
            R::DuplicateOrderListId => return refused("Duplicate order sent."),
            R::UnknownOrderList => {
                return ApiError::new(code::CANCEL_REJECTED, "Unknown order list sent.");
            }
            R::QtyOffLot | R::QtyBelowMin | R::QtyAboveMax if market => "MARKET_LOT_SIZE",
            R::QtyOffLot | R::QtyBelowMin | R::QtyAboveMax => "LOT_SIZE",
            R::NotionalBelowMin | R::NotionalAboveMax => "NOTIONAL",
            R::BookFull => "MAX_NUM_ORDERS",
            R::UnknownOrder | R::NotOrderOwner => {
                return ApiError::new(code::CANCEL_REJECTED, "Unknown order sent.");
            }
            R::DuplicateOrderId | R::DuplicateClientOrderId => {
                return ApiError::new(code::ORDER_REFUSED, "Duplicate order sent.");
            }
            R::PostOnlyWouldCross => {
                return ApiError::new(
                    code::ORDER_REFUSED,
                    "Order would immediately match and take.",
                );
            }
            other => return ApiError::new(code::ORDER_REFUSED, other.message()),
        };
        ApiError::new(code::FILTER_FAILURE, format!("Filter failure: {filter}"))
    }

    /// The engine refused a cancel: Binance's `-2011 Unknown order sent.`
    /// for an order that is not open (or not the caller's: the two must
    /// look the same).
    pub fn cancel_rejected(reject: RejectCode) -> Self {
        match reject {
            RejectCode::UnknownOrder | RejectCode::NotOrderOwner => {
                ApiError::new(code::CANCEL_REJECTED, "Unknown order sent.")
            }
            RejectCode::UnknownOrderList => {
                ApiError::new(code::CANCEL_REJECTED, "Unknown order list sent.")
            }
            RejectCode::PairHalted | RejectCode::PairBreak => {
                ApiError::new(code::CANCEL_REJECTED, "Market is closed.")
            }
            other => ApiError::new(code::CANCEL_REJECTED, other.message()),
        }
    }

    /// The risk stage refused the command; nothing reached the pair's log.
    pub fn refused(risk: RiskCode) -> Self {
        let msg = match risk {
            // Not yours and does not exist must look the same.
            RiskCode::UnknownOrder | RiskCode::NotOwner => {
                return ApiError::cancel_rejected(RejectCode::UnknownOrder);
            }
            RiskCode::InsufficientBalance => {
                "Account has insufficient balance for requested action."
            }
            RiskCode::NotAmendable => "Only limit orders can be amended.",
            RiskCode::AmendBelowFilled => "The new quantity is below what has already filled.",
            RiskCode::UnsupportedOrder | RiskCode::BudgetRequired => {
                "This order type is not supported for this side."
            }
            RiskCode::Overflow => "The order's value is too large.",
            RiskCode::ZeroAmount
            | RiskCode::UnknownAsset
            | RiskCode::UnknownPair
            | RiskCode::DuplicateOrder
            | RiskCode::BadFees => "The order was refused.",
        };
        ApiError::new(code::ORDER_REFUSED, msg)
    }

    /// A decimal field that does not parse at the pair's scale.
    pub fn decimal(field: &str, e: DecimalError) -> Self {
        let code = match e {
            DecimalError::TooManyDecimals { .. } => code::TOO_MANY_DECIMALS,
            DecimalError::Empty => code::MISSING_PARAM,
            DecimalError::Invalid => code::ILLEGAL_CHARS,
            DecimalError::Negative | DecimalError::Zero | DecimalError::Overflow => {
                code::BAD_NUMBER
            }
        };
        ApiError::new(code, format!("{field}: {e}"))
    }

    /// A store failure: logged, and reported without its details.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiError::new(code::UNKNOWN, "Internal error; try again.")
    }
}

/// The code for an error answer that carries no `{code,msg}` body yet: one
/// the framework produced (a 405, an extractor's rejection).
fn code_for_status(status: StatusCode) -> i32 {
    match status {
        StatusCode::NOT_FOUND => code::NO_SUCH_ENDPOINT,
        StatusCode::METHOD_NOT_ALLOWED => code::UNSUPPORTED_OPERATION,
        StatusCode::REQUEST_TIMEOUT => code::REQUEST_TIMEOUT,
        StatusCode::PAYLOAD_TOO_LARGE => code::BODY_TOO_LARGE,
        StatusCode::URI_TOO_LONG => code::URI_TOO_LONG,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => code::BAD_CONTENT_TYPE,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => code::HEADERS_TOO_LARGE,
        StatusCode::TOO_MANY_REQUESTS => code::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE => code::OVERLOADED,
        s if s.is_server_error() => code::UNKNOWN,
        _ => code::BAD_HTTP_REQUEST,
    }
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::rest::is_json_media_type)
}

/// A handler that panics answers 500 / -1000 like any internal error,
/// instead of dropping the connection with no answer at all.
pub(crate) async fn catch_panics(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(_) => ApiError::internal("a request handler panicked").into_response(),
    }
}

/// The outermost layer: every error answer leaves as `{code,msg}` JSON,
/// whoever produced it. Handlers answer with [`ApiError`]; this catches what
/// the framework answers by itself (405 with its `Allow` header, extractor
/// rejections in plain text), keeping status and headers, replacing only the
/// body. The framework's text becomes the message.
pub(crate) async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Framework error bodies are short texts; a cap keeps a surprise small.
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let msg = match text.trim() {
        "" => status.canonical_reason().unwrap_or("Error").to_string(),
        t => t.to_string(),
    };
    let fresh = ApiError::new(code_for_status(status), msg).with_status(status);
    let mut json = fresh.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *json.headers_mut() = std::mem::take(&mut parts.headers);
    json
}
