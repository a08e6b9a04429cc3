//! The runtime's Prometheus series. Labels are bounded: pairs come from the
//! config, results and event kinds from fixed lists.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counters and gauges the runtime updates; registered on the process's
/// registry, rendered by whoever serves `/metrics`.
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    /// `matching_commands_total{pair,result}`: commands applied, by outcome
    /// (`accepted`, `rejected`, or the kind of a cancel/amend that succeeded).
    pub commands: IntCounterVec,
    /// `matching_events_total{pair,kind}`: events emitted, by kind.
    pub events: IntCounterVec,
    /// `matching_actor_queue_depth{pair}`: commands journaled but not yet applied.
    pub queue_depth: IntGaugeVec,
    /// `matching_actor_queue_capacity{pair}`: the bound of that queue.
    pub queue_capacity: IntGaugeVec,
    /// `matching_persister_lag_events{pair}`: events emitted but not yet stored.
    pub persister_lag: IntGaugeVec,
    /// `matching_pair_halted{pair}`: 1 when the pair's actor stopped on a fault.
    pub halted: IntGaugeVec,
    /// `matching_journal_batches_total` and `matching_persister_batches_total`.
    pub batches: IntCounterVec,
}

impl RuntimeMetrics {
    /// Creates the series and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = RuntimeMetrics {
            commands: IntCounterVec::new(
                Opts::new("matching_commands_total", "Commands applied by the engine."),
                &["pair", "result"],
            )?,
            events: IntCounterVec::new(
                Opts::new("matching_events_total", "Events emitted by the engine."),
                &["pair", "kind"],
            )?,
            queue_depth: IntGaugeVec::new(
                Opts::new(
                    "matching_actor_queue_depth",
                    "Commands journaled and not yet applied, per pair.",
                ),
                &["pair"],
            )?,
            queue_capacity: IntGaugeVec::new(
                Opts::new(
                    "matching_actor_queue_capacity",
                    "Bound of each actor's queue.",
                ),
                &["pair"],
            )?,
            persister_lag: IntGaugeVec::new(
                Opts::new(
                    "matching_persister_lag_events",
                    "Events emitted and not yet stored, per pair.",
                ),
                &["pair"],
            )?,
            halted: IntGaugeVec::new(
                Opts::new(
                    "matching_pair_halted",
                    "1 when a pair's actor stopped on a fault.",
                ),
                &["pair"],
            )?,
            batches: IntCounterVec::new(
                Opts::new(
                    "matching_store_batches_total",
                    "Store transactions by writer.",
                ),
                &["writer"],
            )?,
        };
        registry.register(Box::new(m.commands.clone()))?;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.queue_capacity.clone()))?;
        registry.register(Box::new(m.persister_lag.clone()))?;
        registry.register(Box::new(m.halted.clone()))?;
        registry.register(Box::new(m.batches.clone()))?;
        Ok(m)
    }
}
