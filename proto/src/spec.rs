//! A pair as an operator writes it: decimals as strings at the pair's own
//! scales, and its fee rates. The config file's `[[pairs]]` tables and the
//! admin API's listing of a new pair read the same shape, checked by the
//! same code, so a pair listed at runtime is the pair the file would give.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    AdvancedOrders, DecimalError, Fees, IdError, MAX_VALUE, PairConfig, PairConfigError, Price,
    Qty, QuoteQty, StpMode, Symbol, parse_decimal, pow10,
};

/// One pair, with decimals as strings at the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    /// `BASE-QUOTE`.
    pub symbol: String,
    /// Decimals of prices.
    pub price_scale: u8,
    /// Decimals of quantities.
    pub qty_scale: u8,
    /// Price increment, e.g. `"0.01"`.
    pub tick_size: String,
    /// Quantity increment.
    pub lot_size: String,
    /// Smallest order quantity.
    pub min_qty: String,
    /// Largest order quantity.
    pub max_qty: String,
    /// Largest limit price. Default: the highest price on the tick at which
    /// an order of `max_qty` is still worth at most [`MAX_VALUE`] price
    /// units, so no value the pair produces overflows.
    #[serde(default)]
    pub max_price: Option<String>,
    /// Smallest order value, in the quote currency.
    pub min_notional: String,
    /// Largest order value (and market buy quote amount), in the quote
    /// currency. Default: no limit below the one `max_price` already sets.
    #[serde(default)]
    pub max_notional: Option<String>,
    /// `NONE`, `EXPIRE_TAKER`, `EXPIRE_MAKER` or `EXPIRE_BOTH`.
    #[serde(default = "default_stp")]
    pub default_stp: String,
    /// Most open orders on the book.
    #[serde(default = "default_max_open")]
    pub max_open_orders: u32,
    /// The pair's partition of both Kafka topics (distributed mode).
    #[serde(default)]
    pub partition: Option<i32>,
    /// Fee charged to the resting side of a trade, in basis points of its
    /// value, paid in the quote asset. At most `taker_fee_bps`.
    #[serde(default = "default_fee_bps")]
    pub maker_fee_bps: u16,
    /// Fee charged to the incoming side, in basis points; at most 10,000.
    #[serde(default = "default_fee_bps")]
    pub taker_fee_bps: u16,
    /// The advanced order types the pair takes (`conditional`, `trailing`,
    /// `iceberg`, `lists`, `good_till_date`). Default: all.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schema(value_type = Option<Object>))]
    pub advanced: AdvancedOrders,
}

/// A pair's maker and taker rate when it names none, in basis points.
pub const DEFAULT_FEE_BPS: u16 = 10;

/// A pair's bound on open orders when it names none.
pub const DEFAULT_MAX_OPEN_ORDERS: u32 = 1_000_000;

fn default_fee_bps() -> u16 {
    DEFAULT_FEE_BPS
}

/// The self-trade prevention mode of a pair that names none.
pub fn default_stp() -> String {
    "NONE".into()
}

fn default_max_open() -> u32 {
    DEFAULT_MAX_OPEN_ORDERS
}

/// Why a [`PairSpec`] is refused; the message names the pair and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The symbol is not `BASE-QUOTE`.
    Symbol(String, IdError),
    /// A decimal field does not parse at the pair's scale.
    Decimal {
        /// The pair.
        pair: Symbol,
        /// The field, as named in the spec.
        field: &'static str,
        /// The text given.
        value: String,
        /// Why it does not parse.
        error: DecimalError,
    },
    /// `default_stp` is not a mode's name.
    DefaultStp(Symbol, String),
    /// The values do not fit together.
    Pair(PairConfigError),
    /// Maker rate above the taker rate, or the taker rate above 10,000 bps.
    Fees(Symbol),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Symbol(v, e) => write!(f, "pairs: {v:?}: {e}"),
            SpecError::Decimal {
                pair,
                field,
                value,
                error,
            } => write!(f, "pair {pair}: {field} {value:?}: {error}"),
            SpecError::DefaultStp(pair, v) => write!(
                f,
                "pair {pair}: default_stp {v:?}: NONE, EXPIRE_TAKER, EXPIRE_MAKER or EXPIRE_BOTH"
            ),
            SpecError::Pair(e) => e.fmt(f),
            SpecError::Fees(pair) => write!(
                f,
                "pair {pair}: maker_fee_bps must be at most taker_fee_bps, and taker_fee_bps at most 10000"
            ),
        }
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpecError::Symbol(_, e) => Some(e),
            SpecError::Decimal { error, .. } => Some(error),
            SpecError::Pair(e) => Some(e),
            _ => None,
        }
    }
}

impl PairSpec {
    /// The pair's symbol.
    pub fn symbol(&self) -> Result<Symbol, SpecError> {
        Symbol::new(&self.symbol).map_err(|e| SpecError::Symbol(self.symbol.clone(), e))
    }

    /// The pair's rules, checked ([`PairConfig::validate`]).
    pub fn config(&self) -> Result<PairConfig, SpecError> {
        let symbol = self.symbol()?;
        let field = |name: &'static str, v: &str, scale: u8| {
            parse_decimal(v, scale).map_err(|error| SpecError::Decimal {
                pair: symbol,
                field: name,
                value: v.to_string(),
                error,
            })
        };
        let fees = Fees {
            maker_bps: self.maker_fee_bps,
            taker_bps: self.taker_fee_bps,
        };
        if !fees.usable() {
            return Err(SpecError::Fees(symbol));
        }
        let (ps, qs) = (self.price_scale, self.qty_scale);
        PairConfig::check_scales(symbol, ps, qs).map_err(SpecError::Pair)?;
        let tick_size = Price(field("tick_size", &self.tick_size, ps)?);
        let max_qty = Qty(field("max_qty", &self.max_qty, qs)?);
        let max_price = match &self.max_price {
            Some(v) => Price(field("max_price", v, ps)?),
            None => widest_max_price(tick_size, max_qty, qs),
        };
        let max_notional = match &self.max_notional {
            Some(v) => QuoteQty(field("max_notional", v, ps)?),
            None => QuoteQty(MAX_VALUE),
        };
        let cfg = PairConfig {
            symbol,
            price_scale: ps,
            qty_scale: qs,
            tick_size,
            lot_size: Qty(field("lot_size", &self.lot_size, qs)?),
            min_qty: Qty(field("min_qty", &self.min_qty, qs)?),
            max_qty,
            max_price,
            min_notional: QuoteQty(field("min_notional", &self.min_notional, ps)?),
            max_notional,
            default_stp: StpMode::from_name(&self.default_stp)
                .ok_or_else(|| SpecError::DefaultStp(symbol, self.default_stp.clone()))?,
            max_open_orders: self.max_open_orders,
            advanced: self.advanced,
            fees,
        };
        cfg.validate().map_err(SpecError::Pair)?;
        Ok(cfg)
    }
}

/// The highest price on `tick` at which `max_qty` is worth at most
/// [`MAX_VALUE`] price units.
fn widest_max_price(tick: Price, max_qty: Qty, qty_scale: u8) -> Price {
    let cap = u128::from(MAX_VALUE);
    let by_value = cap * pow10(qty_scale) / u128::from(max_qty.0.max(1));
    let p = u64::try_from(by_value.min(cap)).unwrap_or(MAX_VALUE);
    Price(p - p % tick.0.max(1))
}
