//! Criterion benchmarks of the matching core, one operation at a time and on
//! the two recorded mixes. Run: `cargo bench -p benches --bench core`.

use std::hint::black_box;

use benches::{ask_ladder, cancel, limit, recorded};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proto::{Amend, CommandBody, OrderId, OrderRef, Price, Qty, Side};
use workload::Mix;

fn single_operations(c: &mut Criterion) {
    let mut g = c.benchmark_group("op");
    // 1,000 resting orders over 100 levels: a book with some depth to search.
    let base = ask_ladder(100, 10);
    let mut events = Vec::with_capacity(64);

    g.bench_function("place_no_match", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |book| {
                events.clear();
                book.apply(
                    black_box(&limit(1_000_000, 2, Side::Buy, 9_000, 10)),
                    &mut events,
                );
            },
            BatchSize::LargeInput,
        )
    });
    for k in [1u64, 5, 20] {
        // A buy that exactly clears the first k levels (10 orders of 10 each).
        let cmd = limit(1_000_000, 2, Side::Buy, 10_000 + k, k * 100);
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
    g.bench_function("cancel", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |book| {
                events.clear();
                book.apply(black_box(&cancel(505, 1)), &mut events);
            },
            BatchSize::LargeInput,
        )
    });
    for (name, new_qty, new_price) in [
        ("amend_qty_down", Some(Qty(5)), None),
        ("amend_move_price", None, Some(Price(10_150))),
    ] {
        let mut cmd = cancel(505, 1);
        cmd.body = CommandBody::Amend(Amend {
            target: OrderRef::Id(OrderId(505)),
            new_qty,
            new_price,
        });
        g.bench_function(name, |b| {
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
