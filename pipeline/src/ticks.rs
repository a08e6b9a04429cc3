//! The passing of time on idle books. A book reads time only from its
//! commands (`Command::timestamp`), and it expires good-till-date orders
//! first thing in every command; a book that receives no command would keep
//! an expired order forever. So whoever sequences a pair's commands (the
//! embedded journal writer, the engine that leases the pair) appends an
//! `AdvanceTime` command, stamped and logged like any other and replayed
//! like any other, to each pair that took no command for a period. A busy
//! pair's own commands advance its time, so it pays nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::{Command, CommandBody, Symbol, UserId};

/// The user an `AdvanceTime` command names: no account's (the book does
/// not read it, and the risk stage holds nothing for it).
pub const TIME_USER: UserId = UserId(0);

/// The `AdvanceTime` command of `pair`, stamped now.
pub fn advance_time(pair: Symbol) -> Command {
    Command {
        pair,
        user: TIME_USER,
        timestamp: proto::Timestamp(commandlog::now_ns()),
        body: CommandBody::AdvanceTime,
    }
}

/// Which pairs are idle: those that took no command other than
/// `AdvanceTime` for a whole period. Wait for [`Ticks::tick`], then append
/// an `AdvanceTime` to each pair [`Ticks::due`] names (or ask
/// [`Ticks::due_now`] on every turn of a loop that may never wait).
#[derive(Debug)]
pub struct Ticks {
    period: Duration,
    /// When the next period ends; set on first use.
    next: Option<Instant>,
    /// When each pair last took a command (its start counts as one).
    last: HashMap<Symbol, Instant>,
}

impl Ticks {
    /// Ticks every `period_ms` for `pairs`, which start busy at `now`;
    /// never with 0 (disabled).
    pub fn new(period_ms: u64, pairs: impl IntoIterator<Item = Symbol>, now: Instant) -> Ticks {
        let period = Duration::from_millis(period_ms);
        Ticks {
            period,
            next: None,
            last: if period_ms == 0 {
                HashMap::new()
            } else {
                pairs.into_iter().map(|p| (p, now)).collect()
            },
        }
    }

    /// Whether time ticks at all.
    pub fn enabled(&self) -> bool {
        !self.period.is_zero()
    }

    /// Waits for the next period's end; never returns when disabled. A late
    /// tick (a busy writer) is not made up for in a burst: the next period
    /// starts when this one is seen to end.
    pub async fn tick(&mut self) {
        if !self.enabled() {
            return std::future::pending().await;
        }
        let next = *self
            .next
            .get_or_insert_with(|| Instant::now() + self.period);
        tokio::time::sleep_until(next.into()).await;
        self.next = Some(Instant::now() + self.period);
    }

    /// Without waiting: the idle pairs if a period has ended by `now` (and
    /// the next period starts), else none. For a loop that is never idle
    /// long enough to await [`Ticks::tick`]: under load, idle pairs must
    /// still expire their orders on time.
    pub fn due_now(&mut self, now: Instant) -> Vec<Symbol> {
        if !self.enabled() {
            return Vec::new();
        }
        let next = *self.next.get_or_insert(now + self.period);
        if now < next {
            return Vec::new();
        }
        self.next = Some(now + self.period);
        self.due(now)
    }

    /// Waits for the next period's end, then names the idle pairs (see
    /// [`Ticks::due`]); never returns when disabled.
    pub async fn next_due(&mut self) -> Vec<Symbol> {
        self.tick().await;
        self.due(Instant::now())
    }

    /// Starts ticking `pair` (a pair whose commands this process now
    /// sequences), busy as of `now`.
    pub fn start(&mut self, pair: Symbol, now: Instant) {
        if self.enabled() {
            self.last.insert(pair, now);
        }
    }

    /// Stops ticking `pair`.
    pub fn stop(&mut self, pair: Symbol) {
        self.last.remove(&pair);
    }

    /// Notes that `cmd` reaches its pair at `now` (`AdvanceTime` itself
    /// does not count: an idle pair gets one every period).
    pub fn saw(&mut self, cmd: &Command, now: Instant) {
        if matches!(cmd.body, CommandBody::AdvanceTime) {
            return;
        }
        if let Some(t) = self.last.get_mut(&cmd.pair) {
            *t = (*t).max(now);
        }
    }

    /// The pairs that took no command for a period, as of `now`, in symbol
    /// order.
    pub fn due(&self, now: Instant) -> Vec<Symbol> {
        let mut due: Vec<Symbol> = self
            .last
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) >= self.period)
            .map(|(p, _)| *p)
            .collect();
        due.sort_unstable();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    fn order(pair: Symbol) -> Command {
        Command {
            body: CommandBody::CancelAll,
            ..advance_time(pair)
        }
    }

    #[test]
    fn a_pair_is_due_after_a_period_without_a_command_other_than_time() {
        let (btc, eth) = (sym("BTC-EUR"), sym("ETH-EUR"));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut t = Ticks::new(1_000, [eth, btc], start);
        assert!(t.due(at(999)).is_empty(), "not before a period passed");
        assert_eq!(t.due(at(1_000)), vec![btc, eth]);
        // A client's command makes its pair busy for a period; time does not.
        t.saw(&order(eth), at(1_200));
        t.saw(&advance_time(btc), at(1_200));
        assert_eq!(t.due(at(2_000)), vec![btc]);
        assert_eq!(t.due(at(2_200)), vec![btc, eth]);
    }

    #[test]
    fn only_the_pairs_started_tick() {
        let (btc, eth) = (sym("BTC-EUR"), sym("ETH-EUR"));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut t = Ticks::new(100, [], start);
        assert!(t.due(at(1_000)).is_empty());
        t.start(eth, at(500));
        t.start(btc, at(550));
        assert_eq!(t.due(at(620)), vec![eth]);
        t.stop(eth);
        assert_eq!(t.due(at(700)), vec![btc]);
        let mut off = Ticks::new(0, [], start);
        off.start(btc, start);
        assert!(off.due(at(1_000)).is_empty());
    }

    #[test]
    fn a_loop_that_never_waits_still_sees_each_period_end_once() {
        let btc = sym("BTC-EUR");
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut t = Ticks::new(100, [btc], start);
        assert!(t.due_now(at(10)).is_empty(), "the first period starts here");
        assert!(t.due_now(at(109)).is_empty());
        assert_eq!(t.due_now(at(110)), vec![btc]);
        assert!(t.due_now(at(150)).is_empty(), "once per period");
        assert_eq!(t.due_now(at(215)), vec![btc]);
        let mut off = Ticks::new(0, [btc], start);
        assert!(off.due_now(at(10_000)).is_empty());
    }

    #[test]
    fn zero_disables_it() {
        let now = Instant::now();
        let t = Ticks::new(0, [sym("BTC-EUR")], now);
        assert!(!t.enabled());
        assert!(t.due(now + Duration::from_secs(3_600)).is_empty());
    }

    #[test]
    fn the_time_command_names_no_account() {
        let c = advance_time(sym("BTC-EUR"));
        assert_eq!(c.body, CommandBody::AdvanceTime);
        assert_eq!(c.user, TIME_USER);
        assert!(c.timestamp.0 > 0);
    }
}
