//! Stateless checks of a command against the pair's rules (reject codes
//! `2xx`). Checks that need the book's state (`3xx`) live in the book.

use proto::{
    ListKind, MAX_ICEBERG_PARTS, MAX_TRAILING_DELTA, MIN_TRAILING_DELTA, NewOrder, NewOrderList,
    OrderSize, OrderType, PairConfig, Price, Qty, QuoteQty, RejectCode, Side, TimeInForce, Trigger,
};

/// Checks a new order against the pair's rules, in a fixed order so that
/// the first fault found is the one reported (the reference book in the
/// tests relies on the same order).
pub fn new_order(config: &PairConfig, order: &NewOrder) -> Result<(), RejectCode> {
    let working = order.order_type.working();
    let is_market = working == OrderType::Market;
    let tif = order.time_in_force;
    let may_rest = matches!(tif, TimeInForce::Gtc | TimeInForce::Gtd);
    if is_market && may_rest {
        return Err(RejectCode::InvalidTimeInForce);
    }
    if order.post_only && (!matches!(order.order_type, OrderType::Limit { .. }) || !may_rest) {
        return Err(RejectCode::PostOnlyNotAllowed);
    }
    if let OrderSize::Quote(_) = order.size
        && (!is_market || order.side != Side::Buy || tif != TimeInForce::Ioc)
    {
        return Err(RejectCode::QuoteSizeNotAllowed);
    }
    // A budget bounds what a buy spends; it has no meaning for a sell, and a
    // limit price already bounds a limit buy.
    if let OrderSize::BaseWithin { .. } = order.size
        && (!is_market || order.side != Side::Buy)
    {
        return Err(RejectCode::QuoteSizeNotAllowed);
    }
    good_till(config, order)?;
    if let Some(trigger) = order.order_type.trigger() {
        self::trigger(config, trigger)?;
    }
    if let Some(slice) = order.iceberg_qty {
        iceberg(config, order, slice)?;
    }
    if let Some(price) = working.price() {
        self::price(config, price)?;
    }
    match order.size {
        OrderSize::Base(qty) => {
            self::qty(config, qty)?;
            if let Some(price) = working.price() {
                notional(config, price, qty)?;
            }
        }
        OrderSize::Quote(amount) => quote_amount(config, amount)?,
        OrderSize::BaseWithin { qty, budget } => {
            self::qty(config, qty)?;
            self::budget(config, budget)?;
        }
    }
    Ok(())
}

/// A market buy's budget, given by the risk stage (not the user): positive,
/// at least the pair's minimum notional. One above the maximum notional is
/// not refused: the book spends at most that maximum
/// ([`capped_budget`]), since the risk stage budgets with the config
/// file's limits while an operator may have lowered the pair's since.
pub fn budget(config: &PairConfig, budget: QuoteQty) -> Result<(), RejectCode> {
    if budget.is_zero() || budget < config.min_notional {
        return Err(RejectCode::NotionalBelowMin);
    }
    Ok(())
}

/// What a market buy's `budget` may spend under the pair's rules now: at
/// most its maximum notional. Applied each time the order works (placed or
/// fired), with the rules of that moment.
pub fn capped_budget(config: &PairConfig, budget: QuoteQty) -> QuoteQty {
    budget.min(config.max_notional)
}

/// GTD and an expiry time come together, on pairs that allow them.
fn good_till(config: &PairConfig, order: &NewOrder) -> Result<(), RejectCode> {
    if (order.time_in_force == TimeInForce::Gtd) != order.good_till.is_some() {
        return Err(RejectCode::InvalidGoodTill);
    }
    if order.good_till.is_some() && !config.advanced.good_till_date {
        return Err(RejectCode::OrderTypeNotAllowed);
    }
    Ok(())
}

/// A conditional order's trigger: allowed on the pair, a stop price or a
/// trailing delta (or both), each within its rules.
pub fn trigger(config: &PairConfig, trigger: Trigger) -> Result<(), RejectCode> {
    if !config.advanced.conditional {
        return Err(RejectCode::OrderTypeNotAllowed);
    }
    if trigger.stop_price.is_none() && trigger.trailing_delta.is_none() {
        return Err(RejectCode::InvalidTrigger);
    }
    if let Some(delta) = trigger.trailing_delta {
        if !config.advanced.trailing {
            return Err(RejectCode::OrderTypeNotAllowed);
        }
        if !(MIN_TRAILING_DELTA..=MAX_TRAILING_DELTA).contains(&delta) {
            return Err(RejectCode::InvalidTrigger);
        }
    }
    if let Some(stop) = trigger.stop_price {
        price(config, stop)?;
    }
    Ok(())
}

/// An iceberg's slice: on a limit order that may rest, whole lots, at least
/// the minimum quantity, below the order's quantity, in at most
/// [`MAX_ICEBERG_PARTS`] slices.
pub fn iceberg(config: &PairConfig, order: &NewOrder, slice: Qty) -> Result<(), RejectCode> {
    if !config.advanced.iceberg {
        return Err(RejectCode::OrderTypeNotAllowed);
    }
    let resting_limit = order.order_type.working().price().is_some()
        && matches!(order.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
    let OrderSize::Base(qty) = order.size else {
        return Err(RejectCode::IcebergNotAllowed);
    };
    let fits = slice.0.is_multiple_of(config.lot_size.0)
        && slice >= config.min_qty
        && slice < qty
        && qty.0.div_ceil(slice.0) <= MAX_ICEBERG_PARTS;
    if !resting_limit || !fits {
        return Err(RejectCode::IcebergNotAllowed);
    }
    Ok(())
}

/// A quote amount a user's quote-sized market buy may spend: positive,
/// within the pair's notional limits.
pub fn quote_amount(config: &PairConfig, amount: QuoteQty) -> Result<(), RejectCode> {
    if amount.is_zero() || amount < config.min_notional {
        return Err(RejectCode::NotionalBelowMin);
    }
    if amount > config.max_notional {
        return Err(RejectCode::NotionalAboveMax);
    }
    Ok(())
}

/// A limit price: positive, on the tick, at most the pair's maximum.
pub fn price(config: &PairConfig, price: Price) -> Result<(), RejectCode> {
    if price.is_zero() {
        return Err(RejectCode::PriceZero);
    }
    if price > config.max_price {
        return Err(RejectCode::PriceAboveMax);
    }
    if !price.0.is_multiple_of(config.tick_size.0) {
        return Err(RejectCode::PriceOffTick);
    }
    Ok(())
}

/// An order's total quantity: on the lot, within the pair's limits.
pub fn qty(config: &PairConfig, qty: Qty) -> Result<(), RejectCode> {
    if !qty.0.is_multiple_of(config.lot_size.0) {
        return Err(RejectCode::QtyOffLot);
    }
    if qty < config.min_qty {
        return Err(RejectCode::QtyBelowMin);
    }
    if qty > config.max_qty {
        return Err(RejectCode::QtyAboveMax);
    }
    Ok(())
}

/// Price times quantity within the pair's minimum and maximum notional.
/// Computed exactly in `u128` at scale `price_scale + qty_scale`.
pub fn notional(config: &PairConfig, price: Price, qty: Qty) -> Result<(), RejectCode> {
    let value = u128::from(price.0) * u128::from(qty.0);
    let scale = proto::pow10(config.qty_scale);
    if value < u128::from(config.min_notional.0) * scale {
        return Err(RejectCode::NotionalBelowMin);
    }
    if value > u128::from(config.max_notional.0) * scale {
        return Err(RejectCode::NotionalAboveMax);
    }
    Ok(())
}

/// Checks an order list's legs and shape (the stateless part): lists
/// allowed, each leg a valid order, then the list's own rules:
/// - OCO: both legs on one side with one base quantity, at least one
///   conditional (whose time in force is the one it works with once fired),
///   and one leg working above the market while the other works below it
///   (see [`oco_leg_rises`]);
/// - OTO: the working order a plain limit order (limit maker allowed).
pub fn order_list(config: &PairConfig, list: &NewOrderList) -> Result<(), RejectCode> {
    if !config.advanced.lists {
        return Err(RejectCode::OrderTypeNotAllowed);
    }
    for leg in &list.orders {
        new_order(config, leg)?;
    }
    let [a, b] = &list.orders;
    let fits = match list.kind {
        ListKind::Oco => {
            // A market buy leg may carry the budget the risk stage gives it:
            // its base quantity is what counts.
            let base = |o: &NewOrder| match o.size {
                OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => Some(q),
                OrderSize::Quote(_) => None,
            };
            let same_size = base(a).is_some() && base(a) == base(b);
            let conditional = a.order_type.trigger().is_some() || b.order_type.trigger().is_some();
            a.side == b.side
                && same_size
                && conditional
                && matches!(
                    (oco_leg_rises(a), oco_leg_rises(b)),
                    (Some(true), Some(false)) | (Some(false), Some(true))
                )
        }
        ListKind::Oto => matches!(a.order_type, OrderType::Limit { .. }),
    };
    if !fits {
        return Err(RejectCode::InvalidOrderList);
    }
    Ok(())
}

/// For an OCO leg: true when it fills or fires as the price rises (a sell
/// limit maker, a sell take-profit, a buy stop-loss), false when as the
/// price falls; `None` for an order that cannot be an OCO leg (a plain limit
/// order that is not a limit maker).
pub fn oco_leg_rises(order: &NewOrder) -> Option<bool> {
    match order.order_type {
        OrderType::Limit { .. } if order.post_only => Some(order.side == Side::Sell),
        OrderType::Conditional { kind, .. } => Some(kind.fires_on_rise(order.side)),
        _ => None,
    }
}
