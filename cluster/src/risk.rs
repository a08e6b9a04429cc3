//! The distributed risk stage without its I/O: the records of the `risk`
//! and `risk-events` topics, and `RiskCore`, one shard's decisions over its
//! partition of `risk`, in offset order.
//!
//! A shard's only input is its partition of the `risk` topic: gateways
//! produce their users' orders, amends, movements and audits there, and the
//! risk role produces there the engines' events that concern the shard (as
//! `Settle` inputs, tagged with the events record they came from). The core
//! applies each input with the pipeline's [`RiskStage`], the code the
//! embedded journal writer runs, so both modes decide alike.
//!
//! Architecture Invariant: the shard's decisions depend only on the inputs
//! of its partition from its snapshot on, in offset order, so a role that
//! restores the snapshot and replays the partition makes the same decisions
//! as the role before it. A request refused on replay was refused before;
//! an order accepted on replay was accepted, and perhaps forwarded, before:
//! [`RiskCore::found_forwards`] names the risk offsets whose commands are in
//! their pairs' logs already, and those are not forwarded again (a second
//! copy would be rejected by the engine as a duplicate order id, and that
//! reject would release the live order's hold).

use std::collections::{BTreeMap, HashMap};

use accounts::{RiskCode, Shard};
use commandlog::{AccountUpdate, AuditReport, Movement, MovementOutcome};
use pipeline::{PipelineMetrics, RiskSettings, RiskStage};
use proto::{Command, CommandBody, Event, EventBody, Fees, PairConfig, Symbol, UserId};
use serde::{Deserialize, Serialize};
use store::RiskSnapshotRow;

use crate::error::ClusterError;

/// Shard `index` of `count`: a user's shard is `user_id % count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardId {
    /// This shard, from 0.
    pub index: u16,
    /// How many there are (`accounts.shards`).
    pub count: u16,
}

impl ShardId {
    /// The shard of `user` among `count`.
    pub fn of_user(user: UserId, count: u16) -> u16 {
        // Below `count`, which is a u16.
        (user.0 % u64::from(count.max(1))) as u16
    }

    /// Whether this shard holds `user`'s accounts.
    pub fn holds(self, user: UserId) -> bool {
        Self::of_user(user, self.count) == self.index
    }

    /// Whether `event` changes this shard: it can move money
    /// (`accounts::moves_money`) and names one of its users, or it is a
    /// pair's change, which every shard takes in the pair's log order, so
    /// its state (and snapshot) holds the pair's rates as an embedded
    /// shard's does. Its orders are charged the rates their gateway sent
    /// ([`RiskRequest::Order`]), which do not wait for this feed; market
    /// buys stay budgeted with the config file's limits
    /// (`RiskStage::limits`).
    pub fn concerns(self, event: &Event) -> bool {
        if !accounts::moves_money(event) {
            return false;
        }
        match &event.body {
            EventBody::Accepted(a) => self.holds(a.user),
            EventBody::Rejected(r) => self.holds(r.user),
            EventBody::Canceled(c) => self.holds(c.user),
            EventBody::Amended(a) => self.holds(a.user),
            EventBody::CanceledAll(c) => self.holds(c.user),
            EventBody::Trade(t) => self.holds(t.maker_user) || self.holds(t.taker_user),
            EventBody::Triggered(t) => self.holds(t.user),
            EventBody::Released(r) => self.holds(r.user),
            EventBody::ListAccepted(l) => self.holds(l.user),
            EventBody::ListDone(l) => self.holds(l.user),
            EventBody::PairChanged(_) => true,
            EventBody::BookDelta(_) => false,
        }
    }
}

/// Who waits for a decision: a gateway process and its request number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The gateway's instance id (unique per process start).
    pub gateway: u64,
    /// The request's number within that gateway.
    pub id: u64,
}

/// What a gateway asks of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskRequest {
    /// A new order or an amend, checked and locked before its pair sees it,
    /// with the rates the gateway quoted for the pair as it sent it: what a
    /// new order is charged. The gateway follows the pair's events, so its
    /// rates change with the pair's log; the shard's own settle the same
    /// changes later, through its feed.
    Order(Command, Fees),
    /// A deposit or withdrawal.
    Move(Movement),
    /// The live shard's audit.
    Audit,
}

/// One record of the `risk` topic (partition = shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskInput {
    /// A gateway's request.
    Request {
        /// Who waits for the decision.
        from: RequestId,
        /// What is asked.
        request: RiskRequest,
    },
    /// Events of one record of the `events` topic that concern the shard,
    /// in seq order, fed by the risk role.
    Settle {
        /// The events partition the record was read from.
        partition: i32,
        /// The record's offset there.
        offset: i64,
        /// The offset after the record of the feed's previous `Settle` from
        /// this partition. Above what the shard has settled, a `Settle`
        /// before it is missing (a send that failed while a later one
        /// succeeded): this one is skipped and the feed sends again from
        /// the shard's position, so no settlement is passed over.
        after: i64,
        /// The events.
        events: Vec<Event>,
    },
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Accepted and in its pair's command log at `position`.
    Forwarded {
        /// The pair.
        pair: Symbol,
        /// The command's position in the pair's log.
        position: u64,
    },
    /// Refused by the shard; nothing reached the pair.
    Refused(RiskCode),
    /// A movement's outcome.
    Moved(MovementOutcome),
    /// The audit asked for.
    Audited(AuditReport),
    /// The request names a user of another shard, or a command that is
    /// not the risk stage's (a gateway with another `accounts.shards`).
    Misrouted,
}

/// One decision: the request at `offset` of the shard's partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The input's offset in the shard's `risk` partition.
    pub offset: i64,
    /// Who waits for it.
    pub from: RequestId,
    /// What became of it.
    pub outcome: Outcome,
}

/// One record of the `risk-events` topic (partition = shard): the decisions
/// on a run of the shard's inputs and the balances the run changed. A
/// gateway applies the updates before it answers the decisions, so an
/// answer is never ahead of the balances it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionBatch {
    /// The shard.
    pub shard: u16,
    /// The offset after the run's last input: a gateway drops a batch at
    /// or below one it has seen (a restarted role decides again).
    pub through: i64,
    /// The requests' decisions, in offset order.
    pub decisions: Vec<Decision>,
    /// Each changed account's balances after the run, movements first.
    pub updates: Vec<AccountUpdate>,
}

/// What applying one input asks the role to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to answer (a settlement, or an input before the shard's
    /// position).
    None,
    /// Forward `cmd` to its pair's log, then answer `Forwarded` with its
    /// position.
    Forward {
        /// Who waits.
        from: RequestId,
        /// The command, as the shard admitted it (a market buy by base
        /// carries its budget).
        cmd: Command,
    },
    /// Answer with this decision.
    Decided(Decision),
    /// A settlement was skipped because one before it is missing: feed
    /// `partition` again from the shard's position.
    Gap {
        /// The events partition.
        partition: i32,
    },
}

/// The distributed snapshot: the shard's own bytes (their hash is the
/// row's `state_hash`); per events partition, the offset the feed of
/// settlements may resume from (every record before it was fed and its
/// settlement applied at or before the snapshot's position); per orders
/// partition, its end when the snapshot was taken, after every forward it
/// covers was in the log (a restarted role scans for forwards from there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotBody {
    shard: Vec<u8>,
    fed: BTreeMap<i32, i64>,
    orders_from: BTreeMap<i32, i64>,
}

/// Why a stored snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError(pub String);

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "risk snapshot: {}", self.0)
    }
}

impl std::error::Error for SnapshotError {}

/// Every balance a stored snapshot holds (a gateway's view starts there),
/// with the position it covers.
pub fn snapshot_balances(
    row: &RiskSnapshotRow,
) -> Result<Vec<(UserId, accounts::AssetId, accounts::Balance)>, SnapshotError> {
    let bad = |m: String| SnapshotError(format!("shard {}: {m}", row.shard));
    let body: SnapshotBody = proto::decode(&row.bytes).map_err(|e| bad(e.to_string()))?;
    let shard = Shard::restore(&body.shard).map_err(|e| bad(e.to_string()))?;
    if shard.state_hash() != row.state_hash {
        return Err(bad("it does not match its state hash".into()));
    }
    Ok(shard.balances().collect())
}

/// One shard's decisions over its partition of the `risk` topic.
#[derive(Debug)]
pub struct RiskCore {
    stage: RiskStage,
    id: ShardId,
    /// The next offset of the shard's partition to apply.
    next: i64,
    /// Per events partition: the offset after the last record whose
    /// settlement was applied.
    fed: BTreeMap<i32, i64>,
    /// Per orders partition: where the restored snapshot's scan starts.
    orders_from: BTreeMap<i32, i64>,
    /// Risk offsets whose commands are in their pairs' logs already, with
    /// their positions (found by the role's scan at start).
    found: HashMap<i64, (Symbol, u64)>,
}

impl RiskCore {
    /// A new shard, or the one `row` holds; its partition is read from the
    /// returned core's [`RiskCore::next`].
    pub fn restore(
        id: ShardId,
        row: Option<&RiskSnapshotRow>,
        pairs: &[PairConfig],
        settings: RiskSettings,
        metrics: PipelineMetrics,
    ) -> Result<RiskCore, SnapshotError> {
        let bad = |m: String| SnapshotError(m);
        let fresh = Shard::new(pairs).map_err(|e| bad(e.to_string()))?;
        let (shard, next, fed, orders_from) = match row {
            None => (fresh, 0, BTreeMap::new(), BTreeMap::new()),
            Some(row) => {
                let body: SnapshotBody = proto::decode(&row.bytes)
                    .map_err(|e| bad(format!("shard {}: {e}", id.index)))?;
                let mut shard = Shard::restore(&body.shard).map_err(|e| bad(e.to_string()))?;
                if shard.state_hash() != row.state_hash {
                    return Err(bad("it does not match its state hash".into()));
                }
                // A pair added to the config since: listed on the shard as
                // it would have been (nothing before it named the pair; its
                // partitions are read from their start).
                for p in pairs {
                    if shard.pair_assets(p.symbol).is_none() {
                        shard.add_pair(p).map_err(|e| {
                            bad(format!("pair {} cannot be added to it: {e}", p.symbol))
                        })?;
                    }
                }
                if shard.assets() != fresh.assets() {
                    return Err(bad("its pairs or assets differ from the configured".into()));
                }
                let next = i64::try_from(row.position).map_err(|e| bad(e.to_string()))?;
                (shard, next, body.fed, body.orders_from)
            }
        };
        let mut stage = RiskStage::new(shard, id.index, 0, pairs, settings, metrics);
        stage.start_group();
        Ok(RiskCore {
            stage,
            id,
            next,
            fed,
            orders_from,
            found: HashMap::new(),
        })
    }

    /// The shard.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The next offset of the shard's partition to apply.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// Per events partition, where the feed of settlements resumes: at or
    /// before what was fed (a settlement fed twice is a duplicate by
    /// `(pair, seq)`).
    pub fn fed(&self) -> &BTreeMap<i32, i64> {
        &self.fed
    }

    /// Per orders partition, where the scan for this shard's forwards
    /// starts (empty: from the beginning).
    pub fn orders_from(&self) -> &BTreeMap<i32, i64> {
        &self.orders_from
    }

    /// The live shard.
    pub fn shard(&self) -> &Shard {
        &self.stage.shard
    }

    /// Tells the core which risk offsets (of this shard) the pairs' logs
    /// hold already, with their positions: the replay answers them without
    /// forwarding them again.
    pub fn found_forwards(&mut self, found: impl IntoIterator<Item = (i64, (Symbol, u64))>) {
        self.found.extend(found);
    }

    /// Whether forwards found at start are still ahead of the position:
    /// until they are replayed, a snapshot must keep its scan start at or
    /// before them.
    pub fn replaying(&self) -> bool {
        self.found.keys().any(|o| *o >= self.next)
    }

    /// Applies the input at `offset`. Offsets below [`RiskCore::next`] were
    /// applied before (the snapshot covers them) and are skipped.
    pub fn apply(&mut self, offset: i64, input: &RiskInput) -> Step {
        if offset < self.next {
            return Step::None;
        }
        self.next = offset + 1;
        match input {
            RiskInput::Settle {
                partition,
                offset: at,
                after,
                events,
            } => {
                let fed = self.fed.get(partition).copied().unwrap_or(0);
                if *after > fed {
                    return Step::Gap {
                        partition: *partition,
                    };
                }
                // At or below: the next in the chain, or a repeat (settled
                // again by `(pair, seq)`, which changes nothing).
                self.stage.settle_events(events);
                self.fed.insert(*partition, fed.max(at + 1));
                Step::None
            }
            RiskInput::Request { from, request } => self.request(offset, *from, request),
        }
    }

    /// Whether `input` names a pair or an asset the shard does not have
    /// (listed at runtime since the shard started).
    pub fn names_new(&self, input: &RiskInput) -> bool {
        let shard = &self.stage.shard;
        match input {
            RiskInput::Request {
                request: RiskRequest::Order(cmd, _),
                ..
            } => shard.pair_assets(cmd.pair).is_none(),
            RiskInput::Request {
                request: RiskRequest::Move(m),
                ..
            } => usize::from(m.asset.0) >= shard.assets().len(),
            _ => false,
        }
    }

    /// Lists `listed` on the shard with its fees and budgeting limits,
    /// unless it has the pair: true if it was new.
    pub fn add_listed(&mut self, listed: &crate::Listed) -> Result<bool, ClusterError> {
        let pair = &listed.config;
        if self.stage.shard.pair_assets(pair.symbol).is_some() {
            return Ok(false);
        }
        self.stage.add_pair(pair).map_err(|e| {
            ClusterError::Config(format!(
                "listed pair {} cannot be added to shard {}: {e}",
                pair.symbol, self.id.index
            ))
        })?;
        Ok(true)
    }

    /// Passes over the input at `offset`, which does not decode: every
    /// replay skips it alike.
    pub fn skip(&mut self, offset: i64) {
        self.next = self.next.max(offset + 1);
    }

    fn request(&mut self, offset: i64, from: RequestId, request: &RiskRequest) -> Step {
        let decided = |outcome| {
            Step::Decided(Decision {
                offset,
                from,
                outcome,
            })
        };
        match request {
            RiskRequest::Audit => decided(Outcome::Audited(self.stage.audit())),
            RiskRequest::Move(m) if !self.id.holds(m.user) => decided(Outcome::Misrouted),
            RiskRequest::Move(m) => decided(Outcome::Moved(self.stage.move_funds(m))),
            RiskRequest::Order(cmd, fees) => {
                let ours = self.id.holds(cmd.user)
                    && matches!(
                        cmd.body,
                        CommandBody::NewOrder(_)
                            | CommandBody::NewOrderList(_)
                            | CommandBody::Amend(_)
                    );
                if !ours {
                    return decided(Outcome::Misrouted);
                }
                let mut cmd = cmd.clone();
                let admitted = self
                    .stage
                    .prepare_at(&mut cmd, *fees)
                    .and_then(|()| self.stage.admit_at(&cmd, *fees));
                match admitted {
                    Err(code) => decided(Outcome::Refused(code)),
                    Ok(()) => match self.found.remove(&offset) {
                        Some((pair, position)) => decided(Outcome::Forwarded { pair, position }),
                        None => Step::Forward { from, cmd },
                    },
                }
            }
        }
    }

    /// The balances changed since the last call, movements first; counts
    /// the inputs in the metrics. Call once per run of inputs.
    pub fn take_updates(&mut self) -> Vec<AccountUpdate> {
        let mut updates = Vec::new();
        self.stage.take_updates(&mut updates);
        self.stage.flush_metrics();
        // The stage encodes accepted inputs for a journal; here the log is
        // the partition, so the run is only cleared.
        self.stage.start_group();
        updates
    }

    /// Whether `snapshot_every` inputs were applied since the last
    /// snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.stage.snapshot_due()
    }

    /// Whether any input was applied since the last snapshot.
    pub fn unsnapshotted(&self) -> bool {
        self.stage.unsnapshotted()
    }

    /// The snapshot at [`RiskCore::next`]. Take it only when every command
    /// forwarded so far is in its pair's log, with `orders_ends` the ends
    /// of the orders partitions read after that.
    pub fn snapshot(&mut self, orders_ends: BTreeMap<i32, i64>) -> RiskSnapshotRow {
        let mut row = self.stage.snapshot();
        let body = SnapshotBody {
            shard: std::mem::take(&mut row.bytes),
            fed: self.fed.clone(),
            orders_from: orders_ends,
        };
        // A snapshot is plain data (bytes and integers): it encodes.
        row.bytes = proto::encode(&body).unwrap_or_default();
        row.position = u64::try_from(self.next).unwrap_or(0);
        row
    }
}

mod answers;
mod forward;
mod kafka;
mod port;
mod role;
mod route;
mod run;

pub use answers::RiskAnswers;
pub use forward::{Forward, Forwards, RISK_HEADER, decode_tag, encode_tag, found_in};
pub use kafka::KafkaRiskLogs;
pub(crate) use kafka::risk_tag;
pub use port::{GatewayAccounts, merge_audits};
pub(crate) use port::{RiskPort, start_risk_port};
pub use role::{RiskLogs, ShardRole, Tail};
pub use route::{Route, moved, route, settlement, submitted};
pub use run::{RiskParts, RiskRole, run_risk};

#[cfg(test)]
mod tests;
