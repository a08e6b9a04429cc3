//! The broker's ceiling on this machine: encoded commands produced with the
//! exchange's own client settings (idempotent, acks=all, every send awaited),
//! then consumed back, with the same client the engines use.

use std::time::{Duration, Instant};

use cluster::{KafkaConfig, Partitions};
use futures_util::StreamExt;
use proto::{PairConfig, Symbol};
use rdkafka::producer::FutureRecord;
use workload::{Generator, Mix};

use crate::Error;

/// What [`ceiling`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    /// Records sent.
    pub records: usize,
    /// Records per second acknowledged by the broker.
    pub produce_per_sec: f64,
    /// Records per second read back.
    pub consume_per_sec: f64,
    /// Records per second over produce and consume together.
    pub combined_per_sec: f64,
}

/// Produces `records` commands to a fresh one-partition topic with
/// `in_flight` sends outstanding, then reads them all back.
pub async fn ceiling(brokers: &str, records: usize, in_flight: usize) -> Result<Ceiling, Error> {
    let stamp = clientkit::now_ms();
    let kafka = KafkaConfig {
        brokers: brokers.to_string(),
        orders_topic: format!("ceiling-commands-{stamp}"),
        events_topic: format!("ceiling-events-{stamp}"),
        ..KafkaConfig::default()
    };
    let pair = PairConfig::simple(
        Symbol::new("BTC-EUR").map_err(|e| Error::Settings(format!("BTC-EUR: {e}")))?,
    );
    let partitions =
        Partitions::new(&[(pair, 0)]).map_err(|e| Error::Settings(format!("partitions: {e}")))?;
    cluster::create_topics(&kafka, &partitions, None)
        .await
        .map_err(|e| Error::kafka("creating the topics", e))?;
    let producer = kafka
        .producer()
        .map_err(|e| Error::kafka("the producer", e))?;
    // Retail-mix commands: the sizes the engines' log really carries.
    let mut commands = Generator::new(Mix::Retail, 7, &pair);
    let payloads: Vec<Vec<u8>> = (0..records)
        .map(|_| {
            proto::encode(&commands.next_command()).map_err(|e| Error::Settings(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let topic = kafka.orders_topic.clone();
    let mut sends = futures_util::stream::iter(payloads.iter().map(|p| {
        let producer = &producer;
        let topic = &topic;
        async move {
            producer
                .send(
                    FutureRecord::<str, _>::to(topic).partition(0).payload(p),
                    Duration::from_secs(5),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| Error::kafka(format!("sending to {topic}"), e))
        }
    }))
    .buffered(in_flight.max(1));
    while let Some(r) = sends.next().await {
        r?;
    }
    let produced = started.elapsed();
    let read_start = Instant::now();
    let back = cluster::read_log(&kafka, 0)
        .await
        .map_err(|e| Error::kafka("reading the records back", e))?;
    let consumed = read_start.elapsed();
    if back.len() != records {
        return Err(Error::Mismatch(format!(
            "read back {} of {records} records",
            back.len()
        )));
    }
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    Ok(Ceiling {
        records,
        produce_per_sec: rate(produced),
        consume_per_sec: rate(consumed),
        combined_per_sec: rate(produced + consumed),
    })
}
