//! Snapshots: the whole state as canonical bytes. The state hash is FNV-1a
//! of these bytes, so two shards with the same hash hold the same state.

use std::fmt;

use crate::Shard;
use crate::shard::State;

/// The format version, the first byte of every snapshot.
/// Version 2: balances no longer carry a debt, which no input can cause.
/// Version 3: assets count in the finest unit of their pairs (each pair
/// keeps its units), and open orders are indexed by client order id.
/// Version 4: holds name their order list and whether they are conditional,
/// and the order lists (an OCO's one hold) are kept.
/// Version 5: each pair carries the fee rates new orders are placed with
/// (an operator may change them at runtime).
pub const SNAPSHOT_VERSION: u8 = 5;

/// The most bytes a restore decodes: a length prefix in damaged bytes cannot
/// make it allocate more. Far above a shard of millions of accounts.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// Snapshot bytes that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Another format version (or no bytes).
    UnsupportedVersion(Option<u8>),
    /// The bytes do not decode to a state, or not in canonical form.
    Malformed(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::UnsupportedVersion(v) => write!(f, "unsupported snapshot version {v:?}"),
            SnapshotError::Malformed(m) => write!(f, "malformed snapshot: {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl Shard {
    /// The state as bytes: a version byte, then bincode of ordered maps.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_VERSION];
        // Encoding plain data into a Vec cannot fail; if a serde impl ever
        // did, the truncated bytes make restore fail loudly.
        if let Err(e) = bincode::serde::encode_into_std_write(
            &self.state,
            &mut out,
            bincode::config::standard(),
        ) {
            debug_assert!(false, "snapshot encoding failed: {e}");
            out.truncate(1);
        }
        out
    }

    /// Rebuilds a shard from [`Shard::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Shard, SnapshotError> {
        match bytes.first() {
            Some(&SNAPSHOT_VERSION) => {}
            other => return Err(SnapshotError::UnsupportedVersion(other.copied())),
        }
        let (state, used): (State, usize) = bincode::serde::decode_from_slice(
            &bytes[1..],
            bincode::config::standard().with_limit::<MAX_SNAPSHOT_BYTES>(),
        )
        .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if used != bytes.len() - 1 {
            return Err(SnapshotError::Malformed("trailing bytes".into()));
        }
        // Holds and lists name their pair by index: one that names no pair
        // would be read out of bounds by the audit and the settlement.
        let pairs = state.pairs.len();
        let keys = state.holds.keys().chain(state.lists.keys());
        if let Some((pi, id)) = keys.into_iter().find(|(pi, _)| usize::from(*pi) >= pairs) {
            return Err(SnapshotError::Malformed(format!(
                "order {id} names pair index {pi} of {pairs}"
            )));
        }
        let shard = Shard { state };
        // One state, one encoding: the hash must not depend on how it was written.
        if shard.snapshot() != bytes {
            return Err(SnapshotError::Malformed("not in canonical form".into()));
        }
        Ok(shard)
    }

    /// FNV-1a of the snapshot bytes: stable across runs and processes.
    pub fn state_hash(&self) -> u64 {
        proto::fnv1a(&self.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use proto::{ListKind, OrderId, PairConfig, Side, Symbol, UserId};

    use super::*;
    use crate::types::ListHold;

    #[test]
    fn a_list_naming_no_pair_is_refused_not_read_out_of_bounds() {
        let pair = PairConfig::simple(Symbol::new("BTC-EUR").expect("valid"));
        let mut shard = Shard::new(&[pair]).expect("valid pair");
        let list = ListHold {
            user: UserId(1),
            kind: ListKind::Oco,
            side: Side::Sell,
            orders: [OrderId(2), OrderId(3)],
            amount: 0,
        };
        shard.state.lists.insert((0, OrderId(1)), list.clone());
        assert!(Shard::restore(&shard.snapshot()).is_ok());
        shard.state.lists.insert((7, OrderId(1)), list);
        assert!(matches!(
            Shard::restore(&shard.snapshot()),
            Err(SnapshotError::Malformed(m)) if m.contains("pair index 7")
        ));
    }
}
