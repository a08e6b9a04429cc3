//! `/api/v3/userDataStream`: listen keys for user data streams, as
//! Binance's `user-data-stream.md` has them. `POST` makes one (or returns
//! the account's active one, extended), `PUT` keeps it alive, `DELETE`
//! closes it. A key lives `listen_key_ttl_secs` (Binance's 60 minutes)
//! past its last keepalive; it opens the user's stream at
//! `/ws/<listenKey>` or `/stream?streams=`.
//! Security type USER_STREAM: the API key header, no signature.

use axum::Json;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::ListenKey;
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, App, body_bytes, params, rate_limit};
use crate::errors::{ApiError, code};
use crate::now_ms;
use crate::{API_KEY_HEADER, Caller, Gateway};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListenKeyParams {
    /// The key `POST` answered.
    listen_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// `POST`'s answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListenKeyBody {
    listen_key: String,
}

/// The caller named by the API key header alone, and the request's
/// parameters.
async fn user_stream_request<T: serde::de::DeserializeOwned>(
    gw: &Gateway,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(Caller, T), ApiError> {
    let body = body_bytes(body)?;
    let form = params::form_body(headers, &body)?;
    let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let caller = gw.keys.holder(key).await?;
    rate_limit(gw, &caller.api_key)?;
    gw.demo.fund(gw.log.accounts(), caller.user).await;
    let params = params::parse(uri.query().unwrap_or(""), form)?;
    Ok((caller, params))
}

fn expiry(gw: &Gateway, now_ms: u64) -> u64 {
    now_ms.saturating_add(gw.config.listen_key_ttl_secs.saturating_mul(1_000))
}

/// `{}` when the store found the caller's key, -1125 when it did not.
fn found(done: Result<bool, store::StoreError>) -> ApiResult {
    if !done.map_err(ApiError::internal)? {
        return Err(ApiError::new(
            code::INVALID_LISTEN_KEY,
            "This listenKey does not exist.",
        ));
    }
    Ok(Json(json!({})).into_response())
}

/// Starts a user data stream: the account's listen key, valid for 60
/// minutes (an active one is returned again and extended).
#[utoipa::path(post, path = "/api/v3/userDataStream", tag = "User data stream",
    security(("ApiKey" = [])),
    responses((status = 200, description = "The listen key.", body = ListenKeyBody),
        super::openapi::SignedErrors))]
pub(super) async fn open(
    axum::extract::State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let (caller, NoParams {}) = user_stream_request(&gw, &headers, &uri, body).await?;
    let now = now_ms();
    let listen_key = gw
        .store
        .open_listen_key(caller.user, &caller.api_key, now, expiry(&gw, now))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(ListenKeyBody { listen_key }).into_response())
}

/// Keeps a listen key alive for another 60 minutes.
#[utoipa::path(put, path = "/api/v3/userDataStream", tag = "User data stream",
    params(ListenKeyParams), security(("ApiKey" = [])),
    responses((status = 200, description = "Extended: `{}`."),
        (status = 400, description = "No such active key of the caller's (-1125).", body = super::openapi::ErrorBody),
        super::openapi::SignedErrors))]
pub(super) async fn keep_alive(
    axum::extract::State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let (caller, p): (_, ListenKeyParams) = user_stream_request(&gw, &headers, &uri, body).await?;
    let now = now_ms();
    let expires_at = expiry(&gw, now);
    found(
        gw.store
            .keep_listen_key(caller.user, &p.listen_key, now, expires_at)
            .await,
    )
}

/// Closes a listen key: its streams end.
#[utoipa::path(delete, path = "/api/v3/userDataStream", tag = "User data stream",
    params(ListenKeyParams), security(("ApiKey" = [])),
    responses((status = 200, description = "Closed: `{}`."),
        (status = 400, description = "No such key of the caller's (-1125).", body = super::openapi::ErrorBody),
        super::openapi::SignedErrors))]
pub(super) async fn close(
    axum::extract::State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let (caller, p): (_, ListenKeyParams) = user_stream_request(&gw, &headers, &uri, body).await?;
    found(gw.store.close_listen_key(caller.user, &p.listen_key).await)
}

/// What `key` opens, while it is valid; `None` for a key that is not (or
/// no longer) one.
pub(crate) async fn listen_key_owner(
    gw: &Gateway,
    key: &str,
) -> Result<Option<ListenKey>, ApiError> {
    // Binance's keys are 64 characters; anything else is not one, and is
    // not worth a query.
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let found = gw.store.listen_key(key).await.map_err(ApiError::internal)?;
    Ok(found.filter(|k| k.expires_at > now_ms()))
}

/// Binance's `listenKeyExpired` event, sent once on each stream of a key
/// that expired; no event follows it. `E` is a string, as Binance's
/// example has it.
pub(crate) fn expired_event(key: &str, now_ms: u64) -> String {
    json!({"e": "listenKeyExpired", "E": now_ms.to_string(), "listenKey": key}).to_string()
}
