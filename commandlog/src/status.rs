//! A pair's live counters: written by its backend, read by the gateway
//! (load-shedding, `/readyz`) and by whoever exports metrics.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use proto::{Event, EventBody, PairConfig, Seq, Symbol, TradingStatus};
use tokio::sync::Notify;

/// What a pair's log counts when it says how far its engine trails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagUnit {
    /// Commands: the embedded journal numbers them contiguously.
    Commands,
    /// Records of the Kafka command log, each of one or more commands:
    /// positions there are not contiguous, so commands cannot be counted
    /// from them.
    Records,
}

/// How far a pair's engine trails its log, with the unit it is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Commands logged and not yet applied.
    Commands(u64),
    /// Records of the command log written and not yet fully applied.
    Records(u64),
}

impl Lag {
    /// The count, whatever its unit.
    pub fn count(self) -> u64 {
        match self {
            Lag::Commands(n) | Lag::Records(n) => n,
        }
    }
}

impl fmt::Display for Lag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lag::Commands(n) => write!(f, "{n} commands"),
            Lag::Records(n) => write!(f, "{n} records"),
        }
    }
}

/// A pair's live counters. Positions are in the unit of [`LagUnit`]: the
/// backend that creates the status feeds it positions (embedded) or record
/// counts (Kafka) accordingly.
#[derive(Debug)]
pub struct PairStatus {
    /// The pair.
    pub symbol: Symbol,
    /// The pair's rules and trading status now: from its restored book at
    /// start, then from each `PairChanged` its engine emits (both modes
    /// see every record), so the request path and `exchangeInfo` read the
    /// rules the book applies. A lock, not atomics: read per request,
    /// written only by an operator's change.
    rules: RwLock<(PairConfig, TradingStatus)>,
    unit: LagUnit,
    logged: AtomicU64,
    applied: AtomicU64,
    engine_seq: AtomicU64,
    persisted_seq: AtomicU64,
    /// Woken whenever `persisted_seq` moves: readers of their own writes
    /// wait on it instead of polling.
    persisted_moved: Notify,
    /// Told when a reader waits for events the store does not hold yet:
    /// the persister that lingers for a bigger transaction commits at once
    /// instead (one per exchange, shared by its pairs; see
    /// [`PairStatus::asking_store_through`]).
    store_wanted: Arc<Notify>,
    /// The position the pair's latest stored snapshot covers.
    snapshot_position: AtomicU64,
    halted: AtomicBool,
    /// Why the pair is halted, once it is; the first reason is kept.
    halt_reason: OnceLock<String>,
}

impl PairStatus {
    /// A pair with the rules and trading status of its restored book, whose
    /// log is at `logged` (in `unit`) and whose engine emitted up to `seq`,
    /// all of it applied and stored.
    pub fn new(
        config: PairConfig,
        status: TradingStatus,
        unit: LagUnit,
        logged: u64,
        seq: Seq,
    ) -> Self {
        PairStatus {
            symbol: config.symbol,
            rules: RwLock::new((config, status)),
            unit,
            logged: AtomicU64::new(logged),
            applied: AtomicU64::new(logged),
            engine_seq: AtomicU64::new(seq.0),
            persisted_seq: AtomicU64::new(seq.0),
            persisted_moved: Notify::new(),
            store_wanted: Arc::new(Notify::new()),
            snapshot_position: AtomicU64::new(logged),
            halted: AtomicBool::new(false),
            halt_reason: OnceLock::new(),
        }
    }

    /// This status, telling `wanted` whenever a reader waits for the store to
    /// catch up ([`PairStatus::stored_up_to`]): the persister of the
    /// pair's events waits on it while it lingers.
    pub fn asking_store_through(mut self, wanted: Arc<Notify>) -> Self {
        self.store_wanted = wanted;
        self
    }

    /// The pair's rules now.
    pub fn config(&self) -> PairConfig {
        self.rules().0
    }

    /// The pair's trading status now (`TRADING`, `HALT`, `BREAK`): not to be
    /// confused with [`PairStatus::is_halted`], a stop on a fault.
    pub fn trading_status(&self) -> TradingStatus {
        self.rules().1
    }

    /// The pair's rules and trading status now.
    pub fn rules(&self) -> (PairConfig, TradingStatus) {
        // A poisoned lock still holds a whole value (it is only ever
        // replaced whole).
        *self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the rules and trading status.
    fn set_rules(&self, config: PairConfig, status: TradingStatus) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = (config, status);
    }

    /// Takes the last `PairChanged` among `events`, if any.
    pub fn observe(&self, events: &[Event]) {
        if let Some(c) = events.iter().rev().find_map(|e| match e.body {
            EventBody::PairChanged(c) => Some(c),
            _ => None,
        }) {
            self.set_rules(c.config, c.status);
        }
    }

    /// What the lag counts.
    pub fn unit(&self) -> LagUnit {
        self.unit
    }

    /// Stops the pair taking commands, for `reason` (shown by `/readyz`).
    /// The first reason is kept.
    pub fn halt(&self, reason: impl Into<String>) {
        let _ = self.halt_reason.set(reason.into());
        self.halted.store(true, Ordering::Release);
    }

    /// Why the pair is halted, if it is.
    pub fn halt_reason(&self) -> Option<String> {
        self.halt_reason.get().cloned()
    }

    /// True once the pair stopped on a fault; it takes no commands.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Records that the log reached `position` (never moves back).
    pub fn logged(&self, position: u64) {
        self.logged.fetch_max(position, Ordering::AcqRel);
    }

    /// Sets the log's position: for its single writer, which may also move
    /// it back when a write it counted failed.
    pub fn set_logged(&self, position: u64) {
        self.logged.store(position, Ordering::Release);
    }

    /// The position the log reached.
    pub fn logged_position(&self) -> u64 {
        self.logged.load(Ordering::Acquire)
    }

    /// Records that the engine applied up to `position`, emitting events up
    /// to `seq` (never moves back; for readers of the event log).
    pub fn applied(&self, position: u64, seq: Seq) {
        self.applied.fetch_max(position, Ordering::AcqRel);
        self.engine_seq.fetch_max(seq.0, Ordering::AcqRel);
    }

    /// The same for the pair's actor, its only writer: plain stores, no
    /// read-modify-write on the hot path.
    pub fn set_applied(&self, position: u64, seq: Seq) {
        self.applied.store(position, Ordering::Release);
        self.engine_seq.store(seq.0, Ordering::Release);
    }

    /// The position of the last command the engine applied.
    pub fn applied_position(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Records that the store holds the pair's events up to `seq`.
    pub fn persisted(&self, seq: Seq) {
        if self.persisted_seq.fetch_max(seq.0, Ordering::AcqRel) < seq.0 {
            self.persisted_moved.notify_waiters();
        }
    }

    /// Waits until the store is known to hold the pair's events up to
    /// `seq`, or until `deadline`; true when it does.
    pub async fn stored_up_to(&self, seq: Seq, deadline: tokio::time::Instant) -> bool {
        loop {
            // Registered before the check, so a move between the two is
            // not missed.
            let moved = self.persisted_moved.notified();
            if self.persisted_seq() >= seq {
                return true;
            }
            // Again after each move: the events asked for may have
            // reached the persister after the transaction it cut short.
            self.store_wanted.notify_one();
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return self.persisted_seq() >= seq;
            }
        }
    }

    /// The last event seq the store is known to hold.
    pub fn persisted_seq(&self) -> Seq {
        Seq(self.persisted_seq.load(Ordering::Acquire))
    }

    /// Records that a snapshot covering `position` is stored.
    pub fn snapshot_stored(&self, position: u64) {
        self.snapshot_position.fetch_max(position, Ordering::AcqRel);
    }

    /// The position the latest stored snapshot covers.
    pub fn snapshot_position(&self) -> u64 {
        self.snapshot_position.load(Ordering::Acquire)
    }

    /// How far the engine trails the log, in the log's unit.
    pub fn lag(&self) -> Lag {
        let applied = self.applied.load(Ordering::Acquire);
        let n = self.logged.load(Ordering::Acquire).saturating_sub(applied);
        match self.unit {
            LagUnit::Commands => Lag::Commands(n),
            LagUnit::Records => Lag::Records(n),
        }
    }

    /// Events emitted and not yet stored.
    pub fn persister_lag(&self) -> u64 {
        let stored = self.persisted_seq.load(Ordering::Acquire);
        self.engine_seq
            .load(Ordering::Acquire)
            .saturating_sub(stored)
    }

    /// The last event seq the pair's engine emitted.
    pub fn engine_seq(&self) -> Seq {
        Seq(self.engine_seq.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Symbol;

    fn pair() -> PairConfig {
        PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
    }

    #[test]
    fn the_lag_names_its_unit() {
        let s = PairStatus::new(
            pair(),
            TradingStatus::Trading,
            LagUnit::Commands,
            10,
            Seq(5),
        );
        assert_eq!(s.lag(), Lag::Commands(0));
        s.logged(14);
        assert_eq!(s.lag(), Lag::Commands(4));
        s.set_applied(13, Seq(9));
        assert_eq!(s.lag(), Lag::Commands(1));
        assert_eq!(s.persister_lag(), 4);
        s.persisted(Seq(9));
        assert_eq!(s.persister_lag(), 0);
        let r = PairStatus::new(pair(), TradingStatus::Trading, LagUnit::Records, 3, Seq(0));
        r.logged(5);
        assert_eq!(r.lag(), Lag::Records(2));
        assert_eq!(r.lag().count(), 2);
    }

    #[test]
    fn the_first_halt_reason_is_kept() {
        let s = PairStatus::new(pair(), TradingStatus::Trading, LagUnit::Commands, 0, Seq(0));
        assert!(!s.is_halted());
        s.halt("first");
        s.halt("second");
        assert!(s.is_halted());
        assert_eq!(s.halt_reason().as_deref(), Some("first"));
    }

    #[test]
    fn the_rules_follow_the_last_pair_changed_of_a_record() {
        let s = PairStatus::new(pair(), TradingStatus::Trading, LagUnit::Commands, 0, Seq(0));
        assert_eq!(s.rules(), (pair(), proto::TradingStatus::Trading));
        let changed = |seq: u64, tick: u64, status| proto::Event {
            pair: pair().symbol,
            seq: Seq(seq),
            timestamp: proto::Timestamp(1),
            body: EventBody::PairChanged(proto::PairChanged {
                config: PairConfig {
                    tick_size: proto::Price(tick),
                    ..pair()
                },
                status,
            }),
        };
        s.observe(&[
            changed(1, 5, proto::TradingStatus::Halt),
            changed(2, 7, proto::TradingStatus::Break),
        ]);
        assert_eq!(s.config().tick_size, proto::Price(7));
        assert_eq!(s.trading_status(), proto::TradingStatus::Break);
        // A record without a change leaves the rules alone.
        s.observe(&[]);
        assert_eq!(s.trading_status(), proto::TradingStatus::Break);
    }
}
