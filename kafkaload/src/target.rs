//! The direct target: each request is rendered as the gateway would
//! receive it (its query signed and stamped, its form body) and turned into
//! a command by the gateway's own mapping (`gateway::command_from_raw`), so
//! a request the gateway would refuse is refused here with the same status
//! and code. A cancel-replace, which that mapping has no route for, is
//! split as the gateway's handler splits it: its cancel (`cancelOrderId`)
//! and its new order (the other parameters), each mapped by its own route. The command is appended to its pair's partition of the
//! `orders` topic by the gateway's own writer (`cluster::CommandWriter`:
//! the exchange's producer settings, a pair's commands coalesced while a
//! record is in flight); its answer is the engine's events record for that
//! command, read from the `events` topic. No HTTP server, no keys: what is
//! measured is the broker and the engines.
//!
//! `ACK` answers once the broker acknowledged the command; `RESULT` once
//! its events came back. Rejections carry the status and code the gateway
//! would give (`gateway::ApiError::rejected`, `cancel_rejected`), so
//! outcomes are counted the same way as over HTTP. A replace's cancel is
//! awaited before its new order is produced, as the gateway awaits it,
//! under `RESULT`; under `ACK`, where no events are read, its new order
//! follows once the broker has the cancel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clientkit::{Credentials, Signer};
use cluster::{CommandWriter, EventBatch, EventRecord, KafkaConfig, Partitions, Waiters};
use gateway::{ApiError, RawRoute, code};
use loadtest::flow::{Kind, Request};
use loadtest::target::{Answer, BoxFuture, SubmitError, Target};
use proto::{
    CancelReason, ClientOrderId, Command, CommandBody, Event, EventBody, OrderId, OrderSize,
    PairConfig, RejectCode, UserId,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{Value, json};
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

    /// Produces `req`'s command (a replace's two) and waits for the broker
    /// (`ACK`) or for the engine's events (`RESULT`) until `deadline`.
    async fn send(&self, req: &Request, deadline: Instant) -> Result<Answer, SubmitError> {
        let next_id = || OrderId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let rendered = match commands_of(req, &self.pairs, &self.signer, next_id) {
            Ok(c) => c,
            // What the gateway would answer; counted like any refusal.
            Err(e) => return Ok(refusal(&e)),
        };
        match rendered {
            Rendered::One(cmd) => {
                let order_id = match cmd.body {
                    CommandBody::NewOrder(o) => Some(o.order_id),
                    _ => None,
                };
                let answer = match self.produce(&cmd, deadline).await? {
                    Ok(record) => order_answer(order_id, record.as_deref()),
                    Err(e) => refusal(&e),
                };
                Ok(answer)
            }
            Rendered::Replace {
                cancel,
                order,
                allow_failure,
            } => self.replace(&cancel, &order, allow_failure, deadline).await,
        }
    }

    /// Produces `cmd` and, under `RESULT`, waits for its events: `Ok` with
    /// them (`None` under `ACK`), or the gateway's error for the engine's
    /// rejection.
    async fn produce(
        &self,
        cmd: &Command,
        deadline: Instant,
    ) -> Result<Result<Option<Arc<EventRecord>>, ApiError>, SubmitError> {
        let position = tokio::time::timeout_at(deadline, self.writer.write(cmd))
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map_err(|_| SubmitError::Transport("produce"))?;
        if self.follower.is_none() {
            return Ok(Ok(None));
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
            return Ok(Err(match &cmd.body {
                CommandBody::Cancel { .. } | CommandBody::CancelAll => {
                    ApiError::cancel_rejected(reject)
                }
                CommandBody::NewOrder(o) => {
                    ApiError::rejected_order(reject, o.order_type == proto::OrderType::Market)
                }
                _ => ApiError::rejected(reject),
            }));
        }
        // A LIMIT_MAKER that would take is ended by the book at once; the
        // gateway answers that as a rejection.
        if let CommandBody::NewOrder(o) = &cmd.body
            && events.iter().any(|e| {
                matches!(e.body, EventBody::Canceled(c)
                    if c.order_id == o.order_id && c.reason == CancelReason::PostOnlyWouldCross)
            })
        {
            return Ok(Err(ApiError::rejected_order(
                RejectCode::PostOnlyWouldCross,
                false,
            )));
        }
        Ok(Ok(Some(record)))
    }

    /// A cancel-replace as the gateway runs it: the cancel, then (unless
    /// it failed under `STOP_ON_FAILURE`) the new order; answered in the
    /// gateway's shapes, -2022 when nothing happened, -2021 when one part
    /// did.
    async fn replace(
        &self,
        cancel: &Command,
        order: &Command,
        allow_failure: bool,
        deadline: Instant,
    ) -> Result<Answer, SubmitError> {
        let canceled = self.produce(cancel, deadline).await?;
        if canceled.is_err() && !allow_failure {
            return Ok(replace_answer(canceled.map(|_| json!({})), None));
        }
        let order_id = match order.body {
            CommandBody::NewOrder(o) => Some(o.order_id),
            _ => None,
        };
        let placed = self.produce(order, deadline).await?.map(|record| {
            let a = order_answer(order_id, record.as_deref());
            serde_json::from_slice(&a.body).unwrap_or(Value::Null)
        });
        Ok(replace_answer(canceled.map(|_| json!({})), Some(placed)))
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

/// What a request becomes.
#[derive(Debug)]
enum Rendered {
    /// One command (boxed, as the others: a command holds an order
    /// list's two orders).
    One(Box<Command>),
    /// A cancel-replace's cancel and new order.
    Replace {
        cancel: Box<Command>,
        order: Box<Command>,
        /// `ALLOW_FAILURE`: the new order is placed even if the cancel
        /// failed.
        allow_failure: bool,
    },
}

/// The commands the gateway would write for `req`, or the error it would
/// answer: the request rendered as the gateway receives it (query stamped
/// now and signed by `signer`, form body) and mapped by the gateway's own
/// code. The user is the request's; a new order takes its id from
/// `next_id`.
fn commands_of(
    req: &Request,
    pairs: &[PairConfig],
    signer: &Signer,
    next_id: impl FnOnce() -> OrderId,
) -> Result<Rendered, ApiError> {
    let user = UserId(FIRST_USER + req.user as u64);
    let raw = |route: RawRoute, query: &str, body: &str| {
        let now_ms = clientkit::now_ms();
        let query = signer.signed_query(query, body.as_bytes(), now_ms);
        let ct = if body.is_empty() { "" } else { FORM };
        let mut cmd = gateway::command_from_raw(pairs, route, &query, ct, body.as_bytes(), now_ms)?;
        cmd.user = user;
        Ok::<_, ApiError>(cmd)
    };
    let body = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::new(code::ILLEGAL_CHARS, "The body is not UTF-8."))?;
    let cmd = match req.kind {
        Kind::Cancel => raw(RawRoute::Cancel, &req.query, body)?,
        Kind::Amend => raw(RawRoute::Amend, &req.query, body)?,
        Kind::Replace => {
            let split = split_replace(&req.query, body)?;
            // The gateway checks the new order before it cancels anything.
            let order = raw(RawRoute::NewOrder, "", &split.order)?;
            let order = with_order_id(order, next_id(), &[&split.order]);
            let cancel = raw(RawRoute::Cancel, &split.cancel, "")?;
            return Ok(Rendered::Replace {
                cancel: Box::new(cancel),
                order: Box::new(order),
                allow_failure: split.allow_failure,
            });
        }
        _ => {
            let order = raw(RawRoute::NewOrder, &req.query, body)?;
            with_order_id(order, next_id(), &[&req.query, body])
        }
    };
    Ok(Rendered::One(Box::new(cmd)))
}

/// A cancel-replace's parameters as the gateway's handler divides them.
#[derive(Debug, PartialEq, Eq)]
struct ReplaceParts {
    /// The cancel's query: `symbol` and `orderId`.
    cancel: String,
    /// The new order's form: every parameter that is not the cancel's.
    order: String,
    /// `cancelReplaceMode=ALLOW_FAILURE`.
    allow_failure: bool,
}

/// Splits a cancel-replace's query and form. Only what the flow sends is
/// rendered (`cancelOrderId`); the cancel's other parameters are refused
/// here by name rather than dropped.
fn split_replace(query: &str, form: &str) -> Result<ReplaceParts, ApiError> {
    let mut order = Vec::new();
    let (mut mode, mut cancel_id, mut symbol) = (None, None, None);
    for kv in query
        .split('&')
        .chain(form.split('&'))
        .filter(|kv| !kv.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "cancelReplaceMode" => mode = Some(v),
            "cancelOrderId" => cancel_id = Some(v),
            k if k.starts_with("cancel") => {
                return Err(ApiError::new(
                    code::UNREAD_PARAMS,
                    format!("kafkaload renders no '{k}' of a cancel-replace."),
                ));
            }
            _ => {
                if k == "symbol" {
                    symbol = Some(v);
                }
                order.push(kv);
            }
        }
    }
    let missing = |name: &str| {
        ApiError::new(
            code::MISSING_PARAM,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    };
    let allow_failure = match mode.ok_or_else(|| missing("cancelReplaceMode"))? {
        "STOP_ON_FAILURE" => false,
        "ALLOW_FAILURE" => true,
        _ => return Err(ApiError::new(code::BAD_ENUM, "Invalid cancelReplaceMode.")),
    };
    let cancel_id = cancel_id.ok_or_else(|| missing("cancelOrderId"))?;
    let symbol = symbol.ok_or_else(|| missing("symbol"))?;
    Ok(ReplaceParts {
        cancel: format!("symbol={symbol}&orderId={cancel_id}"),
        order: order.join("&"),
        allow_failure,
    })
}

const FORM: &str = loadtest::flow::FORM;

/// `cmd` with the harness's order id. The mapping numbers every order 1,
/// and names one sent without `newClientOrderId` after that id (`x-1`, as
/// the gateway does), which would make every such order of a user a
/// duplicate of the first: unless `params` name the order, its client id
/// follows the real id.
fn with_order_id(mut cmd: Command, id: OrderId, params: &[&str]) -> Command {
    if let CommandBody::NewOrder(o) = &mut cmd.body {
        let named = params
            .iter()
            .flat_map(|p| p.split('&'))
            .any(|kv| kv.starts_with("newClientOrderId=") && kv.len() > "newClientOrderId=".len());
        if !named {
            o.client_order_id = ClientOrderId::new(&format!("x-{}", id.0)).ok();
        }
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

/// A new order's answer: its id and, when the events were read, its
/// status; nothing for other commands.
fn order_answer(order_id: Option<OrderId>, record: Option<&EventRecord>) -> Answer {
    let status = order_id.zip(record).map(|(id, r)| status_of(id, &r.events));
    answer(200, order_id, status)
}

/// A cancel-replace's answer, as the gateway gives it: 200 when both parts
/// succeeded, else its error with `data` (-2022 when nothing happened,
/// -2021 when one part did). `placed` is `None` when the new order was
/// not attempted.
fn replace_answer(
    canceled: Result<Value, ApiError>,
    placed: Option<Result<Value, ApiError>>,
) -> Answer {
    let part = |r: &Result<Value, ApiError>| match r {
        Ok(v) => ("SUCCESS", v.clone()),
        Err(e) => ("FAILURE", json!({"code": e.code, "msg": e.msg})),
    };
    let (cancel_result, cancel_response) = part(&canceled);
    let (new_result, new_response) = match &placed {
        Some(p) => part(p),
        None => ("NOT_ATTEMPTED", Value::Null),
    };
    let parts = json!({
        "cancelResult": cancel_result,
        "newOrderResult": new_result,
        "cancelResponse": cancel_response,
        "newOrderResponse": new_response,
    });
    let placed_ok = placed.as_ref().is_some_and(Result::is_ok);
    let (status, body) = match (canceled.is_ok(), placed_ok) {
        (true, true) => (200, parts),
        (false, false) => (
            400,
            json!({"code": -2022, "msg": "Order cancel-replace failed.", "data": parts}),
        ),
        _ => (
            409,
            json!({"code": -2021, "msg": "Order cancel-replace partially failed.", "data": parts}),
        ),
    };
    Answer {
        status,
        body: json_body(&body),
    }
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
            path: "/api/v3/order",
            query: query.into(),
            body: Bytes::from(body.to_string()),
            follow: Follow::Nothing,
        }
    }

    fn one(r: Result<Rendered, ApiError>) -> Command {
        match r.expect("valid") {
            Rendered::One(cmd) => *cmd,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_become_the_gateways_commands() {
        let limit = request(
            Kind::Limit,
            Method::Post,
            "",
            "symbol=BTCEUR&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.5&price=30000.25&newOrderRespType=RESULT",
        );
        let cmd = one(commands_of(&limit, &[btc()], &signer(), || OrderId(77)));
        assert_eq!(cmd.user, UserId(FIRST_USER + 3));
        let CommandBody::NewOrder(o) = cmd.body else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.order_id, OrderId(77));
        // Made up from the real id, as the gateway makes it: not the
        // mapping's `x-1` for every order.
        assert_eq!(o.client_order_id, ClientOrderId::new("x-77").ok());
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
            "symbol=BTCEUR&side=BUY&type=MARKET&quantity=0.001&newOrderRespType=ACK",
        );
        let body = one(commands_of(&market, &[btc()], &signer(), || OrderId(78))).body;
        let CommandBody::NewOrder(o) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (o.order_type, o.time_in_force, o.side),
            (OrderType::Market, TimeInForce::Ioc, Side::Buy)
        );

        let maker = request(
            Kind::PostOnly,
            Method::Post,
            "",
            "symbol=BTCEUR&side=BUY&type=LIMIT_MAKER&quantity=0.001&price=29000.00&newOrderRespType=RESULT",
        );
        let body = one(commands_of(&maker, &[btc()], &signer(), || OrderId(79))).body;
        let CommandBody::NewOrder(o) = body else {
            panic!("{body:?}")
        };
        assert!(o.post_only, "{o:?}");
        // A client's own id is kept.
        let named = request(
            Kind::Limit,
            Method::Post,
            "",
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=29000.00&newClientOrderId=x-1",
        );
        let body = one(commands_of(&named, &[btc()], &signer(), || OrderId(80))).body;
        let CommandBody::NewOrder(o) = body else {
            panic!("{body:?}")
        };
        assert_eq!(o.client_order_id, ClientOrderId::new("x-1").ok());
    }

    #[test]
    fn cancels_and_amends_become_the_gateways_commands() {
        let cancel = request(Kind::Cancel, Method::Delete, "symbol=BTCEUR&orderId=42", "");
        let body = one(commands_of(&cancel, &[btc()], &signer(), || OrderId(0))).body;
        assert_eq!(
            body,
            CommandBody::Cancel {
                target: OrderRef::Id(OrderId(42))
            }
        );
        // Binance's cancel reads no newOrderRespType.
        let old_cancel = request(
            Kind::Cancel,
            Method::Delete,
            "symbol=BTCEUR&orderId=42&newOrderRespType=RESULT",
            "",
        );
        let e = commands_of(&old_cancel, &[btc()], &signer(), || OrderId(0)).expect_err("-1104");
        assert_eq!(e.code, code::UNREAD_PARAMS);

        let amend = request(
            Kind::Amend,
            Method::Put,
            "",
            "symbol=BTCEUR&orderId=42&newQty=0.25",
        );
        let body = one(commands_of(&amend, &[btc()], &signer(), || OrderId(0))).body;
        assert_eq!(
            body,
            CommandBody::Amend(Amend {
                target: OrderRef::Id(OrderId(42)),
                new_qty: Some(Qty(25_000_000)),
                new_price: None,
                new_stop_price: None,
            })
        );
    }

    #[test]
    fn refusals_are_the_gateways() {
        let bad = request(Kind::Limit, Method::Post, "", "side=BUY");
        assert!(commands_of(&bad, &[btc()], &signer(), || OrderId(1)).is_err());
        // The old names are gone: BTC-EUR is not a REST symbol.
        let old = request(
            Kind::Limit,
            Method::Post,
            "",
            "symbol=BTC-EUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=30000.25",
        );
        let e = commands_of(&old, &[btc()], &signer(), || OrderId(1)).expect_err("-1121");
        assert_eq!(e.code, code::BAD_SYMBOL);

        // The gateway's mapping, not a lenient one: a side that is not BUY
        // is refused with the gateway's code, not sent as a SELL.
        let hold = request(
            Kind::Limit,
            Method::Post,
            "",
            "symbol=BTCEUR&side=HOLD&type=LIMIT&timeInForce=GTC&quantity=0.5&price=30000.25",
        );
        let e = commands_of(&hold, &[btc()], &signer(), || OrderId(1)).expect_err("bad side");
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
            "symbol=BTCEUR&orderId=42&newQty=0.25&colour=red",
        );
        assert!(commands_of(&amend, &[btc()], &signer(), || OrderId(0)).is_err());
    }

    #[test]
    fn a_replace_is_its_cancel_and_its_new_order() {
        let replace = request(
            Kind::Replace,
            Method::Post,
            "",
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=29999.00\
             &newOrderRespType=RESULT&cancelReplaceMode=STOP_ON_FAILURE&cancelOrderId=42",
        );
        let Rendered::Replace {
            cancel,
            order,
            allow_failure,
        } = commands_of(&replace, &[btc()], &signer(), || OrderId(80)).expect("valid")
        else {
            panic!("two commands")
        };
        assert!(!allow_failure);
        assert_eq!(cancel.user, UserId(FIRST_USER + 3));
        assert_eq!(
            cancel.body,
            CommandBody::Cancel {
                target: OrderRef::Id(OrderId(42))
            }
        );
        let CommandBody::NewOrder(o) = order.body else {
            panic!("{order:?}")
        };
        assert_eq!(o.order_id, OrderId(80));
        assert_eq!(
            o.order_type,
            OrderType::Limit {
                price: Price(2_999_900)
            }
        );
        let parts = |q: &str| split_replace("", q).map_err(|e| e.code);
        assert_eq!(
            parts("symbol=BTCEUR&side=BUY&cancelReplaceMode=ALLOW_FAILURE&cancelOrderId=7"),
            Ok(ReplaceParts {
                cancel: "symbol=BTCEUR&orderId=7".into(),
                order: "symbol=BTCEUR&side=BUY".into(),
                allow_failure: true,
            })
        );
        assert_eq!(
            parts("symbol=BTCEUR&cancelOrderId=7"),
            Err(code::MISSING_PARAM)
        );
        assert_eq!(
            parts("symbol=BTCEUR&cancelReplaceMode=NEVER&cancelOrderId=7"),
            Err(code::BAD_ENUM)
        );
        assert_eq!(
            parts("symbol=BTCEUR&cancelReplaceMode=STOP_ON_FAILURE"),
            Err(code::MISSING_PARAM)
        );
        // An invalid new order is refused before anything is canceled.
        let bad = request(
            Kind::Replace,
            Method::Post,
            "",
            "symbol=BTCEUR&side=BUY&type=LIMIT&quantity=0.5&price=29999.00\
             &cancelReplaceMode=STOP_ON_FAILURE&cancelOrderId=42",
        );
        let e = commands_of(&bad, &[btc()], &signer(), || OrderId(81)).expect_err("no tif");
        assert_eq!(e.code, code::MISSING_PARAM);
    }

    #[test]
    fn replace_answers_have_the_gateways_shapes() {
        let unknown = ApiError::cancel_rejected(RejectCode::UnknownOrder);
        let a = replace_answer(Err(unknown.clone()), None);
        assert_eq!(a.status, 400);
        let v: serde_json::Value = serde_json::from_slice(&a.body).expect("JSON");
        assert_eq!(v["code"], -2022);
        assert_eq!(v["data"]["newOrderResult"], "NOT_ATTEMPTED");
        assert_eq!(v["data"]["cancelResponse"]["code"], -2011);
        let placed = serde_json::json!({"orderId": 5, "status": "NEW"});
        let a = replace_answer(Ok(serde_json::json!({})), Some(Ok(placed.clone())));
        assert_eq!(a.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&a.body).expect("JSON");
        assert_eq!(v["newOrderResponse"], placed);
        let a = replace_answer(Ok(serde_json::json!({})), Some(Err(unknown)));
        assert_eq!(a.status, 409);
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
