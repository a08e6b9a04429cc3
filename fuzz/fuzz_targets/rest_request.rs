//! The REST request path from raw bytes to a command, as the `POST
//! /api/v3/order`, `DELETE /api/v3/order` and `PUT
//! /api/v3/order/amend/keepPriority` handlers parse it (Binance's
//! parameters, in the query string and a form body): never a panic; a
//! command it makes is for the fuzzed pair and its user, passes the
//! engine's checks, survives the codec, and applies to a book.
#![no_main]

use engine::OrderBook;
use gateway::{RawRoute, command_from_raw};
use libfuzzer_sys::fuzz_target;

/// What the `Content-Type` header says, chosen by the input: a form (what
/// clients send), none (a body then still reads as a form), or JSON (which
/// the gateway refuses with -1132).
const CONTENT_TYPES: [&str; 3] = ["application/x-www-form-urlencoded", "", "application/json"];

// Input: one byte choosing the route (its value mod 3) and the content type
// (its value / 3 mod 3), the query string, a newline, the body.
fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let route = match choice % 3 {
        0 => RawRoute::NewOrder,
        1 => RawRoute::Cancel,
        _ => RawRoute::Amend,
    };
    let content_type = CONTENT_TYPES[usize::from(choice / 3 % 3)];
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let pairs = [exchange_fuzz::pair()];
    let now = exchange_fuzz::NOW_MS;
    let Ok(cmd) = command_from_raw(&pairs, route, query, content_type, body, now) else {
        return;
    };
    assert_eq!(cmd.pair, pairs[0].symbol);
    assert_eq!(cmd.user, proto::UserId(1));
    assert!(
        content_type != "application/json" || body.is_empty(),
        "a JSON body is refused"
    );
    let bytes = proto::encode(&cmd).expect("a command encodes");
    assert_eq!(proto::decode(&bytes).as_ref(), Ok(&cmd));
    let mut book = OrderBook::new(pairs[0].clone()).expect("a valid pair");
    let events = book.apply_one(&cmd);
    assert!(!events.is_empty());
});
