//! The pipeline's Prometheus series, in both modes. Labels are bounded:
//! pairs come from the config, results, writers and event kinds from fixed
//! lists. The pairs' gauges are samples of their [`PairStatus`] counters.

use std::sync::Arc;
use std::time::Duration;

use commandlog::{Lag, PairStatus};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::task::JoinHandle;

/// Counters and gauges the pipeline updates; registered on the process's
/// registry, rendered by whoever serves `/metrics`.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    /// `matching_commands_total{pair,result}`: commands applied, by outcome
    /// (`accepted`, or `rejected` when any of its events is a rejection;
    /// `time` for the sequencer's `AdvanceTime`, which no client sent).
    pub commands: IntCounterVec,
    /// `matching_events_total{pair,kind}`: events emitted, by kind.
    pub events: IntCounterVec,
    /// `matching_actor_queue_depth{pair}`: commands logged and not yet
    /// applied (embedded); in distributed mode the engine's actor queue plus
    /// what waits for room in it.
    pub queue_depth: IntGaugeVec,
    /// `matching_actor_queue_capacity{pair}`: the bound of that queue.
    pub queue_capacity: IntGaugeVec,
    /// `matching_persister_lag_events{pair}`: events emitted and not yet
    /// stored (in the distributed persister: records of the events topic
    /// not yet stored).
    pub persister_lag: IntGaugeVec,
    /// `matching_pair_halted{pair}`: 1 when the pair stopped on a fault.
    pub halted: IntGaugeVec,
    /// `matching_store_batches_total{writer}`: the journal writer's group
    /// commits (`journal`) and the persister's transactions (`persister`).
    pub batches: IntCounterVec,
    /// `risk_inputs_total{kind}`: inputs the risk stage journaled, by kind
    /// (`deposit`, `withdraw`, `place`, `amend`, `settle`, `place_list`).
    pub risk_inputs: IntCounterVec,
    /// `risk_refusals_total{code}`: inputs the risk stage refused, by its
    /// code in snake case (`insufficient_balance`, ...).
    pub risk_refusals: IntCounterVec,
    /// `risk_snapshot_age_inputs`: risk inputs applied since the shard's
    /// last snapshot.
    pub risk_snapshot_age: IntGauge,
    /// `risk_audit_failures_total`: audits of a live shard that found money
    /// not conserved or holds not matching their orders (alarm on any).
    pub risk_audit_failures: IntCounter,
}

impl PipelineMetrics {
    /// Creates the series and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = PipelineMetrics {
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
            risk_inputs: IntCounterVec::new(
                Opts::new("risk_inputs_total", "Inputs the risk stage journaled."),
                &["kind"],
            )?,
            risk_refusals: IntCounterVec::new(
                Opts::new("risk_refusals_total", "Inputs the risk stage refused."),
                &["code"],
            )?,
            risk_snapshot_age: IntGauge::new(
                "risk_snapshot_age_inputs",
                "Risk inputs applied since the shard's last snapshot.",
            )?,
            risk_audit_failures: IntCounter::new(
                "risk_audit_failures_total",
                "Audits of a live risk shard that found a failure.",
            )?,
        };
        registry.register(Box::new(m.commands.clone()))?;
        registry.register(Box::new(m.risk_inputs.clone()))?;
        registry.register(Box::new(m.risk_refusals.clone()))?;
        registry.register(Box::new(m.risk_snapshot_age.clone()))?;
        registry.register(Box::new(m.risk_audit_failures.clone()))?;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.queue_capacity.clone()))?;
        registry.register(Box::new(m.persister_lag.clone()))?;
        registry.register(Box::new(m.halted.clone()))?;
        registry.register(Box::new(m.batches.clone()))?;
        Ok(m)
    }
}

impl PipelineMetrics {
    /// Sets `status`'s gauges from its counters: the actor queue's depth
    /// when its lag counts commands, the persister's lag, and the halt.
    pub fn observe(&self, status: &PairStatus) {
        let label = [status.symbol.as_str()];
        if let Lag::Commands(n) = status.lag() {
            self.queue_depth.with_label_values(&label).set(gauge(n));
        }
        self.persister_lag
            .with_label_values(&label)
            .set(gauge(status.persister_lag()));
        self.observe_halt(status);
    }

    /// Sets `status`'s `matching_pair_halted`.
    pub fn observe_halt(&self, status: &PairStatus) {
        self.halted
            .with_label_values(&[status.symbol.as_str()])
            .set(i64::from(status.is_halted()));
    }

    /// Sets the gauges of `pairs` every `period` until the task is
    /// aborted: the counters are atomics the hot path bumps, the gauges a
    /// sample of them.
    pub fn watch<F>(&self, pairs: F, period: Duration) -> JoinHandle<()>
    where
        F: Fn() -> Vec<Arc<PairStatus>> + Send + 'static,
    {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                for p in &pairs() {
                    metrics.observe(p);
                }
            }
        })
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
