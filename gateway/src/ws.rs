//! The WebSocket endpoint `/ws`.
//!
//! Client messages (JSON text):
//! - `{"method": "SUBSCRIBE", "params": ["BTC-EUR@depth", "BTC-EUR@trade"], "id": 1}`
//! - `{"method": "UNSUBSCRIBE", "params": [...], "id": 2}`
//! - `{"method": "LOGIN", "params": {"apiKey": "...", "timestamp": 1700000000000,
//!   "signature": "..."}, "id": 3}`: the signature signs
//!   `apiKey=KEY&timestamp=MS`. After it, the user's execution reports
//!   arrive, and with accounts enabled `outboundAccountPosition` after every
//!   change of the user's balances and `balanceUpdate` for a deposit or
//!   withdrawal.
//!
//! Answers: `{"result": null, "id": 1}` or `{"error": {"code": ..., "msg": ...}, "id": 1}`.
//! A client that falls more than `ws_buffer` messages behind is closed with
//! code 1008 and the reason `slow consumer`; one that stops reading, so that
//! a message cannot be handed to its socket within `ws_send_timeout_ms`, is
//! dropped (counted with the same reason). The engine never waits for it.
//!
//! Limits: a client frame or message over [`MAX_CLIENT_MESSAGE`] bytes is
//! refused as the header announces it (nothing of it is buffered) and the
//! connection is closed with 1009. Invalid UTF-8 closes it with 1007, any
//! other protocol error (an unmasked frame, a reserved opcode or bit, a
//! stray continuation) with 1002, each with a reason. At most
//! `max_ws_connections` connections are open per process (503 past it), and
//! a connection holds at most `ws_max_streams` streams (-1191 past it).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use proto::{Symbol, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::errors::{ApiError, code};
use crate::{Gateway, StreamMessage, now_ns};

/// Largest client message accepted: the longest useful one, a SUBSCRIBE
/// of every stream, fits with room to spare.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Largest client frame: no larger than a message, so that a frame header
/// announcing more is refused before any of its payload is buffered.
pub const MAX_CLIENT_FRAME: usize = MAX_CLIENT_MESSAGE;
/// The most bytes waiting in one connection's write buffer. A send that
/// would pass it fails and the client is dropped; a stream message (a depth
/// update of the levels one batch changed) is far smaller.
pub const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;
/// The read buffer each connection starts with (tungstenite's default is
/// 128 KiB, zero-filled as it reads: per connection, not per message).
pub(crate) const READ_BUFFER: usize = 8 * 1024;
/// Bytes gathered before a write to the socket. Every send is flushed at
/// once, so this only caps what one write call carries.
pub(crate) const WRITE_BUFFER: usize = 64 * 1024;

/// The WebSocket streams: market data and the user's events.
#[utoipa::path(get, path = "/ws", tag = "Service",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "Not a valid WebSocket upgrade request (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 426, description = "The connection cannot be upgraded (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 503, description = "Too many WebSocket connections (-1008).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))))]
pub(crate) async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return upgrade_refused(&e),
    };
    let Ok(permit) = gw.ws_connections.clone().try_acquire_owned() else {
        gw.metrics
            .ws_disconnects
            .with_label_values(&["too_many_connections"])
            .inc();
        return ApiError::retry(
            code::OVERLOADED,
            "Too many WebSocket connections; try again later.",
            gw.config.retry_after_secs,
        )
        .into_response();
    };
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            session(gw, socket).await;
            drop(permit);
        })
}

/// A request to `/ws` that cannot be upgraded, answered in JSON; a method
/// other than GET (HEAD reaches here too) gets 405 with its `Allow` header.
pub(crate) fn upgrade_refused(e: &WebSocketUpgradeRejection) -> Response {
    if matches!(e, WebSocketUpgradeRejection::MethodNotGet(_)) {
        let mut resp = ApiError::new(code::UNSUPPORTED_OPERATION, e.body_text()).into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    ApiError::new(code::BAD_UPGRADE, e.body_text())
        .with_status(e.status())
        .into_response()
}

/// The close frame a read error deserves (RFC 6455 section 7.4.1), or
/// `None` when the connection is already gone and nothing can be sent.
pub(crate) fn close_for(e: axum::Error) -> Option<(u16, String)> {
    use tungstenite::Error as E;
    use tungstenite::error::CapacityError;
    let inner = e.into_inner();
    // Our `tungstenite` must be the version axum uses, or nothing downcasts
    // and every error becomes 1002: `bad_input`'s frame classes catch that.
    let Some(e) = inner.downcast_ref::<E>() else {
        return Some((1002, truncate(format!("protocol error: {inner}"))));
    };
    match e {
        E::ConnectionClosed | E::AlreadyClosed | E::Io(_) => None,
        E::Capacity(CapacityError::MessageTooLong { .. }) => Some((
            1009,
            format!("message or frame over {MAX_CLIENT_MESSAGE} bytes"),
        )),
        E::Utf8(_) => Some((1007, "invalid UTF-8 in a text message".into())),
        other => Some((1002, truncate(format!("protocol error: {other}")))),
    }
}

/// A close reason fits in a control frame: 125 bytes less the code's two.
fn truncate(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[derive(Deserialize)]
struct ClientMessage {
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    id: Value,
}

#[derive(Default)]
struct Subscriptions {
    depth: HashSet<Symbol>,
    trades: HashSet<Symbol>,
    user: Option<UserId>,
    /// The key the user logged in with: re-checked while the session lasts.
    api_key: Option<String>,
}

impl Subscriptions {
    fn set(&self, depth: bool) -> &HashSet<Symbol> {
        if depth { &self.depth } else { &self.trades }
    }

    fn set_mut(&mut self, depth: bool) -> &mut HashSet<Symbol> {
        if depth {
            &mut self.depth
        } else {
            &mut self.trades
        }
    }

    fn wants(&self, m: &StreamMessage) -> Option<Utf8Bytes> {
        let (ok, text) = match m {
            StreamMessage::Depth { pair, text } => (self.depth.contains(pair), text),
            StreamMessage::Trade { pair, text } => (self.trades.contains(pair), text),
            StreamMessage::User { user, text } => (self.user == Some(*user), text),
        };
        ok.then(|| Utf8Bytes::from(text.as_ref()))
    }
}

fn error(id: &Value, e: ApiError) -> Message {
    Message::text(json!({"error": {"code": e.code, "msg": e.msg}, "id": id}).to_string())
}

async fn handle(gw: &Gateway, subs: &mut Subscriptions, text: &str) -> Message {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return error(
                &Value::Null,
                ApiError::new(code::MALFORMED_JSON, e.to_string()),
            );
        }
    };
    let id = msg.id.clone();
    let result = match msg.method.as_str() {
        "SUBSCRIBE" | "UNSUBSCRIBE" => subscribe(gw, subs, &msg),
        "LOGIN" => login(gw, subs, &msg.params).await,
        other => Err(ApiError::new(
            code::BAD_ENUM,
            format!("Unknown method {other:?}."),
        )),
    };
    match result {
        Ok(()) => Message::text(json!({"result": null, "id": id}).to_string()),
        Err(e) => error(&id, e),
    }
}

fn subscribe(gw: &Gateway, subs: &mut Subscriptions, msg: &ClientMessage) -> Result<(), ApiError> {
    let add = msg.method == "SUBSCRIBE";
    let max = gw.config.ws_max_streams;
    let streams = msg
        .params
        .as_array()
        .ok_or_else(|| ApiError::new(code::MISSING_PARAM, "params must be a list of streams."))?;
    let too_many = || {
        ApiError::new(
            code::TOO_MANY_SUBSCRIPTIONS,
            format!("At most {max} streams per connection."),
        )
    };
    // Refused before any name is looked at: the work stays bounded.
    if streams.len() > max {
        return Err(too_many());
    }
    let parsed = streams
        .iter()
        .map(|s| stream_name(gw, s.as_str().unwrap_or("")))
        .collect::<Result<Vec<_>, _>>()?;
    if add {
        let new = parsed
            .iter()
            .filter(|(pair, depth)| !subs.set(*depth).contains(pair))
            .collect::<HashSet<_>>()
            .len();
        if subs.depth.len() + subs.trades.len() + new > max {
            return Err(too_many());
        }
    }
    for (pair, depth) in parsed {
        let set = subs.set_mut(depth);
        if add {
            set.insert(pair);
        } else {
            set.remove(&pair);
        }
    }
    Ok(())
}

/// `PAIR@depth` or `PAIR@trade`: the pair, and whether it is depth.
fn stream_name(gw: &Gateway, name: &str) -> Result<(Symbol, bool), ApiError> {
    let (pair, kind) = name.split_once('@').ok_or_else(|| {
        ApiError::new(
            code::ILLEGAL_CHARS,
            format!("Bad stream {name:?}: PAIR@depth or PAIR@trade."),
        )
    })?;
    let pair = Symbol::new(pair)
        .ok()
        .filter(|p| gw.pairs.contains_key(p))
        .ok_or_else(|| ApiError::new(code::BAD_SYMBOL, "Invalid symbol."))?;
    match kind {
        "depth" => Ok((pair, true)),
        "trade" => Ok((pair, false)),
        _ => Err(ApiError::new(
            code::BAD_ENUM,
            format!("Unknown stream {kind:?}: depth or trade."),
        )),
    }
}

async fn login(gw: &Gateway, subs: &mut Subscriptions, params: &Value) -> Result<(), ApiError> {
    let key = params["apiKey"].as_str();
    let ts = params["timestamp"]
        .as_u64()
        .ok_or_else(|| ApiError::new(code::MISSING_PARAM, "timestamp (ms) is required."))?;
    let sig = params["signature"].as_str().unwrap_or("");
    let query = format!(
        "apiKey={}&timestamp={ts}&signature={sig}",
        key.unwrap_or("")
    );
    let caller = gw
        .keys
        .verify(key, &query, b"", now_ns() / 1_000_000)
        .await?;
    gw.demo.fund(gw.log.accounts(), caller.user).await;
    subs.user = Some(caller.user);
    subs.api_key = Some(caller.api_key);
    Ok(())
}

async fn session(gw: Arc<Gateway>, socket: WebSocket) {
    gw.metrics.ws_clients.inc();
    let reason = run_session(&gw, socket).await;
    gw.metrics.ws_clients.dec();
    gw.metrics.ws_disconnects.with_label_values(&[reason]).inc();
}

/// Hands `m` to the client's socket. A send that cannot finish within
/// `limit` means the client stopped reading: its socket is full, so not even
/// a close frame would reach it.
pub(crate) async fn send_within(
    tx: &mut SplitSink<WebSocket, Message>,
    m: Message,
    limit: Duration,
) -> Result<(), &'static str> {
    match tokio::time::timeout(limit, tx.send(m)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("send_failed"),
        Err(_) => Err("slow_consumer"),
    }
}

/// Serves one connection until it ends; returns why it ended.
async fn run_session(gw: &Gateway, socket: WebSocket) -> &'static str {
    let (mut tx, mut rx) = socket.split();
    let mut stream = gw.market.subscribe();
    let mut subs = Subscriptions::default();
    let mut shutdown = gw.shutdown.clone();
    let ping_every = Duration::from_secs(gw.config.ws_ping_secs);
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut missed_pongs = 0u32;
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))
    };
    let send_timeout = Duration::from_millis(gw.config.ws_send_timeout_ms);
    // A revoked key ends its user stream as it ends its REST access.
    let mut key_check = tokio::time::interval(crate::auth::KEY_REFRESH);
    loop {
        tokio::select! {
            _ = key_check.tick(), if subs.api_key.is_some() => {
                if let Some(key) = &subs.api_key
                    && gw.keys.is_revoked(key).await
                {
                    let _ = send_within(&mut tx, close(1008, "API key revoked"), send_timeout).await;
                    return "key_revoked";
                }
            }
            m = stream.recv() => match m {
                Ok(m) => {
                    if let Some(text) = subs.wants(&m)
                        && let Err(reason) = send_within(&mut tx, Message::Text(text), send_timeout).await
                    {
                        return reason;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = send_within(&mut tx, close(1008, "slow consumer"), send_timeout).await;
                    return "slow_consumer";
                }
                Err(RecvError::Closed) => {
                    let _ = send_within(&mut tx, close(1001, "server stopping"), send_timeout).await;
                    return "server_stopping";
                }
            },
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let answer = handle(gw, &mut subs, t.as_str()).await;
                    if let Err(reason) = send_within(&mut tx, answer, send_timeout).await {
                        return reason;
                    }
                }
                Some(Ok(Message::Pong(_))) => missed_pongs = 0,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Binary(_))) => {
                    let _ = send_within(&mut tx, close(1003, "text messages only"), send_timeout).await;
                    return "bad_message";
                }
                Some(Ok(Message::Close(_))) | None => return "client_closed",
                Some(Err(e)) => {
                    // The read failed but the socket can still write: the
                    // client learns why before the connection closes.
                    if let Some((code, reason)) = close_for(e) {
                        let frame = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                        let _ = send_within(&mut tx, frame, send_timeout).await;
                    }
                    return "protocol_error";
                }
            },
            _ = ping.tick() => {
                missed_pongs += 1;
                if missed_pongs > 3 {
                    let _ = send_within(&mut tx, close(1011, "no pong"), send_timeout).await;
                    return "no_pong";
                }
                if let Err(reason) = send_within(&mut tx, Message::Ping(Default::default()), send_timeout).await {
                    return reason;
                }
            }
            _ = shutdown.changed() => {
                let _ = send_within(&mut tx, close(1001, "server stopping"), send_timeout).await;
                return "server_stopping";
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(truncate("short".into()), "short");
        assert_eq!(truncate("x".repeat(200)).len(), 123);
        // Never cut inside a character: 'é' is two bytes.
        let cut = truncate("é".repeat(100));
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
    }
}
