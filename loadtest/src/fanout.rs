//! Many WebSocket subscribers on the same streams, for the fan-out
//! benchmark (`[fanout]` in a scenario): how far behind the slowest of
//! them falls while the flow runs, and how many the exchange dropped.
//!
//! Each subscriber opens `/stream?streams=...` once and reads until the run
//! ends. For every message it reads only the event time (`"E":<ms>`, a
//! byte search, no JSON parse, so that a thousand subscribers cost the
//! harness little) and records `now - E` in milliseconds: the delay from
//! the engine's event to this subscriber, queueing in the exchange and the
//! socket included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{Percentiles, histogram};

/// `[fanout]`: the subscribers of the fan-out benchmark.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutFile {
    /// Subscribers to open (0: none, the default).
    pub subscribers: usize,
    /// The streams each subscribes to, Binance's names
    /// (`btceur@depth@100ms`).
    pub streams: Vec<String>,
    /// Connections opened at once while setting up.
    pub connect_concurrency: usize,
}

impl Default for FanoutFile {
    fn default() -> Self {
        FanoutFile {
            subscribers: 0,
            streams: Vec::new(),
            connect_concurrency: 64,
        }
    }
}

/// What the subscribers saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FanoutReport {
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Connected and subscribed when the run began.
    pub connected: usize,
    /// Closed by the exchange (or lost) before the run ended, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Messages read by every subscriber together.
    pub deliveries: u64,
    /// The most messages one subscriber read: the updates published, for a
    /// subscriber that missed none.
    pub updates: u64,
    /// Bytes read by every subscriber together.
    pub bytes: u64,
    /// `now - E` (ms) over every delivery.
    pub lag_ms: Percentiles,
    /// The slowest subscriber's own 99th percentile and largest lag (ms).
    pub slowest_p99_ms: u64,
    /// The largest lag any subscriber saw (ms).
    pub slowest_max_ms: u64,
}

/// One subscriber's findings.
struct Seen {
    lag: Histogram<u64>,
    messages: u64,
    bytes: u64,
    dropped: Option<String>,
}

/// The running subscribers.
#[derive(Debug)]
pub struct Fanout {
    tasks: JoinSet<Seen>,
    stop: watch::Sender<bool>,
    subscribers: usize,
    connected: usize,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("messages", &self.messages)
            .finish()
    }
}

/// `ws://host:port` of the exchange at `base` (`http://host:port`).
fn ws_base(base: &str) -> String {
    base.replacen("http", "ws", 1)
}

impl Fanout {
    /// Opens `file.subscribers` connections to the exchange at `base` and
    /// returns once each is connected or has failed to.
    pub async fn start(base: &str, file: &FanoutFile) -> Fanout {
        let url = format!(
            "{}/stream?streams={}",
            ws_base(base),
            file.streams.join("/")
        );
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(file.connect_concurrency.max(1)));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(file.subscribers.max(1));
        let mut tasks = JoinSet::new();
        for _ in 0..file.subscribers {
            let (url, gate, stop, ready) =
                (url.clone(), gate.clone(), stop_rx.clone(), ready_tx.clone());
            tasks.spawn(subscriber(url, gate, stop, ready));
        }
        drop(ready_tx);
        let mut connected = 0;
        while let Some(ok) = ready_rx.recv().await {
            connected += usize::from(ok);
        }
        Fanout {
            tasks,
            stop,
            subscribers: file.subscribers,
            connected,
        }
    }

    /// How many connected.
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// Stops every subscriber and gathers what they saw.
    pub async fn finish(mut self) -> FanoutReport {
        let _ = self.stop.send(true);
        let mut report = FanoutReport {
            subscribers: self.subscribers,
            connected: self.connected,
            ..FanoutReport::default()
        };
        let mut all = histogram(3);
        while let Some(done) = self.tasks.join_next().await {
            let Ok(seen) = done else { continue };
            report.deliveries += seen.messages;
            report.updates = report.updates.max(seen.messages);
            report.bytes += seen.bytes;
            if !seen.lag.is_empty() {
                report.slowest_p99_ms = report.slowest_p99_ms.max(seen.lag.value_at_quantile(0.99));
                report.slowest_max_ms = report.slowest_max_ms.max(seen.lag.max());
            }
            let _ = all.add(&seen.lag);
            if let Some(why) = seen.dropped {
                *report.dropped.entry(why).or_default() += 1;
            }
        }
        report.lag_ms = Percentiles::of(&all);
        report
    }
}

/// One subscriber: connects (at most `gate`'s permits at once), says on
/// `ready` whether it did, then reads until `stop`.
async fn subscriber(
    url: String,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::mpsc::Sender<bool>,
) -> Seen {
    let mut seen = Seen {
        lag: histogram(3),
        messages: 0,
        bytes: 0,
        dropped: None,
    };
    let permit = gate.acquire().await;
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(&url),
    )
    .await;
    drop(permit);
    let mut ws = match connected {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return refused(seen, &ready, format!("connect: {e}")).await,
        Err(_) => return refused(seen, &ready, "connect: timed out".into()).await,
    };
    let _ = ready.send(true).await;
    drop(ready);
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    seen.messages += 1;
                    seen.bytes += t.len() as u64;
                    if let Some(at) = event_time_ms(t.as_str()) {
                        let _ = seen.lag.record(now_ms().saturating_sub(at));
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    seen.dropped = Some(f.map_or("closed".into(), |f| format!("closed: {}", f.reason)));
                    return seen;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    seen.dropped = Some(format!("read: {e}"));
                    return seen;
                }
                None => {
                    seen.dropped = Some("ended".into());
                    return seen;
                }
            },
            _ = stop.changed() => return seen,
        }
    }
}

async fn refused(mut seen: Seen, ready: &tokio::sync::mpsc::Sender<bool>, why: String) -> Seen {
    let _ = ready.send(false).await;
    seen.dropped = Some(why);
    seen
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first `"E":<digits>` of `text`: a stream message's event time.
fn event_time_ms(text: &str) -> Option<u64> {
    let at = text.find("\"E\":")? + 4;
    let digits: &str = &text[at..];
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_are_read_without_parsing_json() {
        let wrapped =
            r#"{"stream":"btceur@trade","data":{"e":"trade","E":1700000000123,"s":"BTCEUR"}}"#;
        assert_eq!(event_time_ms(wrapped), Some(1_700_000_000_123));
        assert_eq!(event_time_ms(r#"{"E":5}"#), Some(5));
        // A partial book has no event time.
        assert_eq!(event_time_ms(r#"{"lastUpdateId":1,"bids":[]}"#), None);
        assert_eq!(event_time_ms(r#"{"E":"x"}"#), None);
    }

    #[test]
    fn stream_urls_follow_the_base() {
        assert_eq!(ws_base("http://127.0.0.1:8080"), "ws://127.0.0.1:8080");
    }

    #[test]
    fn an_empty_section_opens_nothing() {
        let f: FanoutFile = toml::from_str("").expect("defaults");
        assert_eq!(f.subscribers, 0);
        let f: FanoutFile =
            toml::from_str("subscribers = 1000\nstreams = [\"btceur@trade\"]").expect("valid");
        assert_eq!((f.subscribers, f.streams.len()), (1000, 1));
        assert!(toml::from_str::<FanoutFile>("subscriber = 1").is_err());
    }
}
