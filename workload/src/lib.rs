//! Seeded, reproducible command streams for one pair: the same seed always
//! gives the same commands. Used by the engine's randomized tests, the
//! benchmarks and the load tests, so that all three speak of the same mixes.
//!
//! A generator keeps a rough view of which of its orders are still open by
//! watching the book's events ([`Generator::observe`]), so cancels and amends
//! mostly target live orders, as real traders' do.

use std::collections::HashMap;

use proto::{
    Amend, ClientOrderId, Command, CommandBody, CommandKind, Event, EventBody, NewOrder, OrderId,
    OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, QuoteQty, Side, StpMode, Symbol,
    TimeInForce, Timestamp, UserId,
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
    /// frequent. For differential tests, not for speed.
    Chaos,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    id: OrderId,
    user: UserId,
    side: Side,
    price: Price,
    cid: Option<ClientOrderId>,
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
        }
    }

    /// The next command.
    pub fn next_command(&mut self) -> Command {
        self.timestamp += 1_000;
        let (user, body) = match self.mix {
            Mix::ExchangeCore => self.exchange_core(),
            Mix::Retail => self.retail(),
            Mix::Chaos => self.chaos(),
        };
        if let CommandBody::NewOrder(o) = &body {
            self.track(o, user);
        }
        Command {
            pair: self.pair,
            user,
            timestamp: Timestamp(self.timestamp),
            body,
        }
    }

    /// Learns from the book's events which orders closed or moved.
    pub fn observe(&mut self, events: &[Event]) {
        for e in events {
            match &e.body {
                EventBody::Trade(t) => {
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
                EventBody::Amended(a) => {
                    if let Some(&i) = self.position.get(&a.order_id) {
                        self.live[i].price = a.price;
                    }
                }
                _ => {}
            }
        }
    }

    fn track(&mut self, o: &NewOrder, user: UserId) {
        // Optimistic: a GTC limit order is assumed open until an event says
        // otherwise. Others never rest.
        if let (OrderType::Limit { price }, TimeInForce::Gtc) = (o.order_type, o.time_in_force) {
            self.position.insert(o.order_id, self.live.len());
            self.live.push(Live {
                id: o.order_id,
                user,
                side: o.side,
                price,
                cid: o.client_order_id,
            });
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
        CommandBody::NewOrder(NewOrder {
            order_id: self.order_id(),
            client_order_id: None,
            side,
            order_type: OrderType::Limit { price },
            time_in_force: tif,
            post_only: false,
            stp: None,
            size: OrderSize::Base(qty),
            iceberg_qty: None,
            good_till: None,
        })
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
            return (user, self.limit(side, price, qty, TimeInForce::Gtc));
        }
        if (9..12).contains(&roll) {
            let price = self.aggressive_price(side);
            let qty = self.lots(1, 150);
            return (user, self.limit(side, price, qty, TimeInForce::Ioc));
        }
        let Some(o) = self.random_live() else {
            let price = self.passive_price(side);
            let qty = self.lots(1, 100);
            return (user, self.limit(side, price, qty, TimeInForce::Gtc));
        };
        if roll < 18 {
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
            return (
                user,
                CommandBody::NewOrder(NewOrder {
                    order_id: self.order_id(),
                    client_order_id: None,
                    side,
                    order_type: OrderType::Market,
                    time_in_force: TimeInForce::Ioc,
                    post_only: false,
                    stp: None,
                    size: OrderSize::Base(qty),
                    iceberg_qty: None,
                    good_till: None,
                }),
            );
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

    fn chaos(&mut self) -> (UserId, CommandBody) {
        self.drift();
        self.mid = self.mid.clamp(60, 140);
        let user = UserId(self.rng.range(1, 5));
        let side = self.side();
        let roll = self.rng.below(100);
        let tick_off = self.rng.percent(3);
        // Mostly on the order's own side of the mid, two ticks into the other.
        let off = self.rng.range(0, 12);
        let ticks = match side {
            Side::Buy => self.mid + 2 - off,
            Side::Sell => self.mid - 2 + off,
        };
        let price = Price(ticks * self.tick + u64::from(tick_off));
        let qty = Qty(if self.rng.percent(3) {
            self.rng.pick(&[0, 1, self.lot + 1, u64::MAX / 4])
        } else {
            self.rng.range(1, 20) * self.lot
        });
        let cid = self
            .rng
            .percent(30)
            .then(|| ClientOrderId::new(self.rng.pick(&["a", "b", "c", "d"])).ok())
            .flatten();
        match roll {
            0..=54 => (user, self.chaos_new_order(side, price, qty, cid)),
            55..=69 => {
                let t = self.chaos_target();
                (self.chaos_owner(t, user), CommandBody::Cancel { target: t })
            }
            70..=98 => {
                let t = self.chaos_target();
                let (new_qty, new_price) = match self.rng.below(4) {
                    0 => (Some(qty), None),
                    1 => (None, Some(price)),
                    2 => (Some(qty), Some(price)),
                    _ => (None, None),
                };
                (
                    self.chaos_owner(t, user),
                    CommandBody::Amend(Amend {
                        target: t,
                        new_qty,
                        new_price,
                        new_stop_price: None,
                    }),
                )
            }
            _ if self.rng.percent(30) => (user, CommandBody::CancelAll),
            _ => {
                let t = self.chaos_target();
                (self.chaos_owner(t, user), CommandBody::Cancel { target: t })
            }
        }
    }

    /// A chaos new order: any type, time in force, size and flags, with the
    /// odd duplicate id. The draws are in a fixed order: a seed's stream of
    /// commands must not change.
    fn chaos_new_order(
        &mut self,
        side: Side,
        price: Price,
        qty: Qty,
        cid: Option<ClientOrderId>,
    ) -> CommandBody {
        let market = self.rng.percent(15);
        let tif = self.rng.pick(&[
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
        ]);
        let quote = market && side == Side::Buy && self.rng.percent(40);
        let order_id = if self.rng.percent(2) {
            // Reuse a live order's id: must be rejected as a duplicate.
            match self.chaos_target() {
                OrderRef::Id(id) => id,
                OrderRef::Client(_) => OrderId(1),
            }
        } else {
            self.order_id()
        };
        CommandBody::NewOrder(NewOrder {
            order_id,
            client_order_id: cid,
            side,
            order_type: if market {
                OrderType::Market
            } else {
                OrderType::Limit { price }
            },
            time_in_force: if market && !self.rng.percent(5) && tif == TimeInForce::Gtc {
                TimeInForce::Ioc
            } else {
                tif
            },
            post_only: self.rng.percent(10),
            stp: self.rng.percent(50).then(|| {
                self.rng.pick(&[
                    StpMode::None,
                    StpMode::CancelTaker,
                    StpMode::CancelMaker,
                    StpMode::CancelBoth,
                ])
            }),
            size: if quote {
                OrderSize::Quote(QuoteQty(self.rng.range(1, 3_000)))
            } else {
                OrderSize::Base(qty)
            },
            iceberg_qty: None,
            good_till: None,
        })
    }

    /// An order for a chaos cancel or amend to name: mostly a live one (by
    /// id or client id), else any id handed out so far.
    fn chaos_target(&mut self) -> OrderRef {
        match self.random_live() {
            Some(o) if self.rng.percent(90) => match o.cid {
                Some(c) if self.rng.percent(50) => OrderRef::Client(c),
                _ => OrderRef::Id(o.id),
            },
            _ => OrderRef::Id(OrderId(self.rng.range(1, self.next_order_id + 1))),
        }
    }

    /// Who sends a command naming `target`: its owner most of the time,
    /// else `other`.
    fn chaos_owner(&mut self, target: OrderRef, other: UserId) -> UserId {
        let found = match target {
            OrderRef::Id(id) => self.position.get(&id).map(|&i| self.live[i].user),
            OrderRef::Client(_) => None,
        };
        match found {
            Some(u) if self.rng.percent(90) => u,
            _ => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PairConfig {
        PairConfig::simple(Symbol::new("BTC-EUR").expect("valid"))
    }

    #[test]
    fn same_seed_same_stream() {
        for mix in [Mix::ExchangeCore, Mix::Retail, Mix::Chaos] {
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
}
