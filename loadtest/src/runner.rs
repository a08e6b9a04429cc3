//! One run of a scenario: set-up (exchange info, users' keys, connections,
//! the depth subscriber, a first `/metrics` scrape), the open-loop
//! dispatcher, the once-a-second progress line and samples, the drain, and
//! the result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::depth::{DepthReport, Subscriber};
use crate::flow::{Flow, Group, Kind, PairRules, Request};
use crate::metrics::EngineCounts;
use crate::scenario::{Mix, PairFile, RespType, Scenario, TargetKind};
use crate::schedule::Schedule;
use crate::stats::{Outcome, Percentiles, Recorder};
use crate::target::{HttpTarget, SubmitError, Target};
use crate::{kafka, keys, loopback, procfs};
use clientkit::Credentials;

/// What the caller adds to a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where the result files go (created).
    pub out_dir: PathBuf,
    /// The users' keys, when the caller made them; otherwise they are
    /// created with the exchange binary.
    pub credentials: Option<Vec<Credentials>>,
    /// No progress lines.
    pub quiet: bool,
}

/// The definitions a reader needs, written into every result.
pub const DEFINITIONS: [(&str, &str); 5] = [
    (
        "request",
        "one signed HTTP call to the gateway: a new order (limit, market, IOC, FOK, post-only), \
         an amend or a cancel",
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
        "accepted: 2xx; rejected: 4xx from validation or the engine; shed: 429 or 503; error: \
         transport failure, 401/403, other 5xx, or not sent (harness_overflow); timeout: no \
         answer within timeout_ms, or 504",
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
    /// New orders and amends.
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
    /// New orders and amends by outcome (admitted orders: `accepted`).
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
    /// The exchange process.
    pub exchange_process: Option<ProcessReport>,
    /// The harness's cost.
    pub harness: HarnessReport,
    /// Per second.
    pub timeline: Vec<TimelinePoint>,
    /// Files written, by role.
    pub files: BTreeMap<&'static str, String>,
}

/// A step fails above this share of requests not answered.
const STEP_MAX_NOT_ANSWERED_PCT: f64 = 1.0;

struct Shared {
    recorder: Mutex<Recorder>,
    flow: Mutex<Flow>,
    target: Target,
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
    dispatched: AtomicU64,
    stop: AtomicBool,
    /// Set once the run has drained (or given up waiting).
    drained: AtomicBool,
    stop_reason: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these in a state worse
    // than a lost sample.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    http.get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e} (is the exchange running?)"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// The engine counters of every endpoint, summed (one per engine process
/// in distributed mode).
async fn scrape(
    http: &reqwest::Client,
    endpoints: &[loopback::LoopbackTarget],
) -> Result<EngineCounts, String> {
    let mut text = String::new();
    for e in endpoints {
        let url = format!("{}/metrics", e.base);
        let t = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        text.push_str(&t);
        text.push('\n');
    }
    Ok(EngineCounts::from_text(&text))
}

fn error_code(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Err {
        code: i64,
    }
    serde_json::from_slice::<Err>(body).ok().map(|e| e.code)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Runs `scenario`; blocks until done. Builds its own async runtime with
/// the scenario's thread count.
pub fn run_blocking(scenario: &Scenario, opts: &RunOptions) -> Result<RunResult, String> {
    let rt = if scenario.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(scenario.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(run(scenario, opts))
}

/// Runs `scenario` on the current async runtime.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunResult, String> {
    let addr = loopback::resolve(&scenario.url).await?;
    let base = scenario.url.base.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let say = |s: &str| {
        if !opts.quiet {
            eprintln!("{s}");
        }
    };

    // Set-up: the pairs' rules, the users' keys, connections. The direct
    // target takes the rules from the cluster's config and needs no keys.
    let cluster = match (scenario.target, &scenario.exchange.config) {
        (TargetKind::Kafka, Some(path)) => Some(kafka::cluster_config(path, &scenario.brokers)?),
        _ => None,
    };
    let rules = match &cluster {
        Some((_, pairs)) => pairs.iter().map(|(c, _)| kafka::rules(c)).collect(),
        None => {
            let info = get_json(&http, &format!("{base}/api/v1/exchangeInfo")).await?;
            PairRules::from_exchange_info(&info)?
        }
    };
    let credentials = match &opts.credentials {
        _ if cluster.is_some() => (0..scenario.users.count)
            .map(|i| Credentials {
                api_key: format!("direct-{i}"),
                secret: String::new(),
            })
            .collect(),
        Some(c) if c.len() >= scenario.users.count => c[..scenario.users.count].to_vec(),
        Some(c) => {
            return Err(format!(
                "{} keys given for {} users",
                c.len(),
                scenario.users.count
            ));
        }
        None => {
            let binary = scenario
                .exchange
                .binary
                .clone()
                .unwrap_or_else(|| PathBuf::from("target/release/exchange"));
            let names: Vec<String> = (1..=scenario.users.count)
                .map(|i| format!("{}-{i}", scenario.users.name_prefix))
                .collect();
            say(&format!(
                "creating {} API keys with {} keys create ...",
                names.len(),
                binary.display()
            ));
            let config = scenario.exchange.config.clone();
            tokio::task::spawn_blocking(move || {
                keys::create_keys(&binary, config.as_deref(), &names)
            })
            .await
            .map_err(|e| format!("key creation failed: {e}"))??
        }
    };
    let flow = Flow::new(
        &scenario.flow,
        &rules,
        credentials.len(),
        scenario.seed,
        scenario.resp_type,
    )?;
    let target = match cluster {
        Some((kafka, pairs)) => Target::Kafka(
            kafka::KafkaTarget::new(&kafka, pairs, scenario.resp_type == RespType::Result).await?,
        ),
        None => Target::Http(HttpTarget::new(
            addr,
            &scenario.url.authority,
            &credentials,
            scenario.connections,
            scenario.http_client,
        )?),
    };
    target.warm_up().await?;

    let (pid, found_by) = match scenario.exchange.pid {
        Some(p) => (Some(p), "given"),
        // Engines are several processes; give one with `--pid` to watch it.
        None if scenario.target == TargetKind::Kafka => (None, "not given"),
        None => (procfs::find_listener(addr.port()), "listening port"),
    };

    let depth_rules: Vec<PairRules> = scenario
        .depth_pairs()
        .iter()
        .filter_map(|s| rules.iter().find(|r| &r.symbol == s).cloned())
        .collect();
    let mut depth = (!depth_rules.is_empty())
        .then(|| Subscriber::start(&base, depth_rules, scenario.depth.snapshot_limit));
    if let Some(d) = &mut depth
        && !d.ready(Duration::from_secs(5)).await
    {
        say("warning: the depth subscriber has not synced every pair after 5 s; going on");
    }

    // Scraped last, so the window is the run's and not the set-up's.
    let endpoints = scenario.metrics_endpoints();
    let before = if scenario.exchange.scrape_metrics && !endpoints.is_empty() {
        Some(scrape(&http, &endpoints).await)
    } else {
        None
    };
    let before_at = Instant::now();

    let schedule = Schedule::new(scenario.phases.clone());
    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder::new(schedule.phases().len())),
        flow: Mutex::new(flow),
        target,
        outstanding: AtomicUsize::new(0),
        max_outstanding: AtomicUsize::new(0),
        dispatched: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        drained: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
    });
    let rss_start = pid.and_then(procfs::rss_kib);
    let cpu_start = pid.and_then(procfs::cpu_seconds);
    let self_cpu_start = procfs::self_cpu_seconds();
    let started_unix_ms = clientkit::now_ms();
    say(&format!(
        "{}: {} requests over {:.0} s to {base} ({} users, {} connections, {}, {:?}); exchange pid {}",
        scenario.name,
        schedule.total(),
        schedule.duration().as_secs_f64(),
        credentials.len(),
        scenario.connections,
        scenario.resp_type.as_str(),
        scenario.http_client,
        pid.map_or("unknown".to_string(), |p| p.to_string()),
    ));

    let start = Instant::now() + Duration::from_millis(20);
    let gaps = depth.as_ref().map(|d| d.gaps.clone());
    let ticker = tokio::spawn(tick(
        shared.clone(),
        schedule.clone(),
        scenario.step.as_ref().map(|s| s.p99_bound),
        start,
        pid,
        gaps,
        opts.quiet,
    ));
    let ctrl_c = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                *lock(&shared.stop_reason) = Some("interrupted (Ctrl-C)".into());
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let (sent_all, dispatched_all) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn({
            let (shared, schedule) = (shared.clone(), schedule.clone());
            let pace = Pace {
                max_outstanding: scenario.max_outstanding,
                timeout: scenario.timeout,
                quantum: scenario.dispatch_quantum,
            };
            let rt = tokio::runtime::Handle::current();
            let start = start.into_std();
            move || {
                dispatch(shared, schedule, start, pace, rt);
                let _ = sent_all.send(());
            }
        })
        .map_err(|e| format!("cannot start the dispatcher thread: {e}"))?;
    let _ = dispatched_all.await;
    // Drain: every request ends by its deadline.
    let drain_deadline = Instant::now() + scenario.timeout + Duration::from_secs(2);
    while shared.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end = Instant::now();
    shared.drained.store(true, Ordering::Relaxed);
    let self_cpu_end = procfs::self_cpu_seconds();
    let cpu_end = pid.and_then(procfs::cpu_seconds);
    ctrl_c.abort();
    let step_verdicts = ticker.await.unwrap_or_default();

    // The engine may still apply what was logged (ACK mode): wait for its
    // queues to empty before the second scrape.
    let (engine, engine_error) = match before {
        None => (
            None,
            Some("not scraped (scrape_metrics = false, or no metrics endpoint)".to_string()),
        ),
        Some(Err(e)) => (None, Some(e)),
        Some(Ok(before)) => {
            let mut after = scrape(&http, &endpoints).await;
            let settle = Instant::now() + Duration::from_secs(10);
            while let Ok(a) = &after
                && (a.queue_depth > 0 || a.persister_lag > 0)
                && Instant::now() < settle
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                after = scrape(&http, &endpoints).await;
            }
            match after {
                Ok(after) => {
                    let window = before_at.elapsed().as_secs_f64().max(1e-3);
                    let counts = after.since(&before);
                    let per_min = |n: u64| n as f64 * 60.0 / window;
                    (
                        Some(EngineReport {
                            window_s: window,
                            commands_total: counts.total_commands(),
                            events_total: counts.total_events(),
                            commands_per_minute: per_min(counts.total_commands()),
                            events_per_minute: per_min(counts.total_events()),
                            commands_and_events_per_minute: per_min(
                                counts.total_commands() + counts.total_events(),
                            ),
                            events_per_minute_by_kind: counts
                                .events
                                .iter()
                                .map(|(k, v)| (k.clone(), per_min(*v)))
                                .collect(),
                            counts,
                        }),
                        None,
                    )
                }
                Err(e) => (None, Some(e)),
            }
        }
    };
    let depth = match depth {
        Some(d) => Some(d.finish().await?),
        None => None,
    };
    let rss_end = pid.and_then(procfs::rss_kib);

    let rec = lock(&shared.recorder);
    let stopped_early = lock(&shared.stop_reason).clone();
    let dispatched = shared.dispatched.load(Ordering::Relaxed);
    let all = rec.overall();
    let send_window = rec
        .seconds
        .iter()
        .rposition(|s| s.sent > 0)
        .map_or(1.0, |i| (i + 1) as f64)
        .min(end.saturating_duration_since(start).as_secs_f64().max(1e-3));
    let outcome_map = |counts: &dyn Fn(Outcome) -> u64| -> BTreeMap<&'static str, u64> {
        Outcome::ALL
            .iter()
            .map(|&o| (o.as_str(), counts(o)))
            .collect()
    };
    let by_outcome = |ps: &crate::stats::PhaseStats, g: Group| -> ByOutcome {
        Outcome::ALL
            .iter()
            .filter(|&&o| !ps.of(g, o).is_empty())
            .map(|&o| (o.as_str(), Percentiles::of(ps.of(g, o))))
            .collect()
    };
    let requests = Totals {
        planned: schedule.total(),
        dispatched,
        outcomes: outcome_map(&|o| all.count(o)),
        by_kind: Kind::ALL
            .iter()
            .map(|&k| {
                (
                    k.as_str(),
                    Outcome::ALL
                        .iter()
                        .map(|&o| (o.as_str(), all.kinds[k.index()][o.index()]))
                        .collect(),
                )
            })
            .collect(),
        error_codes: rec.codes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        failures: rec.failures.clone(),
        achieved_rate: all.total() as f64 / send_window,
        accepted_rate: all.count(Outcome::Accepted) as f64 / send_window,
        offered_rate: dispatched as f64 / send_window,
    };
    let latency_us = Latencies {
        answered: Percentiles::of(&all.answered()),
        orders: by_outcome(&all, Group::Orders),
        cancels: by_outcome(&all, Group::Cancels),
    };
    let phases: Vec<PhaseReport> = rec
        .phases
        .iter()
        .enumerate()
        .map(|(i, ps)| {
            let p = &schedule.phases()[i];
            let (from, to) = schedule
                .phase_bounds(i)
                .unwrap_or((Duration::ZERO, Duration::ZERO));
            // Sample k is taken at the end of second k.
            let rss = rec
                .seconds
                .iter()
                .enumerate()
                .filter(|(k, _)| (from.as_secs()..=to.as_secs()).contains(&(*k as u64 + 1)))
                .filter_map(|(_, s)| s.rss_kib)
                .max();
            let (p99, not_answered) = step_figures(ps);
            PhaseReport {
                name: p.name.clone(),
                rate: p.rate,
                duration_s: p.duration.as_secs_f64(),
                planned: schedule.phase_count(i),
                outcomes: outcome_map(&|o| ps.count(o)),
                cancel_outcomes: outcome_map(&|o| ps.kinds[Kind::Cancel.index()][o.index()]),
                answered: Percentiles::of(&ps.answered()),
                orders: by_outcome(ps, Group::Orders),
                cancels: by_outcome(ps, Group::Cancels),
                p99_answered_or_timeout_us: p99,
                not_answered_pct: not_answered,
                rss_kib_max: rss,
            }
        })
        .collect();
    let step = scenario.step.as_ref().map(|rule| {
        let broken = step_verdicts.iter().position(|v| !v.passed);
        let knee = match broken {
            Some(0) => None,
            Some(b) => step_verdicts.get(b - 1),
            None => step_verdicts.last(),
        };
        StepReport {
            p99_bound_ms: rule.p99_bound.as_secs_f64() * 1_000.0,
            max_not_answered_pct: STEP_MAX_NOT_ANSWERED_PCT,
            knee_rate: knee.map(|k| k.rate),
            knee_phase: knee.map(|k| k.name.clone()),
            broken_at: broken.map(|b| step_verdicts[b].name.clone()),
            steps: step_verdicts.clone(),
        }
    });
    let timeline: Vec<TimelinePoint> = rec
        .seconds
        .iter()
        .enumerate()
        .map(|(i, s)| TimelinePoint {
            t_s: i as u64 + 1,
            offered_rate: schedule.rate_at(Duration::from_secs(i as u64)),
            dispatched: s.sent,
            accepted: s.counts[Outcome::Accepted.index()],
            rejected: s.counts[Outcome::Rejected.index()],
            shed: s.counts[Outcome::Shed.index()],
            errors: s.counts[Outcome::Error.index()],
            timeouts: s.counts[Outcome::Timeout.index()],
            latency_us: Percentiles::of(&s.answered),
            rss_kib: s.rss_kib,
        })
        .collect();
    let ended = all.total();
    let exchange_process = pid.map(|pid| {
        let cpu = cpu_start.zip(cpu_end).map(|(a, b)| b - a);
        ProcessReport {
            pid,
            found_by,
            rss_kib_start: rss_start,
            rss_kib_max: rec
                .seconds
                .iter()
                .filter_map(|s| s.rss_kib)
                .chain(rss_start)
                .chain(rss_end)
                .max(),
            rss_kib_end: rss_end,
            cpu_s: cpu,
            cpu_us_per_request: cpu.filter(|_| ended > 0).map(|c| c * 1e6 / ended as f64),
        }
    });
    let self_cpu = self_cpu_start.zip(self_cpu_end).map(|(a, b)| b - a);
    let harness = HarnessReport {
        cpu_s: self_cpu,
        cpu_us_per_request: self_cpu
            .filter(|_| dispatched > 0)
            .map(|c| c * 1e6 / dispatched as f64),
        dispatch_lag_us: Percentiles::of(&rec.dispatch_lag),
        reconnects: shared.target.reconnects(),
        max_outstanding: shared.max_outstanding.load(Ordering::Relaxed),
    };
    let mut result = RunResult {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            target: scenario.target,
            url: base.clone(),
            seed: scenario.seed,
            resp_type: scenario.resp_type.as_str().into(),
            http_client: format!("{:?}", scenario.http_client).to_lowercase(),
            connections: scenario.connections,
            threads: scenario.threads,
            timeout_ms: scenario.timeout.as_millis() as u64,
            users: credentials.len(),
            pairs: scenario.flow.pairs.clone(),
            mix: scenario.flow.mix.clone(),
            phases: schedule
                .phases()
                .iter()
                .enumerate()
                .map(|(i, p)| PhasePlan {
                    name: p.name.clone(),
                    rate: p.rate,
                    duration_s: p.duration.as_secs_f64(),
                    planned: schedule.phase_count(i),
                })
                .collect(),
        },
        definitions: DEFINITIONS.into_iter().collect(),
        started_unix_ms,
        elapsed_s: end.saturating_duration_since(start).as_secs_f64(),
        stopped_early,
        requests,
        latency_us,
        phases,
        step,
        engine,
        engine_error,
        depth,
        exchange_process,
        harness,
        timeline,
        files: BTreeMap::new(),
    };
    crate::report::write_all(&mut result, &rec, &schedule, &opts.out_dir)?;
    Ok(result)
}

/// The step rule's figures for a phase: p99 (us) over answers and timeouts,
/// and the percent of requests shed, failed or timed out.
fn step_figures(ps: &crate::stats::PhaseStats) -> (u64, f64) {
    let mut h = ps.answered();
    for g in Group::ALL {
        let _ = h.add(ps.of(g, Outcome::Timeout));
    }
    let p99 = if h.is_empty() {
        0
    } else {
        h.value_at_quantile(0.99)
    };
    let total = ps.total();
    let bad = ps.count(Outcome::Shed) + ps.count(Outcome::Error) + ps.count(Outcome::Timeout);
    let pct = if total == 0 {
        0.0
    } else {
        bad as f64 * 100.0 / total as f64
    };
    (p99, pct)
}

/// How the dispatcher sends.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Due requests past this many outstanding are not sent.
    max_outstanding: usize,
    /// Answer deadline after the planned time.
    timeout: Duration,
    /// Shortest sleep between batches: bounds the dispatcher's wake-ups
    /// (and the runtime's) per second; a request waits about this long at
    /// most (plus the OS timer's slack) for its batch.
    quantum: Duration,
}

/// Sends every request at its planned time until the schedule ends or the
/// run is stopped. It runs on its own thread and sleeps with the OS timer
/// (tens of microseconds late), not tokio's 1 ms timer wheel, whose
/// rounding would add up to a millisecond to every latency; the requests
/// themselves run as tasks on the runtime behind `rt`.
fn dispatch(
    shared: Arc<Shared>,
    schedule: Schedule,
    start: std::time::Instant,
    pace: Pace,
    rt: tokio::runtime::Handle,
) {
    let Pace {
        max_outstanding,
        timeout,
        quantum,
    } = pace;
    let sleep_until = |t: std::time::Instant| {
        let now = std::time::Instant::now();
        if t > now {
            std::thread::sleep((t - now).max(quantum));
        }
    };
    let total = schedule.total();
    let mut n = 0u64;
    let mut batch: Vec<(usize, std::time::Instant, Request)> = Vec::new();
    // Nothing goes before its planned time.
    sleep_until(start);
    while n < total && !shared.stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        let due = schedule
            .due_by(now.saturating_duration_since(start))
            .min(total);
        if due > n {
            batch.clear();
            {
                let mut flow = lock(&shared.flow);
                while n < due {
                    if let Some((phase, at)) = schedule.planned(n) {
                        batch.push((phase, start + at, flow.next_request()));
                    }
                    n += 1;
                }
            }
            {
                let mut rec = lock(&shared.recorder);
                for (_, planned, _) in &batch {
                    let lag = now.saturating_duration_since(*planned);
                    let second = planned.saturating_duration_since(start).as_secs() as usize;
                    rec.sent(second, lag.as_micros() as u64);
                }
            }
            shared
                .dispatched
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let mut send = Vec::with_capacity(batch.len());
            for (phase, planned, req) in batch.drain(..) {
                let out = shared.outstanding.fetch_add(1, Ordering::Relaxed) + 1;
                shared.max_outstanding.fetch_max(out, Ordering::Relaxed);
                if out > max_outstanding {
                    shared.outstanding.fetch_sub(1, Ordering::Relaxed);
                    let s = now.saturating_duration_since(start).as_secs() as usize;
                    lock(&shared.recorder).unsent(phase, req.kind, s);
                    continue;
                }
                send.push((phase, Instant::from_std(planned), req));
            }
            // One hand-over to the runtime per batch; the requests are
            // spawned there, without waking it once each.
            let (shared, start) = (shared.clone(), Instant::from_std(start));
            rt.spawn(async move {
                for (phase, planned, req) in send {
                    let shared = shared.clone();
                    tokio::spawn(request(shared, phase, planned, req, start, timeout));
                }
            });
        }
        match schedule.planned(n) {
            Some((_, at)) => sleep_until(start + at),
            None => break,
        }
    }
}

/// Sends one request, waits for its answer and records it.
async fn request(
    shared: Arc<Shared>,
    phase: usize,
    planned: Instant,
    req: Request,
    start: Instant,
    timeout: Duration,
) {
    let r = shared.target.submit(&req, planned + timeout).await;
    let done = Instant::now();
    let latency = done.saturating_duration_since(planned).as_micros() as u64;
    let (outcome, code, failure) = match &r {
        Ok(a) => {
            let o = Outcome::of_status(a.status);
            let code = (o != Outcome::Accepted)
                .then(|| error_code(&a.body).unwrap_or(i64::from(a.status)));
            (o, code, None)
        }
        Err(SubmitError::Timeout) => (Outcome::Timeout, None, Some("timeout")),
        Err(SubmitError::Transport(why)) => (Outcome::Error, None, Some(*why)),
    };
    if let Ok(a) = &r {
        lock(&shared.flow).on_answer(&req, a.status, &a.body);
    }
    {
        let mut rec = lock(&shared.recorder);
        let s = done.saturating_duration_since(start).as_secs() as usize;
        rec.record(phase, req.kind, outcome, latency, s);
        if let Some(c) = code {
            rec.code(c);
        }
        if let Some(f) = failure {
            rec.failure(f);
        }
    }
    shared.outstanding.fetch_sub(1, Ordering::Relaxed);
}

/// Once a second: samples the exchange's RSS, prints progress, and judges
/// finished steps; stops the run at the first step over the bound.
/// Returns the step verdicts.
async fn tick(
    shared: Arc<Shared>,
    schedule: Schedule,
    step_bound: Option<Duration>,
    start: Instant,
    pid: Option<u32>,
    gaps: Option<Arc<AtomicU64>>,
    quiet: bool,
) -> Vec<StepVerdict> {
    let mut verdicts: Vec<StepVerdict> = Vec::new();
    let mut judged = 0usize;
    let mut second = 1u64;
    let total = schedule.total();
    loop {
        tokio::time::sleep_until(start + Duration::from_secs(second)).await;
        let elapsed = Duration::from_secs(second);
        let rss = pid.and_then(procfs::rss_kib);
        let dispatched = shared.dispatched.load(Ordering::Relaxed);
        let outstanding = shared.outstanding.load(Ordering::Relaxed);
        let stopped = shared.stop.load(Ordering::Relaxed);
        let finished = ((dispatched >= total || stopped) && outstanding == 0)
            || shared.drained.load(Ordering::Relaxed);
        let line = {
            let mut rec = lock(&shared.recorder);
            let s = (second - 1) as usize;
            if let Some(sec) = rec.second(s) {
                sec.rss_kib = rss;
            }
            let done = rec.done();
            let Some(sec) = rec.seconds.get(s) else {
                return verdicts;
            };
            let answered = sec.counts.iter().sum::<u64>();
            let p99 = if sec.answered.is_empty() {
                0
            } else {
                sec.answered.value_at_quantile(0.99)
            };
            let line = format!(
                "[{:>4}s] sent {dispatched}/{total} ({} planned/s) | done {done}: {}/s ok {} rej {} shed {} err {} t/o {} | p99(1s) {:.2} ms | in flight {outstanding}{}{}",
                second,
                schedule.rate_at(elapsed - Duration::from_millis(1)),
                answered,
                sec.counts[0],
                sec.counts[1],
                sec.counts[2],
                sec.counts[3],
                sec.counts[4],
                ms(p99),
                gaps.as_ref()
                    .map(|g| format!(" | gaps {}", g.load(Ordering::Relaxed)))
                    .unwrap_or_default(),
                rss.map(|r| format!(" | rss {} MiB", r / 1024))
                    .unwrap_or_default(),
            );
            // Judge steps whose requests have all ended.
            if let Some(bound) = step_bound {
                while judged < schedule.phases().len() {
                    let Some((_, end)) = schedule.phase_bounds(judged) else {
                        break;
                    };
                    let ps = &rec.phases[judged];
                    let complete = ps.total() >= schedule.phase_count(judged);
                    if elapsed < end || !(complete || finished) {
                        break;
                    }
                    if ps.total() == 0 {
                        // Never sent (the run stopped before it).
                        judged = schedule.phases().len();
                        break;
                    }
                    let (p99, not_answered) = step_figures(ps);
                    let p = &schedule.phases()[judged];
                    let passed = p99 <= bound.as_micros() as u64
                        && not_answered <= STEP_MAX_NOT_ANSWERED_PCT;
                    verdicts.push(StepVerdict {
                        name: p.name.clone(),
                        rate: p.rate,
                        p99_ms: ms(p99),
                        not_answered_pct: (not_answered * 100.0).round() / 100.0,
                        passed,
                    });
                    if !quiet {
                        eprintln!(
                            "  {}: p99 {:.2} ms, {:.2}% not answered: {}",
                            p.name,
                            ms(p99),
                            not_answered,
                            if passed {
                                "under the bound"
                            } else {
                                "BROKE the bound"
                            }
                        );
                    }
                    judged += 1;
                    if !passed && !shared.stop.swap(true, Ordering::Relaxed) {
                        *lock(&shared.stop_reason) = Some(format!(
                            "{} broke the bound: p99 {:.2} ms (bound {:.2} ms), {:.2}% not answered",
                            p.name,
                            ms(p99),
                            bound.as_secs_f64() * 1e3,
                            not_answered
                        ));
                    }
                }
            }
            line
        };
        if !quiet {
            eprintln!("{line}");
        }
        if finished {
            return verdicts;
        }
        second += 1;
    }
}
