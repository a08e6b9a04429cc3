//! What every stream message shares: price levels as decimal strings and
//! times in milliseconds. The messages themselves are in `public.rs`
//! (market streams), `reports.rs` (execution reports) and `account.rs`
//! (balances).

use proto::{PairConfig, Price, Qty};

/// `[["price", "qty"], ...]` at the pair's scales.
pub(crate) type Levels = Vec<[String; 2]>;

/// Price levels as decimal strings at the pair's scales.
pub(crate) fn levels(levels: &[(Price, Qty)], cfg: &PairConfig) -> Levels {
    levels
        .iter()
        .map(|(p, q)| [p.to_decimal(cfg.price_scale), q.to_decimal(cfg.qty_scale)])
        .collect()
}

/// Milliseconds since the Unix epoch, as the messages carry time.
pub(crate) fn ms(ts: proto::Timestamp) -> u64 {
    ts.0 / 1_000_000
}
