//! Data-driven scenarios: each `testdata/*.txt` file lists commands (`> `
//! lines) and, under each, the exact events it must emit. `depth` and
//! `orders` print the book, `pair` its rules and status; `restore`
//! rebuilds it from its snapshot mid-way, as a restart would. Run with `UPDATE_EXPECT=1` to rewrite the
//! expectations from the engine's actual output, then review the diff.
//!
//! Every scenario also checks the invariants after each command and that a
//! snapshot restored at the end has the same state hash.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use engine::OrderBook;

enum Item {
    /// A comment, blank line or `config` line, kept as written.
    Verbatim(String),
    /// A command and the output lines expected from it.
    Step { line: String, expected: Vec<String> },
}

fn parse_file(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            items.push(Item::Step {
                line: cmd.trim().to_string(),
                expected: Vec::new(),
            });
        } else if line.starts_with('#') || line.trim().is_empty() || line.starts_with("config") {
            items.push(Item::Verbatim(line.to_string()));
        } else if let Some(Item::Step { expected, .. }) = items.last_mut() {
            expected.push(line.trim().to_string());
        } else {
            items.push(Item::Verbatim(line.to_string()));
        }
    }
    items
}

/// Runs one scenario; returns the file as it should read, or an error for
/// anything other than an output mismatch.
fn run(path: &Path) -> Result<(String, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    run_text(&text)
}

/// [`run`] on a scenario's text.
fn run_text(text: &str) -> Result<(String, Vec<String>), String> {
    let items = parse_file(text);
    let config = items
        .iter()
        .find_map(|i| match i {
            Item::Verbatim(l) if l.starts_with("config") => Some(parse_config(l)),
            _ => None,
        })
        .unwrap_or_else(|| Ok(default_config()))?;
    let mut book = OrderBook::new(config).map_err(|e| e.to_string())?;
    let mut ledger = Ledger::default();
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    let mut clock = Clock::default();
    for item in &items {
        match item {
            Item::Verbatim(l) => {
                rewritten.push_str(l);
                rewritten.push('\n');
            }
            Item::Step { line, expected } => {
                let actual = match line.as_str() {
                    "depth" => render_depth(&book),
                    "orders" => render_orders(&book),
                    "held" => render_held(&book),
                    "pair" => vec![render_rules(book.config(), book.status())],
                    // A restart: the book is rebuilt from its snapshot under
                    // the file's config, whose rules the snapshot's override.
                    "restore" => {
                        let restored = OrderBook::restore(config, &book.snapshot())
                            .map_err(|e| format!("restore: {e}"))?;
                        if restored.state_hash() != book.state_hash() {
                            return Err("restored mid-way with another state hash".into());
                        }
                        book = restored;
                        vec!["restored".to_string()]
                    }
                    _ => {
                        let cmd = clock
                            .command(line, config.symbol)
                            .map_err(|e| format!("{line}: {e}"))?;
                        let events = book.apply_one(&cmd);
                        ledger
                            .check(&book, &cmd, &events)
                            .map_err(|e| format!("after `{line}`: {e}"))?;
                        events.iter().map(render).collect()
                    }
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
    let restored = OrderBook::restore(config, &book.snapshot()).map_err(|e| e.to_string())?;
    if restored.state_hash() != book.state_hash() {
        return Err("restored snapshot has another state hash".into());
    }
    Ok((rewritten, mismatches))
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
    assert!(files.len() >= 40, "only {} scenario files", files.len());
}

/// The scenarios of the advanced order types (in `common`), run like the
/// files; `UPDATE_EXPECT=1` prints them as they run instead of failing.
#[test]
fn advanced_scenarios() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for (name, text) in ADVANCED_SCENARIOS {
        match run_text(text) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok((_, m)) if m.is_empty() => {}
            Ok((rewritten, _)) if update => println!("=== {name}\n{rewritten}"),
            Ok((_, m)) => failures.push(format!("{name}:\n{}", m.join("\n"))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_language_writes_every_new_order() {
    use proto::*;
    let pair = default_config().symbol;
    let cmd = |l: &str| parse_command(l, pair, 7).unwrap();
    let body = |l: &str| cmd(l).body;
    let order = |l: &str| match body(l) {
        CommandBody::NewOrder(o) => o,
        other => panic!("{other:?}"),
    };
    let c =
        cmd("new o=5 u=1 sell stop_loss_limit p=95 stop=96 trail=100 q=10 iceberg=5 gtd=1000 ts=9");
    assert_eq!(c.timestamp, Timestamp(9));
    let stop_limit = NewOrder {
        iceberg_qty: Some(Qty(5)),
        good_till: Some(Timestamp(1_000)),
        ..NewOrder::plain(
            OrderId(5),
            Side::Sell,
            OrderType::Conditional {
                kind: ConditionalKind::StopLoss,
                limit: Some(Price(95)),
                trigger: Trigger {
                    stop_price: Some(Price(96)),
                    trailing_delta: Some(100),
                },
            },
            TimeInForce::Gtd,
            OrderSize::Base(Qty(10)),
        )
    };
    assert_eq!(c.body, CommandBody::NewOrder(stop_limit));
    assert_eq!(cmd("new o=1 u=1 buy limit p=1 q=1").timestamp, Timestamp(7));
    // A conditional order that works as a market order is IOC unless told.
    let tp = order("new o=1 u=1 buy take_profit stop=90 q=1");
    assert_eq!(tp.order_type.name(), "TAKE_PROFIT");
    assert_eq!(tp.time_in_force, TimeInForce::Ioc);
    assert_eq!(
        order("new o=1 u=1 buy take_profit_limit p=1 stop=2 q=1").time_in_force,
        TimeInForce::Gtc
    );
    assert_eq!(
        order("new o=1 u=1 buy stop_loss trail=20 q=1")
            .order_type
            .trigger(),
        Some(Trigger {
            stop_price: None,
            trailing_delta: Some(20)
        })
    );
    // The time and the time in force apart, for the checks that they come together.
    let till = order("new o=1 u=1 buy limit p=1 q=1 till=5");
    assert_eq!(
        (till.time_in_force, till.good_till),
        (TimeInForce::Gtc, Some(Timestamp(5)))
    );
    let bare = order("new o=1 u=1 buy limit p=1 q=1 gtd");
    assert_eq!(
        (bare.time_in_force, bare.good_till),
        (TimeInForce::Gtd, None)
    );
}

#[test]
fn the_language_writes_lists_cancels_amends_and_time() {
    use proto::*;
    let pair = default_config().symbol;
    let cmd = |l: &str| parse_command(l, pair, 7).unwrap();
    let body = |l: &str| cmd(l).body;
    let oco = body(
        "oco l=9 u=1 cid=x | o=5 sell limit p=105 q=10 post | o=6 sell stop_loss_limit p=95 stop=96 q=10 cid=y",
    );
    let CommandBody::NewOrderList(l) = oco else {
        panic!("{oco:?}")
    };
    assert_eq!((l.list_id, l.kind), (OrderId(9), ListKind::Oco));
    assert_eq!(l.client_list_id, ClientOrderId::new("x").ok());
    assert_eq!(l.orders[0].order_id, OrderId(5));
    assert!(l.orders[0].post_only);
    assert_eq!(l.orders[1].client_order_id, ClientOrderId::new("y").ok());
    let CommandBody::NewOrderList(l) =
        body("oto l=9 u=1 | o=5 buy limit p=100 q=10 | o=6 sell limit p=110 q=10")
    else {
        panic!("not a list")
    };
    assert_eq!(l.kind, ListKind::Oto);
    assert_eq!(
        body("cancel_list u=1 l=9"),
        CommandBody::CancelList {
            target: OrderRef::Id(OrderId(9))
        }
    );
    assert_eq!(
        body("cancel_list u=1 cid=x"),
        CommandBody::CancelList {
            target: OrderRef::Client(ClientOrderId::new("x").unwrap())
        }
    );
    assert_eq!(
        body("amend u=1 o=3 stop=97"),
        CommandBody::Amend(Amend {
            target: OrderRef::Id(OrderId(3)),
            new_qty: None,
            new_price: None,
            new_stop_price: Some(Price(97)),
        })
    );
    let tick = cmd("tick ts=50");
    assert_eq!(
        (tick.user, tick.timestamp, tick.body),
        (UserId(0), Timestamp(50), CommandBody::AdvanceTime)
    );
    for bad in [
        "oco l=1 u=1 | o=2 sell limit p=105 q=1 post",
        "new o=1 u=1 buy limit p=1 q=1 | o=2 buy limit p=1 q=1",
        "new o=1 u=1 buy stop_loss_limit stop=2 q=1",
        "config advanced=warp",
    ] {
        assert!(parse_command(bad, pair, 1).is_err(), "{bad}");
    }
    assert!(parse_config("config advanced=warp").is_err());
    let none = parse_config("config advanced=none").unwrap().advanced;
    assert!(
        !(none.conditional || none.trailing || none.iceberg || none.lists || none.good_till_date)
    );
    let some = parse_config("config advanced=lists,gtd").unwrap().advanced;
    assert!(some.lists && some.good_till_date && !some.conditional);
}
