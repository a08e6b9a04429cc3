//! `GET /api/v3/account`: the caller's balances in Binance's "Account
//! information" shape, from the view the gateway keeps of the risk stage's
//! updates.

use axum::Json;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, App, signed_request};
use crate::errors::{ApiError, code};
use crate::market::AccountSnapshot;
use crate::money::{decimal, rate_text};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct AccountQuery {
    /// `true` leaves out the assets whose free and locked are both zero.
    omit_zero_balances: Option<bool>,
}

/// Binance's answer, field names exactly; the rates are those of the
/// exchange's first pair (every account pays its pairs' rates).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountBody {
    maker_commission: u16,
    taker_commission: u16,
    buyer_commission: u16,
    seller_commission: u16,
    commission_rates: CommissionRates,
    can_trade: bool,
    can_withdraw: bool,
    can_deposit: bool,
    brokered: bool,
    require_self_trade_prevention: bool,
    prevent_sor: bool,
    update_time: u64,
    account_type: &'static str,
    balances: Vec<AssetBalance>,
    #[schema(value_type = Vec<String>)]
    permissions: [&'static str; 1],
    uid: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct CommissionRates {
    maker: String,
    taker: String,
    buyer: String,
    seller: String,
}

/// One asset's balance as decimal strings at the asset's scale.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetBalance {
    pub(crate) asset: String,
    pub(crate) free: String,
    pub(crate) locked: String,
}

/// The balances of `account`, all or only the non-zero ones.
pub(crate) fn balances(account: &AccountSnapshot, omit_zero: bool) -> Vec<AssetBalance> {
    account
        .balances
        .iter()
        .filter(|(_, b)| !omit_zero || b.free != 0 || b.locked != 0)
        .map(|(info, b)| AssetBalance {
            asset: info.name.clone(),
            free: decimal(b.free, info.scale),
            locked: decimal(b.locked, info.scale),
        })
        .collect()
}

impl AccountBody {
    /// `uid`'s answer at rates `(maker_bps, taker_bps)`.
    pub(crate) fn new(
        uid: u64,
        account: &AccountSnapshot,
        (maker, taker): (u16, u16),
        omit_zero: bool,
    ) -> Self {
        AccountBody {
            maker_commission: maker,
            taker_commission: taker,
            buyer_commission: 0,
            seller_commission: 0,
            commission_rates: CommissionRates {
                maker: rate_text(maker),
                taker: rate_text(taker),
                buyer: rate_text(0),
                seller: rate_text(0),
            },
            can_trade: true,
            can_withdraw: true,
            can_deposit: true,
            brokered: false,
            require_self_trade_prevention: false,
            prevent_sor: false,
            update_time: account.update_time,
            account_type: "SPOT",
            balances: balances(account, omit_zero),
            permissions: ["SPOT"],
            uid,
        }
    }
}

/// The caller's balances and commission rates.
#[utoipa::path(get, path = "/api/v3/account", tag = "Account", params(AccountQuery),
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "Account information.", body = AccountBody),
        super::openapi::SignedErrors,
        (status = 501, description = "Accounts are not enabled on this exchange (-1051).", body = super::openapi::ErrorBody)))]
pub(super) async fn account(
    axum::extract::State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let (caller, q): (_, AccountQuery) = signed_request(&gw, &headers, &uri, body).await?;
    if gw.log.accounts().is_none() {
        return Err(accounts_disabled());
    }
    let rates = gw
        .symbols()
        .first()
        .and_then(|p| gw.fees(*p))
        .map_or((0, 0), |f| (f.maker_bps, f.taker_bps));
    let snapshot = gw.market.account(caller.user);
    let body = AccountBody::new(
        caller.user.0,
        &snapshot,
        rates,
        q.omit_zero_balances.unwrap_or(false),
    );
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoParams {}

/// One entry of `rateLimit/order`, as [`order_count_entry`] builds it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` of `order_count_entry`
struct OrderCount {
    #[schema(inline)]
    rate_limit_type: crate::usage::RateLimitType,
    #[schema(inline)]
    interval: crate::usage::Interval,
    interval_num: u32,
    limit: u32,
    /// The caller's new orders in the current window.
    count: u32,
}

/// The caller's new orders in the current windows, against their limits.
#[utoipa::path(get, path = "/api/v3/rateLimit/order", tag = "Account",
    security(("ApiKey" = [], "Timestamp" = [], "Signature" = [])),
    responses((status = 200, description = "The 10-second and daily counts.", body = Vec<OrderCount>),
        super::openapi::SignedErrors))]
pub(super) async fn order_rate_limits(
    axum::extract::State(gw): App,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let (caller, NoParams {}) = signed_request(&gw, &headers, &uri, body).await?;
    let counts = gw.usage.order_counts(caller.user, crate::now_ms());
    let [_, ten_seconds, day] = gw.rate_limits();
    Ok(Json(vec![
        order_count_entry(ten_seconds, counts.ten_seconds),
        order_count_entry(day, counts.day),
    ])
    .into_response())
}

/// One entry of `rateLimit/order`: limit `l` and the caller's `count` in
/// its current window.
pub(super) fn order_count_entry(l: crate::usage::RateLimit, count: u32) -> serde_json::Value {
    let mut v = serde_json::to_value(l).unwrap_or_default();
    v["count"] = count.into();
    v
}

/// The answer of every accounts surface when the exchange runs without a
/// risk stage.
pub(crate) fn accounts_disabled() -> ApiError {
    ApiError::new(
        code::ACCOUNTS_DISABLED,
        "Accounts are not enabled on this exchange ([accounts] enabled = false).",
    )
}

#[cfg(test)]
mod tests {
    use accounts::{AssetInfo, Balance};

    use super::*;

    #[test]
    fn the_account_answer_has_binances_shape() {
        let snapshot = AccountSnapshot {
            balances: vec![
                (
                    AssetInfo {
                        name: "BTC".into(),
                        scale: 8,
                    },
                    Balance {
                        free: 150_000_000,
                        locked: 1,
                    },
                ),
                (
                    AssetInfo {
                        name: "EUR".into(),
                        scale: 10,
                    },
                    Balance::default(),
                ),
            ],
            update_time: 1_700_000_000_123,
        };
        let all = serde_json::to_string(&AccountBody::new(7, &snapshot, (5, 10), false)).unwrap();
        assert_eq!(
            all,
            r#"{"makerCommission":5,"takerCommission":10,"buyerCommission":0,"sellerCommission":0,"commissionRates":{"maker":"0.00050000","taker":"0.00100000","buyer":"0.00000000","seller":"0.00000000"},"canTrade":true,"canWithdraw":true,"canDeposit":true,"brokered":false,"requireSelfTradePrevention":false,"preventSor":false,"updateTime":1700000000123,"accountType":"SPOT","balances":[{"asset":"BTC","free":"1.50000000","locked":"0.00000001"},{"asset":"EUR","free":"0.0000000000","locked":"0.0000000000"}],"permissions":["SPOT"],"uid":7}"#
        );
        let some = serde_json::to_value(AccountBody::new(7, &snapshot, (5, 10), true)).unwrap();
        assert_eq!(
            some["balances"],
            serde_json::json!([{"asset": "BTC", "free": "1.50000000", "locked": "0.00000001"}])
        );
    }
}
