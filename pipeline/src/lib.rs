//! What both modes run behind the command log (see `commandlog`): one
//! pipeline, two backends (`runtime` embedded, `cluster` over Kafka).
//!
//! ```text
//! commands --> actor (one task per pair: restore, apply, snapshot) --> EventSink --> persister Source --> Persister --> store
//!                                                                        embedded: dispatcher (observers, waiters) -> queue
//!                                                                        Kafka:    emitter (events topic)          -> topic
//! ```
//!
//! Architecture Invariant: an actor is its book's only writer; it restores
//! from the pair's latest snapshot only when the snapshot matches its state
//! hash, and emits each command's events in order before any snapshot
//! covering them.
//!
//! Architecture Invariant: the persister stores a pair's events in seq
//! order, each once (`(pair, seq)` drops duplicates), and a pair whose rows
//! the store refuses is halted, never skipped over: the store holds no gap.

mod actor;
mod config;
mod metrics;
mod persister;
pub mod risk;
mod sink;
mod ticks;

pub use actor::{
    Output, RestoreError, Restored, off_worker, restore_book, snapshot_row, spawn as spawn_actor,
};
pub use config::{ConfigError, RuntimeConfig};
pub use metrics::PipelineMetrics;
pub use persister::{
    EventLog, Persister, RETRY_DELAY, Source, Stored, store_batch, write_retrying,
};
pub use risk::{RiskRun, RiskSettings, RiskStage};
pub use sink::{EventSink, drain};
pub use ticks::{TIME_USER, Ticks, advance_time};
