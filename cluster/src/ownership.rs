//! Which engine runs which pair: leases in the store (`store::Lease`),
//! renewed by heartbeats, moved by compare-and-set.
//!
//! Why not the consumer group: a dead member keeps its partitions until
//! the group's session timeout, which brokers floor (6 s on MSK by default)
//! and which Tansu, busy under load, could not keep below 3 s without
//! members being dropped. A lease is as short as the store's round trip
//! allows, and an engine that shuts down releases its leases at once.
//!
//! Two engines may briefly both run a pair (a stalled owner that has not
//! yet seen its lease taken). That is harmless: both apply the same command
//! log to the same snapshot, so they emit identical events, and every
//! consumer drops what it has seen by `(pair, seq)`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Deserialize;
use store::{Lease, LeaseKey, Member};

use crate::error::ClusterError;

/// The engines' lease cadence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long an engine's heartbeat may stay still before the others take
    /// its pairs: the floor of a pair's unavailability when its engine dies.
    pub lease_ms: u32,
    /// How often an engine renews its leases and looks at the others'.
    pub heartbeat_ms: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease_ms: 1_000,
            heartbeat_ms: 200,
        }
    }
}

impl EngineConfig {
    /// Checks the values, naming the bad one.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.heartbeat_ms < 10 {
            return Err(ClusterError::Config(
                "engine.heartbeat_ms must be at least 10".into(),
            ));
        }
        // Three missed beats before a lease is judged lost: one slow store
        // round trip must not move a pair.
        if self.lease_ms < self.heartbeat_ms.saturating_mul(3) {
            return Err(ClusterError::Config(format!(
                "engine.lease_ms ({}) must be at least 3 x engine.heartbeat_ms ({})",
                self.lease_ms, self.heartbeat_ms
            )));
        }
        Ok(())
    }
}

/// What this engine has seen of the others' beats, by its own clock.
#[derive(Debug)]
pub(crate) struct Liveness {
    lease: Duration,
    /// Per member: the last beat seen and when it was first seen.
    seen: HashMap<String, (u64, Instant)>,
}

impl Liveness {
    pub(crate) fn new(lease: Duration) -> Liveness {
        Liveness {
            lease,
            seen: HashMap::new(),
        }
    }

    /// Records the members' beats as read at `now`. A member seen for the
    /// first time counts as having just beaten.
    pub(crate) fn observe(&mut self, members: &[Member], now: Instant) {
        let mut next = HashMap::with_capacity(members.len());
        for m in members {
            let entry = match self.seen.get(&m.id) {
                Some(&(beat, at)) if beat == m.beat => (beat, at),
                _ => (m.beat, now),
            };
            next.insert(m.id.clone(), entry);
        }
        self.seen = next;
    }

    /// Forgets everything: after this engine itself could not reach the
    /// store, nobody's silence can be told from its own.
    pub(crate) fn reset(&mut self) {
        self.seen.clear();
    }

    /// The live members, `me` always among them, sorted.
    pub(crate) fn live(&self, me: &str, now: Instant) -> Vec<String> {
        let mut live: Vec<String> = self
            .seen
            .iter()
            .filter(|(id, (_, at))| id.as_str() == me || now.duration_since(*at) < self.lease)
            .map(|(id, _)| id.clone())
            .collect();
        if !live.iter().any(|id| id == me) {
            live.push(me.to_string());
        }
        live.sort();
        live
    }

    /// Members silent for a lease period, with the beat they stopped at.
    pub(crate) fn dead(&self, me: &str, now: Instant) -> Vec<(String, u64)> {
        self.seen
            .iter()
            .filter(|(id, (_, at))| id.as_str() != me && now.duration_since(*at) >= self.lease)
            .map(|(id, (beat, _))| (id.clone(), *beat))
            .collect()
    }
}

/// Who should run each of `pairs` (leases, in partition order: an
/// engine's pairs or a risk role's shards), given the live
/// members (sorted, not empty) and the current owners among them. Every
/// engine computes it from what it reads, so they agree once their views
/// do. Loads end even (no member more than one pair above another), and a
/// live owner keeps its pairs up to that share: only the surplus moves.
pub(crate) fn plan(
    pairs: &[LeaseKey],
    owners: &HashMap<LeaseKey, String>,
    live: &[String],
) -> HashMap<LeaseKey, String> {
    let mut load: BTreeMap<&str, Vec<LeaseKey>> =
        live.iter().map(|m| (m.as_str(), Vec::new())).collect();
    let mut free: Vec<usize> = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        match owners.get(pair).and_then(|o| load.get_mut(o.as_str())) {
            Some(held) => held.push(*pair),
            None => free.push(i),
        }
    }
    let base = pairs.len() / live.len().max(1);
    let mut extra = pairs.len() % live.len().max(1);
    let index: HashMap<LeaseKey, usize> = pairs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    for held in load.values_mut() {
        let cap = if held.len() > base && extra > 0 {
            extra -= 1;
            base + 1
        } else {
            base
        };
        while held.len() > cap {
            if let Some(p) = held.pop() {
                free.push(index[&p]);
            }
        }
    }
    free.sort_unstable();
    for i in free {
        // The least loaded member, the first by id among equals.
        if let Some(held) = load.values_mut().min_by_key(|h| h.len()) {
            held.push(pairs[i]);
        }
    }
    load.into_iter()
        .flat_map(|(m, held)| held.into_iter().map(move |p| (p, m.to_string())))
        .collect()
}

/// What one engine does after a look at the leases.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Moves {
    /// Leases to take, as read (the compare-and-set needs them).
    pub(crate) take: Vec<Lease>,
    /// Pairs to hand over: stop the actor, then release.
    pub(crate) release: Vec<LeaseKey>,
}

/// Compares the plan with what `me` holds: take what the plan gives `me`
/// and nobody live holds; release what it gives a live other.
pub(crate) fn moves(
    me: &str,
    pairs: &[LeaseKey],
    leases: &[Lease],
    live: &[String],
    held: &HashSet<LeaseKey>,
) -> Moves {
    let is_live = |id: &str| live.iter().any(|m| m == id);
    let owners: HashMap<LeaseKey, String> = leases
        .iter()
        .filter_map(|l| match &l.owner {
            Some(o) if is_live(o) => Some((l.key, o.clone())),
            _ => None,
        })
        .collect();
    let planned = plan(pairs, &owners, live);
    let mut out = Moves::default();
    for lease in leases {
        let mine = planned.get(&lease.key).is_some_and(|m| m == me);
        let holder_live = lease.owner.as_deref().is_some_and(is_live);
        if mine && !holder_live && !held.contains(&lease.key) {
            out.take.push(lease.clone());
        }
    }
    let mut release: Vec<LeaseKey> = held
        .iter()
        .filter(|p| planned.get(p).is_some_and(|m| m != me))
        .copied()
        .collect();
    release.sort_unstable_by_key(|p| pairs.iter().position(|q| q == p));
    out.release = release;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> LeaseKey {
        LeaseKey::Pair(proto::Symbol::new(s).unwrap())
    }

    fn pairs(n: usize) -> Vec<LeaseKey> {
        (0..n).map(|i| sym(&format!("P{i}-EUR"))).collect()
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn loads(planned: &HashMap<LeaseKey, String>) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in planned.values() {
            *out.entry(m.clone()).or_default() += 1;
        }
        out
    }

    #[test]
    fn unowned_pairs_spread_evenly_in_partition_order() {
        let ps = pairs(3);
        let planned = plan(&ps, &HashMap::new(), &ids(&["a", "b"]));
        assert_eq!(planned[&ps[0]], "a");
        assert_eq!(planned[&ps[1]], "b");
        assert_eq!(planned[&ps[2]], "a");
    }

    #[test]
    fn a_balanced_assignment_stays_put() {
        let ps = pairs(3);
        let owners: HashMap<LeaseKey, String> = [(ps[0], "b"), (ps[1], "a"), (ps[2], "b")]
            .into_iter()
            .map(|(p, o)| (p, o.to_string()))
            .collect();
        assert_eq!(plan(&ps, &owners, &ids(&["a", "b"])), owners);
    }

    #[test]
    fn a_joining_member_gets_only_the_surplus() {
        let ps = pairs(4);
        let owners: HashMap<LeaseKey, String> =
            [(ps[0], "a"), (ps[1], "a"), (ps[2], "b"), (ps[3], "b")]
                .into_iter()
                .map(|(p, o)| (p, o.to_string()))
                .collect();
        let planned = plan(&ps, &owners, &ids(&["a", "b", "c"]));
        assert_eq!(planned[&ps[0]], "a");
        assert_eq!(planned[&ps[1]], "a");
        assert_eq!(planned[&ps[2]], "b");
        assert_eq!(planned[&ps[3]], "c");
    }

    #[test]
    fn loads_are_even_and_live_owners_keep_their_share_on_any_state() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for _ in 0..2_000 {
            let ps = pairs(1 + next(12));
            let members = ids(&["a", "b", "c", "d", "e"]);
            let live: Vec<String> = members[..1 + next(members.len())].to_vec();
            let mut owners: HashMap<LeaseKey, String> = HashMap::new();
            for p in &ps {
                let owner = &members[next(members.len())];
                if next(4) > 0 && live.contains(owner) {
                    owners.insert(*p, owner.clone());
                }
            }
            let planned = plan(&ps, &owners, &live);
            assert_eq!(planned.len(), ps.len(), "every pair has an owner");
            assert!(planned.values().all(|m| live.contains(m)));
            let l = loads(&planned);
            let base = ps.len() / live.len();
            for m in &live {
                let n = l.get(m).copied().unwrap_or(0);
                assert!(n == base || n == base + 1, "{m} has {n}, base {base}");
                let kept = owners
                    .iter()
                    .filter(|(p, o)| *o == m && planned[*p] == *m)
                    .count();
                let had = owners.values().filter(|o| *o == m).count();
                assert!(kept >= had.min(base), "{m} kept {kept} of {had}");
            }
        }
    }

    #[test]
    fn a_dead_owners_pairs_are_taken_and_a_planned_move_is_released() {
        let ps = pairs(3);
        let lease = |p: LeaseKey, owner: Option<&str>| Lease {
            key: p,
            owner: owner.map(str::to_string),
            epoch: 4,
            beat: 9,
        };
        // "b" is dead: "a" takes both of its pairs.
        let leases = vec![
            lease(ps[0], Some("a")),
            lease(ps[1], Some("b")),
            lease(ps[2], Some("b")),
        ];
        let held: HashSet<LeaseKey> = [ps[0]].into();
        let m = moves("a", &ps, &leases, &ids(&["a"]), &held);
        assert_eq!(m.take, vec![leases[1].clone(), leases[2].clone()]);
        assert!(m.release.is_empty());
        // "c" joined while "a" holds everything: "a" releases one and takes
        // nothing; "c" waits for the release instead of taking.
        let leases: Vec<Lease> = ps.iter().map(|p| lease(*p, Some("a"))).collect();
        let held: HashSet<LeaseKey> = ps.iter().copied().collect();
        let live = ids(&["a", "c"]);
        let m = moves("a", &ps, &leases, &live, &held);
        assert_eq!(m.release, vec![ps[2]]);
        assert!(m.take.is_empty());
        let m = moves("c", &ps, &leases, &live, &HashSet::new());
        assert_eq!(m, Moves::default());
        // Once released, "c" takes it.
        let mut leases = leases;
        leases[2].owner = None;
        let m = moves("c", &ps, &leases, &live, &HashSet::new());
        assert_eq!(m.take, vec![leases[2].clone()]);
    }

    #[test]
    fn silence_is_judged_by_the_observers_clock() {
        let lease = Duration::from_millis(1_000);
        let mut o = Liveness::new(lease);
        let t0 = Instant::now();
        let member = |beat| Member {
            id: "b".into(),
            beat,
        };
        o.observe(&[member(7)], t0);
        // First seen: live, whatever the beat.
        assert_eq!(o.live("a", t0), ids(&["a", "b"]));
        o.observe(&[member(7)], t0 + Duration::from_millis(900));
        assert_eq!(
            o.live("a", t0 + Duration::from_millis(900)),
            ids(&["a", "b"])
        );
        let late = t0 + Duration::from_millis(1_100);
        o.observe(&[member(7)], late);
        assert_eq!(o.live("a", late), ids(&["a"]));
        assert_eq!(o.dead("a", late), vec![("b".to_string(), 7)]);
        // A beat brings it back; so does a reset (nothing can be judged).
        o.observe(&[member(8)], late);
        assert_eq!(o.live("a", late), ids(&["a", "b"]));
        o.observe(&[member(8)], late + lease);
        assert_eq!(o.live("a", late + lease), ids(&["a"]));
        o.reset();
        o.observe(&[member(8)], late + lease);
        assert_eq!(o.live("a", late + lease), ids(&["a", "b"]));
    }
}
