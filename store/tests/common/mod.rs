//! What the store's query tests share: a random trading stream run through
//! the real engine, its batches, and a fresh store in each backend.

#![allow(dead_code, unreachable_pub)]

use engine::OrderBook;
use proto::{
    Command, CommandBody, Event, NewOrder, OrderId, OrderRef, OrderSize, OrderType, PairConfig,
    Price, Qty, Seq, Side, Symbol, TimeInForce, Timestamp, UserId,
};
use store::{Batch, FillRow, Store};
use workload::Rng;

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000 * MS;
pub const MIN: u64 = 60 * SEC;
pub const HOUR: u64 = 60 * MIN;
pub const DAY: u64 = 24 * HOUR;

/// 2024-02-27T21:00:00Z: the stream crosses a day, the leap day, a month.
pub const START_NS: u64 = 1_709_067_600_000_000_000;

pub fn pair() -> Symbol {
    Symbol::new("BTC-EUR").unwrap()
}

pub fn config() -> PairConfig {
    PairConfig {
        qty_scale: 2,
        ..PairConfig::simple(pair())
    }
}

/// The events of `n` random commands, per command: three users (so some
/// trades are self-trades), limit and market orders around one price,
/// cancels; times mostly increasing in steps from nanoseconds to days,
/// sometimes a little back (gateways' clocks disagree), sometimes equal.
pub fn stream(seed: u64, n: u64) -> Vec<Vec<Event>> {
    let config = config();
    let mut book = OrderBook::new(config).unwrap();
    let mut rng = Rng::new(seed);
    let mut ts = START_NS;
    let mut out = Vec::new();
    for id in 1..=n {
        ts = next_time(&mut rng, ts);
        let cmd = command(&mut rng, id, ts);
        out.push(book.apply_one(&cmd));
    }
    out
}

fn next_time(rng: &mut Rng, ts: u64) -> u64 {
    match rng.below(100) {
        0..=9 => ts,
        10..=19 => ts - rng.range(1, 500 * MS),
        20..=59 => ts + rng.range(1, 2 * SEC),
        60..=84 => ts + rng.range(1, 2 * MIN),
        85..=96 => ts + rng.range(1, 2 * HOUR),
        _ => ts + rng.range(1, 3 * DAY),
    }
}

fn command(rng: &mut Rng, id: u64, ts: u64) -> Command {
    let side = if rng.percent(50) {
        Side::Buy
    } else {
        Side::Sell
    };
    let body = if rng.percent(8) {
        CommandBody::Cancel {
            target: OrderRef::Id(OrderId(rng.range(1, id))),
        }
    } else {
        let market = rng.percent(20);
        let price = Price(1_000 + rng.range(0, 20) - 10);
        CommandBody::NewOrder(NewOrder {
            order_id: OrderId(id),
            client_order_id: None,
            side,
            order_type: if market {
                OrderType::Market
            } else {
                OrderType::Limit { price }
            },
            time_in_force: if market || rng.percent(20) {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            },
            post_only: false,
            stp: None,
            size: OrderSize::Base(Qty(rng.range(1, 500))),
            iceberg_qty: None,
            good_till: None,
        })
    };
    Command {
        pair: pair(),
        user: UserId(rng.range(1, 3)),
        timestamp: Timestamp(ts),
        body,
    }
}

/// The stream cut into batches of 1 to 40 commands, as a persister folds
/// them.
pub fn batches(seed: u64, events: &[Vec<Event>]) -> Vec<Batch> {
    let mut rng = Rng::new(seed ^ 0xba7c);
    let scale = config().qty_scale;
    let mut last = Seq(0);
    let mut out = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let n = (rng.range(1, 40) as usize).min(rest.len());
        let mut b = Batch::default();
        for e in &rest[..n] {
            b.add_events(scale, &mut last, e);
        }
        out.push(b);
        rest = &rest[n..];
    }
    out
}

/// Every fill of the stream, by seq, as the store should hold them.
pub fn fills(events: &[Vec<Event>]) -> Vec<FillRow> {
    let mut b = Batch::default();
    for e in events {
        b.add_events(config().qty_scale, &mut Seq(0), e);
    }
    b.fills().to_vec()
}

/// Each accepted order: id, owner, acceptance time (ns).
pub fn orders(events: &[Vec<Event>]) -> Vec<(OrderId, UserId, u64)> {
    let mut out = Vec::new();
    for e in events.iter().flatten() {
        if let proto::EventBody::Accepted(a) = e.body {
            out.push((a.order_id, a.user, e.timestamp.0));
        }
    }
    out
}

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    (Store::connect(&url, 2).await.unwrap(), dir)
}

/// A fresh Postgres database's URL, or `None` (after saying so) when no
/// server answers outside CI.
pub async fn postgres_url(tag: &str) -> Option<String> {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("store_{tag}_{}_{nanos}", std::process::id());
    match store::create_postgres_database(&admin, &name).await {
        Ok(url) => Some(url),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("Postgres is required in CI: {admin}: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: Postgres not reachable at {admin}: {e}");
            None
        }
    }
}

pub async fn postgres(tag: &str) -> Option<Store> {
    let url = postgres_url(tag).await?;
    Some(Store::connect(&url, 2).await.unwrap())
}
