//! What a run produced, as written to `result.json` and read by the
//! report and the terminal summary: plain serializable structs, apart from
//! the runner that fills them and the report that renders them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::depth::DepthReport;
use crate::fanout::FanoutReport;
use crate::metrics::EngineCounts;
use crate::scenario::{Mix, PairFile, TargetKind};
use crate::stats::{Backlog, Percentiles};

/// The definitions a reader needs, written into every result.
pub const DEFINITIONS: [(&str, &str); 6] = [
    (
        "request",
        "one signed HTTP call to the gateway's /api/v3: a new order (limit, market, IOC, FOK, \
         post-only as LIMIT_MAKER), an amend (a lower quantity, keeping priority), a replace (a \
         price move by cancel-replace: two commands) or a cancel",
    ),
    (
        "command",
        "a request that passed the gateway and was applied by a pair's engine \
         (matching_commands_total, by result: accepted or rejected by the book)",
    ),
    (
        "event",
        "one output of the engine for a command (matching_events_total, by kind): accepted, \
         rejected, trade (a fill), canceled, amended, book_delta (a price level changed), \
         canceled_all; every command emits at least one",
    ),
    (
        "latency",
        "from the request's planned send time on the open-loop schedule to its answer, in \
         microseconds; waits for a free connection and harness lag are included",
    ),
    (
        "outcome",
        "accepted: 2xx; rejected: 4xx from validation or the engine; shed: 429, 418 or 503; error: \
         transport failure, 401/403, other 5xx, or not sent (harness_overflow); timeout: no \
         answer within timeout_ms, or 504",
    ),
    (
        "backlog",
        "what the engine holds but has not finished, from /metrics once a second: persister lag \
         (matching_persister_lag_events: events emitted but not yet stored) and queue depth \
         (matching_actor_queue_depth: commands journaled but not yet applied), over all pairs",
    ),
];

/// The scenario as run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The target kind.
    pub target: TargetKind,
    /// The exchange's URL.
    pub url: String,
    /// The flow's seed.
    pub seed: u64,
    /// `ACK` or `RESULT`.
    pub resp_type: String,
    /// The HTTP client library.
    pub http_client: String,
    /// Keep-alive connections.
    pub connections: usize,
    /// Harness worker threads.
    pub threads: usize,
    /// Answer deadline.
    pub timeout_ms: u64,
    /// Simulated users.
    pub users: usize,
    /// Traded pairs and weights.
    pub pairs: Vec<PairFile>,
    /// Request mix.
    pub mix: Mix,
    /// Phases as planned.
    pub phases: Vec<PhasePlan>,
}

/// One planned phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhasePlan {
    /// Its name.
    pub name: String,
    /// Requests per second.
    pub rate: u64,
    /// Seconds.
    pub duration_s: f64,
    /// Requests planned.
    pub planned: u64,
}

/// Counts over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Requests on the schedule.
    pub planned: u64,
    /// Requests dispatched (sent or counted as `harness_overflow`).
    pub dispatched: u64,
    /// Requests that ended, by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Per request kind, by outcome.
    pub by_kind: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Error codes of non-2xx answers, with their count.
    pub error_codes: BTreeMap<String, u64>,
    /// Requests without an answer, by reason.
    pub failures: BTreeMap<&'static str, u64>,
    /// Requests that ended per second of the sending window.
    pub achieved_rate: f64,
    /// Accepted requests per second of the sending window.
    pub accepted_rate: f64,
    /// The offered rate: dispatched per second of the sending window.
    pub offered_rate: f64,
}

/// Latency percentiles (us) by outcome.
pub type ByOutcome = BTreeMap<&'static str, Percentiles>;

/// Latencies over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Everything the engine path answered (accepted or rejected).
    pub answered: Percentiles,
    /// New orders, amends and replaces.
    pub orders: ByOutcome,
    /// Cancels.
    pub cancels: ByOutcome,
}

/// One phase's result.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Its name.
    pub name: String,
    /// Offered rate.
    pub rate: u64,
    /// Planned seconds.
    pub duration_s: f64,
    /// Requests planned.
    pub planned: u64,
    /// Requests that ended, by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Cancels that ended, by outcome.
    pub cancel_outcomes: BTreeMap<&'static str, u64>,
    /// Accepted and rejected, both groups.
    pub answered: Percentiles,
    /// New orders, amends and replaces by outcome (admitted orders: `accepted`).
    pub orders: ByOutcome,
    /// Cancels by outcome.
    pub cancels: ByOutcome,
    /// p99 (us) of the answers and timeouts: the step rule's figure.
    pub p99_answered_or_timeout_us: u64,
    /// Percent of ended requests shed, failed or timed out.
    pub not_answered_pct: f64,
    /// The exchange's largest sampled RSS in this phase, KiB.
    pub rss_kib_max: Option<u64>,
}

/// The step-up's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The bound on a step's p99.
    pub p99_bound_ms: f64,
    /// A step also fails when more than this percent of its requests are
    /// shed, failed or timed out.
    pub max_not_answered_pct: f64,
    /// Each step evaluated: name, rate, p99 (ms), not answered (%), passed.
    pub steps: Vec<StepVerdict>,
    /// The last step under the bound before the first that broke it.
    pub knee_rate: Option<u64>,
    /// Its name.
    pub knee_phase: Option<String>,
    /// The first step that broke the bound.
    pub broken_at: Option<String>,
}

/// One step's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct StepVerdict {
    /// The step.
    pub name: String,
    /// Its rate.
    pub rate: u64,
    /// p99 of answers and timeouts, ms.
    pub p99_ms: f64,
    /// Percent shed, failed or timed out.
    pub not_answered_pct: f64,
    /// Under the bound.
    pub passed: bool,
}

/// Engine-side counts over the run, from `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    /// Seconds between the two scrapes.
    pub window_s: f64,
    /// Commands applied.
    pub commands_total: u64,
    /// Events emitted (all kinds).
    pub events_total: u64,
    /// Commands per minute over the window.
    pub commands_per_minute: f64,
    /// Events per minute over the window.
    pub events_per_minute: f64,
    /// Commands plus events per minute.
    pub commands_and_events_per_minute: f64,
    /// Events per minute by kind.
    pub events_per_minute_by_kind: BTreeMap<String, f64>,
    /// The counters' changes.
    pub counts: EngineCounts,
    /// How far the persister and the actors fell behind, and caught up.
    pub backlog: BacklogReport,
}

/// The engine's backlog over a run: sampled from `/metrics` once a second
/// while requests were sent, then watched after the last answer until it
/// is empty again.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogReport {
    /// Seconds with a sample (a scrape slower than the tick is skipped).
    pub samples: u64,
    /// Largest persister lag sampled, events.
    pub persister_lag_max: u64,
    /// Median persister lag over the samples, events.
    pub persister_lag_p50: u64,
    /// Largest actor queue depth sampled, commands.
    pub queue_depth_max: u64,
    /// The backlog when the last request ended.
    pub at_end: Backlog,
    /// Seconds from the last request's end until nothing waited; `None`
    /// when the backlog had not emptied within `settle_bound_s`.
    pub empty_after_s: Option<f64>,
    /// How long the harness waited for it to empty.
    pub settle_bound_s: f64,
}

impl BacklogReport {
    /// One sentence for the summary and the HTML report.
    pub fn describe(&self) -> String {
        format!(
            "persister lag max {} events, median {}; actor queue depth max {} commands ({} samples); \
             when the last request ended {} events unstored, {} commands unapplied; {}",
            self.persister_lag_max,
            self.persister_lag_p50,
            self.queue_depth_max,
            self.samples,
            self.at_end.persister_lag,
            self.at_end.queue_depth,
            self.empty_after_s.map_or_else(
                || format!("NOT empty within {:.0} s", self.settle_bound_s),
                |t| format!("empty {t:.1} s later"),
            ),
        )
    }
}

/// The exchange process, when its pid is known.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// Its pid.
    pub pid: u32,
    /// How it was found: `given` or `listening port`.
    pub found_by: &'static str,
    /// RSS before the run, KiB.
    pub rss_kib_start: Option<u64>,
    /// Largest sampled RSS, KiB.
    pub rss_kib_max: Option<u64>,
    /// RSS after the run, KiB.
    pub rss_kib_end: Option<u64>,
    /// CPU seconds it used during the run.
    pub cpu_s: Option<f64>,
    /// Its CPU per ended request, us.
    pub cpu_us_per_request: Option<f64>,
}

/// The harness's own cost.
#[derive(Debug, Clone, Serialize)]
pub struct HarnessReport {
    /// CPU seconds of this process during the run.
    pub cpu_s: Option<f64>,
    /// Its CPU per dispatched request, us (includes the depth subscriber).
    pub cpu_us_per_request: Option<f64>,
    /// How late requests were dispatched after their planned time, us.
    pub dispatch_lag_us: Percentiles,
    /// Connections re-opened during the run.
    pub reconnects: u64,
    /// Most requests outstanding at once.
    pub max_outstanding: usize,
}

/// One second of the time line.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds from the start (the end of this second).
    pub t_s: u64,
    /// The schedule's rate in this second.
    pub offered_rate: u64,
    /// Requests dispatched.
    pub dispatched: u64,
    /// Requests that ended, by outcome.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Shed.
    pub shed: u64,
    /// Errors.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Percentiles of the answered latency (us), 2 significant figures.
    pub latency_us: Percentiles,
    /// The exchange's RSS, KiB.
    pub rss_kib: Option<u64>,
    /// The engine's backlog at the end of the second, when scraped.
    pub backlog: Option<Backlog>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// What the words mean.
    pub definitions: BTreeMap<&'static str, &'static str>,
    /// Wall-clock start, ms since the epoch.
    pub started_unix_ms: u64,
    /// Seconds from the first planned request to the last answer.
    pub elapsed_s: f64,
    /// Why the run stopped before the end of the schedule, if it did.
    pub stopped_early: Option<String>,
    /// Counts.
    pub requests: Totals,
    /// Latencies.
    pub latency_us: Latencies,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// The step-up's verdict.
    pub step: Option<StepReport>,
    /// Engine counts (commands, events).
    pub engine: Option<EngineReport>,
    /// Why the engine counts are missing, if they are.
    pub engine_error: Option<String>,
    /// The depth subscriber's findings.
    pub depth: Option<DepthReport>,
    /// The fan-out subscribers' findings.
    pub fanout: Option<FanoutReport>,
    /// The exchange process.
    pub exchange_process: Option<ProcessReport>,
    /// The harness's cost.
    pub harness: HarnessReport,
    /// Per second.
    pub timeline: Vec<TimelinePoint>,
    /// Files written, by role.
    pub files: BTreeMap<&'static str, String>,
}
