//! The library's error types: one per part that can fail, each saying what
//! was wrong in words a user can act on, and [`RunError`] for a whole run.

use std::fmt;
use std::path::PathBuf;

/// An error whose variants are told apart by their message only: the part
/// it belongs to is its type.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for $name {}

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

message_error!(
    /// A scenario file that cannot be read, parsed or checked; the message
    /// names the bad key or value.
    ScenarioError
);

message_error!(
    /// Pairs' rules or an order flow that cannot be built.
    FlowError
);

message_error!(
    /// The depth subscriber's snapshot or its end.
    DepthError
);

/// A target that is not on this machine, or does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopbackError {
    /// The URL is not one the harness sends to; the message says why.
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The host's name does not resolve.
    Resolve {
        /// `host:port`.
        authority: String,
        /// The resolver's error.
        detail: String,
    },
    /// The host resolves to an address off this machine.
    NotLoopback {
        /// The host.
        host: String,
        /// The address it resolves to.
        addr: String,
    },
    /// The host resolves to nothing.
    NoAddress(String),
}

impl fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopbackError::Url { url, why } => write!(f, "target {url:?}: {why}"),
            LoopbackError::Resolve { authority, detail } => {
                write!(f, "cannot resolve {authority}: {detail}")
            }
            LoopbackError::NotLoopback { host, addr } => write!(
                f,
                "{host} resolves to {addr}, which is not a loopback address; refusing"
            ),
            LoopbackError::NoAddress(host) => write!(f, "{host} resolves to no address"),
        }
    }
}

impl std::error::Error for LoopbackError {}

/// API keys that could not be created with `exchange keys create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysError {
    /// The binary could not be started.
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        detail: String,
    },
    /// It ran and failed.
    Failed {
        /// The command line, shortened.
        command: String,
        /// Its exit status and standard error.
        detail: String,
    },
    /// Its output has no key and secret.
    Output(String),
    /// A thread creating keys panicked.
    Panicked,
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysError::Spawn { binary, detail } => write!(
                f,
                "cannot run {} (set [exchange] binary in the scenario or --exchange-bin): {detail}",
                binary.display()
            ),
            KeysError::Failed { command, detail } => write!(f, "{command} failed: {detail}"),
            KeysError::Output(out) => write!(
                f,
                "cannot find \"api key:\" and \"secret:\" in the output of keys create: {out:?}"
            ),
            KeysError::Panicked => f.write_str("a key-creating thread panicked"),
        }
    }
}

impl std::error::Error for KeysError {}

/// Result files that could not be written.
#[derive(Debug)]
pub enum ReportError {
    /// A file or directory could not be written.
    Write {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The result could not be encoded as JSON.
    Encode(serde_json::Error),
    /// The histogram log could not be written.
    Histograms(String),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            ReportError::Encode(e) => write!(f, "cannot encode the result: {e}"),
            ReportError::Histograms(e) => write!(f, "histogram log: {e}"),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Write { source, .. } => Some(source),
            ReportError::Encode(e) => Some(e),
            ReportError::Histograms(_) => None,
        }
    }
}

/// Why a run did not produce a result.
#[derive(Debug)]
pub enum RunError {
    /// The scenario cannot run this way (wrong target kind, too few keys).
    Refused(String),
    /// The target is not on this machine.
    Loopback(LoopbackError),
    /// The exchange did not answer as expected (exchange info).
    Exchange(String),
    /// The users' keys.
    Keys(KeysError),
    /// The pairs' rules or the order flow.
    Flow(FlowError),
    /// The target could not be set up.
    Target(TargetError),
    /// The depth subscriber failed.
    Depth(DepthError),
    /// The harness itself: its async runtime or its threads.
    Harness(String),
    /// The result files.
    Report(ReportError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Refused(e) | RunError::Exchange(e) | RunError::Harness(e) => f.write_str(e),
            RunError::Loopback(e) => e.fmt(f),
            RunError::Keys(e) => e.fmt(f),
            RunError::Flow(e) => e.fmt(f),
            RunError::Target(e) => e.fmt(f),
            RunError::Depth(e) => e.fmt(f),
            RunError::Report(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Loopback(e) => Some(e),
            RunError::Keys(e) => Some(e),
            RunError::Flow(e) => Some(e),
            RunError::Target(e) => Some(e),
            RunError::Depth(e) => Some(e),
            RunError::Report(e) => Some(e),
            RunError::Refused(_) | RunError::Exchange(_) | RunError::Harness(_) => None,
        }
    }
}

macro_rules! run_error_from {
    ($($from:ty => $variant:ident),*) => {
        $(impl From<$from> for RunError {
            fn from(e: $from) -> Self {
                RunError::$variant(e)
            }
        })*
    };
}

run_error_from!(
    LoopbackError => Loopback,
    KeysError => Keys,
    FlowError => Flow,
    TargetError => Target,
    DepthError => Depth,
    ReportError => Report
);

impl From<LoopbackError> for ScenarioError {
    fn from(e: LoopbackError) -> Self {
        ScenarioError(e.to_string())
    }
}

/// Why a target could not be set up.
#[derive(Debug)]
pub enum TargetError {
    /// The HTTP client library refused its settings.
    Client(String),
    /// The target could not be reached.
    Connect {
        /// Where.
        addr: String,
        /// Why (the transport's label).
        why: String,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Client(e) => write!(f, "cannot build the HTTP client: {e}"),
            TargetError::Connect { addr, why } => write!(f, "cannot connect to {addr}: {why}"),
        }
    }
}

impl std::error::Error for TargetError {}
