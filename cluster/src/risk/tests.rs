//! The core's decisions: refusals, forwards, settlement through a real
//! book, replay from a snapshot with and without found forwards.

use std::collections::BTreeMap;

use accounts::{Fees, Reference};
use commandlog::{MovementKind, MovementOutcome};
use engine::OrderBook;
use prometheus::Registry;
use proto::{
    CommandBody, NewOrder, OrderId, OrderSize, OrderType, Price, Qty, Side, TimeInForce, Timestamp,
};

use super::*;

const FEES: Fees = Fees {
    maker_bps: 10,
    taker_bps: 20,
};

fn btc() -> Symbol {
    Symbol::new("BTC-EUR").unwrap()
}

/// A pair charging FEES.
fn charging(pair: Symbol) -> PairConfig {
    PairConfig {
        fees: FEES,
        ..PairConfig::simple(pair)
    }
}

fn pairs() -> Vec<PairConfig> {
    vec![charging(btc())]
}

fn core(id: ShardId, row: Option<&RiskSnapshotRow>) -> RiskCore {
    let settings = RiskSettings { snapshot_every: 3 };
    let metrics = PipelineMetrics::register(&Registry::new()).unwrap();
    RiskCore::restore(id, row, &pairs(), settings, metrics).unwrap()
}

fn from(id: u64) -> RequestId {
    RequestId { gateway: 7, id }
}

fn deposit(user: u64, asset: &str, amount: u128, reference: u64) -> RiskInput {
    let shard = Shard::new(&pairs()).unwrap();
    RiskInput::Request {
        from: from(reference),
        request: RiskRequest::Move(Movement {
            kind: MovementKind::Deposit,
            user: UserId(user),
            asset: shard.asset_id(asset).unwrap(),
            amount,
            reference: Reference(reference),
        }),
    }
}

fn limit(user: u64, id: u64, side: Side, price: u64, qty: u64) -> Command {
    Command {
        pair: btc(),
        user: UserId(user),
        timestamp: Timestamp(id),
        body: CommandBody::NewOrder(NewOrder::plain(
            OrderId(id),
            side,
            OrderType::Limit {
                price: Price(price),
            },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(qty)),
        )),
    }
}

fn order(cmd: Command, id: u64) -> RiskInput {
    RiskInput::Request {
        from: from(id),
        request: RiskRequest::Order(cmd, FEES),
    }
}

/// Runs `inputs` from offset 0 through `core`, forwarding accepted commands
/// to `book` and feeding its events back as settlements at once (the
/// role's order: a command's events come after it in the shard's log).
/// Returns every step, and the inputs as the partition holds them.
fn run(core: &mut RiskCore, book: &mut OrderBook, inputs: Vec<RiskInput>) -> Vec<(i64, RiskInput)> {
    let mut log = Vec::new();
    let mut queue: std::collections::VecDeque<RiskInput> = inputs.into();
    let mut events_offset = 0;
    while let Some(input) = queue.pop_front() {
        let offset = log.len() as i64;
        log.push((offset, input.clone()));
        if let Step::Forward { cmd, .. } = core.apply(offset, &input) {
            let events: Vec<Event> = book
                .apply_one(&cmd)
                .into_iter()
                .filter(|e| core.id().concerns(e))
                .collect();
            queue.push_front(RiskInput::Settle {
                partition: 0,
                offset: events_offset,
                // Every command gives one: the chain has no holes.
                after: events_offset,
                events,
            });
            events_offset += 1;
        }
    }
    log
}

fn balance(core: &RiskCore, user: u64, asset: &str) -> (u128, u128) {
    let b = core
        .shard()
        .balance(UserId(user), core.shard().asset_id(asset).unwrap());
    (b.free, b.locked)
}

#[test]
fn orders_without_funds_are_refused_and_trades_settle_with_fees() {
    let id = ShardId { index: 0, count: 1 };
    let mut c = core(id, None);
    assert_eq!(
        c.apply(0, &order(limit(1, 1, Side::Buy, 100, 2), 1)),
        Step::Decided(Decision {
            offset: 0,
            from: from(1),
            outcome: Outcome::Refused(RiskCode::InsufficientBalance),
        })
    );
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    let mut c = core(id, None);
    run(
        &mut c,
        &mut book,
        vec![
            deposit(1, "EUR", 10_000, 1),
            deposit(2, "BTC", 5, 2),
            order(limit(2, 10, Side::Sell, 1_000, 2), 3),
            order(limit(1, 11, Side::Buy, 1_000, 2), 4),
        ],
    );
    // 2,000 EUR and the 0.2% taker fee for the buyer; the 0.1% maker fee
    // for the seller; both fees in the fee account.
    assert_eq!(balance(&c, 1, "EUR"), (10_000 - 2_000 - 4, 0));
    assert_eq!(balance(&c, 1, "BTC"), (2, 0));
    assert_eq!(balance(&c, 2, "EUR"), (2_000 - 2, 0));
    assert_eq!(balance(&c, 2, "BTC"), (3, 0));
    let eur = c.shard().asset_id("EUR").unwrap();
    assert_eq!(c.shard().fee_account(eur), 6);
    assert_eq!(c.shard().audit(), Ok(()));
    assert_eq!(c.fed().get(&0), Some(&2));
    let updates = c.take_updates();
    assert!(
        updates
            .iter()
            .any(|u| u.user == UserId(1) && u.movement.is_some())
    );
}

/// An order is charged the rates its gateway quoted (it follows the
/// pair's log; the shard's own table lags by its feed), and rates that
/// cannot be charged are refused.
#[test]
fn an_order_is_charged_the_rates_its_gateway_sent() {
    let id = ShardId { index: 0, count: 1 };
    let mut c = core(id, None);
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    let quoted = Fees {
        maker_bps: 0,
        taker_bps: 50,
    };
    let at = |cmd, id, fees| RiskInput::Request {
        from: from(id),
        request: RiskRequest::Order(cmd, fees),
    };
    let log = run(
        &mut c,
        &mut book,
        vec![
            deposit(1, "EUR", 10_000, 1),
            deposit(2, "BTC", 5, 2),
            at(limit(2, 10, Side::Sell, 1_000, 2), 3, quoted),
            at(limit(1, 11, Side::Buy, 1_000, 2), 4, quoted),
        ],
    );
    // 2,000 EUR and 0.5% for the taker; nothing for the maker.
    assert_eq!(balance(&c, 1, "EUR"), (10_000 - 2_000 - 10, 0));
    assert_eq!(balance(&c, 2, "EUR"), (2_000, 0));
    let bad = Fees {
        maker_bps: 60,
        taker_bps: 50,
    };
    assert!(matches!(
        c.apply(
            log.len() as i64,
            &at(limit(1, 12, Side::Buy, 1_000, 1), 5, bad)
        ),
        Step::Decided(Decision {
            outcome: Outcome::Refused(RiskCode::BadFees),
            ..
        })
    ));
}

#[test]
fn a_replay_from_a_snapshot_decides_alike_and_never_forwards_twice() {
    let id = ShardId { index: 0, count: 1 };
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    let mut live = core(id, None);
    let inputs = [
        deposit(1, "EUR", 10_000, 1),
        deposit(2, "BTC", 5, 2),
        order(limit(2, 10, Side::Sell, 100, 2), 3),
        order(limit(1, 11, Side::Buy, 100, 1), 4),
        order(limit(1, 12, Side::Buy, 90, 50), 5),
        order(limit(1, 13, Side::Buy, 90, 200), 6),
    ];
    // The live run, snapshotted after its fourth input.
    let mut row = None;
    let mut decisions = Vec::new();
    let mut log = run(&mut live, &mut book, inputs[..3].to_vec());
    let snapshot_at = log.len();
    for input in &inputs[3..] {
        if row.is_none() {
            row = Some(live.snapshot(BTreeMap::new()));
        }
        let offset = log.len() as i64;
        log.push((offset, input.clone()));
        decisions.push((offset, live.apply(offset, input)));
    }
    let row = row.unwrap();
    assert_eq!(row.position, snapshot_at as u64);
    // The restored core replays the whole partition: inputs the snapshot
    // covers are skipped, the rest decided alike, and a forward the pair's
    // log holds already is answered with its position, not forwarded.
    let mut again = core(id, Some(&row));
    assert_eq!(again.next(), snapshot_at as i64);
    let forwarded = decisions
        .iter()
        .find_map(|(o, s)| matches!(s, Step::Forward { .. }).then_some(*o))
        .unwrap();
    again.found_forwards([(forwarded, (btc(), 4242))]);
    for (offset, input) in &log {
        let step = again.apply(*offset, input);
        match decisions.iter().find(|(o, _)| o == offset) {
            None => assert_eq!(step, Step::None, "offset {offset}"),
            Some((o, _)) if *o == forwarded => assert_eq!(
                step,
                Step::Decided(Decision {
                    offset: *o,
                    from: from(4),
                    outcome: Outcome::Forwarded {
                        pair: btc(),
                        position: 4242
                    },
                })
            ),
            Some((_, expected)) => assert_eq!(&step, expected, "offset {offset}"),
        }
    }
    assert_eq!(again.shard().state_hash(), live.shard().state_hash());
}

#[test]
fn settlement_is_idempotent_and_the_feed_resumes_from_the_snapshot() {
    let id = ShardId { index: 0, count: 1 };
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    let mut c = core(id, None);
    let mut log = run(
        &mut c,
        &mut book,
        vec![
            deposit(1, "EUR", 10_000, 1),
            order(limit(1, 11, Side::Buy, 1_000, 2), 2),
        ],
    );
    let settled = c.shard().state_hash();
    // The same events record fed again (a restarted feed) changes nothing.
    let again = log
        .iter()
        .find(|(_, i)| matches!(i, RiskInput::Settle { .. }))
        .unwrap()
        .1
        .clone();
    let offset = log.len() as i64;
    log.push((offset, again.clone()));
    assert_eq!(c.apply(offset, &again), Step::None);
    assert_eq!(c.shard().state_hash(), settled);
    let row = c.snapshot(BTreeMap::from([(0, 3)]));
    let restored = core(id, Some(&row));
    assert_eq!(restored.fed(), c.fed());
    assert_eq!(restored.orders_from(), &BTreeMap::from([(0, 3)]));
    assert_eq!(restored.shard().state_hash(), settled);
    // The hold: 2,000 and the taker fee on it.
    assert_eq!(balance(&restored, 1, "EUR"), (10_000 - 2_004, 2_004));
}

#[test]
fn shards_take_their_own_users_and_events() {
    let odd = ShardId { index: 1, count: 2 };
    let mut c = core(odd, None);
    assert!(matches!(
        c.apply(0, &deposit(2, "EUR", 5, 1)),
        Step::Decided(Decision {
            outcome: Outcome::Misrouted,
            ..
        })
    ));
    assert!(matches!(
        c.apply(1, &deposit(3, "EUR", 5, 2)),
        Step::Decided(Decision {
            outcome: Outcome::Moved(MovementOutcome::Applied(_)),
            ..
        })
    ));
    let cancel = Command {
        body: CommandBody::Cancel {
            target: proto::OrderRef::Id(OrderId(1)),
        },
        ..limit(3, 1, Side::Buy, 1, 1)
    };
    assert!(matches!(
        c.apply(2, &order(cancel, 3)),
        Step::Decided(Decision {
            outcome: Outcome::Misrouted,
            ..
        })
    ));
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    let events = book.apply_one(&limit(2, 1, Side::Sell, 10, 1));
    assert!(events.iter().all(|e| !odd.concerns(e)));
    let events = book.apply_one(&limit(3, 2, Side::Buy, 10, 1));
    let trade = events
        .iter()
        .find(|e| matches!(e.body, EventBody::Trade(_)))
        .unwrap();
    assert!(odd.concerns(trade));
    assert!(ShardId { index: 0, count: 2 }.concerns(trade));
}

#[test]
fn an_audit_is_answered_by_any_shard_and_a_clean_one_counts_no_failure() {
    let registry = Registry::new();
    let settings = RiskSettings { snapshot_every: 3 };
    let metrics = PipelineMetrics::register(&registry).unwrap();
    let id = ShardId { index: 1, count: 2 };
    let mut c = RiskCore::restore(id, None, &pairs(), settings, metrics.clone()).unwrap();
    c.apply(0, &deposit(3, "EUR", 5, 1));
    let audit = RiskInput::Request {
        from: from(2),
        request: RiskRequest::Audit,
    };
    let Step::Decided(Decision {
        outcome: Outcome::Audited(report),
        ..
    }) = c.apply(1, &audit)
    else {
        panic!("an audit is answered");
    };
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(metrics.risk_audit_failures.get(), 0);
}

#[test]
fn records_round_trip_through_the_codec() {
    let input = order(limit(1, 2, Side::Buy, 3, 4), 5);
    let bytes = proto::encode(&input).unwrap();
    assert_eq!(proto::decode::<RiskInput>(&bytes).unwrap(), input);
    let batch = DecisionBatch {
        shard: 1,
        through: 9,
        decisions: vec![Decision {
            offset: 8,
            from: from(1),
            outcome: Outcome::Forwarded {
                pair: btc(),
                position: 1025,
            },
        }],
        updates: vec![AccountUpdate {
            user: UserId(1),
            time_ns: 3,
            balances: vec![],
            movement: Some((accounts::AssetId(0), -5)),
        }],
    };
    let bytes = proto::encode(&batch).unwrap();
    assert_eq!(proto::decode::<DecisionBatch>(&bytes).unwrap(), batch);
    assert!(proto::decode::<DecisionBatch>(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn a_settlement_after_a_missing_one_waits_until_the_feed_sends_again() {
    let id = ShardId { index: 0, count: 1 };
    let mut c = core(id, None);
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    run(&mut c, &mut book, vec![deposit(1, "EUR", 10_000, 1)]);
    let next = c.next();
    let before = c.shard().state_hash();
    // The feed's settlement of records up to 5 never reached the log; the
    // one after it names it.
    let events = book.apply_one(&limit(1, 9, Side::Buy, 100, 1));
    let settle = |after| RiskInput::Settle {
        partition: 0,
        offset: 7,
        after,
        events: events.clone(),
    };
    assert_eq!(c.apply(next, &settle(5)), Step::Gap { partition: 0 });
    assert_eq!(c.fed().get(&0), None, "nothing settled from the partition");
    assert_eq!(c.shard().state_hash(), before);
    // Sent again from the shard's position, it is settled.
    assert_eq!(c.apply(next + 1, &settle(0)), Step::None);
    assert_eq!(c.fed().get(&0), Some(&8));
}

#[test]
fn a_pair_added_to_the_config_is_added_to_a_restored_shard_unless_it_rescales_an_asset() {
    let id = ShardId { index: 0, count: 1 };
    let mut c = core(id, None);
    let mut book = OrderBook::new(PairConfig::simple(btc())).unwrap();
    run(&mut c, &mut book, vec![deposit(1, "EUR", 10_000, 1)]);
    let row = c.snapshot(BTreeMap::new());
    let eth = Symbol::new("ETH-EUR").unwrap();
    let restore = |pair: PairConfig| {
        let settings = RiskSettings { snapshot_every: 3 };
        let metrics = PipelineMetrics::register(&Registry::new()).unwrap();
        RiskCore::restore(id, Some(&row), &[charging(btc()), pair], settings, metrics)
    };
    let grown = restore(PairConfig::simple(eth)).unwrap();
    assert!(grown.shard().pair_assets(eth).is_some());
    assert_eq!(balance(&grown, 1, "EUR"), (10_000, 0));
    // EUR counts in whole units here; ETH-EUR at 2 + 0 decimals would
    // rescale every balance of it.
    let finer = PairConfig {
        price_scale: 2,
        ..PairConfig::simple(eth)
    };
    let Err(refused) = restore(finer) else {
        panic!("a pair that rescales EUR is refused");
    };
    assert!(refused.0.contains("cannot be added"), "{}", refused.0);
}

#[test]
fn a_pair_listed_mid_stream_decides_as_if_it_had_always_been_there() {
    let id = ShardId { index: 0, count: 1 };
    let sol = Symbol::new("SOL-EUR").unwrap();
    let listed = crate::Listed {
        config: charging(sol),
        partition: 1,
    };
    let before = [
        deposit(1, "EUR", 10_000, 1),
        order(limit(1, 2, Side::Buy, 10, 5), 2),
    ];
    let sol_buy = order(
        Command {
            pair: sol,
            ..limit(1, 3, Side::Buy, 10, 5)
        },
        3,
    );
    let mut late = core(id, None);
    for (offset, input) in before.iter().enumerate() {
        late.apply(offset as i64, input);
    }
    assert!(late.names_new(&sol_buy));
    assert!(late.add_listed(&listed).unwrap());
    assert!(!late.add_listed(&listed).unwrap(), "listed once");
    assert!(!late.names_new(&sol_buy));
    let late_step = late.apply(2, &sol_buy);
    assert!(matches!(late_step, Step::Forward { .. }), "{late_step:?}");

    let settings = RiskSettings { snapshot_every: 3 };
    let metrics = PipelineMetrics::register(&Registry::new()).unwrap();
    let all = [charging(btc()), charging(sol)];
    let mut early = RiskCore::restore(id, None, &all, settings, metrics).unwrap();
    for (offset, input) in before.iter().enumerate() {
        early.apply(offset as i64, input);
    }
    let early_step = early.apply(2, &sol_buy);
    assert_eq!(format!("{late_step:?}"), format!("{early_step:?}"));
    assert_eq!(late.shard().state_hash(), early.shard().state_hash());
}
