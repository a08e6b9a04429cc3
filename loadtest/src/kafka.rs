//! The direct target: each request becomes the command a gateway would
//! write, appended to its pair's partition of the `orders` topic by the
//! gateway's own writer (`cluster::CommandWriter`: the exchange's producer
//! settings, a pair's commands coalesced while a record is in flight); its
//! answer is the engine's events record for that command, read from the
//! `events` topic. No HTTP,
//! no signing, no gateway: what is measured is the broker and the engines.
//!
//! `ACK` answers once the broker acknowledged the command; `RESULT` once
//! its events came back. Rejections carry the status and code the gateway
//! would give (`gateway::ApiError::rejected`), so outcomes are counted the
//! same way as over HTTP.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cluster::{CommandWriter, EventBatch, EventRecord, KafkaConfig, Partitions, Waiters};
use proto::{
    Amend, Command, CommandBody, Event, EventBody, NewOrder, OrderId, OrderRef, OrderSize,
    OrderType, PairConfig, Price, Qty, Side, TimeInForce, Timestamp, UserId,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::flow::{Kind, PairRules, Request};
use crate::target::{Answer, SubmitError};

/// Users of the direct target: `FIRST_USER + index`, apart from the ids
/// `exchange keys create` hands out from 1.
const FIRST_USER: u64 = 1 << 40;

/// The command log as a load-test target.
pub struct KafkaTarget {
    writer: Arc<CommandWriter>,
    /// By the flow's pair index: the pair's rules and its partition.
    pairs: Vec<(PairConfig, i32)>,
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

/// The cluster's pairs and topics, from the exchange's own config file.
pub fn cluster_config(
    path: &Path,
    brokers: &str,
) -> Result<(KafkaConfig, Vec<(PairConfig, i32)>), String> {
    let config = exchange::Config::load(Some(path))?;
    let partitions = config.partitions()?;
    let mut pairs: Vec<(PairConfig, i32)> =
        partitions.iter().map(|(p, c)| (c.clone(), p)).collect();
    pairs.sort_by_key(|(_, p)| *p);
    let kafka = KafkaConfig {
        brokers: brokers.to_string(),
        ..config.kafka
    };
    Ok((kafka, pairs))
}

/// The flow's view of a pair's rules.
pub fn rules(config: &PairConfig) -> PairRules {
    PairRules {
        symbol: config.symbol.as_str().to_string(),
        price_scale: config.price_scale.into(),
        qty_scale: config.qty_scale.into(),
        tick: config.tick_size.0,
        lot: config.lot_size.0,
        min_qty: config.min_qty.0,
        max_qty: config.max_qty.0,
        min_notional: config.min_notional.0,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderBody {
    side: String,
    #[serde(rename = "type")]
    order_type: String,
    time_in_force: Option<String>,
    quantity: String,
    price: Option<String>,
    #[serde(default)]
    post_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmendBody {
    order_id: u64,
    quantity: Option<String>,
    price: Option<String>,
}

impl KafkaTarget {
    /// Connects to the brokers and, for `RESULT`, follows the events topic
    /// from its end. `pairs` are in the flow's pair order.
    pub async fn new(
        kafka: &KafkaConfig,
        pairs: Vec<(PairConfig, i32)>,
        want_events: bool,
    ) -> Result<KafkaTarget, String> {
        let partitions = Partitions::new(&pairs)?;
        let writer = CommandWriter::new(kafka, &partitions)?;
        let consumer: Option<StreamConsumer> = if want_events {
            let c = kafka
                .consumer_config("loadtest")
                .create()
                .map_err(|e| format!("kafka consumer: {e}"))?;
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
                    .map_err(|e| format!("{}: {e}", kafka.orders_topic))?;
                let mut ends = Vec::new();
                if let Some(c) = &consumer {
                    for &p in &parts {
                        let (_, high) = c
                            .fetch_watermarks(&kafka.events_topic, p, wait)
                            .map_err(|e| format!("{}/{p}: {e}", kafka.events_topic))?;
                        ends.push((p, high));
                    }
                }
                Ok::<_, String>((consumer, ends))
            }
        })
        .await
        .map_err(|e| e.to_string())??;
        let waiters: Arc<Mutex<Waiters>> = Arc::default();
        let follower = match consumer {
            Some(consumer) => {
                let mut tpl = TopicPartitionList::new();
                for (p, end) in ends {
                    tpl.add_partition_offset(&kafka.events_topic, p, Offset::Offset(end))
                        .map_err(|e| format!("partition {p}: {e}"))?;
                }
                consumer
                    .assign(&tpl)
                    .map_err(|e| format!("assigning {}: {e}", kafka.events_topic))?;
                Some(tokio::spawn(follow(consumer, waiters.clone())))
            }
            None => None,
        };
        // Above every id a gateway hands out today (ms since the epoch times
        // 1,000, plus a counter): no clash with orders resting from earlier.
        let first_id = (gateway::now_ns() / 1_000_000 + 86_400_000) * 1_000;
        Ok(KafkaTarget {
            writer,
            pairs,
            next_id: AtomicU64::new(first_id),
            waiters,
            follower,
        })
    }

    /// The command `req` stands for, stamped now.
    fn command(&self, req: &Request) -> Result<Command, String> {
        let (config, _) = self
            .pairs
            .get(req.pair)
            .ok_or_else(|| format!("pair index {} is not in the cluster", req.pair))?;
        command_of(req, config, || {
            OrderId(self.next_id.fetch_add(1, Ordering::Relaxed))
        })
    }

    /// Produces `req`'s command and waits for the broker (`ACK`) or for the
    /// engine's events (`RESULT`) until `deadline`.
    pub async fn submit(&self, req: &Request, deadline: Instant) -> Result<Answer, SubmitError> {
        let cmd = match self.command(req) {
            Ok(c) => c,
            // The flow only writes valid requests; this is a harness bug.
            Err(e) => {
                return Ok(Answer {
                    status: 400,
                    body: Bytes::from(serde_json::json!({"code": -1, "msg": e}).to_string()),
                });
            }
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
            let e = gateway::ApiError::rejected(reject);
            return Ok(Answer {
                status: e.status.as_u16(),
                body: Bytes::from(serde_json::json!({"code": e.code, "msg": e.msg}).to_string()),
            });
        }
        Ok(answer(
            200,
            order_id,
            order_id.map(|id| status_of(id, events)),
        ))
    }
}

/// The command a gateway would write for `req` on `config`'s pair; a new
/// order takes its id from `next_id`.
fn command_of(
    req: &Request,
    config: &PairConfig,
    next_id: impl FnOnce() -> OrderId,
) -> Result<Command, String> {
    let bad = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let price =
        |s: &str| Price::parse_positive(s, config.price_scale).map_err(|e| bad("price", &e));
    let qty = |s: &str| Qty::parse_positive(s, config.qty_scale).map_err(|e| bad("quantity", &e));
    let body = match req.kind {
        Kind::Cancel => {
            let id = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("orderId="))
                .and_then(|v| v.parse().ok())
                .ok_or("a cancel without orderId")?;
            CommandBody::Cancel {
                target: OrderRef::Id(OrderId(id)),
            }
        }
        Kind::Amend => {
            let a: AmendBody = serde_json::from_slice(&req.body).map_err(|e| bad("amend", &e))?;
            CommandBody::Amend(Amend {
                target: OrderRef::Id(OrderId(a.order_id)),
                new_qty: a.quantity.as_deref().map(qty).transpose()?,
                new_price: a.price.as_deref().map(price).transpose()?,
            })
        }
        _ => {
            let o: OrderBody = serde_json::from_slice(&req.body).map_err(|e| bad("order", &e))?;
            let order_type = match (o.order_type.as_str(), o.price.as_deref()) {
                ("LIMIT", Some(p)) => OrderType::Limit { price: price(p)? },
                _ => OrderType::Market,
            };
            let time_in_force = match o.time_in_force.as_deref() {
                Some("GTC") => TimeInForce::Gtc,
                Some("FOK") => TimeInForce::Fok,
                _ => TimeInForce::Ioc,
            };
            CommandBody::NewOrder(NewOrder {
                order_id: next_id(),
                client_order_id: None,
                side: if o.side == "BUY" {
                    Side::Buy
                } else {
                    Side::Sell
                },
                order_type,
                time_in_force,
                post_only: o.post_only,
                stp: None,
                size: OrderSize::Base(qty(&o.quantity)?),
            })
        }
    };
    Ok(Command {
        pair: config.symbol,
        user: UserId(FIRST_USER + req.user as u64),
        timestamp: Timestamp(gateway::now_ns()),
        body,
    })
}

/// What a new order's status is after its own command: the gateway's
/// names, enough for the flow to know whether it rests.
fn status_of(id: OrderId, events: &[Event]) -> &'static str {
    let mut status = "NEW";
    for e in events {
        match &e.body {
            EventBody::Trade(t) if t.taker_order_id == id => {
                let left = match t.taker_remaining {
                    OrderSize::Base(q) => q.0,
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

fn answer(status: u16, order_id: Option<OrderId>, order_status: Option<&str>) -> Answer {
    let body = match (order_id, order_status) {
        (Some(id), Some(s)) => serde_json::json!({"orderId": id.0, "status": s}),
        (Some(id), None) => serde_json::json!({"orderId": id.0}),
        _ => serde_json::json!({}),
    };
    Answer {
        status,
        body: Bytes::from(body.to_string()),
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
    use crate::flow::{Follow, Method};
    use proto::{CancelReason, Canceled, Seq, Symbol, Trade, TradeId};

    fn btc() -> PairConfig {
        let mut c = PairConfig::simple(Symbol::new("BTC-EUR").expect("symbol"));
        c.price_scale = 2;
        c.qty_scale = 8;
        c
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
        let cmd = command_of(&limit, &btc(), || OrderId(77)).expect("valid");
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
        let body = command_of(&market, &btc(), || OrderId(78))
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
        let body = command_of(&cancel, &btc(), || OrderId(0))
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
        let body = command_of(&amend, &btc(), || OrderId(0))
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
        assert!(command_of(&bad, &btc(), || OrderId(1)).is_err());
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
