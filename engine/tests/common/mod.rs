//! Shared by the engine's test files: a compact text form of commands and
//! events (the scenario language), and the checks run after every command.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use engine::OrderBook;
use proto::*;

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("valid symbol in test")
}

/// The pair every scenario and random stream trades unless it says otherwise.
pub fn default_config() -> PairConfig {
    PairConfig {
        max_qty: Qty(1_000_000),
        max_open_orders: 10_000,
        ..PairConfig::simple(sym("BTC-EUR"))
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn size_str(s: OrderSize) -> String {
    match s {
        OrderSize::Base(q) => format!("q={q}"),
        OrderSize::Quote(q) => format!("quote={q}"),
        OrderSize::BaseWithin { qty, budget } => format!("q={qty} budget={budget}"),
    }
}

fn cid_str(c: Option<ClientOrderId>) -> String {
    c.map(|c| format!(" cid={c}")).unwrap_or_default()
}

/// One line per event: `seq kind fields...`.
pub fn render(e: &Event) -> String {
    let body = match &e.body {
        EventBody::Accepted(a) => {
            let ty = match a.order_type {
                OrderType::Limit { price } => format!("limit p={price}"),
                OrderType::Market => "market".into(),
            };
            format!(
                "accepted o={} u={} {} {ty} {} {:?}{}{}",
                a.order_id,
                a.user,
                side_str(a.side),
                size_str(a.size),
                a.time_in_force,
                if a.post_only { " post" } else { "" },
                cid_str(a.client_order_id)
            )
        }
        EventBody::Rejected(r) => format!(
            "rejected {:?} u={}{}{} code={} {:?}",
            r.command,
            r.user,
            r.order_id.map(|o| format!(" o={o}")).unwrap_or_default(),
            cid_str(r.client_order_id),
            r.code.code(),
            r.code
        ),
        EventBody::Trade(t) => format!(
            "trade id={} p={} q={} taker=o{}/u{} {} rem:{} maker=o{}/u{} rem:{}",
            t.trade_id,
            t.price,
            t.qty,
            t.taker_order_id,
            t.taker_user,
            side_str(t.taker_side),
            size_str(t.taker_remaining),
            t.maker_order_id,
            t.maker_user,
            t.maker_remaining
        ),
        EventBody::Canceled(c) => format!(
            "canceled o={} u={} {} rem:{} {:?}{}",
            c.order_id,
            c.user,
            side_str(c.side),
            size_str(c.remaining),
            c.reason,
            cid_str(c.client_order_id)
        ),
        EventBody::Amended(a) => format!(
            "amended o={} u={} {} p={} q={} rem={} priority={}{}",
            a.order_id,
            a.user,
            side_str(a.side),
            a.price,
            a.qty,
            a.remaining,
            if a.priority_kept { "kept" } else { "lost" },
            cid_str(a.client_order_id)
        ),
        EventBody::BookDelta(d) => format!(
            "book {} p={} q={}",
            if d.side == Side::Buy { "bid" } else { "ask" },
            d.price,
            d.qty
        ),
        EventBody::CanceledAll(c) => format!("canceled_all u={} count={}", c.user, c.count),
    };
    format!("{} {body}", e.seq)
}

/// Parses `key=value` words into a map, and bare words into a list.
fn words(line: &str) -> (BTreeMap<&str, &str>, Vec<&str>) {
    let mut kv = BTreeMap::new();
    let mut bare = Vec::new();
    for w in line.split_whitespace() {
        match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k, v);
            }
            None => bare.push(w),
        }
    }
    (kv, bare)
}

fn num(kv: &BTreeMap<&str, &str>, key: &str) -> Result<Option<u64>, String> {
    kv.get(key)
        .map(|v| v.parse::<u64>().map_err(|e| format!("{key}={v}: {e}")))
        .transpose()
}

fn need(kv: &BTreeMap<&str, &str>, key: &str) -> Result<u64, String> {
    num(kv, key)?.ok_or_else(|| format!("missing {key}="))
}

fn stp(v: &str) -> Result<StpMode, String> {
    Ok(match v {
        "none" => StpMode::None,
        "ct" | "cancel_taker" => StpMode::CancelTaker,
        "cm" | "cancel_maker" => StpMode::CancelMaker,
        "cb" | "cancel_both" => StpMode::CancelBoth,
        _ => return Err(format!("unknown stp mode {v}")),
    })
}

/// Parses `config key=value...` over [`default_config`].
pub fn parse_config(line: &str) -> Result<PairConfig, String> {
    let (kv, _) = words(line);
    let mut c = default_config();
    if let Some(p) = kv.get("pair") {
        c.symbol = Symbol::new(p).map_err(|e| e.to_string())?;
    }
    c.price_scale = num(&kv, "price_scale")?.map_or(c.price_scale, |v| v as u8);
    c.qty_scale = num(&kv, "qty_scale")?.map_or(c.qty_scale, |v| v as u8);
    c.tick_size = Price(num(&kv, "tick")?.unwrap_or(c.tick_size.0));
    c.lot_size = Qty(num(&kv, "lot")?.unwrap_or(c.lot_size.0));
    c.min_qty = Qty(num(&kv, "min_qty")?.unwrap_or(c.min_qty.0));
    c.max_qty = Qty(num(&kv, "max_qty")?.unwrap_or(c.max_qty.0));
    c.min_notional = QuoteQty(num(&kv, "min_notional")?.unwrap_or(c.min_notional.0));
    c.max_price = Price(num(&kv, "max_price")?.unwrap_or(c.max_price.0));
    c.max_notional = QuoteQty(num(&kv, "max_notional")?.unwrap_or(c.max_notional.0));
    c.max_open_orders = num(&kv, "max_orders")?.map_or(c.max_open_orders, |v| v as u32);
    if let Some(v) = kv.get("stp") {
        c.default_stp = stp(v)?;
    }
    Ok(c)
}

/// Parses one scenario command (without the leading `> `).
///
/// ```text
/// new o=1 u=1 buy limit p=100 q=5 [gtc|ioc|fok] [post] [stp=none|ct|cm|cb] [cid=x]
/// new o=2 u=2 sell market q=5          (market defaults to ioc)
/// new o=3 u=2 buy market quote=500
/// cancel u=1 o=1 | cancel u=1 cid=x
/// amend u=1 o=1 [p=101] [q=7]          (or cid=x)
/// cancel_all u=1
/// ```
/// Any command takes `pair=SYM` to address another pair.
pub fn parse_command(line: &str, pair: Symbol, timestamp: u64) -> Result<Command, String> {
    let (kv, bare) = words(line);
    let verb = *bare.first().ok_or("empty command")?;
    let user = UserId(need(&kv, "u")?);
    let pair = match kv.get("pair") {
        Some(p) => Symbol::new(p).map_err(|e| e.to_string())?,
        None => pair,
    };
    let cid = kv
        .get("cid")
        .map(|c| ClientOrderId::new(c).map_err(|e| e.to_string()))
        .transpose()?;
    let target = || -> Result<OrderRef, String> {
        match (num(&kv, "o")?, cid) {
            (Some(id), None) => Ok(OrderRef::Id(OrderId(id))),
            (None, Some(c)) => Ok(OrderRef::Client(c)),
            _ => Err("name the order with exactly one of o= or cid=".into()),
        }
    };
    let body = match verb {
        "new" => {
            let side = if bare.contains(&"buy") {
                Side::Buy
            } else if bare.contains(&"sell") {
                Side::Sell
            } else {
                return Err("new needs buy or sell".into());
            };
            let market = bare.contains(&"market");
            let order_type = if market {
                OrderType::Market
            } else {
                OrderType::Limit {
                    price: Price(need(&kv, "p")?),
                }
            };
            let time_in_force = if bare.contains(&"fok") {
                TimeInForce::Fok
            } else if bare.contains(&"ioc") || (market && !bare.contains(&"gtc")) {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            };
            let size = match (num(&kv, "quote")?, num(&kv, "budget")?) {
                (Some(q), _) => OrderSize::Quote(QuoteQty(q)),
                (None, Some(b)) => OrderSize::BaseWithin {
                    qty: Qty(need(&kv, "q")?),
                    budget: QuoteQty(b),
                },
                (None, None) => OrderSize::Base(Qty(need(&kv, "q")?)),
            };
            CommandBody::NewOrder(NewOrder {
                order_id: OrderId(need(&kv, "o")?),
                client_order_id: cid,
                side,
                order_type,
                time_in_force,
                post_only: bare.contains(&"post"),
                stp: kv.get("stp").map(|v| stp(v)).transpose()?,
                size,
            })
        }
        "cancel" => CommandBody::Cancel { target: target()? },
        "amend" => CommandBody::Amend(Amend {
            target: target()?,
            new_qty: num(&kv, "q")?.map(Qty),
            new_price: num(&kv, "p")?.map(Price),
        }),
        "cancel_all" => CommandBody::CancelAll,
        other => return Err(format!("unknown command {other}")),
    };
    Ok(Command {
        pair,
        user,
        timestamp: Timestamp(timestamp),
        body,
    })
}

/// The book's levels as text: `bids 101x3 100x5` and `asks ...`.
pub fn render_depth(book: &OrderBook) -> Vec<String> {
    let d = book.depth(usize::MAX);
    let side = |name: &str, levels: &[engine::DepthLevel]| {
        let mut s = name.to_string();
        for l in levels {
            s.push_str(&format!(" {}x{}", l.price, l.qty));
        }
        s
    };
    vec![side("bids", &d.bids), side("asks", &d.asks)]
}

/// The open orders in canonical order.
pub fn render_orders(book: &OrderBook) -> Vec<String> {
    book.resting_orders()
        .map(|o| {
            format!(
                "{} p={} o={} u={} q={} rem={}{}{}",
                if o.side == Side::Buy { "bid" } else { "ask" },
                o.price,
                o.order_id,
                o.user,
                o.qty,
                o.remaining,
                if o.post_only { " post" } else { "" },
                cid_str(o.client_order_id)
            )
        })
        .collect()
}

/// Tracks what every order was given and what became of it, to check that
/// quantity is conserved: filled + open + canceled = submitted, per order.
#[derive(Default)]
pub struct Ledger {
    /// order id -> (submitted, filled, canceled); base-sized orders only.
    orders: BTreeMap<OrderId, (u64, u64, u64)>,
    /// order id -> unspent quote budget at scale price+qty, for orders sized
    /// within a budget: no fill may cost more than is left.
    budgets: BTreeMap<OrderId, u128>,
    last_seq: u64,
}

impl Ledger {
    /// Checks `events` (of one command) against everything seen so far and
    /// the book after it: `seq` contiguous, quantities conserved, book sound.
    pub fn check(&mut self, book: &OrderBook, events: &[Event]) -> Result<(), String> {
        if events.is_empty() {
            return Err("a command emitted no event".into());
        }
        for e in events {
            if e.seq.0 != self.last_seq + 1 {
                return Err(format!("seq {} follows {}", e.seq, self.last_seq));
            }
            self.last_seq = e.seq.0;
            match &e.body {
                EventBody::Accepted(a) => match a.size {
                    OrderSize::Base(q) => {
                        self.orders.insert(a.order_id, (q.0, 0, 0));
                    }
                    OrderSize::BaseWithin { qty, budget } => {
                        self.orders.insert(a.order_id, (qty.0, 0, 0));
                        let scale = proto::pow10(book.config().qty_scale);
                        self.budgets
                            .insert(a.order_id, u128::from(budget.0) * scale);
                    }
                    OrderSize::Quote(_) => {}
                },
                EventBody::Trade(t) => {
                    if t.trade_id.0 != e.seq.0 {
                        return Err("trade id is not its seq".into());
                    }
                    for id in [t.maker_order_id, t.taker_order_id] {
                        if let Some(o) = self.orders.get_mut(&id) {
                            o.1 += t.qty.0;
                        }
                    }
                    if let Some(left) = self.budgets.get_mut(&t.taker_order_id) {
                        let cost = u128::from(t.price.0) * u128::from(t.qty.0);
                        *left = left
                            .checked_sub(cost)
                            .ok_or_else(|| format!("{} overspent its budget", t.taker_order_id))?;
                    }
                }
                EventBody::Canceled(c) => {
                    if let (Some(o), OrderSize::Base(q)) =
                        (self.orders.get_mut(&c.order_id), c.remaining)
                    {
                        o.2 += q.0;
                    }
                }
                EventBody::Amended(a) => {
                    if let Some(o) = self.orders.get_mut(&a.order_id) {
                        // The new total replaces the old: what was filled stays filled.
                        o.0 = a.qty.0;
                        if o.1 + a.remaining.0 != a.qty.0 {
                            return Err(format!("amend of {} loses fills", a.order_id));
                        }
                    }
                }
                _ => {}
            }
        }
        book.check_invariants().map_err(|e| e.to_string())?;
        if book.last_seq().0 != self.last_seq {
            return Err("book's last seq differs from its last event".into());
        }
        for (id, &(submitted, filled, canceled)) in &self.orders {
            let open = book.order(*id).map_or(0, |o| o.remaining.0);
            if filled + open + canceled != submitted {
                return Err(format!(
                    "order {id}: filled {filled} + open {open} + canceled {canceled} != {submitted}"
                ));
            }
        }
        // Orders that are done no longer need tracking.
        self.orders
            .retain(|id, o| book.order(*id).is_some() || o.1 + o.2 != o.0);
        Ok(())
    }
}
