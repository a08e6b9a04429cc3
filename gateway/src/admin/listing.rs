//! Listing a new pair on a running exchange: `POST /admin/v1/pairs`, whose
//! body is the pair's table as the config file writes it (`[[pairs]]`, as
//! JSON), checked by the same code (`proto::PairSpec`). The command log
//! records the listing before the pair takes a command and starts its
//! book; this gateway then serves the pair (exchangeInfo, orders, streams,
//! the OpenAPI document's symbols), and every later start lists it again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use commandlog::{ListError, Listing};
use proto::{PairSpec, SpecError, TradingStatus};

use super::pairs::answer;
use super::signed_json;
use crate::Gateway;
use crate::errors::{ApiError, code};
use crate::rest::openapi::ErrorBody;

type App = State<Arc<Gateway>>;

/// Lists a pair: it trades at once, with an empty book.
#[utoipa::path(post, path = "/admin/v1/pairs", tag = "Operators",
    request_body(content = inline(PairSpec), description = "The pair's table as the config file's `[[pairs]]` writes it, as JSON."),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The pair's rules and status: TRADING.", body = Object), super::AdminErrors,
        (status = 409, description = "The pair is traded here already (-1056).", body = ErrorBody),
        (status = 501, description = "This exchange lists pairs only from its config file (-1057).", body = ErrorBody),
        (status = 503, description = "The exchange is shutting down (-1008).", body = ErrorBody)))]
pub(crate) async fn list_pair(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (op, spec): (_, PairSpec) = signed_json(&gw, &headers, &uri, body).await?;
    let config = spec.config().map_err(spec_error)?;
    let taken = gw
        .pairs
        .read()
        .map_err(ApiError::internal)?
        .name_taken(config.symbol);
    if taken {
        return Err(listed());
    }
    let listing = Listing {
        config,
        spec: serde_json::to_string(&spec).map_err(ApiError::internal)?,
    };
    let retry = |code, msg: &str| ApiError::retry(code, msg, gw.config.retry_after_secs);
    gw.log.list_pair(listing).await.map_err(|e| match e {
        ListError::Exists => listed(),
        ListError::Refused(why) => ApiError::new(
            code::INVALID_PAIR_CHANGE,
            format!("{why}. Nothing changed."),
        ),
        ListError::Unsupported => ApiError::new(code::LISTING_UNSUPPORTED, e.to_string()),
        ListError::ShuttingDown => retry(code::OVERLOADED, "The exchange is shutting down."),
        ListError::Store(_) => ApiError::internal(e),
    })?;
    // Requests reach the pair through the gateway's own table: only now.
    gw.add_pair(config);
    tracing::info!(operator = %op.name, pair = %config.symbol, "pair listed");
    Ok(answer(&config, TradingStatus::Trading))
}

fn listed() -> ApiError {
    ApiError::new(
        code::PAIR_LISTED,
        "The pair is listed already (or one with its name without the dash).",
    )
}

/// A table that does not read, by Binance's codes for the same faults in
/// a request's parameters.
fn spec_error(e: SpecError) -> ApiError {
    match e {
        SpecError::Symbol(..) => ApiError::new(code::ILLEGAL_CHARS, e.to_string()),
        SpecError::Decimal { field, error, .. } => ApiError::decimal(field, error),
        SpecError::DefaultStp(..) => ApiError::new(code::BAD_ENUM, e.to_string()),
        SpecError::Pair(_) | SpecError::Fees(_) => {
            ApiError::new(code::INVALID_PAIR_CHANGE, format!("{e}. Nothing changed."))
        }
    }
}
