//! One run of a scenario, in named stages:
//!
//! 1. [`setup`]: the pairs' rules (exchange info, or the supplied target's),
//!    the users' keys, the target and its connections, the depth
//!    subscriber, the exchange process to watch, a first `/metrics` scrape.
//! 2. [`send`]: the open-loop dispatcher on its own thread, the
//!    once-a-second progress line and samples, until the schedule ends or
//!    the run is stopped.
//! 3. [`drain`]: every request ends by its deadline; the engine settles and
//!    is scraped again; the depth subscriber's verdict.
//! 4. [`report`]: the figures ([`crate::result`]) and the files
//!    ([`crate::report`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::depth::{DepthReport, Subscriber};
pub use crate::error::RunError;
use crate::fanout::{Fanout, FanoutReport};
use crate::flow::{Flow, Group, Kind, PairRules, Request};
use crate::funding::{self, Funded};
use crate::loopback::LoopbackTarget;
use crate::metrics::EngineCounts;
use crate::result::{
    BacklogReport, ByOutcome, DEFINITIONS, EngineReport, HarnessReport, Latencies, PhasePlan,
    PhaseReport, ProcessReport, RunResult, ScenarioInfo, StepReport, StepVerdict, TimelinePoint,
    Totals,
};
use crate::scenario::{Keys, Scenario, TargetKind};
use crate::schedule::Schedule;
use crate::stats::{Backlog, Outcome, Percentiles, PhaseStats, Recorder};
use crate::target::{Completion, Finished, HttpTarget, SubmitError, Target, Ticket};
use crate::wsapi::WsTarget;
use crate::{keys, loopback, procfs};
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

/// A target built outside loadtest, for a `target = "direct"` scenario:
/// requests go to it instead of the gateway.
#[derive(Debug)]
pub struct SuppliedTarget {
    /// The rules of the pairs it trades, in its pair order (a request's
    /// `pair` indexes this list).
    pub rules: Vec<PairRules>,
    /// The target.
    pub target: Box<dyn Target>,
}

/// A step fails above this share of requests not answered.
const STEP_MAX_NOT_ANSWERED_PCT: f64 = 1.0;

/// How long the harness waits after the last answer for the engine to
/// apply and store what it holds. The gateway sheds orders while the
/// persister lags by more than `max_persister_lag` events (500,000 by
/// default), and the store keeps tens of thousands of events a second, so a
/// healthy exchange empties well within it.
const SETTLE_BOUND: Duration = Duration::from_secs(60);

/// A once-a-second `/metrics` scrape slower than this is skipped.
const BACKLOG_SCRAPE_BOUND: Duration = Duration::from_millis(800);

struct Shared {
    recorder: Mutex<Recorder>,
    flow: Mutex<Flow>,
    target: Box<dyn Target>,
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

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, RunError> {
    http.get(url)
        .send()
        .await
        .map_err(|e| RunError::Exchange(format!("GET {url}: {e} (is the exchange running?)")))?
        .json()
        .await
        .map_err(|e| RunError::Exchange(format!("GET {url}: not JSON: {e}")))
}

/// The engine counters of every endpoint, summed (one per engine process
/// in distributed mode).
async fn scrape(
    http: &reqwest::Client,
    endpoints: &[LoopbackTarget],
) -> Result<EngineCounts, RunError> {
    let mut text = String::new();
    for e in endpoints {
        let url = format!("{}/metrics", e.base);
        let t = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| RunError::Exchange(format!("GET {url}: {e}")))?
            .text()
            .await
            .map_err(|e| RunError::Exchange(format!("GET {url}: {e}")))?;
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

/// The async runtime a scenario runs on: its thread count, timers and I/O.
pub fn runtime(scenario: &Scenario) -> Result<tokio::runtime::Runtime, RunError> {
    if scenario.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(scenario.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| RunError::Harness(format!("cannot start the async runtime: {e}")))
}

/// Runs `scenario`; blocks until done. Builds its own async runtime with
/// the scenario's thread count.
pub fn run_blocking(scenario: &Scenario, opts: &RunOptions) -> Result<RunResult, RunError> {
    runtime(scenario)?.block_on(run(scenario, opts))
}

/// Runs an `http` scenario on the current async runtime.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunResult, RunError> {
    if scenario.target == TargetKind::Direct {
        return Err(RunError::Refused(
            "target = \"direct\" is run by the tool that supplies the target \
             (kafkaload run SCENARIO)"
                .into(),
        ));
    }
    run_stages(scenario, opts, None).await
}

/// Runs a `direct` scenario against `supplied` on the current async
/// runtime.
pub async fn run_supplied(
    scenario: &Scenario,
    opts: &RunOptions,
    supplied: SuppliedTarget,
) -> Result<RunResult, RunError> {
    if scenario.target != TargetKind::Direct {
        return Err(RunError::Refused(format!(
            "a supplied target runs target = \"direct\" scenarios, not {:?}",
            scenario.target
        )));
    }
    run_stages(scenario, opts, Some(supplied)).await
}

async fn run_stages(
    scenario: &Scenario,
    opts: &RunOptions,
    supplied: Option<SuppliedTarget>,
) -> Result<RunResult, RunError> {
    let ready = setup(scenario, opts, supplied).await?;
    let sent = send(scenario, opts, ready)?;
    let drained = drain(scenario, sent).await?;
    report(scenario, opts, drained)
}

fn say(opts: &RunOptions, s: &str) {
    if !opts.quiet {
        eprintln!("{s}");
    }
}

/// What the set-up hands to the sending stage.
struct Ready {
    ctx: Context,
    flow: Flow,
    target: Box<dyn Target>,
}

/// What the run knows of its surroundings, from set-up to report.
struct Context {
    base: String,
    http: reqwest::Client,
    users: usize,
    process: Watched,
    depth: Option<Subscriber>,
    fanout: Option<Fanout>,
    endpoints: Vec<LoopbackTarget>,
    /// The first `/metrics` scrape, when asked for.
    before: Option<Result<EngineCounts, RunError>>,
    before_at: Instant,
}

/// The exchange process whose RSS and CPU are sampled, if known.
#[derive(Debug, Clone, Copy)]
struct Watched {
    pid: Option<u32>,
    found_by: &'static str,
}

/// Stage 1: everything before the first request.
async fn setup(
    scenario: &Scenario,
    opts: &RunOptions,
    supplied: Option<SuppliedTarget>,
) -> Result<Ready, RunError> {
    let addr = loopback::resolve(&scenario.url).await?;
    let base = scenario.url.base.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| RunError::Harness(format!("cannot build the HTTP client: {e}")))?;
    // A supplied target brings its pairs' rules and needs no keys.
    let (rules, users, target) = match supplied {
        Some(s) => (s.rules, scenario.users.count, s.target),
        None => {
            let info = get_json(&http, &format!("{base}/api/v3/exchangeInfo")).await?;
            let rules = PairRules::from_exchange_info(&info)?;
            let (credentials, created) = credentials(scenario, opts).await?;
            if let Some(names) = created {
                fund_users(scenario, opts, &http, &info, &names).await?;
            }
            let target = gateway_target(scenario, addr, &credentials)?;
            (rules, credentials.len(), target)
        }
    };
    let flow = Flow::new(
        &scenario.flow,
        &rules,
        users,
        scenario.seed,
        scenario.resp_type,
    )?;
    target.warm_up().await?;
    let process = watched(scenario, addr);
    let depth = start_depth(scenario, opts, &base, &rules).await;
    let fanout = start_fanout(scenario, opts, &base).await;
    // Scraped last, so the window is the run's and not the set-up's.
    let endpoints = scenario.metrics_endpoints();
    let before = if scenario.exchange.scrape_metrics && !endpoints.is_empty() {
        Some(scrape(&http, &endpoints).await)
    } else {
        None
    };
    Ok(Ready {
        ctx: Context {
            base,
            http,
            users,
            process,
            depth,
            fanout,
            endpoints,
            before,
            before_at: Instant::now(),
        },
        flow,
        target,
    })
}

/// The path of the `exchange` binary that creates keys.
fn exchange_binary(scenario: &Scenario) -> PathBuf {
    scenario
        .exchange
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/release/exchange"))
}

/// Credits the users the harness created (see [`funding`]).
async fn fund_users(
    scenario: &Scenario,
    opts: &RunOptions,
    http: &reqwest::Client,
    info: &serde_json::Value,
    names: &[String],
) -> Result<(), RunError> {
    let amount = scenario.users.funding.trim();
    if amount.trim_start_matches(['0', '.']).is_empty() {
        return Ok(());
    }
    let assets = funding::assets(info);
    let binary = exchange_binary(scenario);
    let config = scenario.exchange.config.as_deref();
    let base = &scenario.url.base;
    let admin = funding::admin_key(&binary, config).await?;
    let funded = funding::fund(http, base, &admin, names, &assets, amount).await?;
    let line = match funded {
        Funded::Users { deposits, assets } => format!(
            "funded {} users with {amount} of {} ({deposits} deposits)",
            names.len(),
            assets.join(", ")
        ),
        Funded::NotNeeded => "the exchange holds no money: users not funded".into(),
    };
    say(opts, &line);
    Ok(())
}

/// The users' keys: the caller's, or created with `exchange keys create`
/// (then with the users' names, to fund them).
async fn credentials(
    scenario: &Scenario,
    opts: &RunOptions,
) -> Result<(Vec<Credentials>, Option<Vec<String>>), RunError> {
    if scenario.users.keys == Keys::Unchecked {
        let made_up = (1..=scenario.users.count)
            .map(|i| Credentials {
                api_key: format!("{}-{i}", scenario.users.name_prefix),
                secret: "unchecked".into(),
            })
            .collect();
        return Ok((made_up, None));
    }
    match &opts.credentials {
        Some(c) if c.len() >= scenario.users.count => {
            Ok((c[..scenario.users.count].to_vec(), None))
        }
        Some(c) => Err(RunError::Refused(format!(
            "{} keys given for {} users",
            c.len(),
            scenario.users.count
        ))),
        None => {
            let binary = exchange_binary(scenario);
            let names: Vec<String> = (1..=scenario.users.count)
                .map(|i| format!("{}-{i}", scenario.users.name_prefix))
                .collect();
            say(
                opts,
                &format!(
                    "creating {} API keys with {} keys create ...",
                    names.len(),
                    binary.display()
                ),
            );
            let config = scenario.exchange.config.clone();
            let created = names.clone();
            let keys = tokio::task::spawn_blocking(move || {
                keys::create_keys(&binary, config.as_deref(), &names)
            })
            .await
            .map_err(|e| RunError::Harness(format!("key creation failed: {e}")))??;
            Ok((keys, Some(created)))
        }
    }
}

/// The gateway, over HTTP or its WebSocket API.
fn gateway_target(
    scenario: &Scenario,
    addr: SocketAddr,
    credentials: &[Credentials],
) -> Result<Box<dyn Target>, RunError> {
    Ok(if scenario.target == TargetKind::Ws {
        Box::new(WsTarget::new(
            addr,
            credentials,
            scenario.connections,
            scenario.ws_in_flight,
        )?)
    } else {
        Box::new(HttpTarget::new(
            addr,
            &scenario.url.authority,
            credentials,
            scenario.connections,
            scenario.http_client,
        )?)
    })
}

fn watched(scenario: &Scenario, addr: SocketAddr) -> Watched {
    let (pid, found_by) = match scenario.exchange.pid {
        Some(p) => (Some(p), "given"),
        // Engines are several processes; give one with `--pid` to watch it.
        None if scenario.target == TargetKind::Direct => (None, "not given"),
        None => (procfs::find_listener(addr.port()), "listening port"),
    };
    Watched { pid, found_by }
}

/// The fan-out benchmark's subscribers, when the scenario has some.
async fn start_fanout(scenario: &Scenario, opts: &RunOptions, base: &str) -> Option<Fanout> {
    let file = &scenario.fanout;
    if file.subscribers == 0 || scenario.target == TargetKind::Direct {
        return None;
    }
    let f = Fanout::start(base, file).await;
    say(
        opts,
        &format!(
            "fan-out: {} of {} subscribers connected to {}",
            f.connected(),
            file.subscribers,
            file.streams.join("/")
        ),
    );
    Some(f)
}

async fn start_depth(
    scenario: &Scenario,
    opts: &RunOptions,
    base: &str,
    rules: &[PairRules],
) -> Option<Subscriber> {
    let depth_rules: Vec<PairRules> = scenario
        .depth_pairs()
        .iter()
        .filter_map(|s| rules.iter().find(|r| r.is_named(s)).cloned())
        .collect();
    if depth_rules.is_empty() {
        return None;
    }
    let mut d = Subscriber::start(base, depth_rules, scenario.depth.snapshot_limit);
    if !d.ready(Duration::from_secs(5)).await {
        say(
            opts,
            "warning: the depth subscriber has not synced every pair after 5 s; going on",
        );
    }
    Some(d)
}

/// The process's and the harness's counters when sending began.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    rss: Option<u64>,
    cpu: Option<f64>,
    self_cpu: Option<f64>,
    unix_ms: u64,
}

/// What the sending stage hands to the drain.
struct Sent {
    ctx: Context,
    shared: Arc<Shared>,
    schedule: Schedule,
    start: Instant,
    baseline: Baseline,
    ticker: JoinHandle<Vec<StepVerdict>>,
    ctrl_c: JoinHandle<()>,
    dispatched_all: tokio::sync::oneshot::Receiver<()>,
}

/// Stage 2: the dispatcher thread, the ticker and Ctrl-C, started.
fn send(scenario: &Scenario, opts: &RunOptions, ready: Ready) -> Result<Sent, RunError> {
    let Ready { ctx, flow, target } = ready;
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
    let pid = ctx.process.pid;
    let baseline = Baseline {
        rss: pid.and_then(procfs::rss_kib),
        cpu: pid.and_then(procfs::cpu_seconds),
        self_cpu: procfs::self_cpu_seconds(),
        unix_ms: clientkit::now_ms(),
    };
    // A WebSocket API run opens at least one connection per user.
    let (connections, transport) = match scenario.target {
        TargetKind::Ws => (
            crate::wsapi::per_user(scenario.connections, ctx.users) * ctx.users,
            "WebSocket API".to_string(),
        ),
        _ => (scenario.connections, format!("{:?}", scenario.http_client)),
    };
    say(
        opts,
        &format!(
            "{}: {} requests over {:.0} s to {} ({} users, {connections} connections, {}, {transport}); exchange pid {}",
            scenario.name,
            schedule.total(),
            schedule.duration().as_secs_f64(),
            ctx.base,
            ctx.users,
            scenario.resp_type.as_str(),
            pid.map_or("unknown".to_string(), |p| p.to_string()),
        ),
    );
    let start = Instant::now() + Duration::from_millis(20);
    let ticker = tokio::spawn(tick(
        shared.clone(),
        schedule.clone(),
        Watch {
            step_bound: scenario.step.as_ref().map(|s| s.p99_bound),
            start,
            pid,
            gaps: ctx.depth.as_ref().map(|d| d.gaps.clone()),
            metrics: matches!(ctx.before, Some(Ok(_)))
                .then(|| (ctx.http.clone(), ctx.endpoints.clone())),
            quiet: opts.quiet,
        },
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
        .map_err(|e| RunError::Harness(format!("cannot start the dispatcher thread: {e}")))?;
    Ok(Sent {
        ctx,
        shared,
        schedule,
        start,
        baseline,
        ticker,
        ctrl_c,
        dispatched_all,
    })
}

/// What the drain hands to the report.
struct Drained {
    shared: Arc<Shared>,
    schedule: Schedule,
    users: usize,
    base: String,
    process: Watched,
    baseline: Baseline,
    start: Instant,
    end: Instant,
    self_cpu_end: Option<f64>,
    cpu_end: Option<f64>,
    rss_end: Option<u64>,
    step_verdicts: Vec<StepVerdict>,
    /// The engine's counts, or why there are none.
    engine: Result<EngineReport, RunError>,
    depth: Option<DepthReport>,
    fanout: Option<FanoutReport>,
}

/// Stage 3: waits for every request to end (each by its deadline), then
/// for the engine to settle, and collects the depth subscriber's verdict.
async fn drain(scenario: &Scenario, sent: Sent) -> Result<Drained, RunError> {
    let Sent {
        ctx,
        shared,
        schedule,
        start,
        baseline,
        ticker,
        ctrl_c,
        dispatched_all,
    } = sent;
    let _ = dispatched_all.await;
    let drain_deadline = Instant::now() + scenario.timeout + Duration::from_secs(2);
    while shared.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end = Instant::now();
    shared.drained.store(true, Ordering::Relaxed);
    let self_cpu_end = procfs::self_cpu_seconds();
    let pid = ctx.process.pid;
    let cpu_end = pid.and_then(procfs::cpu_seconds);
    ctrl_c.abort();
    let step_verdicts = ticker.await.unwrap_or_default();
    // Missing engine counts do not fail the run: the report says why.
    let engine = engine_report(&ctx, &shared.recorder).await;
    let depth = match ctx.depth {
        Some(d) => Some(d.finish().await?),
        None => None,
    };
    let fanout = match ctx.fanout {
        Some(f) => Some(f.finish().await),
        None => None,
    };
    Ok(Drained {
        shared,
        schedule,
        users: ctx.users,
        base: ctx.base,
        process: ctx.process,
        baseline,
        start,
        end,
        self_cpu_end,
        cpu_end,
        rss_end: pid.and_then(procfs::rss_kib),
        step_verdicts,
        engine,
        depth,
        fanout,
    })
}

/// The engine's counts over the run. The engine may still apply and store
/// what was logged (ACK mode): the backlog is watched until it empties, for
/// at most `SETTLE_BOUND`, before the second scrape.
async fn engine_report(ctx: &Context, rec: &Mutex<Recorder>) -> Result<EngineReport, RunError> {
    let before = match &ctx.before {
        None => {
            return Err(RunError::Exchange(
                "not scraped (scrape_metrics = false, or no metrics endpoint)".into(),
            ));
        }
        Some(Err(e)) => return Err(RunError::Exchange(e.to_string())),
        Some(Ok(before)) => before,
    };
    let ended = Instant::now();
    let mut after = scrape(&ctx.http, &ctx.endpoints).await?;
    let at_end = after.backlog();
    while !after.backlog().is_empty() && ended.elapsed() < SETTLE_BOUND {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape(&ctx.http, &ctx.endpoints).await?;
    }
    let empty_after_s = after
        .backlog()
        .is_empty()
        .then(|| ended.elapsed().as_secs_f64());
    let window = ctx.before_at.elapsed().as_secs_f64().max(1e-3);
    let counts = after.since(before);
    let per_min = |n: u64| n as f64 * 60.0 / window;
    Ok(EngineReport {
        window_s: window,
        commands_total: counts.total_commands(),
        events_total: counts.total_events(),
        commands_per_minute: per_min(counts.total_commands()),
        events_per_minute: per_min(counts.total_events()),
        commands_and_events_per_minute: per_min(counts.total_commands() + counts.total_events()),
        events_per_minute_by_kind: counts
            .events
            .iter()
            .map(|(k, v)| (k.clone(), per_min(*v)))
            .collect(),
        counts,
        backlog: backlog_report(&lock(rec), at_end, empty_after_s),
    })
}

/// The backlog's samples, summed up.
fn backlog_report(rec: &Recorder, at_end: Backlog, empty_after_s: Option<f64>) -> BacklogReport {
    let samples: Vec<Backlog> = rec.seconds.iter().filter_map(|s| s.backlog).collect();
    let mut lags: Vec<u64> = samples.iter().map(|b| b.persister_lag).collect();
    lags.sort_unstable();
    BacklogReport {
        samples: samples.len() as u64,
        persister_lag_max: lags.last().copied().unwrap_or(0),
        persister_lag_p50: lags.get(lags.len() / 2).copied().unwrap_or(0),
        queue_depth_max: samples.iter().map(|b| b.queue_depth).max().unwrap_or(0),
        at_end,
        empty_after_s,
        settle_bound_s: SETTLE_BOUND.as_secs_f64(),
    }
}

/// Stage 4: the figures, then the files.
fn report(scenario: &Scenario, opts: &RunOptions, d: Drained) -> Result<RunResult, RunError> {
    let rec = lock(&d.shared.recorder);
    let (engine, engine_error) = match &d.engine {
        Ok(e) => (Some(e.clone()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let requests = totals(&d, &rec);
    let ended = rec.overall().total();
    let mut result = RunResult {
        scenario: scenario_info(scenario, &d),
        definitions: DEFINITIONS.into_iter().collect(),
        started_unix_ms: d.baseline.unix_ms,
        elapsed_s: d.end.saturating_duration_since(d.start).as_secs_f64(),
        stopped_early: lock(&d.shared.stop_reason).clone(),
        requests,
        latency_us: latencies(&rec.overall()),
        phases: phase_reports(&d.schedule, &rec),
        step: step_report(scenario, &d.step_verdicts),
        engine,
        engine_error,
        depth: d.depth.clone(),
        fanout: d.fanout.clone(),
        exchange_process: process_report(&d, &rec, ended),
        harness: harness_report(&d, &rec),
        timeline: timeline(&d.schedule, &rec),
        files: BTreeMap::new(),
    };
    crate::report::write_all(&mut result, &rec, &d.schedule, &opts.out_dir)?;
    Ok(result)
}

fn outcome_map(counts: impl Fn(Outcome) -> u64) -> BTreeMap<&'static str, u64> {
    Outcome::ALL
        .iter()
        .map(|&o| (o.as_str(), counts(o)))
        .collect()
}

fn by_outcome(ps: &PhaseStats, g: Group) -> ByOutcome {
    Outcome::ALL
        .iter()
        .filter(|&&o| !ps.of(g, o).is_empty())
        .map(|&o| (o.as_str(), Percentiles::of(ps.of(g, o))))
        .collect()
}

fn totals(d: &Drained, rec: &Recorder) -> Totals {
    let all = rec.overall();
    let dispatched = d.shared.dispatched.load(Ordering::Relaxed);
    let send_window = rec
        .seconds
        .iter()
        .rposition(|s| s.sent > 0)
        .map_or(1.0, |i| (i + 1) as f64)
        .min(
            d.end
                .saturating_duration_since(d.start)
                .as_secs_f64()
                .max(1e-3),
        );
    Totals {
        planned: d.schedule.total(),
        dispatched,
        outcomes: outcome_map(|o| all.count(o)),
        by_kind: Kind::ALL
            .iter()
            .map(|&k| (k.as_str(), outcome_map(|o| all.kinds[k.index()][o.index()])))
            .collect(),
        error_codes: rec.codes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        failures: rec.failures.clone(),
        achieved_rate: all.total() as f64 / send_window,
        accepted_rate: all.count(Outcome::Accepted) as f64 / send_window,
        offered_rate: dispatched as f64 / send_window,
    }
}

fn latencies(all: &PhaseStats) -> Latencies {
    Latencies {
        answered: Percentiles::of(&all.answered()),
        orders: by_outcome(all, Group::Orders),
        cancels: by_outcome(all, Group::Cancels),
    }
}

fn phase_reports(schedule: &Schedule, rec: &Recorder) -> Vec<PhaseReport> {
    rec.phases
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
                outcomes: outcome_map(|o| ps.count(o)),
                cancel_outcomes: outcome_map(|o| ps.kinds[Kind::Cancel.index()][o.index()]),
                answered: Percentiles::of(&ps.answered()),
                orders: by_outcome(ps, Group::Orders),
                cancels: by_outcome(ps, Group::Cancels),
                p99_answered_or_timeout_us: p99,
                not_answered_pct: not_answered,
                rss_kib_max: rss,
            }
        })
        .collect()
}

fn step_report(scenario: &Scenario, verdicts: &[StepVerdict]) -> Option<StepReport> {
    let rule = scenario.step.as_ref()?;
    let broken = verdicts.iter().position(|v| !v.passed);
    let knee = match broken {
        Some(0) => None,
        Some(b) => verdicts.get(b - 1),
        None => verdicts.last(),
    };
    Some(StepReport {
        p99_bound_ms: rule.p99_bound.as_secs_f64() * 1_000.0,
        max_not_answered_pct: STEP_MAX_NOT_ANSWERED_PCT,
        knee_rate: knee.map(|k| k.rate),
        knee_phase: knee.map(|k| k.name.clone()),
        broken_at: broken.map(|b| verdicts[b].name.clone()),
        steps: verdicts.to_vec(),
    })
}

fn timeline(schedule: &Schedule, rec: &Recorder) -> Vec<TimelinePoint> {
    rec.seconds
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
            backlog: s.backlog,
        })
        .collect()
}

fn process_report(d: &Drained, rec: &Recorder, ended: u64) -> Option<ProcessReport> {
    let pid = d.process.pid?;
    let cpu = d.baseline.cpu.zip(d.cpu_end).map(|(a, b)| b - a);
    Some(ProcessReport {
        pid,
        found_by: d.process.found_by,
        rss_kib_start: d.baseline.rss,
        rss_kib_max: rec
            .seconds
            .iter()
            .filter_map(|s| s.rss_kib)
            .chain(d.baseline.rss)
            .chain(d.rss_end)
            .max(),
        rss_kib_end: d.rss_end,
        cpu_s: cpu,
        cpu_us_per_request: cpu.filter(|_| ended > 0).map(|c| c * 1e6 / ended as f64),
    })
}

fn harness_report(d: &Drained, rec: &Recorder) -> HarnessReport {
    let dispatched = d.shared.dispatched.load(Ordering::Relaxed);
    let self_cpu = d.baseline.self_cpu.zip(d.self_cpu_end).map(|(a, b)| b - a);
    HarnessReport {
        cpu_s: self_cpu,
        cpu_us_per_request: self_cpu
            .filter(|_| dispatched > 0)
            .map(|c| c * 1e6 / dispatched as f64),
        dispatch_lag_us: Percentiles::of(&rec.dispatch_lag),
        reconnects: d.shared.target.reconnects(),
        max_outstanding: d.shared.max_outstanding.load(Ordering::Relaxed),
    }
}

fn scenario_info(scenario: &Scenario, d: &Drained) -> ScenarioInfo {
    let schedule = &d.schedule;
    ScenarioInfo {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        target: scenario.target,
        url: d.base.clone(),
        seed: scenario.seed,
        resp_type: scenario.resp_type.as_str().into(),
        http_client: format!("{:?}", scenario.http_client).to_lowercase(),
        connections: scenario.connections,
        threads: scenario.threads,
        timeout_ms: scenario.timeout.as_millis() as u64,
        users: d.users,
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
    }
}

/// The step rule's figures for a phase: p99 (us) over answers and timeouts,
/// and the percent of requests shed, failed or timed out.
fn step_figures(ps: &PhaseStats) -> (u64, f64) {
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
/// rounding would add up to a millisecond to every latency. A [`crate::target::Batched`]
/// target takes each batch from this thread; otherwise the requests run as
/// tasks on the runtime behind `rt`.
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
    let ended: Completion = {
        let (shared, start) = (shared.clone(), Instant::from_std(start));
        Arc::new(move |finished| record(&shared, finished, start))
    };
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
            if let Some(batched) = shared.target.batched() {
                // The whole batch at once, from this thread.
                let tickets = send
                    .into_iter()
                    .map(|(phase, planned, req)| Ticket {
                        req,
                        phase,
                        planned,
                        deadline: planned + timeout,
                    })
                    .collect();
                batched.send_all(tickets, &ended);
            } else {
                // One hand-over to the runtime per batch; the requests are
                // spawned there, without waking it once each.
                let (shared, ended) = (shared.clone(), ended.clone());
                rt.spawn(async move {
                    for (phase, planned, req) in send {
                        let ticket = Ticket {
                            req,
                            phase,
                            planned,
                            deadline: planned + timeout,
                        };
                        tokio::spawn(request(shared.clone(), ticket, ended.clone()));
                    }
                });
            }
        }
        match schedule.planned(n) {
            Some((_, at)) => sleep_until(start + at),
            None => break,
        }
    }
}

/// Sends one request and waits for its answer.
async fn request(shared: Arc<Shared>, ticket: Ticket, ended: Completion) {
    let r = shared.target.submit(&ticket.req, ticket.deadline).await;
    ended(vec![(ticket, r, Instant::now())]);
}

/// Records requests that ended: their latency from the planned time,
/// outcome and error code, and what the flow learns from the answers;
/// each lock once per call.
fn record(shared: &Shared, finished: Vec<Finished>, start: Instant) {
    {
        let mut flow = lock(&shared.flow);
        for (t, r, _) in &finished {
            if let Ok(a) = r {
                flow.on_answer(&t.req, a.status, &a.body);
            }
        }
    }
    let mut rec = lock(&shared.recorder);
    for (t, r, done) in &finished {
        let latency = done.saturating_duration_since(t.planned).as_micros() as u64;
        let (outcome, code, failure) = match r {
            Ok(a) => {
                let o = Outcome::of_status(a.status);
                let code = (o != Outcome::Accepted)
                    .then(|| error_code(&a.body).unwrap_or(i64::from(a.status)));
                (o, code, None)
            }
            Err(SubmitError::Timeout) => (Outcome::Timeout, None, Some("timeout")),
            Err(SubmitError::Transport(why)) => (Outcome::Error, None, Some(*why)),
        };
        let s = done.saturating_duration_since(start).as_secs() as usize;
        rec.record(t.phase, t.req.kind, outcome, latency, s);
        if let Some(c) = code {
            rec.code(c);
        }
        if let Some(f) = failure {
            rec.failure(f);
        }
    }
    drop(rec);
    shared
        .outstanding
        .fetch_sub(finished.len(), Ordering::Relaxed);
}

/// What the ticker watches besides the shared state.
struct Watch {
    /// The step rule's bound on p99, for a step-up.
    step_bound: Option<Duration>,
    start: Instant,
    pid: Option<u32>,
    /// The depth subscriber's gap counter.
    gaps: Option<Arc<AtomicU64>>,
    /// Where the engine's gauges are scraped, when the run scrapes them.
    metrics: Option<(reqwest::Client, Vec<LoopbackTarget>)>,
    quiet: bool,
}

/// Once a second: samples the exchange's RSS and the engine's backlog,
/// prints progress, and judges finished steps; stops the run at the first
/// step over the bound. Returns the step verdicts.
async fn tick(shared: Arc<Shared>, schedule: Schedule, w: Watch) -> Vec<StepVerdict> {
    let mut judge = Judge {
        verdicts: Vec::new(),
        judged: 0,
    };
    let mut second = 1u64;
    let total = schedule.total();
    loop {
        tokio::time::sleep_until(w.start + Duration::from_secs(second)).await;
        let elapsed = Duration::from_secs(second);
        let rss = w.pid.and_then(procfs::rss_kib);
        let backlog = sample_backlog(w.metrics.as_ref()).await;
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
                sec.backlog = backlog;
            }
            let done = rec.done();
            let Some(sec) = rec.seconds.get(s) else {
                return judge.verdicts;
            };
            let answered = sec.counts.iter().sum::<u64>();
            let p99 = if sec.answered.is_empty() {
                0
            } else {
                sec.answered.value_at_quantile(0.99)
            };
            let line = format!(
                "[{:>4}s] sent {dispatched}/{total} ({} planned/s) | done {done}: {}/s ok {} rej {} shed {} err {} t/o {} | p99(1s) {:.2} ms | in flight {outstanding}{}{}{}",
                second,
                schedule.rate_at(elapsed - Duration::from_millis(1)),
                answered,
                sec.counts[0],
                sec.counts[1],
                sec.counts[2],
                sec.counts[3],
                sec.counts[4],
                ms(p99),
                w.gaps
                    .as_ref()
                    .map(|g| format!(" | gaps {}", g.load(Ordering::Relaxed)))
                    .unwrap_or_default(),
                rss.map(|r| format!(" | rss {} MiB", r / 1024))
                    .unwrap_or_default(),
                backlog
                    .map(|b| format!(
                        " | unstored {} unapplied {}",
                        b.persister_lag, b.queue_depth
                    ))
                    .unwrap_or_default(),
            );
            if let Some(bound) = w.step_bound {
                let now = Now { elapsed, finished };
                judge.steps(&shared, &schedule, &rec, bound, now, w.quiet);
            }
            line
        };
        if !w.quiet {
            eprintln!("{line}");
        }
        if finished {
            return judge.verdicts;
        }
        second += 1;
    }
}

/// The engine's backlog now, or `None` when `/metrics` does not answer
/// within `BACKLOG_SCRAPE_BOUND` (the tick must not fall behind).
async fn sample_backlog(
    metrics: Option<&(reqwest::Client, Vec<LoopbackTarget>)>,
) -> Option<Backlog> {
    let (http, endpoints) = metrics?;
    let scraped = tokio::time::timeout(BACKLOG_SCRAPE_BOUND, scrape(http, endpoints)).await;
    Some(scraped.ok()?.ok()?.backlog())
}

/// Where the run is, for judging steps.
#[derive(Debug, Clone, Copy)]
struct Now {
    /// Seconds since the start.
    elapsed: Duration,
    /// Every request has ended (or the run gave up waiting).
    finished: bool,
}

/// The step rule's verdicts so far.
struct Judge {
    verdicts: Vec<StepVerdict>,
    /// Phases judged.
    judged: usize,
}

impl Judge {
    /// Judges the steps whose requests have all ended; stops the run at the
    /// first over the bound.
    fn steps(
        &mut self,
        shared: &Shared,
        schedule: &Schedule,
        rec: &Recorder,
        bound: Duration,
        now: Now,
        quiet: bool,
    ) {
        while self.judged < schedule.phases().len() {
            let Some((_, end)) = schedule.phase_bounds(self.judged) else {
                break;
            };
            let ps = &rec.phases[self.judged];
            let complete = ps.total() >= schedule.phase_count(self.judged);
            if now.elapsed < end || !(complete || now.finished) {
                break;
            }
            if ps.total() == 0 {
                // Never sent (the run stopped before it).
                self.judged = schedule.phases().len();
                break;
            }
            let (p99, not_answered) = step_figures(ps);
            let p = &schedule.phases()[self.judged];
            let passed =
                p99 <= bound.as_micros() as u64 && not_answered <= STEP_MAX_NOT_ANSWERED_PCT;
            self.verdicts.push(StepVerdict {
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
            self.judged += 1;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(persister_lag: u64, queue_depth: u64) -> Backlog {
        Backlog {
            persister_lag,
            queue_depth,
        }
    }

    #[test]
    fn the_backlog_report_sums_up_the_seconds_that_were_sampled() {
        let mut rec = Recorder::new(1);
        let samples = [
            Some(backlog(10, 0)),
            None,
            Some(backlog(400, 7)),
            Some(backlog(30, 2)),
        ];
        for (s, b) in samples.into_iter().enumerate() {
            rec.second(s).expect("within the time line").backlog = b;
        }
        let r = backlog_report(&rec, backlog(5, 1), Some(1.5));
        assert_eq!(r.samples, 3);
        assert_eq!(r.persister_lag_max, 400);
        assert_eq!(r.persister_lag_p50, 30);
        assert_eq!(r.queue_depth_max, 7);
        assert_eq!(r.at_end, backlog(5, 1));
        assert_eq!(r.empty_after_s, Some(1.5));
        assert_eq!(r.settle_bound_s, SETTLE_BOUND.as_secs_f64());
    }

    /// A loopback endpoint answering every connection with `answer`
    /// (`None`: accepts and never answers).
    fn endpoint(answer: Option<&'static str>) -> LoopbackTarget {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut socket in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = socket.write_all(a.as_bytes());
                    }
                    None => held.push(socket),
                }
            }
        });
        loopback::check_url(&url).expect("loopback")
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    async fn sample(endpoints: Vec<LoopbackTarget>) -> Option<Backlog> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        sample_backlog(Some(&(http, endpoints))).await
    }

    #[tokio::test]
    async fn the_backlog_is_summed_over_the_endpoints_and_negative_gauges_read_as_zero() {
        let a = ok("matching_persister_lag_events{pair=\"BTC-EUR\"} 7\n\
                    matching_persister_lag_events{pair=\"ETH-EUR\"} 5\n\
                    matching_actor_queue_depth{pair=\"BTC-EUR\"} 2\n");
        let b = ok("matching_persister_lag_events{pair=\"ETH-BTC\"} -3\n\
                    matching_actor_queue_depth{pair=\"ETH-BTC\"} 1\n");
        let endpoints = vec![endpoint(Some(a.leak())), endpoint(Some(b.leak()))];
        assert_eq!(sample(endpoints).await, Some(backlog(12, 3)));
        assert_eq!(sample_backlog(None).await, None, "not scraped: no sample");
    }

    #[tokio::test]
    async fn an_endpoint_that_fails_or_stalls_gives_no_sample() {
        let not_found = endpoint(Some(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ));
        assert_eq!(sample(vec![not_found]).await, None, "a 404 is not zero");
        let garbage = endpoint(Some("not http at all\r\n\r\n"));
        assert_eq!(sample(vec![garbage]).await, None);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("http://{}", l.local_addr().expect("addr"));
            drop(l);
            loopback::check_url(&url).expect("loopback")
        };
        assert_eq!(sample(vec![closed]).await, None, "connection refused");
        // One stalled endpoint spoils the sum: no sample, within the bound.
        let good = endpoint(Some(ok("matching_actor_queue_depth 1\n").leak()));
        let started = std::time::Instant::now();
        assert_eq!(sample(vec![good, endpoint(None)]).await, None);
        let took = started.elapsed();
        assert!(took >= BACKLOG_SCRAPE_BOUND, "{took:?}");
        assert!(
            took < BACKLOG_SCRAPE_BOUND + Duration::from_millis(500),
            "{took:?}"
        );
    }

    #[test]
    fn the_backlog_is_described_settled_or_not() {
        let mut r = backlog_report(&Recorder::new(1), backlog(9, 4), Some(2.5));
        let settled = r.describe();
        assert!(
            settled.contains("9 events unstored, 4 commands unapplied"),
            "{settled}"
        );
        assert!(settled.ends_with("empty 2.5 s later"), "{settled}");
        r.empty_after_s = None;
        assert!(
            r.describe().ends_with("NOT empty within 60 s"),
            "{}",
            r.describe()
        );
    }

    #[test]
    fn a_run_without_samples_reports_an_empty_backlog() {
        let r = backlog_report(&Recorder::new(1), Backlog::default(), None);
        assert_eq!(
            (r.samples, r.persister_lag_max, r.persister_lag_p50),
            (0, 0, 0)
        );
        assert_eq!(r.empty_after_s, None);
    }
}
