//! Admission: per-key rate limits and the in-flight bounds. Every limit is
//! configured in [`GatewayConfig`](crate::GatewayConfig) and visible in
//! `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use proto::Symbol;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A token bucket per API key.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_sec` tokens refill each second, up to `burst`.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `key`; `Err(seconds)` says when one will be there.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), u32> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_sec).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.per_sec;
            Err(wait.ceil().max(1.0) as u32)
        }
    }
}

/// Bounds on commands between intake and answer.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// New orders and amends, process-wide.
    pub orders: Arc<Semaphore>,
    /// Cancels, process-wide: a separate budget, so that a flood of orders
    /// never blocks the commands that reduce risk.
    pub cancels: Arc<Semaphore>,
    /// New orders and amends, per pair (a listing adds one).
    per_pair: std::sync::RwLock<HashMap<Symbol, Arc<Semaphore>>>,
    /// The bound of each pair's semaphore.
    pair_bound: usize,
}

/// Why a command was turned away before the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// The key's rate limit.
    RateLimit,
    /// The process's in-flight bound.
    ProcessInFlight,
    /// The pair's in-flight bound.
    PairInFlight,
    /// The pair's engine lags behind its log.
    PairLag,
    /// The store lags behind the engine.
    PersisterLag,
    /// The pair is halted.
    Halted,
}

impl ShedReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ShedReason::RateLimit => "rate_limit",
            ShedReason::ProcessInFlight => "process_in_flight",
            ShedReason::PairInFlight => "pair_in_flight",
            ShedReason::PairLag => "pair_lag",
            ShedReason::PersisterLag => "persister_lag",
            ShedReason::Halted => "halted",
        }
    }

    /// Every reason, for pre-creating the series.
    pub const ALL: [ShedReason; 6] = [
        ShedReason::RateLimit,
        ShedReason::ProcessInFlight,
        ShedReason::PairInFlight,
        ShedReason::PairLag,
        ShedReason::PersisterLag,
        ShedReason::Halted,
    ];
}

impl InFlight {
    /// Semaphores for the configured bounds.
    pub(crate) fn new(orders: usize, cancels: usize, per_pair: usize, pairs: &[Symbol]) -> Self {
        InFlight {
            orders: Arc::new(Semaphore::new(orders)),
            cancels: Arc::new(Semaphore::new(cancels)),
            per_pair: std::sync::RwLock::new(
                pairs
                    .iter()
                    .map(|p| (*p, Arc::new(Semaphore::new(per_pair))))
                    .collect(),
            ),
            pair_bound: per_pair,
        }
    }

    /// The bound of a listed pair.
    pub(crate) fn add_pair(&self, pair: Symbol) {
        if let Ok(mut m) = self.per_pair.write() {
            m.entry(pair)
                .or_insert_with(|| Arc::new(Semaphore::new(self.pair_bound)));
        }
    }

    /// Permits for one order-like command on `pair`.
    pub(crate) fn order(
        &self,
        pair: Symbol,
    ) -> Result<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>), ShedReason> {
        let semaphore = self
            .per_pair
            .read()
            .ok()
            .and_then(|m| m.get(&pair).cloned());
        let pair_permit = match semaphore {
            Some(s) => Some(
                s.clone()
                    .try_acquire_owned()
                    .map_err(|_| ShedReason::PairInFlight)?,
            ),
            None => None,
        };
        let process = self
            .orders
            .clone()
            .try_acquire_owned()
            .map_err(|_| ShedReason::ProcessInFlight)?;
        Ok((process, pair_permit))
    }

    /// A permit for one cancel.
    pub(crate) fn cancel(&self) -> Result<OwnedSemaphorePermit, ShedReason> {
        self.cancels
            .clone()
            .try_acquire_owned()
            .map_err(|_| ShedReason::ProcessInFlight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_its_rate() {
        let rl = RateLimiter::new(10, 2);
        let t0 = Instant::now();
        assert!(rl.check("k", t0).is_ok());
        assert!(rl.check("k", t0).is_ok());
        assert_eq!(rl.check("k", t0), Err(1));
        assert!(rl.check("other", t0).is_ok());
        assert!(rl.check("k", t0 + Duration::from_millis(110)).is_ok());
    }
}
