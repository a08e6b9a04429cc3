//! What the run measured: HDR histograms of latency (microseconds, from the
//! planned send time) per phase, per admission group and per outcome; counts
//! per request kind; and a per-second time line.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::flow::{Group, Kind};

/// Highest latency a histogram holds, in microseconds (larger values are
/// clamped to it); above every timeout the scenario accepts.
pub const MAX_LATENCY_US: u64 = 300_000_000;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: in the log (`ACK`) or applied (`RESULT`).
    Accepted,
    /// 4xx from validation or the engine (unknown order, FOK not fillable
    /// is not one of these: it is accepted, then expires).
    Rejected,
    /// 429 or 503: refused by the rate limit or load-shedding.
    Shed,
    /// No usable answer: a transport failure, a 5xx other than 503/504, an
    /// authentication failure, or a request the harness could not send.
    Error,
    /// No answer within the timeout (or 504, the gateway's own timeout).
    Timeout,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::Shed,
        Outcome::Error,
        Outcome::Timeout,
    ];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Shed => "shed",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }

    /// Its position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Accepted,
            // 418: the IP is banned for ignoring 429s; a refusal by the
            // limits like the 429s before it.
            429 | 418 | 503 => Outcome::Shed,
            504 => Outcome::Timeout,
            // An authentication failure is the harness's fault, not a
            // verdict on the order.
            401 | 403 => Outcome::Error,
            400..=499 => Outcome::Rejected,
            _ => Outcome::Error,
        }
    }
}

/// A latency histogram: 1 us to [`MAX_LATENCY_US`], `sigfig` significant
/// figures.
pub fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig)
        .expect("bounds 1..MAX_LATENCY_US with 2 or 3 significant figures are valid")
}

/// One phase's measurements.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// `[group][outcome]`: latency of every request that ended so.
    pub hist: Vec<Vec<Histogram<u64>>>,
    /// `[kind][outcome]`: counts.
    pub kinds: [[u64; 5]; 8],
}

impl PhaseStats {
    fn new() -> PhaseStats {
        PhaseStats {
            hist: Group::ALL
                .iter()
                .map(|_| Outcome::ALL.iter().map(|_| histogram(3)).collect())
                .collect(),
            kinds: [[0; 5]; 8],
        }
    }

    /// Requests that ended with `o`.
    pub fn count(&self, o: Outcome) -> u64 {
        self.kinds.iter().map(|k| k[o.index()]).sum()
    }

    /// Requests that ended, any way.
    pub fn total(&self) -> u64 {
        self.kinds.iter().flatten().sum()
    }

    /// The histogram of `group` ending with `o`.
    pub fn of(&self, g: Group, o: Outcome) -> &Histogram<u64> {
        &self.hist[g.index()][o.index()]
    }

    /// Everything answered by the exchange's engine path (accepted and
    /// rejected), both groups.
    pub fn answered(&self) -> Histogram<u64> {
        let mut h = histogram(3);
        for g in Group::ALL {
            for o in [Outcome::Accepted, Outcome::Rejected] {
                let _ = h.add(self.of(g, o));
            }
        }
        h
    }

    fn merge(&mut self, other: &PhaseStats) {
        for (a, b) in self
            .hist
            .iter_mut()
            .flatten()
            .zip(other.hist.iter().flatten())
        {
            let _ = a.add(b);
        }
        for (a, b) in self.kinds.iter_mut().zip(other.kinds.iter()) {
            for (x, y) in a.iter_mut().zip(b.iter()) {
                *x += y;
            }
        }
    }
}

/// One second of the run, by completion time.
#[derive(Debug, Clone)]
pub struct Second {
    /// Requests dispatched in this second (by their planned time).
    pub sent: u64,
    /// Requests that ended in this second, per outcome.
    pub counts: [u64; 5],
    /// Latency of those answered (accepted or rejected), 2 significant
    /// figures.
    pub answered: Histogram<u64>,
    /// The exchange's RSS at the end of the second, in KiB, when sampled.
    pub rss_kib: Option<u64>,
    /// The engine's backlog at the end of the second, from `/metrics`,
    /// when scraped in time.
    pub backlog: Option<Backlog>,
}

/// The engine's two backlogs at one moment (gauges from `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// Events emitted but not yet stored, over all pairs.
    pub persister_lag: u64,
    /// Commands journaled but not yet applied, over all pairs.
    pub queue_depth: u64,
}

impl Backlog {
    /// Nothing waits: every command applied, every event stored.
    pub fn is_empty(&self) -> bool {
        self.persister_lag == 0 && self.queue_depth == 0
    }
}

impl Second {
    fn new() -> Second {
        Second {
            sent: 0,
            counts: [0; 5],
            answered: histogram(2),
            rss_kib: None,
            backlog: None,
        }
    }
}

/// Collects every measurement of a run.
#[derive(Debug)]
pub struct Recorder {
    /// Per phase of the schedule.
    pub phases: Vec<PhaseStats>,
    /// Per second from the start.
    pub seconds: Vec<Second>,
    /// Error codes of non-2xx answers (`{"code": ...}`), with their count.
    pub codes: BTreeMap<i64, u64>,
    /// Requests without an answer, by reason.
    pub failures: BTreeMap<&'static str, u64>,
    /// How late requests were dispatched after their planned time (us): the
    /// harness's own lag, included in every latency.
    pub dispatch_lag: Histogram<u64>,
}

/// Most seconds the time line keeps.
const MAX_SECONDS: usize = 3 * 3600;

impl Recorder {
    /// A recorder for `phases` phases.
    pub fn new(phases: usize) -> Recorder {
        Recorder {
            phases: (0..phases).map(|_| PhaseStats::new()).collect(),
            seconds: Vec::new(),
            codes: BTreeMap::new(),
            failures: BTreeMap::new(),
            dispatch_lag: histogram(3),
        }
    }

    /// Second `s` of the time line, created (with the ones before it) if
    /// needed; `None` past the longest time line kept.
    pub fn second(&mut self, s: usize) -> Option<&mut Second> {
        if s >= MAX_SECONDS {
            return None;
        }
        while self.seconds.len() <= s {
            self.seconds.push(Second::new());
        }
        self.seconds.get_mut(s)
    }

    /// Counts a dispatched request planned in second `s`, `lag_us` late.
    pub fn sent(&mut self, s: usize, lag_us: u64) {
        if let Some(sec) = self.second(s) {
            sec.sent += 1;
        }
        self.dispatch_lag.saturating_record(lag_us.max(1));
    }

    /// Records a request of `kind` in phase `phase` that ended with `o`
    /// after `latency_us`, in second `done_s` of the run.
    pub fn record(&mut self, phase: usize, kind: Kind, o: Outcome, latency_us: u64, done_s: usize) {
        if let Some(p) = self.phases.get_mut(phase) {
            p.kinds[kind.index()][o.index()] += 1;
            p.hist[kind.group().index()][o.index()].saturating_record(latency_us.max(1));
        }
        if let Some(sec) = self.second(done_s) {
            sec.counts[o.index()] += 1;
            if matches!(o, Outcome::Accepted | Outcome::Rejected) {
                sec.answered.saturating_record(latency_us.max(1));
            }
        }
    }

    /// Counts a request the harness did not send (too many outstanding) as
    /// an error, in second `s`; it has no latency.
    pub fn unsent(&mut self, phase: usize, kind: Kind, s: usize) {
        if let Some(p) = self.phases.get_mut(phase) {
            p.kinds[kind.index()][Outcome::Error.index()] += 1;
        }
        if let Some(sec) = self.second(s) {
            sec.counts[Outcome::Error.index()] += 1;
        }
        self.failure("harness_overflow");
    }

    /// Notes an error code from an answer's body.
    pub fn code(&mut self, code: i64) {
        *self.codes.entry(code).or_insert(0) += 1;
    }

    /// Notes why a request got no answer.
    pub fn failure(&mut self, reason: &'static str) {
        *self.failures.entry(reason).or_insert(0) += 1;
    }

    /// Every phase together.
    pub fn overall(&self) -> PhaseStats {
        let mut all = PhaseStats::new();
        for p in &self.phases {
            all.merge(p);
        }
        all
    }

    /// Requests that ended so far.
    pub fn done(&self) -> u64 {
        self.phases.iter().map(PhaseStats::total).sum()
    }
}

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (zeros when empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The percentile distribution of `h` in HdrHistogram's `.hgrm` text
/// format (values in microseconds; `scale` divides them, e.g. 1000 for ms).
pub fn hgrm(h: &Histogram<u64>, scale: f64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 {
                format!("{:>14.2}", 1.0 / (1.0 - q))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:>12.3} {:>14.12} {:>10} {inv}",
                v.value_iterated_to() as f64 / scale,
                q,
                total,
            );
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::of_status(200), Outcome::Accepted);
        assert_eq!(Outcome::of_status(400), Outcome::Rejected);
        assert_eq!(Outcome::of_status(404), Outcome::Rejected);
        assert_eq!(Outcome::of_status(409), Outcome::Rejected);
        assert_eq!(Outcome::of_status(429), Outcome::Shed);
        assert_eq!(Outcome::of_status(418), Outcome::Shed);
        assert_eq!(Outcome::of_status(503), Outcome::Shed);
        assert_eq!(Outcome::of_status(504), Outcome::Timeout);
        assert_eq!(Outcome::of_status(401), Outcome::Error);
        assert_eq!(Outcome::of_status(500), Outcome::Error);
    }

    #[test]
    fn records_by_phase_group_and_second() {
        let mut r = Recorder::new(2);
        r.record(0, Kind::Limit, Outcome::Accepted, 1_000, 0);
        r.record(0, Kind::Cancel, Outcome::Rejected, 2_000, 1);
        r.record(1, Kind::Market, Outcome::Shed, 50, 1);
        r.record(1, Kind::Limit, Outcome::Timeout, 5_000_000, 7);
        assert_eq!(r.done(), 4);
        assert_eq!(r.phases[0].count(Outcome::Accepted), 1);
        assert_eq!(r.phases[0].of(Group::Cancels, Outcome::Rejected).len(), 1);
        assert_eq!(r.phases[1].of(Group::Orders, Outcome::Shed).len(), 1);
        assert_eq!(r.seconds.len(), 8);
        assert_eq!(r.seconds[1].counts[Outcome::Shed.index()], 1);
        // Shed and timed-out requests are counted, not in the answered latency.
        assert_eq!(r.seconds[1].answered.len(), 1);
        assert_eq!(r.seconds[7].answered.len(), 0);
        let all = r.overall();
        assert_eq!(all.total(), 4);
        assert_eq!(all.answered().len(), 2);
        let p = Percentiles::of(&all.answered());
        assert_eq!(p.count, 2);
        assert!(p.max >= 1_999 && p.max <= 2_001, "{p:?}");
        r.unsent(1, Kind::Limit, 2);
        assert_eq!(r.phases[1].count(Outcome::Error), 1);
        assert_eq!(
            r.phases[1].of(Group::Orders, Outcome::Error).len(),
            0,
            "no latency"
        );
        assert_eq!(r.failures["harness_overflow"], 1);
        let text = hgrm(&all.answered(), 1_000.0);
        assert!(text.contains("Total count    =            2"), "{text}");
    }
}
