//! Stateless checks of a command against the pair's rules (reject codes
//! `2xx`). Checks that need the book's state (`3xx`) live in the book.

use proto::{
    NewOrder, OrderSize, OrderType, PairConfig, Price, Qty, QuoteQty, RejectCode, Side, TimeInForce,
};

/// Checks a new order's shape, price and size against the pair's rules, in
/// a fixed order so that an order with several faults always gets the same code.
pub fn new_order(config: &PairConfig, order: &NewOrder) -> Result<(), RejectCode> {
    let is_market = order.order_type == OrderType::Market;
    if is_market && order.time_in_force == TimeInForce::Gtc {
        return Err(RejectCode::InvalidTimeInForce);
    }
    if order.post_only && (is_market || order.time_in_force != TimeInForce::Gtc) {
        return Err(RejectCode::PostOnlyNotAllowed);
    }
    if let OrderSize::Quote(_) = order.size
        && (!is_market || order.side != Side::Buy || order.time_in_force != TimeInForce::Ioc)
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
    if let OrderType::Limit { price } = order.order_type {
        self::price(config, price)?;
    }
    match order.size {
        OrderSize::Base(qty) => {
            self::qty(config, qty)?;
            if let OrderType::Limit { price } = order.order_type {
                notional(config, price, qty)?;
            }
        }
        OrderSize::Quote(amount) => quote_amount(config, amount)?,
        OrderSize::BaseWithin { qty, budget } => {
            self::qty(config, qty)?;
            quote_amount(config, budget)?;
        }
    }
    Ok(())
}

/// A quote amount an order may spend (a quote-sized order's amount or a
/// base-sized order's budget): positive, within the pair's notional limits.
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
