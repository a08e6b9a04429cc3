//! Snapshot restore: arbitrary bytes give an error or a book whose own
//! snapshot is the same bytes, and which then matches like any book:
//! a market order of each side sweeps it without a panic.
#![no_main]

use engine::OrderBook;
use libfuzzer_sys::fuzz_target;
use proto::{
    Command, CommandBody, NewOrder, OrderId, OrderSize, OrderType, Qty, Side, TimeInForce,
    Timestamp, UserId,
};

fn sweep(side: Side, id: u64) -> Command {
    Command {
        pair: exchange_fuzz::pair().symbol,
        user: UserId(u64::MAX),
        timestamp: Timestamp(1),
        body: CommandBody::NewOrder(NewOrder {
            order_id: OrderId(u64::MAX - id),
            client_order_id: None,
            side,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            stp: None,
            size: OrderSize::Base(Qty(exchange_fuzz::pair().max_qty.0)),
            iceberg_qty: None,
            good_till: None,
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut book) = OrderBook::restore(exchange_fuzz::pair(), data) else {
        return;
    };
    assert_eq!(
        book.snapshot(),
        data,
        "a restored book re-snapshots to other bytes"
    );
    let hash = book.state_hash();
    let again = OrderBook::restore(exchange_fuzz::pair(), data).expect("restores twice");
    assert_eq!(again.state_hash(), hash);
    let mut events = Vec::new();
    book.apply(&sweep(Side::Buy, 0), &mut events);
    book.apply(&sweep(Side::Sell, 1), &mut events);
});
