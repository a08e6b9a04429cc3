//! The gateway's WebSocket API (`/ws-api/v3`) as a target: the same order
//! flow as the `http` target, sent as `order.place`, `order.cancel`,
//! `order.cancelReplace` and `order.amend.keepPriority` frames.
//!
//! Each user has `connections / users` connections (at least one), each
//! logged on once with `session.logon`, so a request carries its
//! `timestamp` but no signature: the cost a trading client of the WebSocket
//! API pays. Requests on a connection are pipelined: up to `in_flight` wait
//! for their answers at once (the gateway refuses more than its
//! `ws_api_max_in_flight`, 64 by default); more wait their turn in the
//! harness, and that wait counts as latency. Answers are matched to
//! requests by `id`, in whatever order they come.
//!
//! A connection is one task that owns its socket, its queue and its
//! requests in flight: the dispatcher hands it a batch of requests at once
//! ([`Batched`]), it sends all it has room for with one flush, and it
//! reports the answers it has read with one call. So a request costs no
//! task, timer, channel or lock of its own; requests past their deadline
//! are found by a sweep every [`SWEEP`]. A connection that fails is not
//! reopened: its requests end as `closed`, which the report counts.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::flow::{Method, Request};
use crate::target::{
    Answer, Batched, BoxFuture, Completion, Finished, SubmitError, Target, TargetError, Ticket,
};
use clientkit::{Credentials, now_ms, sign};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How often a connection looks for requests past their deadline.
const SWEEP: Duration = Duration::from_millis(20);

/// tungstenite zero-fills its read buffer up to this size before every
/// read: its default, 128 KiB, made that memset 7% of the harness's CPU.
/// Answers are a few hundred bytes.
const READ_BUFFER: usize = 8 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// Connections each user gets out of `connections`: at least one.
pub fn per_user(connections: usize, users: usize) -> usize {
    (connections / users.max(1)).max(1)
}

/// A request and whom to tell of its end.
type Item = (Ticket, Completion);

/// The WebSocket API target.
pub struct WsTarget {
    url: String,
    users: Vec<Credentials>,
    per_user: usize,
    in_flight: usize,
    /// Each connection's queue, filled by [`Batched::send_all`].
    queues: OnceLock<Vec<mpsc::UnboundedSender<Vec<Item>>>>,
    /// Round robin over a user's connections.
    turn: AtomicUsize,
}

impl std::fmt::Debug for WsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTarget")
            .field("url", &self.url)
            .field("users", &self.users.len())
            .field("per_user", &self.per_user)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

/// An answer frame: the REST twin's status and its body (`result` or
/// `error`), borrowed from the frame.
#[derive(Deserialize)]
struct Envelope<'a> {
    id: u64,
    status: u16,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

impl WsTarget {
    /// A target at `addr` (checked loopback): `connections` connections
    /// shared out among `users`, each with at most `in_flight` requests
    /// waiting for answers.
    pub fn new(
        addr: SocketAddr,
        users: &[Credentials],
        connections: usize,
        in_flight: usize,
    ) -> Result<WsTarget, TargetError> {
        if users.is_empty() {
            return Err(TargetError::Client("no users".into()));
        }
        Ok(WsTarget {
            url: format!("ws://{addr}/ws-api/v3?returnRateLimits=false"),
            users: users.to_vec(),
            per_user: per_user(connections, users.len()),
            in_flight: in_flight.max(1),
            queues: OnceLock::new(),
            turn: AtomicUsize::new(0),
        })
    }

    async fn open_all(&self) -> Result<(), TargetError> {
        let mut queues = Vec::with_capacity(self.users.len() * self.per_user);
        for user in &self.users {
            for _ in 0..self.per_user {
                let socket = self.open(user).await?;
                let (queue, queued) = mpsc::unbounded_channel();
                tokio::spawn(Connection::new(socket, self.in_flight).run(queued));
                queues.push(queue);
            }
        }
        // A second warm-up keeps the first connections.
        let _ = self.queues.set(queues);
        Ok(())
    }

    /// Connects and logs on as `user`.
    async fn open(&self, user: &Credentials) -> Result<Socket, TargetError> {
        let failed = |why: String| TargetError::Connect {
            addr: self.url.clone(),
            why,
        };
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config()), true)
                .await
                .map_err(|e| failed(e.to_string()))?;
        socket
            .send(Message::text(logon_frame(user, now_ms())))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let answer = loop {
            match socket.next().await {
                Some(Ok(Message::Text(t))) => break t,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(failed(e.to_string())),
                None => return Err(failed("closed during session.logon".into())),
            }
        };
        match serde_json::from_str::<Envelope<'_>>(&answer) {
            Ok(e) if e.status == 200 => Ok(socket),
            _ => Err(failed(format!("session.logon refused: {answer}"))),
        }
    }

    /// The connection a request of `user` goes on.
    fn connection_of(&self, user: usize) -> usize {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed) % self.per_user;
        user * self.per_user + turn
    }
}

impl Batched for WsTarget {
    fn send_all(&self, tickets: Vec<Ticket>, done: &Completion) {
        let Some(queues) = self.queues.get() else {
            let now = Instant::now();
            done(fail_all(tickets, "not_open", now));
            return;
        };
        let mut per_conn: Vec<Vec<Item>> = (0..queues.len()).map(|_| Vec::new()).collect();
        let mut unknown = Vec::new();
        for t in tickets {
            match per_conn.get_mut(self.connection_of(t.req.user)) {
                Some(q) => q.push((t, done.clone())),
                None => unknown.push(t),
            }
        }
        let now = Instant::now();
        if !unknown.is_empty() {
            done(fail_all(unknown, "no_such_user", now));
        }
        for (queue, items) in queues.iter().zip(per_conn) {
            if items.is_empty() {
                continue;
            }
            if let Err(returned) = queue.send(items) {
                for (t, done) in returned.0 {
                    done(vec![(t, Err(SubmitError::Transport("closed")), now)]);
                }
            }
        }
    }
}

impl Target for WsTarget {
    /// One request on its own; the run sends through [`Batched`].
    fn submit<'a>(
        &'a self,
        req: &'a Request,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Answer, SubmitError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Mutex::new(Some(tx));
        let done: Completion = Arc::new(move |mut finished: Vec<Finished>| {
            if let (Some((_, r, _)), Ok(Some(tx))) =
                (finished.pop(), tx.lock().map(|mut t| t.take()))
            {
                let _ = tx.send(r);
            }
        });
        let ticket = Ticket {
            req: req.clone(),
            phase: 0,
            planned: Instant::now(),
            deadline,
        };
        self.send_all(vec![ticket], &done);
        Box::pin(async move { rx.await.unwrap_or(Err(SubmitError::Transport("closed"))) })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(self.open_all())
    }

    fn batched(&self) -> Option<&dyn Batched> {
        Some(self)
    }
}

fn fail_all(tickets: Vec<Ticket>, why: &'static str, now: Instant) -> Vec<Finished> {
    tickets
        .into_iter()
        .map(|t| (t, Err(SubmitError::Transport(why)), now))
        .collect()
}

/// One logged-on connection: its socket, the requests waiting to be sent,
/// and those waiting for answers.
struct Connection {
    socket: Socket,
    in_flight: usize,
    waiting: VecDeque<Item>,
    sent: HashMap<u64, Item>,
    next_id: u64,
    /// Ended and not yet reported, with when.
    ended: Vec<(Item, Result<Answer, SubmitError>, Instant)>,
}

impl Connection {
    fn new(socket: Socket, in_flight: usize) -> Connection {
        Connection {
            socket,
            in_flight,
            waiting: VecDeque::new(),
            sent: HashMap::with_capacity(in_flight),
            next_id: 1,
            ended: Vec::new(),
        }
    }

    async fn run(mut self, mut queued: mpsc::UnboundedReceiver<Vec<Item>>) {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                batch = queued.recv() => match batch {
                    Some(items) => {
                        self.waiting.extend(items);
                        while let Ok(more) = queued.try_recv() {
                            self.waiting.extend(more);
                        }
                    }
                    None => break "closed",
                },
                msg = self.socket.next() => {
                    if !self.read(msg, Instant::now()) {
                        break "closed";
                    }
                }
                // Only while something waits: idle connections sleep.
                _ = sweep.tick(), if !(self.sent.is_empty() && self.waiting.is_empty()) => {
                    self.expire(Instant::now());
                }
            }
            if self.send_waiting().await.is_err() {
                break "send";
            }
            self.report();
        };
        let now = Instant::now();
        let left = self
            .waiting
            .drain(..)
            .chain(self.sent.drain().map(|(_, i)| i));
        let failed: Vec<_> = left
            .map(|i| (i, Err(SubmitError::Transport(why)), now))
            .collect();
        self.ended.extend(failed);
        self.report();
    }

    /// Takes an answer and every other one already read; false once the
    /// connection is gone.
    fn read(
        &mut self,
        first: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        now: Instant,
    ) -> bool {
        let mut next = first;
        loop {
            match next {
                Some(Ok(Message::Text(text))) => self.answered(&text, now),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            }
            match self.socket.next().now_or_never() {
                Some(msg) => next = msg,
                None => return true,
            }
        }
    }

    fn answered(&mut self, text: &str, now: Instant) {
        let Ok(e) = serde_json::from_str::<Envelope<'_>>(text) else {
            return;
        };
        let Some(item) = self.sent.remove(&e.id) else {
            return;
        };
        let body = e.result.or(e.error).map_or("", RawValue::get);
        let answer = Answer {
            status: e.status,
            body: Bytes::copy_from_slice(body.as_bytes()),
        };
        self.ended.push((item, Ok(answer), now));
    }

    /// Sends what there is room for, with one flush.
    async fn send_waiting(&mut self) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let mut fed = false;
        let now = Instant::now();
        while self.sent.len() < self.in_flight {
            let Some(item) = self.waiting.pop_front() else {
                break;
            };
            if item.0.deadline <= now {
                self.ended.push((item, Err(SubmitError::Timeout), now));
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            // Stamped when actually sent, so the timestamp is fresh.
            let Some(frame) = request_frame(id, &item.0.req, now_ms()) else {
                self.ended
                    .push((item, Err(SubmitError::Transport("method")), now));
                continue;
            };
            self.socket.feed(Message::text(frame)).await?;
            self.sent.insert(id, item);
            fed = true;
        }
        if fed {
            self.socket.flush().await?;
        }
        Ok(())
    }

    /// Ends the requests past their deadline, sent or not.
    fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .sent
            .iter()
            .filter(|(_, i)| i.0.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(item) = self.sent.remove(&id) {
                self.ended.push((item, Err(SubmitError::Timeout), now));
            }
        }
        while self.waiting.front().is_some_and(|i| i.0.deadline <= now) {
            if let Some(item) = self.waiting.pop_front() {
                self.ended.push((item, Err(SubmitError::Timeout), now));
            }
        }
    }

    /// Hands the ended requests to their completions: one call per run of
    /// requests with the same one.
    fn report(&mut self) {
        let mut ended = self.ended.drain(..).peekable();
        while let Some(((ticket, done), r, at)) = ended.next() {
            let mut group = vec![(ticket, r, at)];
            while let Some(((t, _), r, at)) = ended.next_if(|((_, d), _, _)| Arc::ptr_eq(d, &done))
            {
                group.push((t, r, at));
            }
            done(group);
        }
    }
}

/// `session.logon`, signed as every WebSocket API request is: the HMAC of
/// its params sorted by name.
fn logon_frame(user: &Credentials, timestamp: u64) -> String {
    let payload = format!("apiKey={}&timestamp={timestamp}", user.api_key);
    let signature = sign(&user.secret, payload.as_bytes());
    format!(
        r#"{{"id":0,"method":"session.logon","params":{{"apiKey":{},"timestamp":{timestamp},"signature":"{signature}"}}}}"#,
        json_string(&user.api_key)
    )
}

/// The WebSocket API method of a request of the flow.
fn method(req: &Request) -> Option<&'static str> {
    Some(match (req.method, req.path) {
        (Method::Post, "/api/v3/order") => "order.place",
        (Method::Delete, "/api/v3/order") => "order.cancel",
        (Method::Post, "/api/v3/order/cancelReplace") => "order.cancelReplace",
        (Method::Put, "/api/v3/order/amend/keepPriority") => "order.amend.keepPriority",
        _ => return None,
    })
}

/// The request's frame: its query and form body as params (strings, as
/// REST would read them), and the timestamp.
fn request_frame(id: u64, req: &Request, timestamp: u64) -> Option<String> {
    let method = method(req)?;
    let mut out = String::with_capacity(96 + req.query.len() + req.body.len());
    let _ = write!(out, r#"{{"id":{id},"method":"{method}","params":{{"#);
    let body = std::str::from_utf8(&req.body).ok()?;
    for pair in req.query.split('&').chain(body.split('&')) {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&json_string(value));
        out.push(',');
    }
    let _ = write!(out, r#""timestamp":{timestamp}}}}}"#);
    Some(out)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Follow, Kind};

    fn req(method: Method, path: &'static str, query: &str, body: &str) -> Request {
        Request {
            kind: Kind::Limit,
            user: 0,
            pair: 0,
            method,
            path,
            query: query.into(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            follow: Follow::Nothing,
        }
    }

    #[test]
    fn a_request_becomes_its_methods_frame_with_every_param() {
        let r = req(
            Method::Post,
            "/api/v3/order",
            "",
            "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=30000.5",
        );
        let frame = request_frame(7, &r, 1_700_000_000_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["method"], "order.place");
        assert_eq!(v["params"]["price"], "30000.5");
        assert_eq!(v["params"]["timeInForce"], "GTC");
        assert_eq!(v["params"]["timestamp"], 1_700_000_000_000u64);
        assert_eq!(v["params"].as_object().unwrap().len(), 7);

        let cancel = req(
            Method::Delete,
            "/api/v3/order",
            "symbol=BTCEUR&orderId=12",
            "",
        );
        let v: serde_json::Value =
            serde_json::from_str(&request_frame(8, &cancel, 1).unwrap()).unwrap();
        assert_eq!(v["method"], "order.cancel");
        assert_eq!(v["params"]["orderId"], "12");
    }

    #[test]
    fn every_request_of_the_flow_has_a_method_and_others_none() {
        for (m, path, name) in [
            (
                Method::Post,
                "/api/v3/order/cancelReplace",
                "order.cancelReplace",
            ),
            (
                Method::Put,
                "/api/v3/order/amend/keepPriority",
                "order.amend.keepPriority",
            ),
        ] {
            assert_eq!(method(&req(m, path, "", "")), Some(name));
        }
        assert_eq!(method(&req(Method::Put, "/api/v3/order", "", "")), None);
    }

    #[test]
    fn the_logon_is_signed_over_its_sorted_params() {
        let user = Credentials {
            api_key: "k\"1".into(),
            secret: "s".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&logon_frame(&user, 5)).unwrap();
        assert_eq!(v["method"], "session.logon");
        assert_eq!(v["params"]["apiKey"], "k\"1");
        assert_eq!(
            v["params"]["signature"],
            sign("s", b"apiKey=k\"1&timestamp=5").as_str()
        );
    }

    #[test]
    fn an_answer_frame_gives_the_rest_body() {
        let ok = r#"{"id":3,"status":200,"result":{"orderId":9}}"#;
        let e: Envelope<'_> = serde_json::from_str(ok).unwrap();
        assert_eq!((e.id, e.status), (3, 200));
        assert_eq!(e.result.map(RawValue::get), Some(r#"{"orderId":9}"#));
        let bad = r#"{"id":4,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#;
        let e: Envelope<'_> = serde_json::from_str(bad).unwrap();
        assert_eq!(
            e.error.map(RawValue::get),
            Some(r#"{"code":-2011,"msg":"Unknown order sent."}"#)
        );
    }
}
