//! The one map of requests waiting for their command's events.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use proto::Symbol;
use tokio::sync::oneshot;

use crate::port::EventRecord;

/// Records a [`Waiters::default`] keeps for a request registered after its
/// events arrived (over Kafka the events can overtake the broker's
/// acknowledgement of the command).
pub const RECENT: usize = 4_096;

/// Requests waiting for the events record of a command position, matched
/// as records arrive; a record that arrives first is kept a while for its
/// request. The embedded journal registers before the command reaches its
/// actor, so it keeps none ([`Waiters::new`] with 0); readers of the Kafka
/// event log keep [`RECENT`].
#[derive(Debug)]
pub struct Waiters {
    pending: HashMap<(Symbol, u64), oneshot::Sender<Arc<EventRecord>>>,
    /// Most records kept for a request still to come.
    keep: usize,
    /// The last `keep` records nobody waited for, oldest first in `order`.
    recent: HashMap<(Symbol, u64), Arc<EventRecord>>,
    order: VecDeque<(Symbol, u64)>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters::new(RECENT)
    }
}

impl Waiters {
    /// A map that keeps the last `keep` records nobody waited for yet.
    pub fn new(keep: usize) -> Self {
        Waiters {
            pending: HashMap::new(),
            keep,
            recent: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The receiver of `(pair, position)`'s events record.
    pub fn register(&mut self, pair: Symbol, position: u64) -> oneshot::Receiver<Arc<EventRecord>> {
        // Requests that gave up (timed out) leave closed senders behind when
        // their record never comes: drop them before they pile up.
        if self.keep > 0 && self.pending.len() >= 4 * self.keep {
            self.pending.retain(|_, tx| !tx.is_closed());
        }
        let (tx, rx) = oneshot::channel();
        match self.recent.get(&(pair, position)) {
            Some(rec) => {
                let _ = tx.send(rec.clone());
            }
            None => {
                self.pending.insert((pair, position), tx);
            }
        }
        rx
    }

    /// Hands `record` to its request, or keeps it for one still to come.
    pub fn complete(&mut self, record: &Arc<EventRecord>) {
        let key = (record.pair, record.position);
        if let Some(tx) = self.pending.remove(&key) {
            let _ = tx.send(record.clone());
            return;
        }
        if self.keep == 0 {
            return;
        }
        if self.order.len() >= self.keep
            && let Some(old) = self.order.pop_front()
        {
            self.recent.remove(&old);
        }
        self.order.push_back(key);
        self.recent.insert(key, record.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: u64) -> Arc<EventRecord> {
        Arc::new(EventRecord {
            pair: Symbol::new("BTC-EUR").unwrap(),
            position,
            events: Vec::new(),
        })
    }

    #[test]
    fn a_record_reaches_the_request_registered_before_or_after_it() {
        let pair = Symbol::new("BTC-EUR").unwrap();
        let mut w = Waiters::default();
        let mut before = w.register(pair, 1);
        w.complete(&record(1));
        assert_eq!(before.try_recv().unwrap().position, 1);
        w.complete(&record(2));
        let mut after = w.register(pair, 2);
        assert_eq!(after.try_recv().unwrap().position, 2);
    }

    #[test]
    fn without_room_a_record_nobody_waits_for_is_dropped() {
        let pair = Symbol::new("BTC-EUR").unwrap();
        let mut w = Waiters::new(0);
        w.complete(&record(1));
        let mut late = w.register(pair, 1);
        assert!(late.try_recv().is_err());
        let mut keep = Waiters::new(1);
        keep.complete(&record(1));
        keep.complete(&record(2));
        assert!(keep.register(pair, 1).try_recv().is_err());
        assert!(keep.register(pair, 2).try_recv().is_ok());
    }
}
