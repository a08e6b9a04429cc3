//! API errors: an HTTP status, a stable numeric code and a message, sent as
//! `{"code": -1121, "msg": "Invalid symbol."}`. Codes follow Binance's where
//! one exists; the engine's reject reasons are sent as their own number,
//! negated (`-302` for a duplicate client order id), so every code is stable.

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
    /// Too many requests for this API key.
    TOO_MANY_REQUESTS = (-1003, TOO_MANY_REQUESTS);
    /// The service sheds load: too many commands in flight, or the pair lags.
    OVERLOADED = (-1008, SERVICE_UNAVAILABLE);
    /// The pair's engine stopped on a fault.
    PAIR_HALTED = (-1009, SERVICE_UNAVAILABLE);
    /// The request's timestamp is outside its receive window.
    STALE_TIMESTAMP = (-1021, UNAUTHORIZED);
    /// The signature does not match.
    BAD_SIGNATURE = (-1022, UNAUTHORIZED);
    /// Illegal characters or an unparsable value.
    ILLEGAL_CHARS = (-1100, BAD_REQUEST);
    /// A parameter is not allowed here, or is unknown.
    UNKNOWN_PARAM = (-1101, BAD_REQUEST);
    /// A mandatory parameter is missing or empty.
    MISSING_PARAM = (-1102, BAD_REQUEST);
    /// Two parameters that cannot be sent together, or neither of a required pair.
    BAD_PARAM_COMBINATION = (-1104, BAD_REQUEST);
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
    /// The request body is larger than allowed.
    BODY_TOO_LARGE = (-1131, PAYLOAD_TOO_LARGE);
    /// The body must be `application/json`.
    BAD_CONTENT_TYPE = (-1132, UNSUPPORTED_MEDIA_TYPE);
    /// No such order (among the caller's own).
    NO_SUCH_ORDER = (-2013, NOT_FOUND);
    /// The API key header is missing or malformed.
    BAD_API_KEY_FORMAT = (-2014, UNAUTHORIZED);
    /// The API key does not exist.
    UNKNOWN_API_KEY = (-2015, UNAUTHORIZED);
}

impl ApiError {
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

    /// The engine refused the command.
    pub fn rejected(reject: RejectCode) -> Self {
        // Naming another user's order would tell that it exists.
        if reject == RejectCode::NotOrderOwner {
            return ApiError::rejected(RejectCode::UnknownOrder);
        }
        let status = if reject == RejectCode::UnknownOrder {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError {
            status,
            code: -i32::from(reject.code()),
            msg: reject.message().to_string(),
            retry_after: None,
        }
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
