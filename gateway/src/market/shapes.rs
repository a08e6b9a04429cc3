//! The user data stream's events against Binance's documented examples
//! (`testnet/user-data-stream.md`, "Last Updated: 2024-11-27"), with the
//! comparison of `rest/shapes.rs`: same keys, same JSON types, decimals
//! where Binance writes decimals. Conditional fields are compared only
//! where their condition holds (`W` for an order working on the book).

use std::sync::Arc;

use commandlog::{AccountUpdate, EventRecord, Observer};
use proto::{
    Accepted, CancelReason, Canceled, ClientOrderId, EventBody, OrderId, OrderSize, OrderType,
    Price, Qty, Side, TimeInForce, Trade, TradeId, UserId,
};
use serde_json::Value;

use super::MarketData;
use super::tests::{event, pair, watching_users};
use crate::rest::shapes::{check, doc};

const EXECUTION_REPORT: &str = r#"{
  "e": "executionReport",        // Event type
  "E": 1499405658658,            // Event time
  "s": "ETHBTC",                 // Symbol
  "c": "mUvoqJxFIILMdfAW5iGSOW", // Client order ID
  "S": "BUY",                    // Side
  "o": "LIMIT",                  // Order type
  "f": "GTC",                    // Time in force
  "q": "1.00000000",             // Order quantity
  "p": "0.10264410",             // Order price
  "P": "0.00000000",             // Stop price
  "F": "0.00000000",             // Iceberg quantity
  "g": -1,                       // OrderListId
  "C": "",                       // Original client order ID; This is the ID of the order being canceled
  "x": "NEW",                    // Current execution type
  "X": "NEW",                    // Current order status
  "r": "NONE",                   // Order reject reason; will be an error code.
  "i": 4293153,                  // Order ID
  "l": "0.00000000",             // Last executed quantity
  "z": "0.00000000",             // Cumulative filled quantity
  "L": "0.00000000",             // Last executed price
  "n": "0",                      // Commission amount
  "N": null,                     // Commission asset
  "T": 1499405658657,            // Transaction time
  "t": -1,                       // Trade ID
  "v": 3,                        // Prevented Match Id; This is only visible if the order expired due to STP
  "I": 8641984,                  // Ignore
  "w": true,                     // Is the order on the book?
  "m": false,                    // Is this trade the maker side?
  "M": false,                    // Ignore
  "O": 1499405658657,            // Order creation time
  "Z": "0.00000000",             // Cumulative quote asset transacted quantity
  "Y": "0.00000000",             // Last quote asset transacted quantity (i.e. lastPrice * lastQty)
  "Q": "0.00000000",             // Quote Order Quantity
  "W": 1499405658657,            // Working Time; This is only visible if the order has been placed on the book.
  "V": "NONE"                    // SelfTradePreventionMode
}"#;

const ACCOUNT_POSITION: &str = r#"{
  "e": "outboundAccountPosition", // Event type
  "E": 1564034571105,             // Event Time
  "u": 1564034571073,             // Time of last account update
  "B": [                          // Balances Array
    {
      "a": "ETH",                 // Asset
      "f": "10000.000000",        // Free
      "l": "0.000000"             // Locked
    }
  ]
}"#;

const BALANCE_UPDATE: &str = r#"{
  "e": "balanceUpdate",         // Event Type
  "E": 1573200697110,           // Event Time
  "a": "BTC",                   // Asset
  "d": "100.00000000",          // Balance Delta
  "T": 1573200697068            // Clear Time
}"#;

const LISTEN_KEY_EXPIRED: &str = r#"{
  "e": "listenKeyExpired",  // Event type
  "E": "1699596037418",     // Event time
  "listenKey": "OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8"
}"#;

/// `v` appears only for an order that STP ended; `W` only for one that
/// works on the book.
const NO_STP: (&str, &str) = ("$.v", "only for an order that expired by STP");
const NOT_WORKING: (&str, &str) = ("$.W", "only for an order placed on the book");

fn accepted(id: u64, user: u64, side: Side, order_type: OrderType, tif: TimeInForce) -> EventBody {
    EventBody::Accepted(Accepted {
        order_id: OrderId(id),
        client_order_id: ClientOrderId::new("c-1").ok(),
        user: UserId(user),
        side,
        order_type,
        time_in_force: tif,
        post_only: false,
        size: OrderSize::Base(Qty(300)),
        iceberg_qty: None,
        good_till: None,
        list_id: None,
    })
}

/// Every user message a record of a resting sell, a market buy that
/// fills part of it, and a cancel of the rest makes.
fn reports() -> Vec<Value> {
    let market = watching_users(MarketData::new(&[pair()], 64));
    let mut rx = market.subscribe();
    let limit = OrderType::Limit {
        price: Price(10_000),
    };
    let bodies = vec![
        accepted(1, 2, Side::Sell, limit, TimeInForce::Gtc),
        accepted(2, 1, Side::Buy, OrderType::Market, TimeInForce::Ioc),
        EventBody::Trade(Trade {
            trade_id: TradeId(3),
            price: Price(10_000),
            qty: Qty(100),
            taker_side: Side::Buy,
            maker_order_id: OrderId(1),
            maker_user: UserId(2),
            maker_remaining: Qty(200),
            taker_order_id: OrderId(2),
            taker_user: UserId(1),
            taker_remaining: OrderSize::Base(Qty(0)),
        }),
        EventBody::Canceled(Canceled {
            order_id: OrderId(1),
            client_order_id: ClientOrderId::new("c-1").ok(),
            user: UserId(2),
            side: Side::Sell,
            remaining: OrderSize::Base(Qty(200)),
            reason: CancelReason::UserRequest,
        }),
    ];
    let record = EventRecord {
        pair: pair().symbol,
        position: 1,
        events: bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| event(i as u64 + 1, b))
            .collect(),
    };
    market.on_record(&Arc::new(record));
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|m| match m {
            super::StreamMessage::User { text, .. } => serde_json::from_str(&text).ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn execution_reports_are_binances() {
    let theirs = doc(EXECUTION_REPORT);
    let got = reports();
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r["x"].as_str().unwrap_or(""), r["X"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("NEW", "NEW"),
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
            ("CANCELED", "CANCELED")
        ]
    );
    for r in &got {
        let mut known = vec![NO_STP];
        if r["o"] != "LIMIT" {
            known.push(NOT_WORKING);
        }
        if r["x"] == "TRADE" {
            known.push(("$.N", "a fill's commission asset; the example is a NEW"));
        }
        check(
            &format!("executionReport {}", r["x"]),
            r,
            &theirs,
            &[],
            &known,
        );
    }
    // The maker's fill: its totals after it, its commission asset.
    let maker = &got[2];
    assert_eq!(
        (maker["z"].as_str(), maker["Z"].as_str()),
        (Some("0.0100"), Some("1.00"))
    );
    assert_eq!(
        (maker["m"].as_bool(), maker["N"].as_str()),
        (Some(true), Some("EUR"))
    );
    // The cancel names the canceled order's client id in `C`.
    assert_eq!(got[4]["C"], "c-1");
}

#[test]
fn account_events_are_binances() {
    let market = watching_users(MarketData::new(&[pair()], 64));
    let mut rx = market.subscribe();
    market.on_account(&Arc::new(AccountUpdate {
        user: UserId(1),
        time_ns: 1_700_000_000_123_456_789,
        balances: vec![(
            accounts::AssetId(1),
            accounts::Balance {
                free: 1_500_000,
                locked: 0,
            },
        )],
        movement: Some((accounts::AssetId(1), 1_500_000)),
    }));
    let got: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|m| match m {
            super::StreamMessage::User { text, .. } => serde_json::from_str(&text).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 2);
    check("balanceUpdate", &got[0], &doc(BALANCE_UPDATE), &[], &[]);
    check(
        "outboundAccountPosition",
        &got[1],
        &doc(ACCOUNT_POSITION),
        &[],
        &[],
    );
}

#[test]
fn listen_key_expired_is_binances() {
    let ours: Value = serde_json::from_str(&crate::rest::userstream::expired_event(
        "k",
        1_700_000_000_123,
    ))
    .unwrap_or_default();
    check(
        "listenKeyExpired",
        &ours,
        &doc(LISTEN_KEY_EXPIRED),
        &[],
        &[],
    );
}

const LIST_STATUS: &str = r#"{
  "e": "listStatus",                // Event Type
  "E": 1564035303637,               // Event Time
  "s": "ETHBTC",                    // Symbol
  "g": 2,                           // OrderListId
  "c": "OCO",                       // Contingency Type
  "l": "EXEC_STARTED",              // List Status Type
  "L": "EXECUTING",                 // List Order Status
  "r": "NONE",                      // List Reject Reason
  "C": "F4QN4G8DlFATFlIUQ0cjdD",    // List Client Order ID
  "T": 1564035303625,               // Transaction Time
  "O": [                            // An array of objects
    {
      "s": "ETHBTC",                // Symbol
      "i": 17,                      // OrderId
      "c": "AJYsMjErWJesZvqlJCTUgL" // ClientOrderId
    },
    {
      "s": "ETHBTC",
      "i": 18,
      "c": "bfYPSQdLoqAJeNrOr9adzq"
    }
  ]
}"#;

/// The user messages of `records`, each a list of events, in order.
fn messages(records: Vec<Vec<EventBody>>) -> Vec<Value> {
    let market = watching_users(MarketData::new(&[pair()], 64));
    let mut rx = market.subscribe();
    let mut seq = 0;
    for (n, bodies) in records.into_iter().enumerate() {
        let events = bodies
            .into_iter()
            .map(|b| {
                seq += 1;
                event(seq, b)
            })
            .collect();
        market.on_record(&Arc::new(EventRecord {
            pair: pair().symbol,
            position: n as u64 + 1,
            events,
        }));
    }
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|m| match m {
            super::StreamMessage::User { text, .. } => serde_json::from_str(&text).ok(),
            _ => None,
        })
        .collect()
}

/// The records of an OCO placed (a sell limit maker iceberg above, a
/// trailing stop-limit below), then of its stop firing and the maker
/// ending as its sibling.
fn oco_records() -> Vec<Vec<EventBody>> {
    use proto::{ConditionalKind, ListAccepted, ListDone, ListKind, Trigger, Triggered};
    let in_list = |id, order_type, post_only, iceberg| {
        let EventBody::Accepted(a) = accepted(id, 1, Side::Sell, order_type, TimeInForce::Gtc)
        else {
            unreachable!("an Accepted")
        };
        EventBody::Accepted(Accepted {
            client_order_id: ClientOrderId::new(&format!("leg-{id}")).ok(),
            post_only,
            iceberg_qty: iceberg,
            list_id: Some(OrderId(10)),
            ..a
        })
    };
    let stop = OrderType::Conditional {
        kind: ConditionalKind::StopLoss,
        limit: Some(Price(8_900)),
        trigger: Trigger {
            stop_price: Some(Price(9_000)),
            trailing_delta: Some(50),
        },
    };
    let maker = OrderType::Limit {
        price: Price(11_000),
    };
    let list = ClientOrderId::new("my-oco").ok();
    vec![
        vec![
            EventBody::ListAccepted(ListAccepted {
                list_id: OrderId(10),
                client_list_id: list,
                user: UserId(1),
                kind: ListKind::Oco,
                orders: [OrderId(12), OrderId(11)],
            }),
            in_list(12, stop, false, None),
            in_list(11, maker, true, Some(Qty(100))),
        ],
        vec![
            EventBody::Triggered(Triggered {
                order_id: OrderId(12),
                client_order_id: ClientOrderId::new("leg-12").ok(),
                user: UserId(1),
                side: Side::Sell,
                price: Price(9_000),
            }),
            EventBody::Canceled(Canceled {
                order_id: OrderId(11),
                client_order_id: ClientOrderId::new("leg-11").ok(),
                user: UserId(1),
                side: Side::Sell,
                remaining: OrderSize::Base(Qty(300)),
                reason: CancelReason::ListSibling,
            }),
            EventBody::ListDone(ListDone {
                list_id: OrderId(10),
                client_list_id: list,
                user: UserId(1),
            }),
        ],
    ]
}

/// The OCO of [`oco_records`] as its owner's stream shows it.
#[test]
fn list_orders_and_list_statuses_are_binances() {
    let got = messages(oco_records());
    let kinds: Vec<(&str, &str, i64)> = got
        .iter()
        .map(|m| {
            let kind = m["x"].as_str().or(m["l"].as_str()).unwrap_or("");
            let status = m["X"].as_str().or(m["L"].as_str()).unwrap_or("");
            (kind, status, m["i"].as_i64().unwrap_or(-1))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("NEW", "NEW", 12),
            ("NEW", "NEW", 11),
            ("EXEC_STARTED", "EXECUTING", -1),
            ("NEW", "NEW", 12),
            ("EXPIRED", "EXPIRED", 11),
            ("ALL_DONE", "ALL_DONE", -1),
        ]
    );
    let trailing = [
        ("$.d", "a trailing stop's delta"),
        ("$.D", "a trailing stop's trailing time"),
    ];
    let waiting = &got[0];
    assert_eq!(
        (&waiting["o"], &waiting["P"], &waiting["g"]),
        (
            &Value::from("STOP_LOSS_LIMIT"),
            &Value::from("90.00"),
            &Value::from(10)
        )
    );
    assert_eq!(
        (&waiting["d"], &waiting["D"]),
        (&Value::from(50), &Value::from(-1))
    );
    assert_eq!(waiting["w"], false, "it waits off the book");
    let mut known = vec![NO_STP, NOT_WORKING];
    known.extend(trailing);
    check(
        "executionReport of a waiting stop",
        waiting,
        &doc(EXECUTION_REPORT),
        &[],
        &known,
    );
    let maker = &got[1];
    assert_eq!(
        (&maker["o"], &maker["F"]),
        (&Value::from("LIMIT_MAKER"), &Value::from("0.0100"))
    );
    check(
        "executionReport of a maker",
        maker,
        &doc(EXECUTION_REPORT),
        &[],
        &[NO_STP],
    );
    let fired = &got[3];
    assert_eq!(
        (&fired["w"], fired["W"].is_u64()),
        (&Value::from(true), true),
        "it works now"
    );
    let known = [NO_STP, trailing[0], trailing[1]];
    check(
        "executionReport of a fired stop",
        fired,
        &doc(EXECUTION_REPORT),
        &[],
        &known,
    );
    for status in [&got[2], &got[5]] {
        check("listStatus", status, &doc(LIST_STATUS), &[], &[]);
        assert_eq!(
            (&status["g"], &status["C"]),
            (&Value::from(10), &Value::from("my-oco"))
        );
        let legs: Vec<&Value> = status["O"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["c"])
            .collect();
        assert_eq!(legs, ["leg-12", "leg-11"]);
    }
}
