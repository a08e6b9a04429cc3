//! The direct target: each request is rendered as the gateway would
//! receive it (its query signed and stamped, its JSON body) and turned into
//! a command by the gateway's own mapping (`gateway::command_from_raw`), so
//! a request the gateway would refuse is refused here with the same status
//! and code. The command is appended to its pair's partition of the
//! `orders` topic by the gateway's own writer (`cluster::CommandWriter`:
//! the exchange's producer settings, a pair's commands coalesced while a
//! record is in flight); its answer is the engine's events record for that
//! command, read from the `events` topic. No HTTP server, no keys: what is
//! measured is the broker and the engines.
//!
//! `ACK` answers once the broker acknowledged the command; `RESULT` once
//! its events came back. Rejections carry the status and code the gateway
//! would give (`gateway::ApiError::rejected`), so outcomes are counted the
//! same way as over HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clientkit::{Credentials, Signer};
use cluster::{CommandWriter, EventBatch, EventRecord, KafkaConfig, Partitions, Waiters};
use gateway::{ApiError, RawRoute};
use loadtest::flow::{Kind, Request};
use loadtest::target::{Answer, BoxFuture, SubmitError, Target};
use proto::{Command, CommandBody, Event, EventBody, OrderId, OrderSize, PairConfig, UserId};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Error;

/// Users of the direct target: `FIRST_USER + index`, apart from the ids
/// `exchange keys create` hands out from 1.
const FIRST_USER: u64 = 1 << 40;

/// The command log as a load-test target.
pub struct KafkaTarget {
    writer: Arc<CommandWriter>,
    /// The cluster's pairs, as the gateway's mapping looks them up.
    pairs: Vec<PairConfig>,
    /// Signs the rendered requests: the mapping wants a signed query, as
    /// the gateway receives it (it does not check the signature).
    signer: Signer,
    next_id: AtomicU64,
    waiters: Arc<Mutex<Waiters>>,
    /// Reads the events topic; only for `RESULT`.
    follower: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KafkaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTarget")
            .field("writer", &self.writer)
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl Drop for KafkaTarget {
    fn drop(&mut self) {
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

impl KafkaTarget {
    /// Connects to the brokers and, for `RESULT`, follows the events topic
    /// from its end. `pairs` are in the flow's pair order.
    pub async fn new(
        kafka: &KafkaConfig,
        pairs: Vec<(PairConfig, i32)>,
        want_events: bool,
    ) -> Result<KafkaTarget, Error> {
        let partitions =
            Partitions::new(&pairs).map_err(|e| Error::Settings(format!("partitions: {e}")))?;
        let writer = CommandWriter::new(kafka, &partitions)
            .map_err(|e| Error::kafka("the command writer", e))?;
        let consumer: Option<StreamConsumer> = if want_events {
            let c = kafka
                .consumer_config("kafkaload")
                .create()
                .map_err(|e| Error::kafka("kafka consumer", e))?;
            Some(c)
        } else {
            None
        };
        // Resolved here, not by the first requests: the topics' metadata
        // and where the events topic ends now.
        let (consumer, ends) = tokio::task::spawn_blocking({
            let kafka = kafka.clone();
            let writer = writer.clone();
            let parts: Vec<i32> = pairs.iter().map(|(_, p)| *p).collect();
            move || {
                let wait = Duration::from_secs(10);
                writer
                    .producer()
                    .client()
                    .fetch_metadata(Some(&kafka.orders_topic), wait)
                    .map_err(|e| Error::kafka(&kafka.orders_topic, e))?;
                let mut ends = Vec::new();
                if let Some(c) = &consumer {
                    for &p in &parts {
                        let (_, high) = c
                            .fetch_watermarks(&kafka.events_topic, p, wait)
                            .map_err(|e| Error::kafka(format!("{}/{p}", kafka.events_topic), e))?;
                        ends.push((p, high));
                    }
                }
                Ok::<_, Error>((consumer, ends))
            }
        })
        .await
        .map_err(|e| Error::kafka("resolving the topics", e))??;
        let waiters: Arc<Mutex<Waiters>> = Arc::default();
        let follower = match consumer {
            Some(consumer) => {
                let mut tpl = TopicPartitionList::new();
                for (p, end) in ends {
                    tpl.add_partition_offset(&kafka.events_topic, p, Offset::Offset(end))
                        .map_err(|e| Error::kafka(format!("partition {p}"), e))?;
                }
                consumer
                    .assign(&tpl)
                    .map_err(|e| Error::kafka(format!("assigning {}", kafka.events_topic), e))?;
                Some(tokio::spawn(follow(consumer, waiters.clone())))
            }
            None => None,
        };
        // Above every id a gateway hands out today (ms since the epoch times
        // 1,000, plus a counter): no clash with orders resting from earlier.
        let first_id = (gateway::now_ns() / 1_000_000 + 86_400_000) * 1_000;
        Ok(KafkaTarget {
            writer,
            pairs: pairs.into_iter().map(|(c, _)| c).collect(),
            signer: Signer::new(&Credentials {
                api_key: "kafkaload".into(),
                secret: String::new(),
            }),
            next_id: AtomicU64::new(first_id),
            waiters,
            follower,
        })
    }

    /// Produces `req`'s command and waits for the broker (`ACK`) or for the
    /// engine's events (`RESULT`) until `deadline`.
    async fn send(&self, req: &Request, deadline: Instant) -> Result<Answer, SubmitError> {
        let next_id = || OrderId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let cmd = match command_of(req, &self.pairs, &self.signer, next_id) {
            Ok(c) => c,
            // What the gateway would answer; counted like any refusal.
            Err(e) => return Ok(refusal(&e)),
        };
        let position = tokio::time::timeout_at(deadline, self.writer.write(&cmd))
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map_err(|_| SubmitError::Transport("produce"))?;
        let order_id = match cmd.body {
            CommandBody::NewOrder(o) => Some(o.order_id),
            _ => None,
        };
        if self.follower.is_none() {
            return Ok(answer(200, order_id, None));
        }
        let rx = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(cmd.pair, position);
        let record = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(record)) => record,
            Ok(Err(_)) => return Err(SubmitError::Transport("events follower stopped")),
            Err(_) => return Err(SubmitError::Timeout),
        };
        let events = &record.events;
        if let Some(reject) = events.iter().find_map(|e| match e.body {
            EventBody::Rejected(r) => Some(r.code),
            _ => None,
        }) {
            return Ok(refusal(&ApiError::rejected(reject)));
        }
        Ok(answer(
            200,
            order_id,
            order_id.map(|id| status_of(id, events)),
        ))
    }
}

impl Target for KafkaTarget {
    fn submit<'a>(
        &'a self,
        req: &'a Request,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Answer, SubmitError>> {
        Box::pin(self.send(req, deadline))
    }
}

/// The gateway's answer to a request it refuses.
fn refusal(e: &ApiError) -> Answer {
    Answer {
        status: e.status.as_u16(),
        body: json_body(&ErrorAnswer {
            code: e.code,
            msg: &e.msg,
        }),
    }
}

/// The command the gateway would write for `req`, or the error it would
/// answer: the request rendered as the gateway receives it (query stamped
/// now and signed by `signer`, JSON body) and mapped by the gateway's own
/// code. The user is the request's; a new order takes its id from
/// `next_id`.
fn command_of(
    req: &Request,
    pairs: &[PairConfig],
    signer: &Signer,
    next_id: impl FnOnce() -> OrderId,
) -> Result<Command, ApiError> {
    let now_ms = clientkit::now_ms();
    let mut cmd = match req.kind {
        Kind::Cancel => {
            let query = signer.signed_query(&req.query, b"", now_ms);
            gateway::command_from_raw(pairs, RawRoute::Cancel, &query, JSON, b"", now_ms)?
        }
        Kind::Amend => {
            let query = signer.signed_query(&req.query, &req.body, now_ms);
            gateway::command_from_raw(pairs, RawRoute::Amend, &query, JSON, &req.body, now_ms)?
        }
        _ => {
            let query = signer.signed_query(&req.query, &req.body, now_ms);
            let cmd = gateway::command_from_raw(
                pairs,
                RawRoute::NewOrder,
                &query,
                JSON,
                &req.body,
                now_ms,
            )?;
            with_order_id(cmd, next_id())
        }
    };
    cmd.user = UserId(FIRST_USER + req.user as u64);
    Ok(cmd)
}

const JSON: &str = "application/json";

/// `cmd` with the harness's order id: the mapping numbers every order 1.
fn with_order_id(mut cmd: Command, id: OrderId) -> Command {
    if let CommandBody::NewOrder(o) = &mut cmd.body {
        o.order_id = id;
    }
    cmd
}

/// What a new order's status is after its own command: the gateway's
/// names, enough for the flow to know whether it rests.
fn status_of(id: OrderId, events: &[Event]) -> &'static str {
    let mut status = "NEW";
    for e in events {
        match &e.body {
            EventBody::Trade(t) if t.taker_order_id == id => {
                let left = match t.taker_remaining {
                    OrderSize::Base(q) | OrderSize::BaseWithin { qty: q, .. } => q.0,
                    OrderSize::Quote(q) => q.0,
                };
                status = if left == 0 {
                    "FILLED"
                } else {
                    "PARTIALLY_FILLED"
                };
            }
            EventBody::Canceled(c) if c.order_id == id => status = "EXPIRED",
            _ => {}
        }
    }
    status
}

/// The part of the gateway's answer to a new order that the flow reads.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderAnswer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

/// The gateway's error body.
#[derive(Serialize)]
struct ErrorAnswer<'a> {
    code: i32,
    msg: &'a str,
}

fn json_body(body: &impl Serialize) -> Bytes {
    // Plain structs of numbers and strings always encode.
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}

fn answer(status: u16, order_id: Option<OrderId>, order_status: Option<&str>) -> Answer {
    Answer {
        status,
        body: json_body(&OrderAnswer {
            order_id: order_id.map(|id| id.0),
            status: order_id.and(order_status),
        }),
    }
}

/// Hands each events record to the request waiting for it.
async fn follow(consumer: StreamConsumer, waiters: Arc<Mutex<Waiters>>) {
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(_) => {
                // The broker is away; the client reconnects by itself.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(Ok(batch)) = msg.payload().map(proto::decode::<EventBatch>) else {
            continue;
        };
        let mut w = waiters.lock().unwrap_or_else(|e| e.into_inner());
        for (position, events) in batch.records {
            w.complete(&Arc::new(EventRecord {
                pair: batch.pair,
                position,
                events,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::code;
    use loadtest::flow::{Follow, Method};
    use proto::{
        Amend, CancelReason, Canceled, OrderRef, OrderType, Price, Qty, Seq, Side, Symbol,
        TimeInForce, Timestamp, Trade, TradeId,
    };

    fn btc() -> PairConfig {
        let mut c = PairConfig::simple(Symbol::new("BTC-EUR").expect("symbol"));
        c.price_scale = 2;
        c.qty_scale = 8;
        // The gateway checks the pair's rules: room for BTC's prices.
        c.max_price = Price(100_000_000);
        c
    }

    fn signer() -> Signer {
        Signer::new(&Credentials {
            api_key: "k".into(),
            secret: String::new(),
        })
    }

    fn request(kind: Kind, method: Method, query: &str, body: &str) -> Request {
        Request {
            kind,
            user: 3,
            pair: 0,
            method,
            path: "/api/v1/order",
            query: query.into(),
            body: Bytes::from(body.to_string()),
            follow: Follow::Nothing,
        }
    }

    #[test]
    fn requests_become_the_gateways_commands() {
        let limit = request(
            Kind::Limit,
            Method::Post,
            "",
            r#"{"symbol":"BTC-EUR","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":"0.5","price":"30000.25","newOrderRespType":"RESULT"}"#,
        );
        let cmd = command_of(&limit, &[btc()], &signer(), || OrderId(77)).expect("valid");
        assert_eq!(cmd.user, UserId(FIRST_USER + 3));
        let CommandBody::NewOrder(o) = cmd.body else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.order_id, OrderId(77));
        assert_eq!(o.side, Side::Sell);
        assert_eq!(o.time_in_force, TimeInForce::Gtc);
        assert_eq!(
            o.order_type,
            OrderType::Limit {
                price: Price(3_000_025)
            }
        );
        assert_eq!(o.size, OrderSize::Base(Qty(50_000_000)));

        let market = request(
            Kind::Market,
            Method::Post,
            "",
            r#"{"symbol":"BTC-EUR","side":"BUY","type":"MARKET","quantity":"0.001","newOrderRespType":"ACK"}"#,
        );
        let body = command_of(&market, &[btc()], &signer(), || OrderId(78))
            .expect("valid")
            .body;
        let CommandBody::NewOrder(o) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (o.order_type, o.time_in_force, o.side),
            (OrderType::Market, TimeInForce::Ioc, Side::Buy)
        );

        let cancel = request(
            Kind::Cancel,
            Method::Delete,
            "symbol=BTC-EUR&orderId=42&newOrderRespType=RESULT",
            "",
        );
        let body = command_of(&cancel, &[btc()], &signer(), || OrderId(0))
            .expect("valid")
            .body;
        assert_eq!(
            body,
            CommandBody::Cancel {
                target: OrderRef::Id(OrderId(42))
            }
        );

        let amend = request(
            Kind::Amend,
            Method::Put,
            "",
            r#"{"symbol":"BTC-EUR","orderId":42,"price":"29999.00","newOrderRespType":"RESULT"}"#,
        );
        let body = command_of(&amend, &[btc()], &signer(), || OrderId(0))
            .expect("valid")
            .body;
        assert_eq!(
            body,
            CommandBody::Amend(Amend {
                target: OrderRef::Id(OrderId(42)),
                new_qty: None,
                new_price: Some(Price(2_999_900)),
            })
        );

        let bad = request(Kind::Limit, Method::Post, "", r#"{"side":"BUY"}"#);
        assert!(command_of(&bad, &[btc()], &signer(), || OrderId(1)).is_err());

        // The gateway's mapping, not a lenient one: a side that is not BUY
        // is refused with the gateway's code, not sent as a SELL.
        let hold = request(
            Kind::Limit,
            Method::Post,
            "",
            r#"{"symbol":"BTC-EUR","side":"HOLD","type":"LIMIT","timeInForce":"GTC","quantity":"0.5","price":"30000.25"}"#,
        );
        let e = command_of(&hold, &[btc()], &signer(), || OrderId(1)).expect_err("bad side");
        assert_eq!((e.status.as_u16(), e.code), (400, code::BAD_ENUM));
        let answer = refusal(&e);
        assert_eq!(answer.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(body["code"], code::BAD_ENUM);
        // An amend is read as strictly.
        let amend = request(
            Kind::Amend,
            Method::Put,
            "",
            r#"{"symbol":"BTC-EUR","orderId":42,"colour":"red"}"#,
        );
        assert!(command_of(&amend, &[btc()], &signer(), || OrderId(0)).is_err());
    }

    fn event(seq: u64, body: EventBody) -> Event {
        Event {
            pair: Symbol::new("BTC-EUR").expect("symbol"),
            seq: Seq(seq),
            timestamp: Timestamp(0),
            body,
        }
    }

    fn trade(seq: u64, taker: u64, left: u64) -> Event {
        event(
            seq,
            EventBody::Trade(Trade {
                trade_id: TradeId(seq),
                price: Price(1),
                qty: Qty(1),
                taker_side: Side::Buy,
                maker_order_id: OrderId(1),
                maker_user: UserId(1),
                maker_remaining: Qty(0),
                taker_order_id: OrderId(taker),
                taker_user: UserId(2),
                taker_remaining: OrderSize::Base(Qty(left)),
            }),
        )
    }

    #[test]
    fn a_new_orders_status_says_whether_it_rests() {
        let id = OrderId(9);
        assert_eq!(status_of(id, &[]), "NEW");
        assert_eq!(status_of(id, &[trade(1, 9, 5)]), "PARTIALLY_FILLED");
        assert_eq!(status_of(id, &[trade(1, 9, 5), trade(2, 9, 0)]), "FILLED");
        // Another order's trade says nothing about this one.
        assert_eq!(status_of(id, &[trade(1, 8, 0)]), "NEW");
        let expired = event(
            3,
            EventBody::Canceled(Canceled {
                order_id: id,
                client_order_id: None,
                user: UserId(2),
                side: Side::Buy,
                remaining: OrderSize::Base(Qty(5)),
                reason: CancelReason::IocRemainder,
            }),
        );
        assert_eq!(status_of(id, &[trade(1, 9, 5), expired]), "EXPIRED");
    }
}
