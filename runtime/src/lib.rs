//! Runs the matching core in embedded mode: a command log journaled in
//! append-only files, one single-writer actor thread per pair, a dispatcher
//! that fans the actors' events out to observers and waiters, and a batching
//! persister.
//!
//! ```text
//! submit --> journal writer --(bounded, per pair)--> actor --(bounded)--> dispatcher --(bounded)--> persister
//!            (group commit)                          (book)               observers, RESULT waiters
//! ```
//!
//! Architecture Invariant: a command is acknowledged only after the write
//! that journals it returned, and it reaches its actor only after that. Replaying the journal from a snapshot's position rebuilds the
//! book exactly (the engine is deterministic), so a restart loses nothing
//! that was acknowledged.
//!
//! Architecture Invariant: every queue is bounded. A slow persister stalls
//! the dispatcher, then the actors, then the journal writer; the gateway sees
//! the growing lag and sheds new orders before anything grows without bound.

mod actor;
mod exchange;
mod journal;
mod metrics;
mod persister;

pub use actor::{Output, snapshot_row, spawn as spawn_actor};
pub use exchange::{Exchange, RuntimeConfig, StartError, restore_book};
pub use journal::{JournalError, scan_segment};
pub use metrics::RuntimeMetrics;
pub use persister::store_batch;
