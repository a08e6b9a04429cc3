//! Tools on the topics: creating them, and reading the command log back
//! for replays and audits.

use std::time::Duration;

use proto::{Event, PairConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;

use crate::commands::{RUN_MAX, position};
use crate::error::ClusterError;
use crate::fence::Fence;
use crate::kafka::{KafkaConfig, Partitions};
use crate::risk::{RiskCore, RiskInput, decode_tag, risk_tag};

/// Creates the command and event logs with one partition per pair and
/// `kafka.spare_partitions` more for pairs listed at runtime, and,
/// when `risk_shards` is given (accounts enabled), the risk logs with one
/// partition per shard (an existing topic is left as it is, and reported).
pub async fn create_topics(
    kafka: &KafkaConfig,
    partitions: &Partitions,
    risk_shards: Option<u16>,
) -> Result<(), ClusterError> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client()
        .create()
        .map_err(|e| ClusterError::kafka("kafka admin client", e))?;
    let pairs = partitions.count() + i32::from(kafka.spare_partitions);
    let mut wanted = vec![(&kafka.orders_topic, pairs), (&kafka.events_topic, pairs)];
    if let Some(shards) = risk_shards {
        wanted.push((&kafka.risk_topic, i32::from(shards)));
        wanted.push((&kafka.risk_events_topic, i32::from(shards)));
    }
    let topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|&(t, n)| NewTopic::new(t, n, TopicReplication::Fixed(kafka.replication_factor)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .map_err(|e| ClusterError::kafka("create topics", e))?;
    for r in results {
        match r {
            Ok(name) => {
                let n = wanted.iter().find(|(t, _)| **t == name).map_or(0, |w| w.1);
                println!("created topic {name} ({n} partitions)");
            }
            Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                println!("topic {name} exists")
            }
            Err((name, code)) => {
                return Err(ClusterError::Log(format!("create topic {name}: {code}")));
            }
        }
    }
    Ok(())
}

/// Hands every record of `topic`'s `partition`, from its first to the
/// current end, to `on_record` with its offset and its risk header (an
/// empty record as empty).
async fn read_records(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    mut on_record: impl FnMut(i64, &[u8], Option<Vec<u8>>) -> Result<(), ClusterError>,
) -> Result<(), ClusterError> {
    let consumer: StreamConsumer = kafka
        .consumer_config("replay")
        .create()
        .map_err(|e| ClusterError::kafka("kafka consumer", e))?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| ClusterError::kafka(format!("{topic}/{partition}"), e))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(low))
        .map_err(|e| ClusterError::kafka(format!("{topic}/{partition}"), e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| ClusterError::kafka(format!("assigning {topic}/{partition}"), e))?;
    let mut next = low;
    while next < high {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| {
                ClusterError::Log(format!(
                    "{topic}/{partition}: no record at offset {next} within 30 s"
                ))
            })?
            .map_err(|e| ClusterError::kafka(format!("{topic}/{partition}"), e))?;
        next = m.offset() + 1;
        on_record(m.offset(), m.payload().unwrap_or_default(), risk_tag(&m))?;
    }
    Ok(())
}

/// Every command in `partition` of the command log that an engine applies,
/// from offset zero to the current end, with its position: for replays and
/// audits. Second copies of forwarded commands are dropped as engines drop
/// them (`fence.rs`). A record that does not decode is an error: a replay
/// must not skip commands.
pub async fn read_log(
    kafka: &KafkaConfig,
    partition: i32,
) -> Result<Vec<(u64, proto::Command)>, ClusterError> {
    let topic = kafka.orders_topic.clone();
    let mut out = Vec::new();
    let mut fence = Fence::restore(None, 0);
    read_records(kafka, &topic, partition, |offset, payload, tag| {
        let cmds = proto::decode_run::<proto::Command>(payload)
            .map_err(|e| ClusterError::Log(format!("{topic}/{partition} offset {offset}: {e}")))?;
        let tag = tag
            .and_then(|t| decode_tag(&t))
            .filter(|(_, offsets)| offsets.len() == cmds.len());
        for (i, cmd) in cmds.into_iter().enumerate() {
            let at = position(offset, i);
            let first = match &tag {
                Some((shard, offsets)) => fence.admit(at, *shard, offsets[i]),
                None => true,
            };
            if first {
                out.push((at, cmd));
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Replays risk shard `core.id()`'s partition of the `risk` topic from
/// offset zero into `core` (a fresh shard): what an uninterrupted role
/// would hold. Its decisions are recomputed, nothing is forwarded.
pub async fn replay_risk(kafka: &KafkaConfig, core: &mut RiskCore) -> Result<(), ClusterError> {
    let partition = i32::from(core.id().index);
    let mut inputs = Vec::new();
    read_records(kafka, &kafka.risk_topic, partition, |offset, payload, _| {
        match proto::decode_run::<RiskInput>(payload) {
            Ok(run) => {
                for (i, input) in run.into_iter().enumerate() {
                    inputs.push((position(offset, i) as i64, Some(input)));
                }
            }
            Err(_) => inputs.push((position(offset, RUN_MAX - 1) as i64, None)),
        }
        Ok(())
    })
    .await?;
    for (offset, input) in inputs {
        match input {
            Some(input) => {
                core.apply(offset, &input);
            }
            None => core.skip(offset),
        }
    }
    Ok(())
}

/// Replays `partition` of the command log from offset zero into an empty
/// book of `config`, handing each command's events to `on_events`; returns
/// the book and the last position. What an uninterrupted engine would hold.
pub async fn replay_log(
    kafka: &KafkaConfig,
    partition: i32,
    config: &PairConfig,
    mut on_events: impl FnMut(&[Event]),
) -> Result<(::engine::OrderBook, u64), ClusterError> {
    let log = read_log(kafka, partition).await?;
    let mut book = ::engine::OrderBook::new(*config)
        .map_err(|e| ClusterError::Config(format!("pair {}: {e}", config.symbol)))?;
    let mut events = Vec::new();
    for (_, cmd) in log.iter().filter(|(_, c)| c.pair == config.symbol) {
        events.clear();
        book.apply(cmd, &mut events);
        on_events(&events);
    }
    Ok((book, log.last().map_or(0, |(p, _)| *p)))
}
