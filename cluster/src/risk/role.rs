//! One shard's turn in the risk role, over its logs behind [`RiskLogs`]
//! (Kafka in production, memory in the crash tests): read the partition,
//! decide, forward, answer, snapshot; and the settlement feed beside it.
//!
//! The order within a turn is what makes a kill -9 anywhere harmless:
//!
//! 1. apply the run of inputs read from the shard's position (decisions
//!    depend only on the partition, so a replay decides alike);
//! 2. forward the accepted commands, one record per pair, each awaited, and
//!    each tagged with its risk offsets ([`super::RISK_HEADER`]);
//! 3. produce the decisions and balance updates to `risk-events`;
//! 4. when due, read the orders partitions' ends and snapshot: the snapshot
//!    covers only inputs whose forwards are in their logs (2 is done), and
//!    any later forward lands after the ends it records.
//!
//! A restart restores the snapshot, scans the orders partitions from those
//! ends for its shard's tags, and replays: what was forwarded is answered
//! with its position, not forwarded again; what was not is forwarded now.
//! Decisions lost between 2 and 3 are produced again by the replay, and
//! gateways drop repeats by `(shard, through)`.

use std::collections::BTreeMap;

use proto::{Symbol, UserId};
use store::RiskSnapshotRow;

use crate::commands::position;
use crate::error::ClusterError;
use crate::kafka::EventBatch;
use crate::listings::Listed;
use crate::risk::{
    Decision, DecisionBatch, Forward, Forwards, Outcome, RiskCore, RiskInput, Step, settlement,
};

/// One record of an `orders` partition as the scan sees it: partition,
/// pair, offset, and its risk header if any.
pub type Tail = (i32, Symbol, i64, Option<Vec<u8>>);

/// The logs one shard reads and writes.
#[allow(async_fn_in_trait)] // used through generics only, never boxed
pub trait RiskLogs {
    /// Records of the shard's `risk` partition from offset `from`, at most
    /// `max` (none when there are none yet); `None` for a record that does
    /// not decode (skipped alike on every replay).
    async fn read_risk(
        &mut self,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, Option<RiskInput>)>, ClusterError>;
    /// Sends `inputs`, in order, to the shard's `risk` partition.
    async fn append_risk(&mut self, inputs: &[RiskInput]) -> Result<(), ClusterError>;
    /// Whether this role may still forward: it holds the shard's lease now.
    /// Checked once per turn before any forward, it narrows the time in
    /// which a role that lost its lease (and does not know it yet) could
    /// forward beside its successor to one turn.
    async fn may_forward(&mut self) -> Result<bool, ClusterError>;
    /// Appends each pair's forwarded records to its `orders` partition,
    /// each with the header [`super::encode_tag`]`(shard, offsets)`: one
    /// pair's records one after the other, different pairs' at once.
    /// Returns each record's offset once the broker has it, in the same
    /// shape.
    async fn forward(
        &mut self,
        shard: u16,
        pairs: &[Vec<Forward>],
    ) -> Result<Vec<Vec<i64>>, ClusterError>;
    /// Waits until the broker has every record sent so far (a decision
    /// batch or a settlement may be on its way when the call that sent it
    /// returns; a failure shows here or in a later send).
    async fn flush(&mut self) -> Result<(), ClusterError>;
    /// Sends a decision batch to the shard's `risk-events` partition.
    async fn decide(&mut self, batch: &DecisionBatch) -> Result<(), ClusterError>;
    /// After [`RiskLogs::flush`]: the offset of the shard's `risk-events`
    /// partition after the last decision batch this role sent (every later
    /// decision goes after it), if it sent one.
    fn decisions_from(&self) -> Option<u64>;
    /// The end offset of every `orders` partition now.
    async fn orders_ends(&mut self) -> Result<BTreeMap<i32, i64>, ClusterError>;
    /// The records of the `orders` partitions from `from` (per partition;
    /// from 0 where absent) to their ends: each with its partition, pair,
    /// offset and risk header if any.
    async fn orders_tail(&mut self, from: &BTreeMap<i32, i64>) -> Result<Vec<Tail>, ClusterError>;
    /// Records of the `events` partitions from the offsets `from` names
    /// (one per partition), at most `max` per call, each with its
    /// partition and offset, in offset order per partition.
    async fn read_events(
        &mut self,
        from: &BTreeMap<i32, i64>,
        max: usize,
    ) -> Result<Vec<(i32, i64, EventBatch)>, ClusterError>;
    /// Every pair listed at runtime, in listing order, with its partition
    /// (which the forwards and scans then know).
    async fn listings(&mut self) -> Result<Vec<Listed>, ClusterError>;
}

/// One shard run by the risk role.
#[derive(Debug)]
pub struct ShardRole {
    core: RiskCore,
    /// Per events partition: the next record the feed reads.
    feed: BTreeMap<i32, i64>,
    /// Per events partition: the offset after the record of the feed's last
    /// `Settle` (each `Settle` names the one before it).
    emitted: BTreeMap<i32, i64>,
    /// Per orders partition: the first record holding a forward found at
    /// start. While the core replays those, a snapshot's scan start stays
    /// at or before them: a predecessor may have forwarded beyond the
    /// snapshot it restored, and a snapshot taken before the replay
    /// reaches those forwards must still lead the next start to them.
    hold: BTreeMap<i32, i64>,
    /// Most inputs applied per turn.
    max_run: usize,
}

impl ShardRole {
    /// Starts from `core` (restored from the shard's latest snapshot): finds
    /// the forwards its predecessor made after the snapshot, and resumes
    /// the feed of `events_partitions` where the snapshot says.
    pub async fn start(
        mut core: RiskCore,
        events_partitions: &[i32],
        logs: &mut impl RiskLogs,
        max_run: usize,
    ) -> Result<ShardRole, ClusterError> {
        let shard = core.id().index;
        let mut found = Vec::new();
        let mut hold = BTreeMap::new();
        for (partition, pair, offset, tag) in logs.orders_tail(core.orders_from()).await? {
            let here = super::found_in(shard, pair, offset, tag.as_deref());
            if !here.is_empty() {
                hold.entry(partition).or_insert(offset);
            }
            found.extend(here);
        }
        core.found_forwards(found);
        let feed: BTreeMap<i32, i64> = events_partitions
            .iter()
            .map(|p| (*p, core.fed().get(p).copied().unwrap_or(0)))
            .collect();
        Ok(ShardRole {
            core,
            emitted: feed.clone(),
            feed,
            hold,
            max_run: max_run.max(1),
        })
    }

    /// The shard's core.
    pub fn core(&self) -> &RiskCore {
        &self.core
    }

    /// One turn over the shard's partition (see the module's steps);
    /// returns how many inputs it applied and the snapshot to store, if
    /// one was due (every `snapshot_every` inputs, or with
    /// `snapshot_anyway` when any input was applied since the last one, so
    /// that a quiet shard's snapshot does not grow old). After an error the core may be ahead of what reached
    /// the logs: drop this `ShardRole` and start again from the stored
    /// snapshot (what a kill -9 does), never turn it again.
    pub async fn turn(
        &mut self,
        logs: &mut impl RiskLogs,
        snapshot_anyway: bool,
    ) -> Result<(usize, Option<RiskSnapshotRow>), ClusterError> {
        let inputs = logs.read_risk(self.core.next(), self.max_run).await?;
        if inputs.is_empty() {
            let row = if snapshot_anyway && self.core.unsnapshotted() {
                Some(self.snapshot(logs).await?)
            } else {
                None
            };
            return Ok((0, row));
        }
        if inputs
            .iter()
            .any(|(_, i)| i.as_ref().is_some_and(|i| self.core.names_new(i)))
        {
            self.add_listed(logs).await?;
        }
        let mut forwards = Forwards::default();
        let mut decisions = Vec::new();
        for (offset, input) in &inputs {
            let Some(input) = input else {
                self.core.skip(*offset);
                continue;
            };
            match self.core.apply(*offset, input) {
                Step::None => {}
                Step::Gap { partition } => self.refeed(partition),
                Step::Decided(d) => decisions.push(d),
                Step::Forward { from, cmd } => forwards.push(*offset, from, &cmd)?,
            }
        }
        let shard = self.core.id().index;
        if !forwards.is_empty() && !logs.may_forward().await? {
            return Err(ClusterError::Stopped("the shard (its lease was lost)"));
        }
        let pairs = forwards.take();
        let offsets = logs.forward(shard, &pairs).await?;
        for (records, offsets) in pairs.iter().zip(offsets) {
            for (record, at) in records.iter().zip(offsets) {
                for (i, (offset, from)) in record.offsets.iter().zip(&record.from).enumerate() {
                    decisions.push(Decision {
                        offset: *offset,
                        from: *from,
                        outcome: Outcome::Forwarded {
                            pair: record.pair,
                            position: position(at, i),
                        },
                    });
                }
            }
        }
        decisions.sort_by_key(|d| d.offset);
        let updates = self.core.take_updates();
        if !decisions.is_empty() || !updates.is_empty() {
            logs.decide(&DecisionBatch {
                shard,
                through: self.core.next(),
                decisions,
                updates,
            })
            .await?;
        }
        let row = if self.core.snapshot_due() || (snapshot_anyway && self.core.unsnapshotted()) {
            Some(self.snapshot(logs).await?)
        } else {
            None
        };
        Ok((inputs.len(), row))
    }

    /// Adds every pair listed since the shard started, in listing order, so
    /// that an input naming one finds it: a listing is stored before any
    /// gateway lets a request name the pair or its assets, so every input
    /// that names one comes after it, and a restart that lists them all at
    /// once decides alike. Their events partitions join the feed.
    async fn add_listed(&mut self, logs: &mut impl RiskLogs) -> Result<(), ClusterError> {
        for listed in logs.listings().await? {
            if self.core.add_listed(&listed)? {
                tracing::info!(pair = %listed.config.symbol, shard = self.core.id().index, "a listed pair joins the shard");
                self.feed.entry(listed.partition).or_insert(0);
                self.emitted.entry(listed.partition).or_insert(0);
            }
        }
        Ok(())
    }

    /// The snapshot at the core's position, taken when every forward so far
    /// was acknowledged: the orders partitions' ends are read now, and kept
    /// at or before the forwards found at start while the replay has not
    /// passed them.
    async fn snapshot(
        &mut self,
        logs: &mut impl RiskLogs,
    ) -> Result<RiskSnapshotRow, ClusterError> {
        if !self.core.replaying() {
            self.hold.clear();
        }
        // The decisions it covers are on the log: a restart from it does not
        // decide them again.
        logs.flush().await?;
        let mut ends = logs.orders_ends().await?;
        for (partition, first) in &self.hold {
            if let Some(end) = ends.get_mut(partition) {
                *end = (*end).min(*first);
            }
        }
        let mut row = self.core.snapshot(ends);
        row.decisions_from = logs.decisions_from();
        Ok(row)
    }

    /// One pass of the settlement feed: the events records after what was
    /// fed, each that concerns the shard appended to its partition as a
    /// `Settle` input. Returns how many records were read.
    pub async fn feed(
        &mut self,
        logs: &mut impl RiskLogs,
        max: usize,
    ) -> Result<usize, ClusterError> {
        let id = self.core.id();
        let mut read = 0;
        let mut inputs = Vec::new();
        for (partition, offset, batch) in logs.read_events(&self.feed, max).await? {
            let Some(next) = self.feed.get_mut(&partition) else {
                continue;
            };
            if offset < *next {
                continue;
            }
            let after = self.emitted.get(&partition).copied().unwrap_or(0);
            if let Some(input) = settlement(id, partition, offset, after, &batch) {
                inputs.push(input);
                self.emitted.insert(partition, offset + 1);
            }
            *next = offset + 1;
            read += 1;
        }
        if !inputs.is_empty() {
            logs.append_risk(&inputs).await?;
        }
        Ok(read)
    }

    /// Feeds `partition` again from what the shard has settled: a
    /// settlement before it went missing.
    fn refeed(&mut self, partition: i32) {
        let fed = self.core.fed().get(&partition).copied().unwrap_or(0);
        tracing::warn!(
            partition,
            from = fed,
            "a settlement went missing; feeding again"
        );
        self.feed.insert(partition, fed);
        self.emitted.insert(partition, fed);
    }

    /// Whether `user`'s accounts are this shard's.
    pub fn holds(&self, user: UserId) -> bool {
        self.core.id().holds(user)
    }
}

#[cfg(test)]
mod tests;
