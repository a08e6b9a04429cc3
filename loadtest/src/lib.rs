//! An open-loop load tester for the exchange.
//!
//! Requests are sent on a fixed schedule at the offered rate whatever the
//! answers do ([`schedule`]); each request's latency runs from its planned
//! send time into HDR histograms, per outcome ([`stats`]). The order flow is
//! seeded and shaped like a venue's: many users, pairs of skewed
//! popularity, drifting mids, a mix of limit, market, IOC, FOK, post-only,
//! cancel and amend ([`flow`]). A WebSocket subscriber keeps each pair's
//! book in sync by the documented procedure and counts sequence gaps
//! ([`depth`]). The engine's own counts of commands and events come from
//! `/metrics` ([`metrics`]). Only loopback targets are accepted
//! ([`loopback`]).
//!
//! Scenarios are TOML files ([`scenario`], `loadtest/scenarios/`); a run
//! writes `result.json`, `report.html` and the raw histograms ([`report`]).

pub mod depth;
pub mod flow;
pub mod keys;
pub mod loopback;
pub mod metrics;
pub mod procfs;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod stats;
pub mod target;

pub use clientkit::Credentials;
pub use result::RunResult;
pub use runner::{RunOptions, SuppliedTarget, run, run_blocking, run_supplied};
pub use scenario::Scenario;

/// The end-of-run summary for a terminal.
pub fn summary(r: &RunResult) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let q = &r.requests;
    let ms = |us: u64| us as f64 / 1_000.0;
    let _ = writeln!(
        s,
        "== {}: {:.1} s{}",
        r.scenario.name,
        r.elapsed_s,
        r.stopped_early
            .as_ref()
            .map(|w| format!(" (stopped early: {w})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "requests: planned {} dispatched {} | {} | offered {:.0}/s, ended {:.0}/s, accepted {:.0}/s",
        q.planned,
        q.dispatched,
        q.outcomes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        q.offered_rate,
        q.achieved_rate,
        q.accepted_rate
    );
    if !q.error_codes.is_empty() || !q.failures.is_empty() {
        let _ = writeln!(
            s,
            "  error codes: {}{}",
            q.error_codes
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            if q.failures.is_empty() {
                String::new()
            } else {
                format!(
                    "; without an answer: {}",
                    q.failures
                        .iter()
                        .map(|(k, v)| format!("{k} x{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    let a = &r.latency_us.answered;
    let _ = writeln!(
        s,
        "latency (answered, ms): p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        ms(a.p50),
        ms(a.p90),
        ms(a.p99),
        ms(a.p999),
        ms(a.max)
    );
    for (g, m) in [
        ("orders", &r.latency_us.orders),
        ("cancels", &r.latency_us.cancels),
    ] {
        for (o, p) in m {
            let _ = writeln!(
                s,
                "  {g} {o}: {} p50 {:.2} p99 {:.2} max {:.2} ms",
                p.count,
                ms(p.p50),
                ms(p.p99),
                ms(p.max)
            );
        }
    }
    if r.phases.len() > 1 {
        // Phases the run never reached (a step-up stopped early) are left out.
        for p in r
            .phases
            .iter()
            .filter(|p| p.outcomes.values().sum::<u64>() > 0)
        {
            let _ = writeln!(
                s,
                "  phase {} ({}/s): {} | orders accepted p99 {} ms | cancels: {}{}",
                p.name,
                p.rate,
                p.outcomes
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                p.orders
                    .get("accepted")
                    .map_or("-".into(), |x| format!("{:.2}", ms(x.p99))),
                {
                    let c: Vec<String> = p
                        .cancel_outcomes
                        .iter()
                        .filter(|(_, v)| **v > 0)
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    if c.is_empty() {
                        "none".into()
                    } else {
                        c.join(", ")
                    }
                },
                p.rss_kib_max
                    .map(|k| format!(" | RSS max {} MiB", k / 1024))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(st) = &r.step {
        let _ = writeln!(
            s,
            "step: knee {} (bound p99 {:.1} ms){}",
            st.knee_rate
                .map_or("none".into(), |k| format!("{k} requests/s")),
            st.p99_bound_ms,
            st.broken_at
                .as_ref()
                .map(|b| format!(", broken at {b}"))
                .unwrap_or_default()
        );
    }
    match &r.engine {
        Some(e) => {
            let _ = writeln!(
                s,
                "engine: {} commands ({:.0}/min), {} events ({:.0}/min): {}",
                e.commands_total,
                e.commands_per_minute,
                e.events_total,
                e.events_per_minute,
                e.counts
                    .events
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        None => {
            let _ = writeln!(
                s,
                "engine: not available ({})",
                r.engine_error.as_deref().unwrap_or("unknown")
            );
        }
    }
    if let Some(d) = &r.depth {
        let _ = writeln!(
            s,
            "depth sync: {} gaps; {}",
            d.gaps,
            d.pairs
                .iter()
                .map(|p| format!(
                    "{} {} diffs, book {}",
                    p.symbol,
                    p.counts.applied,
                    match p.book_matches_at_end {
                        Some(true) => "matches",
                        Some(false) => "DIFFERS",
                        None => "not checked",
                    }
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let f = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}"));
    if let Some(p) = &r.exchange_process {
        let _ = writeln!(
            s,
            "exchange pid {}: CPU {} s ({} us/request), RSS max {} MiB",
            p.pid,
            f(p.cpu_s),
            f(p.cpu_us_per_request),
            p.rss_kib_max.map_or("-".into(), |k| (k / 1024).to_string())
        );
    }
    let _ = writeln!(
        s,
        "harness: CPU {} s ({} us/request), dispatch lag p99 {:.2} ms",
        f(r.harness.cpu_s),
        f(r.harness.cpu_us_per_request),
        ms(r.harness.dispatch_lag_us.p99)
    );
    if let Some(p) = r.files.get("report_html") {
        let _ = writeln!(s, "report: {p}");
    }
    s
}
