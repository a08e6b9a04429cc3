//! Writing the command log: a pair's commands coalesced into records, and
//! the positions that name them.
//!
//! While one record of a pair is on its way to the broker, the pair's new
//! commands wait, and all of them go as the next record, their encodings
//! back to back (`proto::decode_run` reads them). At low load a record holds
//! one command and nothing waits; under load a record holds what arrived
//! during one broker round trip. The local broker's cost is per record, so
//! this is what lets commands per second exceed its records per second.
//!
//! Architecture Invariant: command `i` (from 0) of the record at `offset` is
//! at position `offset * RUN_MAX + i + 1`. Positions grow with the log and
//! are the same in every process, so snapshots, RESULT waiters and replays
//! agree on them; they are not contiguous.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use proto::Command;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::oneshot;

use crate::error::ClusterError;
use crate::kafka::{KafkaConfig, Partitions};

/// Most commands in one record of the command log.
pub const RUN_MAX: usize = 1024;

/// Most bytes of encoded commands in one record (Kafka's default largest
/// message is 1 MiB).
const RECORD_BYTES: usize = 512 * 1024;

/// The position of command `index` of the record at `offset`.
pub fn position(offset: i64, index: usize) -> u64 {
    offset.max(0) as u64 * RUN_MAX as u64 + index as u64 + 1
}

/// The offset of the record that holds `position` (at least 1).
pub fn record_offset(position: u64) -> i64 {
    (position.saturating_sub(1) / RUN_MAX as u64) as i64
}

/// How many records of the log are done once `position` is: those up to
/// and including the one that holds it (0 before any).
pub fn records_through(position: u64) -> u64 {
    if position == 0 {
        0
    } else {
        record_offset(position) as u64 + 1
    }
}

type Reply = oneshot::Sender<Result<u64, KafkaError>>;

#[derive(Default)]
struct Queue {
    /// The waiting commands' encodings, back to back, oldest first.
    bytes: Vec<u8>,
    /// Per waiting command: its encoding's length and who waits for it.
    waiting: VecDeque<(usize, Reply)>,
    /// A record of this pair is on its way; its sender takes the next.
    sending: bool,
}

/// Appends commands to the command log, each pair's coalesced; or, built
/// with [`CommandWriter::for_partitions`], any records of one topic, each
/// partition's coalesced (the gateways' requests to the risk shards).
pub struct CommandWriter {
    producer: FutureProducer,
    topic: String,
    /// Whose partitions these are: pairs (growing with listings), or the
    /// numbers below a count.
    targets: Targets,
    /// Per partition written so far: its waiting items and the record key.
    queues: RwLock<HashMap<i32, Arc<PartitionQueue>>>,
}

/// Which partitions a writer writes.
enum Targets {
    /// Each pair's partition, looked up by the command's pair.
    Pairs(Partitions),
    /// Partitions `0..n`, named by the caller.
    Numbered(i32),
}

/// One partition's waiting items and its records' key.
struct PartitionQueue {
    key: String,
    queue: Mutex<Queue>,
}

impl fmt::Debug for CommandWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandWriter")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl CommandWriter {
    /// A writer of `kafka`'s orders topic, with the idempotent producer;
    /// a pair added to `partitions` later is written as well.
    pub fn new(
        kafka: &KafkaConfig,
        partitions: &Partitions,
    ) -> Result<Arc<CommandWriter>, ClusterError> {
        Ok(Arc::new(CommandWriter {
            producer: kafka.producer()?,
            topic: kafka.orders_topic.clone(),
            targets: Targets::Pairs(partitions.clone()),
            queues: RwLock::default(),
        }))
    }

    /// A writer of partitions `0..count` of `topic`: items appended to one
    /// partition while its record is on the way go together as the next.
    pub fn for_partitions(
        kafka: &KafkaConfig,
        topic: &str,
        count: u16,
    ) -> Result<Arc<CommandWriter>, ClusterError> {
        Ok(Arc::new(CommandWriter {
            producer: kafka.producer()?,
            topic: topic.to_string(),
            targets: Targets::Numbered(i32::from(count)),
            queues: RwLock::default(),
        }))
    }

    /// `partition`'s queue, made on its first item; `None` for a partition
    /// this writer does not write.
    fn queue(&self, partition: i32) -> Option<Arc<PartitionQueue>> {
        if let Some(q) = self
            .queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&partition)
        {
            return Some(q.clone());
        }
        let key = match &self.targets {
            Targets::Pairs(pairs) => pairs.pair(partition)?.symbol.to_string(),
            Targets::Numbered(n) if (0..*n).contains(&partition) => partition.to_string(),
            Targets::Numbered(_) => return None,
        };
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let q = queues.entry(partition).or_insert_with(|| {
            Arc::new(PartitionQueue {
                key,
                queue: Mutex::default(),
            })
        });
        Some(q.clone())
    }

    /// The producer, for warming it up.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Appends `cmd` and returns its position once the broker has it.
    pub async fn write(self: &Arc<Self>, cmd: &Command) -> Result<u64, ClusterError> {
        let partition = match &self.targets {
            Targets::Pairs(pairs) => pairs.of(cmd.pair),
            Targets::Numbered(_) => None,
        };
        let Some(partition) = partition else {
            return Err(ClusterError::Config(format!(
                "pair {} has no partition",
                cmd.pair
            )));
        };
        self.append(partition, cmd).await
    }

    /// Appends `item` to `partition` and returns its position once the
    /// broker has it.
    pub async fn append<T: serde::Serialize>(
        self: &Arc<Self>,
        partition: i32,
        item: &T,
    ) -> Result<u64, ClusterError> {
        let Some(queue) = self.queue(partition) else {
            return Err(ClusterError::Config(format!(
                "{}: no partition {partition}",
                self.topic
            )));
        };
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = queue.queue.lock().unwrap_or_else(|e| e.into_inner());
            // Encoded straight into the partition's buffer: no allocation
            // per item.
            let before = q.bytes.len();
            proto::encode_into(item, &mut q.bytes)
                .map_err(|e| ClusterError::Log(format!("encoding a record: {e}")))?;
            let len = q.bytes.len() - before;
            q.waiting.push_back((len, tx));
            !std::mem::replace(&mut q.sending, true)
        };
        if start {
            tokio::spawn(self.clone().send_records(partition));
        }
        rx.await
            .map_err(|_| ClusterError::Stopped("the log writer"))?
            .map_err(|e| ClusterError::kafka(format!("sending to {}", self.topic), e))
    }

    /// Sends the partition's waiting items, a record at a time, until none
    /// wait.
    async fn send_records(self: Arc<Self>, partition: i32) {
        let Some(queue) = self.queue(partition) else {
            return;
        };
        let key = queue.key.as_str();
        let mut body = Vec::new();
        let mut replies = Vec::with_capacity(RUN_MAX);
        loop {
            body.clear();
            {
                let mut q = queue.queue.lock().unwrap_or_else(|e| e.into_inner());
                let mut take = 0;
                while replies.len() < RUN_MAX
                    && let Some(&(len, _)) = q.waiting.front()
                    && (take == 0 || take + len <= RECORD_BYTES)
                {
                    let Some((_, reply)) = q.waiting.pop_front() else {
                        break;
                    };
                    take += len;
                    replies.push(reply);
                }
                if replies.is_empty() {
                    q.sending = false;
                    return;
                }
                body.extend_from_slice(&q.bytes[..take]);
                q.bytes.drain(..take);
            }
            let record = FutureRecord::to(&self.topic)
                .partition(partition)
                .key(key)
                .payload(&body);
            match self.producer.send(record, Duration::from_secs(1)).await {
                Ok(delivery) => {
                    for (i, reply) in replies.drain(..).enumerate() {
                        let _ = reply.send(Ok(position(delivery.offset, i)));
                    }
                }
                Err((e, _)) => {
                    for reply in replies.drain(..) {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_grow_with_the_log_and_name_their_record() {
        assert_eq!(position(0, 0), 1);
        assert_eq!(position(0, RUN_MAX - 1), RUN_MAX as u64);
        assert_eq!(position(1, 0), RUN_MAX as u64 + 1);
        for (offset, index) in [(0, 0), (0, 7), (5, 0), (5, RUN_MAX - 1), (1 << 40, 3)] {
            let p = position(offset, index);
            assert_eq!(record_offset(p), offset, "{offset}/{index}");
            assert!(p > position(offset - 1, RUN_MAX - 1) || offset == 0);
        }
        assert_eq!(record_offset(0), 0);
        assert_eq!(records_through(0), 0);
        assert_eq!(records_through(position(0, 3)), 1);
        assert_eq!(records_through(position(4, 0)), 5);
    }
}
