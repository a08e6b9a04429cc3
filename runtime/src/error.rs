//! Why the embedded runtime could not start.

use std::fmt;

use pipeline::RestoreError;
use store::StoreError;

use crate::journal::JournalError;

/// Why the runtime could not start.
#[derive(Debug)]
pub enum StartError {
    /// The store failed.
    Store(StoreError),
    /// A pair's stored state cannot be used.
    Recovery(String),
    /// The journal cannot be read or opened.
    Journal(JournalError),
    /// The store's legacy journal table still holds commands, which this
    /// version does not replay.
    LegacyJournal,
    /// The pairs make no accounts shard (an asset with two scales, ...).
    RiskConfig(accounts::ConfigError),
    /// The latest risk snapshot cannot be used.
    RiskSnapshot {
        /// The risk-stream position it covers.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The risk stream does not replay: a gap, or an input the shard
    /// refuses (it journals only inputs it accepted), which is corruption.
    RiskReplay {
        /// The input's position in the risk stream.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "{e}"),
            StartError::Recovery(m) => write!(f, "recovery: {m}"),
            StartError::Journal(e) => write!(f, "{e}"),
            StartError::RiskConfig(e) => write!(f, "accounts: {e}"),
            StartError::RiskSnapshot { position, reason } => {
                write!(f, "the risk snapshot at position {position}: {reason}")
            }
            StartError::RiskReplay { position, reason } => {
                write!(
                    f,
                    "the journal's risk stream at position {position}: {reason}"
                )
            }
            StartError::LegacyJournal => f.write_str(
                "the store's journal table still holds commands written by a version before \
                 the file journal, and this version no longer replays it: start the previous \
                 version once on this data (its snapshots then cover the table and empty it), \
                 stop it cleanly, then start this one",
            ),
        }
    }
}

impl std::error::Error for StartError {}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        StartError::Store(e)
    }
}

impl From<RestoreError> for StartError {
    fn from(e: RestoreError) -> Self {
        match e {
            RestoreError::Store(e) => StartError::Store(e),
            e @ RestoreError::Book { .. } => StartError::Recovery(e.to_string()),
        }
    }
}
