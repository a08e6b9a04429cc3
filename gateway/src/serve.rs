//! The HTTP server: accepts connections and serves the router on each, with
//! the limits `axum::serve` cannot set.
//!
//! - A header read timeout: hyper's, which needs a timer that `axum::serve`
//!   does not give it. A client that has not sent a whole request head
//!   within `header_read_timeout_ms` is disconnected. The clock runs from
//!   the moment hyper waits for a head, so it also closes a keep-alive
//!   connection that stays idle that long.
//! - A body read timeout: [`body_deadline`] gives a request body
//!   `body_read_timeout_ms` to arrive in full, then answers 408 `{code,msg}`
//!   and closes the connection.
//! - Bounds on the request head that answer with our JSON: [`head_limits`]
//!   refuses a target over [`MAX_URI_BYTES`] (414), more than
//!   [`MAX_HEADERS`] headers or over [`MAX_HEADER_BYTES`] of them (431).
//!   hyper's own bounds sit above ours ([`HYPER_MAX_BUF`] bytes of head,
//!   [`HYPER_MAX_HEADERS`] headers, its fixed 65,534-byte target); a head
//!   past those gets hyper's bare 414/431 and the connection is closed.
//!
//! Graceful shutdown works as `axum::serve`'s: when `shutdown` completes,
//! the listener closes, every connection finishes its request in progress
//! and closes, and `serve` returns when the last one has. Upgraded
//! WebSockets are no longer connections of the server; they close on the
//! gateway's own shutdown signal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::errors::{ApiError, code};

/// Longest request target (path and query) answered: longer gets 414. The
/// longest legitimate target, a signed query, is a few hundred bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most request headers answered: more gets 431.
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values answered: more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// hyper's read buffer, and so the largest head it parses at all. Above
/// our limits, so that theirs answer first; also bounds a connection's
/// buffer (hyper's default is about 400 KiB).
pub const HYPER_MAX_BUF: usize = 64 * 1024;
/// The most headers hyper parses at all (its default is 100).
pub const HYPER_MAX_HEADERS: usize = 128;

/// The timeouts [`serve`] applies.
#[derive(Debug, Clone, Copy)]
pub struct ServeTimeouts {
    /// For the whole request head.
    pub header_read: Duration,
    /// For the whole request body, from when the handler starts on it.
    pub body_read: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
/// `app` should carry [`body_deadline`] (the gateway's router does).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: ServeTimeouts,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(HYPER_MAX_HEADERS);
    let http = Arc::new(http);
    // Every connection holds a receiver: the sender's `closed()` is then
    // "every connection has ended".
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_backoff(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        send_at_once(&stream);
        // Each request carries its peer's address, as axum's `ConnectInfo`.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let http = http.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn.with_upgrades());
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// Answers and stream frames leave the moment they are written. With
/// Nagle's algorithm a small write behind an unacknowledged one waited for
/// the client's delayed ACK, up to 40 ms: that was the p99 of WebSocket API
/// orders at 2,000/s (41 ms; 10.5 ms without it, README "Performance").
fn send_at_once(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
}

/// After a failed accept: a refused or reset connection is the client's
/// problem, try the next; anything else (out of file descriptors) would
/// fail again at once, so wait a little, as `axum::serve` does.
async fn accept_backoff(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if !matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        tracing::warn!(error = %e, "accept failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Refuses, with `{code,msg}`, a request whose head passes our bounds.
pub(crate) async fn head_limits(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            code::URI_TOO_LONG,
            format!("Request target over {MAX_URI_BYTES} bytes."),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            code::HEADERS_TOO_LARGE,
            format!("At most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all."),
        )
        .into_response();
    }
    next.run(req).await
}

/// Gives a request body `limit` to arrive in full. When it does not, the
/// handler sees a body error, and the answer becomes 408 `{code,msg}` with
/// `Connection: close` (the rest of the body will not be read, so the
/// connection cannot carry another request).
pub(crate) async fn body_deadline(
    State(limit): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    use http_body::Body as _;
    // Most requests (GET, DELETE) have no body: no timer for them.
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            expired: expired.clone(),
        })
    });
    let resp = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return resp;
    }
    let mut resp = ApiError::new(
        code::REQUEST_TIMEOUT,
        format!(
            "The request body did not arrive within {} ms.",
            limit.as_millis()
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body read timed out")
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_accepted_connection_sends_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        assert!(!stream.nodelay().expect("read TCP_NODELAY"), "the default");
        super::send_at_once(&stream);
        assert!(stream.nodelay().expect("read TCP_NODELAY"));
    }
}
