//! Each payload against the example of Binance's `web-socket-streams.md`:
//! the same field names, in the same order, with values of the same JSON
//! types (as `rest/shapes.rs` checks the REST answers).

use std::sync::Arc;

use commandlog::{EventRecord, Observer};
use proto::{BookDelta, OrderId, OrderSize, Symbol, Timestamp, TradeId, UserId};
use serde_json::{Value, json};

use super::*;

/// The field names of an object, in order, and a JSON type per value,
/// nested objects described the same way.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Array(m.iter().map(|(k, v)| json!([k, shape(v)])).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// Keeps the field order of `text` while parsing it: `serde_json`'s map
/// may sort keys, so the order is read from the text itself.
fn ordered_shape(text: &str) -> Value {
    let mut de = serde_json::Deserializer::from_str(text);
    let v: OrderedValue = serde::Deserialize::deserialize(&mut de).expect("JSON");
    v.0
}

/// A JSON value whose objects are shaped as they are read, in order.
struct OrderedValue(Value);

impl<'de> serde::Deserialize<'de> for OrderedValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<OrderedValue, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, OrderedValue>()? {
                    out.push(json!([k, v.0]));
                }
                Ok(OrderedValue(Value::Array(out)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<OrderedValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<OrderedValue>()? {
                    out.push(v.0);
                }
                out.truncate(1);
                Ok(OrderedValue(Value::Array(out)))
            }
            fn visit_str<E>(self, _: &str) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("string")))
            }
            fn visit_string<E>(self, _: String) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("string")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("number")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("number")))
            }
            fn visit_bool<E>(self, _: bool) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("bool")))
            }
            fn visit_unit<E>(self) -> Result<OrderedValue, E> {
                Ok(OrderedValue(json!("null")))
            }
        }
        d.deserialize_any(V)
    }
}

fn pair() -> PairConfig {
    PairConfig {
        price_scale: 2,
        qty_scale: 4,
        ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
    }
}

fn event(seq: u64, taker: u64, price: u64, ns: u64) -> Event {
    Event {
        pair: pair().symbol,
        seq: Seq(seq),
        timestamp: Timestamp(ns),
        body: EventBody::Trade(Trade {
            trade_id: TradeId(seq),
            price: Price(price),
            qty: Qty(100),
            taker_side: Side::Sell,
            maker_order_id: OrderId(1),
            maker_user: UserId(1),
            maker_remaining: Qty(0),
            taker_order_id: OrderId(taker),
            taker_user: UserId(2),
            taker_remaining: OrderSize::Base(Qty(0)),
        }),
    }
}

fn delta(seq: u64, side: Side, price: u64, qty: u64) -> Event {
    Event {
        pair: pair().symbol,
        seq: Seq(seq),
        timestamp: Timestamp(1_700_000_000_000_000_000),
        body: EventBody::BookDelta(BookDelta {
            side,
            price: Price(price),
            qty: Qty(qty),
        }),
    }
}

/// The texts published for `names` after `records`.
fn published(names: &[&str], records: Vec<Vec<Event>>) -> Vec<(String, String)> {
    let market = MarketData::new(&[pair()], 256);
    for n in names {
        market.topics().watch(&market.topics().parse(n).unwrap());
    }
    let mut rx = market.subscribe();
    for events in records {
        market.on_record(&Arc::new(EventRecord {
            pair: pair().symbol,
            position: 1,
            events,
        }));
    }
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|m| match m {
            StreamMessage::Market(p) => Some((p.topic.to_string(), p.raw().to_string())),
            StreamMessage::User { .. } => None,
        })
        .collect()
}

#[test]
fn trade_is_binances() {
    let doc = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
    let got = published(&["btceur@trade"], vec![vec![event(4, 9, 10_000, 5)]]);
    assert_eq!(ordered_shape(&got[0].1), ordered_shape(doc));
    assert_eq!(
        got[0].1,
        r#"{"e":"trade","E":0,"s":"BTCEUR","t":4,"p":"100.00","q":"0.0100","T":0,"m":true,"M":true}"#
    );
}

/// Fills of one taker at one price and time make one aggregate; another
/// taker, price or time starts the next, as the store groups them.
#[test]
fn agg_trade_is_binances_and_groups_as_the_store() {
    let doc = r#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#;
    let ms = 1_700_000_000_123_000_000;
    let events = vec![
        event(2, 9, 10_000, ms),
        delta(3, Side::Buy, 10_000, 0),
        event(4, 9, 10_000, ms),
        event(5, 9, 9_900, ms),
        event(6, 8, 9_900, ms),
        event(7, 8, 9_900, ms + 1_000_000),
    ];
    let got = published(&["btceur@aggTrade"], vec![events]);
    assert_eq!(ordered_shape(&got[0].1), ordered_shape(doc));
    let ids: Vec<(u64, u64, u64, String)> = got
        .iter()
        .map(|(_, t)| {
            let v: Value = serde_json::from_str(t).unwrap();
            let n = |k: &str| v[k].as_u64().unwrap();
            (n("a"), n("f"), n("l"), v["q"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        ids,
        [
            (2, 2, 4, "0.0200".to_string()),
            (5, 5, 5, "0.0100".to_string()),
            (6, 6, 6, "0.0100".to_string()),
            (7, 7, 7, "0.0100".to_string()),
        ]
    );
}

/// Diffs chain (`U` = previous `u` + 1) across records that changed no
/// level; partial books and the book ticker follow the view.
#[test]
fn depth_partial_depth_and_book_ticker_are_binances() {
    let diff_doc = r#"{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#;
    let partial_doc = r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#;
    let book_doc = r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
    let names = ["btceur@depth@100ms", "btceur@depth5", "btceur@bookTicker"];
    let got = published(
        &names,
        vec![
            vec![
                delta(1, Side::Buy, 9_900, 10),
                delta(2, Side::Sell, 10_100, 20),
            ],
            // No level changed: nothing, and the next diff covers it.
            vec![event(3, 9, 10_000, 0)],
            vec![delta(4, Side::Buy, 9_800, 5)],
        ],
    );
    let of = |topic: &str| -> Vec<&String> {
        got.iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, m)| m)
            .collect()
    };
    let diffs = of("btceur@depth@100ms");
    assert_eq!(ordered_shape(diffs[0]), ordered_shape(diff_doc));
    let ranges: Vec<(u64, u64)> = diffs
        .iter()
        .map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(ranges, [(1, 2), (3, 4)]);
    let partial = of("btceur@depth5");
    assert_eq!(ordered_shape(partial[0]), ordered_shape(partial_doc));
    assert_eq!(
        partial[1].as_str(),
        r#"{"lastUpdateId":4,"bids":[["99.00","0.0010"],["98.00","0.0005"]],"asks":[["101.00","0.0020"]]}"#
    );
    // The second record left the best levels alone: one book ticker each
    // for the first (both sides new); none for the bid added below the best.
    let book = of("btceur@bookTicker");
    assert_eq!(ordered_shape(book[0]), ordered_shape(book_doc));
    assert_eq!(
        book,
        [r#"{"u":2,"s":"BTCEUR","b":"99.00","B":"0.0010","a":"101.00","A":"0.0020"}"#]
    );
    // Nobody watched `@depth`: none was made.
    assert!(of("btceur@depth").is_empty());
}

#[test]
fn the_combined_form_wraps_the_raw_payload_once() {
    let r = super::super::Registry::new(&[pair()]);
    let p = Published::new(r.parse("btceur@depth5@100ms").unwrap(), r#"{"x":1}"#.into());
    assert_eq!(
        p.combined().as_str(),
        r#"{"stream":"btceur@depth5@100ms","data":{"x":1}}"#
    );
    // The same bytes, not a copy.
    assert_eq!(
        p.combined().as_str().as_ptr(),
        p.combined().as_str().as_ptr()
    );
    assert_eq!(p.raw().as_str(), r#"{"x":1}"#);
}

#[test]
fn kline_is_binances() {
    let doc = r#"{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}"#;
    let row = json!([
        60_000, "1.00", "3.00", "0.50", "2.00", "0.5000", 119_999, "1.00", 2, "0.2500", "0.50", "0"
    ]);
    let topic = Topic::Kline(pair().symbol, store::Interval::M1);
    let got = kline_text(topic, &row, (Some(Seq(7)), Some(Seq(9))), true, 120_001).unwrap();
    assert_eq!(ordered_shape(&got), ordered_shape(doc));
    assert_eq!(
        got,
        r#"{"e":"kline","E":120001,"s":"BTCEUR","k":{"t":60000,"T":119999,"s":"BTCEUR","i":"1m","f":7,"L":9,"o":"1.00","c":"2.00","h":"3.00","l":"0.50","v":"0.5000","n":2,"x":true,"q":"1.00","V":"0.2500","Q":"0.50","B":"0"}}"#
    );
    // A candle without trades has no ids: -1, as the REST tickers say.
    let flat = kline_text(topic, &row, (None, None), false, 1).unwrap();
    assert!(flat.contains(r#""f":-1,"L":-1"#), "{flat}");
    // A short row is no message rather than a wrong one.
    assert_eq!(kline_text(topic, &json!([1]), (None, None), false, 1), None);
}

#[test]
fn tickers_are_binances_with_rests_values() {
    let doc = r#"{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}"#;
    let mini_doc = r#"{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}"#;
    let rest = json!({
        "symbol": "BTCEUR", "priceChange": "1.00", "priceChangePercent": "1.000",
        "weightedAvgPrice": "100.50", "prevClosePrice": "99.00", "lastPrice": "101.00",
        "lastQty": "0.1000", "bidPrice": "100.00", "bidQty": "1.0000", "askPrice": "102.00",
        "askQty": "2.0000", "openPrice": "100.00", "highPrice": "101.00", "lowPrice": "100.00",
        "volume": "0.2000", "quoteVolume": "20.10", "openTime": 1, "closeTime": 2,
        "firstId": 5, "lastId": 6, "count": 2,
    });
    let rest = rest.as_object().unwrap();
    let full = ticker_text(rest, false, 3).unwrap();
    assert_eq!(ordered_shape(&full), ordered_shape(doc));
    let v: Value = serde_json::from_str(&full).unwrap();
    for (k, r) in TICKER_FIELDS {
        assert_eq!(v[k], rest[*r], "{k}");
    }
    let mini = ticker_text(rest, true, 3).unwrap();
    assert_eq!(ordered_shape(&mini), ordered_shape(mini_doc));
    assert_eq!(
        mini,
        r#"{"e":"24hrMiniTicker","E":3,"s":"BTCEUR","c":"101.00","o":"100.00","h":"101.00","l":"100.00","v":"0.2000","q":"20.10"}"#
    );
    // A REST entry missing a field makes no message.
    let mut short = rest.clone();
    short.remove("volume");
    assert_eq!(ticker_text(&short, true, 3), None);
}

#[test]
fn shapes_compare_names_order_and_types() {
    // The helper itself: a reordered or retyped field is a different shape.
    assert_ne!(
        ordered_shape(r#"{"a":1,"b":"x"}"#),
        ordered_shape(r#"{"b":"x","a":1}"#)
    );
    assert_ne!(ordered_shape(r#"{"a":1}"#), ordered_shape(r#"{"a":"1"}"#));
    assert_eq!(shape(&json!({"a": [1, 2]})), json!([["a", ["number"]]]));
}
