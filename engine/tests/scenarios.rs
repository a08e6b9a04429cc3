//! Data-driven scenarios: each `testdata/*.txt` file lists commands (`> `
//! lines) and, under each, the exact events it must emit. `depth` and
//! `orders` print the book. Run with `UPDATE_EXPECT=1` to rewrite the
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
    let items = parse_file(&text);
    let config = items
        .iter()
        .find_map(|i| match i {
            Item::Verbatim(l) if l.starts_with("config") => Some(parse_config(l)),
            _ => None,
        })
        .unwrap_or_else(|| Ok(default_config()))?;
    let mut book = OrderBook::new(config.clone()).map_err(|e| e.to_string())?;
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
