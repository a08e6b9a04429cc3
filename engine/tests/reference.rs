//! The fast book against a naive reference book on seeded random streams.
//!
//! The reference keeps every resting order in one unsorted `Vec` and finds
//! what it needs by scanning and sorting: slow, short, and obviously right.
//! It implements the same rules (including the event order documented in
//! `engine/src/book.rs`) without any of the fast book's slabs, links,
//! indexes or maps. Both must emit identical events for every command.

mod common;

use common::*;
use engine::{OrderBook, RestingOrder};
use proto::*;
use workload::{Generator, Mix};

struct Naive {
    config: PairConfig,
    seq: u64,
    arrivals: u64,
    /// (order, arrival)
    book: Vec<(RestingOrder, u64)>,
    out: Vec<Event>,
    ts: Timestamp,
}

#[derive(Clone, Copy)]
struct NaiveTaker {
    id: OrderId,
    cid: Option<ClientOrderId>,
    user: UserId,
    side: Side,
    limit: Option<Price>,
    /// Base quantity left, or exact quote budget (scale price+qty) left.
    base: Option<u64>,
    quote: u128,
    /// Base quantity a quote-sized order has bought so far.
    quote_taken: u64,
    /// A base-sized order's unspent quote budget (scale price+qty), if any.
    within: Option<u128>,
    stp: StpMode,
}

impl Naive {
    fn new(config: PairConfig) -> Self {
        Naive {
            config,
            seq: 0,
            arrivals: 0,
            book: Vec::new(),
            out: Vec::new(),
            ts: Timestamp(0),
        }
    }

    fn emit(&mut self, body: EventBody) {
        self.seq += 1;
        self.out.push(Event {
            pair: self.config.symbol,
            seq: Seq(self.seq),
            timestamp: self.ts,
            body,
        });
    }

    /// Resting orders of `side` in priority order.
    fn sorted(&self, side: Side) -> Vec<(RestingOrder, u64)> {
        let mut v: Vec<_> = self
            .book
            .iter()
            .copied()
            .filter(|(o, _)| o.side == side)
            .collect();
        v.sort_by_key(|(o, arrival)| {
            let price_rank = match side {
                Side::Buy => u64::MAX - o.price.0,
                Side::Sell => o.price.0,
            };
            (price_rank, *arrival)
        });
        v
    }

    fn level_qty(&self, side: Side, price: Price) -> Qty {
        Qty(self
            .book
            .iter()
            .filter(|(o, _)| o.side == side && o.price == price)
            .map(|(o, _)| o.remaining.0)
            .sum())
    }

    fn remove(&mut self, id: OrderId) -> RestingOrder {
        let i = self
            .book
            .iter()
            .position(|(o, _)| o.order_id == id)
            .expect("resting");
        self.book.remove(i).0
    }

    fn find(&self, user: UserId, target: OrderRef) -> Result<RestingOrder, RejectCode> {
        let o = self
            .book
            .iter()
            .map(|(o, _)| *o)
            .find(|o| match target {
                OrderRef::Id(id) => o.order_id == id,
                OrderRef::Client(c) => o.user == user && o.client_order_id == Some(c),
            })
            .ok_or(RejectCode::UnknownOrder)?;
        if o.user != user {
            return Err(RejectCode::UnknownOrder);
        }
        Ok(o)
    }

    fn crosses(side: Side, limit: Option<Price>, price: Price) -> bool {
        match (limit, side) {
            (None, _) => true,
            (Some(l), Side::Buy) => l >= price,
            (Some(l), Side::Sell) => l <= price,
        }
    }

    fn cap(&self, t: &NaiveTaker, price: Price) -> u64 {
        match t.base {
            Some(q) => match t.within {
                None => q,
                Some(b) => {
                    let lots = b / u128::from(price.0) / u128::from(self.config.lot_size.0);
                    let q = u128::from(q).min(lots * u128::from(self.config.lot_size.0));
                    u64::try_from(q).unwrap()
                }
            },
            None => {
                let q = (t.quote / u128::from(price.0)).min(u128::from(u64::MAX)) as u64;
                let lot = self.config.lot_size.0;
                (q / lot * lot).min(self.config.max_qty.0 / lot * lot - t.quote_taken)
            }
        }
    }

    fn remaining(&self, t: &NaiveTaker) -> OrderSize {
        match t.base {
            Some(q) => OrderSize::Base(Qty(q)),
            None => OrderSize::Quote(QuoteQty(
                (t.quote / pow10(self.config.qty_scale)).min(u128::from(u64::MAX)) as u64,
            )),
        }
    }

    fn cancel_taker(&mut self, t: &NaiveTaker, reason: CancelReason) {
        let remaining = self.remaining(t);
        if matches!(
            remaining,
            OrderSize::Base(Qty(0)) | OrderSize::Quote(QuoteQty(0))
        ) {
            return;
        }
        self.emit(EventBody::Canceled(Canceled {
            order_id: t.id,
            client_order_id: t.cid,
            user: t.user,
            side: t.side,
            remaining,
            reason,
        }));
    }

    /// True when STP canceled the taker.
    fn take(&mut self, t: &mut NaiveTaker) -> bool {
        let opp = t.side.opposite();
        loop {
            let Some(&(best, _)) = self.sorted(opp).first() else {
                return false;
            };
            let price = best.price;
            if !Self::crosses(t.side, t.limit, price) || self.cap(t, price) == 0 {
                return false;
            }
            let level: Vec<RestingOrder> = self
                .sorted(opp)
                .into_iter()
                .map(|(o, _)| o)
                .filter(|o| o.price == price)
                .collect();
            let mut touched = false;
            let mut stp_hit = false;
            for m in level {
                let cap = self.cap(t, price);
                if cap == 0 {
                    break;
                }
                if m.user == t.user && t.stp != StpMode::None {
                    if t.stp == StpMode::CancelTaker {
                        stp_hit = true;
                        break;
                    }
                    self.remove(m.order_id);
                    touched = true;
                    self.emit(m.canceled(CancelReason::SelfTradePrevention));
                    if t.stp == StpMode::CancelBoth {
                        stp_hit = true;
                        break;
                    }
                    continue;
                }
                let fill = cap.min(m.remaining.0);
                touched = true;
                if let Some(b) = &mut t.within {
                    *b -= u128::from(price.0) * u128::from(fill);
                }
                match &mut t.base {
                    Some(q) => *q -= fill,
                    None => {
                        t.quote -= u128::from(price.0) * u128::from(fill);
                        t.quote_taken += fill;
                    }
                }
                let maker_remaining = Qty(m.remaining.0 - fill);
                if maker_remaining.is_zero() {
                    self.remove(m.order_id);
                } else if let Some(entry) =
                    self.book.iter_mut().find(|(o, _)| o.order_id == m.order_id)
                {
                    entry.0.remaining = maker_remaining;
                }
                let trade_id = TradeId(self.seq + 1);
                let taker_remaining = self.remaining(t);
                self.emit(EventBody::Trade(Trade {
                    trade_id,
                    price,
                    qty: Qty(fill),
                    taker_side: t.side,
                    maker_order_id: m.order_id,
                    maker_user: m.user,
                    maker_remaining,
                    taker_order_id: t.id,
                    taker_user: t.user,
                    taker_remaining,
                }));
            }
            let left = self.level_qty(opp, price);
            if touched {
                self.emit(EventBody::BookDelta(BookDelta {
                    side: opp,
                    price,
                    qty: left,
                }));
            }
            if stp_hit {
                return true;
            }
            if !left.is_zero() {
                return false;
            }
        }
    }

    fn fok_fillable(&self, t: &NaiveTaker) -> bool {
        let mut t = *t;
        let mut need = t.base.unwrap_or(u64::MAX);
        for (m, _) in self.sorted(t.side.opposite()) {
            if !Self::crosses(t.side, t.limit, m.price) {
                return false;
            }
            if m.user == t.user && t.stp != StpMode::None {
                if t.stp == StpMode::CancelMaker {
                    continue;
                }
                return false;
            }
            let fill = need.min(m.remaining.0);
            if let Some(b) = t.within {
                // Buying at ever higher prices: once a lot here is beyond
                // the budget, so is every later one.
                let cost = u128::from(m.price.0) * u128::from(fill);
                if cost > b {
                    return false;
                }
                t.within = Some(b - cost);
            }
            need -= fill;
            if need == 0 {
                return true;
            }
        }
        false
    }

    /// Emits the level's total as it is now.
    fn delta(&mut self, side: Side, price: Price) {
        let qty = self.level_qty(side, price);
        self.emit(EventBody::BookDelta(BookDelta { side, price, qty }));
    }

    fn cancel_resting(&mut self, o: RestingOrder, reason: CancelReason) {
        self.remove(o.order_id);
        self.emit(o.canceled(reason));
        self.delta(o.side, o.price);
    }

    fn rest(&mut self, o: RestingOrder) {
        self.arrivals += 1;
        self.book.push((o, self.arrivals));
        self.delta(o.side, o.price);
    }

    fn would_take(&self, side: Side, limit: Price) -> bool {
        self.sorted(side.opposite())
            .first()
            .is_some_and(|(o, _)| Self::crosses(side, Some(limit), o.price))
    }

    fn apply(&mut self, cmd: &Command) -> Vec<Event> {
        self.out.clear();
        self.ts = cmd.timestamp;
        let result = if cmd.pair != self.config.symbol {
            Err(RejectCode::UnknownPair)
        } else {
            match cmd.body {
                CommandBody::NewOrder(o) => self.new_order(cmd.user, o),
                CommandBody::Cancel { target } => self
                    .find(cmd.user, target)
                    .map(|o| self.cancel_resting(o, CancelReason::UserRequest)),
                CommandBody::Amend(a) => self.amend(cmd.user, a),
                CommandBody::CancelAll => {
                    let mine: Vec<RestingOrder> = self
                        .sorted(Side::Buy)
                        .into_iter()
                        .chain(self.sorted(Side::Sell))
                        .map(|(o, _)| o)
                        .filter(|o| o.user == cmd.user)
                        .collect();
                    for o in &mine {
                        self.cancel_resting(*o, CancelReason::CancelAll);
                    }
                    self.emit(EventBody::CanceledAll(CanceledAll {
                        user: cmd.user,
                        count: mine.len() as u32,
                    }));
                    Ok(())
                }
            }
        };
        if let Err(code) = result {
            self.emit(EventBody::Rejected(cmd.rejected(code)));
        }
        std::mem::take(&mut self.out)
    }

    fn new_order(&mut self, user: UserId, o: NewOrder) -> Result<(), RejectCode> {
        engine::validate::new_order(&self.config, &o)?;
        if self.book.iter().any(|(r, _)| r.order_id == o.order_id) {
            return Err(RejectCode::DuplicateOrderId);
        }
        if o.client_order_id.is_some()
            && self
                .book
                .iter()
                .any(|(r, _)| r.user == user && r.client_order_id == o.client_order_id)
        {
            return Err(RejectCode::DuplicateClientOrderId);
        }
        let limit = match o.order_type {
            OrderType::Limit { price } => Some(price),
            OrderType::Market => None,
        };
        let gtc_limit = limit.is_some() && o.time_in_force == TimeInForce::Gtc;
        if gtc_limit && self.book.len() >= self.config.max_open_orders as usize {
            return Err(RejectCode::BookFull);
        }
        self.emit(EventBody::Accepted(o.accepted(user)));
        let scale = pow10(self.config.qty_scale);
        let (base, quote, within) = match o.size {
            OrderSize::Base(q) => (Some(q.0), 0, None),
            OrderSize::Quote(q) => (None, u128::from(q.0) * scale, None),
            OrderSize::BaseWithin { qty, budget } => {
                (Some(qty.0), 0, Some(u128::from(budget.0) * scale))
            }
        };
        let mut t = NaiveTaker {
            id: o.order_id,
            cid: o.client_order_id,
            user,
            side: o.side,
            limit,
            base,
            quote,
            quote_taken: 0,
            within,
            stp: o.stp.unwrap_or(self.config.default_stp),
        };
        if o.post_only && limit.is_some_and(|l| self.would_take(o.side, l)) {
            self.cancel_taker(&t, CancelReason::PostOnlyWouldCross);
        } else if o.time_in_force == TimeInForce::Fok && !self.fok_fillable(&t) {
            self.cancel_taker(&t, CancelReason::FokNotFillable);
        } else if self.take(&mut t) {
            self.cancel_taker(&t, CancelReason::SelfTradePrevention);
        } else if gtc_limit {
            if let (Some(rest @ 1..), Some(price), OrderSize::Base(qty)) = (t.base, limit, o.size) {
                self.rest(RestingOrder {
                    order_id: o.order_id,
                    client_order_id: o.client_order_id,
                    user,
                    side: o.side,
                    price,
                    qty,
                    remaining: Qty(rest),
                    post_only: o.post_only,
                    stp: o.stp,
                });
            }
        } else {
            self.cancel_taker(&t, CancelReason::IocRemainder);
        }
        Ok(())
    }

    fn amend(&mut self, user: UserId, a: Amend) -> Result<(), RejectCode> {
        let o = self.find(user, a.target)?;
        if a.new_qty.is_none() && a.new_price.is_none() {
            return Err(RejectCode::NothingToAmend);
        }
        if let Some(p) = a.new_price {
            engine::validate::price(&self.config, p)?;
        }
        if let Some(q) = a.new_qty {
            engine::validate::qty(&self.config, q)?;
        }
        let price = a.new_price.unwrap_or(o.price);
        let qty = a.new_qty.unwrap_or(o.qty);
        engine::validate::notional(&self.config, price, qty)?;
        let filled = o.qty.0 - o.remaining.0;
        if qty.0 <= filled {
            return Err(RejectCode::AmendBelowFilled);
        }
        if o.post_only && price != o.price && self.would_take(o.side, price) {
            return Err(RejectCode::PostOnlyWouldCross);
        }
        if price == o.price && qty == o.qty {
            return Err(RejectCode::NothingToAmend);
        }
        let remaining = Qty(qty.0 - filled);
        let kept = price == o.price && remaining <= o.remaining;
        self.emit(EventBody::Amended(Amended {
            order_id: o.order_id,
            client_order_id: o.client_order_id,
            user,
            side: o.side,
            price,
            qty,
            remaining,
            priority_kept: kept,
        }));
        if kept {
            if let Some(e) = self.book.iter_mut().find(|(r, _)| r.order_id == o.order_id) {
                e.0.qty = qty;
                e.0.remaining = remaining;
            }
            if remaining != o.remaining {
                self.delta(o.side, o.price);
            }
            return Ok(());
        }
        self.remove(o.order_id);
        if price == o.price {
            self.rest(RestingOrder {
                qty,
                remaining,
                ..o
            });
            return Ok(());
        }
        self.delta(o.side, o.price);
        let mut t = NaiveTaker {
            id: o.order_id,
            cid: o.client_order_id,
            user,
            side: o.side,
            limit: Some(price),
            base: Some(remaining.0),
            quote: 0,
            quote_taken: 0,
            within: None,
            stp: o.stp.unwrap_or(self.config.default_stp),
        };
        if self.take(&mut t) {
            self.cancel_taker(&t, CancelReason::SelfTradePrevention);
        } else if let Some(rest @ 1..) = t.base {
            self.rest(RestingOrder {
                price,
                qty,
                remaining: Qty(rest),
                ..o
            });
        }
        Ok(())
    }

    fn resting(&self) -> Vec<RestingOrder> {
        self.sorted(Side::Buy)
            .into_iter()
            .chain(self.sorted(Side::Sell))
            .map(|(o, _)| o)
            .collect()
    }
}

fn configs() -> Vec<PairConfig> {
    let base = default_config();
    vec![
        base.clone(),
        PairConfig {
            tick_size: Price(2),
            lot_size: Qty(5),
            min_qty: Qty(5),
            max_qty: Qty(80),
            min_notional: QuoteQty(600),
            default_stp: StpMode::CancelMaker,
            ..base.clone()
        },
        PairConfig {
            qty_scale: 3,
            price_scale: 2,
            default_stp: StpMode::CancelTaker,
            max_open_orders: 25,
            ..base.clone()
        },
        PairConfig {
            default_stp: StpMode::CancelBoth,
            ..base
        },
    ]
}

/// A small deterministic stream private to this test, so that the workload
/// generator's own streams stay exactly as they are.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Gives some base-sized orders a quote budget: mostly market buys, with a
/// budget around what the quantity costs at the best ask (from too little
/// for one lot to plenty), and now and then an order the engine must refuse
/// (a sell, a limit order, a zero budget).
fn with_budget(mut cmd: Command, book: &OrderBook, rng: &mut SplitMix) -> Command {
    let CommandBody::NewOrder(o) = &mut cmd.body else {
        return cmd;
    };
    let OrderSize::Base(qty) = o.size else {
        return cmd;
    };
    let market_buy = o.order_type == OrderType::Market && o.side == Side::Buy;
    let pick = rng.below(100);
    if !(market_buy && pick < 40 || pick < 2) {
        return cmd;
    }
    let scale = pow10(book.config().qty_scale);
    let budget = match (rng.below(20), book.best_ask()) {
        (0, _) => 0,
        (_, None) => rng.below(3_000) + 1,
        (_, Some(ask)) => {
            let at_best = u128::from(ask.0) * u128::from(qty.0) / scale;
            let scaled = at_best * u128::from(rng.below(250) + 1) / 100;
            // Chaos quantities reach the extremes; a huge budget is still a case.
            u64::try_from(scaled)
                .unwrap_or(u64::MAX)
                .saturating_add(rng.below(50))
        }
    };
    o.size = OrderSize::BaseWithin {
        qty,
        budget: QuoteQty(budget),
    };
    cmd
}

/// Runs `n` commands of `mix` through both books; every event must match,
/// and the open orders must match every 50 commands and at the end.
fn compare(mix: Mix, seed: u64, config: &PairConfig, n: usize) {
    let mut fast = OrderBook::new(config.clone()).expect("valid config");
    let mut naive = Naive::new(config.clone());
    let mut generator = Generator::new(mix, seed, config);
    let mut ledger = Ledger::default();
    let mut events = Vec::new();
    let mut budgets = SplitMix(seed);
    for i in 0..n {
        let cmd = with_budget(generator.next_command(), &fast, &mut budgets);
        events.clear();
        fast.apply(&cmd, &mut events);
        let expected = naive.apply(&cmd);
        assert_eq!(
            events,
            expected,
            "seed {seed}, {mix:?}, command {i}: {cmd:?}\nfast:  {:#?}\nnaive: {:#?}",
            events.iter().map(render).collect::<Vec<_>>(),
            expected.iter().map(render).collect::<Vec<_>>()
        );
        if let Err(e) = ledger.check(&fast, &events) {
            panic!("seed {seed}, {mix:?}, command {i}: {cmd:?}: {e}");
        }
        if i % 50 == 0 {
            assert_eq!(
                fast.resting_orders().collect::<Vec<_>>(),
                naive.resting(),
                "seed {seed} at {i}"
            );
        }
        generator.observe(&events);
    }
    assert_eq!(
        fast.resting_orders().collect::<Vec<_>>(),
        naive.resting(),
        "seed {seed} at end"
    );
}

#[test]
fn chaos_streams_match_the_reference() {
    for (c, config) in configs().iter().enumerate() {
        for seed in 0..15 {
            compare(Mix::Chaos, seed * 31 + c as u64, config, 3_000);
        }
    }
}

#[test]
fn benchmark_mixes_match_the_reference() {
    let config = default_config();
    for seed in 0..4 {
        compare(Mix::ExchangeCore, seed, &config, 4_000);
        compare(Mix::Retail, seed, &config, 4_000);
    }
}

/// Every scenario file's commands through both books: the fast book's
/// events are checked against the file by `scenarios.rs`, and here the
/// naive book must emit the same events and hold the same orders.
#[test]
fn every_scenario_file_matches_the_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 59, "{} scenario files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        let config = text
            .lines()
            .find(|l| l.starts_with("config"))
            .map_or_else(default_config, |l| parse_config(l).unwrap());
        let mut fast = OrderBook::new(config.clone()).unwrap();
        let mut naive = Naive::new(config.clone());
        let commands = text
            .lines()
            .filter_map(|l| l.strip_prefix("> "))
            .map(str::trim);
        let mut steps = 0;
        for line in commands {
            steps += 1;
            if line == "depth" || line == "orders" {
                continue;
            }
            let cmd = parse_command(line, config.symbol, steps).unwrap();
            assert_eq!(fast.apply_one(&cmd), naive.apply(&cmd), "{name}: `{line}`");
            let resting: Vec<_> = fast.resting_orders().collect();
            assert_eq!(resting, naive.resting(), "{name}: after `{line}`");
        }
    }
}
