//! Binance's request weights: what each endpoint costs against an IP's
//! `REQUEST_WEIGHT` per minute, charged before the handler runs and
//! reported in `X-MBX-USED-WEIGHT-1M` on every answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// The weight of a request, as Binance's documentation gives it for the
/// endpoint and its parameters; `None` for what is not `/api/v3`.
pub(crate) fn weight(method: &Method, path: &str, query: &str) -> Option<u32> {
    let has = |name: &str| {
        query.split('&').any(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| k == name && !v.is_empty())
        })
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    let endpoint = path.strip_prefix("/api/v3/")?;
    let w = match (method.as_str(), endpoint) {
        (_, "ping" | "time") => 1,
        (_, "exchangeInfo") => 20,
        (_, "depth") => depth_weight(param("limit").and_then(|l| l.parse().ok()).unwrap_or(100)),
        (_, "trades" | "historicalTrades") => 25,
        (_, "aggTrades" | "klines" | "uiKlines" | "avgPrice") => 2,
        (_, "ticker/24hr") => list_weight(query, 2, 40, 80),
        (_, "ticker/price" | "ticker/bookTicker") => list_weight(query, 2, 4, 4),
        (_, "ticker") => (4 * symbols_named(query)).min(200),
        ("GET", "order") => 4,
        ("GET", "openOrders") if has("symbol") => 6,
        ("GET", "openOrders") => 80,
        ("GET", "allOrders" | "account" | "allOrderList") => 20,
        ("GET", "orderList") => 4,
        ("GET", "openOrderList") => 6,
        ("GET", "myTrades") if has("orderId") => 5,
        ("GET", "myTrades") => 20,
        (_, "order/amend/keepPriority") => 4,
        (_, "rateLimit/order") => 40,
        _ => 1,
    };
    Some(w)
}

/// `depth`'s weight by `limit`.
fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1_000 => 50,
        _ => 250,
    }
}

/// How many pairs a ticker request names: one, a JSON list of `symbols`,
/// or (none named) all, counted as 1 here and priced by [`list_weight`].
fn symbols_named(query: &str) -> u32 {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbols="))
        .map_or(1, |list| {
            let commas = list.matches("%2C").count() + list.matches(',').count();
            u32::try_from(commas + 1).unwrap_or(u32::MAX)
        })
}

/// A ticker's weight: `one` for a symbol, by list length for `symbols`
/// (Binance's steps at 20 and 100), `all` for every pair.
fn list_weight(query: &str, one: u32, list: u32, all: u32) -> u32 {
    let named = |p: &str| query.split('&').any(|kv| kv.starts_with(p));
    if named("symbol=") {
        one
    } else if named("symbols=") {
        match symbols_named(query) {
            0..=20 => one,
            21..=100 => list,
            _ => all,
        }
    } else {
        all
    }
}

/// The client's address: the TCP peer, or behind `hops` trusted proxies
/// the address `hops` entries from the right of `X-Forwarded-For` (each
/// proxy appends the address it saw, so entries further left are the
/// client's own word). A header too short or unparsable counts the peer.
pub(crate) fn client_ip(headers: &HeaderMap, peer: IpAddr, hops: u32) -> IpAddr {
    let Some(hops) = usize::try_from(hops).ok().filter(|h| *h > 0) else {
        return peer;
    };
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    entries
        .len()
        .checked_sub(hops)
        .and_then(|i| entries[i].trim().parse().ok())
        .unwrap_or(peer)
}

/// Charges the request's weight to its IP; past the limit answers 429 (or
/// 418 for an IP that kept going) without running the handler.
pub(crate) async fn charge(State(gw): App, req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or("");
    let Some(w) = weight(req.method(), req.uri().path(), query) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let ip = client_ip(req.headers(), peer, gw.config.forwarded_for_hops);
    match gw.usage.charge_ip(ip, w, crate::now_ms()) {
        Err(refused) => refused.into_response(),
        Ok(used) => {
            let mut resp = next.run(req).await;
            resp.headers_mut().extend(used.headers());
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_address_the_nearest_trusted_proxy_saw() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        assert_eq!(client_ip(&h, peer, 0), peer);
        assert_eq!(client_ip(&h, peer, 1), "2.2.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&h, peer, 2), "1.1.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&h, peer, 3), peer);
        h.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(&h, peer, 1), peer);
        assert_eq!(client_ip(&HeaderMap::new(), peer, 1), peer);
    }

    #[test]
    fn weights_follow_binances_table() {
        let w = |m: Method, p: &str, q: &str| weight(&m, p, q);
        assert_eq!(w(Method::GET, "/healthz", ""), None);
        assert_eq!(w(Method::GET, "/api/v3/depth", "symbol=A"), Some(5));
        assert_eq!(
            w(Method::GET, "/api/v3/depth", "symbol=A&limit=500"),
            Some(25)
        );
        assert_eq!(
            w(Method::GET, "/api/v3/depth", "symbol=A&limit=5000"),
            Some(250)
        );
        assert_eq!(w(Method::GET, "/api/v3/ticker/24hr", "symbol=A"), Some(2));
        assert_eq!(w(Method::GET, "/api/v3/ticker/24hr", ""), Some(80));
        assert_eq!(w(Method::GET, "/api/v3/openOrders", "symbol=A"), Some(6));
        assert_eq!(w(Method::GET, "/api/v3/openOrders", ""), Some(80));
        assert_eq!(w(Method::DELETE, "/api/v3/openOrders", ""), Some(1));
        assert_eq!(
            w(Method::GET, "/api/v3/myTrades", "symbol=A&orderId=1"),
            Some(5)
        );
        assert_eq!(w(Method::POST, "/api/v3/order", ""), Some(1));
        assert_eq!(w(Method::GET, "/api/v3/order", ""), Some(4));
        let three = "symbols=%5B%22A%22%2C%22B%22%2C%22C%22%5D";
        assert_eq!(w(Method::GET, "/api/v3/ticker", three), Some(12));
    }
}
