//! What the fuzz targets and the seed writer share: the pairs they run on.

use proto::{PairConfig, Price, Qty, Symbol};

/// The fuzzed server clock in ms (seeds sign their requests at this time).
pub const NOW_MS: u64 = 1_700_000_000_000;

/// The pair the targets use; ticks and lots above 1 so that the rules
/// restore and validation enforce can fail. Built from `simple` so new
/// fields keep their defaults.
pub fn pair() -> PairConfig {
    PairConfig {
        price_scale: 2,
        qty_scale: 4,
        tick_size: Price(5),
        lot_size: Qty(10),
        min_qty: Qty(10),
        max_qty: Qty(1_000_000_000),
        max_open_orders: 1_000,
        ..PairConfig::simple(Symbol::new("BTC-EUR").expect("a valid symbol"))
    }
}
