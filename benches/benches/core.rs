//! Criterion benchmarks of the matching core, one operation at a time and on
//! the two recorded mixes. Run: `cargo bench -p benches --bench core`.
//!
//! Single operations run back to back on a warm book of working size (up to
//! 10,000 distinct orders prepared untimed), so they measure the steady state
//! rather than the cache misses of a freshly copied book.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{amend, ask_ladder, cancel, limit, recorded};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use engine::OrderBook;
use proto::{Command, Price, Qty, Side};
use workload::Mix;

/// Ids of the orders a benchmark adds, clear of the ladder's ids.
const FIRST_ID: u64 = 1_000_000;
/// The bids a benchmark adds spread over this many levels below the asks.
const BID_LEVELS: u64 = 500;

fn bid_price(k: u64) -> u64 {
    9_000 - k % BID_LEVELS
}

/// The asks of [`ask_ladder`] plus `n` bids of 10, ids from [`FIRST_ID`].
fn with_bids(n: u64) -> OrderBook {
    let mut book = ask_ladder(100, 10);
    let mut events = Vec::new();
    for k in 0..n {
        events.clear();
        book.apply(
            &limit(FIRST_ID + k, 2, Side::Buy, bid_price(k), 10),
            &mut events,
        );
    }
    book
}

/// Most orders a single-operation benchmark adds to one book: keeps the book
/// at a working size that fits in cache, as a live pair's does.
const CHUNK: u64 = 10_000;

/// Times `op(k)` for `iters` values of `k`, applied in turn to books that
/// `setup(n)` prepares (untimed) for chunks of at most [`CHUNK`] operations.
fn steady(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    setup: impl Fn(u64) -> OrderBook,
    op: impl Fn(u64) -> Command,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut events = Vec::with_capacity(64);
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = CHUNK.min(iters - done);
                let mut book = setup(n);
                let start = Instant::now();
                for k in 0..n {
                    events.clear();
                    book.apply(black_box(&op(k)), &mut events);
                }
                elapsed += start.elapsed();
                black_box(book);
                done += n;
            }
            elapsed
        })
    });
}

fn single_operations(c: &mut Criterion) {
    let mut g = c.benchmark_group("op");
    steady(
        &mut g,
        "place_no_match",
        |_| ask_ladder(100, 10),
        |k| limit(FIRST_ID + k, 2, Side::Buy, bid_price(k), 10),
    );
    steady(&mut g, "cancel", with_bids, |k| cancel(FIRST_ID + k, 2));
    steady(&mut g, "amend_qty_down", with_bids, |k| {
        amend(FIRST_ID + k, 2, Some(Qty(5)), None)
    });
    steady(&mut g, "amend_move_price", with_bids, |k| {
        amend(FIRST_ID + k, 2, None, Some(Price(bid_price(k + 7))))
    });

    // Matching consumes the book, so each sample gets a fresh copy of a book
    // of 1,000 asks over 100 levels (the copy is not timed).
    let base = ask_ladder(100, 10);
    let mut events = Vec::with_capacity(512);
    for k in [1u64, 5, 20] {
        // A buy that exactly clears the first k levels (10 orders of 10 each).
        let cmd = limit(FIRST_ID, 2, Side::Buy, 10_000 + k, k * 100);
        g.bench_function(format!("place_match_{k}_levels"), |b| {
            b.iter_batched_ref(
                || base.clone(),
                |book| {
                    events.clear();
                    book.apply(black_box(&cmd), &mut events);
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn mixes(c: &mut Criterion) {
    let mut g = c.benchmark_group("mix");
    for (name, mix) in [
        ("exchange_core", Mix::ExchangeCore),
        ("advanced", Mix::Advanced),
        ("retail", Mix::Retail),
    ] {
        let (start, cmds) = recorded(mix, 1, 20_000, 100_000);
        g.throughput(Throughput::Elements(cmds.len() as u64));
        g.bench_function(name, |b| {
            let mut events = Vec::with_capacity(64);
            b.iter_batched_ref(
                || start.clone(),
                |book| {
                    for cmd in &cmds {
                        events.clear();
                        book.apply(cmd, &mut events);
                    }
                    black_box(events.len())
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = single_operations, mixes
}
criterion_main!(benches);
