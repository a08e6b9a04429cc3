//! Binance's market stream messages (`web-socket-streams.md`), field by
//! field as its examples, symbols as `BTCEUR`.
//!
//! Each message is encoded once, when it is made, into a [`Published`]
//! shared by every subscriber; its combined form (`{"stream":..,"data":..}`)
//! is made the first time a combined subscriber needs it, once too. The
//! observer builds only the messages of topics someone watches (see
//! [`super::topic::Registry`]).
//!
//! Real-time messages come from the engine's records: `trade`, `aggTrade`,
//! diff and partial depth, `bookTicker`. Klines and tickers come from the
//! store, the source of truth for REST's `klines` and `ticker/24hr`, by the
//! periodic task in `ws/periodic.rs`, which formats them with REST's own
//! functions so both agree.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use proto::{Event, EventBody, PairConfig, Price, Qty, Seq, Side, Trade};
use serde::Serialize;
use serde_json::{Map, Value};

use super::messages::{Levels, levels, ms};
use super::topic::{PARTIAL_LEVELS, Speed, Topic};
use super::{MarketData, PairView, StreamMessage};

/// One market message of one topic, encoded once for all its subscribers.
#[derive(Debug)]
pub struct Published {
    /// The topic it belongs to.
    pub topic: Topic,
    /// The raw payload, as `/ws` sends it.
    raw: Utf8Bytes,
    /// `{"stream":"<name>","data":<raw>}`, made on first use.
    combined: OnceLock<Utf8Bytes>,
}

impl Published {
    /// `raw` as a message of `topic`.
    pub fn new(topic: Topic, raw: String) -> Self {
        Published {
            topic,
            raw: Utf8Bytes::from(raw),
            combined: OnceLock::new(),
        }
    }

    /// The payload (a cheap, shared copy).
    pub fn raw(&self) -> Utf8Bytes {
        self.raw.clone()
    }

    /// The payload wrapped for combined streams. Stream names are plain
    /// ASCII without quotes or backslashes, so they need no escaping.
    pub fn combined(&self) -> Utf8Bytes {
        self.combined
            .get_or_init(|| {
                let text = format!(
                    r#"{{"stream":"{}","data":{}}}"#,
                    self.topic,
                    self.raw.as_str()
                );
                Utf8Bytes::from(text)
            })
            .clone()
    }
}

/// `<symbol>@depth`: the levels a record changed, each at its new total
/// (zero removes it). `U`..=`u` are the seqs it covers.
#[derive(Debug, Serialize)]
pub(crate) struct DepthUpdate<'a> {
    #[serde(rename = "e")]
    pub(crate) event: &'static str,
    #[serde(rename = "E")]
    pub(crate) event_time: u64,
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    #[serde(rename = "U")]
    pub(crate) first_seq: u64,
    #[serde(rename = "u")]
    pub(crate) last_seq: u64,
    #[serde(rename = "b")]
    pub(crate) bids: &'a Levels,
    #[serde(rename = "a")]
    pub(crate) asks: &'a Levels,
}

/// `<symbol>@depth<N>`: the top `N` levels of each side after `u`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialDepth {
    last_update_id: u64,
    bids: Levels,
    asks: Levels,
}

/// `<symbol>@bookTicker`: the best levels after seq `u`; an empty side is
/// 0 at 0, as REST's `ticker/bookTicker` writes it.
#[derive(Debug, Serialize)]
struct BookTicker<'a> {
    u: u64,
    s: &'a str,
    b: String,
    #[serde(rename = "B")]
    bid_qty: String,
    a: String,
    #[serde(rename = "A")]
    ask_qty: String,
}

/// `<symbol>@trade`: one fill; `t` is its event's seq, REST's trade id
/// (the engine's `trade_id` is the same number).
#[derive(Debug, Serialize)]
pub(crate) struct TradeMessage<'a> {
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "t")]
    trade_id: u64,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "q")]
    qty: String,
    #[serde(rename = "T")]
    trade_time: u64,
    /// True when the buyer was the maker.
    #[serde(rename = "m")]
    buyer_is_maker: bool,
    #[serde(rename = "M")]
    ignore: bool,
}

impl<'a> TradeMessage<'a> {
    pub(crate) fn new(e: &Event, t: &Trade, symbol: &'a str, cfg: &PairConfig) -> Self {
        TradeMessage {
            event: "trade",
            event_time: ms(e.timestamp),
            symbol,
            trade_id: e.seq.0,
            price: t.price.to_decimal(cfg.price_scale),
            qty: t.qty.to_decimal(cfg.qty_scale),
            trade_time: ms(e.timestamp),
            buyer_is_maker: t.taker_side == Side::Sell,
            ignore: true,
        }
    }
}

/// `<symbol>@aggTrade`: consecutive fills of one taker order at one price
/// and time, as the store groups them for REST's `aggTrades`; `a` is the
/// first fill's id, as there.
#[derive(Debug, Serialize)]
struct AggTradeMessage<'a> {
    e: &'static str,
    #[serde(rename = "E")]
    event_time: u64,
    s: &'a str,
    a: u64,
    p: String,
    q: String,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
    #[serde(rename = "M")]
    ignore: bool,
}

/// Fills of one aggregate, while they are gathered.
#[derive(Debug, Clone, Copy)]
struct Aggregate {
    first: Seq,
    last: Seq,
    trade: Trade,
    qty: Qty,
    timestamp: proto::Timestamp,
}

impl Aggregate {
    fn start(e: &Event, t: &Trade) -> Self {
        Aggregate {
            first: e.seq,
            last: e.seq,
            trade: *t,
            qty: t.qty,
            timestamp: e.timestamp,
        }
    }

    /// Adds the fill when it belongs here (the store's rule); false if not,
    /// or if the sum would pass 2^64 (then it starts an aggregate of its
    /// own, which the store would refuse as corrupt anyway).
    fn take(&mut self, e: &Event, t: &Trade) -> bool {
        let same = t.taker_order_id == self.trade.taker_order_id
            && t.price == self.trade.price
            && e.timestamp == self.timestamp;
        match self.qty.0.checked_add(t.qty.0) {
            Some(q) if same => {
                self.qty = Qty(q);
                self.last = e.seq;
                true
            }
            _ => false,
        }
    }

    fn message<'a>(&self, symbol: &'a str, cfg: &PairConfig) -> AggTradeMessage<'a> {
        AggTradeMessage {
            e: "aggTrade",
            event_time: ms(self.timestamp),
            s: symbol,
            a: self.first.0,
            p: self.trade.price.to_decimal(cfg.price_scale),
            q: self.qty.to_decimal(cfg.qty_scale),
            f: self.first.0,
            l: self.last.0,
            trade_time: ms(self.timestamp),
            m: self.trade.taker_side == Side::Sell,
            ignore: true,
        }
    }
}

/// The aggregates of a record's fills, in order. A taker order's fills
/// are all in the record of its command, so an aggregate never spans two
/// records (that would take two commands of one order stamped with the
/// same nanosecond).
fn aggregates(events: &[Event]) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    for e in events {
        let EventBody::Trade(t) = &e.body else {
            continue;
        };
        if let Some(last) = out.last_mut()
            && last.take(e, t)
        {
            continue;
        }
        out.push(Aggregate::start(e, t));
    }
    out
}

/// A removed level's quantity as Binance writes it. Clients compare it as
/// text (python-binance's depth cache deletes a level only on exactly this
/// string), so it is the same whatever the pair's scale.
const REMOVED: &str = "0.00000000";

/// A diff's levels at the pair's scales, a removed one's quantity
/// [`REMOVED`].
fn diff_levels(changed: &[(Price, Qty)], cfg: &PairConfig) -> Levels {
    let mut out = levels(changed, cfg);
    for (level, (_, q)) in out.iter_mut().zip(changed) {
        if q.is_zero() {
            level[1] = REMOVED.to_string();
        }
    }
    out
}

/// A message as JSON text. The messages are plain structs of strings,
/// numbers and booleans, so serializing them cannot fail; `None` would be a
/// bug, and the message is then dropped rather than sent malformed.
pub(super) fn encode(msg: &impl Serialize) -> Option<String> {
    serde_json::to_string(msg).ok()
}

/// The best level of a side, 0 at 0 when it is empty.
fn best_text(level: Option<(Price, Qty)>, cfg: &PairConfig) -> (String, String) {
    let (p, q) = level.unwrap_or_default();
    (p.to_decimal(cfg.price_scale), q.to_decimal(cfg.qty_scale))
}

/// What changed in the book in one record, for [`MarketData::publish_book`].
#[derive(Debug)]
pub(super) struct BookChange<'a> {
    pub(super) bids: &'a [(Price, Qty)],
    pub(super) asks: &'a [(Price, Qty)],
    /// The `U` of the diff: the previous diff's `u` + 1.
    pub(super) first: Seq,
    /// The record's last event.
    pub(super) last: &'a Event,
    /// Whether the best bid or ask changed.
    pub(super) best_changed: bool,
}

impl MarketData {
    /// Publishes `m` as a message of `topic` when someone watches it.
    fn publish_if_watched(&self, topic: Topic, m: impl FnOnce() -> Option<String>) {
        if self.topics.watched(&topic)
            && let Some(raw) = m()
        {
            self.publish(StreamMessage::Market(Arc::new(Published::new(topic, raw))));
        }
    }

    /// The diff, partial depth and book ticker messages of a record that
    /// changed levels of `v`, under the view's lock (see `market.rs`).
    pub(super) fn publish_book(&self, cfg: &PairConfig, v: &PairView, c: &BookChange<'_>) {
        let pair = cfg.symbol;
        let symbol: &str = &v.name;
        let last_seq = c.last.seq.0;
        let mut diff = None;
        for speed in [Speed::Second, Speed::Fast] {
            self.publish_if_watched(Topic::Depth(pair, speed), || {
                let (bids, asks) = diff
                    .get_or_insert_with(|| (diff_levels(c.bids, cfg), diff_levels(c.asks, cfg)));
                encode(&DepthUpdate {
                    event: "depthUpdate",
                    event_time: ms(c.last.timestamp),
                    symbol,
                    first_seq: c.first.0,
                    last_seq,
                    bids,
                    asks,
                })
            });
        }
        for n in PARTIAL_LEVELS {
            for speed in [Speed::Second, Speed::Fast] {
                self.publish_if_watched(Topic::Partial(pair, n, speed), || {
                    let top = |side: Vec<(Price, Qty)>| levels(&side, cfg);
                    encode(&PartialDepth {
                        last_update_id: last_seq,
                        bids: top(v
                            .bids
                            .iter()
                            .rev()
                            .take(n.into())
                            .map(|(p, q)| (*p, *q))
                            .collect()),
                        asks: top(v
                            .asks
                            .iter()
                            .take(n.into())
                            .map(|(p, q)| (*p, *q))
                            .collect()),
                    })
                });
            }
        }
        if c.best_changed {
            self.publish_if_watched(Topic::BookTicker(pair), || {
                let (b, bid_qty) = best_text(v.best_bid(), cfg);
                let (a, ask_qty) = best_text(v.best_ask(), cfg);
                encode(&BookTicker {
                    u: last_seq,
                    s: symbol,
                    b,
                    bid_qty,
                    a,
                    ask_qty,
                })
            });
        }
    }

    /// The `trade` and `aggTrade` messages of a record's fills.
    pub(super) fn publish_trades(&self, cfg: &PairConfig, symbol: &str, events: &[Event]) {
        let pair = cfg.symbol;
        let (trades, aggs) = (Topic::Trade(pair), Topic::AggTrade(pair));
        if !self.topics.watched(&trades) && !self.topics.watched(&aggs) {
            return;
        }
        for e in events {
            if let EventBody::Trade(t) = &e.body {
                self.publish_if_watched(trades, || encode(&TradeMessage::new(e, t, symbol, cfg)));
            }
        }
        if self.topics.watched(&aggs) {
            for a in aggregates(events) {
                self.publish_if_watched(aggs, || encode(&a.message(symbol, cfg)));
            }
        }
    }
}

/// A JSON object of `fields`, in their order; the values are JSON text
/// already. Written by hand so the fields come in the doc's order whatever
/// order `serde_json`'s maps keep; the keys are plain ASCII.
fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!(r#""{k}":{v}"#))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `<symbol>@kline_<interval>`: a candle of REST's `klines`, from its row
/// (`kline_row`'s positions) and its first and last trade ids, and whether
/// its period is over (`x`).
pub(crate) fn kline_text(
    topic: Topic,
    row: &Value,
    ids: (Option<Seq>, Option<Seq>),
    closed: bool,
    now_ms: u64,
) -> Option<String> {
    let Topic::Kline(pair, interval) = topic else {
        return None;
    };
    let at = |i: usize| row.get(i).map(Value::to_string);
    let id = |s: Option<Seq>| s.map_or(-1, |s| i64::try_from(s.0).unwrap_or(i64::MAX));
    let symbol = Value::from(pair.joined()).to_string();
    let k = object(&[
        ("t", at(0)?),
        ("T", at(6)?),
        ("s", symbol.clone()),
        ("i", Value::from(interval.as_str()).to_string()),
        ("f", id(ids.0).to_string()),
        ("L", id(ids.1).to_string()),
        ("o", at(1)?),
        ("c", at(4)?),
        ("h", at(2)?),
        ("l", at(3)?),
        ("v", at(5)?),
        ("n", at(8)?),
        ("x", closed.to_string()),
        ("q", at(7)?),
        ("V", at(9)?),
        ("Q", at(10)?),
        ("B", r#""0""#.into()),
    ]);
    Some(object(&[
        ("e", r#""kline""#.into()),
        ("E", now_ms.to_string()),
        ("s", symbol),
        ("k", k),
    ]))
}

/// `<symbol>@ticker`'s fields and the REST `ticker/24hr` fields they are.
const TICKER_FIELDS: &[(&str, &str)] = &[
    ("p", "priceChange"),
    ("P", "priceChangePercent"),
    ("w", "weightedAvgPrice"),
    ("x", "prevClosePrice"),
    ("c", "lastPrice"),
    ("Q", "lastQty"),
    ("b", "bidPrice"),
    ("B", "bidQty"),
    ("a", "askPrice"),
    ("A", "askQty"),
    ("o", "openPrice"),
    ("h", "highPrice"),
    ("l", "lowPrice"),
    ("v", "volume"),
    ("q", "quoteVolume"),
    ("O", "openTime"),
    ("C", "closeTime"),
    ("F", "firstId"),
    ("L", "lastId"),
    ("n", "count"),
];

/// `<symbol>@miniTicker`'s fields and the REST fields they are.
const MINI_FIELDS: &[(&str, &str)] = &[
    ("c", "lastPrice"),
    ("o", "openPrice"),
    ("h", "highPrice"),
    ("l", "lowPrice"),
    ("v", "volume"),
    ("q", "quoteVolume"),
];

/// A ticker message from REST's `ticker/24hr` entry `rest` (the full one
/// when `mini` is false): the same values under the stream's names.
/// `None` when `rest` lacks one of them.
pub(crate) fn ticker_text(rest: &Map<String, Value>, mini: bool, now_ms: u64) -> Option<String> {
    let (event, fields) = if mini {
        ("24hrMiniTicker", MINI_FIELDS)
    } else {
        ("24hrTicker", TICKER_FIELDS)
    };
    let mut out = vec![
        ("e", Value::from(event).to_string()),
        ("E", now_ms.to_string()),
        ("s", rest.get("symbol")?.to_string()),
    ];
    for (k, r) in fields {
        out.push((k, rest.get(*r)?.to_string()));
    }
    Some(object(&out))
}

#[cfg(test)]
mod tests;
