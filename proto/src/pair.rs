//! A pair's trading rules. Shared by the engine (which enforces them) and the
//! API edge (which parses decimals at the pair's scales and publishes them).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    CommandKind, MAX_SCALE, MAX_VALUE, Price, Qty, QuoteQty, RejectCode, StpMode, Symbol, pow10,
};

/// The rules of one trading pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    /// The pair, e.g. `BTC-EUR`.
    pub symbol: Symbol,
    /// Decimals of a price (and of a quote amount): 2 means prices are in cents.
    pub price_scale: u8,
    /// Decimals of a base quantity: 8 means quantities are in satoshis.
    pub qty_scale: u8,
    /// Every price is a multiple of this (in price units).
    pub tick_size: Price,
    /// Every quantity is a multiple of this (in quantity units).
    pub lot_size: Qty,
    /// Smallest order quantity.
    pub min_qty: Qty,
    /// Largest order quantity.
    pub max_qty: Qty,
    /// Largest limit price.
    pub max_price: Price,
    /// Smallest order value, price times quantity, in price units; also the
    /// smallest quote amount of a market buy by quote.
    pub min_notional: QuoteQty,
    /// Largest order value of a limit order, and largest quote amount of a
    /// market buy by quote, in price units.
    pub max_notional: QuoteQty,
    /// Self-trade prevention when an order does not choose.
    pub default_stp: StpMode,
    /// Most open orders the book holds; further resting orders are rejected.
    pub max_open_orders: u32,
    /// Which advanced order types the pair takes (all unless configured).
    #[serde(default)]
    pub advanced: AdvancedOrders,
    /// The fee rates an order placed now is charged, for its whole life
    /// (when the exchange keeps accounts).
    #[serde(default)]
    pub fees: Fees,
}

/// An order's fee rates in basis points of the trade's value, paid in the
/// quote asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fees {
    /// Charged when the order rests and is hit. At most `taker_bps`.
    pub maker_bps: u16,
    /// Charged when the order takes liquidity. At most 10,000.
    pub taker_bps: u16,
}

impl Fees {
    /// No fees.
    pub const ZERO: Fees = Fees {
        maker_bps: 0,
        taker_bps: 0,
    };

    /// Whether the rates can be charged: the maker rate at most the taker
    /// rate, which is at most the whole value. A limit buy's hold covers its
    /// fills only so (it reserves the taker fee).
    pub fn usable(self) -> bool {
        self.maker_bps <= self.taker_bps && self.taker_bps <= 10_000
    }
}

/// The advanced order types a pair allows, as Binance's `exchangeInfo`
/// lists them per symbol (`orderTypes`, `allowTrailingStop`,
/// `icebergAllowed`, `ocoAllowed`, `otoAllowed`). Plain limit, limit maker
/// and market orders are always allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvancedOrders {
    /// `STOP_LOSS(_LIMIT)` and `TAKE_PROFIT(_LIMIT)`.
    pub conditional: bool,
    /// `trailingDelta` on conditional orders.
    pub trailing: bool,
    /// `icebergQty` on limit orders.
    pub iceberg: bool,
    /// OCO and OTO order lists.
    pub lists: bool,
    /// `GTD` time in force.
    pub good_till_date: bool,
}

impl AdvancedOrders {
    /// Every advanced order type allowed.
    pub const ALL: AdvancedOrders = AdvancedOrders {
        conditional: true,
        trailing: true,
        iceberg: true,
        lists: true,
        good_till_date: true,
    };
}

impl Default for AdvancedOrders {
    fn default() -> Self {
        AdvancedOrders::ALL
    }
}

/// A partial change of a pair's [`AdvancedOrders`]: each flag named is set,
/// each left `None` keeps its value. Merged by the book in log order (not by
/// whoever sent it), so two changes of different flags both hold whatever
/// order they land in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvancedChange {
    /// See [`AdvancedOrders::conditional`].
    pub conditional: Option<bool>,
    /// See [`AdvancedOrders::trailing`].
    pub trailing: Option<bool>,
    /// See [`AdvancedOrders::iceberg`].
    pub iceberg: Option<bool>,
    /// See [`AdvancedOrders::lists`].
    pub lists: Option<bool>,
    /// See [`AdvancedOrders::good_till_date`].
    pub good_till_date: Option<bool>,
}

impl AdvancedChange {
    /// A change that sets every flag to `a`'s.
    pub fn all(a: AdvancedOrders) -> Self {
        AdvancedChange {
            conditional: Some(a.conditional),
            trailing: Some(a.trailing),
            iceberg: Some(a.iceberg),
            lists: Some(a.lists),
            good_till_date: Some(a.good_till_date),
        }
    }

    /// `a` with the flags this change names set.
    pub fn merged(&self, a: AdvancedOrders) -> AdvancedOrders {
        AdvancedOrders {
            conditional: self.conditional.unwrap_or(a.conditional),
            trailing: self.trailing.unwrap_or(a.trailing),
            iceberg: self.iceberg.unwrap_or(a.iceberg),
            lists: self.lists.unwrap_or(a.lists),
            good_till_date: self.good_till_date.unwrap_or(a.good_till_date),
        }
    }
}

/// Whether a pair trades, by Binance's symbol status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TradingStatus {
    /// `TRADING`: every command is taken.
    #[default]
    Trading,
    /// `HALT`: only cancels are taken (by id, client id, list, all).
    Halt,
    /// `BREAK`: no trading command is taken, cancels included.
    Break,
}

impl TradingStatus {
    /// Binance's name: `TRADING`, `HALT` or `BREAK`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradingStatus::Trading => "TRADING",
            TradingStatus::Halt => "HALT",
            TradingStatus::Break => "BREAK",
        }
    }

    /// The refusal a command of `kind` gets in this status, if any: in
    /// `HALT` everything but cancels (by id, client id, list or all), in
    /// `BREAK` every trading command; the passing of time and an
    /// operator's change always pass. The book applies it; a gateway checks
    /// it before logging a command (so that an ACK never says "accepted"
    /// for an order the book will refuse).
    pub fn refusal(self, kind: CommandKind) -> Option<RejectCode> {
        use CommandKind as K;
        let cancel = matches!(kind, K::Cancel | K::CancelAll | K::CancelList);
        let always = matches!(kind, K::AdvanceTime | K::ChangePair);
        match self {
            TradingStatus::Trading => None,
            TradingStatus::Halt if cancel || always => None,
            TradingStatus::Halt => Some(RejectCode::PairHalted),
            TradingStatus::Break if always => None,
            TradingStatus::Break => Some(RejectCode::PairBreak),
        }
    }

    /// The status a name stands for; exact, case-sensitive.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "TRADING" => Some(TradingStatus::Trading),
            "HALT" => Some(TradingStatus::Halt),
            "BREAK" => Some(TradingStatus::Break),
            _ => None,
        }
    }
}

/// A partial change of a pair's rules and status, applied by its book in
/// log order (see `CommandBody::ChangePair`). Every field left `None` keeps
/// its value. The symbol and the scales are not here: they never change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairChange {
    /// The new trading status.
    pub status: Option<TradingStatus>,
    /// See [`PairConfig::tick_size`].
    pub tick_size: Option<Price>,
    /// See [`PairConfig::lot_size`].
    pub lot_size: Option<Qty>,
    /// See [`PairConfig::min_qty`].
    pub min_qty: Option<Qty>,
    /// See [`PairConfig::max_qty`].
    pub max_qty: Option<Qty>,
    /// See [`PairConfig::max_price`].
    pub max_price: Option<Price>,
    /// See [`PairConfig::min_notional`].
    pub min_notional: Option<QuoteQty>,
    /// See [`PairConfig::max_notional`].
    pub max_notional: Option<QuoteQty>,
    /// See [`PairConfig::max_open_orders`].
    pub max_open_orders: Option<u32>,
    /// See [`PairConfig::default_stp`].
    pub default_stp: Option<StpMode>,
    /// See [`PairConfig::advanced`]: only the flags named change.
    pub advanced: AdvancedChange,
    /// See [`PairConfig::fees`]: orders placed before keep their rates.
    /// Each rate is merged by the book, as the advanced flags are.
    pub maker_fee_bps: Option<u16>,
    /// See [`PairChange::maker_fee_bps`].
    pub taker_fee_bps: Option<u16>,
}

impl PairChange {
    /// True when the change names nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == PairChange::default()
    }

    /// `config` with this change's rules merged in (not validated).
    pub fn merged(&self, config: &PairConfig) -> PairConfig {
        PairConfig {
            tick_size: self.tick_size.unwrap_or(config.tick_size),
            lot_size: self.lot_size.unwrap_or(config.lot_size),
            min_qty: self.min_qty.unwrap_or(config.min_qty),
            max_qty: self.max_qty.unwrap_or(config.max_qty),
            max_price: self.max_price.unwrap_or(config.max_price),
            min_notional: self.min_notional.unwrap_or(config.min_notional),
            max_notional: self.max_notional.unwrap_or(config.max_notional),
            max_open_orders: self.max_open_orders.unwrap_or(config.max_open_orders),
            default_stp: self.default_stp.unwrap_or(config.default_stp),
            advanced: self.advanced.merged(config.advanced),
            fees: Fees {
                maker_bps: self.maker_fee_bps.unwrap_or(config.fees.maker_bps),
                taker_bps: self.taker_fee_bps.unwrap_or(config.fees.taker_bps),
            },
            ..*config
        }
    }
}

/// A [`PairConfig`] value that cannot work, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairConfigError(pub String);

impl fmt::Display for PairConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PairConfigError {}

impl PairConfig {
    /// Checks that a pair's scales are ones its decimals can be read at
    /// (before anything is read at them).
    pub fn check_scales(symbol: Symbol, price: u8, qty: u8) -> Result<(), PairConfigError> {
        if price > MAX_SCALE || qty > MAX_SCALE {
            return Err(PairConfigError(format!(
                "pair {symbol}: price_scale {price} and qty_scale {qty} must be at most {MAX_SCALE}"
            )));
        }
        Ok(())
    }

    /// Checks that the rules are usable together.
    pub fn validate(&self) -> Result<(), PairConfigError> {
        let s = self.symbol;
        let bad = |msg: String| Err(PairConfigError(format!("pair {s}: {msg}")));
        // Decimals, as the config file and the admin API write them.
        let (p, q) = (self.price_scale, self.qty_scale);
        PairConfig::check_scales(s, p, q)?;
        if self.tick_size.is_zero() {
            return bad("tick_size must be greater than zero".into());
        }
        if self.lot_size.is_zero() {
            return bad("lot_size must be greater than zero".into());
        }
        if self.min_qty < self.lot_size || !self.min_qty.0.is_multiple_of(self.lot_size.0) {
            return bad(format!(
                "min_qty {} must be a positive multiple of lot_size {}",
                self.min_qty.to_decimal(q),
                self.lot_size.to_decimal(q)
            ));
        }
        if self.max_qty < self.min_qty {
            return bad(format!(
                "max_qty {} is below min_qty {}",
                self.max_qty.to_decimal(q),
                self.min_qty.to_decimal(q)
            ));
        }
        if self.max_price < self.tick_size {
            return bad(format!(
                "max_price {} is below tick_size {}",
                self.max_price.to_decimal(p),
                self.tick_size.to_decimal(p)
            ));
        }
        if self.max_notional.is_zero() || self.max_notional < self.min_notional {
            return bad(format!(
                "max_notional {} must be positive and at least min_notional {}",
                self.max_notional.to_decimal(p),
                self.min_notional.to_decimal(p)
            ));
        }
        if let Some(msg) = self.value_range_fault() {
            return bad(msg);
        }
        if self.max_open_orders == 0 {
            return bad("max_open_orders must be greater than zero".into());
        }
        if !self.fees.usable() {
            return bad(format!(
                "maker_fee_bps {} must be at most taker_fee_bps {}, and taker_fee_bps at most 10000",
                self.fees.maker_bps, self.fees.taker_bps
            ));
        }
        // Level and book totals are u64: a full book of maximal orders must fit.
        if u128::from(self.max_qty.0) * u128::from(self.max_open_orders) > u128::from(u64::MAX) {
            return bad(format!(
                "max_qty {} times max_open_orders {} exceeds 2^64 units",
                self.max_qty.to_decimal(self.qty_scale),
                self.max_open_orders
            ));
        }
        Ok(())
    }

    /// Why some value this pair can produce would exceed [`MAX_VALUE`], if
    /// one could. An order's filled quote value is at most its quantity
    /// times the highest price on the book, so bounding `max_price` times
    /// `max_qty` bounds every fill, every order's cumulative quote amount and
    /// every stored row.
    fn value_range_fault(&self) -> Option<String> {
        let max = u128::from(MAX_VALUE);
        for (name, v) in [
            ("max_qty", self.max_qty.0),
            ("max_price", self.max_price.0),
            ("max_notional", self.max_notional.0),
        ] {
            if u128::from(v) > max {
                return Some(format!("{name} {v} exceeds {MAX_VALUE}"));
            }
        }
        let largest =
            u128::from(self.max_price.0) * u128::from(self.max_qty.0) / pow10(self.qty_scale);
        (largest > max).then(|| {
            format!(
                "max_price {} times max_qty {} is {largest} price units, above {MAX_VALUE}",
                self.max_price, self.max_qty
            )
        })
    }

    /// A permissive config for tests and examples: scales 0, tick and lot 1.
    pub fn simple(symbol: Symbol) -> Self {
        PairConfig {
            symbol,
            price_scale: 0,
            qty_scale: 0,
            tick_size: Price(1),
            lot_size: Qty(1),
            min_qty: Qty(1),
            max_qty: Qty(1_000_000_000_000),
            max_price: Price(1_000_000),
            min_notional: QuoteQty(0),
            max_notional: QuoteQty(MAX_VALUE),
            default_stp: StpMode::None,
            max_open_orders: 1_000_000,
            advanced: AdvancedOrders::ALL,
            fees: Fees::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_merges_only_what_it_names_and_statuses_keep_binances_names() {
        let base = PairConfig::simple(Symbol::new("BTC-EUR").unwrap());
        assert_eq!(PairChange::default().merged(&base), base);
        assert!(PairChange::default().is_empty());
        let change = PairChange {
            tick_size: Some(Price(5)),
            max_open_orders: Some(7),
            ..PairChange::default()
        };
        assert!(!change.is_empty());
        let merged = change.merged(&base);
        assert_eq!((merged.tick_size, merged.max_open_orders), (Price(5), 7));
        assert_eq!(
            PairConfig {
                tick_size: base.tick_size,
                max_open_orders: base.max_open_orders,
                ..merged
            },
            base
        );
        for s in [
            TradingStatus::Trading,
            TradingStatus::Halt,
            TradingStatus::Break,
        ] {
            assert_eq!(TradingStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(TradingStatus::from_name("halt"), None);
    }

    #[test]
    fn a_closed_market_refuses_by_the_kind_of_command() {
        use CommandKind as K;
        let all = [
            K::NewOrder,
            K::Cancel,
            K::Amend,
            K::CancelAll,
            K::NewOrderList,
            K::CancelList,
            K::AdvanceTime,
            K::ChangePair,
        ];
        let refused = |s: TradingStatus| -> Vec<_> {
            all.into_iter()
                .filter_map(|k| s.refusal(k).map(|c| (k, c)))
                .collect()
        };
        assert_eq!(refused(TradingStatus::Trading), []);
        let halted = RejectCode::PairHalted;
        assert_eq!(
            refused(TradingStatus::Halt),
            [
                (K::NewOrder, halted),
                (K::Amend, halted),
                (K::NewOrderList, halted)
            ]
        );
        let broken = RejectCode::PairBreak;
        assert_eq!(
            refused(TradingStatus::Break),
            [
                (K::NewOrder, broken),
                (K::Cancel, broken),
                (K::Amend, broken),
                (K::CancelAll, broken),
                (K::NewOrderList, broken),
                (K::CancelList, broken)
            ]
        );
    }

    #[test]
    fn an_advanced_change_sets_only_the_flags_it_names() {
        let base = PairConfig::simple(Symbol::new("BTC-EUR").unwrap());
        let change = PairChange {
            advanced: AdvancedChange {
                iceberg: Some(false),
                ..AdvancedChange::default()
            },
            ..PairChange::default()
        };
        assert!(!change.is_empty());
        let merged = change.merged(&base);
        assert_eq!(
            merged.advanced,
            AdvancedOrders {
                iceberg: false,
                ..AdvancedOrders::ALL
            }
        );
        // Re-enabling one flag leaves the others as they are.
        let off = AdvancedOrders {
            conditional: false,
            iceberg: false,
            ..AdvancedOrders::ALL
        };
        let on = AdvancedChange {
            iceberg: Some(true),
            ..AdvancedChange::default()
        };
        let back = on.merged(off);
        assert_eq!((back.iceberg, back.conditional), (true, false));
        assert_eq!(AdvancedChange::all(off).merged(AdvancedOrders::ALL), off);
        // The admin body's JSON: the flags left out are `None`.
        let parsed: AdvancedChange = serde_json::from_str(r#"{"lists":false}"#).unwrap();
        assert_eq!(
            parsed,
            AdvancedChange {
                lists: Some(false),
                ..AdvancedChange::default()
            }
        );
    }

    #[test]
    fn validate_names_the_bad_value() {
        let ok = PairConfig::simple(Symbol::new("BTC-EUR").unwrap());
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(PairConfig, &str)> = vec![
            (
                PairConfig {
                    tick_size: Price(0),
                    ..ok
                },
                "tick_size",
            ),
            (
                PairConfig {
                    lot_size: Qty(0),
                    ..ok
                },
                "lot_size",
            ),
            (
                PairConfig {
                    lot_size: Qty(3),
                    min_qty: Qty(4),
                    ..ok
                },
                "min_qty 4",
            ),
            (
                PairConfig {
                    max_qty: Qty(0),
                    ..ok
                },
                "max_qty 0",
            ),
            (
                PairConfig {
                    price_scale: 19,
                    ..ok
                },
                "price_scale 19",
            ),
            (
                PairConfig {
                    max_open_orders: 0,
                    ..ok
                },
                "max_open_orders",
            ),
            (
                PairConfig {
                    max_price: Price(0),
                    ..ok
                },
                "max_price 0",
            ),
            (
                PairConfig {
                    max_notional: QuoteQty(0),
                    ..ok
                },
                "max_notional 0",
            ),
            (
                PairConfig {
                    max_price: Price(MAX_VALUE / 1_000_000_000_000 + 1),
                    ..ok
                },
                "times max_qty",
            ),
            (
                PairConfig {
                    max_notional: QuoteQty(MAX_VALUE + 1),
                    ..ok
                },
                "max_notional 9223372036854775808 exceeds",
            ),
        ];
        for (cfg, needle) in cases {
            let err = cfg.validate().unwrap_err().0;
            assert!(err.contains(needle) && err.contains("BTC-EUR"), "{err}");
        }
    }
}
