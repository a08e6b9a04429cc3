//! The operators' API under `/admin/v1/`: deposits and withdrawals through
//! the risk stage, a user's balances, the live audit, and a pair's trading
//! status and rules (`pairs.rs`). Requests are
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
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};

use crate::Gateway;
use crate::auth::{ADMIN_KEY_HEADER, Operator};
use crate::errors::{ApiError, code};
use crate::money::decimal;
use crate::rest::account::{AssetBalance, accounts_disabled, balances};
use crate::rest::openapi::{ErrorBody, SignedErrors};
use crate::rest::{body_bytes, json_body, query, rate_limit};

pub(crate) mod listing;
pub(crate) mod pairs;

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
        .route("/admin/v1/pairs/status", post(pairs::set_status))
        .route("/admin/v1/pairs/rules", post(pairs::set_rules))
        .route("/admin/v1/pairs", post(listing::list_pair))
}

/// An admin POST whose whole input is its JSON body: the body within its
/// bounds, the operator it is signed by, and the body read as `T`.
async fn signed_json<T: serde::de::DeserializeOwned>(
    gw: &Gateway,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Operator, T), ApiError> {
    let body = body_bytes(body)?;
    let op = operator(gw, headers, uri.query(), &body).await?;
    Ok((op, json_body(headers, &body)?))
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
        .verify_admin(key, query.unwrap_or(""), body, crate::now_ms())
        .await?;
    rate_limit(gw, &op.admin_key)?;
    Ok(op)
}

/// The body of `POST /admin/v1/deposit` and `/withdraw`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MovementRequest {
    /// The user's name (as `exchange keys create --user` gave it).
    user: String,
    /// The asset's name, e.g. `EUR`.
    asset: String,
    /// A positive decimal at most at the asset's scale.
    amount: String,
    /// The operator's reference: the same text is the same movement.
    /// 1 to 64 printable ASCII characters.
    #[serde(rename = "ref")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    reference: String,
}

/// A movement's answer: the balance after it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `movement`
struct MovementAnswer {
    user: String,
    uid: u64,
    asset: String,
    free: String,
    locked: String,
    #[schema(rename = "ref")]
    reference: String,
    /// The reference was used before: nothing moved this time.
    duplicate: bool,
}

/// The operators' answers past a signed request's.
#[derive(Debug)]
struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        let mut out = SignedErrors::responses();
        let disabled = utoipa::openapi::response::ResponseBuilder::new()
            .description("Accounts are not enabled on this exchange (-1051).")
            .content(
                "application/json",
                utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name(
                    "Error",
                ))),
            );
        out.insert("501".into(), disabled.build().into());
        out
    }
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

/// Credits a user through the risk stage.
#[utoipa::path(post, path = "/admin/v1/deposit", tag = "Operators", request_body = inline(MovementRequest),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The balance after it.", body = MovementAnswer), AdminErrors,
        (status = 503, description = "The exchange is shutting down (-1008).", body = ErrorBody)))]
async fn deposit(
    State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    movement(&gw, MovementKind::Deposit, &headers, &uri, body).await
}

/// Debits a user's free balance through the risk stage.
#[utoipa::path(post, path = "/admin/v1/withdraw", tag = "Operators", request_body = inline(MovementRequest),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The balance after it.", body = MovementAnswer), AdminErrors,
        (status = 503, description = "The exchange is shutting down (-1008).", body = ErrorBody)))]
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
    let assets = accounts.assets();
    let (asset_id, info) = asset(&assets, &r.asset)?;
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct BalancesQuery {
    /// The user's name.
    user: String,
    /// `true` leaves out the assets whose free and locked are both zero.
    #[serde(default)]
    omit_zero_balances: bool,
    // Read by the signature check (the document's security schemes).
    #[serde(rename = "timestamp")]
    #[param(ignore)]
    _timestamp: Option<String>,
    #[serde(rename = "recvWindow")]
    #[param(ignore)]
    _recv_window: Option<String>,
    #[serde(rename = "signature")]
    #[param(ignore)]
    _signature: Option<String>,
}

/// `balances`' answer.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `user_balances`
struct UserBalances {
    user: String,
    uid: u64,
    /// Unix milliseconds.
    update_time: u64,
    balances: Vec<AssetBalance>,
}

/// A user's balances, as the gateway's view last saw them.
#[utoipa::path(get, path = "/admin/v1/balances", tag = "Operators", params(BalancesQuery),
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The balances.", body = UserBalances), AdminErrors))]
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
    let assets = accounts.assets();
    let scale = |name: &str| {
        asset_by_name(&assets, name)
            .and_then(|id| assets.get(usize::from(id.0)))
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

/// The audit's report, as the `json!` of `report_json` builds it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `report_json`
struct AuditAnswer {
    passed: bool,
    #[schema(inline)]
    assets: Vec<AuditAsset>,
    open_holds: u64,
    failures: Vec<String>,
    /// -1054, when the audit failed.
    code: Option<i32>,
    /// When the audit failed.
    msg: Option<String>,
}

/// One asset's totals.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` of `report_json`
struct AuditAsset {
    asset: String,
    /// What the balances hold.
    held: String,
    /// Deposits less withdrawals.
    expected: String,
    /// Fees collected.
    fees: String,
}

/// The audit's failed report, or a store failure's error.
#[derive(Debug)]
struct AuditFailure;

impl PartialSchema for AuditFailure {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::rest::openapi::any_of([AuditAnswer::schema(), ErrorBody::schema()])
    }
}

impl ToSchema for AuditFailure {}

/// Audits every account: balances against movements and fees.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "Operators",
    security(("AdminKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The audit passed.", body = AuditAnswer), AdminErrors,
        (status = 500, description = "The audit found a failure (-1054; the report says which), or the store failed (-1000).", body = AuditFailure),
        (status = 503, description = "The exchange is shutting down (-1008).", body = ErrorBody)))]
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
