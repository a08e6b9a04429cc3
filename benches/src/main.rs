//! `corebench`: single-threaded throughput and per-command latency of the
//! matching core on the recorded mixes.
//!
//! Throughput runs apply the whole stream with no timing inside the loop;
//! latency runs time each command with `Instant` (which adds the clock's own
//! ~20-30 ns to every sample) into an HDR histogram. Each figure is the median
//! over several runs, each on a fresh copy of the warmed-up book.
//!
//! Usage: corebench [--commands N] [--runs R]

use std::hint::black_box;
use std::time::Instant;

use benches::recorded;
use hdrhistogram::Histogram;
use workload::Mix;

fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a positive integer")),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<(), String> {
    let n = arg("--commands", 1_000_000)?.max(1);
    let runs = arg("--runs", 5)?.max(1);
    println!("corebench: {n} commands per run, {runs} runs, median reported (single thread)");
    println!(
        "{:<14} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "mix", "commands/s", "events/s", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "resting"
    );
    for (name, mix) in [
        ("exchange-core", Mix::ExchangeCore),
        ("advanced", Mix::Advanced),
        ("retail", Mix::Retail),
    ] {
        let (start, cmds) = recorded(mix, 42, 50_000, n);
        let mut events = Vec::with_capacity(64);
        let mut rates = Vec::new();
        let mut event_rates = Vec::new();
        for _ in 0..runs {
            let mut book = start.clone();
            let mut emitted = 0usize;
            let t = Instant::now();
            for cmd in &cmds {
                events.clear();
                book.apply(cmd, &mut events);
                emitted += events.len();
            }
            let secs = t.elapsed().as_secs_f64();
            black_box(&book);
            rates.push(cmds.len() as f64 / secs);
            event_rates.push(emitted as f64 / secs);
        }
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut p999 = Vec::new();
        let mut max = Vec::new();
        let mut resting = 0;
        for _ in 0..runs {
            let mut book = start.clone();
            let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
                .map_err(|e| e.to_string())?;
            for cmd in &cmds {
                events.clear();
                let t = Instant::now();
                book.apply(cmd, &mut events);
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
            resting = book.open_orders();
            p50.push(h.value_at_quantile(0.50) as f64);
            p99.push(h.value_at_quantile(0.99) as f64);
            p999.push(h.value_at_quantile(0.999) as f64);
            max.push(h.max() as f64);
        }
        println!(
            "{:<14} {:>12.0} {:>12.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>9}",
            name,
            median(rates),
            median(event_rates),
            median(p50),
            median(p99),
            median(p999),
            median(max),
            resting
        );
    }
    Ok(())
}
