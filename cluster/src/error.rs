//! The distributed mode's errors.

use std::fmt;

use pipeline::RestoreError;
use rdkafka::error::KafkaError;
use store::StoreError;

/// Why a distributed-mode role or tool failed.
#[derive(Debug)]
pub enum ClusterError {
    /// A configuration value cannot be used (the message names it).
    Config(String),
    /// The broker or the Kafka client failed while doing `context`.
    Kafka {
        /// What was being done.
        context: String,
        /// What the client said.
        error: KafkaError,
    },
    /// The store failed while doing `context`.
    Store {
        /// What was being done.
        context: &'static str,
        /// What the store said.
        error: StoreError,
    },
    /// A pair's book could not be restored from its snapshot.
    Restore(RestoreError),
    /// A log holds something it must not, or did not answer in time.
    Log(String),
    /// A task this one depends on stopped.
    Stopped(&'static str),
}

impl ClusterError {
    /// A Kafka failure while doing `context`.
    pub fn kafka(context: impl Into<String>, error: KafkaError) -> Self {
        ClusterError::Kafka {
            context: context.into(),
            error,
        }
    }

    /// A store failure while doing `context`.
    pub fn store(context: &'static str, error: StoreError) -> Self {
        ClusterError::Store { context, error }
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Config(m) | ClusterError::Log(m) => f.write_str(m),
            ClusterError::Kafka { context, error } => write!(f, "{context}: {error}"),
            ClusterError::Store { context, error } => write!(f, "{context}: {error}"),
            ClusterError::Restore(e) => write!(f, "{e}"),
            ClusterError::Stopped(what) => write!(f, "{what} stopped"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Kafka { error, .. } => Some(error),
            ClusterError::Store { error, .. } => Some(error),
            ClusterError::Restore(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RestoreError> for ClusterError {
    fn from(e: RestoreError) -> Self {
        ClusterError::Restore(e)
    }
}
