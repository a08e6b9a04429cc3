//! The embedded risk stage: one accounts shard, the single writer of every
//! user's balances.

use std::collections::HashMap;

use accounts::Fees;
use proto::Symbol;

/// What the risk stage needs besides the pairs.
#[derive(Debug, Clone)]
pub struct RiskSettings {
    /// Each pair's fee rates, charged to the orders placed from now on.
    pub fees: HashMap<Symbol, Fees>,
    /// Shard inputs between snapshots.
    pub snapshot_every: u64,
}
