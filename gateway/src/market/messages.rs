//! The stream messages as typed structs: one per message shape, so each
//! message's fields can be read in one place.
//!
//! Fields are declared in the byte order of their JSON names (upper case
//! before lower case). That is the order the hand-built `json!` maps these
//! replaced wrote them in, so the bytes on the wire did not change; the
//! test in `market.rs` pins them.

use accounts::Fees;
use proto::{
    Accepted, Amended, Canceled, ClientOrderId, Event, OrderSize, PairConfig, Price, Qty, Rejected,
    Side, Symbol, Trade,
};
use serde::Serialize;

use crate::money::{commission_text, rate};

/// The quote asset of `BASE-QUOTE`.
fn quote_of(symbol: &Symbol) -> &str {
    symbol.as_str().split_once('-').map_or("", |(_, q)| q)
}

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

/// A base quantity or a quote amount as `(base, quote)`: the one the order
/// is sized in as a decimal, the other null.
fn size(size: OrderSize, cfg: &PairConfig) -> (Option<String>, Option<String>) {
    match size {
        // A budget only caps the order's spend: it is sized in base.
        OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => {
            (Some(q.to_decimal(cfg.qty_scale)), None)
        }
        OrderSize::Quote(q) => (None, Some(q.to_decimal(cfg.price_scale))),
    }
}

fn cid(c: Option<ClientOrderId>) -> Option<String> {
    c.map(|c| c.as_str().to_string())
}

/// `executionReport` `x: TRADE`: one side of a trade, to that side's owner.
#[derive(Debug, Serialize)]
pub(crate) struct TradeReport<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "L")]
    price: String,
    /// The commission's asset: the pair's quote asset.
    #[serde(rename = "N")]
    commission_asset: &'a str,
    #[serde(rename = "S")]
    side: &'static str,
    #[serde(rename = "c")]
    client_order_id: Option<String>,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    #[serde(rename = "l")]
    qty: String,
    /// The open base quantity after the trade; null for a taker sized in
    /// quote.
    leaves: Option<String>,
    /// Absent on the maker's report; on the taker's, its unspent quote
    /// amount, or null when it is sized in base.
    #[serde(rename = "leavesQuote", skip_serializing_if = "Option::is_none")]
    leaves_quote: Option<Option<String>>,
    #[serde(rename = "m")]
    is_maker: bool,
    /// The commission this side paid, at the quote asset's scale (`"0"`
    /// with accounts disabled).
    #[serde(rename = "n")]
    commission: String,
    #[serde(rename = "s")]
    symbol: &'a str,
    seq: u64,
    #[serde(rename = "t")]
    trade_id: u64,
    #[serde(rename = "u")]
    user: u64,
    #[serde(rename = "x")]
    kind: &'static str,
}

impl<'a> TradeReport<'a> {
    /// The maker's and the taker's reports of trade `t`.
    pub(crate) fn pair(
        e: &Event,
        t: &Trade,
        symbol: &'a Symbol,
        cfg: &PairConfig,
        fees: Option<Fees>,
    ) -> [Self; 2] {
        let (leaves, leaves_quote) = size(t.taker_remaining, cfg);
        let maker = TradeReport::side(e, t, symbol, cfg, t.taker_side.opposite(), fees);
        let taker = TradeReport {
            leaves,
            leaves_quote: Some(leaves_quote),
            ..TradeReport::side(e, t, symbol, cfg, t.taker_side, fees)
        };
        [maker, taker]
    }

    /// The report of the `side` of trade `t`, with the maker's `leaves`.
    fn side(
        e: &Event,
        t: &Trade,
        symbol: &'a Symbol,
        cfg: &PairConfig,
        side: Side,
        fees: Option<Fees>,
    ) -> Self {
        let is_maker = side != t.taker_side;
        let (order_id, user) = if is_maker {
            (t.maker_order_id, t.maker_user)
        } else {
            (t.taker_order_id, t.taker_user)
        };
        TradeReport {
            event_time: ms(e.timestamp),
            price: t.price.to_decimal(cfg.price_scale),
            commission_asset: quote_of(symbol),
            side: side.as_str(),
            // Trades do not carry client order ids.
            client_order_id: None,
            event: "executionReport",
            order_id: order_id.0,
            qty: t.qty.to_decimal(cfg.qty_scale),
            leaves: Some(t.maker_remaining.to_decimal(cfg.qty_scale)),
            leaves_quote: None,
            is_maker,
            commission: commission_text(cfg, t.price, t.qty, rate(fees, is_maker)),
            symbol: symbol.as_str(),
            seq: e.seq.0,
            trade_id: t.trade_id.0,
            user: user.0,
            kind: "TRADE",
        }
    }
}

/// `executionReport` `x: NEW`: the order was accepted. `p` is null for a
/// market order; of `q` and `Q` the one it is sized in is set.
#[derive(Debug, Serialize)]
pub(crate) struct NewReport<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "Q")]
    quote_qty: Option<String>,
    #[serde(rename = "S")]
    side: &'static str,
    #[serde(rename = "c")]
    client_order_id: Option<String>,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "f")]
    time_in_force: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    #[serde(rename = "o")]
    order_type: &'static str,
    #[serde(rename = "p")]
    price: Option<String>,
    #[serde(rename = "q")]
    qty: Option<String>,
    #[serde(rename = "s")]
    symbol: &'a str,
    seq: u64,
    #[serde(rename = "u")]
    user: u64,
    #[serde(rename = "x")]
    kind: &'static str,
}

impl<'a> NewReport<'a> {
    pub(crate) fn new(e: &Event, a: &Accepted, symbol: &'a Symbol, cfg: &PairConfig) -> Self {
        let (qty, quote_qty) = size(a.size, cfg);
        NewReport {
            event_time: ms(e.timestamp),
            quote_qty,
            side: a.side.as_str(),
            client_order_id: cid(a.client_order_id),
            event: "executionReport",
            time_in_force: a.time_in_force.as_str(),
            order_id: a.order_id.0,
            order_type: a.order_type.name(),
            price: a.order_type.price().map(|p| p.to_decimal(cfg.price_scale)),
            qty,
            symbol: symbol.as_str(),
            seq: e.seq.0,
            user: a.user.0,
            kind: "NEW",
        }
    }
}

/// `executionReport` `x: CANCELED` or `EXPIRED`: the order (or its rest)
/// left the book unfilled; `reason` says why.
#[derive(Debug, Serialize)]
pub(crate) struct CancelReport<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "S")]
    side: &'static str,
    #[serde(rename = "X")]
    status: &'static str,
    #[serde(rename = "c")]
    client_order_id: Option<String>,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    reason: String,
    #[serde(rename = "s")]
    symbol: &'a str,
    seq: u64,
    #[serde(rename = "u")]
    user: u64,
    #[serde(rename = "x")]
    kind: &'static str,
}

impl<'a> CancelReport<'a> {
    pub(crate) fn new(e: &Event, c: &Canceled, symbol: &'a Symbol) -> Self {
        let status = store::OrderStatus::after_cancel(c.reason);
        let kind = if status == store::OrderStatus::Canceled {
            "CANCELED"
        } else {
            "EXPIRED"
        };
        CancelReport {
            event_time: ms(e.timestamp),
            side: c.side.as_str(),
            status: status.as_str(),
            client_order_id: cid(c.client_order_id),
            event: "executionReport",
            order_id: c.order_id.0,
            reason: format!("{:?}", c.reason),
            symbol: symbol.as_str(),
            seq: e.seq.0,
            user: c.user.0,
            kind,
        }
    }
}

/// `executionReport` `x: AMENDMENT`: the order's price or quantity changed.
#[derive(Debug, Serialize)]
pub(crate) struct AmendReport<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "S")]
    side: &'static str,
    #[serde(rename = "c")]
    client_order_id: Option<String>,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    leaves: String,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "priorityKept")]
    priority_kept: bool,
    #[serde(rename = "q")]
    qty: String,
    #[serde(rename = "s")]
    symbol: &'a str,
    seq: u64,
    #[serde(rename = "u")]
    user: u64,
    #[serde(rename = "x")]
    kind: &'static str,
}

impl<'a> AmendReport<'a> {
    pub(crate) fn new(e: &Event, a: &Amended, symbol: &'a Symbol, cfg: &PairConfig) -> Self {
        AmendReport {
            event_time: ms(e.timestamp),
            side: a.side.as_str(),
            client_order_id: cid(a.client_order_id),
            event: "executionReport",
            order_id: a.order_id.0,
            leaves: a.remaining.to_decimal(cfg.qty_scale),
            price: a.price.to_decimal(cfg.price_scale),
            priority_kept: a.priority_kept,
            qty: a.qty.to_decimal(cfg.qty_scale),
            symbol: symbol.as_str(),
            seq: e.seq.0,
            user: a.user.0,
            kind: "AMENDMENT",
        }
    }
}

/// `executionReport` `x: REJECTED`: the command was refused; `r` is the
/// negated reject code, `i` 0 when the command named no order id.
#[derive(Debug, Serialize)]
pub(crate) struct RejectReport<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "c")]
    client_order_id: Option<String>,
    #[serde(rename = "e")]
    event: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    #[serde(rename = "r")]
    code: i32,
    #[serde(rename = "rMsg")]
    message: &'static str,
    #[serde(rename = "s")]
    symbol: &'a str,
    seq: u64,
    #[serde(rename = "u")]
    user: u64,
    #[serde(rename = "x")]
    kind: &'static str,
}

impl<'a> RejectReport<'a> {
    pub(crate) fn new(e: &Event, r: &Rejected, symbol: &'a Symbol) -> Self {
        RejectReport {
            event_time: ms(e.timestamp),
            client_order_id: cid(r.client_order_id),
            event: "executionReport",
            order_id: r.order_id.map_or(0, |o| o.0),
            code: -i32::from(r.code.code()),
            message: r.code.message(),
            symbol: symbol.as_str(),
            seq: e.seq.0,
            user: r.user.0,
            kind: "REJECTED",
        }
    }
}
