//! Binance's WebSocket API at `/ws-api/v3`: requests as JSON text frames
//! (`{"id","method","params"}`), answers as `{"id","status","result" |
//! "error","rateLimits"}`, and user data events as
//! `{"subscriptionId":N,"event":{...}}`.
//!
//! Every method that has a REST twin (`order.place` is `POST
//! /api/v3/order`, see [`methods::route`]) is served by the gateway's own
//! router, in process: the params become the query string, the request
//! carries the connection's address (so its weight is charged to the same
//! IP as REST's), and the REST answer's status, body and usage headers
//! become the envelope. So the WebSocket API cannot drift from REST: the
//! same parsing, validation, admission, weights and answers serve both.
//!
//! Signatures differ from REST's: a WebSocket API request signs its params
//! sorted by name (`signature` excluded, `apiKey` included), which is not
//! the query string the REST handler sees. The signature is checked here,
//! with the same key cache, and the REST handler is told the caller through
//! a task-local ([`pre_authenticated`]) that only this module's in-process
//! call sets: no HTTP request can carry it.
//!
//! Architecture Invariant: a request read from a connection is answered on
//! its own task; answers leave in the order they are ready, so a slow pair
//! never holds up another pair's answer. At most `ws_api_max_in_flight`
//! requests per connection are in flight; one more is refused at once.

mod envelope;
mod methods;
mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::SplitSink;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, broadcast, mpsc};

use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::now_ms;
use crate::ws::{close_for, send_within, upgrade_refused};
use crate::{Gateway, StreamMessage};

use session::Session;

/// Binance's weight of opening a WebSocket API connection.
const CONNECT_WEIGHT: u32 = 2;

/// Requests a connection reads before it yields its worker. A pipelining
/// client has many frames in one socket read, and the runtime's budget
/// counts reads, not frames: a flooding connection held its worker for
/// thousands of requests while the pipeline's stages waited behind it.
/// Overloaded 20 times, 8 per turn applied three times the commands; 1 per
/// turn four times, but at clearly more CPU per request at full load
/// (README, "Performance").
const REQUESTS_PER_TURN: u32 = 8;

tokio::task_local! {
    /// The caller of the WebSocket API request being served in process,
    /// its signature (or its session's logon) already checked.
    static PRE_AUTHENTICATED: Caller;
}

/// The caller of the WebSocket API request this task serves, if it is one.
/// The signed-request path of REST takes it instead of checking a
/// signature of its query string, which the WebSocket API did not sign.
pub(crate) fn pre_authenticated() -> Option<Caller> {
    PRE_AUTHENTICATED.try_with(Clone::clone).ok()
}

/// Binance's WebSocket API.
#[utoipa::path(get, path = "/ws-api/v3", tag = "Service", operation_id = "ws_api_upgrade",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol: requests and answers as JSON text frames (see the README). `?returnRateLimits=false` leaves `rateLimits` out of answers unless a request asks for them."),
        (status = 400, description = "Not a valid WebSocket upgrade request (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 426, description = "The connection cannot be upgraded (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 429, description = "The IP's request weight is spent (a connection costs 2), or too many connection attempts from it in 5 minutes (-1003).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 418, description = "The IP is banned (-1003).", body = crate::rest::openapi::ErrorBody),
        (status = 503, description = "Too many WebSocket connections (-1008).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))))]
pub(crate) async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    extensions: Extensions,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return upgrade_refused(&e),
    };
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), |c| c.0);
    // Requests are charged to the address REST would charge: the client's,
    // as the nearest trusted proxy saw it.
    let ip = crate::rest::weights::client_ip(&headers, peer.ip(), gw.config.forwarded_for_hops);
    let permit = match crate::ws::connection_permit(&gw, ip) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    if let Err(refused) = gw.usage.charge_ip(ip, CONNECT_WEIGHT, now_ms()) {
        return refused.into_response();
    }
    let return_rate_limits = !uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "returnRateLimits=false");
    let conn = Conn {
        app: gw.router(),
        peer: SocketAddr::new(ip, peer.port()),
        return_rate_limits,
        connected_since: now_ms(),
        gw,
    };
    crate::ws::bounded(ws).on_upgrade(move |socket| async move {
        let conn = Arc::new(conn);
        conn.gw.metrics.ws_clients.inc();
        let reason = run(&conn, socket).await;
        conn.gw.metrics.ws_clients.dec();
        conn.gw
            .metrics
            .ws_disconnects
            .with_label_values(&[reason])
            .inc();
        drop(permit);
    })
}

/// What every request of one connection shares.
struct Conn {
    gw: Arc<Gateway>,
    /// The gateway's routes, which serve the methods that have a REST twin.
    app: Router,
    /// The client's address (after trusted proxies), port of the peer.
    peer: SocketAddr,
    /// Whether answers carry `rateLimits` unless a request says otherwise.
    return_rate_limits: bool,
    /// Unix milliseconds, for `session.status`.
    connected_since: u64,
}

/// The connection's loop's view of its socket and timers.
struct Io {
    tx: SplitSink<WebSocket, Message>,
    send_timeout: Duration,
}

impl Io {
    async fn send(&mut self, text: String) -> Result<(), &'static str> {
        send_within(&mut self.tx, Message::text(text), self.send_timeout).await
    }

    /// Sends a close frame, as far as the client still reads.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = crate::ws::close_frame(code, Utf8Bytes::from_static(reason));
        let _ = send_within(&mut self.tx, frame, self.send_timeout).await;
    }
}

/// The next message of the market's broadcast, or never while the
/// connection holds no user data subscription.
async fn next_event(
    stream: &mut Option<broadcast::Receiver<StreamMessage>>,
) -> Result<StreamMessage, RecvError> {
    match stream {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection until it ends; returns why it ended.
async fn run(conn: &Arc<Conn>, socket: WebSocket) -> &'static str {
    let gw = &conn.gw;
    let (tx, mut rx) = socket.split();
    let mut io = Io {
        tx,
        send_timeout: Duration::from_millis(gw.config.ws_send_timeout_ms),
    };
    let max_in_flight = gw.config.ws_api_max_in_flight;
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let (answers_tx, mut answers) = mpsc::channel::<String>(max_in_flight);
    let mut session = Session::default();
    let mut stream: Option<broadcast::Receiver<StreamMessage>> = None;
    let mut shutdown = gw.shutdown.clone();
    let mut ping = tokio::time::interval(Duration::from_secs(gw.config.ws_ping_secs));
    ping.tick().await;
    let mut missed_pongs = 0u32;
    let mut read_in_turn = 0;
    let mut key_check = tokio::time::interval(crate::auth::KEY_REFRESH);
    // Idle while no key is held: no burst of missed checks after.
    key_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(answer) = answers.recv() => {
                if let Err(reason) = io.send(answer).await {
                    return reason;
                }
            }
            m = next_event(&mut stream) => match m {
                Ok(StreamMessage::User { user, text }) => {
                    for frame in session.events_for(user, &text) {
                        if let Err(reason) = io.send(frame).await {
                            return reason;
                        }
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    io.close(1008, "slow consumer").await;
                    return "slow_consumer";
                }
                Err(RecvError::Closed) => {
                    io.close(1001, "server stopping").await;
                    return "server_stopping";
                }
            },
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let request = Incoming { conn, in_flight: &in_flight, answers: &answers_tx };
                    if let Some(answer) = request.handle(&mut session, t.as_str()).await
                        && let Err(reason) = io.send(answer).await
                    {
                        return reason;
                    }
                    session.follow(gw, &mut stream);
                    read_in_turn += 1;
                    if read_in_turn == REQUESTS_PER_TURN {
                        read_in_turn = 0;
                        tokio::task::yield_now().await;
                    }
                }
                Some(Ok(Message::Pong(_))) => missed_pongs = 0,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Binary(_))) => {
                    io.close(1003, "text messages only").await;
                    return "bad_message";
                }
                Some(Ok(Message::Close(_))) | None => return "client_closed",
                Some(Err(e)) => {
                    if let Some((code, reason)) = close_for(e) {
                        let frame = crate::ws::close_frame(code, reason);
                        let _ = send_within(&mut io.tx, frame, io.send_timeout).await;
                    }
                    return "protocol_error";
                }
            },
            _ = key_check.tick(), if session.holds_keys() => {
                // A revoked key ends its logon and its subscriptions, as it
                // ends its REST access.
                for frame in session.drop_revoked(gw).await {
                    if let Err(reason) = io.send(frame).await {
                        return reason;
                    }
                }
                session.follow(gw, &mut stream);
            }
            _ = ping.tick() => {
                missed_pongs += 1;
                if missed_pongs > 3 {
                    io.close(1011, "no pong").await;
                    return "no_pong";
                }
                if let Err(reason) = send_within(&mut io.tx, Message::Ping(Default::default()), io.send_timeout).await {
                    return reason;
                }
            }
            _ = shutdown.changed() => {
                io.close(1001, "server stopping").await;
                return "server_stopping";
            }
        }
    }
}

/// One request read from a connection.
struct Incoming<'a> {
    conn: &'a Arc<Conn>,
    in_flight: &'a Arc<Semaphore>,
    answers: &'a mpsc::Sender<String>,
}

impl Incoming<'_> {
    /// Answers at once (session methods, refusals), or hands the request
    /// to its own task, which sends the answer when it is ready.
    async fn handle(&self, session: &mut Session, text: &str) -> Option<String> {
        let req = match methods::Request::parse(text, self.conn.return_rate_limits) {
            Ok(req) => req,
            Err((id, e)) => return Some(envelope::error(&id, &e, &[])),
        };
        if let Some(answer) = session.handle(self.conn, &req).await {
            return Some(answer);
        }
        let Some(route) = methods::route(&req.method) else {
            let e = ApiError::new(
                code::UNSUPPORTED_OPERATION,
                format!("Unknown method {:?}.", req.method),
            )
            .with_status(axum::http::StatusCode::BAD_REQUEST);
            return Some(envelope::error(&req.id, &e, &[]));
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            let e = ApiError::new(
                code::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests in flight on this connection (at most {}); wait for their answers.",
                    self.conn.gw.config.ws_api_max_in_flight
                ),
            );
            return Some(envelope::error(&req.id, &e, &[]));
        };
        let (conn, answers) = (self.conn.clone(), self.answers.clone());
        let logon = session.logon();
        tokio::spawn(async move {
            let answer = methods::serve(&conn, route, &req, logon).await;
            let _ = answers.send(answer).await;
            drop(permit);
        });
        None
    }
}
