//! Binance's `executionReport`: one order's state after one event, with
//! every field of `user-data-stream.md` in Binance's order.
//!
//! Fields Binance sends for features this exchange does not have carry the
//! values Binance gives an order without them: stop price and iceberg
//! quantity zero, order list `-1`. `I` (documented "ignore") carries the
//! event's seq, so a client can order reports of one pair.

use std::sync::Arc;

use accounts::Fees;
use proto::{Event, EventBody, OrderSize, PairConfig, Price, Qty, QuoteQty, Trade, UserId};
use serde::Serialize;
use store::OrderStatus;

use super::orders::{OpenOrders, OrderState};
use crate::money::{commission_text, quote_asset, rate};

/// What happened to the order: Binance's execution type and, for a fill,
/// the fill.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Execution<'t> {
    /// Accepted into the engine.
    New,
    /// One fill of the order, as maker or taker.
    Trade { trade: &'t Trade, is_maker: bool },
    /// Left the book unfilled: canceled, expired by its own rules
    /// (`EXPIRED`), or by self-trade prevention (`TRADE_PREVENTION`).
    Ended(&'static str),
    /// Its quantity or price changed in place.
    Replaced,
}

impl Execution<'_> {
    fn name(&self) -> &'static str {
        match self {
            Execution::New => "NEW",
            Execution::Trade { .. } => "TRADE",
            Execution::Ended(x) => x,
            Execution::Replaced => "REPLACED",
        }
    }
}

/// The pair's config and fees, the same for every report of a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairContext<'a> {
    pub(crate) cfg: &'a PairConfig,
    pub(crate) fees: Option<Fees>,
    /// `BTCEUR`: the name Binance's API gives the pair.
    pub(crate) name: &'a str,
}

/// `executionReport`.
#[derive(Debug, Serialize)]
pub(crate) struct ExecutionReport<'a> {
    e: &'static str,
    #[serde(rename = "E")]
    event_time: u64,
    s: &'a str,
    c: String,
    #[serde(rename = "S")]
    side: &'static str,
    o: &'static str,
    f: &'static str,
    q: String,
    p: String,
    #[serde(rename = "P")]
    stop_price: String,
    #[serde(rename = "F")]
    iceberg_qty: String,
    g: i64,
    /// The canceled order's client id, on a cancel; empty otherwise.
    #[serde(rename = "C")]
    original_client_order_id: String,
    x: &'static str,
    #[serde(rename = "X")]
    status: &'static str,
    /// Binance's reject reason: `NONE` on every report this exchange
    /// sends (a refused command is answered on its request, not here).
    r: &'static str,
    i: u64,
    l: String,
    z: String,
    #[serde(rename = "L")]
    last_price: String,
    n: String,
    #[serde(rename = "N")]
    commission_asset: Option<&'a str>,
    #[serde(rename = "T")]
    transaction_time: u64,
    t: i64,
    #[serde(rename = "I")]
    seq: u64,
    w: bool,
    m: bool,
    #[serde(rename = "M")]
    ignore: bool,
    #[serde(rename = "O")]
    created: u64,
    #[serde(rename = "Z")]
    cum_quote: String,
    #[serde(rename = "Y")]
    last_quote: String,
    #[serde(rename = "Q")]
    quote_order_qty: String,
    /// Present for an order that works on the book (a resting limit order).
    #[serde(rename = "W", skip_serializing_if = "Option::is_none")]
    working_time: Option<u64>,
    #[serde(rename = "V")]
    stp_mode: &'static str,
}

/// The client order id Binance would show: the order's own, or the one
/// REST answered for an order placed without (`x-<orderId>`).
fn client_id(o: &OrderState) -> String {
    crate::rest::client_order_id(o.order_id, o.client_order_id.as_ref())
}

impl<'a> ExecutionReport<'a> {
    /// The report of `exec` on order `o` (its state after the event) in
    /// event `e`.
    pub(crate) fn new(pair: PairContext<'a>, e: &Event, o: &OrderState, exec: Execution) -> Self {
        let cfg = pair.cfg;
        let price = |p: Price| p.to_decimal(cfg.price_scale);
        let qty = |q: Qty| q.to_decimal(cfg.qty_scale);
        let quote = |q: u64| QuoteQty(q).to_decimal(cfg.price_scale);
        let (base_size, quote_size) = match o.size {
            proto::OrderSize::Base(q) | proto::OrderSize::BaseWithin { qty: q, .. } => (q, 0),
            proto::OrderSize::Quote(q) => (Qty(0), q.0),
        };
        let mut report = ExecutionReport {
            e: "executionReport",
            event_time: super::messages::ms(e.timestamp),
            s: pair.name,
            c: client_id(o),
            side: o.side.as_str(),
            o: o.type_name(),
            f: o.time_in_force.as_str(),
            q: qty(base_size),
            p: price(o.price.unwrap_or(Price(0))),
            stop_price: price(Price(0)),
            iceberg_qty: qty(Qty(0)),
            g: -1,
            original_client_order_id: String::new(),
            x: exec.name(),
            status: o.status.as_str(),
            r: "NONE",
            i: o.order_id.0,
            l: qty(Qty(0)),
            z: qty(o.executed),
            last_price: price(Price(0)),
            n: "0".to_string(),
            commission_asset: None,
            transaction_time: super::messages::ms(e.timestamp),
            t: -1,
            seq: e.seq.0,
            w: o.is_working(),
            m: false,
            ignore: false,
            created: super::messages::ms(o.created),
            cum_quote: quote(o.cum_quote),
            last_quote: quote(0),
            quote_order_qty: quote(quote_size),
            working_time: (o.price.is_some() && o.time_in_force == proto::TimeInForce::Gtc)
                .then(|| super::messages::ms(o.created)),
            stp_mode: cfg.default_stp.as_str(),
        };
        match exec {
            Execution::Trade { trade, is_maker } => {
                report.l = qty(trade.qty);
                report.last_price = price(trade.price);
                let value = store::quote_value(trade.price, trade.qty, cfg.qty_scale);
                report.last_quote = quote(value.unwrap_or(u64::MAX));
                report.n = commission_text(cfg, trade.price, trade.qty, rate(pair.fees, is_maker));
                report.commission_asset = Some(quote_asset(cfg));
                // REST's trade id (`myTrades`, `trades`) is the fill's
                // event seq, and so is the trade stream's `t`.
                report.t = i64::try_from(e.seq.0).unwrap_or(i64::MAX);
                report.m = is_maker;
            }
            Execution::Ended("CANCELED") => report.original_client_order_id = client_id(o),
            Execution::New | Execution::Ended(_) | Execution::Replaced => {}
        }
        report
    }
}

/// Applies one record's events to the pair's open `orders`; returns each
/// execution report for a user `wanted` says someone listens to, with that
/// user.
///
/// An event of an order the view does not hold (possible only for an order
/// that was open before this gateway started and was not seeded) updates
/// nothing and is not reported: a report with made-up totals would mislead
/// a client more than a missing one.
pub(crate) fn apply_record(
    orders: &mut OpenOrders,
    pair: PairContext<'_>,
    events: &[Event],
    wanted: &dyn Fn(UserId) -> bool,
) -> Vec<(UserId, Arc<str>)> {
    let mut out = Vec::new();
    let mut taker = None;
    for e in events {
        let mut report = |o: Option<OrderState>, exec: Execution| {
            if let Some(o) = o
                && wanted(o.user)
                && let Some(text) = super::text(&ExecutionReport::new(pair, e, &o, exec))
            {
                out.push((o.user, text));
            }
        };
        match &e.body {
            EventBody::Accepted(a) => {
                taker = Some(a.order_id);
                report(Some(orders.accept(a, e.timestamp)), Execution::New);
            }
            EventBody::Trade(t) => {
                let scale = pair.cfg.qty_scale;
                let maker_filled = t.maker_remaining.is_zero();
                let maker = orders.fill(t.maker_order_id, t.price, t.qty, scale, maker_filled);
                report(
                    maker,
                    Execution::Trade {
                        trade: t,
                        is_maker: true,
                    },
                );
                let taker_filled = match t.taker_remaining {
                    OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => q.is_zero(),
                    OrderSize::Quote(q) => q.is_zero(),
                };
                let taker = orders.fill(t.taker_order_id, t.price, t.qty, scale, taker_filled);
                report(
                    taker,
                    Execution::Trade {
                        trade: t,
                        is_maker: false,
                    },
                );
            }
            EventBody::Canceled(c) => {
                let status = OrderStatus::after_cancel(c.reason);
                let kind = match status {
                    OrderStatus::Canceled => "CANCELED",
                    OrderStatus::ExpiredInMatch => "TRADE_PREVENTION",
                    _ => "EXPIRED",
                };
                report(orders.close(c.order_id, status), Execution::Ended(kind));
            }
            EventBody::Amended(a) => report(orders.amend(a), Execution::Replaced),
            EventBody::Rejected(_) | EventBody::BookDelta(_) | EventBody::CanceledAll(_) => {}
        }
    }
    if let Some(id) = taker {
        orders.end_taker(id);
    }
    out
}
