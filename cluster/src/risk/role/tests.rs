//! Risk roles over logs in memory (two shards, two pairs), with real books
//! as engines, killed at every kind of point (a write that never happens, as
//! after kill -9) and restarted from their stored snapshots: no command is
//! forwarded twice, every request is answered alike each time, each shard is
//! what a replay of its own partition gives and audits, the shards together
//! hold what was deposited, and their holds are exactly the books' open
//! orders.

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
        .map(|p| PairConfig {
            fees: Fees {
                maker_bps: 10,
                taker_bps: 20,
            },
            ..PairConfig::simple(Symbol::new(p).unwrap())
        })
        .collect()
}

const SHARDS: u16 = 2;

fn core(index: usize, row: Option<&RiskSnapshotRow>) -> RiskCore {
    let settings = RiskSettings { snapshot_every: 5 };
    let metrics = PipelineMetrics::register(&Registry::new()).unwrap();
    let id = ShardId {
        index: index as u16,
        count: SHARDS,
    };
    RiskCore::restore(id, row, &pairs(), settings, metrics).unwrap()
}

/// A record of an orders partition: its risk header and commands.
type OrdersRecord = (Option<Vec<u8>>, Vec<Command>);

/// Every log, the books that engines run over them, and the store.
struct World {
    /// Per shard: its partition of `risk`.
    risk: Vec<Vec<RiskInput>>,
    /// Per partition: each record's risk header and commands.
    orders: BTreeMap<i32, Vec<OrdersRecord>>,
    events: BTreeMap<i32, Vec<EventBatch>>,
    risk_events: Vec<Vec<DecisionBatch>>,
    snapshots: Vec<Option<RiskSnapshotRow>>,
    books: BTreeMap<i32, (OrderBook, usize)>,
    /// Writes until the next one fails (the role is killed there).
    crash_in: Option<usize>,
    /// How many times a role was killed and restarted.
    restarts: usize,
}

impl World {
    fn new() -> World {
        let books = pairs()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i as i32, (OrderBook::new(p).unwrap(), 0)))
            .collect();
        World {
            risk: vec![Vec::new(); SHARDS as usize],
            orders: (0..2).map(|p| (p, Vec::new())).collect(),
            events: (0..2).map(|p| (p, Vec::new())).collect(),
            risk_events: vec![Vec::new(); SHARDS as usize],
            snapshots: vec![None; SHARDS as usize],
            books,
            crash_in: None,
            restarts: 0,
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

/// One shard's view of the world.
struct View<'a> {
    w: &'a mut World,
    shard: usize,
}

impl RiskLogs for View<'_> {
    async fn listings(&mut self) -> Result<Vec<crate::Listed>, ClusterError> {
        Ok(Vec::new())
    }

    async fn read_risk(
        &mut self,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, Option<RiskInput>)>, ClusterError> {
        Ok(self.w.risk[self.shard]
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(max)
            .map(|(o, i)| (o as i64, Some(i.clone())))
            .collect())
    }

    async fn append_risk(&mut self, inputs: &[RiskInput]) -> Result<(), ClusterError> {
        for input in inputs {
            self.w.write()?;
            self.w.risk[self.shard].push(input.clone());
        }
        Ok(())
    }

    async fn may_forward(&mut self) -> Result<bool, ClusterError> {
        Ok(true)
    }

    async fn forward(
        &mut self,
        shard: u16,
        pairs: &[Vec<Forward>],
    ) -> Result<Vec<Vec<i64>>, ClusterError> {
        let mut out = Vec::new();
        for records in pairs {
            let mut offsets = Vec::new();
            for record in records {
                self.w.write()?;
                let tag = crate::risk::encode_tag(shard, &record.offsets);
                let log = self
                    .w
                    .orders
                    .get_mut(&World::partition(record.pair))
                    .unwrap();
                log.push((Some(tag), proto::decode_run(&record.body).unwrap()));
                offsets.push(log.len() as i64 - 1);
            }
            out.push(offsets);
        }
        Ok(out)
    }

    async fn flush(&mut self) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn decide(&mut self, batch: &DecisionBatch) -> Result<(), ClusterError> {
        self.w.write()?;
        self.w.risk_events[self.shard].push(batch.clone());
        Ok(())
    }

    fn decisions_from(&self) -> Option<u64> {
        u64::try_from(self.w.risk_events[self.shard].len()).ok()
    }

    async fn orders_ends(&mut self) -> Result<BTreeMap<i32, i64>, ClusterError> {
        Ok(self
            .w
            .orders
            .iter()
            .map(|(p, r)| (*p, r.len() as i64))
            .collect())
    }

    async fn orders_tail(&mut self, from: &BTreeMap<i32, i64>) -> Result<Vec<Tail>, ClusterError> {
        let mut out = Vec::new();
        for (p, records) in &self.w.orders {
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
        from: &BTreeMap<i32, i64>,
        max: usize,
    ) -> Result<Vec<(i32, i64, EventBatch)>, ClusterError> {
        let mut out = Vec::new();
        for (p, start) in from {
            for (o, b) in self.w.events[p].iter().enumerate().skip(*start as usize) {
                if out.len() >= max {
                    return Ok(out);
                }
                out.push((*p, o as i64, b.clone()));
            }
        }
        Ok(out)
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
            ops.push(Op::Risk(
                UserId(user),
                RiskRequest::Move(Movement {
                    kind: MovementKind::Deposit,
                    user: UserId(user),
                    asset: shard.asset_id(asset).unwrap(),
                    amount: if i == 0 { 5_000 } else { 40 },
                    reference: Reference(user * 10 + i as u64),
                }),
            ));
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
        // One in eight is a market buy by quantity: the shard gives it a
        // budget from the free quote balance.
        let (order_type, time_in_force) = if side == Side::Buy && rng.below(4) == 0 {
            (OrderType::Market, TimeInForce::Ioc)
        } else {
            (
                OrderType::Limit {
                    price: Price(95 + rng.below(10)),
                },
                TimeInForce::Gtc,
            )
        };
        let cmd = Command {
            pair,
            user,
            timestamp: Timestamp(id),
            body: CommandBody::NewOrder(NewOrder::plain(
                OrderId(id),
                side,
                order_type,
                time_in_force,
                OrderSize::Base(Qty(1 + rng.below(12))),
            )),
        };
        placed.push((pair, user, OrderId(id)));
        let fees = pairs()[0].fees;
        ops.push(Op::Risk(user, RiskRequest::Order(cmd, fees)));
    }
    ops
}

enum Op {
    Risk(UserId, RiskRequest),
    Cancel(Command),
}

/// Runs `ops` through the world, a turn of every stage after each; kills
/// a role at the `crashes`' write counts and restarts it from its stored
/// snapshot. Returns the world once nothing moves any more, and the live
/// roles.
async fn run(ops: Vec<Op>, mut crashes: Vec<usize>) -> (World, Vec<ShardRole>) {
    let mut turns = 0u64;
    let mut w = World::new();
    let mut roles = Vec::new();
    for s in 0..SHARDS as usize {
        let mut view = View {
            w: &mut w,
            shard: s,
        };
        roles.push(
            ShardRole::start(core(s, None), &[0, 1], &mut view, 4)
                .await
                .unwrap(),
        );
    }
    crashes.reverse();
    w.crash_in = crashes.pop();
    let mut ops = ops.into_iter().enumerate();
    let mut idle = 0;
    while idle < 3 {
        match ops.next() {
            Some((i, Op::Risk(user, request))) => {
                let s = ShardId::of_user(user, SHARDS) as usize;
                w.risk[s].push(RiskInput::Request {
                    from: RequestId {
                        gateway: 1,
                        id: i as u64,
                    },
                    request,
                });
            }
            Some((_, Op::Cancel(cmd))) => {
                let p = World::partition(cmd.pair);
                w.orders.get_mut(&p).unwrap().push((None, vec![cmd]));
            }
            None => {}
        }
        let mut moved = 0;
        for (s, role) in roles.iter_mut().enumerate() {
            let mut view = View {
                w: &mut w,
                shard: s,
            };
            // Now and then a snapshot on the timer, whatever the count.
            turns += 1;
            let anyway = turns.is_multiple_of(7);
            let step = async {
                let (applied, row) = role.turn(&mut view, anyway).await?;
                if let Some(row) = row {
                    view.w.snapshots[s] = Some(row);
                }
                view.w.run_engines();
                let fed = role.feed(&mut view, 3).await?;
                Ok::<_, ClusterError>(applied + fed)
            };
            match step.await {
                Ok(n) => moved += n,
                Err(_) => {
                    // kill -9: everything in memory is gone; restart.
                    w.run_engines();
                    let row = w.snapshots[s].clone();
                    let mut view = View {
                        w: &mut w,
                        shard: s,
                    };
                    *role = ShardRole::start(core(s, row.as_ref()), &[0, 1], &mut view, 4)
                        .await
                        .unwrap();
                    w.crash_in = crashes.pop();
                    w.restarts += 1;
                    moved += 1;
                }
            }
        }
        idle = if moved == 0 { idle + 1 } else { 0 };
    }
    (w, roles)
}

/// Dumps the command logs (to read a failure).
fn dump(w: &World) {
    for (p, records) in &w.orders {
        for (o, (tag, cmds)) in records.iter().enumerate() {
            let tag = tag.as_deref().and_then(crate::risk::decode_tag);
            let cmds: Vec<_> = cmds.iter().map(|c| &c.body).collect();
            eprintln!("orders {p} @{o} {tag:?} {cmds:?}");
        }
    }
}

/// No command was forwarded twice: the books never saw a duplicate id.
fn check_forwards(w: &World) {
    let dups = w
        .all_events()
        .filter(
            |e| matches!(e.body, EventBody::Rejected(r) if r.code == RejectCode::DuplicateOrderId),
        )
        .count();
    if dups > 0 {
        dump(w);
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
}

fn check(w: &World, roles: &[ShardRole]) {
    check_forwards(w);
    let mut open_holds = 0;
    let shard0 = roles[0].core().shard();
    let mut held = vec![0u128; shard0.assets().len()];
    let mut deposited = vec![0u128; shard0.assets().len()];
    for (s, role) in roles.iter().enumerate() {
        // Every request was answered, the same way each time.
        let mut answers: HashMap<RequestId, &Outcome> = HashMap::new();
        for d in w.risk_events[s].iter().flat_map(|b| &b.decisions) {
            if let Some(before) = answers.insert(d.from, &d.outcome) {
                assert_eq!(before, &d.outcome, "{:?} answered two ways", d.from);
            }
        }
        let asked = w.risk[s]
            .iter()
            .filter(|i| matches!(i, RiskInput::Request { .. }))
            .count();
        assert_eq!(answers.len(), asked, "shard {s}");
        // The shard is its partition's replay, and it audits.
        let mut replay = core(s, None);
        for (o, input) in w.risk[s].iter().enumerate() {
            replay.apply(o as i64, input);
        }
        let live = role.core().shard();
        assert_eq!(replay.shard().state_hash(), live.state_hash(), "shard {s}");
        assert_eq!(live.audit(), Ok(()), "shard {s}");
        open_holds += live.open_holds();
        for (_, asset, b) in live.balances() {
            held[usize::from(asset.0)] += b.free + b.locked;
        }
        for (i, d) in deposited.iter_mut().enumerate() {
            let asset = accounts::AssetId(i as u16);
            held[i] += live.fee_account(asset);
            *d += live.totals(asset).deposits;
        }
    }
    // Together the shards hold what was deposited (value only moved
    // between them), every event was settled, and the holds are the books'
    // open orders.
    assert_eq!(held, deposited);
    let open: usize = w.books.values().map(|(b, _)| b.open_orders()).sum();
    assert_eq!(open_holds, open);
    let traded = w
        .all_events()
        .filter(|e| matches!(e.body, EventBody::Trade(_)))
        .count();
    assert!(traded > 0, "the run traded");
    // Trades crossed shards, and market buys got budgets and filled.
    let crossed = w.all_events().any(|e| {
        matches!(e.body, EventBody::Trade(t)
            if ShardId::of_user(t.maker_user, SHARDS) != ShardId::of_user(t.taker_user, SHARDS))
    });
    assert!(crossed, "a trade crossed shards");
    let market_buys = w
        .orders
        .values()
        .flatten()
        .flat_map(|(_, cmds)| cmds)
        .filter(|c| {
            matches!(c.body, CommandBody::NewOrder(o)
                if matches!(o.size, OrderSize::BaseWithin { .. }))
        })
        .count();
    assert!(market_buys > 0, "market buys were forwarded with budgets");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn uninterrupted_roles_settle_and_forward_once() {
    let (w, roles) = block_on(run(gateway_ops(1, 160), Vec::new()));
    check(&w, &roles);
}

#[test]
fn roles_killed_anywhere_forward_nothing_twice_and_lose_nothing() {
    // Kills far apart and in quick succession (a restarted role killed
    // again before its replay reached its predecessor's forwards).
    let patterns: [fn(usize, usize) -> usize; 3] = [
        |seed, i| (seed * 3 + i * 7) % 17,
        |seed, i| (seed + i * 5) % 11,
        |seed, i| (seed + i) % 4,
    ];
    for seed in 1..=8usize {
        for pattern in patterns {
            let crashes = (0..16).map(|i| pattern(seed, i)).collect();
            let (w, roles) = block_on(run(gateway_ops(seed as u64, 160), crashes));
            check(&w, &roles);
            assert_eq!(w.restarts, 16, "every kill happened");
        }
    }
    // Random schedules.
    for seed in 1..=40u64 {
        let mut rng = Rng(seed);
        let crashes = (0..24).map(|_| rng.below(12) as usize).collect();
        let (w, roles) = block_on(run(gateway_ops(seed, 160), crashes));
        check(&w, &roles);
    }
}
