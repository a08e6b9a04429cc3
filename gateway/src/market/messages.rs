//! The stream messages as typed structs: one per message shape, so each
//! message's fields can be read in one place.
//!
//! Fields are declared in the byte order of their JSON names (upper case
//! before lower case). That is the order the hand-built `json!` maps these
//! replaced wrote them in, so the bytes on the wire did not change; the
//! test in `market.rs` pins them.

use proto::{Event, PairConfig, Price, Qty, Side, Symbol, Trade};
use serde::Serialize;

/// `[["price", "qty"], ...]` at the pair's scales.
pub(crate) type Levels = Vec<[String; 2]>;

/// Price levels as decimal strings at the pair's scales.
pub(crate) fn levels(levels: &[(Price, Qty)], cfg: &PairConfig) -> Levels {
    levels
        .iter()
        .map(|(p, q)| [p.to_decimal(cfg.price_scale), q.to_decimal(cfg.qty_scale)])
        .collect()
}

/// Milliseconds since the Unix epoch, as the messages carry time.
pub(crate) fn ms(ts: proto::Timestamp) -> u64 {
    ts.0 / 1_000_000
}

/// `<pair>@depth`: the levels a record changed, each at its new total
/// (zero removes it). `U`..=`u` are the seqs it covers.
#[derive(Debug, Serialize)]
pub(crate) struct DepthUpdate<'a> {
    #[serde(rename = "E")]
    pub(crate) event_time: u64,
    #[serde(rename = "U")]
    pub(crate) first_seq: u64,
    #[serde(rename = "a")]
    pub(crate) asks: Levels,
    #[serde(rename = "b")]
    pub(crate) bids: Levels,
    #[serde(rename = "e")]
    pub(crate) event: &'static str,
    #[serde(rename = "s")]
    pub(crate) symbol: &'a str,
    #[serde(rename = "u")]
    pub(crate) last_seq: u64,
}

/// `<pair>@trade`: one trade, `m` true when the buyer was the maker.
#[derive(Debug, Serialize)]
pub(crate) struct TradeMessage<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "q")]
    qty: String,
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "t")]
    trade_id: u64,
}

impl<'a> TradeMessage<'a> {
    pub(crate) fn new(e: &Event, t: &Trade, symbol: &'a Symbol, cfg: &PairConfig) -> Self {
        TradeMessage {
            event_time: ms(e.timestamp),
            trade_time: ms(e.timestamp),
            event: "trade",
            buyer_is_maker: t.taker_side == Side::Sell,
            price: t.price.to_decimal(cfg.price_scale),
            qty: t.qty.to_decimal(cfg.qty_scale),
            symbol: symbol.as_str(),
            trade_id: t.trade_id.0,
        }
    }
}
