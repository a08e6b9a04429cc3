//! The fast book against a naive reference book on seeded random streams.
//!
//! The reference keeps every held order in one of two unsorted `Vec`s
//! (resting, waiting) and finds what it needs by scanning and sorting: slow,
//! short, and obviously right. It implements the same rules (the event
//! order documented in `engine/src/book.rs` and `engine/src/book/flow.rs`,
//! and the advanced order types' rules: conditional and trailing orders,
//! icebergs, GTD expiry, OCO and OTO lists, the follow-up queue) without any
//! of the fast book's slabs, links, indexes or maps. Both must emit
//! identical events for every command and hold the same orders.

mod common;

use std::collections::VecDeque;

use common::*;
use engine::{OrderBook, OrderList, RestingOrder, WaitFor, WaitingOrder};
use proto::*;
use workload::{Generator, Mix};

/// An order on the book.
#[derive(Clone, Copy, Debug)]
struct Rest {
    id: OrderId,
    cid: Option<ClientOrderId>,
    user: UserId,
    side: Side,
    price: Price,
    qty: Qty,
    /// Total open quantity.
    remaining: u64,
    /// What shows and matches now: `remaining`, or an iceberg's slice.
    visible: u64,
    iceberg: Option<Qty>,
    post_only: bool,
    stp: Option<StpMode>,
    good_till: Option<Timestamp>,
    list: Option<OrderId>,
    /// Time priority within the level.
    arrival: u64,
    /// Placement number: order of `Accepted`.
    placed: u64,
}

/// An order held off the book: a conditional order waiting for its trigger,
/// or an OTO's pending order waiting for its working order to fill.
#[derive(Clone, Copy, Debug)]
struct Wait {
    o: NewOrder,
    user: UserId,
    placed: u64,
    /// A trailing order's best price since it started trailing.
    tracking: Option<Price>,
    list: Option<OrderId>,
    /// An OTO's pending order: not in the trigger set.
    pending: bool,
}

#[derive(Clone, Copy, Debug)]
struct List {
    id: OrderId,
    cid: Option<ClientOrderId>,
    user: UserId,
    kind: ListKind,
    legs: [OrderId; 2],
    /// Its first order's placement number.
    placed: u64,
}

/// What a matching step leaves for after it.
#[derive(Clone, Debug)]
enum Follow {
    /// A fired order, already triggered: it works.
    Fire(Box<Wait>),
    /// An OTO whose working order filled: its pending order is placed.
    Release(OrderId),
}

struct Naive {
    config: PairConfig,
    status: TradingStatus,
    /// Every config the book has had, the first included: held orders may
    /// have been placed under any of them.
    history: Vec<PairConfig>,
    seq: u64,
    arrivals: u64,
    placed: u64,
    book: Vec<Rest>,
    waiting: Vec<Wait>,
    /// Open lists, in placement order.
    lists: Vec<List>,
    last: Option<Price>,
    queue: VecDeque<Follow>,
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
    list: Option<OrderId>,
}

/// True when a conditional order of `kind` on `side` with stop `stop`
/// fires at trade price `p`.
fn hits(kind: ConditionalKind, side: Side, stop: Price, p: Price) -> bool {
    if kind.fires_on_rise(side) {
        p >= stop
    } else {
        p <= stop
    }
}

fn kind_of(o: &NewOrder) -> ConditionalKind {
    match o.order_type {
        OrderType::Conditional { kind, .. } => kind,
        _ => unreachable!("not conditional"),
    }
}

fn trigger_of(o: &NewOrder) -> Trigger {
    o.order_type.trigger().expect("conditional")
}

impl Naive {
    fn new(config: PairConfig) -> Self {
        Naive {
            config,
            status: TradingStatus::Trading,
            history: vec![config],
            seq: 0,
            arrivals: 0,
            placed: 0,
            book: Vec::new(),
            waiting: Vec::new(),
            lists: Vec::new(),
            last: None,
            queue: VecDeque::new(),
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

    // ---- the book ----

    /// Resting orders of `side` in priority order.
    fn sorted(&self, side: Side) -> Vec<Rest> {
        let mut v: Vec<Rest> = self
            .book
            .iter()
            .copied()
            .filter(|o| o.side == side)
            .collect();
        v.sort_by_key(|o| {
            let price_rank = match side {
                Side::Buy => u64::MAX - o.price.0,
                Side::Sell => o.price.0,
            };
            (price_rank, o.arrival)
        });
        v
    }

    fn level_qty(&self, side: Side, price: Price) -> Qty {
        Qty(self
            .book
            .iter()
            .filter(|o| o.side == side && o.price == price)
            .map(|o| o.visible)
            .sum())
    }

    /// Emits the level's total as it is now.
    fn delta(&mut self, side: Side, price: Price) {
        let qty = self.level_qty(side, price);
        self.emit(EventBody::BookDelta(BookDelta { side, price, qty }));
    }

    fn rest_mut(&mut self, id: OrderId) -> &mut Rest {
        self.book.iter_mut().find(|o| o.id == id).expect("resting")
    }

    fn rest(&mut self, mut o: Rest) {
        self.arrivals += 1;
        o.arrival = self.arrivals;
        o.visible = o.iceberg.map_or(o.remaining, |i| i.0.min(o.remaining));
        self.book.push(o);
        self.delta(o.side, o.price);
    }

    fn would_take(&self, side: Side, limit: Price) -> bool {
        self.sorted(side.opposite())
            .first()
            .is_some_and(|o| Self::crosses(side, Some(limit), o.price))
    }

    fn crosses(side: Side, limit: Option<Price>, price: Price) -> bool {
        match (limit, side) {
            (None, _) => true,
            (Some(l), Side::Buy) => l >= price,
            (Some(l), Side::Sell) => l <= price,
        }
    }

    // ---- held orders ----

    fn held(&self, id: OrderId) -> bool {
        self.book.iter().any(|o| o.id == id) || self.waiting.iter().any(|w| w.o.order_id == id)
    }

    fn held_cid(&self, user: UserId, cid: ClientOrderId) -> bool {
        self.book
            .iter()
            .any(|o| o.user == user && o.cid == Some(cid))
            || self
                .waiting
                .iter()
                .any(|w| w.user == user && w.o.client_order_id == Some(cid))
    }

    fn held_count(&self) -> usize {
        self.book.len() + self.waiting.len()
    }

    /// The user's held order named by `target`, by id.
    fn find(&self, user: UserId, target: OrderRef) -> Result<OrderId, RejectCode> {
        let all = self.book.iter().map(|o| (o.id, o.user, o.cid)).chain(
            self.waiting
                .iter()
                .map(|w| (w.o.order_id, w.user, w.o.client_order_id)),
        );
        let (id, owner) = all
            .filter(|&(id, owner, cid)| match target {
                OrderRef::Id(want) => id == want,
                OrderRef::Client(c) => owner == user && cid == Some(c),
            })
            .map(|(id, owner, _)| (id, owner))
            .next()
            .ok_or(RejectCode::UnknownOrder)?;
        if owner != user {
            return Err(RejectCode::UnknownOrder);
        }
        Ok(id)
    }

    /// Removes a held order, emitting its `Canceled` (and the `BookDelta` of
    /// its level if it rested). Returns the list it belongs to.
    fn cancel_held(&mut self, id: OrderId, reason: CancelReason) -> Option<OrderId> {
        if let Some(i) = self.book.iter().position(|o| o.id == id) {
            let o = self.book.remove(i);
            self.emit(EventBody::Canceled(Canceled {
                order_id: o.id,
                client_order_id: o.cid,
                user: o.user,
                side: o.side,
                remaining: OrderSize::Base(Qty(o.remaining)),
                reason,
            }));
            self.delta(o.side, o.price);
            return o.list;
        }
        let i = self
            .waiting
            .iter()
            .position(|w| w.o.order_id == id)
            .expect("held");
        let w = self.waiting.remove(i);
        self.emit(EventBody::Canceled(Canceled {
            order_id: id,
            client_order_id: w.o.client_order_id,
            user: w.user,
            side: w.o.side,
            remaining: w.o.size,
            reason,
        }));
        w.list
    }

    fn open_list(&self, id: OrderId) -> Option<List> {
        self.lists.iter().copied().find(|l| l.id == id)
    }

    fn list_done(&mut self, l: List) {
        self.lists.retain(|x| x.id != l.id);
        self.emit(EventBody::ListDone(ListDone {
            list_id: l.id,
            client_list_id: l.cid,
            user: l.user,
        }));
    }

    /// An order of `list` ended without a fill or a firing: its list, if
    /// still open, resolves at once with no survivor.
    fn ended(&mut self, list: Option<OrderId>) {
        if let Some(l) = list {
            self.resolve(l, None);
        }
    }

    /// Ends an open list: every order of it but `survivor` still held is
    /// canceled, then `ListDone`.
    fn resolve(&mut self, list: OrderId, survivor: Option<OrderId>) {
        let Some(l) = self.open_list(list) else {
            return;
        };
        for leg in l.legs {
            if Some(leg) != survivor && self.held(leg) {
                self.cancel_held(leg, CancelReason::ListSibling);
            }
        }
        self.list_done(l);
    }

    // ---- matching ----

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

    /// Cancels what is left of a taker; false when nothing was left.
    fn cancel_taker(&mut self, t: &NaiveTaker, reason: CancelReason) -> bool {
        let remaining = self.remaining(t);
        if matches!(
            remaining,
            OrderSize::Base(Qty(0)) | OrderSize::Quote(QuoteQty(0))
        ) {
            return false;
        }
        self.emit(EventBody::Canceled(Canceled {
            order_id: t.id,
            client_order_id: t.cid,
            user: t.user,
            side: t.side,
            remaining,
            reason,
        }));
        true
    }

    /// True when STP canceled the taker.
    fn take(&mut self, t: &mut NaiveTaker) -> bool {
        let opp = t.side.opposite();
        loop {
            let Some(best) = self.sorted(opp).first().copied() else {
                return false;
            };
            let price = best.price;
            if !Self::crosses(t.side, t.limit, price) || self.cap(t, price) == 0 {
                return false;
            }
            let mut touched = false;
            let mut stp_hit = false;
            // The level's head each time round: an iceberg that refills goes
            // to the back and is met again after the orders ahead of it.
            while let Some(m) = self.sorted(opp).into_iter().find(|o| o.price == price) {
                let cap = self.cap(t, price);
                if cap == 0 {
                    break;
                }
                if m.user == t.user && t.stp != StpMode::None {
                    if t.stp == StpMode::CancelTaker {
                        stp_hit = true;
                        break;
                    }
                    touched = true;
                    self.book.retain(|o| o.id != m.id);
                    self.emit(EventBody::Canceled(Canceled {
                        order_id: m.id,
                        client_order_id: m.cid,
                        user: m.user,
                        side: m.side,
                        remaining: OrderSize::Base(Qty(m.remaining)),
                        reason: CancelReason::SelfTradePrevention,
                    }));
                    self.ended(m.list);
                    if t.stp == StpMode::CancelBoth {
                        stp_hit = true;
                        break;
                    }
                    continue;
                }
                touched = true;
                self.fill(t, m, cap.min(m.visible));
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

    /// One trade of taker `t` against maker `m`.
    fn fill(&mut self, t: &mut NaiveTaker, m: Rest, fill: u64) {
        let price = m.price;
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
        let maker_remaining = m.remaining - fill;
        let r = self.rest_mut(m.id);
        r.remaining = maker_remaining;
        r.visible -= fill;
        let trade_id = TradeId(self.seq + 1);
        let taker_remaining = self.remaining(t);
        self.emit(EventBody::Trade(Trade {
            trade_id,
            price,
            qty: Qty(fill),
            taker_side: t.side,
            maker_order_id: m.id,
            maker_user: m.user,
            maker_remaining: Qty(maker_remaining),
            taker_order_id: t.id,
            taker_user: t.user,
            taker_remaining,
        }));
        self.traded(price, (m.id, m.list, maker_remaining));
        self.traded_leg(t.id, t.list, t.base.unwrap_or(1));
        self.fire_at(price);
        // After the trade's effects, which may have canceled orders on this
        // level: the filled maker leaves, or an iceberg
        // whose slice is gone shows the next one at the back.
        if maker_remaining == 0 {
            self.book.retain(|o| o.id != m.id);
        } else if self.rest_mut(m.id).visible == 0 {
            self.arrivals += 1;
            let arrival = self.arrivals;
            let r = self.rest_mut(m.id);
            r.visible = r
                .iceberg
                .expect("only an iceberg shows less")
                .0
                .min(maker_remaining);
            r.arrival = arrival;
        }
    }

    /// The maker's part of a trade's follow-ups; the taker's and the
    /// firings come after it.
    fn traded(&mut self, price: Price, maker: (OrderId, Option<OrderId>, u64)) {
        self.last = Some(price);
        self.traded_leg(maker.0, maker.1, maker.2);
    }

    /// A trade of an order of an open list: an OCO resolves with it
    /// surviving; an OTO's working order that is now filled releases.
    fn traded_leg(&mut self, id: OrderId, list: Option<OrderId>, open: u64) {
        let Some(l) = list.and_then(|l| self.open_list(l)) else {
            return;
        };
        match l.kind {
            ListKind::Oco => self.resolve(l.id, Some(id)),
            ListKind::Oto if l.legs[0] == id && open == 0 => {
                self.queue.push_back(Follow::Release(l.id));
            }
            ListKind::Oto => {}
        }
    }

    /// Every waiting conditional order, in placement order, against the
    /// trade price `p`: the ones that fire leave the waiting set at once.
    fn fire_at(&mut self, p: Price) {
        let mut fired: Vec<u64> = Vec::new();
        for w in self.waiting.iter_mut().filter(|w| !w.pending) {
            if Self::advance(w, p) {
                fired.push(w.placed);
            }
        }
        fired.sort_unstable();
        for placed in fired {
            // An earlier firing's list may have canceled it.
            if let Some(i) = self.waiting.iter().position(|w| w.placed == placed) {
                let w = self.waiting.remove(i);
                self.fired(w, p);
            }
        }
    }

    /// A fired order: `Triggered` and its OCO resolved at once, its work
    /// after the step.
    fn fired(&mut self, w: Wait, p: Price) {
        self.emit(EventBody::Triggered(Triggered {
            order_id: w.o.order_id,
            client_order_id: w.o.client_order_id,
            user: w.user,
            side: w.o.side,
            price: p,
        }));
        if let Some(l) = w.list {
            self.resolve(l, Some(w.o.order_id));
        }
        self.queue.push_back(Follow::Fire(Box::new(w)));
    }

    /// Updates a waiting order with trade price `p`; true when it fires.
    fn advance(w: &mut Wait, p: Price) -> bool {
        let t = trigger_of(&w.o);
        let (kind, side) = (kind_of(&w.o), w.o.side);
        let Some(d) = t.trailing_delta else {
            return hits(kind, side, t.stop_price.expect("a stop"), p);
        };
        if w.tracking.is_none() {
            if t.stop_price.is_some_and(|s| !hits(kind, side, s, p)) {
                return false;
            }
            w.tracking = Some(p);
        }
        let tracked = w.tracking.expect("tracking");
        let (p128, d) = (u128::from(p.0), u128::from(d));
        match side {
            Side::Sell => {
                let best = tracked.max(p);
                w.tracking = Some(best);
                p128 * 10_000 <= u128::from(best.0) * (10_000 - d)
            }
            Side::Buy => {
                let best = tracked.min(p);
                w.tracking = Some(best);
                p128 * 10_000 >= u128::from(best.0) * (10_000 + d)
            }
        }
    }

    fn fok_fillable(&self, t: &NaiveTaker) -> bool {
        let mut t = *t;
        let mut need = t.base.unwrap_or(u64::MAX);
        for m in self.sorted(t.side.opposite()) {
            if !Self::crosses(t.side, t.limit, m.price) {
                return false;
            }
            if m.user == t.user && t.stp != StpMode::None {
                if t.stp == StpMode::CancelMaker {
                    continue;
                }
                return false;
            }
            let fill = need.min(m.remaining);
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

    // ---- commands ----

    fn apply(&mut self, cmd: &Command) -> Vec<Event> {
        self.out.clear();
        self.ts = cmd.timestamp;
        if cmd.pair != self.config.symbol {
            self.emit(EventBody::Rejected(cmd.rejected(RejectCode::UnknownPair)));
            return std::mem::take(&mut self.out);
        }
        self.expire();
        let user = cmd.user;
        let cancel = matches!(
            cmd.body,
            CommandBody::Cancel { .. } | CommandBody::CancelAll | CommandBody::CancelList { .. }
        );
        let operational = matches!(
            cmd.body,
            CommandBody::AdvanceTime | CommandBody::ChangePair(_)
        );
        let result = match &cmd.body {
            _ if self.status == TradingStatus::Break && !operational => Err(RejectCode::PairBreak),
            _ if self.status == TradingStatus::Halt && !operational && !cancel => {
                Err(RejectCode::PairHalted)
            }
            CommandBody::ChangePair(c) => self.change(c),
            CommandBody::NewOrder(o) => self.new_order(user, *o),
            CommandBody::Cancel { target } => self.find(user, *target).map(|id| {
                let list = self.cancel_held(id, CancelReason::UserRequest);
                self.ended(list);
            }),
            CommandBody::Amend(a) => self.amend(user, *a),
            CommandBody::CancelAll => {
                self.cancel_all(user);
                Ok(())
            }
            CommandBody::NewOrderList(l) => self.new_list(user, **l),
            CommandBody::CancelList { target } => self.cancel_list(user, *target),
            CommandBody::AdvanceTime => Ok(()),
        };
        match result {
            Ok(()) => self.drain(),
            Err(code) => self.emit(EventBody::Rejected(cmd.rejected(code))),
        }
        std::mem::take(&mut self.out)
    }

    /// An operator's change: valid alone, and valid with the largest maxima
    /// of every config the book has had (the orders it holds).
    fn change(&mut self, c: &PairChange) -> Result<(), RejectCode> {
        let config = c.merged(&self.config);
        let widest = PairConfig {
            max_qty: self
                .history
                .iter()
                .map(|h| h.max_qty)
                .max()
                .unwrap()
                .max(config.max_qty),
            max_price: (self.history.iter().map(|h| h.max_price).max().unwrap())
                .max(config.max_price),
            max_open_orders: (self
                .history
                .iter()
                .map(|h| h.max_open_orders)
                .max()
                .unwrap())
            .max(config.max_open_orders),
            ..config
        };
        if config.validate().is_err() || widest.validate().is_err() {
            return Err(RejectCode::InvalidPairChange);
        }
        self.config = config;
        self.history.push(config);
        if let Some(s) = c.status {
            self.status = s;
        }
        self.emit(EventBody::PairChanged(PairChanged {
            config,
            status: self.status,
        }));
        Ok(())
    }

    /// The prelude: every held order whose time has come, earliest first.
    fn expire(&mut self) {
        loop {
            let due = self
                .book
                .iter()
                .map(|o| (o.good_till, o.placed, o.id))
                .chain(
                    self.waiting
                        .iter()
                        .map(|w| (w.o.good_till, w.placed, w.o.order_id)),
                )
                .filter_map(|(g, placed, id)| g.filter(|g| *g <= self.ts).map(|g| (g, placed, id)))
                .min();
            let Some((_, _, id)) = due else {
                return;
            };
            let list = self.cancel_held(id, CancelReason::Expired);
            self.ended(list);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(f) = self.queue.pop_front() {
            match f {
                Follow::Fire(w) => {
                    // It works as its working type, never post-only.
                    let mut o = w.o;
                    o.order_type = o.order_type.working();
                    o.post_only = false;
                    self.work(o, w.user, w.list, w.placed);
                }
                Follow::Release(l) => self.release(l),
            }
        }
    }

    fn release(&mut self, l: OrderId) {
        let Some(l) = self.open_list(l) else {
            return;
        };
        let Some(i) = self
            .waiting
            .iter()
            .position(|w| w.o.order_id == l.legs[1] && w.pending)
        else {
            return;
        };
        let mut w = self.waiting.remove(i);
        self.emit(EventBody::Released(Released {
            order_id: w.o.order_id,
            client_order_id: w.o.client_order_id,
            user: w.user,
            side: w.o.side,
        }));
        self.list_done(l);
        if w.o.order_type.trigger().is_none() {
            self.work(w.o, w.user, w.list, w.placed);
            return;
        }
        w.pending = false;
        w.tracking = self.initial_tracking(&w.o);
        // A static stop already reached fires at once; any other waits, a
        // trailing one with its state as at placement.
        let t = trigger_of(&w.o);
        match (t.stop_price, t.trailing_delta, self.last) {
            (Some(s), None, Some(last)) if hits(kind_of(&w.o), w.o.side, s, last) => {
                self.fired(w, last);
            }
            _ => self.waiting.push(w),
        }
    }

    /// A trailing order without a stop price trails from the last trade;
    /// with one, from when its stop is reached.
    fn initial_tracking(&self, o: &NewOrder) -> Option<Price> {
        match o.order_type.trigger() {
            Some(t) if t.stop_price.is_none() => self.last,
            _ => None,
        }
    }

    /// An order that works now (new, fired or released): it takes, then
    /// rests or has its rest canceled.
    fn work(&mut self, o: NewOrder, user: UserId, list: Option<OrderId>, placed: u64) {
        let limit = o.order_type.price();
        let may_rest =
            limit.is_some() && matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        let scale = pow10(self.config.qty_scale);
        let (base, quote, within) = match o.size {
            OrderSize::Base(q) => (Some(q.0), 0, None),
            OrderSize::Quote(q) => (None, u128::from(q.0) * scale, None),
            // The budget spends at most the pair's maximum notional now.
            OrderSize::BaseWithin { qty, budget } => {
                let most = budget.0.min(self.config.max_notional.0);
                (Some(qty.0), 0, Some(u128::from(most) * scale))
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
            list,
        };
        let canceled = if o.post_only && limit.is_some_and(|l| self.would_take(o.side, l)) {
            self.cancel_taker(&t, CancelReason::PostOnlyWouldCross)
        } else if o.time_in_force == TimeInForce::Fok && !self.fok_fillable(&t) {
            self.cancel_taker(&t, CancelReason::FokNotFillable)
        } else if self.take(&mut t) {
            self.cancel_taker(&t, CancelReason::SelfTradePrevention)
        } else if may_rest {
            if let (Some(rest @ 1..), Some(price), OrderSize::Base(qty)) = (t.base, limit, o.size) {
                self.rest(Rest {
                    id: o.order_id,
                    cid: o.client_order_id,
                    user,
                    side: o.side,
                    price,
                    qty,
                    remaining: rest,
                    visible: rest,
                    iceberg: o.iceberg_qty,
                    post_only: o.post_only,
                    stp: o.stp,
                    good_till: o.good_till,
                    list,
                    arrival: 0,
                    placed,
                });
            }
            false
        } else {
            self.cancel_taker(&t, CancelReason::IocRemainder)
        };
        if canceled {
            self.ended(list);
        }
    }

    /// The stateless checks, in the spec's order.
    fn validate(&self, o: &NewOrder) -> Result<(), RejectCode> {
        let c = &self.config;
        let working = o.order_type.working();
        let market = working == OrderType::Market;
        let tif = o.time_in_force;
        let may_rest = matches!(tif, TimeInForce::Gtc | TimeInForce::Gtd);
        let buy = o.side == Side::Buy;
        if market && may_rest {
            return Err(RejectCode::InvalidTimeInForce);
        }
        if o.post_only && !(matches!(o.order_type, OrderType::Limit { .. }) && may_rest) {
            return Err(RejectCode::PostOnlyNotAllowed);
        }
        match o.size {
            OrderSize::Quote(_) if !(market && buy && tif == TimeInForce::Ioc) => {
                return Err(RejectCode::QuoteSizeNotAllowed);
            }
            OrderSize::BaseWithin { .. } if !(market && buy) => {
                return Err(RejectCode::QuoteSizeNotAllowed);
            }
            _ => {}
        }
        if (tif == TimeInForce::Gtd) != o.good_till.is_some() {
            return Err(RejectCode::InvalidGoodTill);
        }
        if tif == TimeInForce::Gtd && !c.advanced.good_till_date {
            return Err(RejectCode::OrderTypeNotAllowed);
        }
        if let Some(t) = o.order_type.trigger() {
            if !c.advanced.conditional {
                return Err(RejectCode::OrderTypeNotAllowed);
            }
            if t.stop_price.is_none() && t.trailing_delta.is_none() {
                return Err(RejectCode::InvalidTrigger);
            }
            if let Some(d) = t.trailing_delta {
                if !c.advanced.trailing {
                    return Err(RejectCode::OrderTypeNotAllowed);
                }
                if !(MIN_TRAILING_DELTA..=MAX_TRAILING_DELTA).contains(&d) {
                    return Err(RejectCode::InvalidTrigger);
                }
            }
            if let Some(s) = t.stop_price {
                engine::validate::price(c, s)?;
            }
        }
        if let Some(slice) = o.iceberg_qty {
            if !c.advanced.iceberg {
                return Err(RejectCode::OrderTypeNotAllowed);
            }
            let fits = |q: Qty| {
                slice.0.is_multiple_of(c.lot_size.0)
                    && slice >= c.min_qty
                    && slice < q
                    && q.0.div_ceil(slice.0) <= MAX_ICEBERG_PARTS
            };
            if market || !may_rest || !matches!(o.size, OrderSize::Base(q) if fits(q)) {
                return Err(RejectCode::IcebergNotAllowed);
            }
        }
        if let Some(p) = working.price() {
            engine::validate::price(c, p)?;
        }
        match o.size {
            OrderSize::Base(q) => {
                engine::validate::qty(c, q)?;
                if let Some(p) = working.price() {
                    engine::validate::notional(c, p, q)?;
                }
            }
            OrderSize::Quote(a) => engine::validate::quote_amount(c, a)?,
            OrderSize::BaseWithin { qty, budget } => {
                engine::validate::qty(c, qty)?;
                if budget.is_zero() || budget < c.min_notional {
                    return Err(RejectCode::NotionalBelowMin);
                }
            }
        }
        Ok(())
    }

    /// True when a conditional order's stop already holds at the last price.
    fn would_trigger(&self, o: &NewOrder) -> bool {
        let stop = o.order_type.trigger().and_then(|t| t.stop_price);
        match (stop, self.last) {
            (Some(s), Some(last)) => hits(kind_of(o), o.side, s, last),
            _ => false,
        }
    }

    fn new_order(&mut self, user: UserId, o: NewOrder) -> Result<(), RejectCode> {
        self.validate(&o)?;
        if self.held(o.order_id) {
            return Err(RejectCode::DuplicateOrderId);
        }
        if o.client_order_id.is_some_and(|c| self.held_cid(user, c)) {
            return Err(RejectCode::DuplicateClientOrderId);
        }
        if o.good_till.is_some_and(|g| g <= self.ts) {
            return Err(RejectCode::GoodTillPassed);
        }
        let conditional = o.order_type.trigger().is_some();
        let limit_rests = o.order_type.working().price().is_some()
            && matches!(o.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        if (conditional || limit_rests) && self.held_count() >= self.config.max_open_orders as usize
        {
            return Err(RejectCode::BookFull);
        }
        if self.would_trigger(&o) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        self.placed += 1;
        self.emit(EventBody::Accepted(o.accepted(user)));
        if conditional {
            self.waiting.push(Wait {
                o,
                user,
                placed: self.placed,
                tracking: self.initial_tracking(&o),
                list: None,
                pending: false,
            });
        } else {
            self.work(o, user, None, self.placed);
        }
        Ok(())
    }

    /// The shape rules of a list's legs.
    fn list_shape(l: &NewOrderList) -> bool {
        let [a, b] = &l.orders;
        match l.kind {
            ListKind::Oto => matches!(a.order_type, OrderType::Limit { .. }),
            ListKind::Oco => {
                // true: fills or fires on a move towards a profit (limit
                // maker, take-profit); false: a stop-loss.
                let class = |o: &NewOrder| match o.order_type {
                    OrderType::Conditional { kind, .. } => {
                        Some(kind == ConditionalKind::TakeProfit)
                    }
                    OrderType::Limit { .. } if o.post_only => Some(true),
                    _ => None,
                };
                // Any time in force a leg may have on its own: a stop's is
                // the one it works with once fired (Binance's
                // stopLimitTimeInForce); a limit maker's is GTC or GTD.
                let base = |o: &NewOrder| match o.size {
                    OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => Some(q),
                    OrderSize::Quote(_) => None,
                };
                let same_qty = base(a).is_some() && base(a) == base(b);
                a.side == b.side
                    && same_qty
                    && matches!((class(a), class(b)), (Some(x), Some(y)) if x != y)
            }
        }
    }

    fn check_list(&self, user: UserId, l: &NewOrderList) -> Result<(), RejectCode> {
        if !self.config.advanced.lists {
            return Err(RejectCode::OrderTypeNotAllowed);
        }
        for o in &l.orders {
            self.validate(o)?;
        }
        if !Self::list_shape(l) {
            return Err(RejectCode::InvalidOrderList);
        }
        // A client list id is unique among the user's open lists, like an
        // order's (the fast book's reading; the spec names only the id).
        let cid_open =
            |x: &List| x.user == user && l.client_list_id.is_some_and(|c| x.cid == Some(c));
        if self.lists.iter().any(|x| x.id == l.list_id || cid_open(x)) {
            return Err(RejectCode::DuplicateOrderListId);
        }
        let [a, b] = &l.orders;
        if a.order_id == b.order_id
            || l.orders
                .iter()
                .any(|o| o.order_id == l.list_id || self.held(o.order_id))
        {
            return Err(RejectCode::DuplicateOrderId);
        }
        if (a.client_order_id.is_some() && a.client_order_id == b.client_order_id)
            || l.orders
                .iter()
                .any(|o| o.client_order_id.is_some_and(|c| self.held_cid(user, c)))
        {
            return Err(RejectCode::DuplicateClientOrderId);
        }
        if l.orders
            .iter()
            .any(|o| o.good_till.is_some_and(|g| g <= self.ts))
        {
            return Err(RejectCode::GoodTillPassed);
        }
        if self.held_count() + 2 > self.config.max_open_orders as usize {
            return Err(RejectCode::BookFull);
        }
        if l.kind == ListKind::Oco && l.orders.iter().any(|o| self.would_trigger(o)) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        let crosses = |o: &NewOrder| match o.order_type {
            OrderType::Limit { price } => o.post_only && self.would_take(o.side, price),
            _ => false,
        };
        let makers = match l.kind {
            ListKind::Oco => &l.orders[..],
            ListKind::Oto => &l.orders[..1],
        };
        if makers.iter().any(crosses) {
            return Err(RejectCode::PostOnlyWouldCross);
        }
        Ok(())
    }

    fn new_list(&mut self, user: UserId, l: NewOrderList) -> Result<(), RejectCode> {
        self.check_list(user, &l)?;
        let legs = [l.orders[0].order_id, l.orders[1].order_id];
        self.emit(EventBody::ListAccepted(ListAccepted {
            list_id: l.list_id,
            client_list_id: l.client_list_id,
            user,
            kind: l.kind,
            orders: legs,
        }));
        let mut placed = [0; 2];
        for (i, o) in l.orders.iter().enumerate() {
            self.placed += 1;
            placed[i] = self.placed;
            self.emit(EventBody::Accepted(o.accepted_in(user, Some(l.list_id))));
        }
        self.lists.push(List {
            id: l.list_id,
            cid: l.client_list_id,
            user,
            kind: l.kind,
            legs,
            placed: placed[0],
        });
        let list = Some(l.list_id);
        for (i, o) in l.orders.into_iter().enumerate() {
            let pending = l.kind == ListKind::Oto && i == 1;
            if pending || o.order_type.trigger().is_some() {
                self.waiting.push(Wait {
                    o,
                    user,
                    placed: placed[i],
                    tracking: if pending {
                        None
                    } else {
                        self.initial_tracking(&o)
                    },
                    list,
                    pending,
                });
            }
        }
        for (i, o) in l.orders.into_iter().enumerate() {
            let pending = l.kind == ListKind::Oto && i == 1;
            if !pending && o.order_type.trigger().is_none() {
                self.work(o, user, list, placed[i]);
            }
        }
        Ok(())
    }

    fn cancel_list(&mut self, user: UserId, target: OrderRef) -> Result<(), RejectCode> {
        let l = self
            .lists
            .iter()
            .copied()
            .find(|l| match target {
                OrderRef::Id(id) => l.id == id,
                OrderRef::Client(c) => l.user == user && l.cid == Some(c),
            })
            .filter(|l| l.user == user)
            .ok_or(RejectCode::UnknownOrderList)?;
        for leg in l.legs {
            if self.held(leg) {
                self.cancel_held(leg, CancelReason::UserRequest);
            }
        }
        self.list_done(l);
        Ok(())
    }

    fn cancel_all(&mut self, user: UserId) {
        let mut mine: Vec<OrderId> = self
            .sorted(Side::Buy)
            .into_iter()
            .chain(self.sorted(Side::Sell))
            .filter(|o| o.user == user)
            .map(|o| o.id)
            .collect();
        let mut waiting: Vec<Wait> = self
            .waiting
            .iter()
            .copied()
            .filter(|w| w.user == user)
            .collect();
        waiting.sort_by_key(|w| w.placed);
        mine.extend(waiting.iter().map(|w| w.o.order_id));
        for &id in &mine {
            self.cancel_held(id, CancelReason::CancelAll);
        }
        let lists: Vec<List> = self
            .lists
            .iter()
            .copied()
            .filter(|l| l.user == user)
            .collect();
        for l in lists {
            self.list_done(l);
        }
        self.emit(EventBody::CanceledAll(CanceledAll {
            user,
            count: mine.len() as u32,
        }));
    }

    fn amend(&mut self, user: UserId, a: Amend) -> Result<(), RejectCode> {
        let id = self.find(user, a.target)?;
        match self.book.iter().copied().find(|o| o.id == id) {
            Some(o) => self.amend_resting(o, a),
            None => self.amend_waiting(id, a),
        }
    }

    fn amend_resting(&mut self, o: Rest, a: Amend) -> Result<(), RejectCode> {
        if a.new_stop_price.is_some() {
            return Err(RejectCode::InvalidTrigger);
        }
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
        let filled = o.qty.0 - o.remaining;
        if qty.0 <= filled {
            return Err(RejectCode::AmendBelowFilled);
        }
        if o.post_only && price != o.price && self.would_take(o.side, price) {
            return Err(RejectCode::PostOnlyWouldCross);
        }
        if price == o.price && qty == o.qty {
            return Err(RejectCode::NothingToAmend);
        }
        let remaining = qty.0 - filled;
        let kept = price == o.price && remaining <= o.remaining;
        self.emit(EventBody::Amended(Amended {
            order_id: o.id,
            client_order_id: o.cid,
            user: o.user,
            side: o.side,
            price,
            stop_price: None,
            qty,
            remaining: Qty(remaining),
            priority_kept: kept,
        }));
        if kept {
            let r = self.rest_mut(o.id);
            r.qty = qty;
            r.remaining = remaining;
            r.visible = r.visible.min(remaining);
            // The level changes only where what shows shrank.
            if r.visible != o.visible {
                self.delta(o.side, o.price);
            }
            return Ok(());
        }
        self.book.retain(|r| r.id != o.id);
        if price == o.price {
            self.rest(Rest {
                qty,
                remaining,
                ..o
            });
            return Ok(());
        }
        self.delta(o.side, o.price);
        let mut t = NaiveTaker {
            id: o.id,
            cid: o.cid,
            user: o.user,
            side: o.side,
            limit: Some(price),
            base: Some(remaining),
            quote: 0,
            quote_taken: 0,
            within: None,
            stp: o.stp.unwrap_or(self.config.default_stp),
            list: o.list,
        };
        if self.take(&mut t) {
            if self.cancel_taker(&t, CancelReason::SelfTradePrevention) {
                self.ended(o.list);
            }
        } else if let Some(rest @ 1..) = t.base {
            self.rest(Rest {
                price,
                qty,
                remaining: rest,
                ..o
            });
        }
        Ok(())
    }

    fn amend_waiting(&mut self, id: OrderId, a: Amend) -> Result<(), RejectCode> {
        let i = self
            .waiting
            .iter()
            .position(|w| w.o.order_id == id)
            .unwrap();
        let w = self.waiting[i];
        let o = w.o;
        // Nothing named is nothing to amend, before any rule is checked
        // (the rules may have changed since the order was placed).
        if a.new_qty.is_none() && a.new_price.is_none() && a.new_stop_price.is_none() {
            return Err(RejectCode::NothingToAmend);
        }
        let old_qty = match o.size {
            OrderSize::Base(q) => Some(q),
            _ => None,
        };
        if a.new_qty.is_some() && old_qty.is_none() {
            return Err(RejectCode::QuoteSizeNotAllowed);
        }
        let limit = o.order_type.price();
        if a.new_price.is_some() && limit.is_none() {
            return Err(RejectCode::NothingToAmend);
        }
        let trigger = o.order_type.trigger();
        let stop = trigger.and_then(|t| t.stop_price);
        if a.new_stop_price.is_some() && stop.is_none() {
            return Err(RejectCode::InvalidTrigger);
        }
        if let Some(p) = a.new_price {
            engine::validate::price(&self.config, p)?;
        }
        if let Some(q) = a.new_qty {
            engine::validate::qty(&self.config, q)?;
        }
        if let Some(s) = a.new_stop_price {
            engine::validate::price(&self.config, s)?;
        }
        let (new_limit, new_stop) = (a.new_price.or(limit), a.new_stop_price.or(stop));
        let new_qty = a.new_qty.or(old_qty);
        if let (Some(p), Some(q)) = (new_limit, new_qty) {
            engine::validate::notional(&self.config, p, q)?;
        }
        // An iceberg stays one: its slice below its quantity, within the
        // slice count (its type and time in force cannot change).
        if let (Some(slice), Some(q)) = (o.iceberg_qty, new_qty) {
            let c = &self.config;
            if !c.advanced.iceberg {
                return Err(RejectCode::OrderTypeNotAllowed);
            }
            let fits = slice.0.is_multiple_of(c.lot_size.0)
                && slice >= c.min_qty
                && slice < q
                && q.0.div_ceil(slice.0) <= MAX_ICEBERG_PARTS;
            if !fits {
                return Err(RejectCode::IcebergNotAllowed);
            }
        }
        if new_limit == limit && new_stop == stop && new_qty == old_qty {
            return Err(RejectCode::NothingToAmend);
        }
        let mut n = o;
        if let Some(q) = new_qty {
            n.size = OrderSize::Base(q);
        }
        n.order_type = match o.order_type {
            OrderType::Conditional { kind, trigger, .. } => OrderType::Conditional {
                kind,
                limit: new_limit,
                trigger: Trigger {
                    stop_price: new_stop,
                    ..trigger
                },
            },
            OrderType::Limit { .. } => OrderType::Limit {
                price: new_limit.expect("a limit"),
            },
            OrderType::Market => OrderType::Market,
        };
        if a.new_stop_price.is_some() && self.would_trigger(&n) {
            return Err(RejectCode::WouldTriggerImmediately);
        }
        // Only a new stop price restarts a trailing order: a quantity or
        // limit change keeps the trail it has followed.
        let restart = !w.pending && a.new_stop_price.is_some();
        let tracking = if restart {
            self.initial_tracking(&n)
        } else {
            w.tracking
        };
        self.waiting[i].o = n;
        self.waiting[i].tracking = tracking;
        let qty = new_qty.unwrap_or(Qty::ZERO);
        self.emit(EventBody::Amended(Amended {
            order_id: id,
            client_order_id: o.client_order_id,
            user: w.user,
            side: o.side,
            price: new_limit.unwrap_or(Price::ZERO),
            stop_price: new_stop,
            qty,
            remaining: qty,
            priority_kept: true,
        }));
        Ok(())
    }

    /// The resting orders in canonical order.
    fn resting(&self) -> Vec<RestingOrder> {
        self.sorted(Side::Buy)
            .into_iter()
            .chain(self.sorted(Side::Sell))
            .map(|o| RestingOrder {
                order_id: o.id,
                client_order_id: o.cid,
                user: o.user,
                side: o.side,
                price: o.price,
                qty: o.qty,
                remaining: Qty(o.remaining),
                post_only: o.post_only,
                stp: o.stp,
                iceberg_qty: o.iceberg,
                visible: Qty(o.visible),
                good_till: o.good_till,
                list_id: o.list,
                placed: o.placed,
            })
            .collect()
    }

    /// The waiting orders in placement order.
    fn waiting(&self) -> Vec<WaitingOrder> {
        let mut v: Vec<WaitingOrder> = self
            .waiting
            .iter()
            .map(|w| WaitingOrder {
                order: w.o,
                user: w.user,
                list_id: w.list,
                placed: w.placed,
                wait: if w.pending {
                    WaitFor::List
                } else {
                    WaitFor::Trigger {
                        tracking: w.tracking,
                    }
                },
            })
            .collect();
        v.sort_by_key(|w| w.placed);
        v
    }

    /// The open lists by id.
    fn lists(&self) -> Vec<OrderList> {
        let mut v: Vec<OrderList> = self
            .lists
            .iter()
            .map(|l| OrderList {
                list_id: l.id,
                client_list_id: l.cid,
                user: l.user,
                kind: l.kind,
                legs: l.legs,
                placed: l.placed,
            })
            .collect();
        v.sort_by_key(|l| l.list_id);
        v
    }

    /// What must hold after every command, whatever the fast book does.
    fn check(&self) -> Result<(), String> {
        for o in &self.book {
            let slice = o.iceberg.map_or(o.remaining, |i| i.0.min(o.remaining));
            if o.visible == 0 || o.visible > slice || o.remaining > o.qty.0 {
                return Err(format!(
                    "order {} shows {} of {}",
                    o.id, o.visible, o.remaining
                ));
            }
        }
        let goods = self.book.iter().map(|o| o.good_till);
        if goods
            .chain(self.waiting.iter().map(|w| w.o.good_till))
            .any(|g| g.is_some_and(|g| g <= self.ts))
        {
            return Err("an order outlived its time".into());
        }
        let best = |side| self.sorted(side).first().map(|o| o.price);
        if let (Some(bid), Some(ask)) = (best(Side::Buy), best(Side::Sell))
            && bid >= ask
        {
            return Err(format!("crossed: {bid} >= {ask}"));
        }
        for w in self.waiting.iter().filter(|w| !w.pending) {
            let t = trigger_of(&w.o);
            if t.trailing_delta.is_none() && self.would_trigger(&w.o) {
                return Err(format!("{} should have fired", w.o.order_id));
            }
        }
        for l in &self.lists {
            if !l.legs.iter().all(|&leg| self.held(leg)) {
                return Err(format!("list {} is open with a leg gone", l.id));
            }
        }
        for w in self.waiting.iter().filter(|w| w.pending) {
            if w.list.and_then(|l| self.open_list(l)).is_none() {
                return Err(format!("{} is pending in no open list", w.o.order_id));
            }
        }
        Ok(())
    }
}

fn configs() -> Vec<PairConfig> {
    let base = default_config();
    vec![
        base,
        // Some advanced types refused: the stream's orders of those types
        // must all be rejected the same way.
        PairConfig {
            advanced: AdvancedOrders {
                trailing: false,
                lists: false,
                ..AdvancedOrders::ALL
            },
            ..base
        },
        PairConfig {
            advanced: AdvancedOrders {
                conditional: false,
                iceberg: false,
                good_till_date: false,
                ..AdvancedOrders::ALL
            },
            max_open_orders: 40,
            ..base
        },
        PairConfig {
            tick_size: Price(2),
            lot_size: Qty(5),
            min_qty: Qty(5),
            max_qty: Qty(80),
            min_notional: QuoteQty(600),
            default_stp: StpMode::CancelMaker,
            ..base
        },
        PairConfig {
            qty_scale: 3,
            price_scale: 2,
            default_stp: StpMode::CancelTaker,
            max_open_orders: 25,
            ..base
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
    let market_buy = o.order_type.is_market() && o.side == Side::Buy;
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
/// both books must hold after every command, and the open orders must
/// match every 50 commands and at the end.
fn compare(mix: Mix, seed: u64, config: &PairConfig, n: usize) {
    if let Err(e) = run(mix, seed, config, n) {
        panic!("{e}");
    }
}

/// [`compare`], answering the first disagreement instead of panicking.
fn run(mix: Mix, seed: u64, config: &PairConfig, n: usize) -> Result<(), String> {
    let mut fast = OrderBook::new(*config).expect("valid config");
    let mut naive = Naive::new(*config);
    let mut generator = Generator::new(mix, seed, config);
    let mut ledger = Ledger::default();
    let mut events = Vec::new();
    let mut budgets = SplitMix(seed);
    for i in 0..n {
        let cmd = with_budget(generator.next_command(), &fast, &mut budgets);
        let at = format!("seed {seed}, {mix:?}, command {i}: {cmd:?}");
        events.clear();
        let expected = naive.apply(&cmd);
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fast.apply(&cmd, &mut events);
        }));
        let lines = |es: &[Event]| es.iter().map(render).collect::<Vec<_>>();
        if applied.is_err() {
            return Err(format!(
                "{at}: the fast book panicked\nnaive: {:#?}",
                lines(&expected)
            ));
        }
        if events != expected {
            return Err(format!(
                "{at}\nfast:  {:#?}\nnaive: {:#?}",
                lines(&events),
                lines(&expected)
            ));
        }
        ledger
            .check(&fast, &cmd, &events)
            .map_err(|e| format!("{at}: {e}"))?;
        naive.check().map_err(|e| format!("{at}: reference: {e}"))?;
        if i % 50 == 0 {
            same_state(&fast, &naive).map_err(|e| format!("{at}: {e}"))?;
        }
        generator.observe(&events);
    }
    same_state(&fast, &naive).map_err(|e| format!("seed {seed}, {mix:?}, at the end: {e}"))
}

/// Both books hold the same orders, waiting orders, lists and last price.
fn same_state(fast: &OrderBook, naive: &Naive) -> Result<(), String> {
    let differ =
        |what: &str, a: String, b: String| Err(format!("{what} differ:\nfast:  {a}\nnaive: {b}"));
    if (fast.config(), fast.status()) != (&naive.config, naive.status) {
        return differ(
            "rules",
            format!("{:?} {:?}", fast.config(), fast.status()),
            format!("{:?} {:?}", naive.config, naive.status),
        );
    }
    let resting: Vec<RestingOrder> = fast.resting_orders().collect();
    if resting != naive.resting() {
        return differ(
            "resting orders",
            format!("{resting:?}"),
            format!("{:?}", naive.resting()),
        );
    }
    let waiting: Vec<WaitingOrder> = fast.waiting_orders().collect();
    if waiting != naive.waiting() {
        return differ(
            "waiting orders",
            format!("{waiting:?}"),
            format!("{:?}", naive.waiting()),
        );
    }
    if fast.open_lists() != naive.lists() {
        return differ(
            "lists",
            format!("{:?}", fast.open_lists()),
            format!("{:?}", naive.lists()),
        );
    }
    if fast.last_price() != naive.last {
        return differ(
            "last prices",
            format!("{:?}", fast.last_price()),
            format!("{:?}", naive.last),
        );
    }
    Ok(())
}

/// How many chaos seeds each test runs per config: `CHAOS_SEEDS` raises it
/// for a longer search.
fn chaos_seeds(default: u64) -> u64 {
    std::env::var("CHAOS_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn chaos_streams_match_the_reference() {
    let configs = configs();
    let seeds = chaos_seeds(200u64.div_ceil(configs.len() as u64));
    for (c, config) in configs.iter().enumerate() {
        for seed in 0..seeds {
            compare(Mix::Chaos, seed * 31 + c as u64, config, 2_000);
        }
    }
}

#[test]
fn long_chaos_streams_match_the_reference() {
    let config = default_config();
    for seed in 0..chaos_seeds(4) {
        compare(Mix::Chaos, 1_000 + seed, &config, 12_000);
    }
}

#[test]
fn benchmark_mixes_match_the_reference() {
    let config = default_config();
    for seed in 0..4 {
        compare(Mix::ExchangeCore, seed, &config, 4_000);
        compare(Mix::Retail, seed, &config, 4_000);
        compare(Mix::Advanced, seed, &config, 4_000);
    }
}

/// Every scenario file's commands, and the advanced scenarios', through
/// both books: the fast book's events are checked against the text by
/// `scenarios.rs`, and here the naive book must emit the same events and
/// hold the same orders.
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
        scenario_matches(&path.display().to_string(), &text);
    }
    for (name, text) in ADVANCED_SCENARIOS {
        scenario_matches(name, text);
    }
}

fn scenario_matches(name: &str, text: &str) {
    let config = text
        .lines()
        .find(|l| l.starts_with("config"))
        .map_or_else(default_config, |l| parse_config(l).unwrap());
    let mut fast = OrderBook::new(config).unwrap();
    let mut naive = Naive::new(config);
    let commands = text
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(str::trim);
    let mut clock = Clock::default();
    for line in commands {
        if ["depth", "orders", "held", "pair", "restore"].contains(&line) {
            continue;
        }
        let cmd = clock.command(line, config.symbol).unwrap();
        let expected = naive.apply(&cmd);
        assert_eq!(fast.apply_one(&cmd), expected, "{name}: `{line}`");
        if let Err(e) = naive.check().and_then(|()| same_state(&fast, &naive)) {
            panic!("{name}: after `{line}`: {e}");
        }
    }
}

/// Runs scenario lines through the fast book and the reference; returns
/// both event lists rendered (the fast book's is `None` where it panicked).
fn script(lines: &[&str]) -> (Option<Vec<String>>, Vec<String>) {
    let config = default_config();
    let mut fast = OrderBook::new(config).unwrap();
    let mut naive = Naive::new(config);
    let mut clock = Clock::default();
    let (mut f, mut n) = (Some(Vec::new()), Vec::new());
    for line in lines {
        let cmd = clock.command(line, config.symbol).unwrap();
        n.extend(naive.apply(&cmd).iter().map(render));
        naive.check().unwrap();
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fast.apply_one(&cmd)));
        f = match (f, applied) {
            (Some(mut v), Ok(events)) => {
                v.extend(events.iter().map(render));
                Some(v)
            }
            _ => None,
        };
    }
    (f, n)
}

/// The events after the first `skip` lines' worth: `expected` lines.
fn tail(events: &[String], expected: &[&str]) -> Vec<String> {
    events[events.len() - expected.len()..].to_vec()
}

/// An order of an open list canceled by self-trade prevention as a maker
/// ends its list once: its sibling is canceled, the list is done.
#[test]
fn stp_of_a_list_order_ends_its_list() {
    let (fast, naive) = script(&[
        "oco l=1 u=1 | o=2 sell limit p=100 q=5 post | o=3 sell stop_loss_limit p=90 stop=90 q=5",
        "new o=4 u=1 buy limit p=100 q=5 stp=cm",
    ]);
    let expected = [
        "5 accepted o=4 u=1 buy limit p=100 q=5 Gtc",
        "6 canceled o=2 u=1 sell rem:q=5 SelfTradePrevention",
        "7 canceled o=3 u=1 sell rem:q=5 ListSibling",
        "8 list_done l=1 u=1",
        "9 book ask p=100 q=0",
        "10 book bid p=100 q=5",
    ];
    assert_eq!(tail(&naive, &expected), expected);
    assert_eq!(fast.as_ref(), Some(&naive), "the fast book");
}

/// A trade that fills an OCO's limit maker and would fire its stop: the
/// list resolves right after the trade, before the firings, so the stop is
/// canceled and never fires.
#[test]
fn a_trade_of_an_oco_leg_cancels_the_stop_it_would_fire() {
    let (fast, naive) = script(&[
        "oco l=1 u=1 | o=2 sell limit p=105 q=5 post | o=3 sell stop_loss_limit p=90 stop=110 q=5",
        "new o=4 u=2 buy limit p=105 q=5",
    ]);
    let expected = [
        "5 accepted o=4 u=2 buy limit p=105 q=5 Gtc",
        "6 trade id=6 p=105 q=5 taker=o4/u2 buy rem:q=0 maker=o2/u1 rem:0",
        "7 canceled o=3 u=1 sell rem:q=5 ListSibling",
        "8 list_done l=1 u=1",
        "9 book ask p=105 q=0",
    ];
    assert_eq!(tail(&naive, &expected), expected);
    assert_eq!(fast.as_ref(), Some(&naive), "the fast book");
}

/// A quantity amend of a waiting trailing order keeps the trail it has
/// followed (the high of 120), so a trade at 100 (more than 10% below 120)
/// fires it; a new stop price restarts the trail.
#[test]
fn a_quantity_amend_keeps_a_trailing_orders_trail() {
    let lines = [
        "new o=1 u=1 sell limit p=100 q=1",
        "new o=2 u=2 buy limit p=100 q=1",
        "new o=3 u=3 sell stop_loss trail=1000 q=1",
        "new o=4 u=1 sell limit p=120 q=1",
        "new o=5 u=2 buy limit p=120 q=1",
        "new o=6 u=1 sell limit p=110 q=1",
        "new o=7 u=2 buy limit p=110 q=1",
        "amend u=3 o=3 q=2",
        "new o=8 u=1 sell limit p=100 q=1",
        "new o=9 u=2 buy limit p=100 q=1",
    ];
    let (fast, naive) = script(&lines);
    assert!(
        naive
            .iter()
            .any(|l| l.contains("triggered o=3 u=3 sell p=100")),
        "{naive:#?}"
    );
    assert_eq!(fast.as_ref(), Some(&naive), "the fast book");
}
