//! The matching core: one [`OrderBook`] per pair, a pure deterministic state
//! machine. A command goes in, the events it causes come out.
//!
//! Architecture Invariant: no I/O, no clock, no randomness, no dependency on
//! tokio, rdkafka, sqlx, axum or prometheus, and no output that depends on
//! hash-map iteration order. Replaying the same commands from the same
//! snapshot yields byte-identical events and the same state hash.

pub(crate) mod book;
mod hash;
mod inconsistency;
mod slab;
mod snapshot;
pub mod validate;

pub use book::{
    Depth, DepthLevel, Envelope, OrderBook, OrderList, RestingOrder, WaitFor, WaitingOrder,
};
pub use inconsistency::Inconsistency;
pub use snapshot::{MAX_SNAPSHOT_BYTES, SNAPSHOT_VERSION, SnapshotError};
