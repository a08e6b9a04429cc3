//! Binance's "General endpoints": `ping`, `time` and `exchangeInfo`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::bodies::{ExchangeInfo, PairInfo};
use super::params::{self, not_required};
use super::{ApiResult, App, pairs_named};
use crate::Gateway;
use crate::errors::{ApiError, code};

pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v3/ping", get(ping))
        .route("/api/v3/time", get(time))
        .route("/api/v3/exchangeInfo", get(exchange_info))
}

/// Test connectivity.
#[utoipa::path(get, path = "/api/v3/ping", tag = "General",
    responses((status = 200, description = "Always `{}`.", body = super::openapi::EmptyObject)))]
async fn ping() -> Json<Value> {
    Json(json!({}))
}

/// The server's time.
#[utoipa::path(get, path = "/api/v3/time", tag = "General",
    responses((status = 200, description = "Its clock.", body = ServerTime)))]
async fn time() -> Json<Value> {
    Json(json!({"serverTime": crate::now_ms()}))
}

/// `time`'s answer.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the `json!` above
struct ServerTime {
    /// Unix milliseconds.
    server_time: u64,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct InfoQuery {
    /// One pair.
    symbol: Option<String>,
    /// A JSON array of names: `["BTCEUR","ETHEUR"]`.
    #[param(value_type = Option<super::openapi::SymbolList>, inline)]
    symbols: Option<String>,
    /// `SPOT`, or a JSON array of permissions; any list without `SPOT`
    /// selects no pair. Not with `symbol` or `symbols` (-1106).
    permissions: Option<String>,
    /// `false` leaves out each pair's `permissionSets`.
    show_permission_sets: Option<bool>,
    /// Only the pairs in this status (another value: -1122).
    #[param(value_type = Option<super::openapi::SymbolStatus>, inline)]
    symbol_status: Option<String>,
}

/// Whether `permissions` asks for spot (the only market here): `SPOT` or a
/// JSON list that holds it. Any other list selects no pair.
fn wants_spot(permissions: Option<&str>) -> bool {
    match permissions {
        None | Some("SPOT") => true,
        Some(list) => {
            serde_json::from_str::<Vec<String>>(list).is_ok_and(|l| l.iter().any(|p| p == "SPOT"))
        }
    }
}

/// The exchange's rules and its pairs.
#[utoipa::path(get, path = "/api/v3/exchangeInfo", tag = "General", params(InfoQuery),
    responses((status = 200, description = "Rate limits and pairs.", body = ExchangeInfo),
        super::openapi::ParamErrors))]
async fn exchange_info(State(gw): App, uri: Uri) -> ApiResult {
    let q: InfoQuery = params::parse(uri.query().unwrap_or(""), "")?;
    if q.permissions.is_some() && (q.symbol.is_some() || q.symbols.is_some()) {
        return Err(not_required("permissions"));
    }
    let status_filter = match q.symbol_status.as_deref() {
        None => None,
        Some(s) if proto::TradingStatus::from_name(s).is_some() => Some(s),
        Some(_) => {
            return Err(ApiError::new(
                code::INVALID_SYMBOL_STATUS,
                "Invalid symbolStatus.",
            ));
        }
    };
    let pairs = if wants_spot(q.permissions.as_deref()) {
        pairs_named(&gw, q.symbol.as_deref(), q.symbols.as_deref())?.0
    } else {
        Vec::new()
    };
    // Each pair's rules and status now: an operator's change shows at once.
    // A pair stopped on a fault shows as HALT, as before.
    let live: Vec<(proto::PairConfig, &'static str)> = pairs
        .into_iter()
        .map(|p| match gw.log.pair(p.symbol) {
            Some(s) if !s.is_halted() => {
                let (config, status) = s.rules();
                (config, status.as_str())
            }
            Some(s) => (s.config(), "HALT"),
            None => (p, "HALT"),
        })
        .collect();
    let symbols = live
        .iter()
        .map(|(p, status)| PairInfo::new(p, status, q.show_permission_sets.unwrap_or(true)))
        .filter(|info| status_filter.is_none_or(|s| info.status() == s))
        .collect();
    Ok(Json(ExchangeInfo {
        timezone: "UTC",
        server_time: crate::now_ms(),
        rate_limits: gw.rate_limits(),
        exchange_filters: [],
        symbols,
    })
    .into_response())
}
