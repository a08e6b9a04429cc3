//! The embedded backend of the pipeline: a command log journaled in
//! append-only files ([`Exchange`] implements `commandlog::CommandLog`),
//! feeding the `pipeline` crate's actors, whose event sink here is a
//! dispatcher (observers, RESULT waiters) in front of the persister.
//!
//! ```text
//! risk off:
//! submit --> journal writer --(bounded, per pair)--> actor --(bounded)--> dispatcher --(bounded)--> persister --> store
//!            (group commit, file journal)            (book)               observers, RESULT waiters
//!
//! risk on (the writer runs the accounts shard; it also reads the actors' outputs):
//! submit, movements --> journal writer --(bounded, per pair)--> actor
//!                       check + lock, settle          ▲           |
//!                       (group commit: risk run,      └-(bounded)-┘ records, snapshots
//!                        then the pairs' runs)
//!                          | after the commit: the changed balances, then answers to
//!                          | movements and audits and each settled record, in order
//!                          v
//!                       dispatcher --(bounded)--> persister --> store;  shard snapshots --> store
//!                       on_account, answers, on_record, RESULT waiters
//! ```
//!
//! Architecture Invariant (risk on): an order's worst case is locked in the
//! shard in the same group commit that journals it, and a record is handed
//! on only after its settlement is journaled; so a stored pair snapshot
//! never covers an event the risk stream has not settled.
//!
//! Architecture Invariant: a command is acknowledged only after the write
//! that journals it returned, and it reaches its actor only after that.
//! Replaying the journal from a snapshot's position rebuilds the book
//! exactly (the engine is deterministic), so a restart loses nothing that
//! was acknowledged.
//!
//! Architecture Invariant: every queue is bounded. A slow persister stalls
//! the dispatcher, then the actors, then the journal writer; the gateway sees
//! the growing lag and sheds new orders before anything grows without bound.

mod dispatch;
mod error;
mod exchange;
mod journal;
mod listing;
mod recovery;
mod sequencer;
mod writer;

pub use error::StartError;
pub use exchange::Exchange;
pub use journal::{BadRecord, JournalError, scan_segment};
pub use pipeline::RiskSettings;
