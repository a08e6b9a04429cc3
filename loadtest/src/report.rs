//! The output files of a run:
//!
//! - `result.json`: every figure of the run ([`RunResult`]).
//! - `report.html`: a summary with charts (inline SVG drawn by plotters):
//!   latency percentiles, throughput, shed and failures, and the exchange's
//!   RSS, over time.
//! - `histograms.hlog`: the raw HDR histograms as a standard interval log
//!   (V2, compressed, base64): one tagged histogram per phase, group and
//!   outcome, and one untagged interval per second (answered requests).
//! - `histograms/*.hgrm`: percentile distributions as text, per group and
//!   outcome over the whole run, and of the answered requests per phase.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use plotters::prelude::*;

pub use crate::error::ReportError;
use crate::flow::Group;
use crate::result::{RunResult, TimelinePoint};
use crate::schedule::Schedule;
use crate::stats::{Outcome, Percentiles, Recorder, hgrm};

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes every output file into `dir` and lists them in `result.files`.
pub fn write_all(
    result: &mut RunResult,
    rec: &Recorder,
    schedule: &Schedule,
    dir: &Path,
) -> Result<(), ReportError> {
    let hist_dir = dir.join("histograms");
    std::fs::create_dir_all(&hist_dir).map_err(|source| ReportError::Write {
        path: hist_dir.clone(),
        source,
    })?;
    let all = rec.overall();
    let _ = write(
        &hist_dir.join("answered.hgrm"),
        hgrm(&all.answered(), 1_000.0).as_bytes(),
    );
    for g in Group::ALL {
        for o in Outcome::ALL {
            let h = all.of(g, o);
            if !h.is_empty() {
                write(
                    &hist_dir.join(format!("{}_{}.hgrm", g.as_str(), o.as_str())),
                    hgrm(h, 1_000.0).as_bytes(),
                )?;
            }
        }
    }
    for (i, ps) in rec.phases.iter().enumerate() {
        let h = ps.answered();
        if !h.is_empty() {
            write(
                &hist_dir.join(format!("phase{}_answered.hgrm", i + 1)),
                hgrm(&h, 1_000.0).as_bytes(),
            )?;
        }
    }
    let hlog = interval_log(rec, schedule, result.started_unix_ms)?;
    write(&dir.join("histograms.hlog"), &hlog)?;
    result.files.insert(
        "histograms_hlog",
        dir.join("histograms.hlog").display().to_string(),
    );
    result
        .files
        .insert("histograms_hgrm", hist_dir.display().to_string());
    result
        .files
        .insert("report_html", dir.join("report.html").display().to_string());
    result
        .files
        .insert("result_json", dir.join("result.json").display().to_string());
    let json = serde_json::to_vec_pretty(&*result).map_err(ReportError::Encode)?;
    write(&dir.join("result.json"), &json)?;
    write(&dir.join("report.html"), html(result).as_bytes())?;
    Ok(())
}

fn interval_log(
    rec: &Recorder,
    schedule: &Schedule,
    started_unix_ms: u64,
) -> Result<Vec<u8>, ReportError> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let start = UNIX_EPOCH + Duration::from_millis(started_unix_ms);
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("exchange loadtest: latency in microseconds from the planned send time")
            .add_comment("untagged: answered requests per second; tagged pN.GROUP.OUTCOME: phase N")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1_000.0)
            .begin_log_with(&mut buf, &mut serializer)
            .map_err(|e| ReportError::Histograms(e.to_string()))?;
        for (i, s) in rec.seconds.iter().enumerate() {
            if !s.answered.is_empty() {
                w.write_histogram(
                    &s.answered,
                    Duration::from_secs(i as u64),
                    Duration::from_secs(1),
                    None,
                )
                .map_err(|e| ReportError::Histograms(e.to_string()))?;
            }
        }
        for (i, ps) in rec.phases.iter().enumerate() {
            let (from, to) = schedule
                .phase_bounds(i)
                .unwrap_or((Duration::ZERO, Duration::ZERO));
            for g in Group::ALL {
                for o in Outcome::ALL {
                    let h = ps.of(g, o);
                    if h.is_empty() {
                        continue;
                    }
                    let tag = format!("p{}.{}.{}", i + 1, g.as_str(), o.as_str());
                    w.write_histogram(h, from, to.saturating_sub(from), Tag::new(&tag))
                        .map_err(|e| ReportError::Histograms(e.to_string()))?;
                }
            }
        }
    }
    Ok(buf)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Why plotters could not draw a chart; the report says so in its place.
#[derive(Debug)]
struct DrawError(String);

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// A line chart as SVG text; `log_y` for latencies.
fn chart(title: &str, y_desc: &str, series: &[Series<'_>], log_y: bool) -> String {
    let mut svg = String::new();
    let drawn = draw(&mut svg, title, y_desc, series, log_y);
    match drawn {
        Ok(()) => svg,
        Err(DrawError(e)) => format!("<p>chart {} not drawn: {}</p>", esc(title), esc(&e)),
    }
}

fn draw(
    svg: &mut String,
    title: &str,
    y_desc: &str,
    series: &[Series<'_>],
    log_y: bool,
) -> Result<(), DrawError> {
    let err = |e: &dyn std::fmt::Display| DrawError(e.to_string());
    let x_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let root = SVGBackend::with_string(svg, (960, 340)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(238, 238, 238))
                .x_desc("seconds")
                .y_desc(y_desc)
                .draw()
                .map_err(|e| err(&e))?;
            for (name, color, points) in series {
                let color = *color;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| err(&e))?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    if log_y {
        let lo = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .filter(|&y| y > 0.0)
            .fold(f64::MAX, f64::min)
            .min(y_max)
            .max(0.001);
        // Whole decades, so the axis is labelled at 1, 2, 5, 10...
        let lo = if lo == f64::MAX {
            0.01
        } else {
            10f64.powf(lo.log10().floor())
        };
        let hi = 10f64.powf(y_max.max(lo * 10.0).log10().ceil());
        finish!(
            builder
                .build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())
                .map_err(|e| err(&e))?
        );
    } else {
        let hi = (y_max * 1.1).max(1.0);
        finish!(
            builder
                .build_cartesian_2d(0.0..x_max, 0.0..hi)
                .map_err(|e| err(&e))?
        );
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn points(t: &[TimelinePoint], f: impl Fn(&TimelinePoint) -> Option<f64>) -> Vec<(f64, f64)> {
    t.iter()
        .filter_map(|p| f(p).map(|y| (p.t_s as f64, y)))
        .collect()
}

fn pct_row(name: &str, p: &Percentiles) -> String {
    let ms = |us: u64| format!("{:.2}", us as f64 / 1_000.0);
    format!(
        "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        p.count,
        p.mean / 1_000.0,
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max)
    )
}

const PCT_HEAD: &str = "<tr><th></th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>";

/// The HTML report: one section after the other.
pub fn html(r: &RunResult) -> String {
    let mut h = String::new();
    html_head(&mut h, r);
    html_requests(&mut h, r);
    html_latency(&mut h, r);
    html_phases(&mut h, r);
    html_step(&mut h, r);
    html_engine(&mut h, r);
    html_depth(&mut h, r);
    html_fanout(&mut h, r);
    html_processes(&mut h, r);
    html_charts(&mut h, r);
    html_definitions(&mut h, r);
    h
}

/// The page head and the run's settings.
fn html_head(h: &mut String, r: &RunResult) {
    let s = &r.scenario;
    let _ = write!(
        *h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadtest: {name}</title>\
         <style>body{{font-family:sans-serif;margin:24px;max-width:1000px}}\
         table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.bad{{color:#b00;font-weight:bold}}.ok{{color:#070}}\
         dt{{font-weight:bold}}</style></head><body>\
         <h1>loadtest: {name}</h1><p>{desc}</p>",
        name = esc(&s.name),
        desc = esc(&s.description)
    );
    let _ = write!(
        *h,
        "<p>Target <code>{}</code> at {} ({}, {} client, {} connections, {} harness thread(s), \
         {} users, timeout {} ms, seed {}). Ran {:.1} s.{}</p>",
        esc(&format!("{:?}", s.target).to_lowercase()),
        esc(&s.url),
        esc(&s.resp_type),
        esc(&s.http_client),
        s.connections,
        s.threads,
        s.users,
        s.timeout_ms,
        s.seed,
        r.elapsed_s,
        r.stopped_early
            .as_ref()
            .map(|w| format!(" <b>Stopped early:</b> {}.", esc(w)))
            .unwrap_or_default()
    );
}

/// Counts by outcome and by request kind.
fn html_requests(h: &mut String, r: &RunResult) {
    let q = &r.requests;
    let _ = write!(
        *h,
        "<h2>Requests</h2><table><tr><th>planned</th><th>dispatched</th>{}<th>offered/s</th><th>ended/s</th><th>accepted/s</th></tr><tr><td>{}</td><td>{}</td>",
        q.outcomes
            .keys()
            .map(|k| format!("<th>{k}</th>"))
            .collect::<String>(),
        q.planned,
        q.dispatched
    );
    for v in q.outcomes.values() {
        let _ = write!(*h, "<td>{v}</td>");
    }
    let _ = write!(
        *h,
        "<td>{:.0}</td><td>{:.0}</td><td>{:.0}</td></tr></table>",
        q.offered_rate, q.achieved_rate, q.accepted_rate
    );
    let _ = write!(*h, "<table><tr><th>kind</th>");
    for o in Outcome::ALL {
        let _ = write!(*h, "<th>{}</th>", o.as_str());
    }
    h.push_str("</tr>");
    for (k, m) in &q.by_kind {
        let _ = write!(*h, "<tr><td>{k}</td>");
        for o in Outcome::ALL {
            let _ = write!(*h, "<td>{}</td>", m.get(o.as_str()).copied().unwrap_or(0));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if !q.error_codes.is_empty() || !q.failures.is_empty() {
        let _ = write!(
            *h,
            "<p>Error codes: {}. Without an answer: {}.</p>",
            esc(&format!("{:?}", q.error_codes)),
            esc(&format!("{:?}", q.failures))
        );
    }
}

/// Latency percentiles by group and outcome.
fn html_latency(h: &mut String, r: &RunResult) {
    let _ = write!(
        *h,
        "<h2>Latency (ms, from the planned send time)</h2><table>{PCT_HEAD}{}",
        pct_row("answered (accepted + rejected)", &r.latency_us.answered)
    );
    for (g, m) in [
        ("orders", &r.latency_us.orders),
        ("cancels", &r.latency_us.cancels),
    ] {
        for (o, p) in m {
            h.push_str(&pct_row(&format!("{g} {o}"), p));
        }
    }
    h.push_str("</table>");
}

/// Per phase: outcomes, cancels, p99 and RSS.
fn html_phases(h: &mut String, r: &RunResult) {
    let _ = write!(
        *h,
        "<h2>Phases</h2><table><tr><th>phase</th><th>rate</th><th>s</th><th>planned</th><th>accepted</th><th>rejected</th><th>shed</th><th>error</th><th>timeout</th><th>orders accepted p99 ms</th><th>cancels accepted / rejected / shed</th><th>p99 answered+timeout ms</th><th>RSS max MiB</th></tr>"
    );
    for p in &r.phases {
        let o = |k: &str| p.outcomes.get(k).copied().unwrap_or(0);
        let c = |k: &str| p.cancel_outcomes.get(k).copied().unwrap_or(0);
        let _ = write!(
            *h,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&p.name),
            p.rate,
            p.duration_s,
            p.planned,
            o("accepted"),
            o("rejected"),
            o("shed"),
            o("error"),
            o("timeout"),
            p.orders
                .get("accepted")
                .map(|x| format!("{:.2}", x.p99 as f64 / 1e3))
                .unwrap_or_else(|| "-".into()),
            c("accepted"),
            c("rejected"),
            c("shed"),
            p.p99_answered_or_timeout_us as f64 / 1e3,
            p.rss_kib_max
                .map(|k| format!("{:.0}", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    h.push_str("</table>");
}

/// The step-up's bound, knee and verdicts.
fn html_step(h: &mut String, r: &RunResult) {
    if let Some(st) = &r.step {
        let _ = write!(
            *h,
            "<h2>Step-up</h2><p>Bound: p99 &le; {:.1} ms and at most {:.1}% shed, failed or timed out. \
             Knee: <b>{}</b>{}.</p><table><tr><th>step</th><th>rate</th><th>p99 ms</th><th>not answered %</th><th></th></tr>",
            st.p99_bound_ms,
            st.max_not_answered_pct,
            st.knee_rate
                .map(|k| format!("{k} requests/s"))
                .unwrap_or_else(|| "none (the first step broke the bound)".into()),
            st.broken_at
                .as_ref()
                .map(|b| format!("; broken at {}", esc(b)))
                .unwrap_or_else(|| "; no step broke the bound".into())
        );
        for v in &st.steps {
            let _ = write!(
                *h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td class=\"{}\">{}</td></tr>",
                esc(&v.name),
                v.rate,
                v.p99_ms,
                v.not_answered_pct,
                if v.passed { "ok" } else { "bad" },
                if v.passed { "under" } else { "broke" }
            );
        }
        h.push_str("</table>");
    }
}

/// The engine's commands and events from `/metrics`.
fn html_engine(h: &mut String, r: &RunResult) {
    h.push_str("<h2>Engine: commands and events</h2>");
    match &r.engine {
        Some(e) => {
            let _ = write!(
                *h,
                "<p>From <code>/metrics</code> before and after ({:.1} s apart). A <i>command</i> is a \
                 request applied by a pair's engine; an <i>event</i> is one output of the engine for a \
                 command (fills, cancels, book changes, acceptances, rejections).</p>\
                 <table><tr><th></th><th>total</th><th>per minute</th></tr>\
                 <tr><td>commands</td><td>{}</td><td>{:.0}</td></tr>\
                 <tr><td>events</td><td>{}</td><td>{:.0}</td></tr>",
                e.window_s,
                e.commands_total,
                e.commands_per_minute,
                e.events_total,
                e.events_per_minute
            );
            for (k, v) in &e.counts.events {
                let _ = write!(
                    *h,
                    "<tr><td>&nbsp;&nbsp;event {}</td><td>{}</td><td>{:.0}</td></tr>",
                    esc(k),
                    v,
                    e.events_per_minute_by_kind.get(k).copied().unwrap_or(0.0)
                );
            }
            for (k, v) in &e.counts.commands {
                let _ = write!(
                    *h,
                    "<tr><td>&nbsp;&nbsp;command {}</td><td>{}</td><td></td></tr>",
                    esc(k),
                    v
                );
            }
            let _ = write!(
                *h,
                "<tr><td>commands + events</td><td>{}</td><td>{:.0}</td></tr></table>",
                e.commands_total + e.events_total,
                e.commands_and_events_per_minute
            );
            let _ = write!(
                *h,
                "<p>Backlog, sampled once a second while sending: {}.</p>",
                esc(&e.backlog.describe())
            );
        }
        None => {
            let _ = write!(
                *h,
                "<p>Not available: {}</p>",
                esc(r.engine_error.as_deref().unwrap_or("unknown"))
            );
        }
    }
}

/// The fan-out subscribers' findings.
fn html_fanout(h: &mut String, r: &RunResult) {
    let Some(f) = &r.fanout else { return };
    let _ = write!(
        *h,
        "<h2>Fan-out</h2><table><tr><th>subscribers</th><th>connected</th><th>updates</th><th>deliveries</th><th>MB read</th><th>lag p50 ms</th><th>lag p99 ms</th><th>lag max ms</th><th>slowest p99 ms</th><th>dropped</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        f.subscribers,
        f.connected,
        f.updates,
        f.deliveries,
        f.bytes as f64 / 1e6,
        f.lag_ms.p50,
        f.lag_ms.p99,
        f.lag_ms.max,
        f.slowest_p99_ms,
        esc(&format!("{:?}", f.dropped))
    );
}

/// The depth subscriber's findings.
fn html_depth(h: &mut String, r: &RunResult) {
    if let Some(d) = &r.depth {
        let _ = write!(
            *h,
            "<h2>Depth sync</h2><p>Sequence gaps: <b class=\"{}\">{}</b></p><table><tr><th>pair</th><th>diffs</th><th>applied</th><th>dropped</th><th>gaps</th><th>snapshots</th><th>stale snapshots</th><th>disconnects</th><th>book = REST at end</th></tr>",
            if d.gaps == 0 { "ok" } else { "bad" },
            d.gaps
        );
        for p in &d.pairs {
            let _ = write!(
                *h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.symbol),
                p.counts.diffs,
                p.counts.applied,
                p.counts.dropped,
                p.counts.gaps,
                p.counts.snapshots,
                p.counts.stale_snapshots,
                p.disconnects,
                match p.book_matches_at_end {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "not checked",
                }
            );
        }
        h.push_str("</table>");
    }
}

/// The exchange's and the harness's cost.
fn html_processes(h: &mut String, r: &RunResult) {
    h.push_str("<h2>Processes</h2><table><tr><th></th><th>CPU s</th><th>CPU us/request</th><th>RSS start / max / end MiB</th></tr>");
    let mib = |k: Option<u64>| {
        k.map(|k| format!("{:.0}", k as f64 / 1024.0))
            .unwrap_or_else(|| "-".into())
    };
    let f2 = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    if let Some(p) = &r.exchange_process {
        let _ = write!(
            *h,
            "<tr><td>exchange (pid {}, {})</td><td>{}</td><td>{}</td><td>{} / {} / {}</td></tr>",
            p.pid,
            p.found_by,
            f2(p.cpu_s),
            f2(p.cpu_us_per_request),
            mib(p.rss_kib_start),
            mib(p.rss_kib_max),
            mib(p.rss_kib_end)
        );
    }
    let _ = write!(
        *h,
        "<tr><td>harness</td><td>{}</td><td>{}</td><td></td></tr></table>\
         <p>Harness dispatch lag (ms): p50 {:.2}, p99 {:.2}, max {:.2}; reconnects {}; most outstanding {}.</p>",
        f2(r.harness.cpu_s),
        f2(r.harness.cpu_us_per_request),
        r.harness.dispatch_lag_us.p50 as f64 / 1e3,
        r.harness.dispatch_lag_us.p99 as f64 / 1e3,
        r.harness.dispatch_lag_us.max as f64 / 1e3,
        r.harness.reconnects,
        r.harness.max_outstanding
    );
}

/// The charts over time.
fn html_charts(h: &mut String, r: &RunResult) {
    let t = &r.timeline;
    let lat = |f: fn(&Percentiles) -> u64| {
        points(t, move |p| {
            (p.latency_us.count > 0).then(|| f(&p.latency_us) as f64 / 1_000.0)
        })
    };
    h.push_str("<h2>Over time</h2>");
    h.push_str(&chart(
        "Latency of answered requests (ms, log scale)",
        "ms",
        &[
            ("p50", RGBColor(0x1f, 0x77, 0xb4), lat(|p| p.p50)),
            ("p90", RGBColor(0x2c, 0xa0, 0x2c), lat(|p| p.p90)),
            ("p99", RGBColor(0xff, 0x7f, 0x0e), lat(|p| p.p99)),
            ("p99.9", RGBColor(0xd6, 0x27, 0x28), lat(|p| p.p999)),
            ("max", RGBColor(0x7f, 0x7f, 0x7f), lat(|p| p.max)),
        ],
        true,
    ));
    h.push_str(&chart(
        "Throughput (requests per second)",
        "requests/s",
        &[
            (
                "offered (schedule)",
                RGBColor(0x7f, 0x7f, 0x7f),
                points(t, |p| Some(p.offered_rate as f64)),
            ),
            (
                "dispatched",
                RGBColor(0x1f, 0x77, 0xb4),
                points(t, |p| Some(p.dispatched as f64)),
            ),
            (
                "ended",
                RGBColor(0x9e, 0x6b, 0xc8),
                points(t, |p| {
                    Some((p.accepted + p.rejected + p.shed + p.errors + p.timeouts) as f64)
                }),
            ),
            (
                "accepted",
                RGBColor(0x2c, 0xa0, 0x2c),
                points(t, |p| Some(p.accepted as f64)),
            ),
        ],
        false,
    ));
    html_failure_charts(h, t);
}

/// The charts of what was not accepted, of the engine's backlog and of the
/// exchange's memory.
fn html_failure_charts(h: &mut String, t: &[TimelinePoint]) {
    h.push_str(&chart(
        "Shed, rejected, failed (requests per second)",
        "requests/s",
        &[
            (
                "shed (429/503)",
                RGBColor(0xff, 0x7f, 0x0e),
                points(t, |p| Some(p.shed as f64)),
            ),
            (
                "rejected (4xx)",
                RGBColor(0x8c, 0x56, 0x4b),
                points(t, |p| Some(p.rejected as f64)),
            ),
            (
                "errors",
                RGBColor(0xd6, 0x27, 0x28),
                points(t, |p| Some(p.errors as f64)),
            ),
            (
                "timeouts",
                RGBColor(0x7f, 0x7f, 0x7f),
                points(t, |p| Some(p.timeouts as f64)),
            ),
        ],
        false,
    ));
    h.push_str(&chart(
        "Shed rate (% of requests ended in the second)",
        "%",
        &[(
            "shed %",
            RGBColor(0xff, 0x7f, 0x0e),
            points(t, |p| {
                let n = p.accepted + p.rejected + p.shed + p.errors + p.timeouts;
                (n > 0).then(|| p.shed as f64 * 100.0 / n as f64)
            }),
        )],
        false,
    ));
    if t.iter().any(|p| p.backlog.is_some()) {
        h.push_str(&chart(
            "Engine backlog (events unstored, commands unapplied)",
            "count",
            &[
                (
                    "persister lag",
                    RGBColor(0x94, 0x67, 0xbd),
                    points(t, |p| p.backlog.map(|b| b.persister_lag as f64)),
                ),
                (
                    "queue depth",
                    RGBColor(0x17, 0xbe, 0xcf),
                    points(t, |p| p.backlog.map(|b| b.queue_depth as f64)),
                ),
            ],
            false,
        ));
    }
    if t.iter().any(|p| p.rss_kib.is_some()) {
        h.push_str(&chart(
            "Exchange RSS (MiB)",
            "MiB",
            &[(
                "RSS",
                RGBColor(0x1f, 0x77, 0xb4),
                points(t, |p| p.rss_kib.map(|k| k as f64 / 1024.0)),
            )],
            false,
        ));
    }
}

/// What the words mean, and the files written.
fn html_definitions(h: &mut String, r: &RunResult) {
    h.push_str("<h2>Definitions</h2><dl>");
    for (k, v) in &r.definitions {
        let _ = write!(*h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl><h2>Files</h2><ul>");
    for (k, v) in &r.files {
        let _ = write!(*h, "<li>{}: <code>{}</code></li>", esc(k), esc(v));
    }
    h.push_str("</ul></body></html>\n");
}
