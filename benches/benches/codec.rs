//! Criterion benchmarks of the wire codec. Run: `cargo bench -p benches --bench codec`.

use std::hint::black_box;

use benches::recorded;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::OrderBook;
use proto::{Command, Event};
use workload::Mix;

fn codec(c: &mut Criterion) {
    let (start, cmds) = recorded(Mix::Retail, 1, 5_000, 1_000);
    let mut book: OrderBook = start;
    let events: Vec<Event> = cmds.iter().flat_map(|c| book.apply_one(c)).collect();
    let cmd_bytes: Vec<Vec<u8>> = cmds
        .iter()
        .map(|c| proto::encode(c).expect("encodes"))
        .collect();
    let batch = proto::encode(&events).expect("encodes");

    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(cmds.len() as u64));
    g.bench_function("encode_command", |b| {
        let mut buf = Vec::with_capacity(256);
        b.iter(|| {
            for cmd in &cmds {
                buf.clear();
                proto::encode_into(black_box(cmd), &mut buf).expect("encodes");
            }
        })
    });
    g.bench_function("decode_command", |b| {
        b.iter(|| {
            for bytes in &cmd_bytes {
                black_box(proto::decode::<Command>(bytes).expect("decodes"));
            }
        })
    });
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("encode_event_batch", |b| {
        let mut buf = Vec::with_capacity(batch.len());
        b.iter(|| {
            buf.clear();
            proto::encode_into(black_box(&events), &mut buf).expect("encodes");
        })
    });
    g.bench_function("decode_event_batch", |b| {
        b.iter(|| black_box(proto::decode::<Vec<Event>>(&batch).expect("decodes")))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
