//! A shard in front of real order books: every order is checked by the
//! shard first (a refused one never reaches its book), and every event of
//! every book is fed back to the shard, as the pipeline will do.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of it"
)]

use std::collections::BTreeMap;

use accounts::{Amend, AssetId, Fees, Input, Output, Place, Reference, RiskCode, Shard};
use engine::OrderBook;
use proto::{
    Command, CommandBody, Event, NewOrder, OrderId, OrderRef, OrderSize, OrderType, PairConfig,
    Price, Qty, Side, StpMode, Symbol, TimeInForce, Timestamp, UserId,
};

/// The shard, its books, and every input it was given.
#[derive(Debug)]
pub struct Harness {
    pub shard: Shard,
    pub books: BTreeMap<Symbol, OrderBook>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    next_ref: u64,
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
                .map(|p| (p.symbol, OrderBook::new(p.clone()).expect("pair config")))
                .collect(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            next_ref: 1,
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
        Ok(self.run(&command(pair, user, CommandBody::NewOrder(order))))
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
        });
        Ok(self.run(&command(pair, user, body)))
    }

    pub fn cancel(&mut self, pair: Symbol, user: u64, id: u64) -> Vec<Event> {
        let body = CommandBody::Cancel {
            target: OrderRef::Id(OrderId(id)),
        };
        self.run(&command(pair, user, body))
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
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        side,
        order_type: OrderType::Limit {
            price: Price(price),
        },
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        stp: None,
        size: OrderSize::Base(Qty(qty)),
    }
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
    NewOrder {
        order_id: OrderId(id),
        client_order_id: None,
        side,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Ioc,
        post_only: false,
        stp: None,
        size,
    }
}

/// A limit order with its own self-trade-prevention mode.
pub fn with_stp(o: NewOrder, stp: StpMode) -> NewOrder {
    NewOrder {
        stp: Some(stp),
        ..o
    }
}
