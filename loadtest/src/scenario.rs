//! Scenario files (TOML): the target, the schedule (explicit phases or a
//! step-up), the users, the order flow and what to watch. Parsed strictly
//! (unknown keys are errors) and validated with messages that name the bad
//! value; every run is bounded in count and in time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::error::ScenarioError;
use crate::fanout::FanoutFile;
use crate::loopback::{self, LoopbackTarget};
use crate::schedule::Phase;

/// No scenario runs longer than this.
pub const MAX_DURATION: Duration = Duration::from_secs(2 * 3600);
/// No rate above this (requests per second).
pub const MAX_RATE: u64 = 1_000_000;

/// Where the requests go. One `submit` path per target (see
/// [`crate::target::Target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// The gateway over HTTP with keep-alive connections.
    Http,
    /// The gateway's WebSocket API: logged-on connections, pipelined
    /// requests ([`crate::wsapi`]).
    Ws,
    /// A target another tool supplies and runs with
    /// [`crate::runner::run_supplied`] (`kafkaload run`: commands produced
    /// straight to the command log, answers read from the events topic);
    /// its settings are the file's `[direct]` table, which loadtest passes
    /// on unread. No gateway: no depth sync, no keys.
    Direct,
}

/// Which HTTP client library the `http` target uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpClient {
    /// hyper's HTTP/1.1 connections in a bounded pool (the default: cheaper
    /// per request).
    Hyper,
    /// reqwest, behind the same bound on concurrent requests.
    Reqwest,
}

/// `ACK` (answer once logged) or `RESULT` (answer with the engine's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RespType {
    /// Answered once the command is in the log.
    #[serde(rename = "ACK")]
    Ack,
    /// Answered with the engine's outcome.
    #[serde(rename = "RESULT")]
    Result,
}

impl RespType {
    /// The value of `newOrderRespType`.
    pub fn as_str(self) -> &'static str {
        match self {
            RespType::Ack => "ACK",
            RespType::Result => "RESULT",
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// A name for reports; the file's stem by default.
    name: Option<String>,
    /// What the scenario is for.
    #[serde(default)]
    description: String,
    /// `http`, `ws` or `direct`.
    #[serde(default = "default_target")]
    target: String,
    /// The exchange's base URL; loopback only.
    #[serde(default = "default_url")]
    url: String,
    /// For `direct`: the supplying tool's settings, not read here.
    #[serde(default)]
    direct: toml::Table,
    /// `/metrics` endpoints whose engine counters are summed for the
    /// report; by default the target URL (`http`) or none (`direct`).
    metrics: Option<Vec<String>>,
    /// Seeds every random choice of the order flow.
    #[serde(default = "default_seed")]
    seed: u64,
    /// `ACK` or `RESULT`.
    #[serde(default = "default_resp")]
    resp_type: RespType,
    /// `hyper` or `reqwest`.
    #[serde(default = "default_client")]
    http_client: HttpClient,
    /// Keep-alive connections (and so the most requests in flight).
    #[serde(default = "default_connections")]
    connections: usize,
    /// For `ws`: requests waiting for their answers on one connection.
    #[serde(default = "default_ws_in_flight")]
    ws_in_flight: usize,
    /// A request not answered this long after its planned time is a timeout.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// Worker threads of the harness (1: a single-threaded runtime).
    #[serde(default = "default_threads")]
    threads: usize,
    /// Hard bound on the number of requests.
    #[serde(default = "default_max_requests")]
    max_requests: u64,
    /// The dispatcher sleeps at least this long (microseconds) between
    /// batches: shorter is more punctual, longer costs less CPU.
    #[serde(default = "default_quantum")]
    dispatch_quantum_us: u64,
    /// Requests waiting for a connection or an answer at once; past it a due
    /// request is counted as an error (`harness_overflow`) and not sent.
    #[serde(default = "default_max_outstanding")]
    max_outstanding: usize,
    /// Explicit phases, run in order.
    #[serde(default)]
    phases: Vec<PhaseFile>,
    /// A step-up instead of explicit phases.
    step: Option<StepFile>,
    /// The exchange process.
    #[serde(default)]
    exchange: ExchangeFile,
    /// The simulated users.
    #[serde(default)]
    users: UsersFile,
    /// The order flow.
    #[serde(default)]
    flow: FlowFile,
    /// The depth-sync subscriber.
    #[serde(default)]
    depth: DepthFile,
    /// The fan-out benchmark's subscribers.
    #[serde(default)]
    fanout: FanoutFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    name: Option<String>,
    /// Requests per second.
    rate: u64,
    /// Seconds.
    duration_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    start_rate: u64,
    step_rate: u64,
    step_duration_s: f64,
    max_steps: u32,
    /// The run stops after the first step whose p99 exceeds this.
    p99_bound_ms: f64,
}

/// The exchange the harness drives.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeFile {
    /// The `exchange` binary, run as `BINARY --config CONFIG keys create
    /// --user NAME` to create the users' API keys.
    pub binary: Option<PathBuf>,
    /// The exchange's config file (the same the running exchange uses).
    pub config: Option<PathBuf>,
    /// The exchange's process id, for its RSS and CPU; found from the
    /// listening port when not given.
    pub pid: Option<u32>,
    /// Scrape `/metrics` before and after (default true).
    #[serde(default = "yes")]
    pub scrape_metrics: bool,
}

/// The simulated users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersFile {
    /// How many; each gets its own API key.
    pub count: usize,
    /// Their names are `PREFIX-N`.
    pub name_prefix: String,
    /// What each user the harness creates is credited in every asset before
    /// the run, when the exchange holds money (a decimal; `"0"`: nothing).
    pub funding: String,
    /// `create` (each user's key made with `exchange keys create`) or
    /// `unchecked`: made-up keys, nothing funded, for a target that checks
    /// no signature (`loadtest null-exchange`).
    pub keys: Keys,
}

/// Where the users' keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keys {
    /// `exchange keys create`, one per user.
    Create,
    /// Made up by the harness: only a target that checks none takes them.
    Unchecked,
}

impl Default for UsersFile {
    fn default() -> Self {
        UsersFile {
            count: 100,
            name_prefix: "loadtest".into(),
            funding: "1000000000".into(),
            keys: Keys::Create,
        }
    }
}

/// The mix of requests, as relative weights.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// GTC limit orders (a share of them marketable: `marketable_pct`).
    pub limit: u32,
    /// Market orders (IOC).
    pub market: u32,
    /// IOC limit orders, priced to cross.
    pub ioc: u32,
    /// FOK limit orders, priced to cross.
    pub fok: u32,
    /// Post-only limit orders (`LIMIT_MAKER`) near the mid; those that
    /// would cross are refused (-2010).
    pub post_only: u32,
    /// Cancels of one of the user's own resting orders.
    pub cancel: u32,
    /// Lower quantities, keeping priority, of one of the user's own resting
    /// orders (`PUT /api/v3/order/amend/keepPriority`).
    pub amend: u32,
    /// Price moves of one of the user's own resting orders: a cancel and a
    /// new order in one request (`POST /api/v3/order/cancelReplace`).
    pub replace: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            limit: 45,
            market: 5,
            ioc: 8,
            fok: 4,
            post_only: 8,
            cancel: 22,
            // What was one amend of 8 (half price moves, half quantity
            // changes) before `/api/v3`, which amends quantities down only.
            amend: 4,
            replace: 4,
        }
    }
}

/// One traded pair.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairFile {
    /// The pair as the exchange's config names it (`BTC-EUR`) or as the
    /// REST API does (`BTCEUR`).
    pub symbol: String,
    /// The starting mid price, a decimal string.
    pub mid: String,
    /// Relative popularity; by default Zipf by position (`1 / rank^zipf_s`).
    pub weight: Option<f64>,
}

/// The order flow.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowFile {
    /// The pairs, most popular first.
    pub pairs: Vec<PairFile>,
    /// Zipf exponent of the pairs' default weights (0: uniform).
    pub zipf_s: f64,
    /// The mid moves by up to this many basis points per order on its pair
    /// (a random walk, kept within half and twice the starting mid).
    pub mid_step_bps: f64,
    /// Passive orders rest up to this many basis points from the mid.
    pub band_bps: f64,
    /// Marketable orders cross the mid by up to this many basis points.
    pub cross_bps: f64,
    /// Percent of `limit` orders priced to cross.
    pub marketable_pct: u32,
    /// Order sizes are 1 to this many times the smallest valid size.
    pub size_multiple: u64,
    /// Above this many tracked resting orders, half of the new passive
    /// orders become cancels, so the books stay at a working size.
    pub target_resting: usize,
    /// The mix.
    pub mix: Mix,
}

impl Default for FlowFile {
    fn default() -> Self {
        FlowFile {
            pairs: vec![
                PairFile {
                    symbol: "BTC-EUR".into(),
                    mid: "30000".into(),
                    weight: None,
                },
                PairFile {
                    symbol: "ETH-EUR".into(),
                    mid: "2000".into(),
                    weight: None,
                },
                PairFile {
                    symbol: "ETH-BTC".into(),
                    mid: "0.065".into(),
                    weight: None,
                },
            ],
            zipf_s: 1.0,
            mid_step_bps: 0.5,
            band_bps: 50.0,
            cross_bps: 5.0,
            marketable_pct: 15,
            size_multiple: 20,
            target_resting: 20_000,
            mix: Mix::default(),
        }
    }
}

/// The depth-sync subscriber.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthFile {
    /// Run it (default true).
    pub enabled: bool,
    /// Pairs to sync; by default every pair of the flow.
    pub pairs: Vec<String>,
    /// Levels of the REST snapshot (and of the final comparison).
    pub snapshot_limit: u32,
}

impl Default for DepthFile {
    fn default() -> Self {
        DepthFile {
            enabled: true,
            pairs: Vec::new(),
            snapshot_limit: 5_000,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_target() -> String {
    "http".into()
}
fn default_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_seed() -> u64 {
    1
}
fn default_resp() -> RespType {
    RespType::Result
}
fn default_client() -> HttpClient {
    HttpClient::Hyper
}
fn default_connections() -> usize {
    128
}
fn default_ws_in_flight() -> usize {
    // The gateway's default `ws_api_max_in_flight`.
    64
}
fn default_timeout() -> u64 {
    5_000
}
fn default_threads() -> usize {
    1
}
fn default_max_requests() -> u64 {
    20_000_000
}
fn default_quantum() -> u64 {
    200
}
fn default_max_outstanding() -> usize {
    200_000
}

/// How a step-up scenario ends.
#[derive(Debug, Clone, Serialize)]
pub struct StepRule {
    /// A step whose p99 is above this breaks the bound; the run stops.
    pub p99_bound: Duration,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name for reports.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Where requests go.
    pub target: TargetKind,
    /// The checked URL.
    pub url: LoopbackTarget,
    /// For `direct`: the `[direct]` table, for the tool that supplies the
    /// target to read.
    pub direct: toml::Table,
    /// Where the engine counters are scraped (summed); when empty, the
    /// target URL for `http` (see [`Scenario::metrics_endpoints`]).
    pub metrics: Vec<LoopbackTarget>,
    /// Seeds the order flow.
    pub seed: u64,
    /// `ACK` or `RESULT`.
    pub resp_type: RespType,
    /// The HTTP client library.
    pub http_client: HttpClient,
    /// Keep-alive connections.
    pub connections: usize,
    /// For `ws`: requests waiting on one connection at once.
    pub ws_in_flight: usize,
    /// Answer deadline after the planned time.
    pub timeout: Duration,
    /// Harness worker threads.
    pub threads: usize,
    /// Bound on outstanding requests.
    pub max_outstanding: usize,
    /// Shortest sleep of the dispatcher between batches.
    pub dispatch_quantum: Duration,
    /// The schedule.
    pub phases: Vec<Phase>,
    /// Set for a step-up: stop at the first step over the bound.
    pub step: Option<StepRule>,
    /// The exchange process.
    pub exchange: ExchangeFile,
    /// The users.
    pub users: UsersFile,
    /// The order flow.
    pub flow: FlowFile,
    /// The depth subscriber.
    pub depth: DepthFile,
    /// The fan-out subscribers.
    pub fanout: FanoutFile,
}

fn seconds(what: &str, s: f64) -> Result<Duration, ScenarioError> {
    if !(s.is_finite() && s > 0.0) {
        return Err(ScenarioError::from(format!(
            "{what} must be a positive number of seconds, not {s}"
        )));
    }
    Duration::try_from_secs_f64(s).map_err(|e| ScenarioError::from(format!("{what} = {s}: {e}")))
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Scenario::parse(&text, &stem)
            .map_err(|e| ScenarioError::from(format!("scenario {}: {e}", path.display())))
    }

    /// Parses and checks scenario text; `default_name` names it when the
    /// text does not.
    pub fn parse(text: &str, default_name: &str) -> Result<Scenario, ScenarioError> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let target = match f.target.as_str() {
            "http" => TargetKind::Http,
            "ws" => TargetKind::Ws,
            "direct" => TargetKind::Direct,
            other => {
                return Err(ScenarioError::from(format!(
                    "target {other:?}: unknown; use \"http\", \"ws\" or \"direct\""
                )));
            }
        };
        if target != TargetKind::Direct && !f.direct.is_empty() {
            return Err(ScenarioError::from("[direct] is for target = \"direct\""));
        }
        let url = loopback::check_url(&f.url)?;
        let metrics = f
            .metrics
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|u| loopback::check_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        check_numbers(&f)?;
        let (phases, step) = schedule(&f)?;
        check_bounds(&phases, f.max_requests)?;
        check_flow(&f.flow)?;
        check_depth(&f)?;
        Ok(Scenario {
            name: f.name.unwrap_or_else(|| default_name.to_string()),
            description: f.description,
            target,
            url,
            direct: f.direct,
            metrics,
            seed: f.seed,
            resp_type: f.resp_type,
            http_client: f.http_client,
            connections: f.connections,
            ws_in_flight: f.ws_in_flight,
            timeout: Duration::from_millis(f.timeout_ms),
            threads: f.threads,
            max_outstanding: f.max_outstanding,
            dispatch_quantum: Duration::from_micros(f.dispatch_quantum_us),
            phases,
            step,
            exchange: f.exchange,
            users: f.users,
            flow: f.flow,
            depth: f.depth,
            fanout: f.fanout,
        })
    }

    /// The `/metrics` endpoints whose engine counters are summed: the
    /// listed ones, or the target URL of an `http` scenario.
    pub fn metrics_endpoints(&self) -> Vec<LoopbackTarget> {
        match (self.metrics.is_empty(), self.target) {
            (true, TargetKind::Http | TargetKind::Ws) => vec![self.url.clone()],
            _ => self.metrics.clone(),
        }
    }

    /// The pairs the depth subscriber syncs.
    pub fn depth_pairs(&self) -> Vec<String> {
        // The direct target has no gateway to sync a book from.
        if !self.depth.enabled || self.target == TargetKind::Direct {
            return Vec::new();
        }
        if self.depth.pairs.is_empty() {
            self.flow.pairs.iter().map(|p| p.symbol.clone()).collect()
        } else {
            self.depth.pairs.clone()
        }
    }
}

/// The counts and sizes that must be positive and bounded.
fn check_numbers(f: &File) -> Result<(), ScenarioError> {
    let positive = [
        ("connections", f.connections as u64),
        ("ws_in_flight", f.ws_in_flight as u64),
        ("timeout_ms", f.timeout_ms),
        ("threads", f.threads as u64),
        ("max_requests", f.max_requests),
        ("max_outstanding", f.max_outstanding as u64),
        ("users.count", f.users.count as u64),
        ("flow.size_multiple", f.flow.size_multiple),
    ];
    for (name, v) in positive {
        if v == 0 {
            return Err(ScenarioError::from(format!(
                "{name} must be greater than zero"
            )));
        }
    }
    let limits = [
        ("connections", f.connections as u64, 10_000),
        ("ws_in_flight", f.ws_in_flight as u64, 100_000),
        ("timeout_ms", f.timeout_ms, 120_000),
        ("threads", f.threads as u64, 64),
        ("users.count", f.users.count as u64, 10_000),
        ("flow.size_multiple", f.flow.size_multiple, 1_000),
        ("flow.marketable_pct", f.flow.marketable_pct.into(), 100),
        ("dispatch_quantum_us", f.dispatch_quantum_us, 10_000),
    ];
    for (name, v, max) in limits {
        if v > max {
            return Err(ScenarioError::from(format!(
                "{name} = {v} is above the limit of {max}"
            )));
        }
    }
    if f.users.name_prefix.is_empty()
        || f.users.name_prefix.len() > 40
        || !f
            .users
            .name_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ScenarioError::from(format!(
            "users.name_prefix {:?}: 1 to 40 letters, digits, '-' or '_'",
            f.users.name_prefix
        )));
    }
    Ok(())
}

/// The phases: explicit, or a step-up's.
fn schedule(f: &File) -> Result<(Vec<Phase>, Option<StepRule>), ScenarioError> {
    match (&f.step, f.phases.is_empty()) {
        (Some(_), false) => Err(ScenarioError::from(
            "give either [[phases]] or [step], not both",
        )),
        (None, true) => Err(ScenarioError::from(
            "no [[phases]] and no [step]: nothing to run",
        )),
        (None, false) => {
            let mut phases = Vec::new();
            for (i, p) in f.phases.iter().enumerate() {
                let name = p.name.clone().unwrap_or_else(|| format!("phase {}", i + 1));
                phases.push(Phase {
                    duration: seconds(&format!("phases[{i}].duration_s"), p.duration_s)?,
                    rate: p.rate,
                    name,
                });
            }
            Ok((phases, None))
        }
        (Some(s), true) => {
            if s.start_rate == 0 || s.max_steps == 0 {
                return Err(ScenarioError::from(
                    "step.start_rate and step.max_steps must be greater than zero",
                ));
            }
            let bound = if s.p99_bound_ms.is_finite() && s.p99_bound_ms > 0.0 {
                Duration::from_secs_f64(s.p99_bound_ms / 1_000.0)
            } else {
                return Err(ScenarioError::from(format!(
                    "step.p99_bound_ms must be positive, not {}",
                    s.p99_bound_ms
                )));
            };
            let d = seconds("step.step_duration_s", s.step_duration_s)?;
            let phases = (0..u64::from(s.max_steps))
                .map(|k| {
                    let rate = s.start_rate.saturating_add(k.saturating_mul(s.step_rate));
                    Phase {
                        name: format!("step {}", k + 1),
                        rate,
                        duration: d,
                    }
                })
                .collect();
            Ok((phases, Some(StepRule { p99_bound: bound })))
        }
    }
}

/// Every run is bounded in rate, time and requests.
fn check_bounds(phases: &[Phase], max_requests: u64) -> Result<(), ScenarioError> {
    let mut total_time = Duration::ZERO;
    let mut total_requests = 0u64;
    for p in phases {
        if p.rate > MAX_RATE {
            return Err(ScenarioError::from(format!(
                "phase {:?}: rate {} is above the limit of {MAX_RATE}/s",
                p.name, p.rate
            )));
        }
        total_time += p.duration;
        total_requests += (p.rate as f64 * p.duration.as_secs_f64()) as u64;
    }
    if total_time > MAX_DURATION {
        return Err(ScenarioError::from(format!(
            "the phases last {:.0} s, above the limit of {} s",
            total_time.as_secs_f64(),
            MAX_DURATION.as_secs()
        )));
    }
    if total_requests > max_requests {
        return Err(ScenarioError::from(format!(
            "the phases plan {total_requests} requests, above max_requests = {}",
            max_requests
        )));
    }
    Ok(())
}

/// The depth subscriber's pairs are the flow's.
fn check_depth(f: &File) -> Result<(), ScenarioError> {
    for p in &f.depth.pairs {
        if !f.flow.pairs.iter().any(|q| &q.symbol == p) {
            return Err(ScenarioError::from(format!(
                "depth.pairs: {p:?} is not one of flow.pairs"
            )));
        }
    }
    if !(1..=5_000).contains(&f.depth.snapshot_limit) {
        return Err(ScenarioError::from(
            "depth.snapshot_limit must be 1 to 5000",
        ));
    }
    Ok(())
}

fn check_flow(f: &FlowFile) -> Result<(), ScenarioError> {
    if f.pairs.is_empty() {
        return Err(ScenarioError::from(
            "flow.pairs: at least one pair is needed",
        ));
    }
    for (i, p) in f.pairs.iter().enumerate() {
        if f.pairs[..i].iter().any(|q| q.symbol == p.symbol) {
            return Err(ScenarioError::from(format!(
                "flow.pairs: {} is listed twice",
                p.symbol
            )));
        }
        if !clientkit::decimal::is_positive(&p.mid) {
            return Err(ScenarioError::from(format!(
                "flow.pairs: {}: mid {:?} is not a positive decimal",
                p.symbol, p.mid
            )));
        }
        if let Some(w) = p.weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(ScenarioError::from(format!(
                "flow.pairs: {}: weight {w} must be zero or positive",
                p.symbol
            )));
        }
    }
    let finite = [
        ("flow.zipf_s", f.zipf_s, 0.0, 10.0),
        ("flow.mid_step_bps", f.mid_step_bps, 0.0, 1_000.0),
        ("flow.band_bps", f.band_bps, 0.0, 5_000.0),
        ("flow.cross_bps", f.cross_bps, 0.0, 5_000.0),
    ];
    for (name, v, lo, hi) in finite {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            return Err(ScenarioError::from(format!(
                "{name} = {v}: must be {lo} to {hi}"
            )));
        }
    }
    let m = &f.mix;
    let total = [
        m.limit,
        m.market,
        m.ioc,
        m.fok,
        m.post_only,
        m.cancel,
        m.amend,
        m.replace,
    ]
    .iter()
    .map(|&w| u64::from(w))
    .sum::<u64>();
    if total == 0 {
        return Err(ScenarioError::from("flow.mix: every weight is zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[phases]]
        rate = 100
        duration_s = 2
    "#;

    #[test]
    fn minimal_scenario_takes_the_defaults() {
        let s = Scenario::parse(MINIMAL, "minimal").expect("valid");
        assert_eq!(s.name, "minimal");
        assert_eq!(s.target, TargetKind::Http);
        assert_eq!(s.url.base, "http://127.0.0.1:8080");
        assert_eq!(s.resp_type, RespType::Result);
        assert_eq!(s.http_client, HttpClient::Hyper);
        assert_eq!(s.phases.len(), 1);
        assert_eq!(s.phases[0].rate, 100);
        assert_eq!(s.phases[0].duration, Duration::from_secs(2));
        assert_eq!(s.flow.pairs.len(), 3);
        assert_eq!(s.depth_pairs(), ["BTC-EUR", "ETH-EUR", "ETH-BTC"]);
        assert!(s.step.is_none());
    }

    #[test]
    fn step_generates_phases() {
        let s = Scenario::parse(
            r#"
            [step]
            start_rate = 5000
            step_rate = 5000
            step_duration_s = 10
            max_steps = 4
            p99_bound_ms = 10
            "#,
            "step",
        )
        .expect("valid");
        let rates: Vec<u64> = s.phases.iter().map(|p| p.rate).collect();
        assert_eq!(rates, [5_000, 10_000, 15_000, 20_000]);
        assert_eq!(s.step.map(|r| r.p99_bound), Some(Duration::from_millis(10)));
    }

    #[test]
    fn a_direct_target_is_passed_on_unread() {
        let s = Scenario::parse(
            &format!("target = \"direct\"\n{MINIMAL}[direct]\nbrokers = \"127.0.0.1:9092\"\n"),
            "k",
        )
        .expect("valid");
        assert_eq!(s.target, TargetKind::Direct);
        assert_eq!(
            s.direct.get("brokers").and_then(|b| b.as_str()),
            Some("127.0.0.1:9092")
        );
        assert!(s.metrics.is_empty() && s.depth_pairs().is_empty());
        let e = Scenario::parse(&format!("{MINIMAL}[direct]\nbrokers = \"x\"\n"), "k")
            .expect_err("[direct] on http")
            .to_string();
        assert!(e.contains("[direct]"), "{e}");
        let e = Scenario::parse(&format!("target = \"grpc\"\n{MINIMAL}"), "k")
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("grpc"), "{e}");
    }

    #[test]
    fn non_loopback_urls_are_refused() {
        let e = Scenario::parse(&format!("url = \"http://10.1.2.3:8080\"\n{MINIMAL}"), "x")
            .expect_err("not loopback")
            .to_string();
        assert!(e.contains("non-loopback"), "{e}");
    }

    #[test]
    fn errors_name_the_bad_value() {
        let cases = [
            ("speling = 1\n", "speling"),
            ("connections = 0\n", "connections"),
            ("timeout_ms = 999999\n", "timeout_ms"),
            ("resp_type = \"FULL\"\n", "FULL"),
            ("http_client = \"curl\"\n", "curl"),
            ("[users]\nname_prefix = \"a b\"\n", "name_prefix"),
            ("[flow]\nzipf_s = -1\n", "zipf_s"),
            (
                "[flow.mix]\nlimit = 0\nmarket = 0\nioc = 0\nfok = 0\npost_only = 0\ncancel = 0\namend = 0\nreplace = 0\n",
                "mix",
            ),
            (
                "[[flow.pairs]]\nsymbol = \"BTC-EUR\"\nmid = \"abc\"\n",
                "mid",
            ),
            ("[depth]\npairs = [\"XRP-EUR\"]\n", "XRP-EUR"),
        ];
        for (prefix, needle) in cases {
            // TOML tables must come after top-level keys: put them last.
            let text = if prefix.starts_with('[') {
                format!("{MINIMAL}\n{prefix}")
            } else {
                format!("{prefix}{MINIMAL}")
            };
            let e = Scenario::parse(&text, "x").expect_err(prefix).to_string();
            assert!(e.contains(needle), "{prefix:?}: {e}");
        }
    }

    #[test]
    fn runs_are_bounded() {
        let e = Scenario::parse("[[phases]]\nrate = 1000\nduration_s = 10000\n", "x")
            .expect_err("too long")
            .to_string();
        assert!(e.contains("limit"), "{e}");
        let e = Scenario::parse(
            "max_requests = 1000\n[[phases]]\nrate = 1000\nduration_s = 2\n",
            "x",
        )
        .expect_err("too many")
        .to_string();
        assert!(e.contains("max_requests"), "{e}");
        let e = Scenario::parse("[[phases]]\nrate = 2000000\nduration_s = 1\n", "x")
            .expect_err("too fast")
            .to_string();
        assert!(e.contains("rate"), "{e}");
        let e = Scenario::parse("[[phases]]\nrate = 10\nduration_s = 0\n", "x")
            .expect_err("empty")
            .to_string();
        assert!(e.contains("duration_s"), "{e}");
        let e = Scenario::parse("", "x")
            .expect_err("nothing to run")
            .to_string();
        assert!(e.contains("nothing to run"), "{e}");
        let e = Scenario::parse(
            "[[phases]]\nrate = 10\nduration_s = 1\n[step]\nstart_rate = 1\nstep_rate = 1\nstep_duration_s = 1\nmax_steps = 1\np99_bound_ms = 1\n",
            "x",
        )
        .expect_err("both").to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn a_ws_target_takes_its_in_flight_bound_and_unchecked_keys() {
        let s = Scenario::parse(
            "target = \"ws\"\nws_in_flight = 8\n[[phases]]\nname = \"a\"\nrate = 10\nduration_s = 1\n[users]\nkeys = \"unchecked\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(s.target, TargetKind::Ws);
        assert_eq!(s.ws_in_flight, 8);
        assert_eq!(s.users.keys, Keys::Unchecked);
        assert_eq!(s.metrics_endpoints(), vec![s.url.clone()]);
        for (bad, why) in [
            ("ws_in_flight = 0", "ws_in_flight must be greater than zero"),
            ("ws_in_flight = 100001", "ws_in_flight = 100001 is above"),
            ("target = \"wss\"", "use \"http\", \"ws\" or \"direct\""),
        ] {
            let text = format!("{bad}\n[[phases]]\nname = \"a\"\nrate = 10\nduration_s = 1\n");
            let e = Scenario::parse(&text, "x").unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = Scenario::parse("[users]\nkeys = \"none\"\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant"), "{e}");
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen.push(s.name.clone());
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "cluster",
                "direct",
                "failover",
                "fanout",
                "goal",
                "knee",
                "null",
                "smoke",
                "soak",
                "spike",
                "steady",
                "step",
                "ws-knee",
                "ws-steady"
            ]
        );
    }
}
