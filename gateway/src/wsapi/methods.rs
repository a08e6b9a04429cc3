//! The WebSocket API's requests: their parsing, the REST route each
//! method maps to, signature checks, and the in-process call.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

use super::{Conn, PRE_AUTHENTICATED, envelope};
use crate::Gateway;
use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::now_ms;

/// A method's REST twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    /// TRADE or USER_DATA: needs a signature or a logged-on session.
    pub(super) signed: bool,
}

/// The REST route serving `method` (Binance's WebSocket API name), or
/// `None` for a method that has none.
pub(super) fn route(method: &str) -> Option<Route> {
    let public = |method, path| Route {
        method,
        path,
        signed: false,
    };
    let signed = |method, path| Route {
        method,
        path,
        signed: true,
    };
    Some(match method {
        "ping" => public("GET", "/api/v3/ping"),
        "time" => public("GET", "/api/v3/time"),
        "exchangeInfo" => public("GET", "/api/v3/exchangeInfo"),
        "depth" => public("GET", "/api/v3/depth"),
        "trades.recent" => public("GET", "/api/v3/trades"),
        "trades.historical" => public("GET", "/api/v3/historicalTrades"),
        "trades.aggregate" => public("GET", "/api/v3/aggTrades"),
        "klines" => public("GET", "/api/v3/klines"),
        "uiKlines" => public("GET", "/api/v3/uiKlines"),
        "avgPrice" => public("GET", "/api/v3/avgPrice"),
        "ticker.24hr" => public("GET", "/api/v3/ticker/24hr"),
        "ticker" => public("GET", "/api/v3/ticker"),
        "ticker.price" => public("GET", "/api/v3/ticker/price"),
        "ticker.book" => public("GET", "/api/v3/ticker/bookTicker"),
        "order.place" => signed("POST", "/api/v3/order"),
        "order.test" => signed("POST", "/api/v3/order/test"),
        "order.status" => signed("GET", "/api/v3/order"),
        "order.cancel" => signed("DELETE", "/api/v3/order"),
        "order.cancelReplace" => signed("POST", "/api/v3/order/cancelReplace"),
        "order.amend.keepPriority" => signed("PUT", "/api/v3/order/amend/keepPriority"),
        "openOrders.status" => signed("GET", "/api/v3/openOrders"),
        "openOrders.cancelAll" => signed("DELETE", "/api/v3/openOrders"),
        "allOrders" => signed("GET", "/api/v3/allOrders"),
        "orderList.place.oco" => signed("POST", "/api/v3/orderList/oco"),
        "orderList.place.oto" => signed("POST", "/api/v3/orderList/oto"),
        "orderList.status" => signed("GET", "/api/v3/orderList"),
        "orderList.cancel" => signed("DELETE", "/api/v3/orderList"),
        "openOrderLists.status" => signed("GET", "/api/v3/openOrderList"),
        "allOrderLists" => signed("GET", "/api/v3/allOrderList"),
        "myTrades" => signed("GET", "/api/v3/myTrades"),
        "account.status" => signed("GET", "/api/v3/account"),
        "account.rateLimits.orders" => signed("GET", "/api/v3/rateLimit/order"),
        _ => return None,
    })
}

/// A request as the client sent it.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) id: Value,
    /// Without a `v3/` prefix.
    pub(super) method: String,
    pub(super) params: Params,
    /// Whether the answer carries `rateLimits`.
    pub(super) rate_limits: bool,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    id: Value,
    method: String,
    #[serde(default)]
    params: Value,
}

impl Request {
    /// Parses a text frame; a fault comes with the request's id when it
    /// could be read.
    pub(super) fn parse(text: &str, rate_limits: bool) -> Result<Request, (Value, ApiError)> {
        let frame: Frame = serde_json::from_str(text).map_err(|e| {
            let id = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(Value::Null);
            (
                id,
                ApiError::new(code::MALFORMED_JSON, format!("Malformed request: {e}.")),
            )
        })?;
        if !matches!(frame.id, Value::Null | Value::String(_) | Value::Number(_)) {
            return Err((
                Value::Null,
                ApiError::new(
                    code::MALFORMED_JSON,
                    "id must be a string, a number or null.",
                ),
            ));
        }
        let mut params = Params::from_json(frame.params).map_err(|e| (frame.id.clone(), e))?;
        let rate_limits = match params.0.remove("returnRateLimits").as_deref() {
            None => rate_limits,
            Some("true") => true,
            Some("false") => false,
            Some(_) => {
                let e = ApiError::new(code::ILLEGAL_CHARS, "returnRateLimits must be a boolean.");
                return Err((frame.id, e));
            }
        };
        let method = frame.method;
        let method = method
            .strip_prefix("v3/")
            .map_or(method.clone(), str::to_string);
        Ok(Request {
            id: frame.id,
            method,
            params,
            rate_limits,
        })
    }
}

/// A request's params, each value as the text it stands for: a string as
/// itself, a number or boolean as written in JSON, a list (`symbols`) as
/// compact JSON, as REST takes it. Sorted by name, as signatures sign them.
#[derive(Debug, Default, Clone)]
pub(super) struct Params(pub(super) BTreeMap<String, String>);

impl Params {
    fn from_json(v: Value) -> Result<Params, ApiError> {
        let map = match v {
            Value::Null => return Ok(Params::default()),
            Value::Object(map) => map,
            _ => {
                return Err(ApiError::new(
                    code::ILLEGAL_CHARS,
                    "params must be an object.",
                ));
            }
        };
        let text = |v: Value| match v {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        Ok(Params(
            map.into_iter()
                .filter_map(|(k, v)| Some((k, text(v)?)))
                .collect(),
        ))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Refuses a param not in `allowed`, as REST refuses one (-1104).
    pub(super) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(crate::rest::params::param_error(&format!(
                "unknown field `{k}`"
            ))),
        }
    }

    /// The signature payload: every param but `signature`, sorted by
    /// name, `name=value` joined by `&`, values as sent (Binance's rule);
    /// or, `encoded`, with values percent-encoded as python-binance's
    /// `urlencode` sends them.
    fn payload(&self, encoded: bool) -> String {
        let unsigned = self.0.iter().filter(|(k, _)| *k != "signature");
        if encoded {
            serde_urlencoded::to_string(unsigned.collect::<Vec<_>>()).unwrap_or_default()
        } else {
            let pairs: Vec<String> = unsigned.map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join("&")
        }
    }

    /// The query string for the REST twin: the params but the
    /// authentication ones, percent-encoded.
    fn query(&self) -> String {
        let kept: Vec<_> = self
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "apiKey" | "signature"))
            .collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// Checks a request signed by the WebSocket API's rule, with the key named
/// by its `apiKey`; `timestamp` and `recvWindow` are checked as REST
/// checks them.
pub(super) async fn verify_signed(gw: &Gateway, params: &Params) -> Result<Caller, ApiError> {
    let key = params
        .get("apiKey")
        .ok_or_else(|| crate::rest::params::missing("apiKey"))?;
    let signature = params
        .get("signature")
        .ok_or_else(|| crate::rest::params::missing("signature"))?;
    let verify = |payload: String| async move {
        // The signature first: a value holding `&signature=` cannot be
        // taken for it.
        let query = format!("signature={signature}&{payload}");
        gw.keys.verify(Some(key), &query, b"", now_ms()).await
    };
    let raw = params.payload(false);
    match verify(raw.clone()).await {
        Err(e) if e.code == code::BAD_SIGNATURE => {
            let encoded = params.payload(true);
            if encoded == raw {
                return Err(e);
            }
            verify(encoded).await
        }
        answer => answer,
    }
}

/// The caller of a signed request: by its own signature when it carries
/// `apiKey` or `signature` (Binance's ad hoc authorization, which overrides
/// the session's key), else the session's logon, whose key must still be
/// valid and whose request must still be fresh.
async fn authenticate(
    gw: &Gateway,
    params: &Params,
    logon: Option<Caller>,
) -> Result<Caller, ApiError> {
    let ad_hoc = params.get("apiKey").is_some() || params.get("signature").is_some();
    let Some(caller) = logon.filter(|_| !ad_hoc) else {
        return verify_signed(gw, params).await;
    };
    crate::auth::check_fresh(&params.payload(false), b"", now_ms())?;
    if gw.keys.is_revoked(&caller.api_key).await {
        return Err(ApiError::new(
            code::UNKNOWN_API_KEY,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    Ok(caller)
}

/// Serves a request by its REST twin and returns the answer's envelope.
pub(super) async fn serve(
    conn: &Conn,
    route: Route,
    req: &Request,
    logon: Option<Caller>,
) -> String {
    let method = Method::from_bytes(route.method.as_bytes()).unwrap_or(Method::GET);
    let query = req.params.query();
    let caller = if route.signed {
        match authenticate(&conn.gw, &req.params, logon).await {
            Ok(caller) => Some(caller),
            // Refused before the twin ran: its weight is charged all the
            // same, as REST charges a request that fails its signature.
            Err(e) => return refused(conn, route, &method, &query, req, &e),
        }
    } else {
        None
    };
    let resp = call(conn, route, method, &query, caller).await;
    envelope::from_response(&conn.gw, &req.id, resp, req.rate_limits).await
}

/// The envelope of a request refused before its REST twin ran.
fn refused(
    conn: &Conn,
    route: Route,
    method: &Method,
    query: &str,
    req: &Request,
    e: &ApiError,
) -> String {
    let weight = crate::rest::weights::weight(method, route.path, query).unwrap_or(1);
    match conn.gw.usage.charge_ip(conn.peer.ip(), weight, now_ms()) {
        Ok(used) => {
            let headers: HeaderMap = used.headers().into_iter().collect();
            let limits = envelope::rate_limits(&conn.gw, &headers, req.rate_limits);
            envelope::error(&req.id, e, &limits)
        }
        Err(limit) => envelope::limit_error(&conn.gw, &req.id, limit, req.rate_limits),
    }
}

/// Runs the REST twin in process, as a request from the connection's
/// client, with `caller` (when signed) already authenticated.
async fn call(
    conn: &Conn,
    route: Route,
    method: Method,
    query: &str,
    caller: Option<Caller>,
) -> Response {
    let uri = if query.is_empty() {
        route.path.to_string()
    } else {
        format!("{}?{query}", route.path)
    };
    let mut req = match axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
    {
        Ok(req) => req,
        Err(e) => {
            return ApiError::new(code::ILLEGAL_CHARS, format!("Unusable params: {e}."))
                .into_response();
        }
    };
    req.extensions_mut().insert(ConnectInfo(conn.peer));
    let answer = conn.app.clone().oneshot(req);
    let answer = match caller {
        Some(caller) => PRE_AUTHENTICATED.scope(caller, answer).await,
        None => answer.await,
    };
    match answer {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        Params::from_json(v).unwrap()
    }

    #[test]
    fn the_payload_is_binances_example() {
        // web-socket-api.md, "SIGNED request example (HMAC)".
        let p = params(serde_json::json!({
            "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01000000", "price": "52000.00", "newOrderRespType": "ACK",
            "recvWindow": 100, "timestamp": 1645423376532u64,
            "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "signature": "ignored"
        }));
        let payload = p.payload(false);
        assert_eq!(
            payload,
            "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
        );
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        assert_eq!(
            crate::sign(secret, payload.as_bytes()),
            "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
        );
    }

    #[test]
    fn values_become_rest_params() {
        let p = params(serde_json::json!({
            "symbols": ["BTCEUR", "ETHEUR"], "limit": 5, "flag": true, "gone": null,
            "apiKey": "k", "signature": "s", "note": "a b&c"
        }));
        assert_eq!(p.get("symbols"), Some("[\"BTCEUR\",\"ETHEUR\"]"));
        assert_eq!(p.get("gone"), None);
        assert_eq!(
            p.query(),
            "flag=true&limit=5&note=a+b%26c&symbols=%5B%22BTCEUR%22%2C%22ETHEUR%22%5D"
        );
        assert_eq!(
            p.payload(true),
            "apiKey=k&flag=true&limit=5&note=a+b%26c&symbols=%5B%22BTCEUR%22%2C%22ETHEUR%22%5D"
        );
        assert!(Params::from_json(serde_json::json!([1])).is_err());
    }

    #[test]
    fn requests_are_parsed_with_their_faults_coded() {
        let r = Request::parse(
            r#"{"id":7,"method":"v3/order.place","params":{"returnRateLimits":false}}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            (r.id, r.method.as_str(), r.rate_limits),
            (Value::from(7), "order.place", false)
        );
        let (id, e) = Request::parse(r#"{"id":"x","params":{}}"#, true).unwrap_err();
        assert_eq!((id, e.code), (Value::from("x"), code::MALFORMED_JSON));
        let (id, e) = Request::parse("{nope", true).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, code::MALFORMED_JSON));
        let (_, e) = Request::parse(r#"{"id":1,"method":"time","params":[1]}"#, true).unwrap_err();
        assert_eq!(e.code, code::ILLEGAL_CHARS);
        assert_eq!(
            route("order.cancel").map(|r| (r.method, r.signed)),
            Some(("DELETE", true))
        );
        assert_eq!(route("nope"), None);
    }
}
