//! The request path from raw bytes to a [`Command`], without HTTP, keys or
//! a store: what the `POST` and `DELETE /api/v3/order` and `PUT
//! /api/v3/order/amend/keepPriority` handlers do before they submit, for
//! the fuzz target `rest_request` (`fuzz/`) and for the direct load target
//! (`kafkaload`), which so refuses what the gateway refuses.

use axum::http::{HeaderMap, HeaderValue, header};
use proto::{Amend, Command, CommandBody, OrderId, PairConfig, Qty, UserId};

use super::trading::{AmendRequest, NewOrderRequest, OrderQuery, RespType};
use super::{command, params};
use crate::auth::{Caller, signed_query};
use crate::errors::{ApiError, code};

/// Which handler a raw request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawRoute {
    /// `POST /api/v3/order`.
    NewOrder,
    /// `DELETE /api/v3/order`.
    Cancel,
    /// `PUT /api/v3/order/amend/keepPriority`.
    Amend,
}

/// The command a request would submit, or the error it is answered with.
/// `query` is the raw query string and `body` the raw body (signature
/// included in either, not checked: the key's secret is the store's),
/// `content_type` the header's value, `now_ms` the server's clock. The
/// order id is 1 and the user 1. An amend is checked against the pair's
/// rules only: whether it lowers the order's quantity needs the store.
pub fn command_from_raw(
    pairs: &[PairConfig],
    route: RawRoute,
    query_string: &str,
    content_type: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<Command, ApiError> {
    let form = params::form_body(&content_type_only(content_type)?, body)?;
    signed_query(Some("fuzz"), query_string, form.as_bytes(), now_ms)?;
    let caller = Caller {
        user: UserId(1),
        api_key: "fuzz".into(),
    };
    let pair = |name: &str| {
        pairs
            .iter()
            .find(|p| p.symbol.joined() == name)
            .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))
    };
    match route {
        RawRoute::NewOrder => {
            let req: NewOrderRequest = params::parse(query_string, form)?;
            RespType::of(req.new_order_resp_type.as_deref(), &req.order_type)?;
            let p = pair(&req.symbol)?;
            let order = super::trading::new_order_for(p, &req, || OrderId(1))?;
            Ok(command(p.symbol, &caller, CommandBody::NewOrder(order)))
        }
        RawRoute::Cancel => {
            let q: OrderQuery = params::parse(query_string, form)?;
            let p = pair(&q.symbol)?;
            let target = super::trading::order_ref(q.order_id, q.orig_client_order_id.as_deref())?;
            Ok(command(p.symbol, &caller, CommandBody::Cancel { target }))
        }
        RawRoute::Amend => {
            let r: AmendRequest = params::parse(query_string, form)?;
            let p = pair(&r.symbol)?;
            let target = super::trading::order_ref(r.order_id, r.orig_client_order_id.as_deref())?;
            let new_qty = Qty::parse_positive(&r.new_qty, p.qty_scale)
                .map_err(|e| ApiError::decimal("newQty", e))?;
            engine::validate::qty(p, new_qty).map_err(ApiError::rejected)?;
            let amend = Amend {
                target,
                new_qty: Some(new_qty),
                new_price: None,
                new_stop_price: None,
            };
            Ok(command(p.symbol, &caller, CommandBody::Amend(amend)))
        }
    }
}

/// Headers holding only `content_type`, as a handler's body parser reads them.
fn content_type_only(content_type: &str) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    if content_type.is_empty() {
        return Ok(headers);
    }
    let ct = HeaderValue::from_str(content_type)
        .map_err(|_| ApiError::new(code::BAD_CONTENT_TYPE, "Bad Content-Type."))?;
    headers.insert(header::CONTENT_TYPE, ct);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{OrderRef, Price, Symbol};

    const NOW: u64 = 1_700_000_000_000;
    const FORM: &str = "application/x-www-form-urlencoded";

    fn pairs() -> Vec<PairConfig> {
        vec![PairConfig {
            price_scale: 2,
            qty_scale: 4,
            ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
        }]
    }

    fn refused(route: RawRoute, q: &str, ct: &str, body: &[u8]) -> i32 {
        command_from_raw(&pairs(), route, q, ct, body, NOW)
            .unwrap_err()
            .code
    }

    #[test]
    fn raw_requests_become_the_handlers_commands_or_their_errors() {
        let signed = format!("timestamp={NOW}&signature=00");
        let body = format!(
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0100&price=100.05&{signed}"
        );
        let cmd =
            command_from_raw(&pairs(), RawRoute::NewOrder, "", FORM, body.as_bytes(), NOW).unwrap();
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
        let cancel = format!("symbol=BTCEUR&orderId=7&{signed}");
        let cmd = command_from_raw(&pairs(), RawRoute::Cancel, &cancel, "", b"", NOW).unwrap();
        let target = OrderRef::Id(OrderId(7));
        assert_eq!(cmd.body, CommandBody::Cancel { target });
        // The same cancel with its parameters in a form body.
        let cmd = command_from_raw(&pairs(), RawRoute::Cancel, "", FORM, cancel.as_bytes(), NOW);
        assert_eq!(cmd.map(|c| c.body), Ok(CommandBody::Cancel { target }));
        let stale = format!("timestamp={}&signature=00", NOW - 60_000);
        assert_eq!(
            refused(RawRoute::NewOrder, &stale, FORM, body.as_bytes()),
            code::STALE_TIMESTAMP
        );
        assert_eq!(
            refused(RawRoute::Cancel, "symbol=BTCEUR&orderId=7", "", b""),
            code::MISSING_PARAM
        );
        assert_eq!(
            refused(RawRoute::NewOrder, "", "application/json", body.as_bytes()),
            code::BAD_CONTENT_TYPE
        );
        let eth = format!("symbol=ETHEUR&orderId=7&{signed}");
        assert_eq!(refused(RawRoute::Cancel, &eth, "", b""), code::BAD_SYMBOL);
    }

    #[test]
    fn raw_amends_map_like_the_handler_or_get_their_codes() {
        let signed = format!("timestamp={NOW}&signature=00");
        let amend = format!("symbol=BTCEUR&orderId=7&newQty=0.0100&{signed}");
        let cmd = command_from_raw(&pairs(), RawRoute::Amend, &amend, "", b"", NOW).unwrap();
        let expected = proto::Amend {
            target: OrderRef::Id(OrderId(7)),
            new_qty: Some(Qty(100)),
            new_price: None,
            new_stop_price: None,
        };
        assert_eq!(cmd.body, CommandBody::Amend(expected));
        let cases = [
            ("symbol=BTCEUR&orderId=7", code::MISSING_PARAM),
            (
                "symbol=BTCEUR&orderId=7&newQty=1&side=BUY",
                code::UNREAD_PARAMS,
            ),
            ("symbol=BTCEUR&orderId=x&newQty=1", code::ILLEGAL_CHARS),
            ("symbol=BTCEUR&orderId=-1&newQty=1", code::ILLEGAL_CHARS),
            ("symbol=BTCEUR&newQty=1", code::MISSING_PARAM),
            ("symbol=ETHEUR&orderId=7&newQty=1", code::BAD_SYMBOL),
            (
                "symbol=BTCEUR&orderId=7&newQty=1&newQty=2",
                code::DUPLICATE_PARAM,
            ),
            (
                "symbol=BTCEUR&orderId=7&newQty=0",
                ApiError::decimal("newQty", proto::DecimalError::Zero).code,
            ),
        ];
        for (q, expected) in cases {
            let got = refused(RawRoute::Amend, &format!("{q}&{signed}"), "", b"");
            assert_eq!(got, expected, "{q}");
        }
    }
}
