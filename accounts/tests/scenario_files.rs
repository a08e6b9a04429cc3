//! Data-driven scenarios for the risk shard, in the style of the engine's:
//! each `testdata/*.txt` file lists steps (`> ` lines) and, under each, the
//! exact lines it must produce. Orders go through the shard first and, if it
//! locks, through the real `engine::OrderBook` of their pair; every engine
//! event is fed back as `Input::Settle`. Run with `UPDATE_EXPECT=1` to
//! rewrite the expectations from the actual output, then review the diff:
//! the numbers in the files were computed by hand.
//!
//! ```text
//! config pair=BTC-EUR [price_scale=2] [qty_scale=3] [max_qty=..] [max_price=..] ...
//!                                      (one line per pair; the first is the
//!                                      default pair of every step)
//! fees maker=10 taker=20               (rates of the orders placed after it)
//! > deposit u=1 EUR 10_000 ref=1       (amounts in units of the asset's scale)
//! > withdraw u=1 EUR 500 ref=2
//! > new o=1 u=1 buy limit p=100 q=5 [gtc|ioc|fok] [post] [stp=ct|cm|cb]
//! > new o=2 u=2 buy market quote=500 | buy market q=3 [budget=900] | sell market q=3
//! > new o=3 u=1 sell stop_loss_limit p=95 stop=96 q=5 (also stop_loss,
//!                                      take_profit(_limit); trail=BPS with
//!                                      or instead of stop=)
//! > new o=4 u=1 buy limit p=100 q=9 iceberg=3 [gtd=5000]
//! > oco l=9 u=1 | o=5 sell limit p=110 q=5 post | o=6 sell stop_loss stop=90 q=5
//! > oto l=10 u=1 | o=7 buy limit p=100 q=5 | o=8 sell limit p=120 q=5
//! > cancel u=1 o=1 | cancel_all u=1 | cancel_list u=1 l=9
//! > amend u=1 o=1 [q=7] [p=101] [stop=99]
//! > tick                               (AdvanceTime: no user, no order)
//! > balances [u=1]                     (every non-empty account; without u=,
//!                                      then the non-empty fee accounts)
//! ```
//! Any order step takes `pair=SYM` and `maker=`/`taker=` to override (a
//! list's on its first part, before the first `|`), and any step `ts=N`:
//! the timestamp of its command and of those after it (from 1).
//!
//! What a step prints: the shard's outputs (`locked`, `released`, `filled`,
//! `deposited`, `withdrew`, `duplicate`, `refused CODE`; the `Settled`
//! acknowledgements are left out; an OCO list locks and releases under its
//! list id) and, before the shard's answer to each, the engine events that
//! matter to accounts (`book trade`, `book canceled`, `book rejected`,
//! `book amended`) or explain them (`book triggered`, `book released`,
//! `book list_done`). A step that cannot be parsed prints
//! `error: ...`, so the files also test what the language refuses.
//!
//! After every input the shard's audit must pass (see `common`); at the end
//! of each file a snapshot restored and a replay from scratch must give the
//! same state hash.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use accounts::{AssetId, Duplicate, Fees, Input, Output, Place, PlaceList, Reference, Role, Shard};
use common::Harness;
use proto::{
    Amend, Command, CommandBody, ConditionalKind, Event, EventBody, ListKind, NewOrder,
    NewOrderList, OrderId, OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, QuoteQty, Side,
    StpMode, Symbol, TimeInForce, Timestamp, Trigger, UserId,
};

enum Item {
    /// A comment, blank line, `config` or `fees` line, kept as written.
    Verbatim(String),
    /// A step and the output lines expected from it.
    Step { line: String, expected: Vec<String> },
}

fn parse_file(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for line in text.lines() {
        if let Some(step) = line.strip_prefix("> ") {
            items.push(Item::Step {
                line: step.trim().to_string(),
                expected: Vec::new(),
            });
        } else if line.starts_with('#')
            || line.trim().is_empty()
            || line.starts_with("config")
            || line.starts_with("fees")
        {
            items.push(Item::Verbatim(line.to_string()));
        } else if let Some(Item::Step { expected, .. }) = items.last_mut() {
            expected.push(line.trim().to_string());
        } else {
            items.push(Item::Verbatim(line.to_string()));
        }
    }
    items
}

/// `key=value` words into a map, bare words into a list.
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

/// An unsigned number; `_` may group digits. A leading `-` gets its own
/// message: the shard's amounts are unsigned, so there is no negative input
/// to send.
fn number<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    if v.starts_with('-') {
        return Err(format!(
            "{what} {v} is negative: amounts are unsigned, a negative one cannot be sent"
        ));
    }
    v.replace('_', "")
        .parse::<T>()
        .map_err(|e| format!("{what} {v}: {e}"))
}

fn opt(kv: &BTreeMap<&str, &str>, key: &str) -> Result<Option<u64>, String> {
    kv.get(key)
        .map(|v| number(&format!("{key}="), v))
        .transpose()
}

fn need(kv: &BTreeMap<&str, &str>, key: &str) -> Result<u64, String> {
    opt(kv, key)?.ok_or_else(|| format!("missing {key}="))
}

fn symbol(v: &str) -> Result<Symbol, String> {
    Symbol::new(v).map_err(|e| e.to_string())
}

/// `config pair=SYM key=value...` over `PairConfig::simple`.
fn parse_config(line: &str) -> Result<PairConfig, String> {
    let (kv, _) = words(line);
    let mut c = PairConfig::simple(symbol(kv.get("pair").ok_or("config needs pair=")?)?);
    let small = |k: &str| -> Result<Option<u8>, String> {
        opt(&kv, k)?
            .map(|v| u8::try_from(v).map_err(|e| format!("{k}: {e}")))
            .transpose()
    };
    c.price_scale = small("price_scale")?.unwrap_or(c.price_scale);
    c.qty_scale = small("qty_scale")?.unwrap_or(c.qty_scale);
    c.tick_size = Price(opt(&kv, "tick")?.unwrap_or(c.tick_size.0));
    c.lot_size = Qty(opt(&kv, "lot")?.unwrap_or(c.lot_size.0));
    c.min_qty = Qty(opt(&kv, "min_qty")?.unwrap_or(c.min_qty.0));
    c.max_qty = Qty(opt(&kv, "max_qty")?.unwrap_or(c.max_qty.0));
    c.max_price = Price(opt(&kv, "max_price")?.unwrap_or(c.max_price.0));
    c.max_notional = QuoteQty(opt(&kv, "max_notional")?.unwrap_or(c.max_notional.0));
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// `fees maker=M taker=T`.
fn parse_fees(kv: &BTreeMap<&str, &str>, default: Fees) -> Result<Fees, String> {
    let bps = |k: &str, d: u16| -> Result<u16, String> {
        opt(kv, k)?.map_or(Ok(d), |v| {
            u16::try_from(v).map_err(|e| format!("{k}={v}: {e}"))
        })
    };
    Ok(Fees {
        maker_bps: bps("maker", default.maker_bps)?,
        taker_bps: bps("taker", default.taker_bps)?,
    })
}

fn stp(v: &str) -> Result<StpMode, String> {
    Ok(match v {
        "none" => StpMode::None,
        "ct" => StpMode::CancelTaker,
        "cm" => StpMode::CancelMaker,
        "cb" => StpMode::CancelBoth,
        _ => return Err(format!("unknown stp mode {v}")),
    })
}

/// The order type its words name: `limit` (the default), `market`, or a
/// conditional one with `stop=` and/or `trail=`.
fn parse_type(kv: &BTreeMap<&str, &str>, bare: &[&str]) -> Result<OrderType, String> {
    let conditional = [
        ("stop_loss", ConditionalKind::StopLoss, false),
        ("stop_loss_limit", ConditionalKind::StopLoss, true),
        ("take_profit", ConditionalKind::TakeProfit, false),
        ("take_profit_limit", ConditionalKind::TakeProfit, true),
    ];
    if let Some(&(_, kind, has_limit)) = conditional.iter().find(|(w, ..)| bare.contains(w)) {
        let trailing_delta = opt(kv, "trail")?
            .map(|t| u32::try_from(t).map_err(|e| format!("trail={t}: {e}")))
            .transpose()?;
        return Ok(OrderType::Conditional {
            kind,
            limit: if has_limit {
                Some(Price(need(kv, "p")?))
            } else {
                None
            },
            trigger: Trigger {
                stop_price: opt(kv, "stop")?.map(Price),
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

fn parse_order(kv: &BTreeMap<&str, &str>, bare: &[&str]) -> Result<NewOrder, String> {
    let side = if bare.contains(&"buy") {
        Side::Buy
    } else if bare.contains(&"sell") {
        Side::Sell
    } else {
        return Err("new needs buy or sell".into());
    };
    let order_type = parse_type(kv, bare)?;
    let market = order_type.is_market();
    let good_till = opt(kv, "gtd")?.map(Timestamp);
    let time_in_force = if bare.contains(&"fok") {
        TimeInForce::Fok
    } else if bare.contains(&"ioc") || (market && !bare.contains(&"gtc")) {
        TimeInForce::Ioc
    } else if good_till.is_some() {
        TimeInForce::Gtd
    } else {
        TimeInForce::Gtc
    };
    let size = match (opt(kv, "quote")?, opt(kv, "budget")?) {
        (Some(q), _) => OrderSize::Quote(QuoteQty(q)),
        (None, Some(b)) => OrderSize::BaseWithin {
            qty: Qty(need(kv, "q")?),
            budget: QuoteQty(b),
        },
        (None, None) => OrderSize::Base(Qty(need(kv, "q")?)),
    };
    Ok(NewOrder {
        order_id: OrderId(need(kv, "o")?),
        client_order_id: None,
        side,
        order_type,
        time_in_force,
        post_only: bare.contains(&"post"),
        stp: kv.get("stp").map(|v| stp(v)).transpose()?,
        size,
        iceberg_qty: opt(kv, "iceberg")?.map(Qty),
        good_till,
    })
}

/// `oco l=9 u=1 | LEG | LEG` (or `oto`): each leg as a `new` step's words.
fn parse_list(line: &str, ctx: &Ctx) -> Result<PlaceList, String> {
    let mut parts = line.split('|');
    let head = parts.next().unwrap_or_default();
    let legs: Vec<&str> = parts.collect();
    let [a, b] = legs[..] else {
        return Err("a list needs two orders, each after a `|`".into());
    };
    let (kv, bare) = words(head);
    let kind = match bare.first() {
        Some(&"oco") => ListKind::Oco,
        Some(&"oto") => ListKind::Oto,
        _ => return Err("a list is oco or oto".into()),
    };
    let leg = |text: &str| {
        let (kv, bare) = words(text);
        parse_order(&kv, &bare)
    };
    Ok(PlaceList {
        pair: kv.get("pair").map_or(Ok(ctx.pair), |p| symbol(p))?,
        user: UserId(need(&kv, "u")?),
        list: NewOrderList {
            list_id: OrderId(need(&kv, "l")?),
            client_list_id: None,
            kind,
            orders: [leg(a)?, leg(b)?],
        },
        fees: parse_fees(&kv, ctx.fees)?,
    })
}

/// One step, parsed.
#[derive(Debug)]
enum Step {
    Movement(Input),
    Place(Place),
    PlaceList(PlaceList),
    /// The shard's amend, and the new stop price the book gets too.
    Amend(accounts::Amend, Option<Price>),
    /// A command that goes straight to the book (cancel, cancel-all).
    Book(Command),
    Balances(Option<UserId>),
}

/// The files' state besides the shard: the default pair and fees, and
/// the commands' timestamp.
struct Ctx {
    pair: Symbol,
    fees: Fees,
    now: u64,
}

fn parse_step(line: &str, ctx: &Ctx, shard: &Shard) -> Result<Step, String> {
    let (kv, bare) = words(line);
    let verb = *bare.first().ok_or("empty step")?;
    let pair = kv.get("pair").map_or(Ok(ctx.pair), |p| symbol(p))?;
    match verb {
        "balances" => return Ok(Step::Balances(opt(&kv, "u")?.map(UserId))),
        "tick" => {
            let time = command(pair, pipeline_time_user(), CommandBody::AdvanceTime, ctx);
            return Ok(Step::Book(time));
        }
        "oco" | "oto" => return Ok(Step::PlaceList(parse_list(line, ctx)?)),
        _ => {}
    }
    let user = UserId(need(&kv, "u")?);
    match verb {
        "deposit" | "withdraw" => {
            let [_, asset, amount] = bare[..] else {
                return Err(format!("{verb} u=U ASSET AMOUNT ref=R"));
            };
            // An asset the shard does not know gets the first unused id.
            let asset = shard
                .asset_id(asset)
                .unwrap_or(AssetId(u16::try_from(shard.assets().len()).unwrap_or(0)));
            let amount: u128 = number("amount", amount)?;
            let reference = Reference(need(&kv, "ref")?);
            Ok(Step::Movement(if verb == "deposit" {
                Input::Deposit {
                    user,
                    asset,
                    amount,
                    reference,
                }
            } else {
                Input::Withdraw {
                    user,
                    asset,
                    amount,
                    reference,
                }
            }))
        }
        "new" => Ok(Step::Place(Place {
            pair,
            user,
            order: parse_order(&kv, &bare)?,
            fees: parse_fees(&kv, ctx.fees)?,
        })),
        "amend" => Ok(Step::Amend(
            accounts::Amend {
                pair,
                user,
                order_id: OrderId(need(&kv, "o")?),
                new_qty: opt(&kv, "q")?.map(Qty),
                new_price: opt(&kv, "p")?.map(Price),
            },
            opt(&kv, "stop")?.map(Price),
        )),
        "cancel" => Ok(Step::Book(command(
            pair,
            user,
            CommandBody::Cancel {
                target: OrderRef::Id(OrderId(need(&kv, "o")?)),
            },
            ctx,
        ))),
        "cancel_list" => Ok(Step::Book(command(
            pair,
            user,
            CommandBody::CancelList {
                target: OrderRef::Id(OrderId(need(&kv, "l")?)),
            },
            ctx,
        ))),
        "cancel_all" => Ok(Step::Book(command(pair, user, CommandBody::CancelAll, ctx))),
        other => Err(format!("unknown step {other}")),
    }
}

/// The user of an `AdvanceTime` command (the pipeline's sequencer uses 0).
fn pipeline_time_user() -> UserId {
    UserId(0)
}

fn command(pair: Symbol, user: UserId, body: CommandBody, ctx: &Ctx) -> Command {
    Command {
        pair,
        user,
        timestamp: Timestamp(ctx.now),
        body,
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

/// The engine events that matter to accounts, one line each.
fn render_event(e: &Event) -> Option<String> {
    Some(match &e.body {
        EventBody::Trade(t) => format!(
            "book trade p={} q={} taker=o{} maker=o{}",
            t.price, t.qty, t.taker_order_id, t.maker_order_id
        ),
        EventBody::Canceled(c) => format!(
            "book canceled o={} rem:{} {:?}",
            c.order_id,
            size_str(c.remaining),
            c.reason
        ),
        EventBody::Rejected(r) => format!(
            "book rejected {:?}{} {:?}",
            r.command,
            r.order_id.map(|o| format!(" o={o}")).unwrap_or_default(),
            r.code
        ),
        EventBody::Amended(a) => format!(
            "book amended o={} p={} q={} rem={}{}",
            a.order_id,
            a.price,
            a.qty,
            a.remaining,
            a.stop_price
                .map(|s| format!(" stop={s}"))
                .unwrap_or_default()
        ),
        EventBody::CanceledAll(c) => format!("book canceled_all u={} count={}", c.user, c.count),
        EventBody::Triggered(t) => format!("book triggered o={} p={}", t.order_id, t.price),
        EventBody::Released(r) => format!("book released o={}", r.order_id),
        EventBody::ListDone(l) => format!("book list_done l={}", l.list_id),
        EventBody::Accepted(_)
        | EventBody::BookDelta(_)
        | EventBody::ListAccepted(_)
        | EventBody::PairChanged(_) => {
            return None;
        }
    })
}

fn asset_name(shard: &Shard, a: AssetId) -> String {
    shard
        .assets()
        .get(usize::from(a.0))
        .map_or_else(|| format!("#{}", a.0), |i| i.name.clone())
}

/// The shard's outputs, one line each (`Settled` acknowledgements left out).
fn render_output(shard: &Shard, multi: bool, o: &Output) -> Option<String> {
    let pair = |p: Symbol| {
        if multi {
            format!(" {p}")
        } else {
            String::new()
        }
    };
    Some(match *o {
        Output::Deposited {
            user,
            asset,
            amount,
            reference,
        } => format!(
            "deposited u={user} {} {amount} ref={}",
            asset_name(shard, asset),
            reference.0
        ),
        Output::Withdrew {
            user,
            asset,
            amount,
            reference,
        } => format!(
            "withdrew u={user} {} {amount} ref={}",
            asset_name(shard, asset),
            reference.0
        ),
        Output::Duplicate(Duplicate::Reference(r)) => format!("duplicate ref={}", r.0),
        Output::Duplicate(Duplicate::Settle { pair, seq }) => {
            format!("duplicate settle {pair} seq={seq}")
        }
        Output::Rejected(code) => format!("refused {code:?}"),
        Output::Locked {
            user,
            asset,
            pair: p,
            order_id,
            amount,
        } => format!(
            "locked u={user}{} o={order_id} {} {amount}",
            pair(p),
            asset_name(shard, asset)
        ),
        Output::Released {
            user,
            asset,
            pair: p,
            order_id,
            amount,
        } => format!(
            "released u={user}{} o={order_id} {} {amount}",
            pair(p),
            asset_name(shard, asset)
        ),
        Output::Filled {
            user,
            pair: p,
            order_id,
            role,
            side,
            base,
            quote,
            fee,
            ..
        } => format!(
            "filled u={user}{} o={order_id} {} {} base={base} quote={quote} fee={fee}",
            pair(p),
            match role {
                Role::Maker => "maker",
                Role::Taker => "taker",
            },
            side_str(side)
        ),
        Output::Settled { .. } => return None,
    })
}

fn render_balances(shard: &Shard, only: Option<UserId>) -> Vec<String> {
    let mut lines: Vec<String> = shard
        .balances()
        .filter(|&(u, _, b)| only.is_none_or(|o| o == u) && (b.free, b.locked) != (0, 0))
        .map(|(u, a, b)| {
            format!(
                "u={u} {} free={} locked={}",
                asset_name(shard, a),
                b.free,
                b.locked
            )
        })
        .collect();
    if only.is_none() {
        let fees: Vec<String> = (0..shard.assets().len())
            .filter_map(|i| {
                let a = AssetId(u16::try_from(i).ok()?);
                let f = shard.fee_account(a);
                (f > 0).then(|| format!(" {}={f}", asset_name(shard, a)))
            })
            .collect();
        if fees.is_empty() {
            lines.push("fee accounts none".into());
        } else {
            lines.push(format!("fee accounts{}", fees.concat()));
        }
    }
    lines
}

/// The shard in front of its books, and what the file has printed.
struct Runner {
    h: Harness,
    multi: bool,
    /// The timestamp of the next commands.
    now: u64,
}

impl Runner {
    fn shard_says(&mut self, input: Input, lines: &mut Vec<String>) -> Vec<Output> {
        let out = self.h.input(input);
        let (shard, multi) = (&self.h.shard, self.multi);
        lines.extend(out.iter().filter_map(|o| render_output(shard, multi, o)));
        out
    }

    /// Runs a command through its book and settles each event.
    fn book(&mut self, cmd: &Command, lines: &mut Vec<String>) -> Result<(), String> {
        let book = self
            .h
            .books
            .get_mut(&cmd.pair)
            .ok_or_else(|| format!("no book for {}", cmd.pair))?;
        for e in book.apply_one(cmd) {
            lines.extend(render_event(&e));
            self.shard_says(Input::Settle(e), lines);
        }
        Ok(())
    }

    fn step(&mut self, step: Step) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        match step {
            Step::Movement(i) => {
                self.shard_says(i, &mut lines);
            }
            Step::Place(p) => {
                let out = self.shard_says(Input::Place(p), &mut lines);
                if !matches!(out[..], [Output::Rejected(_)]) {
                    let cmd = self.command(p.pair, p.user, CommandBody::NewOrder(p.order));
                    self.book(&cmd, &mut lines)?;
                }
            }
            Step::PlaceList(l) => {
                let out = self.shard_says(Input::PlaceList(l), &mut lines);
                if !matches!(out[..], [Output::Rejected(_)]) {
                    let cmd =
                        self.command(l.pair, l.user, CommandBody::NewOrderList(Box::new(l.list)));
                    self.book(&cmd, &mut lines)?;
                }
            }
            Step::Amend(a, stop) => {
                let out = self.shard_says(Input::Amend(a), &mut lines);
                if !matches!(out[..], [Output::Rejected(_)]) {
                    let body = CommandBody::Amend(Amend {
                        target: OrderRef::Id(a.order_id),
                        new_qty: a.new_qty,
                        new_price: a.new_price,
                        new_stop_price: stop,
                    });
                    self.book(&self.command(a.pair, a.user, body), &mut lines)?;
                }
            }
            Step::Book(cmd) => self.book(&cmd, &mut lines)?,
            Step::Balances(u) => lines = render_balances(&self.h.shard, u),
        }
        Ok(lines)
    }

    fn command(&self, pair: Symbol, user: UserId, body: CommandBody) -> Command {
        Command {
            pair,
            user,
            timestamp: Timestamp(self.now),
            body,
        }
    }
}

/// Runs one scenario; returns the file as it should read and the mismatches,
/// or an error for anything other than a mismatch.
fn run(path: &Path) -> Result<(String, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let items = parse_file(&text);
    let mut configs = Vec::new();
    for i in &items {
        if let Item::Verbatim(l) = i
            && l.starts_with("config")
        {
            configs.push(parse_config(l)?);
        }
    }
    if configs.is_empty() {
        configs.push(PairConfig::simple(symbol("BTC-EUR")?));
    }
    let mut ctx = Ctx {
        pair: configs[0].symbol,
        fees: Fees::ZERO,
        now: 1,
    };
    let mut r = Runner {
        h: Harness::new(&configs),
        multi: configs.len() > 1,
        now: 1,
    };
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    for item in &items {
        match item {
            Item::Verbatim(l) => {
                if l.starts_with("fees") {
                    ctx.fees = parse_fees(&words(l).0, Fees::ZERO)?;
                }
                rewritten.push_str(l);
                rewritten.push('\n');
            }
            Item::Step { line, expected } => {
                let ts = opt(&words(line).0, "ts");
                if let Ok(Some(now)) = ts {
                    ctx.now = now;
                    r.now = now;
                }
                let actual = match ts.and_then(|_| parse_step(line, &ctx, &r.h.shard)) {
                    Ok(step) => r.step(step).map_err(|e| format!("`{line}`: {e}"))?,
                    Err(e) => vec![format!("error: {e}")],
                };
                if &actual != expected {
                    mismatches.push(format!(
                        "`> {line}`\n  expected:\n    {}\n  actual:\n    {}",
                        expected.join("\n    "),
                        actual.join("\n    ")
                    ));
                }
                rewritten.push_str(&format!("> {line}\n"));
                for l in &actual {
                    rewritten.push_str(l);
                    rewritten.push('\n');
                }
            }
        }
    }
    replay_agrees(&r.h, &configs)?;
    Ok((rewritten, mismatches))
}

/// A snapshot restored, and a replay of every input from scratch, both end
/// with the shard's state hash.
fn replay_agrees(h: &Harness, configs: &[PairConfig]) -> Result<(), String> {
    let hash = h.shard.state_hash();
    let restored = Shard::restore(&h.shard.snapshot()).map_err(|e| e.to_string())?;
    if restored.state_hash() != hash {
        return Err("restored snapshot has another state hash".into());
    }
    let mut replayed = Shard::new(configs).map_err(|e| e.to_string())?;
    let mut outputs = Vec::new();
    for i in &h.inputs {
        replayed.apply(i, &mut outputs);
    }
    if outputs != h.outputs || replayed.state_hash() != hash {
        return Err("a replay from scratch differs".into());
    }
    Ok(())
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn scenarios() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let files = scenario_files();
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match run(path) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok((_, m)) if m.is_empty() => {}
            Ok((rewritten, m)) => {
                if update {
                    std::fs::write(path, rewritten).expect("rewrite scenario");
                } else {
                    failures.push(format!("{name}:\n{}", m.join("\n")));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed (UPDATE_EXPECT=1 rewrites expectations):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(files.len() >= 17, "only {} scenario files", files.len());
}

#[test]
fn negative_amounts_are_refused_by_the_parser() {
    let ctx = Ctx {
        pair: symbol("BTC-EUR").expect("symbol"),
        fees: Fees::ZERO,
        now: 1,
    };
    let shard = Shard::new(&[PairConfig::simple(ctx.pair)]).expect("pair");
    for line in [
        "deposit u=1 EUR -5 ref=1",
        "withdraw u=1 BTC -1 ref=2",
        "new o=1 u=1 buy limit p=-100 q=5",
        "new o=1 u=1 sell limit p=100 q=-5",
    ] {
        let err = parse_step(line, &ctx, &shard).expect_err(line);
        assert!(err.contains("is negative"), "{line}: {err}");
    }
    let ok = parse_step("deposit u=1 EUR 1_000 ref=1", &ctx, &shard).expect("grouped digits");
    assert!(matches!(
        ok,
        Step::Movement(Input::Deposit { amount: 1_000, .. })
    ));
}
