//! The risk stage both modes run: one accounts shard, the single writer of
//! its users' balances. This is its synchronous part, shared by the
//! embedded journal writer (`runtime/src/sequencer.rs`) and the distributed
//! risk role (`cluster`): turning commands, movements and engine events into
//! shard inputs (with fees and market-buy budgets), applying them, encoding
//! the accepted ones into the current group's run of the shard's log,
//! collecting the balances they changed for the observers, snapshots and the
//! audit report.

use std::collections::HashMap;

use accounts::{ConfigError, Fees, Input, Output, Place, PlaceList, RiskCode, Shard};
use commandlog::{
    AccountUpdate, AssetAudit, AuditReport, EventRecord, Movement, MovementKind, MovementOutcome,
};
use prometheus::IntCounter;
use proto::{
    Command, CommandBody, ListKind, NewOrder, OrderRef, OrderSize, PairConfig, QuoteQty, Side,
    Symbol, UserId,
};
use store::RiskSnapshotRow;

use crate::PipelineMetrics;

/// A run of the shard's log: consecutive inputs from `first_position`, each
/// a proto-codec (bincode) encoding of `accounts::Input`, in the order the
/// shard applied them. The embedded journal writes it as one record; the
/// risk role in distributed mode produces its inputs to the shard's
/// partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskRun {
    /// The log position of the first input.
    pub first_position: u64,
    /// How many inputs `body` holds.
    pub count: u32,
    /// The inputs' encodings, back to back.
    pub body: Vec<u8>,
}

/// What the risk stage needs besides the pairs (whose configs carry their
/// fee rates).
#[derive(Debug, Clone)]
pub struct RiskSettings {
    /// Shard inputs between snapshots.
    pub snapshot_every: u64,
}

/// The `kind` label of `risk_inputs_total`, by input.
fn input_kind(input: &Input) -> usize {
    match input {
        Input::Deposit { .. } => 0,
        Input::Withdraw { .. } => 1,
        Input::Place(_) => 2,
        Input::Amend(_) => 3,
        Input::Settle(_) => 4,
        Input::PlaceList(_) => 5,
    }
}

const INPUT_KINDS: [&str; 6] = [
    "deposit",
    "withdraw",
    "place",
    "amend",
    "settle",
    "place_list",
];

/// `InsufficientBalance` as `insufficient_balance`: the `code` label of
/// `risk_refusals_total`.
pub fn code_label(code: RiskCode) -> String {
    let name = format!("{code:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The shard, and what one group commit adds to its stream.
#[derive(Debug)]
pub struct RiskStage {
    /// The ledger; read it, but apply inputs through the stage.
    pub shard: Shard,
    /// The shard's number (`user % shards`; 0 in embedded mode).
    shard_id: u16,
    settings: RiskSettings,
    /// Per pair: the most a market buy of one lot-unit of base may cost at
    /// the pair's highest price, and the pair's largest budget. Always the
    /// config file's, never an operator's later change (`PairChanged`):
    /// neither the journal nor a risk snapshot holds the pair's rules, and
    /// a replay must budget each market buy as the first run did. The
    /// engine spends at most the pair's maximum notional of the moment.
    limits: HashMap<Symbol, (u8, u64, QuoteQty)>,
    /// The last position of the risk stream applied (journaled, or in the
    /// group being built).
    pub position: u64,
    /// The current group's inputs.
    pub run: RiskRun,
    /// Accounts the current group changed, in order, with repeats.
    touched: Vec<(UserId, accounts::AssetId)>,
    /// The current group's movements, published as they were applied.
    movements: Vec<AccountUpdate>,
    out: Vec<Output>,
    since_snapshot: u64,
    /// Inputs by kind since the counters were last flushed.
    counts: [u64; INPUT_KINDS.len()],
    /// `risk_inputs_total` by kind, looked up once.
    inputs: [IntCounter; INPUT_KINDS.len()],
    metrics: PipelineMetrics,
}

impl RiskStage {
    /// The stage of shard `shard_id`, restored at `position` of its log.
    pub fn new(
        shard: Shard,
        shard_id: u16,
        position: u64,
        pairs: &[PairConfig],
        settings: RiskSettings,
        metrics: PipelineMetrics,
    ) -> RiskStage {
        let limits = pairs
            .iter()
            .map(|p| (p.symbol, (p.qty_scale, p.max_price.0, p.max_notional)))
            .collect();
        let inputs = INPUT_KINDS.map(|kind| metrics.risk_inputs.with_label_values(&[kind]));
        RiskStage {
            shard,
            shard_id,
            settings,
            limits,
            position,
            run: RiskRun::default(),
            touched: Vec::new(),
            movements: Vec::new(),
            out: Vec::with_capacity(16),
            since_snapshot: 0,
            counts: [0; INPUT_KINDS.len()],
            inputs,
            metrics,
        }
    }

    /// Lists `pair` with its fee rates: the shard learns its assets and
    /// rates (see [`Shard::add_pair`]), and its listing rules are its
    /// budgeting limits from now on, as a config file's are. Nothing
    /// changes when the shard refuses it.
    pub fn add_pair(&mut self, pair: &PairConfig) -> Result<(), ConfigError> {
        self.shard.add_pair(pair)?;
        self.limits.insert(
            pair.symbol,
            (pair.qty_scale, pair.max_price.0, pair.max_notional),
        );
        Ok(())
    }

    /// The rates orders on `pair` are placed with now: the shard's, which
    /// follow the pair's changes in its log order.
    pub fn fees(&self, pair: Symbol) -> Fees {
        self.shard.fees(pair).unwrap_or(Fees::ZERO)
    }

    /// Starts the next group's run after the last position.
    pub fn start_group(&mut self) {
        self.run.first_position = self.position + 1;
        self.run.count = 0;
        self.run.body.clear();
        self.touched.clear();
        self.movements.clear();
    }

    /// Gives a market buy by base quantity its budget (see
    /// [`Shard::market_buy_budget`]): the command sent to the engine and the
    /// journaled `Place` then carry the same order. So does a conditional
    /// order that works as a market buy once triggered (its budget is
    /// locked from placement on), and each such order of a list; an OTO's
    /// second order gets its budget from what its first leaves free, since
    /// both are held. Pure.
    pub fn prepare(&self, cmd: &mut Command) -> Result<(), RiskCode> {
        self.prepare_at(cmd, self.fees(cmd.pair))
    }

    /// [`RiskStage::prepare`] for an order charged `fees`.
    pub fn prepare_at(&self, cmd: &mut Command, fees: Fees) -> Result<(), RiskCode> {
        let (pair, user) = (cmd.pair, cmd.user);
        match &mut cmd.body {
            CommandBody::NewOrder(o) => self.give_budget(user, o, (pair, fees), 0),
            CommandBody::NewOrderList(l) => {
                self.give_budget(user, &mut l.orders[0], (pair, fees), 0)?;
                let reserved = match l.kind {
                    // One hold for both: each may use all that is free.
                    ListKind::Oco => 0,
                    ListKind::Oto => {
                        let quote = self.shard.pair_assets(pair).map(|(_, q)| q);
                        match self.shard.order_need(pair, user, &l.orders[0], fees) {
                            Ok((asset, amount)) if Some(asset) == quote => amount,
                            _ => 0,
                        }
                    }
                };
                self.give_budget(user, &mut l.orders[1], (pair, fees), reserved)
            }
            _ => Ok(()),
        }
    }

    /// Gives `o` its budget if it is (or works as) a market buy by base
    /// quantity, out of the free quote balance less `reserved`, with the
    /// taker fee of `pair` at `fees` on it.
    fn give_budget(
        &self,
        user: UserId,
        o: &mut NewOrder,
        (pair, fees): (Symbol, Fees),
        reserved: u128,
    ) -> Result<(), RiskCode> {
        let (Side::Buy, true, OrderSize::Base(qty)) = (o.side, o.order_type.is_market(), o.size)
        else {
            return Ok(());
        };
        let &(qty_scale, max_price, max_notional) =
            self.limits.get(&pair).ok_or(RiskCode::UnknownPair)?;
        // `qty` at the pair's highest price, in the budget's unit (rounded
        // up so the last lot at that price still fits), within what the
        // engine accepts as a budget.
        let worst = u128::from(qty.0) * u128::from(max_price);
        let worst = worst.div_ceil(proto::pow10(qty_scale));
        let cap = QuoteQty(u64::try_from(worst).unwrap_or(u64::MAX).min(max_notional.0));
        let budget =
            self.shard
                .market_buy_budget_beside(user, pair, fees.taker_bps, cap, reserved)?;
        o.size = OrderSize::BaseWithin { qty, budget };
        Ok(())
    }

    /// Checks and locks `cmd`'s worst case; on success its input is in the
    /// group's run. Cancels need no check: their `Canceled` events release
    /// the holds when they are settled; nor does the passing of time
    /// (`AdvanceTime`), whose expiries are `Canceled` events too, nor an
    /// operator's change of a pair. New orders are charged the pair's
    /// rates as this shard has settled them.
    pub fn admit(&mut self, cmd: &Command) -> Result<(), RiskCode> {
        self.admit_at(cmd, self.fees(cmd.pair))
    }

    /// [`RiskStage::admit`] for an order charged `fees` (checked: a maker
    /// rate above the taker rate is refused, `BadFees`).
    pub fn admit_at(&mut self, cmd: &Command, fees: Fees) -> Result<(), RiskCode> {
        let input = match &cmd.body {
            CommandBody::NewOrder(o) => Input::Place(Place {
                pair: cmd.pair,
                user: cmd.user,
                order: *o,
                fees,
            }),
            CommandBody::NewOrderList(l) => Input::PlaceList(PlaceList {
                pair: cmd.pair,
                user: cmd.user,
                list: **l,
                fees,
            }),
            CommandBody::Amend(a) => {
                let order_id = match a.target {
                    OrderRef::Id(id) => id,
                    OrderRef::Client(client) => self
                        .shard
                        .order_by_client(cmd.pair, cmd.user, client)
                        .ok_or(RiskCode::UnknownOrder)?,
                };
                Input::Amend(accounts::Amend {
                    pair: cmd.pair,
                    user: cmd.user,
                    order_id,
                    new_qty: a.new_qty,
                    new_price: a.new_price,
                })
            }
            CommandBody::Cancel { .. }
            | CommandBody::CancelAll
            | CommandBody::CancelList { .. }
            | CommandBody::AdvanceTime
            | CommandBody::ChangePair(_) => return Ok(()),
        };
        match self.apply(&input) {
            Some(code) => Err(code),
            None => Ok(()),
        }
    }

    /// Settles every event of `record`.
    pub fn settle(&mut self, record: &EventRecord) {
        self.settle_events(&record.events);
    }

    /// Settles `events`, in order.
    pub fn settle_events(&mut self, events: &[proto::Event]) {
        for e in events.iter().filter(|e| accounts::moves_money(e)) {
            // Settlement never refuses (an unknown pair is configuration
            // drift, answered and journaled like any other input).
            self.apply(&Input::Settle(*e));
        }
    }

    /// Applies a movement; an applied one is in the group's run.
    pub fn move_funds(&mut self, m: &Movement) -> MovementOutcome {
        let input = match m.kind {
            MovementKind::Deposit => Input::Deposit {
                user: m.user,
                asset: m.asset,
                amount: m.amount,
                reference: m.reference,
            },
            MovementKind::Withdraw => Input::Withdraw {
                user: m.user,
                asset: m.asset,
                amount: m.amount,
                reference: m.reference,
            },
        };
        if let Some(code) = self.apply(&input) {
            return MovementOutcome::Refused(code);
        }
        if matches!(self.out.first(), Some(Output::Duplicate(_))) {
            return MovementOutcome::Duplicate;
        }
        let balance = self.shard.balance(m.user, m.asset);
        let signed = i128::try_from(m.amount).unwrap_or(i128::MAX);
        self.movements.push(AccountUpdate {
            user: m.user,
            time_ns: 0,
            balances: vec![(m.asset, balance)],
            movement: Some((
                m.asset,
                match m.kind {
                    MovementKind::Deposit => signed,
                    MovementKind::Withdraw => -signed,
                },
            )),
        });
        MovementOutcome::Applied(balance)
    }

    /// Applies `input`; returns the refusal, if any. A refused input and a
    /// duplicate (a reused movement reference, an event settled before)
    /// change nothing and are not journaled; everything else goes into the
    /// run.
    fn apply(&mut self, input: &Input) -> Option<RiskCode> {
        self.out.clear();
        self.shard.apply(input, &mut self.out);
        if let Some(Output::Rejected(code)) = self.out.first() {
            self.metrics
                .risk_refusals
                .with_label_values(&[&code_label(*code)])
                .inc();
            return Some(*code);
        }
        if let Some(Output::Duplicate(_)) = self.out.first() {
            return None;
        }
        if proto::encode_into(input, &mut self.run.body).is_err() {
            // A shard input is a few dozen bytes; its encoding cannot fail.
            debug_assert!(false, "a shard input did not encode");
        }
        self.run.count += 1;
        self.position += 1;
        self.since_snapshot += 1;
        self.counts[input_kind(input)] += 1;
        for o in &self.out {
            match *o {
                Output::Locked { user, asset, .. } | Output::Released { user, asset, .. } => {
                    self.touched.push((user, asset));
                }
                Output::Filled { user, pair, .. } => {
                    if let Some((base, quote)) = self.shard.pair_assets(pair) {
                        self.touched.push((user, base));
                        self.touched.push((user, quote));
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Adds the inputs counted since the last call to the metrics (once
    /// per group commit, not per input).
    pub fn flush_metrics(&mut self) {
        for (counter, n) in self.inputs.iter().zip(&mut self.counts) {
            if *n > 0 {
                counter.inc_by(*n);
                *n = 0;
            }
        }
        self.metrics
            .risk_snapshot_age
            .set(i64::try_from(self.since_snapshot).unwrap_or(i64::MAX));
    }

    /// Appends to `out` every account the group changed, for its observers
    /// once the group is committed: movements as they were applied, then
    /// each changed user's touched assets as they are now. Reading the
    /// balances is all it does; publishing them is the caller's (the
    /// embedded writer hands them to its dispatcher, so the observer's work
    /// is off the writer's turn).
    pub fn take_updates(&mut self, out: &mut Vec<AccountUpdate>) {
        if self.touched.is_empty() && self.movements.is_empty() {
            return;
        }
        let time_ns = commandlog::now_ns();
        out.extend(self.movements.drain(..).map(|mut m| {
            m.time_ns = time_ns;
            m
        }));
        self.touched.sort_unstable();
        self.touched.dedup();
        for same_user in self.touched.chunk_by(|a, b| a.0 == b.0) {
            let user = same_user[0].0;
            out.push(AccountUpdate {
                user,
                time_ns,
                balances: same_user
                    .iter()
                    .map(|&(_, asset)| (asset, self.shard.balance(user, asset)))
                    .collect(),
                movement: None,
            });
        }
        self.touched.clear();
    }

    /// A snapshot when `snapshot_every` inputs were applied since the last.
    pub fn due_snapshot(&mut self) -> Option<RiskSnapshotRow> {
        self.snapshot_due().then(|| self.snapshot())
    }

    /// Whether `snapshot_every` inputs were applied since the last snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.since_snapshot >= self.settings.snapshot_every.max(1)
    }

    /// Whether inputs were applied since the last snapshot.
    pub fn unsnapshotted(&self) -> bool {
        self.since_snapshot > 0
    }

    /// The shard's snapshot at the current position.
    pub fn snapshot(&mut self) -> RiskSnapshotRow {
        self.since_snapshot = 0;
        let bytes = self.shard.snapshot();
        RiskSnapshotRow {
            shard: self.shard_id,
            position: self.position,
            state_hash: proto::fnv1a(&bytes),
            taken_at: commandlog::now_ns(),
            bytes,
            // Only a distributed risk role knows where its decisions went.
            decisions_from: None,
        }
    }

    /// Whether inputs were applied since the last snapshot.
    pub fn moved_since_snapshot(&self) -> bool {
        self.since_snapshot > 0
    }

    /// The live shard's audit; one that fails is counted
    /// (`risk_audit_failures_total`).
    pub fn audit(&self) -> AuditReport {
        let report = audit(&self.shard);
        if !report.failures.is_empty() {
            self.metrics.risk_audit_failures.inc();
        }
        report
    }
}

/// `shard`'s audit as the port reports it.
pub fn audit(shard: &Shard) -> AuditReport {
    let mut held = vec![0u128; shard.assets().len()];
    for (_, asset, b) in shard.balances() {
        if let Some(h) = held.get_mut(usize::from(asset.0)) {
            *h = h.saturating_add(b.free).saturating_add(b.locked);
        }
    }
    let assets = shard
        .assets()
        .iter()
        .zip(held)
        .enumerate()
        .map(|(i, (info, held))| {
            let id = accounts::AssetId(u16::try_from(i).unwrap_or(u16::MAX));
            let t = shard.totals(id);
            let fees = shard.fee_account(id);
            let expected = t
                .deposits
                .saturating_add(t.received)
                .saturating_sub(t.withdrawals)
                .saturating_sub(t.sent);
            AssetAudit {
                asset: info.name.clone(),
                held: held.saturating_add(fees),
                expected,
                fees,
            }
        })
        .collect();
    let failures = match shard.audit() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    AuditReport {
        assets,
        open_holds: shard.open_holds(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use accounts::Reference;
    use proto::{
        ConditionalKind, NewOrderList, OrderId, OrderType, PairChange, Price, Qty, TimeInForce,
        Timestamp, Trigger,
    };

    use super::*;

    const FEES: Fees = Fees {
        maker_bps: 10,
        taker_bps: 20,
    };

    fn pair() -> Symbol {
        Symbol::new("BTC-EUR").unwrap()
    }

    /// A stage whose user 1 has 10,020 EUR and 5 BTC free.
    fn stage() -> RiskStage {
        let pairs = [PairConfig {
            fees: FEES,
            ..PairConfig::simple(pair())
        }];
        let settings = RiskSettings {
            snapshot_every: 1_000,
        };
        let metrics = PipelineMetrics::register(&prometheus::Registry::new()).unwrap();
        let shard = Shard::new(&pairs).unwrap();
        let mut stage = RiskStage::new(shard, 0, 0, &pairs, settings, metrics);
        for (asset, amount) in [("EUR", 10_020), ("BTC", 5)] {
            let asset = stage.shard.asset_id(asset).unwrap();
            let m = Movement {
                user: UserId(1),
                asset,
                amount,
                kind: MovementKind::Deposit,
                reference: Reference(u64::from(asset.0)),
            };
            assert!(matches!(stage.move_funds(&m), MovementOutcome::Applied(_)));
        }
        stage
    }

    fn command(body: CommandBody) -> Command {
        Command {
            pair: pair(),
            user: UserId(1),
            timestamp: Timestamp(1),
            body,
        }
    }

    /// A buy stop-loss of `qty` by base: a market order once it fires.
    fn stop_buy(id: u64, qty: u64) -> NewOrder {
        let order_type = OrderType::Conditional {
            kind: ConditionalKind::StopLoss,
            limit: None,
            trigger: Trigger {
                stop_price: Some(Price(110)),
                trailing_delta: None,
            },
        };
        NewOrder::plain(
            OrderId(id),
            Side::Buy,
            order_type,
            TimeInForce::Ioc,
            OrderSize::Base(Qty(qty)),
        )
    }

    fn limit(id: u64, side: Side, price: u64, qty: u64) -> NewOrder {
        NewOrder::plain(
            OrderId(id),
            side,
            OrderType::Limit {
                price: Price(price),
            },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(qty)),
        )
    }

    fn budget(cmd: &Command, leg: usize) -> Option<QuoteQty> {
        let size = match &cmd.body {
            CommandBody::NewOrder(o) => o.size,
            CommandBody::NewOrderList(l) => l.orders[leg].size,
            _ => return None,
        };
        match size {
            OrderSize::BaseWithin { budget, .. } => Some(budget),
            _ => None,
        }
    }

    #[test]
    fn a_conditional_market_buy_by_base_gets_a_budget_as_a_market_buy_does() {
        let stage = stage();
        // 10,000 + 20 bps = 10,020: all that is free.
        let mut stop = command(CommandBody::NewOrder(stop_buy(1, 5)));
        stage.prepare(&mut stop).unwrap();
        assert_eq!(budget(&stop, 0), Some(QuoteQty(10_000)));
        // A stop-limit keeps its size: its limit bounds it.
        let mut stop_limit = stop_buy(2, 5);
        if let OrderType::Conditional { limit, .. } = &mut stop_limit.order_type {
            *limit = Some(Price(120));
        }
        let mut cmd = command(CommandBody::NewOrder(stop_limit));
        stage.prepare(&mut cmd).unwrap();
        assert_eq!(budget(&cmd, 0), None);
    }

    #[test]
    fn an_oto_second_order_gets_its_budget_from_what_its_first_leaves() {
        let stage = stage();
        // The working buy holds 4,000 + 8: the pending buy may use 6,012
        // (6,000 + 12).
        let oto = NewOrderList {
            list_id: OrderId(1),
            client_list_id: None,
            kind: ListKind::Oto,
            orders: [limit(2, Side::Buy, 1_000, 4), stop_buy(3, 5)],
        };
        let mut cmd = command(CommandBody::NewOrderList(Box::new(oto)));
        stage.prepare(&mut cmd).unwrap();
        assert_eq!(budget(&cmd, 1), Some(QuoteQty(6_000)));
        // A working sell holds base: the buy may use all the quote.
        let oto = NewOrderList {
            orders: [limit(2, Side::Sell, 1_000, 4), stop_buy(3, 5)],
            ..oto
        };
        let mut cmd = command(CommandBody::NewOrderList(Box::new(oto)));
        stage.prepare(&mut cmd).unwrap();
        assert_eq!(budget(&cmd, 1), Some(QuoteQty(10_000)));
    }

    #[test]
    fn lists_are_checked_and_logged_and_list_cancels_and_time_pass() {
        let mut stage = stage();
        stage.start_group();
        let oco = NewOrderList {
            list_id: OrderId(1),
            client_list_id: None,
            kind: ListKind::Oco,
            orders: [limit(2, Side::Sell, 120, 5), limit(3, Side::Sell, 130, 5)],
        };
        stage
            .admit(&command(CommandBody::NewOrderList(Box::new(oco))))
            .unwrap();
        assert_eq!(stage.run.count, 1);
        let btc = stage.shard.asset_id("BTC").unwrap();
        assert_eq!(stage.shard.balance(UserId(1), btc).locked, 5);
        let decoded: Input = proto::decode(&stage.run.body).unwrap();
        assert!(matches!(decoded, Input::PlaceList(_)));
        // A second list for the same 5 BTC is refused and not logged.
        let again = NewOrderList {
            list_id: OrderId(4),
            orders: [limit(5, Side::Sell, 120, 5), limit(6, Side::Sell, 130, 5)],
            ..oco
        };
        let refused = stage.admit(&command(CommandBody::NewOrderList(Box::new(again))));
        assert_eq!(refused, Err(RiskCode::InsufficientBalance));
        let cancel = CommandBody::CancelList {
            target: OrderRef::Id(OrderId(1)),
        };
        stage.admit(&command(cancel)).unwrap();
        stage.admit(&command(CommandBody::AdvanceTime)).unwrap();
        assert_eq!(stage.run.count, 1, "nothing to check, nothing logged");
    }

    /// Admits order `id`: a sell of 1 at 100.
    fn sell_one(stage: &mut RiskStage, id: u64) {
        let order = limit(id, Side::Sell, 100, 1);
        stage.admit(&command(CommandBody::NewOrder(order))).unwrap();
    }

    /// The place input of the run's last input, with its rates.
    fn placed_fees(stage: &RiskStage) -> Fees {
        let inputs: Vec<Input> = proto::decode_run(&stage.run.body).unwrap();
        match inputs.last() {
            Some(Input::Place(p)) => p.fees,
            other => panic!("not a place: {other:?}"),
        }
    }

    #[test]
    fn a_settled_fee_change_rates_the_orders_placed_after_it_and_is_in_the_snapshot() {
        let mut stage = stage();
        let mut book = engine::OrderBook::new(PairConfig {
            fees: FEES,
            ..PairConfig::simple(pair())
        })
        .unwrap();
        stage.start_group();
        sell_one(&mut stage, 1);
        assert_eq!(placed_fees(&stage), FEES);
        let cheaper = Fees {
            maker_bps: 0,
            taker_bps: 5,
        };
        let change = PairChange {
            maker_fee_bps: Some(cheaper.maker_bps),
            taker_fee_bps: Some(cheaper.taker_bps),
            ..PairChange::default()
        };
        let events = book.apply_one(&Command {
            user: UserId(0),
            ..command(CommandBody::ChangePair(Box::new(change)))
        });
        // Admitted before the change was settled: the old rates.
        sell_one(&mut stage, 2);
        assert_eq!(placed_fees(&stage), FEES);
        stage.settle_events(&events);
        assert_eq!(stage.fees(pair()), cheaper);
        sell_one(&mut stage, 3);
        assert_eq!(placed_fees(&stage), cheaper);
        // The first order's hold keeps the rates it was placed with.
        let first = stage.shard.hold(pair(), OrderId(1)).unwrap();
        assert_eq!(first.fees, FEES);
        let restored = Shard::restore(&stage.shard.snapshot()).unwrap();
        assert_eq!(restored.fees(pair()), Some(cheaper));
        assert_eq!(restored.state_hash(), stage.shard.state_hash());
    }
}
