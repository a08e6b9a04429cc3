//! Binance's market streams (`web-socket-streams.md`).
//!
//! Paths: `/ws` (raw payloads; subscribe with control messages),
//! `/ws/<stream>` and `/ws/<s1>/<s2>/...` (raw), and
//! `/stream?streams=<s1>/<s2>` (each payload wrapped
//! `{"stream":"<name>","data":<payload>}`). Control messages (see
//! [`control`]): `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`,
//! `SET_PROPERTY`/`GET_PROPERTY` `combined`. Stream names and payloads are
//! in `market/topic.rs` and `market/public.rs`; klines and tickers come from
//! [`periodic`].
//!
//! Limits: Binance's 1,024 streams per connection (`ws_max_streams`) and 5
//! incoming messages per second (`ws_messages_per_sec`; pings, pongs and
//! control messages count; past it the connection is closed with 1008).
//! A client that falls more than `ws_buffer` messages behind is closed with
//! code 1008 and the reason `slow consumer`; one that stops reading, so that
//! a message cannot be handed to its socket within `ws_send_timeout_ms`, is
//! dropped (counted with the same reason). The engine never waits for it.
//! A client frame or message over [`MAX_CLIENT_MESSAGE`] bytes is refused as
//! the header announces it (nothing of it is buffered) and the connection is
//! closed with 1009. Invalid UTF-8 closes it with 1007, any other protocol
//! error (an unmasked frame, a reserved opcode or bit, a stray continuation)
//! with 1002, each with a reason. At most `max_ws_connections` connections
//! are open per process (503 past it), and one IP may make
//! `ws_connections_per_5min` connection attempts in 5 minutes (Binance's
//! 300; 429 past it).

mod control;
mod listen;
mod periodic;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::sync::OwnedSemaphorePermit;

use crate::errors::{ApiError, code};
use crate::{Gateway, Topic};

/// Largest client message accepted: a SUBSCRIBE of about 150 streams fits;
/// more take several (1,024 streams per connection in all).
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
const READ_BUFFER: usize = 8 * 1024;
/// Bytes gathered before a write to the socket. Every send is flushed at
/// once, so this only caps what one write call carries.
const WRITE_BUFFER: usize = 64 * 1024;

/// The streams a connection starts with, named in its path, and whether
/// its payloads are wrapped.
#[derive(Debug, Default)]
pub(crate) struct Start {
    /// `(topic, name)` of each stream in the path.
    streams: Vec<(Topic, String)>,
    /// True for `/stream`.
    combined: bool,
}

/// Raw streams, subscribed to with control messages; `/ws/<s1>/<s2>`
/// starts with the streams named in the path.
#[utoipa::path(get, path = "/ws", tag = "Service",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "Not a valid WebSocket upgrade request (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 426, description = "The connection cannot be upgraded (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 429, description = "Too many connection attempts from this address in 5 minutes (-1003).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "Too many WebSocket connections (-1008).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))))]
pub(crate) async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ip: ClientIp,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    accept(gw, ip, ws, Start::default())
}

/// Raw streams named in the path: `/ws/btceur@trade/btceur@depth`. Not
/// in the OpenAPI document, whose paths are plain: `/ws` describes it.
pub(crate) async fn upgrade_path(
    State(gw): State<Arc<Gateway>>,
    ip: ClientIp,
    Path(streams): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match named(&gw, &streams).await {
        Ok(streams) => accept(
            gw,
            ip,
            ws,
            Start {
                streams,
                combined: false,
            },
        ),
        Err(e) => e.into_response(),
    }
}

/// Combined streams: `/stream?streams=btceur@trade/btceur@depth`, each
/// payload wrapped `{"stream":"<name>","data":<payload>}`.
///
/// `streams`: stream names separated by `/`; none, to subscribe with
/// `SUBSCRIBE`. (Not listed as a parameter: no REST struct reads it.)
#[utoipa::path(get, path = "/stream", tag = "Service",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "Not a valid WebSocket upgrade request (-1044), an invalid stream name (-1100), too many streams (-1191).", body = crate::rest::openapi::ErrorBody),
        (status = 426, description = "The connection cannot be upgraded (-1044).", body = crate::rest::openapi::ErrorBody),
        (status = 429, description = "Too many connection attempts from this address in 5 minutes (-1003).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "Too many WebSocket connections (-1008).", body = crate::rest::openapi::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))))]
pub(crate) async fn upgrade_combined(
    State(gw): State<Arc<Gateway>>,
    ip: ClientIp,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(query.as_deref().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => return ApiError::new(code::ILLEGAL_CHARS, e.to_string()).into_response(),
        };
    let mut list = String::new();
    for (k, v) in pairs {
        match k.as_str() {
            "streams" => list = v,
            // Times are milliseconds only.
            "timeUnit" if v.eq_ignore_ascii_case("millisecond") => {}
            other => {
                let msg = format!("Unknown parameter {other:?}: streams only.");
                return ApiError::new(code::UNREAD_PARAMS, msg).into_response();
            }
        }
    }
    match named(&gw, &list).await {
        Ok(streams) => accept(
            gw,
            ip,
            ws,
            Start {
                streams,
                combined: true,
            },
        ),
        Err(e) => e.into_response(),
    }
}

/// The streams of a path or `streams=` list, `/`-separated (empty: none).
/// A name that is no stream is passed over, as Binance does: ccxt.pro
/// connects to `/ws/0`, `/ws/1`, ... (its own connection numbers) and
/// subscribes with `SUBSCRIBE`.
async fn named(gw: &Gateway, list: &str) -> Result<Vec<(Topic, String)>, ApiError> {
    let names: Vec<&str> = list.split('/').filter(|s| !s.is_empty()).collect();
    let max = gw.config.ws_max_streams;
    if names.len() > max {
        let msg = format!("At most {max} streams per connection.");
        return Err(ApiError::new(code::TOO_MANY_SUBSCRIPTIONS, msg));
    }
    let topics = session::resolve_all(gw, &names).await;
    Ok(names
        .iter()
        .zip(topics)
        .filter_map(|(name, topic)| Some((topic?, name.to_string())))
        .collect())
}

/// Upgrades the connection, within the connection limit.
fn accept(
    gw: Arc<Gateway>,
    ClientIp(ip): ClientIp,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    start: Start,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return upgrade_refused(&e),
    };
    let permit = match connection_permit(&gw, ip) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    if gw.market.topics().start_periodic() {
        tokio::spawn(periodic::run(gw.clone()));
    }
    bounded(ws).on_upgrade(move |socket| async move {
        session::session(gw, socket, start).await;
        drop(permit);
    })
}

/// The client's address as REST's request weights see it: the peer, or
/// what the nearest trusted proxy reports (`forwarded_for_hops`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<Arc<Gateway>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
        let hops = gw.config.forwarded_for_hops;
        Ok(ClientIp(crate::rest::weights::client_ip(
            &parts.headers,
            peer,
            hops,
        )))
    }
}

/// One of the process's `max_ws_connections` permits, held for as long as
/// the connection lasts, for a client within Binance's connection attempts
/// per IP: past those, 429 (-1003); past the permits, 503. Both with
/// `Retry-After`.
pub(crate) fn connection_permit(
    gw: &Gateway,
    ip: IpAddr,
) -> Result<OwnedSemaphorePermit, ApiError> {
    if let Err(secs) = gw.usage.charge_connect(ip, crate::now_ms()) {
        let limit = gw.config.ws_connections_per_5min;
        let msg = format!(
            "Too many connection attempts from this address: at most {limit} per 5 minutes."
        );
        return Err(ApiError::retry(code::TOO_MANY_REQUESTS, msg, secs));
    }
    gw.ws_connections.clone().try_acquire_owned().map_err(|_| {
        gw.metrics
            .ws_disconnects
            .with_label_values(&["too_many_connections"])
            .inc();
        ApiError::retry(
            code::OVERLOADED,
            "Too many WebSocket connections; try again later.",
            gw.config.retry_after_secs,
        )
    })
}

/// `ws` with the message, frame and buffer bounds every WebSocket endpoint
/// shares.
pub(crate) fn bounded(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

/// A close frame: `code` and the reason the client reads.
pub(crate) fn close_frame(code: u16, reason: impl Into<Utf8Bytes>) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// A request that cannot be upgraded, answered in JSON; a method other
/// than GET (HEAD reaches here too) gets 405 with its `Allow` header.
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
pub(crate) fn truncate(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
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
