//! The engines' fence against a second copy of a forwarded command.
//!
//! A risk role forwards each accepted order to its pair's log once, tagged
//! with its shard and risk offset (`risk::RISK_HEADER`). A role that lost
//! its lease without knowing it yet could forward the same risk offset
//! beside its successor. The book rejects a duplicate order id only while
//! the first copy is open, so a late copy of a filled order would trade
//! again, with no funds held for it. A shard's forwards to one pair carry
//! increasing risk offsets, so the engine drops a forwarded command whose
//! offset is at or below the highest it applied from that shard.
//!
//! Architecture Invariant: the fence is part of a pair's replayed state.
//! It is stored with each snapshot (as of the snapshot's position, in the
//! same transaction) and restored with it, so an engine replaying from a
//! snapshot drops exactly the commands the live engine dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use proto::Symbol;

/// One pair's fence: per shard, the highest risk offset applied.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fence {
    /// As of the last position handed to [`Fence::at`].
    base: BTreeMap<u16, i64>,
    /// Admissions after that, in position order.
    later: VecDeque<(u64, u16, i64)>,
    /// As of the last admission.
    now: BTreeMap<u16, i64>,
    /// The last position the reader passed (admitted, dropped or
    /// untagged): the fence is known up to here.
    seen: u64,
}

impl Fence {
    /// The fence a snapshot stored (empty when there is none or it does
    /// not decode: a snapshot from before fences).
    /// `position` is the snapshot's.
    pub(crate) fn restore(bytes: Option<&[u8]>, position: u64) -> Fence {
        let base: BTreeMap<u16, i64> = bytes
            .and_then(|b| proto::decode(b).ok())
            .unwrap_or_default();
        Fence {
            now: base.clone(),
            base,
            later: VecDeque::new(),
            seen: position,
        }
    }

    /// Records that the reader passed `position` (an untagged command).
    pub(crate) fn pass(&mut self, position: u64) {
        self.seen = self.seen.max(position);
    }

    /// Whether the command at `position`, shard `shard`'s risk offset
    /// `offset`, is a first copy; if so it is recorded.
    pub(crate) fn admit(&mut self, position: u64, shard: u16, offset: i64) -> bool {
        self.pass(position);
        let highest = self.now.entry(shard).or_insert(i64::MIN);
        if offset <= *highest {
            return false;
        }
        *highest = offset;
        self.later.push_back((position, shard, offset));
        true
    }

    /// The fence as of `position`, encoded for the snapshot there; `None`
    /// when the reader has not passed it yet (a stopped actor's last
    /// snapshot, while its successor here still replays). Positions must
    /// not decrease from call to call.
    pub(crate) fn at(&mut self, position: u64) -> Option<Vec<u8>> {
        if position > self.seen {
            return None;
        }
        while let Some(&(p, shard, offset)) = self.later.front() {
            if p > position {
                break;
            }
            self.base.insert(shard, offset);
            self.later.pop_front();
        }
        // Integers in a map: it encodes.
        proto::encode(&self.base).ok()
    }
}

/// Every running pair's fence, shared by the engine's reader (which admits)
/// and its emitter (which stores the fence with each snapshot).
pub(crate) type Fences = Arc<Mutex<HashMap<Symbol, Fence>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_copy_is_dropped_and_the_fence_follows_the_snapshots() {
        let mut f = Fence::restore(None, 0);
        assert!(f.admit(1, 0, 5));
        assert!(f.admit(2, 1, 3));
        assert!(!f.admit(3, 0, 5), "the same risk offset again");
        assert!(!f.admit(4, 0, 4), "an older one");
        assert!(f.admit(5, 0, 9));
        // A snapshot at position 2 holds what was admitted up to it.
        assert_eq!(f.at(6), None, "not read that far");
        let at2 = f.at(2).unwrap();
        let mut replay = Fence::restore(Some(&at2), 2);
        // A replay from there decides as the live fence did.
        assert!(!replay.admit(3, 0, 5));
        assert!(replay.admit(5, 0, 9));
        assert!(!replay.admit(6, 1, 3));
        let at5 = f.at(5).unwrap();
        let restored = Fence::restore(Some(&at5), 5);
        assert_eq!(restored.now, BTreeMap::from([(0, 9), (1, 3)]));
        assert!(Fence::restore(Some(&[0xff]), 0).now.is_empty());
    }
}
