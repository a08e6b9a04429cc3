//! Engine-side counts from the exchange's Prometheus text at `/metrics`,
//! scraped before and after a run: commands applied
//! (`matching_commands_total{pair,result}`), events emitted
//! (`matching_events_total{pair,kind}`) and requests shed
//! (`matching_shed_total{reason}`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::Backlog;

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Label pairs, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `k`.
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return Some(out);
        }
        let (k, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((k.trim().to_string(), value));
        rest = &after[end + 1..];
    }
}

/// Parses the Prometheus text format; comments and malformed lines are
/// skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (head, value) = match line.find('{') {
                Some(open) => {
                    let close = line.rfind('}')?;
                    let labels = parse_labels(&line[open + 1..close])?;
                    let value = line[close + 1..].split_whitespace().next()?;
                    ((line[..open].to_string(), labels), value)
                }
                None => {
                    let mut parts = line.split_whitespace();
                    let name = parts.next()?;
                    ((name.to_string(), Vec::new()), parts.next()?)
                }
            };
            Some(Sample {
                name: head.0,
                labels: head.1,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The engine's counters at one moment (or their change over a run).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EngineCounts {
    /// Commands applied, by result (`accepted`, `rejected`).
    pub commands: BTreeMap<String, u64>,
    /// Events emitted, by kind (`accepted`, `trade`, `canceled`, `amended`,
    /// `rejected`, `book_delta`, `canceled_all`).
    pub events: BTreeMap<String, u64>,
    /// Commands applied per pair.
    pub commands_by_pair: BTreeMap<String, u64>,
    /// Requests shed by the gateway, by reason.
    pub shed: BTreeMap<String, u64>,
    /// Commands journaled but not yet applied, over all pairs (a gauge).
    pub queue_depth: u64,
    /// Events not yet stored, over all pairs (a gauge).
    pub persister_lag: u64,
}

fn add(map: &mut BTreeMap<String, u64>, key: Option<&str>, v: f64) {
    *map.entry(key.unwrap_or("").to_string()).or_insert(0) += v.max(0.0) as u64;
}

impl EngineCounts {
    /// The counts in a `/metrics` text.
    pub fn from_text(text: &str) -> EngineCounts {
        let mut c = EngineCounts::default();
        for s in parse(text) {
            match s.name.as_str() {
                "matching_commands_total" => {
                    add(&mut c.commands, s.label("result"), s.value);
                    add(&mut c.commands_by_pair, s.label("pair"), s.value);
                }
                "matching_events_total" => add(&mut c.events, s.label("kind"), s.value),
                "matching_shed_total" => add(&mut c.shed, s.label("reason"), s.value),
                "matching_actor_queue_depth" => c.queue_depth += s.value.max(0.0) as u64,
                "matching_persister_lag_events" => c.persister_lag += s.value.max(0.0) as u64,
                _ => {}
            }
        }
        c
    }

    /// The counters' change from `before` to `self` (gauges as of `self`).
    pub fn since(&self, before: &EngineCounts) -> EngineCounts {
        let diff = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.saturating_sub(b.get(k).copied().unwrap_or(0))))
                .collect()
        };
        EngineCounts {
            commands: diff(&self.commands, &before.commands),
            events: diff(&self.events, &before.events),
            commands_by_pair: diff(&self.commands_by_pair, &before.commands_by_pair),
            shed: diff(&self.shed, &before.shed),
            queue_depth: self.queue_depth,
            persister_lag: self.persister_lag,
        }
    }

    /// Commands, all results.
    pub fn total_commands(&self) -> u64 {
        self.commands.values().sum()
    }

    /// Events, all kinds.
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }

    /// The two gauges: what waits to be applied and to be stored.
    pub fn backlog(&self) -> Backlog {
        Backlog {
            persister_lag: self.persister_lag,
            queue_depth: self.queue_depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP matching_commands_total Commands applied by the engine.
# TYPE matching_commands_total counter
matching_commands_total{pair="BTC-EUR",result="accepted"} 10
matching_commands_total{pair="BTC-EUR",result="rejected"} 2
matching_commands_total{pair="ETH-EUR",result="accepted"} 5
matching_events_total{pair="BTC-EUR",kind="trade"} 4
matching_events_total{pair="BTC-EUR",kind="book_delta"} 9
matching_events_total{pair="ETH-EUR",kind="trade"} 1
matching_shed_total{reason="rate_limit"} 3
matching_actor_queue_depth{pair="BTC-EUR"} 7
matching_actor_queue_depth{pair="ETH-EUR"} 1
gateway_ws_clients 2
odd_label{msg="a \"quoted\", value"} 1.5
"#;

    #[test]
    fn parses_prometheus_text() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0].label("pair"), Some("BTC-EUR"));
        assert_eq!(s[9].name, "gateway_ws_clients");
        assert_eq!(s[9].value, 2.0);
        assert_eq!(s[10].label("msg"), Some("a \"quoted\", value"));
    }

    #[test]
    fn sums_and_differences() {
        let after = EngineCounts::from_text(TEXT);
        assert_eq!(after.total_commands(), 17);
        assert_eq!(after.commands["accepted"], 15);
        assert_eq!(after.events["trade"], 5);
        assert_eq!(after.total_events(), 14);
        assert_eq!(after.commands_by_pair["BTC-EUR"], 12);
        assert_eq!(after.shed["rate_limit"], 3);
        assert_eq!(after.queue_depth, 8);
        let before = EngineCounts::from_text(
            "matching_commands_total{pair=\"BTC-EUR\",result=\"accepted\"} 4\n",
        );
        let d = after.since(&before);
        assert_eq!(d.commands["accepted"], 11);
        assert_eq!(d.commands["rejected"], 2);
        assert_eq!(d.total_commands(), 13);
    }
}
