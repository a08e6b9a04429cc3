//! An open-loop load tester for the exchange.
//!
//! Requests are sent on a fixed schedule at the offered rate whatever the
//! answers do ([`schedule`]); each request's latency runs from its planned
//! send time into HDR histograms, per outcome ([`stats`]). The order flow is
//! seeded and shaped like a venue's: many users, pairs of skewed
//! popularity, drifting mids, a mix of limit, market, IOC, FOK, post-only,
//! cancel, amend and replace, as Binance's `/api/v3` takes them ([`flow`]). A WebSocket subscriber keeps each pair's
//! book in sync by the documented procedure and counts sequence gaps
//! ([`depth`]); many more subscribers measure the streams' fan-out
//! ([`fanout`]). The engine's own counts of commands and events come from
//! `/metrics` ([`metrics`]). Only loopback targets are accepted
//! ([`loopback`]).
//!
//! Scenarios are TOML files ([`scenario`], `loadtest/scenarios/`); a run
//! writes `result.json`, `report.html` and the raw histograms ([`report`]).

pub mod depth;
pub mod error;
pub mod fanout;
pub mod flow;
pub mod funding;
pub mod keys;
pub mod loopback;
pub mod metrics;
pub mod null;
pub mod procfs;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod stats;
pub mod summary;
pub mod target;
pub mod wsapi;

pub use clientkit::Credentials;
pub use error::RunError;
pub use result::RunResult;
pub use runner::{RunOptions, SuppliedTarget, run, run_blocking, run_supplied};
pub use scenario::Scenario;

pub use summary::summary;
