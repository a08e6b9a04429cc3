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

/// `limit p=100`, `market`, or a conditional type's name with its limit
/// price, stop price and trailing delta: `stop_loss_limit p=95 stop=96`.
fn type_str(t: OrderType) -> String {
    match t {
        OrderType::Limit { price } => format!("limit p={price}"),
        OrderType::Market => "market".into(),
        OrderType::Conditional { limit, trigger, .. } => format!(
            "{}{}{}{}",
            t.name().to_lowercase(),
            limit.map(|p| format!(" p={p}")).unwrap_or_default(),
            trigger
                .stop_price
                .map(|s| format!(" stop={s}"))
                .unwrap_or_default(),
            trigger
                .trailing_delta
                .map(|d| format!(" trail={d}"))
                .unwrap_or_default()
        ),
    }
}

/// The advanced fields an order may carry, each only when set.
fn extras_str(iceberg: Option<Qty>, good_till: Option<Timestamp>, list: Option<OrderId>) -> String {
    let mut s = String::new();
    if let Some(i) = iceberg {
        s.push_str(&format!(" iceberg={i}"));
    }
    if let Some(t) = good_till {
        s.push_str(&format!(" till={t}"));
    }
    if let Some(l) = list {
        s.push_str(&format!(" list={l}"));
    }
    s
}

/// One line per event: `seq kind fields...`.
pub fn render(e: &Event) -> String {
    let body = match &e.body {
        EventBody::Accepted(a) => format!(
            "accepted o={} u={} {} {} {} {:?}{}{}{}",
            a.order_id,
            a.user,
            side_str(a.side),
            type_str(a.order_type),
            size_str(a.size),
            a.time_in_force,
            if a.post_only { " post" } else { "" },
            cid_str(a.client_order_id),
            extras_str(a.iceberg_qty, a.good_till, a.list_id),
        ),
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
            "amended o={} u={} {} p={}{} q={} rem={} priority={}{}",
            a.order_id,
            a.user,
            side_str(a.side),
            a.price,
            a.stop_price
                .map(|s| format!(" stop={s}"))
                .unwrap_or_default(),
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
        EventBody::Triggered(t) => format!(
            "triggered o={} u={} {} p={}{}",
            t.order_id,
            t.user,
            side_str(t.side),
            t.price,
            cid_str(t.client_order_id)
        ),
        EventBody::Released(r) => format!(
            "released o={} u={} {}{}",
            r.order_id,
            r.user,
            side_str(r.side),
            cid_str(r.client_order_id)
        ),
        EventBody::ListAccepted(l) => format!(
            "list_accepted l={} u={} {} o={},{}{}",
            l.list_id,
            l.user,
            l.kind.as_str().to_lowercase(),
            l.orders[0],
            l.orders[1],
            cid_str(l.client_list_id)
        ),
        EventBody::ListDone(l) => format!(
            "list_done l={} u={}{}",
            l.list_id,
            l.user,
            cid_str(l.client_list_id)
        ),
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

/// `advanced=none`, or the advanced order types allowed, comma-separated:
/// `conditional,trailing,iceberg,lists,gtd`.
fn advanced(v: &str) -> Result<AdvancedOrders, String> {
    let mut a = AdvancedOrders {
        conditional: false,
        trailing: false,
        iceberg: false,
        lists: false,
        good_till_date: false,
    };
    for name in v.split(',').filter(|n| *n != "none") {
        let flag = match name {
            "conditional" => &mut a.conditional,
            "trailing" => &mut a.trailing,
            "iceberg" => &mut a.iceberg,
            "lists" => &mut a.lists,
            "gtd" => &mut a.good_till_date,
            _ => return Err(format!("unknown advanced order type {name}")),
        };
        *flag = true;
    }
    Ok(a)
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
    if let Some(v) = kv.get("advanced") {
        c.advanced = advanced(v)?;
    }
    Ok(c)
}

/// Parses one scenario command (without the leading `> `).
///
/// ```text
/// new o=1 u=1 buy limit p=100 q=5 [gtc|ioc|fok|gtd] [post] [stp=none|ct|cm|cb] [cid=x]
/// new o=2 u=2 sell market q=5          (market defaults to ioc)
/// new o=3 u=2 buy market quote=500
/// new o=5 u=1 sell stop_loss_limit p=95 stop=96 q=10   (also stop_loss,
///     take_profit, take_profit_limit; trail=100 for a trailing delta)
/// new o=6 u=1 buy limit p=100 q=50 iceberg=5 gtd=1000  (gtd=T: GTD till T;
///     till=T sets the time alone, bare gtd the time in force alone)
/// oco l=9 u=1 [cid=x] | o=5 sell limit p=105 q=10 post | o=6 sell stop_loss_limit p=95 stop=96 q=10
/// oto l=9 u=1 | o=5 buy limit p=100 q=10 | o=6 sell limit p=110 q=10
/// cancel u=1 o=1 | cancel u=1 cid=x
/// amend u=1 o=1 [p=101] [q=7] [stop=97]  (or cid=x)
/// cancel_all u=1
/// cancel_list u=1 l=9 | cancel_list u=1 cid=x
/// tick                                 (time passes: AdvanceTime)
/// ```
/// Any command takes `pair=SYM` to address another pair and `ts=T` to set
/// its timestamp (else `timestamp`).
pub fn parse_command(line: &str, pair: Symbol, timestamp: u64) -> Result<Command, String> {
    let mut parts = line.split('|');
    let (kv, bare) = words(parts.next().unwrap_or_default());
    let verb = *bare.first().ok_or("empty command")?;
    let user = match (verb, num(&kv, "u")?) {
        ("tick", u) => UserId(u.unwrap_or(0)),
        (_, u) => UserId(u.ok_or("missing u=")?),
    };
    let pair = match kv.get("pair") {
        Some(p) => Symbol::new(p).map_err(|e| e.to_string())?,
        None => pair,
    };
    let cid = cid(&kv)?;
    let target = |key: &str| -> Result<OrderRef, String> {
        match (num(&kv, key)?, cid) {
            (Some(id), None) => Ok(OrderRef::Id(OrderId(id))),
            (None, Some(c)) => Ok(OrderRef::Client(c)),
            _ => Err(format!("name it with exactly one of {key}= or cid=")),
        }
    };
    let body = match verb {
        "new" => CommandBody::NewOrder(parse_order(&kv, &bare)?),
        "oco" | "oto" => {
            let mut leg = || -> Result<NewOrder, String> {
                let (kv, bare) = words(parts.next().ok_or("a list needs two legs after |")?);
                parse_order(&kv, &bare)
            };
            let orders = [leg()?, leg()?];
            CommandBody::NewOrderList(NewOrderList {
                list_id: OrderId(need(&kv, "l")?),
                client_list_id: cid,
                kind: if verb == "oco" {
                    ListKind::Oco
                } else {
                    ListKind::Oto
                },
                orders,
            })
        }
        "cancel" => CommandBody::Cancel {
            target: target("o")?,
        },
        "amend" => CommandBody::Amend(Amend {
            target: target("o")?,
            new_qty: num(&kv, "q")?.map(Qty),
            new_price: num(&kv, "p")?.map(Price),
            new_stop_price: num(&kv, "stop")?.map(Price),
        }),
        "cancel_all" => CommandBody::CancelAll,
        "cancel_list" => CommandBody::CancelList {
            target: target("l")?,
        },
        "tick" => CommandBody::AdvanceTime,
        other => return Err(format!("unknown command {other}")),
    };
    if parts.next().is_some() {
        return Err("only a list takes legs after |".into());
    }
    Ok(Command {
        pair,
        user,
        timestamp: Timestamp(num(&kv, "ts")?.unwrap_or(timestamp)),
        body,
    })
}

fn cid(kv: &BTreeMap<&str, &str>) -> Result<Option<ClientOrderId>, String> {
    kv.get("cid")
        .map(|c| ClientOrderId::new(c).map_err(|e| e.to_string()))
        .transpose()
}

/// The order type named by the bare words: a conditional type, `market`,
/// or by default a limit order at `p=`.
fn parse_type(kv: &BTreeMap<&str, &str>, bare: &[&str]) -> Result<OrderType, String> {
    let conditional = [
        ("stop_loss", ConditionalKind::StopLoss, false),
        ("stop_loss_limit", ConditionalKind::StopLoss, true),
        ("take_profit", ConditionalKind::TakeProfit, false),
        ("take_profit_limit", ConditionalKind::TakeProfit, true),
    ];
    if let Some(&(_, kind, has_limit)) = conditional.iter().find(|(n, ..)| bare.contains(n)) {
        let limit = if has_limit {
            Some(Price(need(kv, "p")?))
        } else {
            None
        };
        let trailing_delta = num(kv, "trail")?
            .map(|d| u32::try_from(d).map_err(|e| e.to_string()))
            .transpose()?;
        return Ok(OrderType::Conditional {
            kind,
            limit,
            trigger: Trigger {
                stop_price: num(kv, "stop")?.map(Price),
                trailing_delta,
            },
        });
    }
    if bare.contains(&"market") {
        return Ok(OrderType::Market);
    }
    Ok(OrderType::Limit {
        price: Price(need(kv, "p")?),
    })
}

/// A new order's words (a `new` command's, or a list leg's).
fn parse_order(kv: &BTreeMap<&str, &str>, bare: &[&str]) -> Result<NewOrder, String> {
    let side = if bare.contains(&"buy") {
        Side::Buy
    } else if bare.contains(&"sell") {
        Side::Sell
    } else {
        return Err("an order needs buy or sell".into());
    };
    let order_type = parse_type(kv, bare)?;
    let market = order_type.is_market();
    let good_till = num(kv, "gtd")?.or(num(kv, "till")?).map(Timestamp);
    let time_in_force = if bare.contains(&"fok") {
        TimeInForce::Fok
    } else if bare.contains(&"ioc") {
        TimeInForce::Ioc
    } else if bare.contains(&"gtd") || kv.contains_key("gtd") {
        TimeInForce::Gtd
    } else if market && !bare.contains(&"gtc") {
        TimeInForce::Ioc
    } else {
        TimeInForce::Gtc
    };
    let size = match (num(kv, "quote")?, num(kv, "budget")?) {
        (Some(q), _) => OrderSize::Quote(QuoteQty(q)),
        (None, Some(b)) => OrderSize::BaseWithin {
            qty: Qty(need(kv, "q")?),
            budget: QuoteQty(b),
        },
        (None, None) => OrderSize::Base(Qty(need(kv, "q")?)),
    };
    Ok(NewOrder {
        order_id: OrderId(need(kv, "o")?),
        client_order_id: cid(kv)?,
        side,
        order_type,
        time_in_force,
        post_only: bare.contains(&"post"),
        stp: kv.get("stp").map(|v| stp(v)).transpose()?,
        size,
        iceberg_qty: num(kv, "iceberg")?.map(Qty),
        good_till,
    })
}

/// A scenario's clock: each command is stamped one after the previous one
/// unless it says `ts=`.
#[derive(Default)]
pub struct Clock(pub u64);

impl Clock {
    /// Parses one scenario command stamped by this clock.
    pub fn command(&mut self, line: &str, pair: Symbol) -> Result<Command, String> {
        let cmd = parse_command(line, pair, self.0 + 1)?;
        self.0 = cmd.timestamp.0;
        Ok(cmd)
    }
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
/// Orders held off the book (waiting for a trigger, or an OTO's pending
/// order) count from when they fire or are released; until then, all they
/// can do is be canceled whole.
#[derive(Default)]
pub struct Ledger {
    /// order id -> (submitted, filled, canceled); base-sized orders only.
    orders: BTreeMap<OrderId, (u64, u64, u64)>,
    /// order id -> unspent quote budget at scale price+qty, for orders sized
    /// within a budget: no fill may cost more than is left.
    budgets: BTreeMap<OrderId, u128>,
    /// Orders accepted but not working yet.
    dormant: std::collections::BTreeSet<OrderId>,
    /// OTO pending orders announced by a `ListAccepted`, until accepted.
    pending: std::collections::BTreeSet<OrderId>,
    last_seq: u64,
}

impl Ledger {
    /// Checks the events of `cmd` against everything seen so far and the
    /// book after it: `seq` contiguous, quantities conserved, book sound.
    pub fn check(
        &mut self,
        book: &OrderBook,
        cmd: &Command,
        events: &[Event],
    ) -> Result<(), String> {
        if events.is_empty() && cmd.body != CommandBody::AdvanceTime {
            return Err("a command emitted no event".into());
        }
        for e in events {
            if e.seq.0 != self.last_seq + 1 {
                return Err(format!("seq {} follows {}", e.seq, self.last_seq));
            }
            if e.timestamp != cmd.timestamp {
                return Err(format!("event {} has another timestamp", e.seq));
            }
            self.last_seq = e.seq.0;
            self.event(book, e)?;
        }
        book.check_invariants().map_err(|e| e.to_string())?;
        if book.last_seq().0 != self.last_seq {
            return Err("book's last seq differs from its last event".into());
        }
        for (id, &(submitted, filled, canceled)) in &self.orders {
            if self.dormant.contains(id) {
                continue;
            }
            let open = book.order(*id).map_or(0, |o| o.remaining.0);
            if filled + open + canceled != submitted {
                return Err(format!(
                    "order {id}: filled {filled} + open {open} + canceled {canceled} != {submitted}"
                ));
            }
        }
        // Orders that are done no longer need tracking.
        self.orders.retain(|id, o| {
            self.dormant.contains(id) || book.order(*id).is_some() || o.1 + o.2 != o.0
        });
        Ok(())
    }

    fn event(&mut self, book: &OrderBook, e: &Event) -> Result<(), String> {
        match &e.body {
            EventBody::ListAccepted(l) if l.kind == ListKind::Oto => {
                self.pending.insert(l.orders[1]);
            }
            EventBody::Accepted(a) => {
                if a.order_type.trigger().is_some() || self.pending.remove(&a.order_id) {
                    self.dormant.insert(a.order_id);
                }
                match a.size {
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
                }
            }
            EventBody::Triggered(Triggered { order_id, .. })
            | EventBody::Released(Released { order_id, .. }) => {
                if !self.dormant.remove(order_id) {
                    return Err(format!("{order_id} fired or was released twice"));
                }
            }
            EventBody::Trade(t) => {
                if t.trade_id.0 != e.seq.0 {
                    return Err("trade id is not its seq".into());
                }
                for id in [t.maker_order_id, t.taker_order_id] {
                    if self.dormant.contains(&id) {
                        return Err(format!("{id} traded before it fired"));
                    }
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
                let q = match c.remaining {
                    OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => Some(q.0),
                    OrderSize::Quote(_) => None,
                };
                if let (Some(o), Some(q)) = (self.orders.get_mut(&c.order_id), q) {
                    o.2 += q;
                }
                if self.dormant.remove(&c.order_id)
                    && self.orders.get(&c.order_id).is_some_and(|o| o.2 != o.0)
                {
                    return Err(format!(
                        "{} was held off the book, not canceled whole",
                        c.order_id
                    ));
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
        Ok(())
    }
}
