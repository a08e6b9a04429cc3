//! The log interface and what travels through it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use accounts::{AssetId, Balance, RiskCode};
use engine::Depth;
use proto::{Command, Event, PairConfig, Symbol, UserId};
use tokio::sync::oneshot;

use crate::accounts::{AccountUpdate, Accounts};
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
    /// Every account's balances after recovery, before any new input
    /// (only where there is a risk stage).
    fn on_accounts_start(&self, _balances: &[(UserId, AssetId, Balance)]) {}
    /// One user's balances after a change the risk stage logged. For a
    /// command's own changes this comes before its record's
    /// [`Observer::on_record`] returns to the request waiting for it.
    fn on_account(&self, _update: &Arc<AccountUpdate>) {}
}

/// Where the gateway sends commands: the embedded journal or, in
/// distributed mode, the Kafka command log.
pub trait CommandLog: Send + Sync + fmt::Debug + 'static {
    /// Appends `cmd`; returns once it is durably in the log. With
    /// `want_outcome`, the result also carries a receiver of its events.
    fn submit(&self, cmd: Command, want_outcome: bool) -> SubmitFuture<'_>;
    /// A pair's live counters.
    fn pair(&self, pair: Symbol) -> Option<Arc<PairStatus>>;
    /// Every pair's live counters.
    fn pairs(&self) -> Vec<Arc<PairStatus>>;
    /// The risk stage, when accounts are enabled. Without one, orders are
    /// not checked for funds.
    fn accounts(&self) -> Option<&dyn Accounts> {
        None
    }
    /// Lists a new pair: once this returns, the pair takes commands and
    /// every later start lists it again. Observers see it first through
    /// [`Observer::on_start`] with an empty book.
    fn list_pair(&self, _listing: Listing) -> ListFuture<'_> {
        Box::pin(async { Err(ListError::Unsupported) })
    }
}

/// A pair to list on a running exchange.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Its rules and fee rates (checked).
    pub config: PairConfig,
    /// Its table as the config file would give it (JSON of
    /// [`proto::PairSpec`]): what a start reads back.
    pub spec: String,
}

/// What [`CommandLog::list_pair`] returns.
pub type ListFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<PairStatus>, ListError>> + Send + 'a>>;

/// Why a pair was not listed. Nothing was listed in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// The pair, or one with its name once the dash is dropped, is traded
    /// here already.
    Exists,
    /// The accounts cannot hold it (the message says why).
    Refused(String),
    /// The store could not record it.
    Store(String),
    /// This backend lists pairs only at start, from its config.
    Unsupported,
    /// The log is shutting down.
    ShuttingDown,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Exists => f.write_str("the pair is listed already"),
            ListError::Refused(why) => f.write_str(why),
            ListError::Store(e) => write!(f, "the listing could not be stored: {e}"),
            ListError::Unsupported => {
                f.write_str("this exchange lists pairs only from its config file")
            }
            ListError::ShuttingDown => f.write_str("shutting down"),
        }
    }
}

impl std::error::Error for ListError {}

/// What [`CommandLog::submit`] (and the port's other writes) return.
pub type SubmitFuture<'a, T = Submitted> =
    Pin<Box<dyn Future<Output = Result<T, SubmitError>> + Send + 'a>>;

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
    /// The risk stage refused it (for an order: its worst case is not
    /// covered by the user's free balance, or the order is not one the
    /// shard can hold funds for).
    Refused(RiskCode),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::UnknownPair => f.write_str("unknown pair"),
            SubmitError::Halted => f.write_str("pair halted"),
            SubmitError::ShuttingDown => f.write_str("shutting down"),
            SubmitError::Store(e) => write!(f, "command log write failed: {e}"),
            SubmitError::Refused(code) => write!(f, "refused by the risk stage: {code:?}"),
        }
    }
}

impl std::error::Error for SubmitError {}
