//! The end-of-run summary for a terminal: one block per part of the
//! result, in the order of the HTML report.

use std::fmt::Write;

use crate::result::RunResult;

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// The end-of-run summary for a terminal.
pub fn summary(r: &RunResult) -> String {
    let mut s = String::new();
    requests(&mut s, r);
    latency(&mut s, r);
    phases(&mut s, r);
    step(&mut s, r);
    engine(&mut s, r);
    depth(&mut s, r);
    fanout(&mut s, r);
    processes(&mut s, r);
    s
}

/// The run, its requests by outcome and the error codes.
fn requests(s: &mut String, r: &RunResult) {
    let q = &r.requests;
    let _ = writeln!(
        *s,
        "== {}: {:.1} s{}",
        r.scenario.name,
        r.elapsed_s,
        r.stopped_early
            .as_ref()
            .map(|w| format!(" (stopped early: {w})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        *s,
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
            *s,
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
}

/// Latency of the answered requests, by group and outcome.
fn latency(s: &mut String, r: &RunResult) {
    let a = &r.latency_us.answered;
    let _ = writeln!(
        *s,
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
                *s,
                "  {g} {o}: {} p50 {:.2} p99 {:.2} max {:.2} ms",
                p.count,
                ms(p.p50),
                ms(p.p99),
                ms(p.max)
            );
        }
    }
}

/// Per phase, when there are several.
fn phases(s: &mut String, r: &RunResult) {
    if r.phases.len() > 1 {
        // Phases the run never reached (a step-up stopped early) are left out.
        for p in r
            .phases
            .iter()
            .filter(|p| p.outcomes.values().sum::<u64>() > 0)
        {
            let _ = writeln!(
                *s,
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
}

/// The step-up's knee.
fn step(s: &mut String, r: &RunResult) {
    if let Some(st) = &r.step {
        let _ = writeln!(
            *s,
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
}

/// The engine's counts.
fn engine(s: &mut String, r: &RunResult) {
    match &r.engine {
        Some(e) => {
            let _ = writeln!(
                *s,
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
            let _ = writeln!(*s, "backlog: {}", e.backlog.describe());
        }
        None => {
            let _ = writeln!(
                *s,
                "engine: not available ({})",
                r.engine_error.as_deref().unwrap_or("unknown")
            );
        }
    }
}

/// The fan-out subscribers' findings, with the exchange's CPU per update.
fn fanout(s: &mut String, r: &RunResult) {
    let Some(f) = &r.fanout else { return };
    let cpu = r.exchange_process.as_ref().and_then(|p| p.cpu_s);
    let per_update = cpu.filter(|_| f.updates > 0).map_or("n/a".into(), |c| {
        format!("{:.1} us", c * 1e6 / f.updates as f64)
    });
    let _ = writeln!(
        *s,
        "fan-out: {}/{} subscribers, {} updates, {} deliveries, exchange CPU {} per update; \
         lag ms p50 {} p99 {} max {}, slowest subscriber p99 {}; dropped {:?}",
        f.connected,
        f.subscribers,
        f.updates,
        f.deliveries,
        per_update,
        f.lag_ms.p50,
        f.lag_ms.p99,
        f.lag_ms.max,
        f.slowest_p99_ms,
        f.dropped
    );
}

/// The depth subscriber's findings.
fn depth(s: &mut String, r: &RunResult) {
    if let Some(d) = &r.depth {
        let _ = writeln!(
            *s,
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
}

/// The exchange's and the harness's cost, and where the report is.
fn processes(s: &mut String, r: &RunResult) {
    let f = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}"));
    if let Some(p) = &r.exchange_process {
        let _ = writeln!(
            *s,
            "exchange pid {}: CPU {} s ({} us/request), RSS max {} MiB",
            p.pid,
            f(p.cpu_s),
            f(p.cpu_us_per_request),
            p.rss_kib_max.map_or("-".into(), |k| (k / 1024).to_string())
        );
    }
    let _ = writeln!(
        *s,
        "harness: CPU {} s ({} us/request), dispatch lag p99 {:.2} ms",
        f(r.harness.cpu_s),
        f(r.harness.cpu_us_per_request),
        ms(r.harness.dispatch_lag_us.p99)
    );
    if let Some(p) = r.files.get("report_html") {
        let _ = writeln!(*s, "report: {p}");
    }
}
