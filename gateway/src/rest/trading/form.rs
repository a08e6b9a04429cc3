//! A new order's parameters as Binance names them, for `order`,
//! `order/test`, `order/cancelReplace` and each order of an order list,
//! whose parameters carry the order's role as a prefix (`abovePrice`,
//! `pendingStopPrice`): which parameters each type takes, their parsing,
//! and Binance's codes for their faults. The engine's validation
//! (`engine::validate::new_order`) runs last, so nothing it would refuse
//! reaches the log.

use proto::{
    ClientOrderId, ConditionalKind, NewOrder, OrderId, OrderSize, OrderType, PairConfig, Price,
    Qty, QuoteQty, RejectCode, Side, StpMode, TimeInForce, Timestamp, Trigger,
};

use super::super::bodies::client_order_id;
use super::super::enum_value;
use super::super::params::{missing, not_required};
use crate::errors::{ApiError, code};

/// Nanoseconds in a millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// The latest `goodTillDate` (Unix ms) a stored time can hold: nanoseconds
/// in a signed 64-bit column.
const MAX_GOOD_TILL_MS: u64 = i64::MAX as u64 / NS_PER_MS;

/// One order's parameters, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OrderForm<'a> {
    /// The order's role in a list (`above`, `working`), whose name prefixes
    /// its parameters; empty for a single order.
    pub(crate) prefix: &'static str,
    pub(crate) side: &'a str,
    pub(crate) order_type: &'a str,
    pub(crate) time_in_force: Option<&'a str>,
    pub(crate) quantity: Option<&'a str>,
    pub(crate) quote_order_qty: Option<&'a str>,
    pub(crate) price: Option<&'a str>,
    pub(crate) stop_price: Option<&'a str>,
    pub(crate) trailing_delta: Option<&'a str>,
    pub(crate) iceberg_qty: Option<&'a str>,
    pub(crate) good_till_date: Option<&'a str>,
    pub(crate) client_order_id: Option<&'a str>,
    pub(crate) stp: Option<&'a str>,
    pub(crate) strategy_id: Option<&'a str>,
    pub(crate) strategy_type: Option<&'a str>,
}

/// What an order type takes, by Binance's table of mandatory parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeRules {
    /// Its conditional kind, for `STOP_LOSS(_LIMIT)` and
    /// `TAKE_PROFIT(_LIMIT)`.
    pub(crate) conditional: Option<ConditionalKind>,
    /// It has a limit price (and so a time in force).
    pub(crate) limit: bool,
    /// `LIMIT_MAKER`: a post-only limit order, no time in force.
    pub(crate) maker: bool,
}

impl TypeRules {
    /// The rules of a type name; `None` for a name that is no order type.
    pub(crate) fn of(name: &str) -> Option<TypeRules> {
        let (conditional, limit, maker) = match name {
            "LIMIT" => (None, true, false),
            "LIMIT_MAKER" => (None, true, true),
            "MARKET" => (None, false, false),
            "STOP_LOSS" => (Some(ConditionalKind::StopLoss), false, false),
            "STOP_LOSS_LIMIT" => (Some(ConditionalKind::StopLoss), true, false),
            "TAKE_PROFIT" => (Some(ConditionalKind::TakeProfit), false, false),
            "TAKE_PROFIT_LIMIT" => (Some(ConditionalKind::TakeProfit), true, false),
            _ => return None,
        };
        Some(TypeRules {
            conditional,
            limit,
            maker,
        })
    }

    /// A limit order whose time in force is sent: `LIMIT` and the
    /// conditional `_LIMIT` types.
    fn takes_time_in_force(self) -> bool {
        self.limit && !self.maker
    }
}

impl<'a> OrderForm<'a> {
    /// The name of parameter `field` (`stopPrice`) for this order:
    /// `aboveStopPrice` in an OCO's above order.
    pub(crate) fn name(&self, field: &str) -> String {
        let mut chars = field.chars();
        match (self.prefix, chars.next()) {
            ("", _) | (_, None) => field.to_string(),
            (prefix, Some(first)) => {
                format!("{prefix}{}{}", first.to_ascii_uppercase(), chars.as_str())
            }
        }
    }

    /// The order this form describes, validated as the engine would; the
    /// order id is taken from `next_id` only for an order that passed.
    /// `now` is the request's time, for `goodTillDate`.
    pub(crate) fn parse(
        &self,
        p: &PairConfig,
        now: Timestamp,
        next_id: impl FnOnce() -> OrderId,
    ) -> Result<NewOrder, ApiError> {
        let order = self.parse_unnumbered(p, now)?;
        numbered(order, next_id())
    }

    /// [`OrderForm::parse`] without an id yet: for the orders of a list,
    /// numbered once all of them passed.
    pub(crate) fn parse_unnumbered(
        &self,
        p: &PairConfig,
        now: Timestamp,
    ) -> Result<NewOrder, ApiError> {
        self.refuse_unsupported()?;
        let side = enum_value(&self.name("side"), self.side, Side::from_name)?;
        let rules = TypeRules::of(self.order_type)
            .ok_or_else(|| ApiError::new(code::BAD_ENUM, "Invalid orderType."))?;
        let order_type = self.order_type(p, rules)?;
        let time_in_force = self.time_in_force(rules)?;
        let good_till = self.good_till(time_in_force, now)?;
        let market = order_type.is_market();
        let size = self.size(p, market && rules.conditional.is_none())?;
        let iceberg_qty = self.iceberg(p, rules)?;
        let stp = self
            .stp
            .map(|s| enum_value("selfTradePreventionMode", s, StpMode::from_name))
            .transpose()?;
        let client_order_id = self
            .client_order_id
            .map(|c| client_id(&self.name("newClientOrderId"), c))
            .transpose()?;
        let order = NewOrder {
            order_id: OrderId(0),
            client_order_id,
            side,
            order_type,
            time_in_force,
            post_only: rules.maker,
            stp,
            size,
            iceberg_qty,
            good_till,
        };
        check_allowed(p, &order)?;
        check_trigger(p, &order)?;
        check_iceberg(p, &order)?;
        // The engine checks again; refusing here keeps invalid orders out
        // of the log.
        engine::validate::new_order(p, &order)
            .map_err(|c| ApiError::rejected_order(c, order.order_type == OrderType::Market))?;
        Ok(order)
    }

    /// Binance's parameters for what this exchange does not offer: read,
    /// so that sending one is refused by name (-1106).
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        let unsupported = [
            ("strategyId", self.strategy_id),
            ("strategyType", self.strategy_type),
        ];
        match unsupported.iter().find(|(_, v)| v.is_some()) {
            Some((name, _)) => Err(not_required(&self.name(name))),
            None => Ok(()),
        }
    }

    /// The order type, with its limit price and trigger, by Binance's rules
    /// for which parameters each type takes.
    fn order_type(&self, p: &PairConfig, rules: TypeRules) -> Result<OrderType, ApiError> {
        let limit = match (rules.limit, self.price) {
            (true, Some(text)) => Some(self.price_of("price", text, p)?),
            (true, None) => return Err(missing(&self.name("price"))),
            (false, Some(_)) => return Err(not_required(&self.name("price"))),
            (false, None) => None,
        };
        let Some(kind) = rules.conditional else {
            for (field, value) in [
                ("stopPrice", self.stop_price),
                ("trailingDelta", self.trailing_delta),
            ] {
                if value.is_some() {
                    return Err(not_required(&self.name(field)));
                }
            }
            return Ok(match limit {
                Some(price) => OrderType::Limit { price },
                None => OrderType::Market,
            });
        };
        let stop_price = self
            .stop_price
            .map(|t| self.price_of("stopPrice", t, p))
            .transpose()?;
        let trailing_delta = self.trailing_delta.map(|t| self.delta(t)).transpose()?;
        if stop_price.is_none() && trailing_delta.is_none() {
            return Err(ApiError::new(
                code::MISSING_PARAM,
                format!(
                    "Param '{}' or '{}' must be sent, but both were empty/null!",
                    self.name("stopPrice"),
                    self.name("trailingDelta")
                ),
            ));
        }
        Ok(OrderType::Conditional {
            kind,
            limit,
            trigger: Trigger {
                stop_price,
                trailing_delta,
            },
        })
    }

    fn price_of(&self, field: &str, text: &str, p: &PairConfig) -> Result<Price, ApiError> {
        let name = self.name(field);
        Price::parse_positive(text, p.price_scale).map_err(|e| ApiError::decimal(&name, e))
    }

    /// `trailingDelta`: a whole number of basis points (Binance's LONG);
    /// its range is the `TRAILING_DELTA` filter's, checked with the order.
    fn delta(&self, text: &str) -> Result<u32, ApiError> {
        let name = self.name("trailingDelta");
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::new(
                code::ILLEGAL_CHARS,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
                ),
            ));
        }
        // Past u32 it is out of the filter's range all the same.
        Ok(text.parse::<u32>().unwrap_or(u32::MAX))
    }

    /// The time in force: sent for `LIMIT` and the conditional limit types,
    /// never for the others (a market order's is IOC, a maker's GTC).
    fn time_in_force(&self, rules: TypeRules) -> Result<TimeInForce, ApiError> {
        let name = self.name("timeInForce");
        match (rules.takes_time_in_force(), self.time_in_force) {
            (true, Some(t)) => enum_value(&name, t, TimeInForce::from_name),
            (true, None) => Err(missing(&name)),
            (false, Some(_)) => Err(not_required(&name)),
            (false, None) if rules.limit => Ok(TimeInForce::Gtc),
            (false, None) => Ok(TimeInForce::Ioc),
        }
    }

    /// `goodTillDate` (Unix ms): mandatory with GTD, refused without it.
    fn good_till(&self, tif: TimeInForce, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
        let name = self.name("goodTillDate");
        let text = match (tif, self.good_till_date) {
            (TimeInForce::Gtd, Some(text)) => text,
            (TimeInForce::Gtd, None) => return Err(missing(&name)),
            (_, Some(_)) => return Err(not_required(&name)),
            (_, None) => return Ok(None),
        };
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::new(
                code::ILLEGAL_CHARS,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
                ),
            ));
        }
        let ms = text
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_GOOD_TILL_MS)
            .ok_or_else(|| {
                ApiError::new(
                    code::INVALID_PARAMETER,
                    format!("Data sent for parameter '{name}' is not valid."),
                )
            })?;
        let at = Timestamp(ms * NS_PER_MS);
        if at <= now {
            return Err(ApiError::rejected(RejectCode::GoodTillPassed));
        }
        Ok(Some(at))
    }

    /// What the order buys or sells: `quantity`, or for a market order
    /// `quoteOrderQty`.
    fn size(&self, p: &PairConfig, plain_market: bool) -> Result<OrderSize, ApiError> {
        let (qty, quote) = (self.name("quantity"), self.name("quoteOrderQty"));
        match (self.quantity, self.quote_order_qty) {
            (Some(q), None) => Ok(OrderSize::Base(
                Qty::parse_positive(q, p.qty_scale).map_err(|e| ApiError::decimal(&qty, e))?,
            )),
            (None, Some(q)) if plain_market => Ok(OrderSize::Quote(
                QuoteQty::parse_positive(q, p.price_scale)
                    .map_err(|e| ApiError::decimal(&quote, e))?,
            )),
            (None, Some(_)) => Err(not_required(&quote)),
            (Some(_), Some(_)) => Err(ApiError::new(
                code::BAD_PARAM_COMBINATION,
                format!("Send {qty} or {quote}, not both."),
            )),
            (None, None) if plain_market => Err(ApiError::new(
                code::MISSING_PARAM,
                format!("Param '{qty}' or '{quote}' must be sent, but both were empty/null!"),
            )),
            (None, None) => Err(missing(&qty)),
        }
    }

    /// `icebergQty`: for the types with a limit price only.
    fn iceberg(&self, p: &PairConfig, rules: TypeRules) -> Result<Option<Qty>, ApiError> {
        let name = self.name("icebergQty");
        match (self.iceberg_qty, rules.limit) {
            (None, _) => Ok(None),
            (Some(_), false) => Err(not_required(&name)),
            (Some(text), true) => Qty::parse_positive(text, p.qty_scale)
                .map(Some)
                .map_err(|e| ApiError::decimal(&name, e)),
        }
    }
}

/// `order` with its id, and a client order id if it was sent without:
/// Binance makes one up; this one is unique because the id is.
pub(crate) fn numbered(mut order: NewOrder, id: OrderId) -> Result<NewOrder, ApiError> {
    order.order_id = id;
    if order.client_order_id.is_none() {
        let made = client_order_id(id, None);
        order.client_order_id = Some(client_id("newClientOrderId", &made)?);
    }
    Ok(order)
}

/// A client order id, or Binance's -1100 naming `field`.
pub(crate) fn client_id(field: &str, s: &str) -> Result<ClientOrderId, ApiError> {
    ClientOrderId::new(s).map_err(|_| {
        ApiError::new(
            code::ILLEGAL_CHARS,
            format!("Illegal characters found in parameter '{field}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."),
        )
    })
}

/// Refuses what the pair does not take, with Binance's message for each
/// kind of order (`PairConfig::advanced`).
pub(crate) fn check_allowed(p: &PairConfig, o: &NewOrder) -> Result<(), ApiError> {
    let refused = |what: &str| {
        Err(ApiError::new(
            code::ORDER_REFUSED,
            format!("{what} orders are not supported for this symbol."),
        ))
    };
    let a = p.advanced;
    if let Some(trigger) = o.order_type.trigger() {
        if !a.conditional {
            return refused(match o.order_type.name() {
                "STOP_LOSS" => "Stop loss",
                "STOP_LOSS_LIMIT" => "Stop loss limit",
                "TAKE_PROFIT" => "Take profit",
                _ => "Take profit limit",
            });
        }
        if trigger.trailing_delta.is_some() && !a.trailing {
            return refused("Trailing stop");
        }
    }
    if o.iceberg_qty.is_some() && !a.iceberg {
        return refused("Iceberg");
    }
    if o.time_in_force == TimeInForce::Gtd && !a.good_till_date {
        return refused("GTD");
    }
    Ok(())
}

/// A conditional order's prices and delta: the stop price and the limit
/// by `PRICE_FILTER` (the limit's value by `NOTIONAL`), the delta by
/// `TRAILING_DELTA`.
pub(crate) fn check_trigger(p: &PairConfig, o: &NewOrder) -> Result<(), ApiError> {
    let OrderType::Conditional { limit, trigger, .. } = o.order_type else {
        return Ok(());
    };
    let refused = ApiError::rejected;
    if let Some(stop) = trigger.stop_price {
        engine::validate::price(p, stop).map_err(refused)?;
    }
    if let Some(d) = trigger.trailing_delta
        && !(proto::MIN_TRAILING_DELTA..=proto::MAX_TRAILING_DELTA).contains(&d)
    {
        return Err(refused(RejectCode::InvalidTrigger));
    }
    if let Some(price) = limit {
        engine::validate::price(p, price).map_err(refused)?;
        if let OrderSize::Base(qty) = o.size {
            engine::validate::notional(p, price, qty).map_err(refused)?;
        }
    }
    Ok(())
}

/// An iceberg's slice, by Binance's rules: a GTC (or GTD) limit order's,
/// within `LOT_SIZE`, below the order's quantity, in at most
/// `ICEBERG_PARTS` slices.
pub(crate) fn check_iceberg(p: &PairConfig, o: &NewOrder) -> Result<(), ApiError> {
    let Some(slice) = o.iceberg_qty else {
        return Ok(());
    };
    if !matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd) {
        return Err(ApiError::new(
            code::ORDER_REFUSED,
            "Unsupported order combination",
        ));
    }
    if engine::validate::qty(p, slice).is_err() {
        return Err(ApiError::new(
            code::FILTER_FAILURE,
            "Filter failure: LOT_SIZE",
        ));
    }
    let OrderSize::Base(qty) = o.size else {
        return Err(ApiError::new(
            code::ORDER_REFUSED,
            "Unsupported order combination",
        ));
    };
    if slice >= qty {
        return Err(ApiError::new(
            code::ORDER_REFUSED,
            "IcebergQty exceeds QTY.",
        ));
    }
    if qty.0.div_ceil(slice.0) > proto::MAX_ICEBERG_PARTS {
        return Err(ApiError::new(
            code::FILTER_FAILURE,
            "Filter failure: ICEBERG_PARTS",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::Symbol;

    use super::*;

    fn pair() -> PairConfig {
        PairConfig {
            qty_scale: 2,
            ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
        }
    }

    fn form<'a>(order_type: &'a str) -> OrderForm<'a> {
        OrderForm {
            side: "SELL",
            order_type,
            quantity: Some("1"),
            ..OrderForm::default()
        }
    }

    fn parse(f: &OrderForm<'_>) -> Result<NewOrder, (i32, String)> {
        f.parse(&pair(), Timestamp(1_000 * NS_PER_MS), || OrderId(9))
            .map_err(|e| (e.code, e.msg))
    }

    #[test]
    fn each_conditional_type_takes_its_parameters() {
        let stop = OrderForm {
            stop_price: Some("90"),
            ..form("STOP_LOSS")
        };
        let o = parse(&stop).unwrap();
        assert_eq!(o.time_in_force, TimeInForce::Ioc);
        assert_eq!(o.order_type.name(), "STOP_LOSS");
        assert_eq!(o.order_type.trigger().unwrap().stop_price, Some(Price(90)));
        let limit = OrderForm {
            price: Some("89"),
            time_in_force: Some("GTC"),
            trailing_delta: Some("150"),
            ..form("TAKE_PROFIT_LIMIT")
        };
        let o = parse(&limit).unwrap();
        assert_eq!(o.order_type.price(), Some(Price(89)));
        assert_eq!(o.order_type.trigger().unwrap().trailing_delta, Some(150));
        let neither = parse(&form("STOP_LOSS")).unwrap_err();
        assert_eq!(neither.0, code::MISSING_PARAM);
        assert!(neither.1.contains("'stopPrice' or 'trailingDelta'"));
        let priced = OrderForm {
            price: Some("1"),
            ..stop
        };
        assert_eq!(parse(&priced).unwrap_err().0, code::PARAM_NOT_REQUIRED);
        let on_limit = OrderForm {
            price: Some("1"),
            time_in_force: Some("GTC"),
            stop_price: Some("1"),
            ..form("LIMIT")
        };
        let e = parse(&on_limit).unwrap_err();
        assert_eq!(
            e,
            (
                code::PARAM_NOT_REQUIRED,
                "Parameter 'stopPrice' sent when not required.".into()
            )
        );
    }

    #[test]
    fn trailing_deltas_are_whole_and_in_the_filter() {
        let with = |d| OrderForm {
            trailing_delta: Some(d),
            ..form("STOP_LOSS")
        };
        assert_eq!(parse(&with("1.5")).unwrap_err().0, code::ILLEGAL_CHARS);
        assert_eq!(parse(&with("-5")).unwrap_err().0, code::ILLEGAL_CHARS);
        let low = parse(&with("9")).unwrap_err();
        assert_eq!(
            low,
            (
                code::FILTER_FAILURE,
                "Filter failure: TRAILING_DELTA".into()
            )
        );
        let high = parse(&with("99999999999")).unwrap_err();
        assert_eq!(high.1, "Filter failure: TRAILING_DELTA");
        assert!(parse(&with("10")).is_ok());
        assert!(parse(&with("2000")).is_ok());
    }

    #[test]
    fn good_till_date_goes_with_gtd_only() {
        let gtd = |at: Option<&'static str>| OrderForm {
            price: Some("1"),
            time_in_force: Some("GTD"),
            good_till_date: at,
            ..form("LIMIT")
        };
        let o = parse(&gtd(Some("5000"))).unwrap();
        assert_eq!(o.good_till, Some(Timestamp(5_000 * NS_PER_MS)));
        assert_eq!(parse(&gtd(None)).unwrap_err().0, code::MISSING_PARAM);
        assert_eq!(parse(&gtd(Some("x1"))).unwrap_err().0, code::ILLEGAL_CHARS);
        let far = gtd(Some("99999999999999999"));
        assert_eq!(parse(&far).unwrap_err().0, code::INVALID_PARAMETER);
        let passed = parse(&gtd(Some("1000"))).unwrap_err();
        assert_eq!(passed.0, code::ORDER_REFUSED);
        let gtc = OrderForm {
            time_in_force: Some("GTC"),
            ..gtd(Some("5000"))
        };
        assert_eq!(parse(&gtc).unwrap_err().0, code::PARAM_NOT_REQUIRED);
    }

    #[test]
    fn icebergs_follow_binance_rules() {
        let iceberg = |slice, tif| OrderForm {
            price: Some("1"),
            time_in_force: Some(tif),
            iceberg_qty: Some(slice),
            quantity: Some("10"),
            ..form("LIMIT")
        };
        assert_eq!(
            parse(&iceberg("1", "GTC")).unwrap().iceberg_qty,
            Some(Qty(100))
        );
        let e = |slice, tif| parse(&iceberg(slice, tif)).unwrap_err();
        assert_eq!(
            e("10", "GTC"),
            (code::ORDER_REFUSED, "IcebergQty exceeds QTY.".into())
        );
        assert_eq!(e("0.01", "GTC").1, "Filter failure: ICEBERG_PARTS");
        assert_eq!(e("1", "IOC").1, "Unsupported order combination");
        assert_eq!(e("0.001", "GTC").0, code::TOO_MANY_DECIMALS);
        let market = OrderForm {
            iceberg_qty: Some("1"),
            ..form("MARKET")
        };
        assert_eq!(parse(&market).unwrap_err().0, code::PARAM_NOT_REQUIRED);
        let maker = OrderForm {
            price: Some("1"),
            iceberg_qty: Some("1"),
            quantity: Some("10"),
            ..form("LIMIT_MAKER")
        };
        assert!(parse(&maker).unwrap().post_only);
    }

    #[test]
    fn a_pair_refuses_what_it_does_not_take_by_name() {
        let mut p = pair();
        p.advanced.conditional = false;
        let stop = OrderForm {
            stop_price: Some("90"),
            ..form("TAKE_PROFIT")
        };
        let e = stop.parse(&p, Timestamp(0), || OrderId(1)).unwrap_err();
        assert_eq!(
            e.msg,
            "Take profit orders are not supported for this symbol."
        );
        p.advanced.conditional = true;
        p.advanced.trailing = false;
        let trailing = OrderForm {
            trailing_delta: Some("100"),
            ..form("STOP_LOSS")
        };
        let e = trailing.parse(&p, Timestamp(0), || OrderId(1)).unwrap_err();
        assert_eq!(
            e.msg,
            "Trailing stop orders are not supported for this symbol."
        );
    }

    #[test]
    fn a_prefix_names_every_parameter() {
        let above = OrderForm {
            prefix: "above",
            ..form("STOP_LOSS")
        };
        assert_eq!(above.name("stopPrice"), "aboveStopPrice");
        let e = parse(&above).unwrap_err();
        assert!(
            e.1.contains("'aboveStopPrice' or 'aboveTrailingDelta'"),
            "{e:?}"
        );
    }
}
