//! Amounts of the accounts' scale as decimal strings, and the commission a
//! side of a trade pays: the formula the risk stage settles with
//! (`accounts/src/lib.rs`), so what a trader is shown is what was charged.

use accounts::Fees;
use proto::{PairConfig, Price, Qty};

/// `v` units of `10^-scale` as a decimal with exactly `scale` decimals;
/// `u128` because balances and quote amounts at `price_scale + qty_scale`
/// outgrow `u64`.
pub(crate) fn decimal(v: u128, scale: u8) -> String {
    let digits = v.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = padded.split_at(padded.len() - scale);
    format!("{whole}.{frac}")
}

/// A signed amount (a movement's delta) as a decimal, `-` when negative.
pub(crate) fn signed_decimal(v: i128, scale: u8) -> String {
    let abs = decimal(v.unsigned_abs(), scale);
    if v < 0 { format!("-{abs}") } else { abs }
}

/// `floor(price * qty * bps / 10_000)` in quote units at `price_scale +
/// qty_scale`, exactly and without overflow: `price * qty` fits `u128`,
/// and the product with `bps` is split so that no step passes it.
pub(crate) fn commission(price: Price, qty: Qty, bps: u16) -> u128 {
    let notional = u128::from(price.0) * u128::from(qty.0);
    let bps = u128::from(bps);
    notional / 10_000 * bps + notional % 10_000 * bps / 10_000
}

/// The commission of one side of a trade at `rate` (the side's role's
/// basis points), as the answers show it: at the quote asset's scale, or
/// `"0"` when the exchange charges nothing (accounts disabled, `None`).
pub(crate) fn commission_text(p: &PairConfig, price: Price, qty: Qty, rate: Option<u16>) -> String {
    match rate {
        None => "0".to_string(),
        Some(bps) => decimal(
            commission(price, qty, bps),
            p.price_scale.saturating_add(p.qty_scale),
        ),
    }
}

/// The rate of a side: the maker's or the taker's.
pub(crate) fn rate(fees: Option<Fees>, is_maker: bool) -> Option<u16> {
    fees.map(|f| if is_maker { f.maker_bps } else { f.taker_bps })
}

/// A pair's quote asset: the part of `BASE-QUOTE` after the `-`.
pub(crate) fn quote_asset(p: &PairConfig) -> &str {
    p.symbol.as_str().split_once('-').map_or("", |(_, q)| q)
}

/// Basis points as Binance's rate strings: 10 bps is `"0.00100000"`.
pub(crate) fn rate_text(bps: u16) -> String {
    decimal(u128::from(bps) * 10_000, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal(0, 10), "0.0000000000");
        assert_eq!(decimal(1, 10), "0.0000000001");
        assert_eq!(decimal(12_345, 2), "123.45");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(
            decimal(u128::MAX, 10),
            "34028236692093846346337460743.1768211455"
        );
        assert_eq!(signed_decimal(-1_000, 2), "-10.00");
        assert_eq!(signed_decimal(1_000, 2), "10.00");
        assert_eq!(rate_text(10), "0.00100000");
        assert_eq!(rate_text(10_000), "1.00000000");
        assert_eq!(rate_text(0), "0.00000000");
    }

    #[test]
    fn commission_is_floored_at_tiny_sizes_and_exact_at_huge_ones() {
        let p = PairConfig {
            price_scale: 2,
            qty_scale: 8,
            ..PairConfig::simple(proto::Symbol::new("BTC-EUR").unwrap())
        };
        // 0.01 EUR for 0.00000001 BTC: a notional of 1 unit, fee 0.
        assert_eq!(commission(Price(1), Qty(1), 10), 0);
        assert_eq!(
            commission_text(&p, Price(1), Qty(1), Some(10)),
            "0.0000000000"
        );
        // 9,999 units at 1 bps floor to 0; 10,000 give 1.
        assert_eq!(commission(Price(9_999), Qty(1), 1), 0);
        assert_eq!(commission(Price(10_000), Qty(1), 1), 1);
        // 30,000.00 x 0.2 at 10 bps: 6.00 EUR.
        assert_eq!(
            commission_text(&p, Price(3_000_000), Qty(20_000_000), Some(10)),
            "6.0000000000"
        );
        // The largest values a pair can hold, at 100%: no overflow, exact.
        let (price, qty) = (Price(u64::MAX), Qty(u64::MAX));
        let notional = u128::from(u64::MAX) * u128::from(u64::MAX);
        assert_eq!(commission(price, qty, 10_000), notional);
        assert_eq!(commission(price, qty, 10), notional / 1_000);
        // Where the direct product fits, the split agrees with it.
        let (mid_p, mid_q) = (Price(987_654_321_987), Qty(123_456_789_123));
        let n = u128::from(mid_p.0) * u128::from(mid_q.0);
        assert_eq!(commission(mid_p, mid_q, 7), n * 7 / 10_000);
        assert_eq!(
            commission_text(&p, price, qty, Some(10)),
            decimal(notional / 1_000, 10)
        );
        // Accounts disabled: nothing is charged.
        assert_eq!(commission_text(&p, price, qty, None), "0");
    }
}
