//! The operators' API under `/admin/v1/`: deposits and withdrawals through
//! the risk stage, a user's balances, and the live audit. Requests are
//! signed like trading requests, with an admin key in `X-ADMIN-KEY`,
//! checked against admin keys only.
//!
//! Movements are idempotent by their text reference (`ref`): the store
//! numbers each text once, and the risk stage answers a number it has seen
//! as a duplicate, so a retry is safe across restarts and gateways.

use std::sync::Arc;

use accounts::{AssetInfo, Balance, RiskCode};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use commandlog::{
    Accounts, AuditReport, Movement, MovementKind, MovementOutcome, SubmitError, asset_by_name,
};
use proto::UserId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{ADMIN_KEY_HEADER, Operator};
use crate::errors::{ApiError, code};
use crate::money::decimal;
use crate::rest::account::{accounts_disabled, balances};
use crate::rest::{body_bytes, json_body, query, rate_limit};
use crate::{Gateway, now_ns};

type App = State<Arc<Gateway>>;
type ApiResult = Result<Response, ApiError>;

/// Longest movement reference, in bytes.
pub(crate) const MAX_REFERENCE_LEN: usize = 64;

pub(crate) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/v1/deposit", post(deposit))
        .route("/admin/v1/withdraw", post(withdraw))
        .route("/admin/v1/balances", get(user_balances))
        .route("/admin/v1/audit", get(audit))
}

/// Authenticates and rate-limits an admin request.
async fn operator(
    gw: &Gateway,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Operator, ApiError> {
    let key = headers.get(ADMIN_KEY_HEADER).and_then(|v| v.to_str().ok());
    let op = gw
        .admin_keys
        .verify_admin(key, query.unwrap_or(""), body, now_ns() / 1_000_000)
        .await?;
    rate_limit(gw, &op.admin_key)?;
    Ok(op)
}

/// The body of `POST /admin/v1/deposit` and `/withdraw`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MovementRequest {
    /// The user's name (as `exchange keys create --user` gave it).
    user: String,
    /// The asset's name, e.g. `EUR`.
    asset: String,
    /// A positive decimal at most at the asset's scale.
    amount: String,
    /// The operator's reference: the same text is the same movement.
    #[serde(rename = "ref")]
    reference: String,
}

/// A movement's reference, checked: 1 to [`MAX_REFERENCE_LEN`] printable
/// ASCII characters.
fn check_reference(r: &str) -> Result<(), ApiError> {
    if r.is_empty() {
        return Err(ApiError::new(
            code::MISSING_PARAM,
            "Mandatory parameter 'ref' was empty.",
        ));
    }
    if r.len() > MAX_REFERENCE_LEN || !r.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            code::ILLEGAL_CHARS,
            format!("ref must be 1 to {MAX_REFERENCE_LEN} printable ASCII characters."),
        ));
    }
    Ok(())
}

/// The asset named `name` and its table entry.
fn asset<'a>(
    assets: &'a [AssetInfo],
    name: &str,
) -> Result<(accounts::AssetId, &'a AssetInfo), ApiError> {
    asset_by_name(assets, name)
        .and_then(|id| assets.get(usize::from(id.0)).map(|info| (id, info)))
        .ok_or_else(|| ApiError::new(code::UNKNOWN_ASSET, format!("Unknown asset {name:?}.")))
}

/// A positive amount at `info`'s scale.
fn amount(text: &str, info: &AssetInfo) -> Result<u128, ApiError> {
    let v = proto::parse_amount(text, info.scale).map_err(|e| ApiError::decimal("amount", e))?;
    if v == 0 {
        return Err(ApiError::new(
            code::BAD_NUMBER,
            "amount: must be greater than zero.",
        ));
    }
    Ok(v)
}

async fn user_id(gw: &Gateway, name: &str) -> Result<UserId, ApiError> {
    gw.store
        .user_by_name(name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(code::UNKNOWN_USER, format!("Unknown user {name:?}.")))
}

/// What the risk stage's refusal of a movement means to the operator.
fn movement_refused(risk: RiskCode) -> ApiError {
    match risk {
        RiskCode::ZeroAmount => {
            ApiError::new(code::BAD_NUMBER, "amount: must be greater than zero.")
        }
        RiskCode::UnknownAsset => ApiError::new(code::UNKNOWN_ASSET, "Unknown asset."),
        RiskCode::Overflow => {
            ApiError::new(code::BAD_NUMBER, "amount: the balance would overflow.")
        }
        other => ApiError::refused(other),
    }
}

fn port_error(gw: &Gateway, e: SubmitError) -> ApiError {
    match e {
        SubmitError::Refused(risk) => movement_refused(risk),
        SubmitError::ShuttingDown => ApiError::retry(
            code::OVERLOADED,
            "The exchange is shutting down.",
            gw.config.retry_after_secs,
        ),
        SubmitError::UnknownPair | SubmitError::Halted | SubmitError::Store(_) => {
            ApiError::internal(e)
        }
    }
}

async fn deposit(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    movement(&gw, MovementKind::Deposit, &headers, &uri, body).await
}

async fn withdraw(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    movement(&gw, MovementKind::Withdraw, &headers, &uri, body).await
}

/// Checks, numbers and journals one movement; answers with the balance
/// after it, or `duplicate` for a reference used before.
async fn movement(
    gw: &Gateway,
    kind: MovementKind,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body_bytes(body)?;
    let op = operator(gw, headers, uri.query(), &body).await?;
    let accounts = gw.log.accounts().ok_or_else(accounts_disabled)?;
    let r: MovementRequest = json_body(headers, &body)?;
    check_reference(&r.reference)?;
    let (asset_id, info) = asset(accounts.assets(), &r.asset)?;
    let amount = amount(&r.amount, info)?;
    let user = user_id(gw, &r.user).await?;
    let reference = gw
        .store
        .movement_reference(&r.reference)
        .await
        .map_err(ApiError::internal)?;
    let outcome = accounts
        .move_funds(Movement {
            kind,
            user,
            asset: asset_id,
            amount,
            reference: accounts::Reference(reference),
        })
        .await
        .map_err(|e| port_error(gw, e))?;
    tracing::info!(operator = %op.name, ?kind, user = %r.user, asset = %r.asset, amount = %r.amount, reference = %r.reference, ?outcome, "movement");
    let (balance, duplicate) = match outcome {
        MovementOutcome::Applied(b) => (b, false),
        MovementOutcome::Duplicate => (current(gw, user, asset_id), true),
        MovementOutcome::Refused(risk) => return Err(movement_refused(risk)),
    };
    Ok(Json(json!({
        "user": r.user,
        "uid": user.0,
        "asset": info.name,
        "free": decimal(balance.free, info.scale),
        "locked": decimal(balance.locked, info.scale),
        "ref": r.reference,
        "duplicate": duplicate,
    }))
    .into_response())
}

/// `user`'s balance of `asset` as the gateway's view last saw it.
fn current(gw: &Gateway, user: UserId, asset: accounts::AssetId) -> Balance {
    gw.market
        .account(user)
        .balances
        .get(usize::from(asset.0))
        .map(|(_, b)| *b)
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BalancesQuery {
    user: String,
    #[serde(default)]
    omit_zero_balances: bool,
    #[serde(rename = "timestamp")]
    _timestamp: Option<String>,
    #[serde(rename = "recvWindow")]
    _recv_window: Option<String>,
    #[serde(rename = "signature")]
    _signature: Option<String>,
}

async fn user_balances(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    operator(&gw, &headers, uri.query(), b"").await?;
    gw.log.accounts().ok_or_else(accounts_disabled)?;
    let q: BalancesQuery = query(uri.query())?;
    let user = user_id(&gw, &q.user).await?;
    let snapshot = gw.market.account(user);
    Ok(Json(json!({
        "user": q.user,
        "uid": user.0,
        "updateTime": snapshot.update_time,
        "balances": balances(&snapshot, q.omit_zero_balances),
    }))
    .into_response())
}

/// The report as JSON: amounts at each asset's scale.
fn report_json(report: &AuditReport, accounts: &dyn Accounts) -> Value {
    let scale = |name: &str| {
        asset_by_name(accounts.assets(), name)
            .and_then(|id| accounts.assets().get(usize::from(id.0)))
            .map_or(0, |a| a.scale)
    };
    let assets: Vec<Value> = report
        .assets
        .iter()
        .map(|a| {
            let s = scale(&a.asset);
            json!({
                "asset": a.asset,
                "held": decimal(a.held, s),
                "expected": decimal(a.expected, s),
                "fees": decimal(a.fees, s),
            })
        })
        .collect();
    json!({
        "passed": report.failures.is_empty(),
        "assets": assets,
        "openHolds": report.open_holds,
        "failures": report.failures,
    })
}

async fn audit(State(gw): App, headers: HeaderMap, uri: axum::http::Uri) -> ApiResult {
    let op = operator(&gw, &headers, uri.query(), b"").await?;
    let accounts = gw.log.accounts().ok_or_else(accounts_disabled)?;
    let report = accounts.audit().await.map_err(|e| port_error(&gw, e))?;
    let mut body = report_json(&report, accounts);
    if report.failures.is_empty() {
        tracing::info!(operator = %op.name, "audit passed");
        return Ok(Json(body).into_response());
    }
    tracing::error!(operator = %op.name, failures = ?report.failures, "audit failed");
    body["code"] = json!(code::AUDIT_FAILED);
    body["msg"] = json!("The audit found a failure; see failures.");
    Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> Vec<AssetInfo> {
        vec![
            AssetInfo {
                name: "BTC".into(),
                scale: 8,
            },
            AssetInfo {
                name: "EUR".into(),
                scale: 10,
            },
        ]
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T, ApiError>) -> i32 {
        r.expect_err("refused").code
    }

    /// Every class of bad movement input has its own stable code.
    #[test]
    fn bad_movement_inputs_have_their_codes() {
        let a = assets();
        let eur = &a[1];
        assert_eq!(amount("1000", eur).unwrap(), 10_000_000_000_000);
        assert_eq!(amount("0.0000000001", eur).unwrap(), 1);
        assert_eq!(code_of(amount("0", eur)), code::BAD_NUMBER);
        assert_eq!(code_of(amount("0.0000", eur)), code::BAD_NUMBER);
        assert_eq!(code_of(amount("-5", eur)), code::BAD_NUMBER);
        assert_eq!(
            code_of(amount("0.00000000001", eur)),
            code::TOO_MANY_DECIMALS
        );
        assert_eq!(code_of(amount("1e3", eur)), code::ILLEGAL_CHARS);
        assert_eq!(code_of(amount("", eur)), code::MISSING_PARAM);
        // Balances count in u128: 10^33 units fit, 10^40 do not.
        assert!(amount("99999999999999999999999", eur).is_ok());
        assert_eq!(code_of(amount(&"9".repeat(30), eur)), code::BAD_NUMBER);
        assert_eq!(asset(&a, "EUR").unwrap().0, accounts::AssetId(1));
        assert_eq!(code_of(asset(&a, "DOGE")), code::UNKNOWN_ASSET);
        assert_eq!(code_of(asset(&a, "eur")), code::UNKNOWN_ASSET);
        assert!(check_reference("wire-2024-01").is_ok());
        assert_eq!(code_of(check_reference("")), code::MISSING_PARAM);
        assert_eq!(code_of(check_reference("a b")), code::ILLEGAL_CHARS);
        assert_eq!(
            code_of(check_reference(&"x".repeat(MAX_REFERENCE_LEN + 1))),
            code::ILLEGAL_CHARS
        );
        let refused = movement_refused(RiskCode::InsufficientBalance);
        assert_eq!(refused.code, code::ORDER_REFUSED);
        assert_eq!(
            refused.msg,
            "Account has insufficient balance for requested action."
        );
        assert_eq!(
            movement_refused(RiskCode::ZeroAmount).code,
            code::BAD_NUMBER
        );
        assert_eq!(
            movement_refused(RiskCode::UnknownAsset).code,
            code::UNKNOWN_ASSET
        );
        assert_eq!(movement_refused(RiskCode::Overflow).code, code::BAD_NUMBER);
    }
}
