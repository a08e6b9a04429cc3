//! Why the embedded exchange or a distributed role did not start, or
//! stopped on an error.

use std::fmt;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Why [`crate::start`] or [`crate::roles::run`] failed; the message names
/// the step and the value.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is refused.
    Config(ConfigError),
    /// The data directory cannot be created.
    DataDir(PathBuf, std::io::Error),
    /// The store cannot be opened at this URL.
    Connect(String, store::StoreError),
    /// The store cannot be read.
    Store(store::StoreError),
    /// The metrics cannot be registered.
    Metrics(prometheus::Error),
    /// The books cannot be recovered or the engine side started.
    Runtime(runtime::StartError),
    /// The listen address cannot be bound.
    Listen(String, std::io::Error),
    /// The Kafka side of a distributed role failed.
    Cluster(cluster::ClusterError),
    /// Serving HTTP failed.
    Serve(std::io::Error),
    /// The risk role with `[accounts] enabled = false`: it has nothing to
    /// run.
    AccountsDisabled,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => e.fmt(f),
            StartError::DataDir(p, e) => write!(f, "data_dir {}: {e}", p.display()),
            StartError::Connect(url, e) => write!(f, "store {url}: {e}"),
            StartError::Store(e) => e.fmt(f),
            StartError::Metrics(e) => e.fmt(f),
            StartError::Runtime(e) => e.fmt(f),
            StartError::Listen(addr, e) => write!(f, "listen {addr}: {e}"),
            StartError::Cluster(e) => e.fmt(f),
            StartError::Serve(e) => write!(f, "serving HTTP: {e}"),
            StartError::AccountsDisabled => f.write_str(
                "the risk role runs the accounts: set `[accounts] enabled = true` in the config",
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::DataDir(_, e) | StartError::Listen(_, e) => Some(e),
            StartError::Connect(_, e) | StartError::Store(e) => Some(e),
            StartError::Metrics(e) => Some(e),
            StartError::Runtime(e) => Some(e),
            StartError::Cluster(e) => Some(e),
            StartError::Serve(e) => Some(e),
            StartError::AccountsDisabled => None,
        }
    }
}

impl From<cluster::ClusterError> for StartError {
    fn from(e: cluster::ClusterError) -> Self {
        StartError::Cluster(e)
    }
}
