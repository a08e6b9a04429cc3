//! The request path from raw bytes to a [`Command`], without HTTP, keys or
//! a store: what the `POST`, `PUT` and `DELETE /api/v1/order` handlers do
//! before they submit, for the fuzz target `rest_request` (`fuzz/`) and for
//! the direct load target (`kafkaload`), which so refuses what the gateway
//! refuses.

use axum::http::{HeaderMap, HeaderValue, header};
use proto::{Command, CommandBody, OrderId, PairConfig, Symbol, UserId};

use super::{
    AmendRequest, NewOrderRequest, OrderQuery, amend_for, command, json_body, new_order_for,
    order_ref, query, resp_type,
};
use crate::auth::{Caller, signed_query};
use crate::errors::{ApiError, code};

/// Which handler a raw request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawRoute {
    /// `POST /api/v1/order`: a JSON body.
    NewOrder,
    /// `DELETE /api/v1/order`: everything in the query.
    Cancel,
    /// `PUT /api/v1/order`: a JSON body.
    Amend,
}

/// The command a request would submit, or the error it is answered with.
/// `query` is the raw query string (signature included, not checked: the
/// key's secret is the store's), `content_type` the header's value, `now_ms`
/// the server's clock. The order id is 1 and the user 1.
pub fn command_from_raw(
    pairs: &[PairConfig],
    route: RawRoute,
    query_string: &str,
    content_type: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<Command, ApiError> {
    signed_query(Some("fuzz"), query_string, now_ms)?;
    let caller = Caller {
        user: UserId(1),
        api_key: "fuzz".into(),
    };
    let pair = |s: &str| {
        Symbol::new(s)
            .ok()
            .and_then(|s| pairs.iter().find(|p| p.symbol == s))
            .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
    };
    match route {
        RawRoute::NewOrder => {
            let req: NewOrderRequest = json_body(&content_type_only(content_type)?, body)?;
            resp_type(req.new_order_resp_type.as_deref())?;
            let p = pair(&req.symbol)?;
            let order = new_order_for(p, &req, || OrderId(1))?;
            Ok(command(p.symbol, &caller, CommandBody::NewOrder(order)))
        }
        RawRoute::Cancel => {
            let q: OrderQuery = query(Some(query_string))?;
            let p = pair(&q.symbol)?;
            let target = order_ref(q.order_id, q.orig_client_order_id.as_deref())?;
            resp_type(q.new_order_resp_type.as_deref())?;
            Ok(command(p.symbol, &caller, CommandBody::Cancel { target }))
        }
        RawRoute::Amend => {
            let req: AmendRequest = json_body(&content_type_only(content_type)?, body)?;
            let p = pair(&req.symbol)?;
            resp_type(req.new_order_resp_type.as_deref())?;
            let amend = amend_for(p, &req)?;
            Ok(command(p.symbol, &caller, CommandBody::Amend(amend)))
        }
    }
}

/// Headers holding only `content_type`, as a handler's body parser reads them.
fn content_type_only(content_type: &str) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    let ct = HeaderValue::from_str(content_type)
        .map_err(|_| ApiError::new(code::BAD_CONTENT_TYPE, "Bad Content-Type."))?;
    headers.insert(header::CONTENT_TYPE, ct);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{OrderRef, Price, Qty};

    const NOW: u64 = 1_700_000_000_000;

    fn pairs() -> Vec<PairConfig> {
        vec![PairConfig {
            price_scale: 2,
            qty_scale: 4,
            ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
        }]
    }

    #[test]
    fn raw_requests_become_the_handlers_commands_or_their_errors() {
        let q = format!("timestamp={NOW}&signature=00");
        let body = br#"{"symbol":"BTC-EUR","side":"BUY","type":"LIMIT","quantity":"0.0100","price":"100.05"}"#;
        let cmd = command_from_raw(
            &pairs(),
            RawRoute::NewOrder,
            &q,
            "application/json",
            body,
            NOW,
        )
        .unwrap();
        let CommandBody::NewOrder(o) = cmd.body else {
            panic!("{cmd:?}");
        };
        assert_eq!(
            o.order_type,
            proto::OrderType::Limit {
                price: Price(10_005)
            }
        );
        assert_eq!(o.size, proto::OrderSize::Base(Qty(100)));
        let cancel = format!("symbol=BTC-EUR&orderId=7&{q}");
        let cmd = command_from_raw(&pairs(), RawRoute::Cancel, &cancel, "", b"", NOW).unwrap();
        let target = OrderRef::Id(OrderId(7));
        assert_eq!(cmd.body, CommandBody::Cancel { target });
        // Stale, unsigned, not JSON, unknown pair: the handlers' codes.
        let refused = |route, q: &str, ct: &str, body: &[u8]| {
            command_from_raw(&pairs(), route, q, ct, body, NOW)
                .unwrap_err()
                .code
        };
        let stale = format!("timestamp={}&signature=00", NOW - 60_000);
        assert_eq!(
            refused(RawRoute::NewOrder, &stale, "application/json", body),
            code::STALE_TIMESTAMP
        );
        assert_eq!(
            refused(RawRoute::Cancel, "symbol=BTC-EUR&orderId=7", "", b""),
            code::MISSING_PARAM
        );
        assert_eq!(
            refused(RawRoute::NewOrder, &q, "text/plain", body),
            code::BAD_CONTENT_TYPE
        );
        let eth = format!("symbol=ETH-EUR&orderId=7&{q}");
        assert_eq!(refused(RawRoute::Cancel, &eth, "", b""), code::BAD_SYMBOL);
    }

    #[test]
    fn raw_amends_map_like_the_handler_or_get_its_codes() {
        let q = format!("timestamp={NOW}&signature=00");
        let refused = |route, q: &str, ct: &str, body: &[u8]| {
            command_from_raw(&pairs(), route, q, ct, body, NOW)
                .unwrap_err()
                .code
        };
        // Amends: the handler's mapping and its codes.
        let amend = br#"{"symbol":"BTC-EUR","orderId":7,"price":"100.10"}"#;
        let cmd = command_from_raw(
            &pairs(),
            RawRoute::Amend,
            &q,
            "application/json",
            amend,
            NOW,
        )
        .unwrap();
        let expected = proto::Amend {
            target: OrderRef::Id(OrderId(7)),
            new_qty: None,
            new_price: Some(Price(10_010)),
        };
        assert_eq!(cmd.body, CommandBody::Amend(expected));
        let neither = br#"{"symbol":"BTC-EUR","orderId":7}"#;
        assert_eq!(
            refused(RawRoute::Amend, &q, "application/json", neither),
            code::MISSING_PARAM
        );
        // Each class of bad amend gets the handler's code.
        let json = "application/json";
        let cases: [(&[u8], i32); 9] = [
            (
                br#"{"symbol":"BTC-EUR","orderId":7,"price":"1.00","side":"BUY"}"#,
                code::UNKNOWN_PARAM,
            ),
            (
                br#"{"symbol":"BTC-EUR","orderId":"7","price":"1.00"}"#,
                code::ILLEGAL_CHARS,
            ),
            (
                br#"{"symbol":"BTC-EUR","orderId":-1,"price":"1.00"}"#,
                code::ILLEGAL_CHARS,
            ),
            (
                br#"{"symbol":"BTC-EUR","price":"1.00"}"#,
                code::MISSING_PARAM,
            ),
            (
                br#"{"symbol":"BTC-EUR","orderId":7,"origClientOrderId":"a","price":"1.00"}"#,
                code::BAD_PARAM_COMBINATION,
            ),
            (
                br#"{"symbol":"ETH-EUR","orderId":7,"price":"1.00"}"#,
                code::BAD_SYMBOL,
            ),
            (
                br#"{"symbol":"BTC-EUR","orderId":7,"newOrderRespType":"FULL","price":"1.00"}"#,
                code::BAD_ENUM,
            ),
            (
                br#"{"symbol":"BTC-EUR","orderId":7,"quantity":"0"}"#,
                ApiError::decimal("quantity", proto::DecimalError::Zero).code,
            ),
            (b"{", code::MALFORMED_JSON),
        ];
        for (body, expected) in cases {
            let got = refused(RawRoute::Amend, &q, json, body);
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            refused(RawRoute::Amend, &q, "text/plain", amend),
            code::BAD_CONTENT_TYPE
        );
    }
}
