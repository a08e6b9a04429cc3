//! The gateway's side of the risk stage: requests waiting for their
//! decisions, and the `risk-events` records that answer them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use commandlog::Observer;
use tokio::sync::oneshot;

use crate::risk::{DecisionBatch, Outcome, RequestId};

/// Requests of one gateway waiting for their shards' decisions.
#[derive(Debug)]
pub struct RiskAnswers {
    gateway: u64,
    next: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    waiting: HashMap<u64, oneshot::Sender<Outcome>>,
    /// Per shard: the `through` of the last batch handled. A restarted
    /// risk role decides again what it had decided; those are dropped.
    seen: HashMap<u16, i64>,
}

impl RiskAnswers {
    /// The waiting room of gateway `gateway` (its instance id, unique per
    /// process start).
    pub fn new(gateway: u64) -> RiskAnswers {
        RiskAnswers {
            gateway,
            next: AtomicU64::new(1),
            state: Mutex::default(),
        }
    }

    /// A new request's id and where its decision will arrive.
    pub fn register(&self) -> (RequestId, oneshot::Receiver<Outcome>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Requests that gave up leave closed senders behind: drop them
        // before they pile up.
        if state.waiting.len() >= 4_096 && state.waiting.len().is_power_of_two() {
            state.waiting.retain(|_, tx| !tx.is_closed());
        }
        state.waiting.insert(id, tx);
        (
            RequestId {
                gateway: self.gateway,
                id,
            },
            rx,
        )
    }

    /// Marks `shard`'s batches through `through` as handled: the balances
    /// a snapshot at that position holds were shown already.
    pub fn seen_through(&self, shard: u16, through: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seen = state.seen.entry(shard).or_insert(i64::MIN);
        *seen = (*seen).max(through);
    }

    /// Forgets a request whose decision will not come (its produce failed).
    pub fn forget(&self, id: RequestId) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.waiting.remove(&id.id);
    }

    /// Handles one record of `risk-events`: the balances to `observer`
    /// first, then this gateway's decisions, so that no answer is ahead of
    /// the balances it shows. A batch at or below one handled before is a
    /// restarted role's repeat and is dropped. True if it was handled.
    pub fn on_batch(&self, batch: &DecisionBatch, observer: &dyn Observer) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seen = state.seen.entry(batch.shard).or_insert(i64::MIN);
        if batch.through <= *seen {
            return false;
        }
        *seen = batch.through;
        for u in &batch.updates {
            observer.on_account(&Arc::new(u.clone()));
        }
        for d in &batch.decisions {
            if d.from.gateway != self.gateway {
                continue;
            }
            if let Some(tx) = state.waiting.remove(&d.from.id) {
                let _ = tx.send(d.outcome.clone());
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use accounts::RiskCode;
    use commandlog::{AccountUpdate, EventRecord};
    use engine::Depth;
    use proto::{PairConfig, UserId};

    use super::*;
    use crate::risk::Decision;

    #[derive(Default)]
    struct Seen(Mutex<Vec<UserId>>);

    impl Observer for Seen {
        fn on_start(&self, _: &PairConfig, _: Depth) {}
        fn on_record(&self, _: &Arc<EventRecord>) {}
        fn on_account(&self, u: &Arc<AccountUpdate>) {
            self.0.lock().unwrap().push(u.user);
        }
    }

    fn batch(through: i64, decisions: Vec<Decision>) -> DecisionBatch {
        DecisionBatch {
            shard: 0,
            through,
            decisions,
            updates: vec![AccountUpdate {
                user: UserId(through as u64),
                time_ns: 0,
                balances: vec![],
                movement: None,
            }],
        }
    }

    #[test]
    fn decisions_reach_their_requests_once_after_the_balances() {
        let answers = RiskAnswers::new(5);
        let seen = Seen::default();
        let (mine, mut rx) = answers.register();
        let other = RequestId {
            gateway: 6,
            id: mine.id,
        };
        let refused = |from| Decision {
            offset: 1,
            from,
            outcome: Outcome::Refused(RiskCode::InsufficientBalance),
        };
        assert!(answers.on_batch(&batch(2, vec![refused(other)]), &seen));
        assert!(rx.try_recv().is_err(), "another gateway's decision");
        assert!(answers.on_batch(&batch(3, vec![refused(mine)]), &seen));
        assert_eq!(
            rx.try_recv().unwrap(),
            Outcome::Refused(RiskCode::InsufficientBalance)
        );
        // A restarted role's repeat is dropped, balances included.
        assert!(!answers.on_batch(&batch(3, vec![refused(mine)]), &seen));
        assert_eq!(*seen.0.lock().unwrap(), [UserId(2), UserId(3)]);
        let (gone, rx) = answers.register();
        answers.forget(gone);
        drop(rx);
        assert!(answers.state.lock().unwrap().waiting.is_empty());
    }
}
