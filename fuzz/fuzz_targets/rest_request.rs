//! The REST request path from raw bytes to a command, as the `POST`, `PUT`
//! and `DELETE /api/v1/order` handlers parse it: never a panic; a command it
//! makes passes the engine's checks, survives the codec, and applies to a
//! book.
#![no_main]

use engine::OrderBook;
use gateway::{RawRoute, command_from_raw};
use libfuzzer_sys::fuzz_target;

// Input: one byte choosing the route, the query string, a newline, the body.
fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let route = match route % 3 {
        0 => RawRoute::NewOrder,
        1 => RawRoute::Cancel,
        _ => RawRoute::Amend,
    };
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let pairs = [exchange_fuzz::pair()];
    let now = exchange_fuzz::NOW_MS;
    let Ok(cmd) = command_from_raw(&pairs, route, query, "application/json", body, now) else {
        return;
    };
    let bytes = proto::encode(&cmd).expect("a command encodes");
    assert_eq!(proto::decode(&bytes), Ok(cmd));
    let mut book = OrderBook::new(pairs[0].clone()).expect("a valid pair");
    let events = book.apply_one(&cmd);
    assert!(!events.is_empty());
});
