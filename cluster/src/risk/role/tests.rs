//! The risk role over logs in memory, with real books as engines, killed at
//! every kind of point (a write that never happens, as after kill -9) and
//! restarted from its stored snapshot: no command is forwarded twice, every
//! request is answered alike each time, the shard is what a replay of its
//! own partition gives, and its holds are exactly the books' open orders.

use std::collections::{BTreeMap, HashMap, HashSet};

use accounts::{Fees, Reference, Shard};
use commandlog::{Movement, MovementKind};
use engine::OrderBook;
use prometheus::Registry;
use proto::{
    Command, CommandBody, Event, EventBody, NewOrder, OrderId, OrderRef, OrderSize, OrderType,
    PairConfig, Price, Qty, RejectCode, Side, Symbol, TimeInForce, Timestamp, UserId,
};

use super::*;
use crate::risk::{RequestId, RiskRequest, ShardId};
use pipeline::{PipelineMetrics, RiskSettings};

const PAIRS: [&str; 2] = ["BTC-EUR", "ETH-EUR"];

fn pairs() -> Vec<PairConfig> {
    PAIRS
        .iter()
        .map(|p| PairConfig::simple(Symbol::new(p).unwrap()))
        .collect()
}

fn core(row: Option<&RiskSnapshotRow>) -> RiskCore {
    let settings = RiskSettings {
        fees: pairs()
            .iter()
            .map(|p| {
                (
                    p.symbol,
                    Fees {
                        maker_bps: 10,
                        taker_bps: 20,
                    },
                )
            })
            .collect(),
        snapshot_every: 5,
    };
    let metrics = PipelineMetrics::register(&Registry::new()).unwrap();
    let id = ShardId { index: 0, count: 1 };
    RiskCore::restore(id, row, &pairs(), settings, metrics).unwrap()
}

/// A record of an orders partition: its risk header and commands.
type OrdersRecord = (Option<Vec<u8>>, Vec<Command>);

/// Every log, the books that engines run over them, and the store.
struct World {
    risk: Vec<RiskInput>,
    /// Per partition: each record's risk header and commands.
    orders: BTreeMap<i32, Vec<OrdersRecord>>,
    events: BTreeMap<i32, Vec<EventBatch>>,
    risk_events: Vec<DecisionBatch>,
    snapshot: Option<RiskSnapshotRow>,
    books: BTreeMap<i32, (OrderBook, usize)>,
    /// Writes until the next one fails (the role is killed there).
    crash_in: Option<usize>,
}

impl World {
    fn new() -> World {
        let books = pairs()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i as i32, (OrderBook::new(p).unwrap(), 0)))
            .collect();
        World {
            risk: Vec::new(),
            orders: (0..2).map(|p| (p, Vec::new())).collect(),
            events: (0..2).map(|p| (p, Vec::new())).collect(),
            risk_events: Vec::new(),
            snapshot: None,
            books,
            crash_in: None,
        }
    }

    fn partition(pair: Symbol) -> i32 {
        PAIRS.iter().position(|p| *p == pair.as_str()).unwrap() as i32
    }

    /// Counts a write; false when it is the one that fails.
    fn write(&mut self) -> Result<(), ClusterError> {
        match &mut self.crash_in {
            Some(0) => {
                self.crash_in = None;
                Err(ClusterError::Stopped("the role (killed)"))
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The engines: each new orders record becomes one events record.
    fn run_engines(&mut self) {
        for (partition, (book, done)) in &mut self.books {
            let records = &self.orders[partition];
            while *done < records.len() {
                let mut batch = EventBatch {
                    pair: book.config().symbol,
                    records: Vec::new(),
                };
                for (i, cmd) in records[*done].1.iter().enumerate() {
                    batch
                        .records
                        .push((position(*done as i64, i), book.apply_one(cmd)));
                }
                self.events.get_mut(partition).unwrap().push(batch);
                *done += 1;
            }
        }
    }

    fn all_events(&self) -> impl Iterator<Item = &Event> {
        self.events
            .values()
            .flatten()
            .flat_map(|b| b.records.iter().flat_map(|(_, e)| e.iter()))
    }
}

impl RiskLogs for World {
    async fn read_risk(
        &mut self,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, RiskInput)>, ClusterError> {
        Ok(self
            .risk
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(max)
            .map(|(o, i)| (o as i64, i.clone()))
            .collect())
    }

    async fn append_risk(&mut self, input: &RiskInput) -> Result<(), ClusterError> {
        self.write()?;
        self.risk.push(input.clone());
        Ok(())
    }

    async fn forward(&mut self, record: &Forward, tag: &[u8]) -> Result<i64, ClusterError> {
        self.write()?;
        let log = self.orders.get_mut(&World::partition(record.pair)).unwrap();
        log.push((Some(tag.to_vec()), proto::decode_run(&record.body).unwrap()));
        Ok(log.len() as i64 - 1)
    }

    async fn decide(&mut self, batch: &DecisionBatch) -> Result<(), ClusterError> {
        self.write()?;
        self.risk_events.push(batch.clone());
        Ok(())
    }

    async fn orders_ends(&mut self) -> Result<BTreeMap<i32, i64>, ClusterError> {
        Ok(self
            .orders
            .iter()
            .map(|(p, r)| (*p, r.len() as i64))
            .collect())
    }

    async fn orders_tail(&mut self, from: &BTreeMap<i32, i64>) -> Result<Vec<Tail>, ClusterError> {
        let mut out = Vec::new();
        for (p, records) in &self.orders {
            let pair = Symbol::new(PAIRS[*p as usize]).unwrap();
            let start = from.get(p).copied().unwrap_or(0) as usize;
            for (o, (tag, _)) in records.iter().enumerate().skip(start) {
                out.push((*p, pair, o as i64, tag.clone()));
            }
        }
        Ok(out)
    }

    async fn read_events(
        &mut self,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, EventBatch)>, ClusterError> {
        Ok(self.events[&partition]
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(max)
            .map(|(o, b)| (o as i64, b.clone()))
            .collect())
    }
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// What gateways send: deposits first, then orders and cancels.
fn gateway_ops(seed: u64, n: usize) -> Vec<Op> {
    let shard = Shard::new(&pairs()).unwrap();
    let mut rng = Rng(seed);
    let mut ops = Vec::new();
    for user in 1..=4u64 {
        for (i, asset) in ["EUR", "BTC", "ETH"].iter().enumerate() {
            ops.push(Op::Risk(RiskRequest::Move(Movement {
                kind: MovementKind::Deposit,
                user: UserId(user),
                asset: shard.asset_id(asset).unwrap(),
                amount: if i == 0 { 5_000 } else { 40 },
                reference: Reference(user * 10 + i as u64),
            })));
        }
    }
    let mut placed = Vec::new();
    for id in 1..=n as u64 {
        let pair = Symbol::new(PAIRS[rng.below(2) as usize]).unwrap();
        let user = UserId(1 + rng.below(4));
        if rng.below(5) == 0
            && let Some(&(pair, user, order)) =
                placed.get(rng.below(placed.len().max(1) as u64) as usize)
        {
            ops.push(Op::Cancel(Command {
                pair,
                user,
                timestamp: Timestamp(id),
                body: CommandBody::Cancel {
                    target: OrderRef::Id(order),
                },
            }));
            continue;
        }
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let cmd = Command {
            pair,
            user,
            timestamp: Timestamp(id),
            body: CommandBody::NewOrder(NewOrder {
                order_id: OrderId(id),
                client_order_id: None,
                side,
                order_type: OrderType::Limit {
                    price: Price(95 + rng.below(10)),
                },
                time_in_force: TimeInForce::Gtc,
                post_only: false,
                stp: None,
                size: OrderSize::Base(Qty(1 + rng.below(12))),
            }),
        };
        placed.push((pair, user, OrderId(id)));
        ops.push(Op::Risk(RiskRequest::Order(cmd)));
    }
    ops
}

enum Op {
    Risk(RiskRequest),
    Cancel(Command),
}

/// Runs `ops` through the world, a turn of every stage after each; kills
/// the role at the `crashes`' write counts and restarts it from its stored
/// snapshot. Returns the world once nothing moves any more, and the live
/// role.
async fn run(ops: Vec<Op>, mut crashes: Vec<usize>) -> (World, ShardRole) {
    let mut w = World::new();
    let mut role = ShardRole::start(core(None), &[0, 1], &mut w, 4)
        .await
        .unwrap();
    crashes.reverse();
    w.crash_in = crashes.pop();
    let mut ops = ops.into_iter().enumerate();
    let mut idle = 0;
    while idle < 3 {
        match ops.next() {
            Some((i, Op::Risk(request))) => w.risk.push(RiskInput::Request {
                from: RequestId {
                    gateway: 1,
                    id: i as u64,
                },
                request,
            }),
            Some((_, Op::Cancel(cmd))) => {
                let p = World::partition(cmd.pair);
                w.orders.get_mut(&p).unwrap().push((None, vec![cmd]));
            }
            None => {}
        }
        let step = async {
            let (applied, row) = role.turn(&mut w).await?;
            if let Some(row) = row {
                w.snapshot = Some(row);
            }
            w.run_engines();
            let fed = role.feed(&mut w, 3).await?;
            Ok::<_, ClusterError>(applied + fed)
        };
        match step.await {
            Ok(moved) => idle = if moved == 0 { idle + 1 } else { 0 },
            Err(_) => {
                // kill -9: everything in memory is gone; restart.
                w.run_engines();
                role = ShardRole::start(core(w.snapshot.as_ref()), &[0, 1], &mut w, 4)
                    .await
                    .unwrap();
                w.crash_in = crashes.pop();
                idle = 0;
            }
        }
    }
    (w, role)
}

fn check(w: &World, role: &ShardRole) {
    // No command was forwarded twice: the books never saw a duplicate id.
    let dups = w
        .all_events()
        .filter(
            |e| matches!(e.body, EventBody::Rejected(r) if r.code == RejectCode::DuplicateOrderId),
        )
        .count();
    if dups > 0 {
        for (p, records) in &w.orders {
            for (o, (tag, cmds)) in records.iter().enumerate() {
                let ids: Vec<String> = cmds
                    .iter()
                    .map(|c| match c.body {
                        CommandBody::NewOrder(o) => format!("new {}", o.order_id.0),
                        CommandBody::Cancel { target } => format!("cancel {target:?}"),
                        _ => "other".into(),
                    })
                    .collect();
                eprintln!(
                    "p{p} @{o} {:?} {ids:?}",
                    tag.as_deref().and_then(crate::risk::decode_tag)
                );
            }
        }
        for e in w.all_events() {
            if let EventBody::Rejected(r) = e.body {
                eprintln!("{:?} {:?}", e.pair, r);
            }
        }
    }
    assert_eq!(dups, 0, "a command was forwarded twice");
    let mut forwarded = HashSet::new();
    for records in w.orders.values() {
        for (_, cmds) in records {
            for c in cmds {
                if let CommandBody::NewOrder(o) = c.body {
                    assert!(forwarded.insert(o.order_id), "{:?} twice", o.order_id);
                }
            }
        }
    }
    // Every request was answered, the same way each time.
    let mut answers: HashMap<RequestId, &Outcome> = HashMap::new();
    for d in w.risk_events.iter().flat_map(|b| &b.decisions) {
        if let Some(before) = answers.insert(d.from, &d.outcome) {
            assert_eq!(before, &d.outcome, "{:?} answered two ways", d.from);
        }
    }
    let asked = w
        .risk
        .iter()
        .filter(|i| matches!(i, RiskInput::Request { .. }))
        .count();
    assert_eq!(answers.len(), asked);
    // The shard is its partition's replay, and it audits.
    let mut replay = core(None);
    for (o, input) in w.risk.iter().enumerate() {
        replay.apply(o as i64, input);
    }
    let live = role.core().shard();
    assert_eq!(replay.shard().state_hash(), live.state_hash());
    assert_eq!(live.audit(), Ok(()));
    // Every event was settled, and the holds are the books' open orders.
    let open: usize = w.books.values().map(|(b, _)| b.open_orders()).sum();
    assert_eq!(live.open_holds(), open);
    let traded = w
        .all_events()
        .filter(|e| matches!(e.body, EventBody::Trade(_)))
        .count();
    assert!(traded > 0, "the run traded");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn an_uninterrupted_role_settles_and_forwards_once() {
    let (w, role) = block_on(run(gateway_ops(1, 120), Vec::new()));
    check(&w, &role);
}

#[test]
fn a_role_killed_anywhere_forwards_nothing_twice_and_loses_nothing() {
    for seed in 1..=6u64 {
        let crashes = (0..12).map(|i| (seed as usize * 3 + i * 7) % 17).collect();
        let (w, role) = block_on(run(gateway_ops(seed, 120), crashes));
        check(&w, &role);
    }
}
