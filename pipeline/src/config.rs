//! The `[runtime]` section: the pipeline's bounds and cadences.

use std::fmt;

use serde::Deserialize;

/// The bounds and cadences of the pipeline (the `[runtime]` section): the
/// actors, their queues and snapshots and the persister in both modes, and
/// the embedded journal's own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Most submissions waiting for the journal writer.
    pub journal_queue: usize,
    /// Most commands journaled in one transaction.
    pub journal_batch: usize,
    /// Most commands journaled and waiting for their pair's actor.
    pub actor_queue: usize,
    /// Most event records waiting for the dispatcher, and then for the persister.
    pub output_queue: usize,
    /// Most event records stored in one transaction.
    pub persister_batch: usize,
    /// How long the persister lets records gather before a transaction
    /// (0: none). No order, cancel or amend waits for the store; a read of
    /// one's own orders or trades does, and cuts the linger short. It
    /// trades persister lag (and how fresh public trade history is) for
    /// fewer transactions, each rewriting fewer index pages per event.
    /// Longer makes the SQLite writer cheaper but each commit a longer
    /// burst on the cores the requests share, so the p99 pays (the
    /// README has the runs).
    pub persister_linger_ms: u64,
    /// An actor snapshots its book after this many commands.
    pub snapshot_every: u64,
    /// Orders each book preallocates room for.
    pub book_capacity: usize,
    /// `fdatasync` the journal after each group commit, before answering.
    /// Off: an acknowledged command survives the process being killed (it
    /// is in the kernel), not a power loss of the machine. On: it survives
    /// both, at the cost of one device flush per group commit (see the
    /// README for the measured cost).
    pub journal_fsync: bool,
    /// A pair that took no command for this long gets an `AdvanceTime`
    /// command, so its book expires good-till-date orders on time (within
    /// about two periods) though nobody trades. Appended by the journal
    /// writer (embedded) or the engine that leases the pair (distributed),
    /// logged and replayed like any command. 0: never.
    pub gtd_tick_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            journal_queue: 16_384,
            journal_batch: 2_048,
            actor_queue: 16_384,
            output_queue: 16_384,
            persister_batch: 4_096,
            persister_linger_ms: 10,
            snapshot_every: 10_000,
            book_capacity: 65_536,
            journal_fsync: false,
            gtd_tick_ms: 1_000,
        }
    }
}

impl RuntimeConfig {
    /// Checks that every bound is usable, naming the bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("journal_queue", self.journal_queue as u64),
            ("journal_batch", self.journal_batch as u64),
            ("actor_queue", self.actor_queue as u64),
            ("output_queue", self.output_queue as u64),
            ("persister_batch", self.persister_batch as u64),
            ("snapshot_every", self.snapshot_every),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }
}

/// A `[runtime]` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// This bound must be greater than zero.
    Zero(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Zero(name) => write!(f, "runtime.{name} must be greater than zero"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}
