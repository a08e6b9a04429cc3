//! Snapshots: a book's whole state as bytes, in canonical order (bids best
//! first, then asks best first, each level in time priority), so two books
//! in the same state give the same bytes whatever their memory layout. The
//! state hash is a hash of those bytes.

use std::fmt;

use proto::{PairConfig, Price, Seq, Symbol, TradingStatus};
use serde::{Deserialize, Serialize};

use crate::book::restore::Parts;
use crate::book::{Envelope, OrderBook, OrderList, RestingOrder, WaitingOrder};
use crate::inconsistency::Inconsistency;

/// First byte of a snapshot; bumped on any incompatible change.
pub const SNAPSHOT_VERSION: u8 = 4;

/// Largest snapshot accepted when restoring (a full book of a million orders
/// is about 60 MiB).
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    pair: Symbol,
    /// The rules in force: an operator may have changed them since the
    /// config file was read, and the log, not the file, is the truth.
    config: PairConfig,
    status: TradingStatus,
    envelope: Envelope,
    last_seq: Seq,
    placements: u64,
    last_price: Option<Price>,
    orders: Vec<RestingOrder>,
    waiting: Vec<WaitingOrder>,
    lists: Vec<OrderList>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The version byte is not [`SNAPSHOT_VERSION`], or there are no bytes.
    UnsupportedVersion(Option<u8>),
    /// Not a valid encoding, or over [`MAX_SNAPSHOT_BYTES`].
    Malformed(String),
    /// A snapshot of another pair.
    WrongPair {
        /// The pair the config is for.
        expected: Symbol,
        /// The pair in the snapshot.
        found: Symbol,
    },
    /// The configured scales differ from the snapshot's: scales never
    /// change (every stored amount is at them).
    ScalesChanged {
        /// The pair.
        pair: Symbol,
    },
    /// Decodes, but is not a consistent book under this config.
    Inconsistent(Inconsistency),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::UnsupportedVersion(v) => write!(f, "unsupported snapshot version {v:?}"),
            SnapshotError::Malformed(e) => write!(f, "malformed snapshot: {e}"),
            SnapshotError::WrongPair { expected, found } => {
                write!(f, "snapshot is of {found}, expected {expected}")
            }
            SnapshotError::ScalesChanged { pair } => write!(
                f,
                "the configured scales of {pair} differ from its snapshot's; scales never change"
            ),
            SnapshotError::Inconsistent(e) => write!(f, "inconsistent snapshot: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_SNAPSHOT_BYTES>()
}

impl OrderBook {
    /// The book's state as bytes (see the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        let parts = self.parts();
        let body = SnapshotBody {
            pair: self.config().symbol,
            config: *self.config(),
            status: self.status(),
            envelope: self.envelope(),
            last_seq: parts.last_seq,
            placements: parts.placements,
            last_price: parts.last_price,
            orders: parts.orders,
            waiting: parts.waiting,
            lists: parts.lists,
        };
        let mut out = vec![SNAPSHOT_VERSION];
        // Writing plain data into a Vec cannot fail; a failure here would be
        // a bug in a serde impl, and an empty tail makes restore fail loudly.
        if let Err(e) = bincode::serde::encode_into_std_write(&body, &mut out, bincode_config()) {
            debug_assert!(false, "snapshot encoding failed: {e}");
            out.truncate(1);
        }
        out
    }

    /// Rebuilds a book from [`OrderBook::snapshot`] bytes. `config` is the
    /// configured pair: its symbol and scales must be the snapshot's; the
    /// rules and status are the snapshot's (changes sequenced in the log
    /// win over the file).
    pub fn restore(config: PairConfig, bytes: &[u8]) -> Result<OrderBook, SnapshotError> {
        match bytes.first() {
            Some(&SNAPSHOT_VERSION) => {}
            other => return Err(SnapshotError::UnsupportedVersion(other.copied())),
        }
        let (body, used): (SnapshotBody, usize) =
            bincode::serde::decode_from_slice(&bytes[1..], bincode_config())
                .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if used != bytes.len() - 1 {
            return Err(SnapshotError::Malformed("trailing bytes".into()));
        }
        if body.pair != config.symbol {
            return Err(SnapshotError::WrongPair {
                expected: config.symbol,
                found: body.pair,
            });
        }
        if (
            body.config.symbol,
            body.config.price_scale,
            body.config.qty_scale,
        ) != (config.symbol, config.price_scale, config.qty_scale)
        {
            return Err(SnapshotError::ScalesChanged {
                pair: config.symbol,
            });
        }
        let parts = Parts {
            status: body.status,
            envelope: body.envelope,
            last_seq: body.last_seq,
            placements: body.placements,
            last_price: body.last_price,
            orders: body.orders,
            waiting: body.waiting,
            lists: body.lists,
        };
        let book =
            OrderBook::from_parts(body.config, &parts).map_err(SnapshotError::Inconsistent)?;
        // One state, one encoding: the state hash is a hash of these bytes,
        // so a snapshot that decodes but is not what the book would write
        // (a varint in a longer form than needed, orders out of canonical
        // order) is refused rather than restored under another hash.
        if book.snapshot() != bytes {
            return Err(SnapshotError::Malformed("not in canonical form".into()));
        }
        Ok(book)
    }

    /// A 64-bit hash of the whole state (FNV-1a over the snapshot bytes):
    /// stable across runs, processes and versions of the same format.
    pub fn state_hash(&self) -> u64 {
        proto::fnv1a(&self.snapshot())
    }
}
