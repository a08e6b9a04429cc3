//! Load tests of the distributed engines without HTTP, beside the cluster
//! code they drive.
//!
//! - [`target::KafkaTarget`]: loadtest's requests rendered as the gateway
//!   would receive them, turned into commands by the gateway's own mapping
//!   (`gateway::command_from_raw`), appended to the command log by the
//!   gateway's writer, and answered from the events topic. Run with
//!   `kafkaload run SCENARIO` (a `target = "direct"` scenario).
//! - [`broker::ceiling`]: the broker's ceiling with the exchange's own Kafka
//!   client settings (`kafkaload broker`).

pub mod broker;
pub mod settings;
pub mod target;

use std::fmt;

/// Why a direct load test or a ceiling measurement could not run.
#[derive(Debug)]
pub enum Error {
    /// The scenario's `[direct]` table, the brokers or the cluster's config
    /// file are not usable.
    Settings(String),
    /// A broker operation failed (metadata, watermarks, topics, sends).
    Kafka {
        /// What was being done.
        what: String,
        /// The client's error.
        detail: String,
    },
    /// The broker gave back other than what was sent.
    Mismatch(String),
    /// The load test itself failed.
    Run(loadtest::RunError),
}

impl Error {
    pub(crate) fn kafka(what: impl Into<String>, detail: impl fmt::Display) -> Error {
        Error::Kafka {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Settings(e) | Error::Mismatch(e) => f.write_str(e),
            Error::Run(e) => e.fmt(f),
            Error::Kafka { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Run(e) => Some(e),
            _ => None,
        }
    }
}

impl From<loadtest::RunError> for Error {
    fn from(e: loadtest::RunError) -> Self {
        Error::Run(e)
    }
}
