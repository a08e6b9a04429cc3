//! Answers in Binance's envelope: `{"id","status","result","rateLimits"}`
//! or `{"id","status","error":{"code","msg"},"rateLimits"}`.

use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Gateway;
use crate::errors::{ApiError, code};
use crate::now_ms;
use crate::usage::{self, LimitError, RateLimit};
use crate::ws::MAX_WRITE_BUFFER;

/// One entry of `rateLimits`: a limit and the caller's count in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct RateLimitCount {
    #[serde(flatten)]
    limit: RateLimit,
    count: u32,
}

/// The `rateLimits` of an answer whose usage headers are `headers`, in
/// Binance's order (orders first, then weight); empty when not asked for.
pub(super) fn rate_limits(gw: &Gateway, headers: &HeaderMap, wanted: bool) -> Vec<RateLimitCount> {
    if !wanted {
        return Vec::new();
    }
    counts(gw.rate_limits(), headers)
}

/// The limits that `headers` report a count for.
fn counts(limits: [RateLimit; 3], headers: &HeaderMap) -> Vec<RateLimitCount> {
    let [weight, orders_10s, orders_day] = limits;
    let count = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    [
        (orders_10s, usage::ORDER_COUNT_10S),
        (orders_day, usage::ORDER_COUNT_1D),
        (weight, usage::USED_WEIGHT_1M),
    ]
    .into_iter()
    .filter_map(|(limit, name)| {
        Some(RateLimitCount {
            limit,
            count: count(name)?,
        })
    })
    .collect()
}

/// A successful answer; `result` is JSON text.
pub(super) fn success(id: &Value, result: &str, limits: &[RateLimitCount]) -> String {
    let mut out = format!("{{\"id\":{id},\"status\":200,\"result\":{result}");
    push_limits(&mut out, limits);
    out.push('}');
    out
}

/// A refusal.
pub(super) fn error(id: &Value, e: &ApiError, limits: &[RateLimitCount]) -> String {
    let mut error = json!({"code": e.code, "msg": e.msg});
    // Binance's rate-limit refusals say when to come back.
    if let Some(secs) = e.retry_after {
        let now = now_ms();
        error["data"] = json!({"serverTime": now, "retryAfter": now + u64::from(secs) * 1_000});
    }
    let mut out = format!(
        "{{\"id\":{id},\"status\":{},\"error\":{error}",
        e.status.as_u16()
    );
    push_limits(&mut out, limits);
    out.push('}');
    out
}

fn push_limits(out: &mut String, limits: &[RateLimitCount]) {
    if !limits.is_empty() {
        out.push_str(",\"rateLimits\":");
        out.push_str(&serde_json::to_string(limits).unwrap_or_else(|_| "[]".into()));
    }
}

/// A refusal by a rate limit, with the usage it reports.
pub(super) fn limit_error(gw: &Gateway, id: &Value, e: LimitError, wanted: bool) -> String {
    let limits = rate_limits(gw, &e.headers(), wanted);
    error(id, &ApiError::from(e), &limits)
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i32,
    msg: String,
}

/// The envelope of a REST answer: its status, its body as `result` or
/// `error`, its usage headers as `rateLimits`.
pub(super) async fn from_response(
    gw: &Gateway,
    id: &Value,
    resp: Response,
    wanted: bool,
) -> String {
    let (parts, body) = resp.into_parts();
    let limits = rate_limits(gw, &parts.headers, wanted);
    let Ok(body) = axum::body::to_bytes(body, MAX_WRITE_BUFFER).await else {
        let e = ApiError::new(code::UNKNOWN, "The answer is too large for one message.");
        return error(id, &e, &limits);
    };
    if parts.status.is_success() {
        return match std::str::from_utf8(&body) {
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                success(id, text, &limits)
            }
            _ => error(
                id,
                &ApiError::internal("an answer that is not JSON"),
                &limits,
            ),
        };
    }
    let (code, msg) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => (b.code, b.msg),
        Err(_) => (code::UNKNOWN, String::from_utf8_lossy(&body).into_owned()),
    };
    let retry_after = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let e = ApiError {
        status: parts.status,
        code,
        msg,
        retry_after,
    };
    error(id, &e, &limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(count: u32) -> RateLimitCount {
        RateLimitCount {
            limit: usage::rate_limits(&crate::GatewayConfig::default())[0],
            count,
        }
    }

    #[test]
    fn envelopes_are_shaped_as_binances_examples() {
        // web-socket-api.md, "How to interpret rate limits".
        let ok = success(
            &json!("7069b743"),
            r#"{"serverTime":1656400526260}"#,
            &[weight(70)],
        );
        let want = json!({
            "id": "7069b743", "status": 200, "result": {"serverTime": 1656400526260u64},
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                "intervalNum": 1, "limit": 6000, "count": 70}]
        });
        assert_eq!(serde_json::from_str::<Value>(&ok).unwrap(), want);
        // Without rateLimits when not asked for ("returnRateLimits": false).
        let bare = success(&json!(2), "{}", &[]);
        assert_eq!(bare, r#"{"id":2,"status":200,"result":{}}"#);
        // "Example of failed response".
        let e = ApiError::new(
            code::ORDER_REFUSED,
            "Account has insufficient balance for requested action.",
        );
        let failed: Value = serde_json::from_str(&error(&Value::Null, &e, &[weight(322)])).unwrap();
        assert_eq!(failed["status"], 400);
        assert_eq!(failed["id"], Value::Null);
        assert_eq!(failed["error"], json!({"code": -2010, "msg": e.msg}));
        assert_eq!(failed["rateLimits"][0]["count"], 322);
        // A 429 says when to retry.
        let e = ApiError::retry(code::TOO_MANY_REQUESTS, "slow down", 3);
        let limited: Value = serde_json::from_str(&error(&json!(1), &e, &[])).unwrap();
        assert_eq!(limited["status"], 429);
        let data = &limited["error"]["data"];
        assert_eq!(
            data["retryAfter"].as_u64().unwrap() - data["serverTime"].as_u64().unwrap(),
            3_000
        );
    }

    #[test]
    fn usage_headers_become_rate_limits_in_binances_order() {
        let mut h = HeaderMap::new();
        h.insert(usage::USED_WEIGHT_1M, 321.into());
        h.insert(usage::ORDER_COUNT_10S, 12.into());
        h.insert(usage::ORDER_COUNT_1D, 4043.into());
        let limits = usage::rate_limits(&crate::GatewayConfig::default());
        let json = serde_json::to_value(counts(limits, &h)).unwrap();
        assert_eq!(json[0]["rateLimitType"], "ORDERS");
        assert_eq!(json[0]["interval"], "SECOND");
        assert_eq!(json[0]["intervalNum"], 10);
        assert_eq!(json[0]["count"], 12);
        assert_eq!(json[1]["interval"], "DAY");
        assert_eq!(json[1]["count"], 4043);
        assert_eq!(json[2]["rateLimitType"], "REQUEST_WEIGHT");
        assert_eq!(json[2]["count"], 321);
        // A public request reports its weight only.
        h.remove(usage::ORDER_COUNT_10S);
        h.remove(usage::ORDER_COUNT_1D);
        assert_eq!(counts(limits, &h).len(), 1);
    }
}
