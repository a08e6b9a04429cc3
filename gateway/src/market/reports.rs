//! Binance's `executionReport`: one order's state after one event, with
//! every field of `user-data-stream.md` in Binance's order, and
//! `listStatus` for order lists.
//!
//! An order without a stop price or an iceberg slice reports them as zero,
//! one in no list `g` -1, as Binance does. `I` (documented "ignore")
//! carries the event's seq, so a client can order reports of one pair.
//! A conditional order's trigger firing and an OTO's pending order being
//! released are reported as Binance does, with execution type `NEW` and
//! the order now working (`w`, `W`).

use std::sync::Arc;

use accounts::Fees;
use proto::{
    Event, EventBody, ListKind, OrderId, OrderSize, PairConfig, Price, Qty, QuoteQty, Trade, UserId,
};
use serde::Serialize;
use store::{OrderStatus, SiblingCause};

use super::orders::{ListState, OpenOrders, OrderState};
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
    /// A trailing stop's delta, in basis points.
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<u32>,
    /// A trailing stop's `trailingTime`: when it started tracking, or -1.
    #[serde(rename = "D", skip_serializing_if = "Option::is_none")]
    trailing_time: Option<i64>,
}

/// One order of a `listStatus`.
#[derive(Debug, Serialize)]
struct ListOrder<'a> {
    s: &'a str,
    i: u64,
    c: String,
}

/// `listStatus`: an order list placed or over.
#[derive(Debug, Serialize)]
pub(crate) struct ListStatusEvent<'a> {
    e: &'static str,
    #[serde(rename = "E")]
    event_time: u64,
    s: &'a str,
    g: u64,
    /// `OCO` or `OTO`.
    c: &'static str,
    /// `EXEC_STARTED` or `ALL_DONE`.
    l: &'static str,
    /// `EXECUTING` or `ALL_DONE`.
    #[serde(rename = "L")]
    order_status: &'static str,
    r: &'static str,
    #[serde(rename = "C")]
    list_client_order_id: String,
    #[serde(rename = "T")]
    transaction_time: u64,
    #[serde(rename = "O")]
    orders: Vec<ListOrder<'a>>,
}

impl<'a> ListStatusEvent<'a> {
    /// List `l` in event `e`, placed or (`done`) over.
    pub(crate) fn new(pair: PairContext<'a>, e: &Event, l: &ListState, done: bool) -> Self {
        let at = super::messages::ms(e.timestamp);
        let (status_type, order_status) = if done {
            ("ALL_DONE", "ALL_DONE")
        } else {
            ("EXEC_STARTED", "EXECUTING")
        };
        ListStatusEvent {
            e: "listStatus",
            event_time: at,
            s: pair.name,
            g: l.list_id.0,
            c: match l.kind {
                ListKind::Oco => "OCO",
                ListKind::Oto => "OTO",
            },
            l: status_type,
            order_status,
            r: "NONE",
            list_client_order_id: crate::rest::client_order_id(
                l.list_id,
                l.client_list_id.as_ref(),
            ),
            transaction_time: at,
            orders: l
                .orders
                .iter()
                .map(|(id, cid)| ListOrder {
                    s: pair.name,
                    i: id.0,
                    c: crate::rest::client_order_id(*id, cid.as_ref()),
                })
                .collect(),
        }
    }
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
            p: price(o.price().unwrap_or(Price(0))),
            stop_price: price(o.trigger().and_then(|t| t.stop_price).unwrap_or(Price(0))),
            iceberg_qty: qty(o.iceberg_qty.unwrap_or(Qty(0))),
            g: crate::rest::list_id(o.list_id),
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
            working_time: o
                .working_time
                .filter(|_| o.may_rest())
                .map(super::messages::ms),
            stp_mode: cfg.default_stp.as_str(),
            d: o.trigger().and_then(|t| t.trailing_delta),
            trailing_time: o.trigger().and_then(|t| t.trailing_delta).map(|_| {
                o.trailing_since.map_or(-1, |t| {
                    i64::try_from(super::messages::ms(t)).unwrap_or(i64::MAX)
                })
            }),
        };
        match exec {
            Execution::Trade { trade, is_maker } => {
                report.l = qty(trade.qty);
                report.last_price = price(trade.price);
                let value = store::quote_value(trade.price, trade.qty, cfg.qty_scale);
                report.last_quote = quote(value.unwrap_or(u64::MAX));
                // The order's own rates: those in force when it was accepted.
                let fees = pair.fees.map(|now| o.fees.unwrap_or(now));
                report.n = commission_text(cfg, trade.price, trade.qty, rate(fees, is_maker));
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
/// execution report and list status for a user `wanted` says someone
/// listens to, with that user.
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
    // Orders that worked in this command: those that may not rest end
    // with it.
    let mut workers: Vec<OrderId> = Vec::new();
    let mut cause = SiblingCause::default();
    for e in events {
        let status = cause.status_after(&e.body);
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
                let o = orders.accept(a, e.timestamp, pair.fees.unwrap_or(Fees::ZERO));
                if o.working_time.is_some() {
                    workers.push(a.order_id);
                }
                report(Some(o), Execution::New);
                // The list is reported once its last order is accepted.
                if let Some(l) = a.list_id.and_then(|l| orders.list(l))
                    && l.orders[1].0 == a.order_id
                {
                    list_status(&mut out, pair, e, l, false, wanted);
                }
            }
            EventBody::Trade(t) => {
                orders.traded(t.price, e.timestamp);
                trade_reports(orders, pair, t, &mut report);
            }
            EventBody::Canceled(c) => {
                let status = status.unwrap_or(OrderStatus::Canceled);
                let kind = match status {
                    OrderStatus::Canceled => "CANCELED",
                    OrderStatus::ExpiredInMatch => "TRADE_PREVENTION",
                    _ => "EXPIRED",
                };
                report(orders.close(c.order_id, status), Execution::Ended(kind));
            }
            EventBody::Amended(a) => report(orders.amend(a, e.timestamp), Execution::Replaced),
            EventBody::Triggered(t) => {
                workers.push(t.order_id);
                report(orders.trigger(t.order_id, e.timestamp), Execution::New);
            }
            EventBody::Released(r) => {
                workers.push(r.order_id);
                report(orders.release(r.order_id, e.timestamp), Execution::New);
            }
            EventBody::ListAccepted(l) => orders.add_list(ListState {
                list_id: l.list_id,
                client_list_id: l.client_list_id,
                user: l.user,
                kind: l.kind,
                orders: l.orders.map(|id| (id, None)),
            }),
            EventBody::ListDone(d) => {
                if let Some(l) = orders.end_list(d.list_id) {
                    list_status(&mut out, pair, e, &l, true, wanted);
                }
            }
            // A pair's new rules are no order's: the pair's status carries
            // them (`commandlog::PairStatus`).
            EventBody::Rejected(_)
            | EventBody::BookDelta(_)
            | EventBody::CanceledAll(_)
            | EventBody::PairChanged(_) => {}
        }
    }
    for id in workers {
        orders.end_taker(id);
    }
    out
}

/// The reports of a trade: the maker's, then the taker's.
fn trade_reports(
    orders: &mut OpenOrders,
    pair: PairContext<'_>,
    t: &Trade,
    report: &mut dyn FnMut(Option<OrderState>, Execution),
) {
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

/// A `listStatus` for list `l`'s owner, when someone listens.
fn list_status(
    out: &mut Vec<(UserId, Arc<str>)>,
    pair: PairContext<'_>,
    e: &Event,
    l: &ListState,
    done: bool,
    wanted: &dyn Fn(UserId) -> bool,
) {
    if wanted(l.user)
        && let Some(text) = super::text(&ListStatusEvent::new(pair, e, l, done))
    {
        out.push((l.user, text));
    }
}
