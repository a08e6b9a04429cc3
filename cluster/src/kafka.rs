//! How to reach the brokers, the topics' layout (one partition per pair),
//! and the events topic's record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use proto::{Event, PairConfig, Symbol};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The most spare partitions `topics create` makes: a bound on what a
/// typo can ask the brokers for.
const MAX_SPARE_PARTITIONS: u16 = 1_000;

/// How to reach the brokers, and the topic layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated (`KAFKA_BROKERS`).
    pub brokers: String,
    /// `plaintext`, or `ssl` on MSK (`KAFKA_SECURITY_PROTOCOL`).
    pub security_protocol: String,
    /// The command log.
    pub orders_topic: String,
    /// The event log.
    pub events_topic: String,
    /// The risk shards' logs (distributed accounts): one partition per
    /// shard, holding each shard's inputs in the order it applies them.
    pub risk_topic: String,
    /// The risk shards' decisions and balance updates, read by gateways:
    /// one partition per shard.
    pub risk_events_topic: String,
    /// The group id under which engines commit the offsets their snapshots
    /// cover (for operators' lag tools; engines assign partitions
    /// themselves).
    pub engine_group: String,
    /// Replicas per partition when `topics create` makes the topics.
    pub replication_factor: i32,
    /// How long the producer waits to fill a batch; small, for latency.
    pub linger_ms: u32,
    /// How long a send may take, retries included, before it fails.
    pub send_timeout_ms: u32,
    /// The longest a consumer's fetch waits for records (`fetch.wait.max.ms`).
    /// Kafka answers as soon as records arrive, so this costs nothing there;
    /// Tansu 0.6 always waits this long and runs a storage query per fetch,
    /// so there it is both a floor on each hop's latency and, through the
    /// polling rate, the broker's idle CPU.
    pub fetch_wait_ms: u32,
    /// Partitions beyond the config file's pairs that `topics create` adds
    /// to `orders` and `events`: a pair listed at runtime takes the lowest
    /// one no pair has, so a listing never waits for the topics to grow.
    pub spare_partitions: u16,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            security_protocol: "plaintext".into(),
            orders_topic: "orders".into(),
            events_topic: "events".into(),
            risk_topic: "risk".into(),
            risk_events_topic: "risk-events".into(),
            engine_group: "engines".into(),
            replication_factor: 1,
            linger_ms: 1,
            send_timeout_ms: 30_000,
            fetch_wait_ms: 10,
            spare_partitions: 8,
        }
    }
}

impl KafkaConfig {
    /// Checks the values, naming the bad one.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |m: String| Err(ClusterError::Config(m));
        if self.brokers.trim().is_empty() {
            return bad("kafka.brokers is empty".into());
        }
        if !matches!(self.security_protocol.as_str(), "plaintext" | "ssl") {
            return bad(format!(
                "kafka.security_protocol {:?}: expected plaintext or ssl",
                self.security_protocol
            ));
        }
        for (name, topic) in [
            ("orders_topic", &self.orders_topic),
            ("events_topic", &self.events_topic),
            ("risk_topic", &self.risk_topic),
            ("risk_events_topic", &self.risk_events_topic),
            ("engine_group", &self.engine_group),
        ] {
            if topic.is_empty() {
                return bad(format!("kafka.{name} is empty"));
            }
        }
        let topics = [
            &self.orders_topic,
            &self.events_topic,
            &self.risk_topic,
            &self.risk_events_topic,
        ];
        for (i, a) in topics.iter().enumerate() {
            if topics[i + 1..].contains(a) {
                return bad(format!(
                    "kafka topic {a:?} is named twice: orders_topic, events_topic, risk_topic and risk_events_topic must differ"
                ));
            }
        }
        if self.replication_factor < 1 {
            return bad("kafka.replication_factor must be at least 1".into());
        }
        if !(1..=10_000).contains(&self.fetch_wait_ms) {
            return bad("kafka.fetch_wait_ms must be 1 to 10000".into());
        }
        if self.spare_partitions > MAX_SPARE_PARTITIONS {
            return bad(format!(
                "kafka.spare_partitions must be at most {MAX_SPARE_PARTITIONS}"
            ));
        }
        Ok(())
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("security.protocol", &self.security_protocol)
            .set("log_level", "4");
        // librdkafka's own debug contexts (e.g. `cgrp,fetch`) for diagnosis.
        if let Ok(debug) = std::env::var("KAFKA_DEBUG") {
            c.set("debug", debug).set("log_level", "7");
        }
        c
    }

    /// An idempotent producer that waits for every in-sync replica.
    pub fn producer(&self) -> Result<FutureProducer, ClusterError> {
        self.client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.timeout.ms", self.send_timeout_ms.to_string())
            .create()
            .map_err(|e| ClusterError::kafka("kafka producer", e))
    }

    /// Consumer settings shared by every role (and the load tester's
    /// direct target): offsets are stored by the roles themselves, never
    /// committed automatically.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.client();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", self.fetch_wait_ms.to_string());
        c
    }
}

/// The explicit pair-to-partition map: partition `i` of both topics belongs
/// to one pair, never `hash % n`. Shared by its clones, so a pair listed
/// at runtime ([`Partitions::add`]) is seen by every part of a process
/// at once; it only grows.
#[derive(Debug, Clone, Default)]
pub struct Partitions {
    map: Arc<RwLock<PartitionMap>>,
}

#[derive(Debug, Default)]
struct PartitionMap {
    by_pair: HashMap<Symbol, i32>,
    by_partition: BTreeMap<i32, PairConfig>,
}

impl Partitions {
    /// The config file's pairs, each on its own partition. Gaps are
    /// allowed: a pair added to the file after runtime listings took the
    /// next partitions goes past them.
    pub fn new(pairs: &[(PairConfig, i32)]) -> Result<Partitions, ClusterError> {
        let out = Partitions::default();
        for (pc, p) in pairs {
            out.add(pc, *p)?;
        }
        Ok(out)
    }

    /// Maps `partition` to `pair`: true if new, false if it was so already;
    /// an error if either is mapped otherwise.
    pub fn add(&self, pair: &PairConfig, partition: i32) -> Result<bool, ClusterError> {
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        match (m.by_pair.get(&pair.symbol), m.by_partition.get(&partition)) {
            (Some(&p), _) if p == partition => return Ok(false),
            (Some(&p), _) => {
                return Err(ClusterError::Config(format!(
                    "pair {} is on partition {p}, not {partition}",
                    pair.symbol
                )));
            }
            (None, Some(other)) => {
                return Err(ClusterError::Config(format!(
                    "pairs {} and {} both map to partition {partition}",
                    other.symbol, pair.symbol
                )));
            }
            (None, None) if partition < 0 => {
                return Err(ClusterError::Config(format!(
                    "pair {}: partition {partition} is negative",
                    pair.symbol
                )));
            }
            (None, None) => {}
        }
        m.by_pair.insert(pair.symbol, partition);
        m.by_partition.insert(partition, *pair);
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, PartitionMap> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The partition of `pair`.
    pub fn of(&self, pair: Symbol) -> Option<i32> {
        self.read().by_pair.get(&pair).copied()
    }

    /// The pair of `partition`.
    pub fn pair(&self, partition: i32) -> Option<PairConfig> {
        self.read().by_partition.get(&partition).copied()
    }

    /// How many partitions each topic needs for its pairs: one past the
    /// highest mapped.
    pub fn count(&self) -> i32 {
        self.read()
            .by_partition
            .keys()
            .next_back()
            .map_or(0, |p| p + 1)
    }

    /// Every `(partition, pair)`, in partition order.
    pub fn iter(&self) -> std::vec::IntoIter<(i32, PairConfig)> {
        let m = self.read();
        let all: Vec<(i32, PairConfig)> = m.by_partition.iter().map(|(p, c)| (*p, *c)).collect();
        all.into_iter()
    }
}

/// One record of the events topic: the events of a run of one pair's
/// commands, each with the command's position. Batching is what makes the
/// broker's per-record cost affordable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The pair.
    pub pair: Symbol,
    /// `(position, events)` per command, in order.
    pub records: Vec<(u64, Vec<Event>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(s: &str) -> PairConfig {
        PairConfig::simple(Symbol::new(s).unwrap())
    }

    #[test]
    fn a_listing_grows_every_clone_and_never_takes_a_mapped_partition_or_pair() {
        let file = Partitions::new(&[(pair("BTC-EUR"), 0), (pair("ETH-EUR"), 1)]).unwrap();
        let writer_view = file.clone();
        assert!(file.add(&pair("SOL-EUR"), 3).unwrap());
        assert_eq!(writer_view.of(Symbol::new("SOL-EUR").unwrap()), Some(3));
        assert_eq!(writer_view.count(), 4, "one past the highest, gaps and all");
        assert!(
            !file.add(&pair("SOL-EUR"), 3).unwrap(),
            "the same listing again"
        );
        for (p, at) in [("SOL-EUR", 2), ("ADA-EUR", 1), ("ADA-EUR", -1)] {
            assert!(file.add(&pair(p), at).is_err(), "{p} at {at}");
        }
        let all: Vec<i32> = file.iter().map(|(p, _)| p).collect();
        assert_eq!(all, vec![0, 1, 3]);
        assert!(Partitions::new(&[(pair("BTC-EUR"), -1)]).is_err());
        assert!(Partitions::new(&[(pair("BTC-EUR"), 0), (pair("ETH-EUR"), 0)]).is_err());
    }

    #[test]
    fn spare_partitions_are_bounded() {
        let mut k = KafkaConfig {
            spare_partitions: MAX_SPARE_PARTITIONS,
            ..KafkaConfig::default()
        };
        assert!(k.validate().is_ok());
        k.spare_partitions += 1;
        let e = k.validate().unwrap_err().to_string();
        assert!(e.contains("kafka.spare_partitions"), "{e}");
    }
}
