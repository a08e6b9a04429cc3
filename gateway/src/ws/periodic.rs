//! The periodic streams: klines (every second for `1s`, every two seconds
//! for the other intervals) and the 24-hour tickers (every second), as
//! Binance pushes them. One task per gateway, started with its first
//! stream connection; each round asks the store only for the topics that
//! have subscribers, and formats the answers with REST's own functions
//! (`klines`, `ticker/24hr`), so the streams and REST agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proto::{PairConfig, Symbol};
use serde_json::{Map, Value};
use store::{Interval, KlineWindow};

use crate::market::{kline_text, ticker_text};
use crate::{Gateway, Published, StreamMessage, Topic};

/// What the task remembers between rounds.
#[derive(Debug, Default)]
struct Memory {
    /// Each watched kline topic's current candle's open time: when a later
    /// candle appears, that one is over and gets its closing message.
    open_times: HashMap<Topic, u64>,
    /// Each pair's last ticker values (mini or full), without its times:
    /// the `@arr` streams carry only the tickers that changed.
    tickers: HashMap<(Symbol, bool), String>,
}

/// Runs until the gateway shuts down.
pub(super) async fn run(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = gw.shutdown.clone();
    let mut memory = Memory::default();
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        round += 1;
        let now_ms = crate::now_ms();
        for p in &gw.pair_list() {
            for interval in Interval::ALL {
                // `1s` every round, the others every other round.
                if interval == Interval::S1 || round.is_multiple_of(2) {
                    memory.kline(&gw, p, interval, now_ms).await;
                }
            }
        }
        memory.tickers(&gw, now_ms).await;
    }
}

fn publish(gw: &Gateway, topic: Topic, raw: Option<String>) {
    if let Some(raw) = raw {
        gw.market
            .publish(StreamMessage::Market(Arc::new(Published::new(topic, raw))));
    }
}

impl Memory {
    /// The current candle of `p` at `interval`, if watched; first the
    /// closing message of the one before when its period just ended.
    async fn kline(&mut self, gw: &Gateway, p: &PairConfig, interval: Interval, now_ms: u64) {
        let topic = Topic::Kline(p.symbol, interval);
        if !gw.market.topics().watched(&topic) {
            self.open_times.remove(&topic);
            return;
        }
        let window = KlineWindow {
            start_ms: None,
            end_ms: None,
            limit: 2,
            tz_offset_minutes: 0,
            now_ms: Some(now_ms),
        };
        let candles = match gw.store.klines(p.symbol, interval, window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%e, "kline stream: store query failed");
                return;
            }
        };
        // Candles opening from here on are not closed yet as far as the
        // subscribers know; at first sight, the one now is in.
        let month_ms = 31 * 24 * 3_600_000;
        let from = *self
            .open_times
            .entry(topic)
            .or_insert_with(|| now_ms.saturating_sub(interval.duration_ms().unwrap_or(month_ms)));
        let Some(current) = candles.last() else {
            return;
        };
        let text = |c: &store::Candle, closed: bool| {
            let row = crate::rest::kline_row(c, p);
            kline_text(topic, &row, (c.first_trade, c.last_trade), closed, now_ms)
        };
        // Those that ended since the last round get their closing message
        // (with what the store has now: fills persisted late are in).
        for ended in candles
            .iter()
            .filter(|c| c.open_time_ms >= from && c.open_time_ms < current.open_time_ms)
        {
            publish(gw, topic, text(ended, true));
        }
        publish(gw, topic, text(current, false));
        self.open_times.insert(topic, current.open_time_ms);
    }

    /// The per-pair tickers that are watched, and the `@arr` streams of
    /// those that changed.
    async fn tickers(&mut self, gw: &Gateway, now_ms: u64) {
        let topics = gw.market.topics();
        let all_full = topics.watched(&Topic::AllTickers);
        let all_mini = topics.watched(&Topic::AllMiniTickers);
        let (mut full_arr, mut mini_arr) = (Vec::new(), Vec::new());
        for p in &gw.pair_list() {
            let full = all_full || topics.watched(&Topic::Ticker(p.symbol));
            let mini = all_mini || topics.watched(&Topic::MiniTicker(p.symbol));
            if !full && !mini {
                continue;
            }
            // The full entry has every field of the mini one.
            let entry = match crate::rest::day_ticker_entry(gw, p, !full).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(msg = %e.msg, "ticker stream: query failed");
                    continue;
                }
            };
            for (is_mini, wanted, single, arr) in [
                (false, full, Topic::Ticker(p.symbol), &mut full_arr),
                (true, mini, Topic::MiniTicker(p.symbol), &mut mini_arr),
            ] {
                if !wanted {
                    continue;
                }
                let text = ticker_text(&entry, is_mini, now_ms);
                if topics.watched(&single) {
                    publish(gw, single, text.clone());
                }
                if self.changed(p.symbol, is_mini, &entry)
                    && let Some(t) = text
                {
                    arr.push(t);
                }
            }
        }
        for (topic, arr, watched) in [
            (Topic::AllTickers, full_arr, all_full),
            (Topic::AllMiniTickers, mini_arr, all_mini),
        ] {
            if watched && !arr.is_empty() {
                publish(gw, topic, Some(format!("[{}]", arr.join(","))));
            }
        }
    }

    /// Whether the ticker of `pair` changed since the last round (its
    /// window's times always do, so they are left out).
    fn changed(&mut self, pair: Symbol, mini: bool, entry: &Map<String, Value>) -> bool {
        let mut values = entry.clone();
        values.remove("openTime");
        values.remove("closeTime");
        let now = Value::Object(values).to_string();
        self.tickers.insert((pair, mini), now.clone()).as_ref() != Some(&now)
    }
}
