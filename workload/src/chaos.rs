//! The chaos mix: every command and field the engine knows, valid and
//! invalid, in a narrow price band with few users, so that crossing,
//! self-trades, duplicate ids, stops that fire stops, iceberg refills,
//! expiries and list resolutions are all frequent.

use proto::{
    AdvancedChange, Amend, ClientOrderId, CommandBody, ConditionalKind, ListKind, NewOrder,
    NewOrderList, OrderId, OrderRef, OrderSize, OrderType, PairChange, Price, Qty, QuoteQty, Side,
    StpMode, TimeInForce, Timestamp, TradingStatus, Trigger, UserId,
};

use crate::Generator;

/// Trailing deltas the chaos mix picks from, in basis points: the pair's
/// bounds, a few between, and one just outside each bound.
const DELTAS: [u32; 8] = [9, 10, 50, 100, 250, 1_000, 2_000, 2_001];

impl Generator {
    /// How far the clock moves before a chaos command: mostly a little,
    /// sometimes not at all (several commands at one instant), sometimes a
    /// long quiet spell.
    pub(crate) fn chaos_time_step(&mut self) -> u64 {
        match self.rng.below(100) {
            0..10 => 0,
            10..90 => self.rng.range(1, 2_000),
            _ => self.rng.range(5_000, 60_000),
        }
    }

    pub(crate) fn chaos(&mut self) -> (UserId, CommandBody) {
        self.drift();
        self.mid = self.mid.clamp(60, 140);
        let user = UserId(self.rng.range(1, 5));
        let side = self.side();
        let roll = self.rng.below(100);
        let price = self.chaos_price(side);
        let qty = self.chaos_qty();
        let cid = self.chaos_cid(&["a", "b", "c", "d"]);
        match roll {
            0..=44 => (user, self.chaos_new_order(side, price, qty, cid)),
            45..=52 => (user, self.chaos_list(side, price, qty)),
            53..=63 => {
                let t = self.chaos_target();
                (self.chaos_owner(t, user), CommandBody::Cancel { target: t })
            }
            64..=66 => {
                let t = self.chaos_list_target();
                let owner = self.chaos_list_owner(t, user);
                (owner, CommandBody::CancelList { target: t })
            }
            67..=90 => self.chaos_amend(user, price, qty),
            // An operator halts, breaks, resumes or changes a rule.
            95 if self.rng.percent(50) => (UserId(0), self.chaos_change()),
            91..=95 => {
                // A quiet spell: only time passes, maybe a long time.
                if self.rng.percent(50) {
                    self.timestamp += self.rng.range(0, 20_000);
                }
                (user, CommandBody::AdvanceTime)
            }
            _ if self.rng.percent(30) => (user, CommandBody::CancelAll),
            _ => {
                let t = self.chaos_target();
                (self.chaos_owner(t, user), CommandBody::Cancel { target: t })
            }
        }
    }

    /// An operator's change: now and then a halt or a break, which the
    /// next change ends (closed spells are short, so that a stream still
    /// trades most of the time), and half of the time one rule, tighter,
    /// looser or invalid, so that orders left off the new rules, refused
    /// changes and every status are frequent.
    fn chaos_change(&mut self) -> CommandBody {
        use TradingStatus::{Break, Halt, Trading};
        let b = self.base;
        let status = if self.closed {
            Some(Trading)
        } else {
            self.rng
                .percent(25)
                .then(|| self.rng.pick(&[Trading, Halt, Halt, Break]))
        };
        self.closed = status.is_some_and(|s| s != Trading);
        let mut c = PairChange {
            status,
            ..PairChange::default()
        };
        if self.rng.percent(50) {
            match self.rng.below(8) {
                0 => c.tick_size = Some(Price(b.tick_size.0 * self.rng.pick(&[1, 2, 0]))),
                1 => {
                    let lot = b.lot_size.0 * self.rng.pick(&[1, 2]);
                    c.lot_size = Some(Qty(lot));
                    c.min_qty = Some(Qty(lot * self.rng.pick(&[1, 3])));
                }
                2 => c.min_qty = Some(Qty(b.min_qty.0 * self.rng.pick(&[1, 3]))),
                3 => c.max_qty = Some(Qty(self.lot * self.rng.pick(&[5, 20, 1_000_000]))),
                4 => c.max_price = Some(Price(b.tick_size.0 * self.rng.pick(&[110, 150, 100_000]))),
                5 => {
                    c.min_notional = Some(QuoteQty(b.min_notional.0 * self.rng.pick(&[0, 1, 4])));
                    c.max_notional = Some(QuoteQty(b.max_notional.0 / self.rng.pick(&[1, 100])));
                }
                6 => c.max_open_orders = Some(self.rng.pick(&[5, 30, b.max_open_orders])),
                _ => {
                    c.default_stp = Some(self.rng.pick(&[StpMode::None, StpMode::CancelBoth]));
                    // Only the flags named change (the others keep theirs).
                    let allow = self.rng.percent(50);
                    c.advanced = AdvancedChange {
                        iceberg: Some(allow),
                        lists: Some(allow),
                        ..AdvancedChange::default()
                    };
                }
            }
        }
        CommandBody::ChangePair(Box::new(c))
    }

    /// Mostly on the order's own side of the mid, two ticks into the other;
    /// now and then off the tick.
    fn chaos_price(&mut self, side: Side) -> Price {
        let tick_off = self.rng.percent(3);
        let off = self.rng.range(0, 12);
        let ticks = match side {
            Side::Buy => self.mid + 2 - off,
            Side::Sell => self.mid - 2 + off,
        };
        Price(ticks * self.tick + u64::from(tick_off))
    }

    /// Mostly 1 to 20 lots; now and then zero, off the lot or huge.
    fn chaos_qty(&mut self) -> Qty {
        Qty(if self.rng.percent(3) {
            self.rng.pick(&[0, 1, self.lot + 1, u64::MAX / 4])
        } else {
            self.rng.range(1, 20) * self.lot
        })
    }

    fn chaos_cid(&mut self, names: &[&str]) -> Option<ClientOrderId> {
        self.rng
            .percent(30)
            .then(|| ClientOrderId::new(self.rng.pick(names)).ok())
            .flatten()
    }

    /// The last trade price in ticks, or the mid before any trade.
    fn last_ticks(&self) -> u64 {
        self.last_price.map_or(self.mid, |p| p / self.tick)
    }

    /// A price `ticks` ticks from the last trade: up, or down (at least one tick).
    fn off_last(&self, up: bool, ticks: u64) -> Price {
        let last = self.last_ticks();
        self.price(if up {
            last + ticks
        } else {
            last.saturating_sub(ticks)
        })
    }

    /// A clock time near now: mostly ahead by up to 35 commands' worth,
    /// sometimes already past.
    fn chaos_good_till(&mut self) -> Timestamp {
        Timestamp(self.timestamp + self.rng.range(0, 40_000) - 5_000)
    }

    /// A new chaos order, any type, time in force, size and flags, with the
    /// odd duplicate id.
    fn chaos_new_order(
        &mut self,
        side: Side,
        price: Price,
        qty: Qty,
        cid: Option<ClientOrderId>,
    ) -> CommandBody {
        let order_id = if self.rng.percent(2) {
            // Reuse a live order's id: must be rejected as a duplicate.
            match self.chaos_target() {
                OrderRef::Id(id) => id,
                OrderRef::Client(_) => OrderId(1),
            }
        } else {
            self.order_id()
        };
        CommandBody::NewOrder(self.chaos_order(order_id, side, price, qty, cid))
    }

    /// An order of any kind: market, limit or one of the four conditional
    /// types, with GTD, iceberg, post-only, STP and quote sizes mixed in.
    fn chaos_order(
        &mut self,
        order_id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
        cid: Option<ClientOrderId>,
    ) -> NewOrder {
        let order_type = match self.rng.below(100) {
            0..12 => OrderType::Market,
            12..65 => OrderType::Limit { price },
            _ => self.chaos_conditional(side, price),
        };
        let market = order_type.is_market();
        let mut tif = self.rng.pick(&[
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
            TimeInForce::Gtd,
        ]);
        if market && tif != TimeInForce::Ioc && tif != TimeInForce::Fok && !self.rng.percent(5) {
            tif = TimeInForce::Ioc;
        }
        // GTD with its time, and now and then one without the other.
        let good_till = if tif == TimeInForce::Gtd {
            (!self.rng.percent(3)).then(|| self.chaos_good_till())
        } else {
            self.rng.percent(2).then(|| self.chaos_good_till())
        };
        let quote = market && side == Side::Buy && self.rng.percent(40);
        let iceberg_qty = (!market && self.rng.percent(15)).then(|| self.chaos_slice(qty));
        NewOrder {
            order_id,
            client_order_id: cid,
            side,
            order_type,
            time_in_force: tif,
            // Mostly where it is allowed, now and then where it is not.
            post_only: self
                .rng
                .percent(if matches!(order_type, OrderType::Limit { .. }) {
                    10
                } else {
                    2
                }),
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
            iceberg_qty,
            good_till,
        }
    }

    /// An iceberg slice for `qty`: mostly one to three lots (so a slice
    /// refills many times), sometimes one the rules refuse.
    fn chaos_slice(&mut self, qty: Qty) -> Qty {
        match self.rng.below(100) {
            0..4 => Qty::ZERO,
            4..8 => qty,
            8..12 => Qty(self.lot + 1),
            _ => Qty(self.rng.range(1, 3) * self.lot),
        }
    }

    /// One of the four conditional types, its stop near the last trade:
    /// mostly where it waits, sometimes where it would fire at once.
    fn chaos_conditional(&mut self, side: Side, price: Price) -> OrderType {
        let kind = if self.rng.percent(50) {
            ConditionalKind::StopLoss
        } else {
            ConditionalKind::TakeProfit
        };
        let rise = kind.fires_on_rise(side);
        let wrong_side = self.rng.percent(12);
        let away = self.rng.range(0, 6);
        let mut stop = self.off_last(rise != wrong_side, away);
        match self.rng.below(100) {
            0..2 => stop = Price::ZERO,
            2..4 => stop.0 += 1,
            _ => {}
        }
        let trailing_delta = self.rng.percent(25).then(|| self.rng.pick(&DELTAS));
        let stop_price = match (trailing_delta, self.rng.below(100)) {
            (Some(_), 0..50) | (None, 0..2) => None,
            _ => Some(stop),
        };
        OrderType::Conditional {
            kind,
            limit: self.rng.percent(70).then_some(price),
            trigger: Trigger {
                stop_price,
                trailing_delta,
            },
        }
    }

    /// An OCO or OTO list, mostly of a valid shape.
    fn chaos_list(&mut self, side: Side, price: Price, qty: Qty) -> CommandBody {
        let list_id = if self.rng.percent(3) {
            match self.chaos_list_target() {
                OrderRef::Id(id) => id,
                OrderRef::Client(_) => OrderId(1),
            }
        } else {
            self.order_id()
        };
        let client_list_id = self.chaos_cid(&["la", "lb", "a"]);
        let (kind, mut orders) = if self.rng.percent(50) {
            (ListKind::Oco, self.chaos_oco(side, qty))
        } else {
            (ListKind::Oto, self.chaos_oto(side, price, qty))
        };
        match self.rng.below(100) {
            // Broken on purpose: legs sharing an id, or the list's id.
            0..2 => orders[1].order_id = orders[0].order_id,
            2..4 => orders[0].order_id = list_id,
            _ => {}
        }
        CommandBody::NewOrderList(Box::new(NewOrderList {
            list_id,
            client_list_id,
            kind,
            orders,
        }))
    }

    /// An OCO: a leg that fills or fires as the price rises and one for a
    /// fall, in either order, around the last trade; now and then a shape
    /// the rules refuse.
    fn chaos_oco(&mut self, side: Side, qty: Qty) -> [NewOrder; 2] {
        let tif = self
            .rng
            .pick(&[TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Gtd]);
        // For a sell, the stop-loss is below the last price and the other
        // leg above it; a buy's the other way round.
        let stop_up = side == Side::Buy;
        let away = self.rng.range(1, 5);
        let stop_at = self.off_last(stop_up, away);
        let slack = self.rng.range(0, 3) * self.tick;
        let stop_limit = match side {
            Side::Buy => Price(stop_at.0 + slack),
            Side::Sell => Price(stop_at.0.saturating_sub(slack).max(self.tick)),
        };
        let stop_loss = OrderType::Conditional {
            kind: ConditionalKind::StopLoss,
            limit: self.rng.percent(80).then_some(stop_limit),
            trigger: Trigger {
                stop_price: Some(stop_at),
                trailing_delta: self.rng.percent(15).then(|| self.rng.pick(&DELTAS)),
            },
        };
        let away = self.rng.range(1, 5);
        let other_at = self.off_last(!stop_up, away);
        let maker = self.rng.percent(60);
        let other = if maker {
            OrderType::Limit { price: other_at }
        } else {
            OrderType::Conditional {
                kind: ConditionalKind::TakeProfit,
                limit: self.rng.percent(80).then_some(other_at),
                trigger: Trigger {
                    stop_price: Some(other_at),
                    trailing_delta: None,
                },
            }
        };
        let mut legs = [stop_loss, other].map(|t| {
            let id = self.order_id();
            // A leg that works as a market order once fired is IOC or FOK
            // (Binance's stopLimitTimeInForce); the others share one.
            let tif = if t.is_market() {
                self.rng.pick(&[TimeInForce::Ioc, TimeInForce::Fok])
            } else {
                tif
            };
            let mut o = NewOrder::plain(id, side, t, tif, OrderSize::Base(qty));
            o.good_till = (tif == TimeInForce::Gtd).then(|| self.chaos_good_till());
            o.client_order_id = self.chaos_cid(&["a", "b", "c", "d"]);
            o
        });
        legs[1].post_only = maker;
        if maker && self.rng.percent(15) {
            legs[1].iceberg_qty = Some(self.chaos_slice(qty));
        }
        match self.rng.below(100) {
            0..4 => legs[0].size = OrderSize::Base(Qty(qty.0 + self.lot)),
            4..7 => legs[1].time_in_force = TimeInForce::Fok,
            7..10 => legs[1].side = side.opposite(),
            10..13 => legs[1].post_only = false,
            _ => {}
        }
        if self.rng.percent(50) {
            legs.swap(0, 1);
        }
        legs
    }

    /// An OTO: a limit working order and any pending order, mostly on the
    /// other side (a position and its exit).
    fn chaos_oto(&mut self, side: Side, price: Price, qty: Qty) -> [NewOrder; 2] {
        let id = self.order_id();
        let tif = self.rng.pick(&[
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Gtd,
            TimeInForce::Ioc,
            TimeInForce::Fok,
        ]);
        let mut working = NewOrder::plain(
            id,
            side,
            OrderType::Limit { price },
            tif,
            OrderSize::Base(qty),
        );
        working.good_till = (tif == TimeInForce::Gtd).then(|| self.chaos_good_till());
        working.post_only = self.rng.percent(10);
        working.client_order_id = self.chaos_cid(&["a", "b", "c", "d"]);
        if self.rng.percent(10) {
            working.iceberg_qty = Some(self.chaos_slice(qty));
        }
        let pending_side = if self.rng.percent(70) {
            side.opposite()
        } else {
            side
        };
        let pending_price = self.chaos_price(pending_side);
        let pending_qty = if self.rng.percent(60) {
            qty
        } else {
            self.chaos_qty()
        };
        let pending_id = self.order_id();
        let cid = self.chaos_cid(&["a", "b", "c", "d"]);
        let mut pending =
            self.chaos_order(pending_id, pending_side, pending_price, pending_qty, cid);
        if self.rng.percent(3) {
            // Not a limit order: the rules refuse the list.
            working.order_type = OrderType::Market;
            working.time_in_force = TimeInForce::Ioc;
        }
        if self.rng.percent(2) {
            pending.client_order_id = working.client_order_id;
        }
        [working, pending]
    }

    /// An amend of a live order: quantity, price, stop price, any of them
    /// together, or none.
    fn chaos_amend(&mut self, user: UserId, price: Price, qty: Qty) -> (UserId, CommandBody) {
        let t = self.chaos_target();
        let stop = match t {
            OrderRef::Id(id) => self.position.get(&id).map(|&i| self.live[i]),
            OrderRef::Client(_) => None,
        }
        .and_then(|o| o.stop);
        // A new stop a few ticks from the old one (or the last trade),
        // either way: sometimes where it fires at once.
        let up = self.rng.percent(50);
        let new_stop = match stop {
            Some(s) if self.rng.percent(70) => {
                let d = self.rng.range(1, 3) * self.tick;
                Price(if up { s.0 + d } else { s.0.saturating_sub(d) })
            }
            _ => {
                let away = self.rng.range(0, 5);
                self.off_last(up, away)
            }
        };
        // A new stop price mostly for an order that has one.
        let kinds = if stop.is_some() || self.rng.percent(10) {
            6
        } else {
            4
        };
        let (new_qty, new_price, new_stop_price) = match self.rng.below(kinds) {
            0 => (Some(qty), None, None),
            1 => (None, Some(price), None),
            2 => (Some(qty), Some(price), None),
            3 => (None, None, None),
            4 => (None, None, Some(new_stop)),
            _ => (
                self.rng.percent(50).then_some(qty),
                self.rng.percent(50).then_some(price),
                Some(new_stop),
            ),
        };
        (
            self.chaos_owner(t, user),
            CommandBody::Amend(Amend {
                target: t,
                new_qty,
                new_price,
                new_stop_price,
            }),
        )
    }

    /// An order for a chaos cancel or amend to name: mostly a live one (by
    /// id or client id), else any id handed out so far.
    pub(crate) fn chaos_target(&mut self) -> OrderRef {
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

    /// A list for a cancel-list to name: mostly an open one (by id or client
    /// list id), else any id handed out so far.
    fn chaos_list_target(&mut self) -> OrderRef {
        let open = (!self.lists.is_empty())
            .then(|| self.lists[self.rng.below(self.lists.len() as u64) as usize]);
        match open {
            Some(l) if self.rng.percent(85) => match l.cid {
                Some(c) if self.rng.percent(50) => OrderRef::Client(c),
                _ => OrderRef::Id(l.id),
            },
            _ => OrderRef::Id(OrderId(self.rng.range(1, self.next_order_id + 1))),
        }
    }

    /// Who sends a cancel-list naming `target`: the list's owner most of
    /// the time, else `other`.
    fn chaos_list_owner(&mut self, target: OrderRef, other: UserId) -> UserId {
        let found = self
            .lists
            .iter()
            .find(|l| match target {
                OrderRef::Id(id) => l.id == id,
                OrderRef::Client(c) => l.cid == Some(c),
            })
            .map(|l| l.user);
        match found {
            Some(u) if self.rng.percent(90) => u,
            _ => other,
        }
    }
}
