//! Seeded, reproducible command streams for one pair: the same seed always
//! gives the same commands. Used by the engine's randomized tests, the
//! benchmarks and the load tests, so that all three speak of the same mixes.
//!
//! A generator keeps a rough view of which of its orders are still open by
//! watching the book's events ([`Generator::observe`]), so cancels and amends
//! mostly target live orders, as real traders' do.

use std::collections::HashMap;

mod chaos;

use proto::{
    Amend, ClientOrderId, Command, CommandBody, CommandKind, ConditionalKind, Event, EventBody,
    NewOrder, NewOrderList, OrderId, OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, Side,
    Symbol, TimeInForce, Timestamp, Trigger, UserId,
};

/// SplitMix64: tiny, fast, and its output never changes between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Which order flow to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Like exchange-core's benchmark: about 9% new GTC, 3% IOC, 6% cancel,
    /// 82% move (amend price); about 1,000 resting orders over about 750
    /// price levels drifting around a mid.
    ExchangeCore,
    /// A retail venue: 50% new limit (a fifth of them marketable), 10%
    /// market, 30% cancel, 10% amend.
    Retail,
    /// Everything the engine knows, in a narrow price band with few users so
    /// that crossing, self-trades, duplicate ids and invalid input are
    /// frequent: conditional and trailing orders near the last price,
    /// icebergs, GTD times near the commands' own, OCO and OTO lists, their
    /// cancels and amends, and time that advances unevenly. For differential
    /// tests, not for speed.
    Chaos,
    /// The exchange-core-like flow with advanced orders: of its new orders,
    /// 10% are conditional (stop-loss and take-profit, limit and market, a
    /// fifth of them trailing) with stops a few ticks from the last trade,
    /// and 5% are GTC icebergs.
    Advanced,
}

/// An order the generator believes may still be held by the book.
#[derive(Debug, Clone, Copy)]
struct Live {
    id: OrderId,
    user: UserId,
    side: Side,
    price: Price,
    cid: Option<ClientOrderId>,
    /// A conditional order's stop price, while it waits.
    stop: Option<Price>,
    /// Works as a market order once it fires: it never rests.
    market: bool,
}

/// An order list the generator believes open.
#[derive(Debug, Clone, Copy)]
struct LiveList {
    id: OrderId,
    user: UserId,
    cid: Option<ClientOrderId>,
    legs: [OrderId; 2],
}

/// Generates commands for one pair.
#[derive(Debug, Clone)]
pub struct Generator {
    mix: Mix,
    rng: Rng,
    pair: Symbol,
    tick: u64,
    lot: u64,
    mid: u64,
    next_order_id: u64,
    timestamp: u64,
    live: Vec<Live>,
    position: HashMap<OrderId, usize>,
    lists: Vec<LiveList>,
    /// The last trade price seen, in price units.
    last_price: Option<u64>,
    /// The pair's rules at the start: what the chaos mix's changes vary.
    base: PairConfig,
    /// Whether the chaos mix's last change closed the pair (HALT or BREAK).
    closed: bool,
}

/// Resting orders the exchange-core-like mix aims to keep on the book.
const TARGET_RESTING: usize = 1_000;
/// Half the width, in ticks, of the band its orders rest in.
const HALF_BAND: u64 = 375;

impl Generator {
    /// A generator of `mix` for the pair `config`, seeded with `seed`.
    pub fn new(mix: Mix, seed: u64, config: &PairConfig) -> Self {
        Generator {
            mix,
            rng: Rng::new(seed),
            pair: config.symbol,
            tick: config.tick_size.0,
            lot: config.lot_size.0.max(config.min_qty.0),
            mid: match mix {
                Mix::Chaos => 100,
                _ => 10_000,
            },
            next_order_id: 1,
            timestamp: 1_700_000_000_000_000_000,
            live: Vec::new(),
            position: HashMap::new(),
            lists: Vec::new(),
            last_price: None,
            base: *config,
            closed: false,
        }
    }

    /// The next command.
    pub fn next_command(&mut self) -> Command {
        // Only the chaos mix draws its time step: the other mixes' streams
        // stay exactly what they were for their seeds.
        self.timestamp += match self.mix {
            Mix::Chaos => self.chaos_time_step(),
            _ => 1_000,
        };
        let (user, body) = match self.mix {
            Mix::ExchangeCore | Mix::Advanced => self.exchange_core(),
            Mix::Retail => self.retail(),
            Mix::Chaos => self.chaos(),
        };
        match &body {
            CommandBody::NewOrder(o) => self.track(o, user),
            CommandBody::NewOrderList(l) => self.track_list(l, user),
            _ => {}
        }
        Command {
            pair: self.pair,
            user,
            timestamp: Timestamp(self.timestamp),
            body,
        }
    }

    /// Learns from the book's events which orders closed or moved, and the
    /// last trade price.
    pub fn observe(&mut self, events: &[Event]) {
        for e in events {
            match &e.body {
                EventBody::Trade(t) => {
                    self.last_price = Some(t.price.0);
                    if t.maker_remaining.is_zero() {
                        self.forget(t.maker_order_id);
                    }
                    if t.taker_remaining == OrderSize::Base(Qty::ZERO) {
                        self.forget(t.taker_order_id);
                    }
                }
                EventBody::Canceled(c) => self.forget(c.order_id),
                EventBody::Rejected(r) if r.command == CommandKind::NewOrder => {
                    if let Some(id) = r.order_id {
                        self.forget(id);
                    }
                }
                EventBody::Rejected(r) if r.command == CommandKind::NewOrderList => {
                    if let Some(id) = r.order_id {
                        self.forget_list(id, true);
                    }
                }
                EventBody::Amended(a) => {
                    if let Some(&i) = self.position.get(&a.order_id) {
                        self.live[i].price = a.price;
                        self.live[i].stop = a.stop_price;
                    }
                }
                EventBody::Triggered(t) => {
                    let market = self.position.get(&t.order_id).map(|&i| self.live[i].market);
                    if market == Some(true) {
                        self.forget(t.order_id);
                    } else if let Some(&i) = self.position.get(&t.order_id) {
                        self.live[i].stop = None;
                    }
                }
                EventBody::ListDone(d) => self.forget_list(d.list_id, false),
                _ => {}
            }
        }
    }

    fn track(&mut self, o: &NewOrder, user: UserId) {
        // Optimistic: an order that may be held (a GTC or GTD limit order, or
        // a conditional one) is assumed open until an event says otherwise.
        // Others never rest.
        let held = match o.order_type {
            OrderType::Limit { .. } => {
                matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd)
            }
            OrderType::Market => false,
            OrderType::Conditional { .. } => true,
        };
        if !held || self.position.contains_key(&o.order_id) {
            return;
        }
        self.position.insert(o.order_id, self.live.len());
        self.live.push(Live {
            id: o.order_id,
            user,
            side: o.side,
            price: o.order_type.price().unwrap_or(Price::ZERO),
            cid: o.client_order_id,
            stop: o.order_type.trigger().and_then(|t| t.stop_price),
            market: o.order_type.is_market(),
        });
    }

    fn track_list(&mut self, l: &NewOrderList, user: UserId) {
        for o in &l.orders {
            self.track(o, user);
        }
        self.lists.push(LiveList {
            id: l.list_id,
            user,
            cid: l.client_list_id,
            legs: [l.orders[0].order_id, l.orders[1].order_id],
        });
    }

    /// Drops a list that ended; `with_legs` when it never existed (refused).
    fn forget_list(&mut self, id: OrderId, with_legs: bool) {
        if let Some(i) = self.lists.iter().position(|l| l.id == id) {
            let l = self.lists.swap_remove(i);
            if with_legs {
                for leg in l.legs {
                    self.forget(leg);
                }
            }
        }
    }

    fn forget(&mut self, id: OrderId) {
        if let Some(i) = self.position.remove(&id) {
            self.live.swap_remove(i);
            if let Some(moved) = self.live.get(i) {
                self.position.insert(moved.id, i);
            }
        }
    }

    fn random_live(&mut self) -> Option<Live> {
        (!self.live.is_empty()).then(|| self.live[self.rng.below(self.live.len() as u64) as usize])
    }

    fn order_id(&mut self) -> OrderId {
        self.next_order_id += 1;
        OrderId(self.next_order_id - 1)
    }

    fn price(&self, ticks: u64) -> Price {
        Price(ticks.max(1) * self.tick)
    }

    fn lots(&mut self, lo: u64, hi: u64) -> Qty {
        Qty(self.rng.range(lo, hi) * self.lot)
    }

    fn drift(&mut self) {
        if self.rng.percent(5) {
            self.mid = if self.rng.percent(50) {
                self.mid + 1
            } else {
                (self.mid - 1).max(HALF_BAND + 2)
            };
        }
    }

    /// A price on `side`'s own half of the band: bids below mid, asks above.
    fn passive_price(&mut self, side: Side) -> Price {
        let off = self.rng.range(1, HALF_BAND);
        self.price(match side {
            Side::Buy => self.mid - off,
            Side::Sell => self.mid + off,
        })
    }

    /// A price across the mid, likely to trade.
    fn aggressive_price(&mut self, side: Side) -> Price {
        let off = self.rng.range(0, 20);
        self.price(match side {
            Side::Buy => self.mid + off,
            Side::Sell => self.mid - off,
        })
    }

    fn side(&mut self) -> Side {
        if self.rng.percent(50) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn limit(&mut self, side: Side, price: Price, qty: Qty, tif: TimeInForce) -> CommandBody {
        let order_type = OrderType::Limit { price };
        let order = NewOrder::plain(self.order_id(), side, order_type, tif, OrderSize::Base(qty));
        CommandBody::NewOrder(order)
    }

    /// A new order of the exchange-core-like flows: the plain limit order
    /// asked for, or in the advanced mix now and then a conditional order or
    /// a GTC iceberg instead.
    fn core_order(&mut self, side: Side, price: Price, qty: Qty, tif: TimeInForce) -> CommandBody {
        if self.mix != Mix::Advanced {
            return self.limit(side, price, qty, tif);
        }
        match self.rng.below(100) {
            0..10 => self.core_conditional(side, qty),
            10..15 => {
                let price = self.passive_price(side);
                let qty = self.lots(10, 100);
                // Two to ten slices, in whole lots.
                let slice =
                    Qty((qty.0 / self.rng.range(2, 10)).max(self.lot) / self.lot * self.lot);
                let mut order = NewOrder::plain(
                    self.order_id(),
                    side,
                    OrderType::Limit { price },
                    TimeInForce::Gtc,
                    OrderSize::Base(qty),
                );
                order.iceberg_qty = Some(slice);
                CommandBody::NewOrder(order)
            }
            _ => self.limit(side, price, qty, tif),
        }
    }

    /// A conditional order that waits: its stop a few ticks from the last
    /// trade on the side where it has not fired yet; a fifth trail.
    fn core_conditional(&mut self, side: Side, qty: Qty) -> CommandBody {
        let kind = if self.rng.percent(50) {
            ConditionalKind::StopLoss
        } else {
            ConditionalKind::TakeProfit
        };
        let last = self.last_price.unwrap_or(self.mid * self.tick) / self.tick;
        let away = self.rng.range(1, 30);
        let rise = kind.fires_on_rise(side);
        let stop = if rise {
            last + away
        } else {
            last.saturating_sub(away)
        };
        let trailing = self
            .rng
            .percent(20)
            .then(|| self.rng.pick(&[10u32, 20, 30]));
        let stop_price = match trailing {
            Some(_) if self.rng.percent(50) => None,
            _ => Some(self.price(stop)),
        };
        let market = self.rng.percent(30);
        // A buy's limit a few ticks above its stop, a sell's below.
        let slack = self.rng.range(0, 10);
        let limit = (!market).then(|| match side {
            Side::Buy => self.price(stop + slack),
            Side::Sell => self.price(stop.saturating_sub(slack)),
        });
        let order_type = OrderType::Conditional {
            kind,
            limit,
            trigger: Trigger {
                stop_price,
                trailing_delta: trailing,
            },
        };
        let tif = if market {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        };
        let order = NewOrder::plain(self.order_id(), side, order_type, tif, OrderSize::Base(qty));
        CommandBody::NewOrder(order)
    }

    fn exchange_core(&mut self) -> (UserId, CommandBody) {
        self.drift();
        let user = UserId(self.rng.range(1, 1_000));
        let roll = self.rng.below(100);
        // Steer the book towards its target size: more new orders below it,
        // cancels instead of new orders well above it.
        let n = self.live.len();
        let new_gtc = n == 0
            || (n < TARGET_RESTING && roll < 15)
            || (n <= TARGET_RESTING * 6 / 5 && roll < 9);
        let side = self.side();
        if new_gtc {
            let price = self.passive_price(side);
            let qty = self.lots(1, 100);
            return (user, self.core_order(side, price, qty, TimeInForce::Gtc));
        }
        if (9..12).contains(&roll) {
            let price = self.aggressive_price(side);
            let qty = self.lots(1, 150);
            return (user, self.core_order(side, price, qty, TimeInForce::Ioc));
        }
        let Some(o) = self.random_live() else {
            let price = self.passive_price(side);
            let qty = self.lots(1, 100);
            return (user, self.core_order(side, price, qty, TimeInForce::Gtc));
        };
        if roll < 18 || o.price.is_zero() {
            return (
                o.user,
                CommandBody::Cancel {
                    target: OrderRef::Id(o.id),
                },
            );
        }
        // Move: mostly a few ticks within its own half, sometimes across.
        let step = self.rng.range(1, 8) * self.tick;
        let closer = self.rng.percent(50);
        let price = match (o.side, closer) {
            (Side::Buy, true) | (Side::Sell, false) => Price(o.price.0 + step),
            _ => Price(o.price.0.saturating_sub(step).max(self.tick)),
        };
        (
            o.user,
            CommandBody::Amend(Amend {
                target: OrderRef::Id(o.id),
                new_qty: None,
                new_price: Some(price),
                new_stop_price: None,
            }),
        )
    }

    fn retail(&mut self) -> (UserId, CommandBody) {
        self.drift();
        let user = UserId(self.rng.range(1, 10_000));
        let roll = self.rng.below(100);
        let side = self.side();
        if roll < 50 || self.live.is_empty() {
            let marketable = self.rng.percent(20);
            let price = if marketable {
                self.aggressive_price(side)
            } else {
                self.passive_price(side)
            };
            let qty = self.lots(1, 50);
            return (user, self.limit(side, price, qty, TimeInForce::Gtc));
        }
        if roll < 60 {
            let qty = self.lots(1, 30);
            let order = NewOrder::plain(
                self.order_id(),
                side,
                OrderType::Market,
                TimeInForce::Ioc,
                OrderSize::Base(qty),
            );
            return (user, CommandBody::NewOrder(order));
        }
        let Some(o) = self.random_live() else {
            return (user, CommandBody::CancelAll);
        };
        if roll < 90 {
            return (
                o.user,
                CommandBody::Cancel {
                    target: OrderRef::Id(o.id),
                },
            );
        }
        let body = if self.rng.percent(50) {
            let qty = self.lots(1, 50);
            Amend {
                target: OrderRef::Id(o.id),
                new_qty: Some(qty),
                new_price: None,
                new_stop_price: None,
            }
        } else {
            Amend {
                target: OrderRef::Id(o.id),
                new_qty: None,
                new_price: Some(self.passive_price(o.side)),
                new_stop_price: None,
            }
        };
        (o.user, CommandBody::Amend(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{ListKind, MAX_ICEBERG_PARTS};

    fn config() -> PairConfig {
        PairConfig::simple(Symbol::new("BTC-EUR").expect("valid"))
    }

    #[test]
    fn same_seed_same_stream() {
        for mix in [Mix::ExchangeCore, Mix::Retail, Mix::Chaos, Mix::Advanced] {
            let mut a = Generator::new(mix, 7, &config());
            let mut b = Generator::new(mix, 7, &config());
            let mut c = Generator::new(mix, 8, &config());
            let xs: Vec<_> = (0..500).map(|_| a.next_command()).collect();
            let ys: Vec<_> = (0..500).map(|_| b.next_command()).collect();
            let zs: Vec<_> = (0..500).map(|_| c.next_command()).collect();
            assert_eq!(xs, ys);
            assert_ne!(xs, zs);
        }
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.below(10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    fn new_orders(mix: Mix, n: usize) -> (Vec<Command>, Vec<NewOrder>) {
        let mut g = Generator::new(mix, 3, &config());
        let cmds: Vec<Command> = (0..n).map(|_| g.next_command()).collect();
        let mut orders = Vec::new();
        for c in &cmds {
            match &c.body {
                CommandBody::NewOrder(o) => orders.push(*o),
                CommandBody::NewOrderList(l) => orders.extend(l.orders),
                _ => {}
            }
        }
        (cmds, orders)
    }

    #[test]
    fn advanced_mix_has_its_shares_of_conditional_and_iceberg_orders() {
        let (_, orders) = new_orders(Mix::Advanced, 40_000);
        let n = orders.len();
        let conditional = orders
            .iter()
            .filter(|o| o.order_type.trigger().is_some())
            .count();
        let icebergs = orders.iter().filter(|o| o.iceberg_qty.is_some()).count();
        assert!(n > 1_500, "{n} new orders");
        assert!(
            (8..=12).contains(&(conditional * 100 / n)),
            "{conditional} of {n}"
        );
        assert!((4..=6).contains(&(icebergs * 100 / n)), "{icebergs} of {n}");
        for o in &orders {
            if let Some(slice) = o.iceberg_qty {
                let OrderSize::Base(q) = o.size else {
                    panic!("iceberg sized {:?}", o.size)
                };
                assert!(slice.0 > 0 && slice < q && q.0.div_ceil(slice.0) <= MAX_ICEBERG_PARTS);
            }
        }
    }

    #[test]
    fn chaos_mix_has_every_command_and_field() {
        let (cmds, orders) = new_orders(Mix::Chaos, 20_000);
        let has = |f: &dyn Fn(&Command) -> bool| cmds.iter().any(f);
        let kinds = [
            CommandKind::NewOrder,
            CommandKind::Cancel,
            CommandKind::Amend,
            CommandKind::CancelAll,
            CommandKind::NewOrderList,
            CommandKind::CancelList,
            CommandKind::AdvanceTime,
            CommandKind::ChangePair,
        ];
        for k in kinds {
            assert!(has(&|c| c.body.kind() == k), "no {k:?}");
        }
        for list in [ListKind::Oco, ListKind::Oto] {
            assert!(has(
                &|c| matches!(&c.body, CommandBody::NewOrderList(l) if l.kind == list)
            ));
        }
        assert!(has(
            &|c| matches!(c.body, CommandBody::Amend(a) if a.new_stop_price.is_some())
        ));
        for name in [
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
            "LIMIT",
            "MARKET",
        ] {
            assert!(
                orders.iter().any(|o| o.order_type.name() == name),
                "no {name}"
            );
        }
        let trigger = |f: &dyn Fn(Trigger) -> bool| {
            orders.iter().any(|o| o.order_type.trigger().is_some_and(f))
        };
        assert!(trigger(
            &|t| t.trailing_delta.is_some() && t.stop_price.is_some()
        ));
        assert!(trigger(
            &|t| t.trailing_delta.is_some() && t.stop_price.is_none()
        ));
        assert!(orders.iter().any(|o| o.iceberg_qty.is_some()));
        assert!(
            orders
                .iter()
                .any(|o| o.time_in_force == TimeInForce::Gtd && o.good_till.is_some())
        );
        // Time never goes back, sometimes stands still, sometimes leaps.
        let steps: Vec<u64> = cmds
            .windows(2)
            .map(|w| {
                w[1].timestamp
                    .0
                    .checked_sub(w[0].timestamp.0)
                    .expect("monotonic")
            })
            .collect();
        assert!(steps.contains(&0));
        assert!(steps.iter().any(|&s| s > 20_000));
    }

    /// A command as the streams were pinned before the advanced order
    /// types: the fields every version has.
    fn pinned_line(c: &Command) -> String {
        let body = match &c.body {
            CommandBody::NewOrder(o) => format!(
                "new {:?} {:?} {:?} {:?} {:?} {} {:?} {:?}",
                o.order_id,
                o.client_order_id,
                o.side,
                o.order_type,
                o.time_in_force,
                o.post_only,
                o.stp,
                o.size
            ),
            CommandBody::Cancel { target } => format!("cancel {target:?}"),
            CommandBody::Amend(a) => {
                format!("amend {:?} {:?} {:?}", a.target, a.new_qty, a.new_price)
            }
            CommandBody::CancelAll => "cancel_all".into(),
            _ => "other".into(),
        };
        format!("{} {} {} {body}\n", c.pair, c.user, c.timestamp)
    }

    /// The benchmark mixes' streams are what they were before the advanced
    /// order types (fingerprints taken from that version), so recorded
    /// figures stay comparable.
    #[test]
    fn exchange_core_and_retail_streams_are_unchanged() {
        let pinned = [
            (Mix::ExchangeCore, 1, 0x2659_f24e_20db_61b3_u64),
            (Mix::ExchangeCore, 42, 0xadd7_be8c_5c57_71f4),
            (Mix::Retail, 1, 0xce1c_eb5f_3b45_0599),
            (Mix::Retail, 42, 0xe16b_35ab_988d_24b1),
        ];
        for (mix, seed, fingerprint) in pinned {
            let mut g = Generator::new(mix, seed, &config());
            let text: String = (0..20_000)
                .map(|_| pinned_line(&g.next_command()))
                .collect();
            assert_eq!(
                proto::fnv1a(text.as_bytes()),
                fingerprint,
                "{mix:?} seed {seed}"
            );
        }
    }
}
