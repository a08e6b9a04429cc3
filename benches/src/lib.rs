//! Shared set-up for the core benchmarks: recorded command streams and
//! pre-filled books, so that every benchmark replays exactly the same input.

use engine::OrderBook;
use proto::{
    Amend, Command, CommandBody, NewOrder, OrderId, OrderRef, OrderSize, OrderType, PairConfig,
    Price, Qty, Side, Symbol, TimeInForce, Timestamp, UserId,
};
use workload::{Generator, Mix};

/// The pair every benchmark trades: integer ticks and lots, large limits.
pub fn bench_config() -> PairConfig {
    PairConfig {
        max_open_orders: 4_000_000,
        ..PairConfig::simple(Symbol::new("BTC-EUR").expect("valid symbol"))
    }
}

/// Records `n` commands of `mix`, letting the generator see the book's
/// events as it would live, after `warmup` commands that build the book.
/// Returns the book state after the warm-up and the commands after it.
pub fn recorded(mix: Mix, seed: u64, warmup: usize, n: usize) -> (OrderBook, Vec<Command>) {
    let config = bench_config();
    let mut book = OrderBook::new(config).expect("valid config");
    let mut generator = Generator::new(mix, seed, &config);
    let mut events = Vec::new();
    for _ in 0..warmup {
        let cmd = generator.next_command();
        events.clear();
        book.apply(&cmd, &mut events);
        generator.observe(&events);
    }
    let start = book.clone();
    let cmds = (0..n)
        .map(|_| {
            let cmd = generator.next_command();
            events.clear();
            book.apply(&cmd, &mut events);
            generator.observe(&events);
            cmd
        })
        .collect();
    (start, cmds)
}

/// A GTC limit order.
pub fn limit(id: u64, user: u64, side: Side, price: u64, qty: u64) -> Command {
    Command {
        pair: bench_config().symbol,
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

/// A cancel by order id.
pub fn cancel(id: u64, user: u64) -> Command {
    Command {
        pair: bench_config().symbol,
        user: UserId(user),
        timestamp: Timestamp(id),
        body: CommandBody::Cancel {
            target: OrderRef::Id(OrderId(id)),
        },
    }
}

/// An amend by order id.
pub fn amend(id: u64, user: u64, new_qty: Option<Qty>, new_price: Option<Price>) -> Command {
    Command {
        body: CommandBody::Amend(Amend {
            target: OrderRef::Id(OrderId(id)),
            new_qty,
            new_price,
            new_stop_price: None,
        }),
        ..cancel(id, user)
    }
}

/// A book with `levels` ask levels from price 10_001 up, `per_level` orders
/// of quantity 10 each, ids from 1.
/// The book has room to grow, so one more order does not measure a table
/// resize.
pub fn ask_ladder(levels: u64, per_level: u64) -> OrderBook {
    let room = (levels * per_level * 2) as usize;
    let mut book = OrderBook::with_capacity(bench_config(), room).expect("valid config");
    let mut events = Vec::new();
    let mut id = 1;
    for l in 0..levels {
        for _ in 0..per_level {
            book.apply(&limit(id, 1, Side::Sell, 10_001 + l, 10), &mut events);
            id += 1;
        }
    }
    book
}

#[cfg(test)]
mod tests {
    use proto::EventBody;

    use super::*;

    /// The advanced mix's recording does what its figures claim: stops
    /// wait and fire, icebergs rest and refill, on a book of the
    /// exchange-core-like size.
    #[test]
    fn the_advanced_recording_fires_stops_and_refills_icebergs() {
        let (start, cmds) = recorded(Mix::Advanced, 42, 20_000, 20_000);
        assert!(
            start.waiting_orders().count() > 10,
            "stops waiting after the warm-up"
        );
        assert!(
            (500..2_000).contains(&start.open_orders()),
            "{}",
            start.open_orders()
        );
        let mut book = start;
        let (mut fired, mut refills) = (0, 0);
        let mut events = Vec::new();
        for cmd in &cmds {
            events.clear();
            book.apply(cmd, &mut events);
            for e in &events {
                match e.body {
                    EventBody::Triggered(_) => fired += 1,
                    EventBody::Trade(t) => {
                        let maker = book.order(t.maker_order_id);
                        refills += usize::from(maker.is_some_and(|m| m.iceberg_qty.is_some()));
                    }
                    _ => {}
                }
            }
        }
        assert!(fired > 100, "{fired} stops fired");
        assert!(refills >= 10, "{refills} trades against icebergs that stay");
    }
}
