//! Where requests go. A target has one path for every request,
//! [`Target::submit`]. loadtest itself has one, the gateway over HTTP
//! ([`HttpTarget`]); other tools supply their own (the command log in
//! Kafka, `kafkaload`) and run it with [`crate::runner::run_supplied`].
//!
//! The `http` target sends each request over one of a bounded number of
//! keep-alive HTTP/1.1 connections. A request waits for a free connection
//! when all are busy; that wait is part of its latency, because latency is
//! counted from the planned send time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::flow::{FORM, Method, Request};
use crate::scenario::HttpClient;
use clientkit::{API_KEY_HEADER, Credentials, Signer, now_ms};

/// An answer from the target.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status (or its equivalent).
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// No answer before the deadline.
    Timeout,
    /// The connection failed; the reason is a short fixed label.
    Transport(&'static str),
}

pub use crate::error::TargetError;

/// A future a target returns: boxed, so targets can be chosen at run time
/// (`Box<dyn Target>`) by whoever builds them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The system under test, behind one `submit` path.
pub trait Target: Send + Sync + std::fmt::Debug {
    /// Sends `req` and waits for its answer until `deadline`.
    fn submit<'a>(
        &'a self,
        req: &'a Request,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Answer, SubmitError>>;

    /// Opens connections ahead of the run, so the first requests do not
    /// pay for them.
    fn warm_up(&self) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(async { Ok(()) })
    }

    /// Connections opened after the warm-up (after a failure or a timeout).
    fn reconnects(&self) -> u64 {
        0
    }

    /// The target's way of taking many requests at once, without a task
    /// each, if it has one.
    fn batched(&self) -> Option<&dyn Batched> {
        None
    }
}

/// A request handed to a [`Batched`] target, and when it was due.
#[derive(Debug)]
pub struct Ticket {
    /// The request.
    pub req: Request,
    /// Its phase of the schedule.
    pub phase: usize,
    /// When it was planned: its latency runs from here.
    pub planned: Instant,
    /// Unanswered then, it is a timeout.
    pub deadline: Instant,
}

/// A ticket's end: its answer (or why none), and when it came.
pub type Finished = (Ticket, Result<Answer, SubmitError>, Instant);

/// Called with requests that ended, as many at once as the target has.
pub type Completion = std::sync::Arc<dyn Fn(Vec<Finished>) + Send + Sync>;

/// A target that takes requests in batches and reports their ends in
/// batches: no task, timer or channel per request.
pub trait Batched: Send + Sync {
    /// Sends the tickets (each as soon as the target has room for it);
    /// `done` gets every one of them back, answered or not, exactly once.
    /// Callable from any thread.
    fn send_all(&self, tickets: Vec<Ticket>, done: &Completion);
}

/// The gateway over HTTP/1.1 keep-alive connections.
#[derive(Debug)]
pub struct HttpTarget {
    addr: SocketAddr,
    authority: String,
    base: String,
    signers: Vec<Signer>,
    slots: Semaphore,
    connections: usize,
    transport: Transport,
    warmed: std::sync::atomic::AtomicBool,
    reconnects: AtomicU64,
}

enum Transport {
    Hyper(Mutex<Vec<SendRequest<Full<Bytes>>>>),
    Reqwest(reqwest::Client),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Hyper(_) => f.write_str("Hyper"),
            Transport::Reqwest(_) => f.write_str("Reqwest"),
        }
    }
}

impl HttpTarget {
    /// A target at `addr` (checked loopback), `authority` for the `Host`
    /// header, with one signer per user and at most `connections` requests
    /// in flight.
    pub fn new(
        addr: SocketAddr,
        authority: &str,
        users: &[Credentials],
        connections: usize,
        client: HttpClient,
    ) -> Result<HttpTarget, TargetError> {
        let transport = match client {
            HttpClient::Hyper => Transport::Hyper(Mutex::new(Vec::with_capacity(connections))),
            HttpClient::Reqwest => Transport::Reqwest(
                reqwest::Client::builder()
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(connections)
                    .build()
                    .map_err(|e| TargetError::Client(e.to_string()))?,
            ),
        };
        Ok(HttpTarget {
            addr,
            authority: authority.to_string(),
            base: format!("http://{addr}"),
            signers: users.iter().map(Signer::new).collect(),
            slots: Semaphore::new(connections),
            connections,
            transport,
            warmed: false.into(),
            reconnects: AtomicU64::new(0),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SubmitError> {
        if self.warmed.load(Ordering::Relaxed) {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|_| SubmitError::Transport("connect"))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|_| SubmitError::Transport("handshake"))?;
        // The connection's I/O runs in its own task; it ends when `send` is
        // dropped or the server closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    async fn open_all(&self) -> Result<(), TargetError> {
        if let Transport::Hyper(idle) = &self.transport {
            let mut opened = Vec::with_capacity(self.connections);
            for _ in 0..self.connections {
                opened.push(self.connect().await.map_err(|e| TargetError::Connect {
                    addr: self.addr.to_string(),
                    why: format!("{e:?}"),
                })?);
            }
            if let Ok(mut idle) = idle.lock() {
                idle.extend(opened);
            }
        }
        self.warmed.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn send(&self, req: &Request, deadline: Instant) -> Result<Answer, SubmitError> {
        let signer = self
            .signers
            .get(req.user)
            .ok_or(SubmitError::Transport("no_such_user"))?;
        let send = async {
            // Held until the answer is read: bounds requests in flight to the
            // number of connections.
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| SubmitError::Transport("closed"))?;
            // Signed when actually sent, so the timestamp is fresh.
            let path = signer.sign(req.path, &req.query, &req.body, now_ms());
            match &self.transport {
                Transport::Hyper(idle) => self.send_hyper(idle, signer, req, path).await,
                Transport::Reqwest(c) => self.send_reqwest(c, signer, req, &path).await,
            }
        };
        match tokio::time::timeout_at(deadline, send).await {
            Ok(r) => r,
            Err(_) => Err(SubmitError::Timeout),
        }
    }

    async fn send_hyper(
        &self,
        idle: &Mutex<Vec<SendRequest<Full<Bytes>>>>,
        signer: &Signer,
        req: &Request,
        path: String,
    ) -> Result<Answer, SubmitError> {
        let reuse = idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match reuse {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        conn.ready()
            .await
            .map_err(|_| SubmitError::Transport("not_ready"))?;
        let mut builder = hyper::Request::builder()
            .method(match req.method {
                Method::Post => hyper::Method::POST,
                Method::Put => hyper::Method::PUT,
                Method::Delete => hyper::Method::DELETE,
            })
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(API_KEY_HEADER, &signer.api_key);
        if !req.body.is_empty() {
            builder = builder.header(hyper::header::CONTENT_TYPE, FORM);
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|_| SubmitError::Transport("bad_request"))?;
        let resp = conn
            .send_request(request)
            .await
            .map_err(|_| SubmitError::Transport("send"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| SubmitError::Transport("read_body"))?
            .to_bytes();
        // Only a connection whose answer was read completely goes back.
        if let Ok(mut v) = idle.lock() {
            v.push(conn);
        }
        Ok(Answer { status, body })
    }

    async fn send_reqwest(
        &self,
        client: &reqwest::Client,
        signer: &Signer,
        req: &Request,
        path: &str,
    ) -> Result<Answer, SubmitError> {
        let method = match req.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut r = client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::HOST, &self.authority)
            .header(API_KEY_HEADER, &signer.api_key);
        if !req.body.is_empty() {
            r = r
                .header(reqwest::header::CONTENT_TYPE, FORM)
                .body(req.body.clone());
        }
        let resp = r.send().await.map_err(|_| SubmitError::Transport("send"))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|_| SubmitError::Transport("read_body"))?;
        Ok(Answer { status, body })
    }
}

impl Target for HttpTarget {
    fn submit<'a>(
        &'a self,
        req: &'a Request,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Answer, SubmitError>> {
        Box::pin(self.send(req, deadline))
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(self.open_all())
    }

    fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}
