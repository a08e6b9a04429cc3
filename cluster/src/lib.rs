//! Distributed mode: the command log and the event log in Kafka, and the
//! three roles around them.
//!
//! ```text
//! gateways --(orders topic, partition = pair)--> engines --(events topic, same partition)--> persister --> Postgres
//!    ^                                                         |
//!    +------------------- events (RESULT answers, streams) -----+
//! ```
//!
//! Architecture Invariant: a command's position in its pair's log is
//! derived from its record's Kafka offset and its index in the record
//! ([`position`]), the same in every process. A snapshot records the
//! position it covers; an engine that restores it skips every command at or
//! below it, so replaying from any snapshot, or from offset zero, rebuilds
//! the same book.
//!
//! Architecture Invariant: every consumer of the events topic de-duplicates
//! by `(pair, seq)`. An engine that takes over a pair replays from the last
//! snapshot and may emit again what its predecessor emitted; the engine is
//! deterministic, so those records are identical and dropped.

mod actors;
mod commands;
mod emitter;
mod engine;
mod error;
mod fence;
mod kafka;
mod leases;
mod listings;
mod log;
mod ownership;
mod persister;
mod risk;
mod topics;

pub use commandlog::{EventRecord, Waiters};
pub use commands::{CommandWriter, RUN_MAX, position, record_offset, records_through};
pub use engine::{Engine, EngineParts, run_engine};
pub use error::ClusterError;
pub use kafka::{EventBatch, KafkaConfig, Partitions};
pub use listings::{Listed, adopt_listings, read_listing};
pub use log::{KafkaLog, start_kafka_log};
pub use ownership::EngineConfig;
pub use persister::run_persister;
pub use risk::{
    Decision, DecisionBatch, Forward, Forwards, GatewayAccounts, KafkaRiskLogs, Outcome,
    RISK_HEADER, RequestId, RiskAnswers, RiskCore, RiskInput, RiskLogs, RiskParts, RiskRequest,
    RiskRole, Route, ShardId, ShardRole, SnapshotError, Step, Tail, decode_tag, encode_tag,
    found_in, merge_audits, moved, route, run_risk, settlement, snapshot_balances, submitted,
};
pub use topics::{create_topics, read_log, replay_log, replay_risk};
