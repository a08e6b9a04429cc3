//! A shard in front of real order books: every order is checked by the
//! shard first (a refused one never reaches its book), and every event of
//! every book is fed back to the shard, as the pipeline will do.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of it"
)]

use std::collections::BTreeMap;

use accounts::{Amend, AssetId, Fees, Input, Output, Place, PlaceList, Reference, RiskCode, Shard};
use engine::OrderBook;
use proto::{
    Command, CommandBody, ConditionalKind, Event, ListKind, NewOrder, NewOrderList, OrderId,
    OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, Side, StpMode, Symbol, TimeInForce,
    Timestamp, Trigger, UserId,
};

/// The shard, its books, and every input it was given.
#[derive(Debug)]
pub struct Harness {
    pub shard: Shard,
    pub books: BTreeMap<Symbol, OrderBook>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    next_ref: u64,
    /// The timestamp of the commands it sends (good-till-date orders
    /// expire by it).
    pub now: u64,
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("test symbol")
}

/// `BTC-EUR` with unit scales: amounts are plain integers.
pub fn btc_eur() -> PairConfig {
    PairConfig::simple(sym("BTC-EUR"))
}

impl Harness {
    pub fn new(pairs: &[PairConfig]) -> Harness {
        Harness {
            shard: Shard::new(pairs).expect("pair set"),
            books: pairs
                .iter()
                .map(|p| (p.symbol, OrderBook::new(*p).expect("pair config")))
                .collect(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            next_ref: 1,
            now: 1,
        }
    }

    pub fn asset(&self, name: &str) -> AssetId {
        self.shard.asset_id(name).expect("asset")
    }

    /// Applies one input to the shard, recording it, and returns its outputs.
    pub fn input(&mut self, input: Input) -> Vec<Output> {
        let out = self.shard.apply_one(&input);
        self.inputs.push(input);
        self.outputs.extend_from_slice(&out);
        if let Err(e) = self.shard.audit() {
            panic!("audit failed after {input:?}: {e:?}");
        }
        out
    }

    pub fn deposit(&mut self, user: u64, asset: &str, amount: u128) -> Vec<Output> {
        self.next_ref += 1;
        let input = Input::Deposit {
            user: UserId(user),
            asset: self.asset(asset),
            amount,
            reference: Reference(self.next_ref),
        };
        self.input(input)
    }

    pub fn free(&self, user: u64, asset: &str) -> u128 {
        self.shard.balance(UserId(user), self.asset(asset)).free
    }

    pub fn locked(&self, user: u64, asset: &str) -> u128 {
        self.shard.balance(UserId(user), self.asset(asset)).locked
    }

    pub fn fee_account(&self, asset: &str) -> u128 {
        self.shard.fee_account(self.asset(asset))
    }

    /// Runs `cmd` through its book and settles every event it causes.
    pub fn run(&mut self, cmd: &Command) -> Vec<Event> {
        let book = self.books.get_mut(&cmd.pair).expect("book");
        let events = book.apply_one(cmd);
        for e in &events {
            self.input(Input::Settle(*e));
        }
        events
    }

    /// Places an order: the shard checks it, then (if it locked) the book runs it.
    pub fn place(
        &mut self,
        pair: Symbol,
        user: u64,
        order: NewOrder,
        fees: Fees,
    ) -> Result<Vec<Event>, RiskCode> {
        let out = self.input(Input::Place(Place {
            pair,
            user: UserId(user),
            order,
            fees,
        }));
        if let [Output::Rejected(code)] = out[..] {
            return Err(code);
        }
        Ok(self.run(&self.command(pair, user, CommandBody::NewOrder(order))))
    }

    /// Places an order list: the shard checks both orders, then (if it
    /// locked) the book runs it.
    pub fn place_list(
        &mut self,
        pair: Symbol,
        user: u64,
        list: NewOrderList,
        fees: Fees,
    ) -> Result<Vec<Event>, RiskCode> {
        let out = self.input(Input::PlaceList(PlaceList {
            pair,
            user: UserId(user),
            list,
            fees,
        }));
        if let [Output::Rejected(code)] = out[..] {
            return Err(code);
        }
        Ok(self.run(&self.command(pair, user, CommandBody::NewOrderList(Box::new(list)))))
    }

    /// A command of `user` stamped with [`Harness::now`].
    pub fn command(&self, pair: Symbol, user: u64, body: CommandBody) -> Command {
        Command {
            timestamp: Timestamp(self.now),
            ..command(pair, user, body)
        }
    }

    /// Moves time to `now` with an `AdvanceTime` command on `pair`.
    pub fn advance(&mut self, pair: Symbol, now: u64) -> Vec<Event> {
        self.now = now;
        self.run(&self.command(pair, 0, CommandBody::AdvanceTime))
    }

    /// Amends an order by id: the shard checks it, then the book runs it.
    pub fn amend(
        &mut self,
        pair: Symbol,
        user: u64,
        id: u64,
        new_qty: Option<u64>,
        new_price: Option<u64>,
    ) -> Result<Vec<Event>, RiskCode> {
        let out = self.input(Input::Amend(Amend {
            pair,
            user: UserId(user),
            order_id: OrderId(id),
            new_qty: new_qty.map(Qty),
            new_price: new_price.map(Price),
        }));
        if let [Output::Rejected(code)] = out[..] {
            return Err(code);
        }
        let body = CommandBody::Amend(proto::Amend {
            target: OrderRef::Id(OrderId(id)),
            new_qty: new_qty.map(Qty),
            new_price: new_price.map(Price),
            new_stop_price: None,
        });
        Ok(self.run(&self.command(pair, user, body)))
    }

    /// Amends a waiting conditional order's stop price (and maybe its
    /// quantity): the shard checks it, then the book runs it.
    pub fn amend_stop(
        &mut self,
        pair: Symbol,
        user: u64,
        id: u64,
        new_qty: Option<u64>,
        new_stop: u64,
    ) -> Result<Vec<Event>, RiskCode> {
        let out = self.input(Input::Amend(Amend {
            pair,
            user: UserId(user),
            order_id: OrderId(id),
            new_qty: new_qty.map(Qty),
            new_price: None,
        }));
        if let [Output::Rejected(code)] = out[..] {
            return Err(code);
        }
        let body = CommandBody::Amend(proto::Amend {
            target: OrderRef::Id(OrderId(id)),
            new_qty: new_qty.map(Qty),
            new_price: None,
            new_stop_price: Some(Price(new_stop)),
        });
        Ok(self.run(&self.command(pair, user, body)))
    }

    pub fn cancel(&mut self, pair: Symbol, user: u64, id: u64) -> Vec<Event> {
        let body = CommandBody::Cancel {
            target: OrderRef::Id(OrderId(id)),
        };
        self.run(&self.command(pair, user, body))
    }

    pub fn cancel_list(&mut self, pair: Symbol, user: u64, list: u64) -> Vec<Event> {
        let body = CommandBody::CancelList {
            target: OrderRef::Id(OrderId(list)),
        };
        self.run(&self.command(pair, user, body))
    }
}

pub fn command(pair: Symbol, user: u64, body: CommandBody) -> Command {
    Command {
        pair,
        user: UserId(user),
        timestamp: Timestamp(1),
        body,
    }
}

/// A GTC limit order.
pub fn limit(id: u64, side: Side, price: u64, qty: u64) -> NewOrder {
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

/// A limit order with another time in force.
pub fn limit_tif(id: u64, side: Side, price: u64, qty: u64, tif: TimeInForce) -> NewOrder {
    NewOrder {
        time_in_force: tif,
        ..limit(id, side, price, qty)
    }
}

/// A market IOC order of `size`.
pub fn market(id: u64, side: Side, size: OrderSize) -> NewOrder {
    NewOrder::plain(OrderId(id), side, OrderType::Market, TimeInForce::Ioc, size)
}

/// A conditional order of `kind` firing at `stop`: GTC at `limit`, or an
/// IOC market order of `size` without one.
pub fn stop(
    id: u64,
    side: Side,
    kind: ConditionalKind,
    limit: Option<u64>,
    stop: u64,
    size: OrderSize,
) -> NewOrder {
    let tif = if limit.is_some() {
        TimeInForce::Gtc
    } else {
        TimeInForce::Ioc
    };
    let order_type = OrderType::Conditional {
        kind,
        limit: limit.map(Price),
        trigger: Trigger {
            stop_price: Some(Price(stop)),
            trailing_delta: None,
        },
    };
    NewOrder::plain(OrderId(id), side, order_type, tif, size)
}

/// `o` with a trailing delta (in basis points) instead of a stop price.
pub fn trailing(o: NewOrder, delta: u32) -> NewOrder {
    let OrderType::Conditional { kind, limit, .. } = o.order_type else {
        panic!("only a conditional order trails");
    };
    NewOrder {
        order_type: OrderType::Conditional {
            kind,
            limit,
            trigger: Trigger {
                stop_price: None,
                trailing_delta: Some(delta),
            },
        },
        ..o
    }
}

/// `o` showing `slice` at a time.
pub fn iceberg(o: NewOrder, slice: u64) -> NewOrder {
    NewOrder {
        iceberg_qty: Some(Qty(slice)),
        ..o
    }
}

/// `o` good till `at` (GTD).
pub fn gtd(o: NewOrder, at: u64) -> NewOrder {
    NewOrder {
        time_in_force: TimeInForce::Gtd,
        good_till: Some(Timestamp(at)),
        ..o
    }
}

/// `o` as a limit maker (post-only limit).
pub fn post_only(o: NewOrder) -> NewOrder {
    NewOrder {
        post_only: true,
        ..o
    }
}

/// An order list of `kind`.
pub fn list(id: u64, kind: ListKind, orders: [NewOrder; 2]) -> NewOrderList {
    NewOrderList {
        list_id: OrderId(id),
        client_list_id: None,
        kind,
        orders,
    }
}

/// A limit order with its own self-trade-prevention mode.
pub fn with_stp(o: NewOrder, stp: StpMode) -> NewOrder {
    NewOrder {
        stp: Some(stp),
        ..o
    }
}
