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
        EventBody::PairChanged(c) => format!("pair_changed {}", render_rules(&c.config, c.status)),
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

/// A change's `advanced=`: the flags named, each `name` (allowed) or
/// `-name` (refused), comma-separated; `none` and `all` name all five.
fn advanced_change(v: &str) -> Result<AdvancedChange, String> {
    match v {
        "none" => return Ok(AdvancedChange::all(advanced("none")?)),
        "all" => return Ok(AdvancedChange::all(AdvancedOrders::ALL)),
        _ => {}
    }
    let mut c = AdvancedChange::default();
    for name in v.split(',') {
        let (allow, name) = match name.strip_prefix('-') {
            Some(n) => (false, n),
            None => (true, name),
        };
        let flag = match name {
            "conditional" => &mut c.conditional,
            "trailing" => &mut c.trailing,
            "iceberg" => &mut c.iceberg,
            "lists" => &mut c.lists,
            "gtd" => &mut c.good_till_date,
            _ => return Err(format!("unknown advanced order type {name}")),
        };
        *flag = Some(allow);
    }
    Ok(c)
}

/// The advanced order types allowed, in `advanced()`'s names (`none`, or
/// the names comma-separated).
fn render_advanced(a: AdvancedOrders) -> String {
    let names: Vec<&str> = [
        (a.conditional, "conditional"),
        (a.trailing, "trailing"),
        (a.iceberg, "iceberg"),
        (a.lists, "lists"),
        (a.good_till_date, "gtd"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// A pair's rules and status on one line, for `pair_changed` and `pair`;
/// the fee rates (`fees=maker/taker`) only when a pair has some.
pub fn render_rules(c: &PairConfig, status: TradingStatus) -> String {
    let fees = if c.fees == proto::Fees::ZERO {
        String::new()
    } else {
        format!(" fees={}/{}", c.fees.maker_bps, c.fees.taker_bps)
    };
    format!(
        "status={} tick={} lot={} min_qty={} max_qty={} max_price={} min_notional={} max_notional={} max_orders={} stp={:?} advanced={}{fees}",
        status.as_str(),
        c.tick_size.0,
        c.lot_size.0,
        c.min_qty.0,
        c.max_qty.0,
        c.max_price.0,
        c.min_notional.0,
        c.max_notional.0,
        c.max_open_orders,
        c.default_stp,
        render_advanced(c.advanced)
    )
}

/// A `change` command's fields: the same keys as a `config` line, each
/// optional (`advanced=` names only the flags it changes, see
/// [`advanced_change`]), and `status=trading|halt|break`.
fn parse_change(kv: &BTreeMap<&str, &str>) -> Result<PairChange, String> {
    let status = match kv.get("status").copied() {
        None => None,
        Some(s) => {
            Some(TradingStatus::from_name(&s.to_uppercase()).ok_or(format!("unknown status {s}"))?)
        }
    };
    Ok(PairChange {
        status,
        tick_size: num(kv, "tick")?.map(Price),
        lot_size: num(kv, "lot")?.map(Qty),
        min_qty: num(kv, "min_qty")?.map(Qty),
        max_qty: num(kv, "max_qty")?.map(Qty),
        max_price: num(kv, "max_price")?.map(Price),
        min_notional: num(kv, "min_notional")?.map(QuoteQty),
        max_notional: num(kv, "max_notional")?.map(QuoteQty),
        max_open_orders: num(kv, "max_orders")?
            .map(|v| u32::try_from(v).map_err(|e| e.to_string()))
            .transpose()?,
        default_stp: kv.get("stp").map(|v| stp(v)).transpose()?,
        advanced: kv
            .get("advanced")
            .map(|v| advanced_change(v))
            .transpose()?
            .unwrap_or_default(),
        maker_fee_bps: bps(kv, "maker_bps")?,
        taker_fee_bps: bps(kv, "taker_bps")?,
    })
}

fn bps(kv: &BTreeMap<&str, &str>, key: &str) -> Result<Option<u16>, String> {
    num(kv, key)?
        .map(|v| u16::try_from(v).map_err(|e| format!("{key}={v}: {e}")))
        .transpose()
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
/// change [status=halt] [tick=5] [lot=..] [min_qty=..] ... (ChangePair;
///     the keys of a `config` line, each optional)
/// ```
/// Any command takes `pair=SYM` to address another pair and `ts=T` to set
/// its timestamp (else `timestamp`).
pub fn parse_command(line: &str, pair: Symbol, timestamp: u64) -> Result<Command, String> {
    let mut parts = line.split('|');
    let (kv, bare) = words(parts.next().unwrap_or_default());
    let verb = *bare.first().ok_or("empty command")?;
    let user = match (verb, num(&kv, "u")?) {
        ("tick" | "change", u) => UserId(u.unwrap_or(0)),
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
            CommandBody::NewOrderList(Box::new(NewOrderList {
                list_id: OrderId(need(&kv, "l")?),
                client_list_id: cid,
                kind: if verb == "oco" {
                    ListKind::Oco
                } else {
                    ListKind::Oto
                },
                orders,
            }))
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
        "change" => CommandBody::ChangePair(Box::new(parse_change(&kv)?)),
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

/// The open orders in canonical order (`orders`), as scenario files have
/// always shown them.
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

/// Everything the book holds (`held`): the open orders in canonical order
/// with their advanced fields (an iceberg's slice and what shows of it,
/// expiry, list), then the orders waiting off the book in placement order
/// (`wait`, with what they wait for), then the open lists (`list`).
pub fn render_held(book: &OrderBook) -> Vec<String> {
    let resting = book.resting_orders().map(|o| {
        let shows = match o.iceberg_qty {
            Some(_) => format!(" vis={}", o.visible),
            None => String::new(),
        };
        format!(
            "{} p={} o={} u={} q={} rem={}{}{}{shows}{}",
            if o.side == Side::Buy { "bid" } else { "ask" },
            o.price,
            o.order_id,
            o.user,
            o.qty,
            o.remaining,
            if o.post_only { " post" } else { "" },
            cid_str(o.client_order_id),
            extras_str(o.iceberg_qty, o.good_till, o.list_id)
        )
    });
    let waiting = book.waiting_orders().map(|w| {
        let o = w.order;
        let waits = match w.wait {
            engine::WaitFor::List => " pending".to_string(),
            engine::WaitFor::Trigger { tracking: Some(p) } => format!(" tracking={p}"),
            engine::WaitFor::Trigger { tracking: None } => String::new(),
        };
        format!(
            "wait o={} u={} {} {} {} {:?}{}{}{waits}",
            o.order_id,
            w.user,
            side_str(o.side),
            type_str(o.order_type),
            size_str(o.size),
            o.time_in_force,
            cid_str(o.client_order_id),
            extras_str(o.iceberg_qty, o.good_till, w.list_id)
        )
    });
    let lists = book.open_lists().into_iter().map(|l| {
        format!(
            "list l={} u={} {} o={},{}{}",
            l.list_id,
            l.user,
            l.kind.as_str().to_lowercase(),
            l.legs[0],
            l.legs[1],
            cid_str(l.client_list_id)
        )
    });
    resting.chain(waiting).chain(lists).collect()
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
    /// Dormant conditional orders: a released one waits on for its trigger.
    conditional: std::collections::BTreeSet<OrderId>,
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
                // An id may come back once its order is done, even within
                // one command (expired in the prelude, then placed again).
                self.orders.remove(&a.order_id);
                self.budgets.remove(&a.order_id);
                self.conditional.remove(&a.order_id);
                self.dormant.remove(&a.order_id);
                let conditional = a.order_type.trigger().is_some();
                if self.pending.remove(&a.order_id) || conditional {
                    self.dormant.insert(a.order_id);
                }
                if conditional {
                    self.conditional.insert(a.order_id);
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
            EventBody::Triggered(Triggered { order_id, .. }) => {
                self.conditional.remove(order_id);
                if !self.dormant.remove(order_id) {
                    return Err(format!("{order_id} fired twice, or was not waiting"));
                }
            }
            EventBody::Released(Released { order_id, .. }) => {
                // A released conditional order waits on for its trigger.
                if !self.dormant.contains(order_id) {
                    return Err(format!("{order_id} released twice, or was not pending"));
                }
                if !self.conditional.contains(order_id) {
                    self.dormant.remove(order_id);
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
                self.conditional.remove(&c.order_id);
                if self.dormant.remove(&c.order_id)
                    && self.orders.get(&c.order_id).is_some_and(|o| o.2 != o.0)
                {
                    return Err(format!(
                        "{} was held off the book, not canceled whole",
                        c.order_id
                    ));
                }
            }
            // A waiting order sized within a budget reports no quantity:
            // only its stop price can change.
            EventBody::Amended(a) if self.budgets.contains_key(&a.order_id) => {}
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

/// Scenarios of the advanced order types, in the scenario language: run on
/// the fast book against their expected events by `scenarios.rs`, and
/// through the reference book by `reference.rs`. (`UPDATE_EXPECT=1 cargo
/// test -p engine --test scenarios advanced` prints them as they run.)
pub const ADVANCED_SCENARIOS: &[(&str, &str)] = &[
    ("stops_fire_stops", STOPS_FIRE_STOPS),
    ("iceberg_refills", ICEBERG_REFILLS),
    ("good_till_date", GOOD_TILL_DATE),
    ("lists", LISTS),
    ("amend_waiting", AMEND_WAITING),
    ("rejects", REJECTS),
];

const STOPS_FIRE_STOPS: &str = r"# A trade at 99 fires the stop at 99, whose market sell trades at 98 and
# fires the stop at 98: Triggered right after the trade that fires it, the
# fired order's work after the step.
> new o=1 u=1 buy limit p=100 q=5
1 accepted o=1 u=1 buy limit p=100 q=5 Gtc
2 book bid p=100 q=5
> new o=2 u=1 buy limit p=99 q=5
3 accepted o=2 u=1 buy limit p=99 q=5 Gtc
4 book bid p=99 q=5
> new o=3 u=1 buy limit p=98 q=5
5 accepted o=3 u=1 buy limit p=98 q=5 Gtc
6 book bid p=98 q=5
> new o=4 u=2 sell market q=1
7 accepted o=4 u=2 sell market q=1 Ioc
8 trade id=8 p=100 q=1 taker=o4/u2 sell rem:q=0 maker=o1/u1 rem:4
9 book bid p=100 q=4
> new o=5 u=3 sell stop_loss stop=99 q=5
10 accepted o=5 u=3 sell stop_loss stop=99 q=5 Ioc
> new o=6 u=4 sell stop_loss_limit p=97 stop=98 q=8
11 accepted o=6 u=4 sell stop_loss_limit p=97 stop=98 q=8 Gtc
> new o=7 u=5 buy take_profit_limit p=97 stop=97 q=2
12 accepted o=7 u=5 buy take_profit_limit p=97 stop=97 q=2 Gtc
> new o=8 u=2 sell limit p=99 q=5
13 accepted o=8 u=2 sell limit p=99 q=5 Gtc
14 trade id=14 p=100 q=4 taker=o8/u2 sell rem:q=1 maker=o1/u1 rem:0
15 book bid p=100 q=0
16 trade id=16 p=99 q=1 taker=o8/u2 sell rem:q=0 maker=o2/u1 rem:4
17 triggered o=5 u=3 sell p=99
18 book bid p=99 q=4
19 trade id=19 p=99 q=4 taker=o5/u3 sell rem:q=1 maker=o2/u1 rem:0
20 book bid p=99 q=0
21 trade id=21 p=98 q=1 taker=o5/u3 sell rem:q=0 maker=o3/u1 rem:4
22 triggered o=6 u=4 sell p=98
23 book bid p=98 q=4
24 trade id=24 p=98 q=4 taker=o6/u4 sell rem:q=4 maker=o3/u1 rem:0
25 book bid p=98 q=0
26 book ask p=97 q=4
> held
ask p=97 o=6 u=4 q=8 rem=4
wait o=7 u=5 buy take_profit_limit p=97 stop=97 q=2 Gtc
";

const ICEBERG_REFILLS: &str = r"# Only the slice shows; a slice that runs out refills at the back of its
# level, where the same taker meets it again.
> new o=1 u=1 sell limit p=100 q=10 iceberg=3
1 accepted o=1 u=1 sell limit p=100 q=10 Gtc iceberg=3
2 book ask p=100 q=3
> new o=2 u=1 sell limit p=100 q=4
3 accepted o=2 u=1 sell limit p=100 q=4 Gtc
4 book ask p=100 q=7
> depth
bids
asks 100x7
> new o=3 u=2 buy limit p=100 q=8
5 accepted o=3 u=2 buy limit p=100 q=8 Gtc
6 trade id=6 p=100 q=3 taker=o3/u2 buy rem:q=5 maker=o1/u1 rem:7
7 trade id=7 p=100 q=4 taker=o3/u2 buy rem:q=1 maker=o2/u1 rem:0
8 trade id=8 p=100 q=1 taker=o3/u2 buy rem:q=0 maker=o1/u1 rem:6
9 book ask p=100 q=2
> held
ask p=100 o=1 u=1 q=10 rem=6 vis=2 iceberg=3
> amend u=1 o=1 q=9
10 amended o=1 u=1 sell p=100 q=9 rem=5 priority=kept
> held
ask p=100 o=1 u=1 q=9 rem=5 vis=2 iceberg=3
> amend u=1 o=1 q=7
11 amended o=1 u=1 sell p=100 q=7 rem=3 priority=kept
> depth
bids
asks 100x2
> new o=4 u=2 buy fok limit p=100 q=3
12 accepted o=4 u=2 buy limit p=100 q=3 Fok
13 trade id=13 p=100 q=2 taker=o4/u2 buy rem:q=1 maker=o1/u1 rem:1
14 trade id=14 p=100 q=1 taker=o4/u2 buy rem:q=0 maker=o1/u1 rem:0
15 book ask p=100 q=0
> held
";

const GOOD_TILL_DATE: &str = r"# Orders expire before the first command stamped at or after their time,
# by (time, placement); time alone may expire them, or do nothing.
> new o=1 u=1 buy limit p=100 q=5 gtd=20 ts=5
1 accepted o=1 u=1 buy limit p=100 q=5 Gtd till=20
2 book bid p=100 q=5
> new o=2 u=1 buy stop_loss_limit p=120 stop=110 q=5 gtd=12
3 accepted o=2 u=1 buy stop_loss_limit p=120 stop=110 q=5 Gtd till=12
> new o=3 u=2 buy limit p=101 q=5 gtd=12
4 accepted o=3 u=2 buy limit p=101 q=5 Gtd till=12
5 book bid p=101 q=5
> tick ts=11
> tick ts=12
6 canceled o=2 u=1 buy rem:q=5 Expired
7 canceled o=3 u=2 buy rem:q=5 Expired
8 book bid p=101 q=0
> held
bid p=100 o=1 u=1 q=5 rem=5 till=20
> new o=4 u=2 sell limit p=130 q=1 gtd=20 ts=19
9 accepted o=4 u=2 sell limit p=130 q=1 Gtd till=20
10 book ask p=130 q=1
> new o=5 u=2 sell limit p=131 q=1 gtd=19
11 canceled o=1 u=1 buy rem:q=5 Expired
12 book bid p=100 q=0
13 canceled o=4 u=2 sell rem:q=1 Expired
14 book ask p=130 q=0
15 rejected NewOrder u=2 o=5 code=309 GoodTillPassed
> tick ts=25
> held
";

const LISTS: &str = r"# OTO: the pending order is placed once the working order filled.
> oto l=10 u=1 | o=11 buy limit p=100 q=5 | o=12 sell limit p=110 q=5
1 list_accepted l=10 u=1 oto o=11,12
2 accepted o=11 u=1 buy limit p=100 q=5 Gtc list=10
3 accepted o=12 u=1 sell limit p=110 q=5 Gtc list=10
4 book bid p=100 q=5
> new o=13 u=2 sell limit p=100 q=3
5 accepted o=13 u=2 sell limit p=100 q=3 Gtc
6 trade id=6 p=100 q=3 taker=o13/u2 sell rem:q=0 maker=o11/u1 rem:2
7 book bid p=100 q=2
> held
bid p=100 o=11 u=1 q=5 rem=2 list=10
wait o=12 u=1 sell limit p=110 q=5 Gtc list=10 pending
list l=10 u=1 oto o=11,12
> new o=14 u=2 sell limit p=100 q=2
8 accepted o=14 u=2 sell limit p=100 q=2 Gtc
9 trade id=9 p=100 q=2 taker=o14/u2 sell rem:q=0 maker=o11/u1 rem:0
10 book bid p=100 q=0
11 released o=12 u=1 sell
12 list_done l=10 u=1
13 book ask p=110 q=5
> held
ask p=110 o=12 u=1 q=5 rem=5 list=10
# OCO: canceling one order ends the list; so does its first trade.
> oco l=20 u=3 cid=x | o=21 sell limit p=120 q=2 post | o=22 sell stop_loss_limit p=90 stop=95 q=2
14 list_accepted l=20 u=3 oco o=21,22 cid=x
15 accepted o=21 u=3 sell limit p=120 q=2 Gtc post list=20
16 accepted o=22 u=3 sell stop_loss_limit p=90 stop=95 q=2 Gtc list=20
17 book ask p=120 q=2
> cancel u=3 o=22
18 canceled o=22 u=3 sell rem:q=2 UserRequest
19 canceled o=21 u=3 sell rem:q=2 ListSibling
20 book ask p=120 q=0
21 list_done l=20 u=3 cid=x
> oco l=30 u=3 cid=x | o=31 sell limit p=120 q=2 post | o=32 sell stop_loss stop=95 q=2 gtc
22 rejected NewOrderList u=3 o=30 cid=x code=206 InvalidTimeInForce
> oco l=30 u=3 cid=x | o=31 sell limit p=120 q=2 post | o=32 sell stop_loss_limit p=90 stop=95 q=2
23 list_accepted l=30 u=3 oco o=31,32 cid=x
24 accepted o=31 u=3 sell limit p=120 q=2 Gtc post list=30
25 accepted o=32 u=3 sell stop_loss_limit p=90 stop=95 q=2 Gtc list=30
26 book ask p=120 q=2
> held
ask p=110 o=12 u=1 q=5 rem=5 list=10
ask p=120 o=31 u=3 q=2 rem=2 post list=30
wait o=32 u=3 sell stop_loss_limit p=90 stop=95 q=2 Gtc list=30
list l=30 u=3 oco o=31,32 cid=x
> new o=33 u=4 buy limit p=120 q=5
27 accepted o=33 u=4 buy limit p=120 q=5 Gtc
28 trade id=28 p=110 q=5 taker=o33/u4 buy rem:q=0 maker=o12/u1 rem:0
29 book ask p=110 q=0
> held
ask p=120 o=31 u=3 q=2 rem=2 post list=30
wait o=32 u=3 sell stop_loss_limit p=90 stop=95 q=2 Gtc list=30
list l=30 u=3 oco o=31,32 cid=x
# A stop's firing ends its OCO too; the stop then works.
> oco l=60 u=6 | o=61 buy limit p=100 q=2 post | o=62 buy stop_loss_limit p=125 stop=121 q=2
30 list_accepted l=60 u=6 oco o=61,62
31 accepted o=61 u=6 buy limit p=100 q=2 Gtc post list=60
32 accepted o=62 u=6 buy stop_loss_limit p=125 stop=121 q=2 Gtc list=60
33 book bid p=100 q=2
> oco l=60 u=6 | o=63 buy limit p=100 q=2 post | o=64 buy stop_loss_limit p=125 stop=121 q=2
34 rejected NewOrderList u=6 o=60 code=311 DuplicateOrderListId
> cancel_list u=7 l=60
35 rejected CancelList u=7 o=60 code=310 UnknownOrderList
> new o=65 u=4 buy limit p=121 q=1
36 accepted o=65 u=4 buy limit p=121 q=1 Gtc
37 trade id=37 p=120 q=1 taker=o65/u4 buy rem:q=0 maker=o31/u3 rem:1
38 canceled o=32 u=3 sell rem:q=2 ListSibling
39 list_done l=30 u=3 cid=x
40 book ask p=120 q=1
> new o=66 u=7 sell limit p=121 q=1
41 accepted o=66 u=7 sell limit p=121 q=1 Gtc
42 book ask p=121 q=1
> new o=67 u=4 buy limit p=121 q=1
43 accepted o=67 u=4 buy limit p=121 q=1 Gtc
44 trade id=44 p=120 q=1 taker=o67/u4 buy rem:q=0 maker=o31/u3 rem:0
45 book ask p=120 q=0
> new o=68 u=4 buy limit p=121 q=1
46 accepted o=68 u=4 buy limit p=121 q=1 Gtc
47 trade id=47 p=121 q=1 taker=o68/u4 buy rem:q=0 maker=o66/u7 rem:0
48 triggered o=62 u=6 buy p=121
49 canceled o=61 u=6 buy rem:q=2 ListSibling
50 book bid p=100 q=0
51 list_done l=60 u=6
52 book ask p=121 q=0
53 book bid p=125 q=2
> held
bid p=125 o=62 u=6 q=2 rem=2 list=60
# An OTO whose working order ends unfilled cancels its pending order.
> oto l=70 u=8 | o=71 buy ioc limit p=119 q=3 | o=72 sell limit p=150 q=3
54 list_accepted l=70 u=8 oto o=71,72
55 accepted o=71 u=8 buy limit p=119 q=3 Ioc list=70
56 accepted o=72 u=8 sell limit p=150 q=3 Gtc list=70
57 canceled o=71 u=8 buy rem:q=3 IocRemainder
58 canceled o=72 u=8 sell rem:q=3 ListSibling
59 list_done l=70 u=8
> oco l=40 u=3 | o=41 buy take_profit_limit p=90 stop=90 q=2 | o=42 buy stop_loss_limit p=130 stop=125 q=2
60 list_accepted l=40 u=3 oco o=41,42
61 accepted o=41 u=3 buy take_profit_limit p=90 stop=90 q=2 Gtc list=40
62 accepted o=42 u=3 buy stop_loss_limit p=130 stop=125 q=2 Gtc list=40
> cancel_list u=3 l=40
63 canceled o=41 u=3 buy rem:q=2 UserRequest
64 canceled o=42 u=3 buy rem:q=2 UserRequest
65 list_done l=40 u=3
> oto l=50 u=5 | o=51 buy limit p=95 q=1 | o=52 sell take_profit stop=130 q=1
66 list_accepted l=50 u=5 oto o=51,52
67 accepted o=51 u=5 buy limit p=95 q=1 Gtc list=50
68 accepted o=52 u=5 sell take_profit stop=130 q=1 Ioc list=50
69 book bid p=95 q=1
> cancel_all u=5
70 canceled o=51 u=5 buy rem:q=1 CancelAll
71 book bid p=95 q=0
72 canceled o=52 u=5 sell rem:q=1 CancelAll
73 list_done l=50 u=5
74 canceled_all u=5 count=2
";

const AMEND_WAITING: &str = r"# A waiting order's limit, stop and quantity change in place.
> new o=1 u=1 sell limit p=100 q=1
1 accepted o=1 u=1 sell limit p=100 q=1 Gtc
2 book ask p=100 q=1
> new o=2 u=2 buy limit p=100 q=1
3 accepted o=2 u=2 buy limit p=100 q=1 Gtc
4 trade id=4 p=100 q=1 taker=o2/u2 buy rem:q=0 maker=o1/u1 rem:0
5 book ask p=100 q=0
> new o=3 u=3 sell stop_loss_limit p=90 stop=95 q=4
6 accepted o=3 u=3 sell stop_loss_limit p=90 stop=95 q=4 Gtc
> amend u=3 o=3 stop=96
7 amended o=3 u=3 sell p=90 stop=96 q=4 rem=4 priority=kept
> amend u=3 o=3 p=91 q=6
8 amended o=3 u=3 sell p=91 stop=96 q=6 rem=6 priority=kept
> amend u=3 o=3 stop=100
9 rejected Amend u=3 o=3 code=308 WouldTriggerImmediately
> amend u=3 o=3 stop=96
10 rejected Amend u=3 o=3 code=209 NothingToAmend
> new o=4 u=3 buy stop_loss trail=500 q=2
11 accepted o=4 u=3 buy stop_loss trail=500 q=2 Ioc
> amend u=3 o=4 stop=120
12 rejected Amend u=3 o=4 code=213 InvalidTrigger
> new o=5 u=3 sell limit p=140 q=1
13 accepted o=5 u=3 sell limit p=140 q=1 Gtc
14 book ask p=140 q=1
> amend u=3 o=5 stop=120
15 rejected Amend u=3 o=5 code=213 InvalidTrigger
# A trailing sell with a stop starts trailing at the first trade at or
# below its stop, then fires on a 10% fall from the highest since.
> new o=6 u=4 sell stop_loss_limit p=80 stop=95 trail=1000 q=1
16 accepted o=6 u=4 sell stop_loss_limit p=80 stop=95 trail=1000 q=1 Gtc
> new o=7 u=1 buy limit p=95 q=1
17 accepted o=7 u=1 buy limit p=95 q=1 Gtc
18 book bid p=95 q=1
> new o=8 u=2 sell limit p=95 q=1
19 accepted o=8 u=2 sell limit p=95 q=1 Gtc
20 trade id=20 p=95 q=1 taker=o8/u2 sell rem:q=0 maker=o7/u1 rem:0
21 triggered o=3 u=3 sell p=95
22 book bid p=95 q=0
23 book ask p=91 q=6
> new o=9 u=1 buy limit p=99 q=1
24 accepted o=9 u=1 buy limit p=99 q=1 Gtc
25 trade id=25 p=91 q=1 taker=o9/u1 buy rem:q=0 maker=o3/u3 rem:5
26 book ask p=91 q=5
> new o=10 u=2 sell limit p=99 q=1
27 accepted o=10 u=2 sell limit p=99 q=1 Gtc
28 book ask p=99 q=1
> held
ask p=91 o=3 u=3 q=6 rem=5
ask p=99 o=10 u=2 q=1 rem=1
ask p=140 o=5 u=3 q=1 rem=1
wait o=4 u=3 buy stop_loss trail=500 q=2 Ioc tracking=91
wait o=6 u=4 sell stop_loss_limit p=80 stop=95 trail=1000 q=1 Gtc tracking=95
> new o=11 u=1 buy limit p=85 q=2
29 accepted o=11 u=1 buy limit p=85 q=2 Gtc
30 book bid p=85 q=2
> new o=12 u=2 sell limit p=85 q=1
31 accepted o=12 u=2 sell limit p=85 q=1 Gtc
32 trade id=32 p=85 q=1 taker=o12/u2 sell rem:q=0 maker=o11/u1 rem:1
33 triggered o=6 u=4 sell p=85
34 book bid p=85 q=1
35 trade id=35 p=85 q=1 taker=o6/u4 sell rem:q=0 maker=o11/u1 rem:0
36 book bid p=85 q=0
> held
ask p=91 o=3 u=3 q=6 rem=5
ask p=99 o=10 u=2 q=1 rem=1
ask p=140 o=5 u=3 q=1 rem=1
wait o=4 u=3 buy stop_loss trail=500 q=2 Ioc tracking=85
";

const REJECTS: &str = r"config advanced=conditional,lists max_orders=3
> new o=1 u=1 buy limit p=100 q=10 iceberg=2
1 rejected NewOrder u=1 o=1 code=217 OrderTypeNotAllowed
> new o=2 u=1 buy limit p=100 q=10 gtd=50
2 rejected NewOrder u=1 o=2 code=217 OrderTypeNotAllowed
> new o=3 u=1 buy stop_loss stop=110 trail=100 q=1
3 rejected NewOrder u=1 o=3 code=217 OrderTypeNotAllowed
> new o=4 u=1 buy stop_loss q=1
4 rejected NewOrder u=1 o=4 code=213 InvalidTrigger
> new o=5 u=1 buy stop_loss stop=110 q=1 gtc
5 rejected NewOrder u=1 o=5 code=206 InvalidTimeInForce
> new o=6 u=1 buy stop_loss_limit p=100 stop=110 q=1 post
6 rejected NewOrder u=1 o=6 code=207 PostOnlyNotAllowed
> oco l=7 u=1 | o=8 sell limit p=120 q=2 | o=9 sell stop_loss_limit p=90 stop=95 q=2
7 rejected NewOrderList u=1 o=7 code=216 InvalidOrderList
> oco l=7 u=1 | o=8 sell limit p=120 q=2 post | o=9 sell stop_loss_limit p=90 stop=95 q=3
8 rejected NewOrderList u=1 o=7 code=216 InvalidOrderList
> oto l=7 u=1 | o=8 sell market q=2 | o=9 sell limit p=90 q=2
9 rejected NewOrderList u=1 o=7 code=216 InvalidOrderList
> oco l=7 u=1 | o=8 sell limit p=120 q=2 post | o=8 sell stop_loss_limit p=90 stop=95 q=2
10 rejected NewOrderList u=1 o=7 code=301 DuplicateOrderId
> cancel_list u=1 l=7
11 rejected CancelList u=1 o=7 code=310 UnknownOrderList
> new o=10 u=1 buy stop_loss_limit p=100 stop=110 q=1
12 accepted o=10 u=1 buy stop_loss_limit p=100 stop=110 q=1 Gtc
> new o=11 u=1 buy limit p=90 q=1
13 accepted o=11 u=1 buy limit p=90 q=1 Gtc
14 book bid p=90 q=1
> oco l=12 u=1 | o=13 sell limit p=120 q=2 post | o=14 sell stop_loss_limit p=90 stop=95 q=2
15 rejected NewOrderList u=1 o=12 code=305 BookFull
> new o=15 u=1 buy limit p=91 q=1
16 accepted o=15 u=1 buy limit p=91 q=1 Gtc
17 book bid p=91 q=1
> new o=16 u=1 buy limit p=92 q=1
18 rejected NewOrder u=1 o=16 code=305 BookFull
> new o=17 u=1 buy market q=1
19 accepted o=17 u=1 buy market q=1 Ioc
20 canceled o=17 u=1 buy rem:q=1 IocRemainder
";
