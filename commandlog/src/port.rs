//! The log interface and what travels through it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engine::Depth;
use proto::{Command, Event, PairConfig, Symbol};
use tokio::sync::oneshot;

use crate::status::PairStatus;

/// What one command caused: all its events, in seq order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The pair.
    pub pair: Symbol,
    /// The command's position in the pair's command log.
    pub position: u64,
    /// The events, contiguous in seq.
    pub events: Vec<Event>,
}

/// Sees every pair's state after recovery and then every event record, in
/// order per pair, on the task that delivers them. Must be quick and must
/// not block.
pub trait Observer: Send + Sync + 'static {
    /// The pair's book after recovery, before any new command.
    fn on_start(&self, pair: &PairConfig, depth: Depth);
    /// One command's events.
    fn on_record(&self, record: &Arc<EventRecord>);
}

/// Where the gateway sends commands: the embedded journal or, in
/// distributed mode, the Kafka command log.
pub trait CommandLog: Send + Sync + fmt::Debug + 'static {
    /// Appends `cmd`; returns once it is durably in the log. With
    /// `want_outcome`, the result also carries a receiver of its events.
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_>;
    /// A pair's live counters.
    fn pair(&self, pair: Symbol) -> Option<&Arc<PairStatus>>;
    /// Every pair's live counters.
    fn pairs(&self) -> Vec<Arc<PairStatus>>;
}

/// What [`CommandLog::submit`] returns.
pub type SubmitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Submitted, SubmitError>> + Send + 'a>>;

/// A command in the log.
#[derive(Debug)]
pub struct Submitted {
    /// Its position in the pair's command log.
    pub position: u64,
    /// Its events, when they were asked for.
    pub outcome: Option<oneshot::Receiver<Arc<EventRecord>>>,
}

/// Why a command was not logged. Nothing was written in every case, so the
/// sender may retry it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The pair is not traded here.
    UnknownPair,
    /// The pair's actor stopped on a fault.
    Halted,
    /// The log is shutting down.
    ShuttingDown,
    /// The log could not be written (the message says why).
    Store(String),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::UnknownPair => f.write_str("unknown pair"),
            SubmitError::Halted => f.write_str("pair halted"),
            SubmitError::ShuttingDown => f.write_str("shutting down"),
            SubmitError::Store(e) => write!(f, "command log write failed: {e}"),
        }
    }
}

impl std::error::Error for SubmitError {}
