//! [`RiskLogs`] over the broker: one shard's partitions of `risk` and
//! `risk-events`, the pairs' `orders` partitions it forwards to and scans,
//! and the `events` partitions its settlement feed reads.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::try_join_all;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError::MessageProduction;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use store::{LeaseKey, Store};
use tracing::warn;

use crate::commands::{RUN_MAX, position, record_offset};
use crate::error::ClusterError;
use crate::kafka::{EventBatch, KafkaConfig, Partitions};
use crate::listings::{Listed, in_partitions, stored_listings};
use crate::risk::{DecisionBatch, Forward, RISK_HEADER, RiskInput, Tail, encode_tag};

use super::RiskLogs;

/// How long a read of the shard's partition waits for a first record.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// Most records queued without a look at their delivery.
const PENDING_MAX: usize = 4_096;

/// How long a send may wait in the producer's queue.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// One shard's logs in Kafka.
pub struct KafkaRiskLogs {
    kafka: KafkaConfig,
    partitions: Partitions,
    shard: i32,
    producer: FutureProducer,
    /// Reads the shard's `risk` partition.
    risk: StreamConsumer,
    /// The position the `risk` consumer's records continue from: after
    /// the last input it returned (`None`: not assigned yet).
    risk_from: Option<i64>,
    /// Reads every `events` partition for the settlement feed.
    events: Arc<StreamConsumer>,
    /// Per events partition: the offset it delivers next.
    events_next: HashMap<i32, i64>,
    /// Per events partition: records read ahead of the feed's requests.
    buffered: HashMap<i32, VecDeque<(i64, EventBatch)>>,
    /// The store and this member's id, to check the shard's lease before
    /// forwarding (`None`: no check, for tools that own the logs).
    lease: Option<(Store, String)>,
    /// Decision batches and settlements on their way, each marked whether
    /// it is a decision batch: checked at the next send of either, and all
    /// awaited by `flush`.
    pending: Vec<(bool, DeliveryFuture)>,
    /// The offset after the last decision batch the broker took from this
    /// role: every later decision of the shard is sent after it.
    decisions_next: Option<u64>,
}

impl std::fmt::Debug for KafkaRiskLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRiskLogs")
            .field("shard", &self.shard)
            .field("risk_from", &self.risk_from)
            .finish()
    }
}

impl KafkaRiskLogs {
    /// The logs of `shard`, sending with `producer`; forwarding only while
    /// `lease` names the shard's lease holder.
    pub fn new(
        kafka: &KafkaConfig,
        partitions: &Partitions,
        shard: u16,
        producer: FutureProducer,
        lease: Option<(Store, String)>,
    ) -> Result<KafkaRiskLogs, ClusterError> {
        let consumer = || -> Result<StreamConsumer, ClusterError> {
            kafka
                .consumer_config("risk")
                .create()
                .map_err(|e| ClusterError::kafka("kafka consumer", e))
        };
        Ok(KafkaRiskLogs {
            kafka: kafka.clone(),
            partitions: partitions.clone(),
            shard: i32::from(shard),
            producer,
            risk: consumer()?,
            risk_from: None,
            events: Arc::new(consumer()?),
            events_next: HashMap::new(),
            buffered: HashMap::new(),
            lease,
            pending: Vec::new(),
            decisions_next: None,
        })
    }

    /// The end of the shard's `risk` partition (for its lag).
    pub async fn risk_end(&self) -> Result<i64, ClusterError> {
        let ends = self.ends(&self.kafka.risk_topic, vec![self.shard]).await?;
        Ok(ends.get(&self.shard).copied().unwrap_or(0))
    }

    async fn ends(
        &self,
        topic: &str,
        partitions: Vec<i32>,
    ) -> Result<BTreeMap<i32, i64>, ClusterError> {
        let consumer = self.events.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            partitions
                .into_iter()
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .map(|(_, high)| (p, high))
                        .map_err(|e| ClusterError::kafka(format!("{topic}/{p}: its end"), e))
                })
                .collect()
        })
        .await
        .map_err(|_| ClusterError::Stopped("reading a partition's end"))?
    }

    async fn send(
        &self,
        topic: &str,
        partition: i32,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<i64, ClusterError> {
        let mut record = FutureRecord::<(), [u8]>::to(topic)
            .partition(partition)
            .payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        self.producer
            .send(record, QUEUE_WAIT)
            .await
            .map(|d| d.offset)
            .map_err(|(e, _)| ClusterError::kafka(format!("sending to {topic}/{partition}"), e))
    }

    /// Queues a record without waiting for the broker; its delivery is
    /// checked by [`KafkaRiskLogs::settle_pending`].
    async fn enqueue(&mut self, topic: &str, payload: &[u8]) -> Result<(), ClusterError> {
        let decision = topic == self.kafka.risk_events_topic;
        let waited = std::time::Instant::now();
        loop {
            let record = FutureRecord::<(), [u8]>::to(topic)
                .partition(self.shard)
                .payload(payload);
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push((decision, delivery));
                    return Ok(());
                }
                Err((MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if waited.elapsed() < QUEUE_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(ClusterError::kafka(format!("sending to {topic}"), e)),
            }
        }
    }

    /// Drops the queued records already delivered; an error if one failed
    /// (the shard then restarts from its snapshot). Waits only when many
    /// are on their way.
    async fn prune_pending(&mut self) -> Result<(), ClusterError> {
        if self.pending.len() >= PENDING_MAX {
            return self.settle_pending().await;
        }
        let mut kept = Vec::with_capacity(self.pending.len());
        for (decision, mut delivery) in std::mem::take(&mut self.pending) {
            match (&mut delivery).now_or_never() {
                None => kept.push((decision, delivery)),
                Some(Ok(Ok(d))) => self.delivered(decision, d.offset),
                Some(Ok(Err((e, _)))) => return Err(ClusterError::kafka("a risk role's send", e)),
                Some(Err(_)) => return Err(ClusterError::Stopped("the producer")),
            }
        }
        self.pending = kept;
        Ok(())
    }

    /// Waits for every queued record's delivery; an error if one failed.
    async fn settle_pending(&mut self) -> Result<(), ClusterError> {
        for (decision, delivery) in std::mem::take(&mut self.pending) {
            match delivery.await {
                Ok(Ok(d)) => self.delivered(decision, d.offset),
                Ok(Err((e, _))) => return Err(ClusterError::kafka("a risk role's send", e)),
                Err(_) => return Err(ClusterError::Stopped("the producer")),
            }
        }
        Ok(())
    }

    /// Notes where a delivered decision batch went.
    fn delivered(&mut self, decision: bool, offset: i64) {
        if decision && let Ok(at) = u64::try_from(offset) {
            self.decisions_next = Some(self.decisions_next.unwrap_or(0).max(at + 1));
        }
    }

    /// Appends one forwarded record, tagged, and returns its offset once
    /// the broker has it.
    async fn forward_one(&self, shard: u16, record: &Forward) -> Result<i64, ClusterError> {
        let Some(partition) = self.partitions.of(record.pair) else {
            return Err(ClusterError::Config(format!(
                "pair {} has no partition",
                record.pair
            )));
        };
        let tag = encode_tag(shard, &record.offsets);
        let headers = OwnedHeaders::new().insert(Header {
            key: RISK_HEADER,
            value: Some(&tag),
        });
        self.send(
            &self.kafka.orders_topic,
            partition,
            &record.body,
            Some(headers),
        )
        .await
    }

    /// Points the events consumer at `next` for every partition.
    fn assign_events(&mut self) -> Result<(), ClusterError> {
        let topic = &self.kafka.events_topic;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &self.events_next {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
                .map_err(|e| ClusterError::kafka(format!("{topic}/{p}"), e))?;
        }
        self.events
            .assign(&tpl)
            .map_err(|e| ClusterError::kafka(format!("assigning {topic}"), e))
    }

    /// Moves what the events consumer holds now into the buffers.
    fn drain_events(&mut self) {
        for _ in 0..4_096 {
            let Some(msg) = self.events.recv().now_or_never() else {
                return;
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "reading the event log for settlement");
                    return;
                }
            };
            let (p, offset) = (msg.partition(), msg.offset());
            let Some(next) = self.events_next.get_mut(&p) else {
                continue;
            };
            if offset < *next {
                continue;
            }
            *next = offset + 1;
            match msg.payload().map(proto::decode::<EventBatch>) {
                Some(Ok(batch)) => self
                    .buffered
                    .entry(p)
                    .or_default()
                    .push_back((offset, batch)),
                _ => warn!(
                    partition = p,
                    offset, "an undecodable event record is skipped"
                ),
            }
        }
    }
}

/// The risk header of a message, if it has one.
pub(crate) fn risk_tag(msg: &impl Message) -> Option<Vec<u8>> {
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == RISK_HEADER)
        .and_then(|h| h.value.map(<[u8]>::to_vec))
}

impl RiskLogs for KafkaRiskLogs {
    async fn listings(&mut self) -> Result<Vec<Listed>, ClusterError> {
        let Some((store, _)) = &self.lease else {
            return Ok(Vec::new());
        };
        let rows = stored_listings(store).await?;
        let all = in_partitions(&rows, &self.partitions);
        Ok(all.into_iter().map(|(listed, _)| listed).collect())
    }

    async fn read_risk(
        &mut self,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, Option<RiskInput>)>, ClusterError> {
        // Positions, as in the command log: input `i` of the record at
        // offset `o` is at `position(o, i)`.
        let topic = self.kafka.risk_topic.clone();
        if self.risk_from != Some(from) {
            let record = record_offset(u64::try_from(from).unwrap_or(0));
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, self.shard, Offset::Offset(record))
                .map_err(|e| ClusterError::kafka(format!("{topic}/{}", self.shard), e))?;
            self.risk
                .assign(&tpl)
                .map_err(|e| ClusterError::kafka(format!("assigning {topic}"), e))?;
            self.risk_from = Some(from);
        }
        let mut out = Vec::new();
        let mut next = match tokio::time::timeout(IDLE_WAIT, self.risk.recv()).await {
            Err(_) => return Ok(out),
            Ok(m) => Some(m),
        };
        while let Some(msg) = next {
            let msg = msg.map_err(|e| ClusterError::kafka(format!("reading {topic}"), e))?;
            let offset = msg.offset();
            match msg.payload().map(proto::decode_run::<RiskInput>) {
                Some(Ok(inputs)) => {
                    for (i, input) in inputs.into_iter().enumerate() {
                        let at = position(offset, i) as i64;
                        if at >= from {
                            out.push((at, Some(input)));
                        }
                    }
                }
                _ => {
                    warn!(
                        shard = self.shard,
                        offset, "an undecodable risk record is skipped"
                    );
                    // Skipping its last position skips the whole record.
                    out.push((position(offset, RUN_MAX - 1) as i64, None));
                }
            }
            if let Some((at, _)) = out.last() {
                self.risk_from = Some(at + 1);
            }
            if out.len() >= max {
                break;
            }
            next = self.risk.recv().now_or_never();
        }
        Ok(out)
    }

    async fn append_risk(&mut self, inputs: &[RiskInput]) -> Result<(), ClusterError> {
        self.prune_pending().await?;
        let topic = self.kafka.risk_topic.clone();
        // One record per pass of the feed (the broker's cost is per
        // record), queued in order: the producer is idempotent.
        for run in inputs.chunks(RUN_MAX) {
            let mut body = Vec::new();
            for input in run {
                proto::encode_into(input, &mut body)
                    .map_err(|e| ClusterError::Log(format!("encoding a risk input: {e}")))?;
            }
            self.enqueue(&topic, &body).await?;
        }
        Ok(())
    }

    async fn may_forward(&mut self) -> Result<bool, ClusterError> {
        let Some((store, me)) = &self.lease else {
            return Ok(true);
        };
        let shard = u16::try_from(self.shard).unwrap_or(u16::MAX);
        store
            .holds_lease(LeaseKey::RiskShard(shard), me)
            .await
            .map_err(|e| ClusterError::store("checking the shard's lease", e))
    }

    async fn forward(
        &mut self,
        shard: u16,
        pairs: &[Vec<Forward>],
    ) -> Result<Vec<Vec<i64>>, ClusterError> {
        let this = &*self;
        let sends = pairs.iter().map(|records| async move {
            let mut offsets = Vec::with_capacity(records.len());
            for record in records {
                offsets.push(this.forward_one(shard, record).await?);
            }
            Ok::<_, ClusterError>(offsets)
        });
        try_join_all(sends).await
    }

    async fn flush(&mut self) -> Result<(), ClusterError> {
        self.settle_pending().await
    }

    fn decisions_from(&self) -> Option<u64> {
        self.decisions_next
    }

    async fn decide(&mut self, batch: &DecisionBatch) -> Result<(), ClusterError> {
        self.prune_pending().await?;
        let body = proto::encode(batch)
            .map_err(|e| ClusterError::Log(format!("encoding decisions: {e}")))?;
        let topic = self.kafka.risk_events_topic.clone();
        self.enqueue(&topic, &body).await
    }

    async fn orders_ends(&mut self) -> Result<BTreeMap<i32, i64>, ClusterError> {
        let all = self.partitions.iter().map(|(p, _)| p).collect();
        let topic = self.kafka.orders_topic.clone();
        self.ends(&topic, all).await
    }

    async fn orders_tail(&mut self, from: &BTreeMap<i32, i64>) -> Result<Vec<Tail>, ClusterError> {
        let ends = self.orders_ends().await?;
        let topic = self.kafka.orders_topic.clone();
        let consumer: StreamConsumer = self
            .kafka
            .consumer_config("risk-scan")
            .create()
            .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        let mut left = BTreeMap::new();
        for (p, end) in &ends {
            let start = from.get(p).copied().unwrap_or(0);
            if start < *end {
                tpl.add_partition_offset(&topic, *p, Offset::Offset(start))
                    .map_err(|e| ClusterError::kafka(format!("{topic}/{p}"), e))?;
                left.insert(*p, *end);
            }
        }
        let mut out = Vec::new();
        if left.is_empty() {
            return Ok(out);
        }
        consumer
            .assign(&tpl)
            .map_err(|e| ClusterError::kafka(format!("assigning {topic}"), e))?;
        while !left.is_empty() {
            let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .map_err(|_| ClusterError::Log(format!("{topic}: scan stalled for 30 s")))?
                .map_err(|e| ClusterError::kafka(format!("scanning {topic}"), e))?;
            let (p, offset) = (msg.partition(), msg.offset());
            let (Some(end), Some(pair)) = (left.get(&p), self.partitions.pair(p)) else {
                continue;
            };
            if offset + 1 >= *end {
                left.remove(&p);
            }
            out.push((p, pair.symbol, offset, risk_tag(&msg)));
        }
        Ok(out)
    }

    async fn read_events(
        &mut self,
        from: &BTreeMap<i32, i64>,
        max: usize,
    ) -> Result<Vec<(i32, i64, EventBatch)>, ClusterError> {
        // Assigned once with every partition (librdkafka must not see
        // assignments change in quick succession), again only when the
        // feed asks for records the consumer has passed.
        let behind = from.iter().any(|(p, o)| match self.events_next.get(p) {
            None => true,
            Some(next) => {
                let first = self
                    .buffered
                    .get(p)
                    .and_then(|b| b.front())
                    .map(|(o, _)| *o);
                first.unwrap_or(*next) > *o
            }
        });
        if behind {
            self.buffered.clear();
            self.events_next = from.iter().map(|(p, o)| (*p, *o)).collect();
            self.assign_events()?;
        }
        self.drain_events();
        let mut out = Vec::new();
        for (p, start) in from {
            let Some(buffer) = self.buffered.get_mut(p) else {
                continue;
            };
            while buffer.front().is_some_and(|(o, _)| o < start) {
                buffer.pop_front();
            }
            while out.len() < max
                && let Some((o, batch)) = buffer.pop_front()
            {
                out.push((*p, o, batch));
            }
        }
        Ok(out)
    }
}
