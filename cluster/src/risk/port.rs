//! The gateway's side of the distributed risk stage: requests produced to
//! their shard's `risk` partition, decisions read back from `risk-events`,
//! and the balances the gateway shows, started from the shards' snapshots.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use accounts::{AssetInfo, Shard};
use commandlog::{
    Accounts, AuditFuture, AuditReport, Movement, MovementFuture, Observer, SubmitError,
};
use proto::PairConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use store::Store;
use tracing::warn;

use crate::commands::CommandWriter;
use crate::error::ClusterError;
use crate::kafka::KafkaConfig;
use crate::risk::{
    DecisionBatch, Outcome, RiskAnswers, RiskInput, RiskRequest, ShardId, moved, snapshot_balances,
};

/// How long a request waits for its shard's decision. A request that times
/// out may still be decided (the answer says its status is unknown).
const DECISION_WAIT: Duration = Duration::from_secs(30);

/// What a gateway needs to run with accounts on.
#[derive(Debug, Clone)]
pub struct GatewayAccounts {
    /// This gateway's instance id (unique per process start): decisions
    /// name it.
    pub gateway: u64,
    /// How many shards (`accounts.shards`).
    pub shards: u16,
    /// The pairs (the asset table is the shards').
    pub pairs: Vec<PairConfig>,
}

/// The risk stage as a gateway reaches it.
pub(crate) struct RiskPort {
    pub(crate) shards: u16,
    /// Each shard's requests coalesced into records, as the command log's.
    writer: Arc<CommandWriter>,
    answers: Arc<RiskAnswers>,
    /// The shards' pairs and assets (an empty shard's); listings grow it.
    table: RwLock<Shard>,
}

impl std::fmt::Debug for RiskPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskPort")
            .field("shards", &self.shards)
            .field("writer", &self.writer)
            .finish()
    }
}

impl RiskPort {
    /// Produces `request` to `shard`'s partition and waits for its decision.
    pub(crate) async fn ask(
        &self,
        shard: u16,
        request: RiskRequest,
    ) -> Result<Outcome, SubmitError> {
        let (from, rx) = self.answers.register();
        let input = RiskInput::Request { from, request };
        if let Err(e) = self.writer.append(i32::from(shard), &input).await {
            self.answers.forget(from);
            return Err(SubmitError::Store(format!(
                "sending to the risk stage: {e}"
            )));
        }
        match tokio::time::timeout(DECISION_WAIT, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(SubmitError::ShuttingDown),
            Err(_) => {
                self.answers.forget(from);
                Err(SubmitError::Store(
                    "no decision from the risk stage within 30 s; the request is in its log and \
                     may still be applied"
                        .into(),
                ))
            }
        }
    }
}

impl RiskPort {
    fn table(&self) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the shards could not take `pair` (an asset they hold would be
    /// counted in a finer unit), if they could not.
    pub(crate) fn refuses(&self, pair: &PairConfig) -> Option<String> {
        let mut shard = self.table().clone();
        shard.add_pair(pair).err().map(|e| e.to_string())
    }

    /// A pair listed at runtime: its new assets take the next ids, as the
    /// shards give them, which add listed pairs in listing order.
    pub(crate) fn add_pair(&self, pair: &PairConfig) {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.pair_assets(pair.symbol).is_some() {
            return;
        }
        if let Err(e) = table.add_pair(pair) {
            tracing::error!(pair = %pair.symbol, error = %e, "a listed pair's assets");
        }
    }
}

impl Accounts for RiskPort {
    fn assets(&self) -> Vec<AssetInfo> {
        self.table().assets().to_vec()
    }

    fn move_funds(&self, movement: Movement) -> MovementFuture<'_> {
        Box::pin(async move {
            let shard = ShardId::of_user(movement.user, self.shards);
            moved(self.ask(shard, RiskRequest::Move(movement)).await?)
        })
    }

    fn audit(&self) -> AuditFuture<'_> {
        Box::pin(async move {
            let mut reports = Vec::new();
            for shard in 0..self.shards {
                match self.ask(shard, RiskRequest::Audit).await? {
                    Outcome::Audited(r) => reports.push(r),
                    other => {
                        return Err(SubmitError::Store(format!(
                            "shard {shard} answered an audit with {other:?}"
                        )));
                    }
                }
            }
            Ok(merge_audits(reports))
        })
    }
}

/// The shards' audits as one: per asset the sums, and every failure. Each
/// shard audits itself on one consistent state; the sums are taken at
/// different moments, so a trade between shards may be counted on one
/// side only.
pub fn merge_audits(reports: Vec<AuditReport>) -> AuditReport {
    let mut out = AuditReport {
        assets: Vec::new(),
        open_holds: 0,
        failures: Vec::new(),
    };
    for (shard, r) in reports.into_iter().enumerate() {
        out.open_holds += r.open_holds;
        out.failures.extend(
            r.failures
                .into_iter()
                .map(|f| format!("shard {shard}: {f}")),
        );
        for (i, a) in r.assets.into_iter().enumerate() {
            match out.assets.get_mut(i) {
                Some(sum) => {
                    sum.held = sum.held.saturating_add(a.held);
                    sum.expected = sum.expected.saturating_add(a.expected);
                    sum.fees = sum.fees.saturating_add(a.fees);
                }
                None => out.assets.push(a),
            }
        }
    }
    out
}

/// Starts a gateway's risk port: every shard's balances from its latest
/// snapshot to `observer`, then `risk-events` from the offset stored with
/// that snapshot, read up to its end as of now before this returns (so a
/// gateway serves no balance older than its start), then a follower of the
/// rest (returned, to be run) that hands balances and decisions on in
/// order.
pub(crate) async fn start_risk_port(
    kafka: &KafkaConfig,
    store: &Store,
    accounts: GatewayAccounts,
    observer: Arc<dyn Observer>,
) -> Result<(RiskPort, impl Future<Output = ()> + Send + 'static), ClusterError> {
    let answers = Arc::new(RiskAnswers::new(accounts.gateway));
    let mut balances = Vec::new();
    // Where each shard's decisions are read from: after the snapshot's,
    // or from the beginning where the offset is not known.
    let mut starts = Vec::new();
    for shard in 0..accounts.shards {
        let row = store
            .latest_risk_snapshot(shard)
            .await
            .map_err(|e| ClusterError::store("reading a risk snapshot", e))?;
        let mut from = Offset::Beginning;
        if let Some(row) = row {
            balances.extend(snapshot_balances(&row).map_err(|e| ClusterError::Config(e.0))?);
            answers.seen_through(shard, i64::try_from(row.position).unwrap_or(i64::MAX));
            if let Some(Ok(offset)) = row.decisions_from.map(i64::try_from) {
                from = Offset::Offset(offset);
            }
        }
        starts.push((shard, from));
    }
    observer.on_accounts_start(&balances);
    let consumer: StreamConsumer = kafka
        .consumer_config("gateways")
        .create()
        .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
    let topic = &kafka.risk_events_topic;
    let mut tpl = TopicPartitionList::new();
    for (shard, from) in &starts {
        tpl.add_partition_offset(topic, i32::from(*shard), *from)
            .map_err(|e| ClusterError::kafka(format!("{topic}/{shard}"), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| ClusterError::kafka(format!("assigning {topic}"), e))?;
    let ends = decision_ends(&consumer, topic, &starts)?;
    catch_up_decisions(&consumer, &answers, &*observer, ends).await;
    let shard = Shard::new(&accounts.pairs).map_err(|e| ClusterError::Config(e.to_string()))?;
    let port = RiskPort {
        shards: accounts.shards,
        writer: CommandWriter::for_partitions(kafka, &kafka.risk_topic, accounts.shards)?,
        answers: answers.clone(),
        table: RwLock::new(shard),
    };
    Ok((port, follow_decisions(consumer, answers, observer)))
}

/// The longest a starting gateway reads `risk-events` before it serves:
/// past it, it serves and the follower catches up (with a warning).
const DECISIONS_CATCH_UP: Duration = Duration::from_secs(60);

/// Per shard partition with records left to read from its start: the
/// offset of its last record now.
fn decision_ends(
    consumer: &StreamConsumer,
    topic: &str,
    starts: &[(u16, Offset)],
) -> Result<Vec<(i32, i64)>, ClusterError> {
    let mut ends = Vec::new();
    for (shard, from) in starts {
        let p = i32::from(*shard);
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| ClusterError::kafka(format!("{topic}/{p}: its end"), e))?;
        let first = match from {
            Offset::Offset(o) => (*o).max(low),
            _ => low,
        };
        if first < high {
            ends.push((p, high - 1));
        }
    }
    Ok(ends)
}

/// Reads decisions until every partition in `ends` reached its end (or
/// [`DECISIONS_CATCH_UP`] passed).
async fn catch_up_decisions(
    consumer: &StreamConsumer,
    answers: &RiskAnswers,
    observer: &dyn Observer,
    mut ends: Vec<(i32, i64)>,
) {
    let deadline = tokio::time::Instant::now() + DECISIONS_CATCH_UP;
    while !ends.is_empty() {
        let Ok(next) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            warn!(left = ?ends, "risk-events not read to its end at start; serving anyway");
            return;
        };
        match next {
            Ok(msg) => {
                take_decisions(&msg, answers, observer);
                let (p, at) = (msg.partition(), msg.offset());
                ends.retain(|&(q, end)| q != p || at < end);
            }
            Err(e) => warn!(error = %e, "consuming the risk decisions"),
        }
    }
}

/// Hands each `risk-events` record to the waiting room, forever.
async fn follow_decisions(
    consumer: StreamConsumer,
    answers: Arc<RiskAnswers>,
    observer: Arc<dyn Observer>,
) {
    loop {
        match consumer.recv().await {
            Ok(msg) => take_decisions(&msg, &answers, &*observer),
            Err(e) => warn!(error = %e, "consuming the risk decisions"),
        }
    }
}

/// One `risk-events` record's decisions, to the waiting room and the
/// balance views.
fn take_decisions(msg: &impl Message, answers: &RiskAnswers, observer: &dyn Observer) {
    match msg.payload().map(proto::decode::<DecisionBatch>) {
        Some(Ok(batch)) => {
            answers.on_batch(&batch, observer);
        }
        _ => warn!(
            partition = msg.partition(),
            offset = msg.offset(),
            "an undecodable decision record is skipped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use commandlog::AssetAudit;

    use super::*;

    fn report(held: u128, expected: u128, failures: &[&str]) -> AuditReport {
        AuditReport {
            assets: vec![AssetAudit {
                asset: "EUR".into(),
                held,
                expected,
                fees: 1,
            }],
            open_holds: 2,
            failures: failures.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn merged_audits_sum_the_shards_and_keep_every_failure() {
        let merged = merge_audits(vec![report(10, 10, &[]), report(5, 7, &["short"])]);
        assert_eq!(merged.assets.len(), 1);
        let eur = &merged.assets[0];
        assert_eq!((eur.held, eur.expected, eur.fees), (15, 17, 2));
        assert_eq!(merged.open_holds, 4);
        assert_eq!(merged.failures, ["shard 1: short"]);
        assert!(merge_audits(vec![report(1, 1, &[])]).failures.is_empty());
    }
}
