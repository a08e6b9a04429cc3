//! Stream topics: what a WebSocket client can subscribe to, by Binance's
//! names (`btceur@trade`, `btceur@kline_1m`, `!ticker@arr`, ...), and the
//! registry counting each topic's subscribers.
//!
//! The registry is why a topic nobody watches costs almost nothing: the
//! observer and the periodic task ask it before they build a message. For
//! a market topic asking is one atomic load in a map that never changes
//! after start (every market topic of every pair is in it from the
//! beginning); for a user's stream it is a lookup under a mutex held for
//! that lookup only, taken per execution report, never across an await.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use proto::{PairConfig, Symbol, UserId};
use store::Interval;

/// How often Binance pushes a depth stream: the plain name (1000 ms) or
/// the `@100ms` one. Both are pushed per engine record here, faster than
/// either; they stay apart only because they are different names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Speed {
    /// `<symbol>@depth`, `<symbol>@depth5`, ...
    Second,
    /// `...@100ms`.
    Fast,
}

/// One stream a connection can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `<symbol>@trade`: every fill.
    Trade(Symbol),
    /// `<symbol>@aggTrade`: fills of one taker order at one price.
    AggTrade(Symbol),
    /// `<symbol>@depth[@100ms]`: diffs of the book.
    Depth(Symbol, Speed),
    /// `<symbol>@depth<5|10|20>[@100ms]`: the top of the book.
    Partial(Symbol, u8, Speed),
    /// `<symbol>@bookTicker`: the best bid and ask.
    BookTicker(Symbol),
    /// `<symbol>@kline_<interval>`: the current candle.
    Kline(Symbol, Interval),
    /// `<symbol>@miniTicker`: 24-hour statistics, short.
    MiniTicker(Symbol),
    /// `<symbol>@ticker`: 24-hour statistics.
    Ticker(Symbol),
    /// `!miniTicker@arr`: every pair's mini ticker that changed.
    AllMiniTickers,
    /// `!ticker@arr`: every pair's ticker that changed.
    AllTickers,
    /// A user's own events: what a listen key names (and a WebSocket API
    /// subscription follows). Counted apart, in a map that grows.
    User(UserId),
}

/// The partial book sizes Binance offers.
pub(super) const PARTIAL_LEVELS: [u8; 3] = [5, 10, 20];

impl Topic {
    /// Every market topic of `pair`.
    fn of_pair(pair: Symbol) -> impl Iterator<Item = Topic> {
        let speeds = [Speed::Second, Speed::Fast];
        let fixed = [
            Topic::Trade(pair),
            Topic::AggTrade(pair),
            Topic::BookTicker(pair),
            Topic::MiniTicker(pair),
            Topic::Ticker(pair),
        ];
        let depth = speeds.into_iter().map(move |s| Topic::Depth(pair, s));
        let partial = PARTIAL_LEVELS
            .into_iter()
            .flat_map(move |n| speeds.into_iter().map(move |s| Topic::Partial(pair, n, s)));
        let klines = Interval::ALL
            .into_iter()
            .map(move |i| Topic::Kline(pair, i));
        fixed.into_iter().chain(depth).chain(partial).chain(klines)
    }
}

/// A pair as stream names write it: `btceur`.
fn lower(pair: Symbol) -> String {
    pair.joined().to_ascii_lowercase()
}

/// The stream's name, as Binance writes it. A user topic has no name of
/// its own (its listen key is its name), so it is written `user:<id>`.
impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fast = |s: Speed| if s == Speed::Fast { "@100ms" } else { "" };
        match *self {
            Topic::Trade(p) => write!(f, "{}@trade", lower(p)),
            Topic::AggTrade(p) => write!(f, "{}@aggTrade", lower(p)),
            Topic::Depth(p, s) => write!(f, "{}@depth{}", lower(p), fast(s)),
            Topic::Partial(p, n, s) => write!(f, "{}@depth{n}{}", lower(p), fast(s)),
            Topic::BookTicker(p) => write!(f, "{}@bookTicker", lower(p)),
            Topic::Kline(p, i) => write!(f, "{}@kline_{}", lower(p), i.as_str()),
            Topic::MiniTicker(p) => write!(f, "{}@miniTicker", lower(p)),
            Topic::Ticker(p) => write!(f, "{}@ticker", lower(p)),
            Topic::AllMiniTickers => f.write_str("!miniTicker@arr"),
            Topic::AllTickers => f.write_str("!ticker@arr"),
            Topic::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// The market topics and their subscriber counts.
#[derive(Debug)]
pub struct Registry {
    /// Each pair by its stream name, `btceur`.
    pairs: RwLock<HashMap<String, Symbol>>,
    /// Every market topic. Only a listing writes it, so reading a count
    /// takes an uncontended read lock.
    counts: RwLock<HashMap<Topic, AtomicUsize>>,
    /// Each watched user's subscriber count (user data streams): execution
    /// reports and balance messages are made only for these.
    users: Mutex<HashMap<UserId, usize>>,
    /// Whether the periodic task (klines, tickers) was started.
    periodic: AtomicBool,
}

impl Registry {
    /// The topics of `pairs`, none watched.
    pub fn new(pairs: &[PairConfig]) -> Self {
        let all = [Topic::AllMiniTickers, Topic::AllTickers];
        let counts = pairs
            .iter()
            .flat_map(|p| Topic::of_pair(p.symbol))
            .chain(all)
            .map(|t| (t, AtomicUsize::new(0)))
            .collect();
        Registry {
            pairs: RwLock::new(pairs.iter().map(|p| (lower(p.symbol), p.symbol)).collect()),
            counts: RwLock::new(counts),
            users: Mutex::default(),
            periodic: AtomicBool::new(false),
        }
    }

    /// The topics of a listed pair, none watched.
    pub(crate) fn add_pair(&self, pair: Symbol) {
        if let Ok(mut counts) = self.counts.write() {
            for t in Topic::of_pair(pair) {
                counts.entry(t).or_insert_with(|| AtomicUsize::new(0));
            }
        }
        if let Ok(mut pairs) = self.pairs.write() {
            pairs.insert(lower(pair), pair);
        }
    }

    /// The market topic `name` stands for, exactly as Binance spells it
    /// (lowercase symbol, case-sensitive kind); `None` for anything else.
    pub fn parse(&self, name: &str) -> Option<Topic> {
        match name {
            "!miniTicker@arr" => return Some(Topic::AllMiniTickers),
            "!ticker@arr" => return Some(Topic::AllTickers),
            _ => {}
        }
        let (symbol, kind) = name.split_once('@')?;
        let pair = *self.pairs.read().ok()?.get(symbol)?;
        let (kind, speed) = match kind.strip_suffix("@100ms") {
            Some(k) => (k, Speed::Fast),
            None => (kind, Speed::Second),
        };
        let topic = match kind {
            "trade" => Topic::Trade(pair),
            "aggTrade" => Topic::AggTrade(pair),
            "depth" => Topic::Depth(pair, speed),
            "depth5" => Topic::Partial(pair, 5, speed),
            "depth10" => Topic::Partial(pair, 10, speed),
            "depth20" => Topic::Partial(pair, 20, speed),
            "bookTicker" => Topic::BookTicker(pair),
            "miniTicker" => Topic::MiniTicker(pair),
            "ticker" => Topic::Ticker(pair),
            k => Topic::Kline(pair, Interval::from_name(k.strip_prefix("kline_")?)?),
        };
        // Only depth streams have an `@100ms` form.
        let speed_ok =
            matches!(topic, Topic::Depth(..) | Topic::Partial(..)) || speed == Speed::Second;
        speed_ok.then_some(topic)
    }

    /// Whether anyone subscribed to `topic`.
    pub fn watched(&self, topic: &Topic) -> bool {
        if let Topic::User(u) = topic {
            return self.users.lock().is_ok_and(|m| m.contains_key(u));
        }
        self.counts.read().is_ok_and(|counts| {
            counts
                .get(topic)
                .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
        })
    }

    /// One more subscriber of `topic`.
    pub fn watch(&self, topic: &Topic) {
        if let Topic::User(u) = topic {
            if let Ok(mut m) = self.users.lock() {
                *m.entry(*u).or_default() += 1;
            }
            return;
        }
        if let Ok(counts) = self.counts.read()
            && let Some(c) = counts.get(topic)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One subscriber of `topic` fewer.
    pub fn unwatch(&self, topic: &Topic) {
        if let Topic::User(u) = topic {
            if let Ok(mut m) = self.users.lock()
                && let Some(n) = m.get_mut(u)
            {
                *n -= 1;
                if *n == 0 {
                    m.remove(u);
                }
            }
            return;
        }
        if let Ok(counts) = self.counts.read()
            && let Some(c) = counts.get(topic)
        {
            // Never below zero, even if a caller unwatched twice.
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// True the first time only: the caller starts the periodic task.
    pub fn start_periodic(&self) -> bool {
        !self.periodic.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(&[PairConfig::simple(Symbol::new("BTC-EUR").unwrap())])
    }

    #[test]
    fn every_binance_name_parses_and_prints_back() {
        let r = registry();
        let mut names = vec![
            "btceur@trade",
            "btceur@aggTrade",
            "btceur@depth",
            "btceur@depth@100ms",
            "btceur@depth5",
            "btceur@depth10@100ms",
            "btceur@depth20",
            "btceur@bookTicker",
            "btceur@miniTicker",
            "btceur@ticker",
            "!miniTicker@arr",
            "!ticker@arr",
        ];
        let klines: Vec<String> = Interval::ALL
            .iter()
            .map(|i| format!("btceur@kline_{}", i.as_str()))
            .collect();
        names.extend(klines.iter().map(String::as_str));
        for name in names {
            let topic = r.parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(topic.to_string(), name);
            // Every market topic is counted.
            r.watch(&topic);
            assert!(r.watched(&topic), "{name}");
        }
    }

    #[test]
    fn other_names_are_not_market_topics() {
        let r = registry();
        for bad in [
            "",
            "btceur",
            "BTCEUR@trade",
            "btc-eur@trade",
            "etheur@trade",
            "btceur@Trade",
            "btceur@depth15",
            "btceur@depth@1000ms",
            "btceur@trade@100ms",
            "btceur@kline_2s",
            "btceur@kline_1M@100ms",
            "btceur@kline_",
            "!bookTicker",
            "btceur@trade@",
        ] {
            assert_eq!(r.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_go_up_and_down_but_never_below_zero() {
        let r = registry();
        let t = r.parse("btceur@trade").unwrap();
        assert!(!r.watched(&t));
        r.watch(&t);
        r.watch(&t);
        r.unwatch(&t);
        assert!(r.watched(&t));
        r.unwatch(&t);
        r.unwatch(&t);
        assert!(!r.watched(&t));
        r.watch(&t);
        assert!(r.watched(&t));
        // A user's stream is counted too, apart.
        r.watch(&Topic::User(UserId(1)));
        r.watch(&Topic::User(UserId(1)));
        r.unwatch(&Topic::User(UserId(1)));
        assert!(r.watched(&Topic::User(UserId(1))));
        r.unwatch(&Topic::User(UserId(1)));
        r.unwatch(&Topic::User(UserId(1)));
        assert!(!r.watched(&Topic::User(UserId(1))));
        assert!(!r.watched(&Topic::User(UserId(2))));
        assert!(r.start_periodic());
        assert!(!r.start_periodic());
    }
}
