//! One stream connection: its subscriptions, its control messages, and the
//! loop that forwards the messages it wants.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use super::control::{self, Refusal, Request};
use super::listen::{self, Lapse, ListenKeys};
use super::{Start, close_for, send_within};
use crate::{Gateway, Registry, StreamMessage, Topic};

/// Most names of one request (a path, a `streams=` list, a SUBSCRIBE)
/// looked up as listen keys: each is a store query, and a request is
/// neither signed nor weighed.
const MAX_KEY_LOOKUPS: usize = 8;

/// The topic each of `names` stands for, in order: a market stream, or
/// else (the one place to do it) a valid listen key naming a user's
/// stream, for the first [`MAX_KEY_LOOKUPS`] names that are no market
/// stream; `None` for the rest.
pub(super) async fn resolve_all<S: AsRef<str>>(gw: &Gateway, names: &[S]) -> Vec<Option<Topic>> {
    let mut lookups = 0;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let name = name.as_ref();
        let topic = match gw.market.topics().parse(name) {
            Some(topic) => Some(topic),
            None if lookups < MAX_KEY_LOOKUPS => {
                lookups += 1;
                listen::resolve(gw, name).await
            }
            None => None,
        };
        out.push(topic);
    }
    out
}

/// A connection's streams. Dropping it takes its counts off the registry,
/// however the connection ends.
pub(super) struct Subscriptions<'a> {
    registry: &'a Registry,
    /// Each topic and the name it was subscribed by (for a user's stream,
    /// its listen key).
    topics: HashMap<Topic, String>,
    /// Whether payloads are wrapped `{"stream","data"}`.
    combined: bool,
}

impl<'a> Subscriptions<'a> {
    pub(super) fn new(registry: &'a Registry, combined: bool) -> Self {
        Subscriptions {
            registry,
            topics: HashMap::new(),
            combined,
        }
    }

    fn add(&mut self, topic: Topic, name: String) {
        if self.topics.insert(topic, name).is_none() {
            self.registry.watch(&topic);
        }
    }

    fn remove(&mut self, topic: &Topic) {
        if self.topics.remove(topic).is_some() {
            self.registry.unwatch(topic);
        }
    }

    /// The names subscribed, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.values().cloned().collect();
        names.sort();
        names
    }

    /// The text to send for `m`, if this connection wants it: the shared
    /// encoding of a market message; a user's message as published, or
    /// wrapped with its stream's name.
    pub(super) fn wants(&self, m: &StreamMessage) -> Option<Utf8Bytes> {
        match m {
            StreamMessage::Market(p) => self
                .topics
                .contains_key(&p.topic)
                .then(|| if self.combined { p.combined() } else { p.raw() }),
            StreamMessage::User { user, text } => {
                let name = self.topics.get(&Topic::User(*user))?;
                Some(self.user_text(name, text))
            }
        }
    }

    /// A user's message, wrapped with its stream's name (the listen key)
    /// when the connection is combined.
    fn user_text(&self, name: &str, text: &str) -> Utf8Bytes {
        if self.combined {
            let name = Value::from(name);
            Utf8Bytes::from(format!(r#"{{"stream":{name},"data":{text}}}"#))
        } else {
            Utf8Bytes::from(text)
        }
    }

    /// The topic subscribed by `name`, if any.
    fn topic_named(&self, name: &str) -> Option<Topic> {
        self.topics
            .iter()
            .find_map(|(t, n)| (n == name).then_some(*t))
    }

    fn has_listen_keys(&self) -> bool {
        self.topics.keys().any(|t| matches!(t, Topic::User(_)))
    }

    /// The listen keys subscribed, with the user each opens.
    fn listen_keys(&self) -> Vec<(String, proto::UserId)> {
        self.topics
            .iter()
            .filter_map(|(t, name)| match t {
                Topic::User(u) => Some((name.clone(), *u)),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Subscriptions<'_> {
    fn drop(&mut self) {
        for t in self.topics.keys() {
            self.registry.unwatch(t);
        }
    }
}

/// Answers one control message.
async fn handle(gw: &Gateway, subs: &mut Subscriptions<'_>, text: &str) -> String {
    let (id, request) = control::parse(text);
    let result = match request {
        Ok(Request::Subscribe(names)) => subscribe(gw, subs, &names).await,
        Ok(Request::Unsubscribe(names)) => unsubscribe(gw, subs, &names),
        Ok(Request::List) => Ok(Value::from(subs.names())),
        Ok(Request::SetCombined(on)) => {
            subs.combined = on;
            Ok(Value::Null)
        }
        Ok(Request::GetCombined) => Ok(Value::Bool(subs.combined)),
        Err(r) => Err(r),
    };
    match result {
        Ok(v) => control::answer(&id, &v),
        Err(r) => control::refusal(&id, &r),
    }
}

/// The topics of `names`, or the refusal of the first unknown one.
async fn topics(gw: &Gateway, names: &[String]) -> Result<Vec<(Topic, String)>, Refusal> {
    let mut out = Vec::with_capacity(names.len());
    for (name, topic) in names.iter().zip(resolve_all(gw, names).await) {
        let topic =
            topic.ok_or_else(|| Refusal::invalid(format!("invalid stream name {name:?}")))?;
        out.push((topic, name.clone()));
    }
    Ok(out)
}

/// Adds every stream of `names`, or none: an unknown name or passing the
/// connection's limit refuses them all.
async fn subscribe(
    gw: &Gateway,
    subs: &mut Subscriptions<'_>,
    names: &[String],
) -> Result<Value, Refusal> {
    let max = gw.config.ws_max_streams;
    let too_many = || Refusal::invalid(format!("too many streams: at most {max} per connection"));
    // Refused before any name is looked at: the work stays bounded.
    if names.len() > max {
        return Err(too_many());
    }
    let wanted = topics(gw, names).await?;
    let mut new: Vec<&Topic> = wanted
        .iter()
        .map(|(t, _)| t)
        .filter(|t| !subs.topics.contains_key(t))
        .collect();
    new.sort_by_key(|t| t.to_string());
    new.dedup();
    if subs.topics.len() + new.len() > max {
        return Err(too_many());
    }
    for (topic, name) in wanted {
        subs.add(topic, name);
    }
    Ok(Value::Null)
}

/// Removes the streams of `names`; a market stream not subscribed is no
/// error. A listen key is found among the connection's own names, so one
/// that has lapsed since can still be removed, and no store is asked.
fn unsubscribe(
    gw: &Gateway,
    subs: &mut Subscriptions<'_>,
    names: &[String],
) -> Result<Value, Refusal> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let topic = subs
            .topic_named(name)
            .or_else(|| gw.market.topics().parse(name))
            .ok_or_else(|| Refusal::invalid(format!("invalid stream name {name:?}")))?;
        found.push(topic);
    }
    for topic in found {
        subs.remove(&topic);
    }
    Ok(Value::Null)
}

/// Serves one connection and counts it.
pub(super) async fn session(gw: std::sync::Arc<Gateway>, socket: WebSocket, start: Start) {
    gw.metrics.ws_clients.inc();
    let reason = run_session(&gw, socket, start).await;
    gw.metrics.ws_clients.dec();
    gw.metrics.ws_disconnects.with_label_values(&[reason]).inc();
}

/// Binance's bound on incoming messages: at most `max` in any one-second
/// window, counted from the window's first message.
#[derive(Debug)]
struct Incoming {
    max: u32,
    since: Instant,
    count: u32,
}

impl Incoming {
    fn new(max: u32) -> Self {
        Incoming {
            max,
            since: Instant::now(),
            count: 0,
        }
    }

    /// Counts one message at `now`; false when it is one too many.
    fn admit(&mut self, now: Instant) -> bool {
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            self.since = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.max
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    super::close_frame(code, Utf8Bytes::from_static(reason))
}

/// What one client frame asks of the session.
enum Step {
    /// Carry on.
    Go,
    /// Send this and carry on.
    Send(Message),
    /// Send this (if anything) and end, for this reason.
    End(Option<Message>, &'static str),
}

/// The session's answer to one frame from the client.
async fn on_client(
    gw: &Gateway,
    subs: &mut Subscriptions<'_>,
    incoming: &mut Incoming,
    missed_pongs: &mut u32,
    m: Option<Result<Message, axum::Error>>,
) -> Step {
    let counted = matches!(
        m,
        Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))
    );
    if counted && !incoming.admit(Instant::now()) {
        return Step::End(Some(close(1008, "too many messages")), "too_many_messages");
    }
    match m {
        Some(Ok(Message::Text(t))) => Step::Send(Message::text(handle(gw, subs, t.as_str()).await)),
        Some(Ok(Message::Pong(_))) => {
            *missed_pongs = 0;
            Step::Go
        }
        Some(Ok(Message::Ping(_))) => Step::Go,
        Some(Ok(Message::Binary(_))) => {
            Step::End(Some(close(1003, "text messages only")), "bad_message")
        }
        Some(Ok(Message::Close(_))) | None => Step::End(None, "client_closed"),
        // The read failed but the socket can still write: the client
        // learns why before the connection closes.
        Some(Err(e)) => {
            let frame = close_for(e).map(|(code, reason)| super::close_frame(code, reason));
            Step::End(frame, "protocol_error")
        }
    }
}

/// Checks the session's listen keys: an expired one gets Binance's
/// `listenKeyExpired` and leaves the session, a closed one just leaves it;
/// a revoked API key ends the connection (`Err` with the reason).
async fn check_keys(
    gw: &Gateway,
    subs: &mut Subscriptions<'_>,
    keys: &mut ListenKeys,
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    send_timeout: Duration,
) -> Result<(), &'static str> {
    for lapse in keys.check(gw, &subs.listen_keys()).await {
        match lapse {
            Lapse::Revoked => {
                let _ = send_within(tx, close(1008, "API key revoked"), send_timeout).await;
                return Err("key_revoked");
            }
            Lapse::Expired(key, user) => {
                let event = crate::rest::userstream::expired_event(&key, crate::now_ms());
                let text = subs.user_text(&key, &event);
                subs.remove(&Topic::User(user));
                send_within(tx, Message::Text(text), send_timeout).await?;
            }
            Lapse::Closed(_, user) => subs.remove(&Topic::User(user)),
        }
    }
    Ok(())
}

/// Most stream messages written to one connection before a flush: a busy
/// connection gets them in one write instead of one system call each.
const BATCH: usize = 64;

/// Why forwarding stopped.
enum Forward {
    /// The connection fell more than `ws_buffer` messages behind.
    Lagged,
    /// The socket failed or did not take the messages in time.
    Failed(&'static str),
}

/// Writes `first` and the messages already waiting after it (up to
/// [`BATCH`]) that the connection wants, then flushes once; all within
/// `limit`, or the client is too slow.
async fn forward(
    subs: &Subscriptions<'_>,
    first: StreamMessage,
    stream: &mut Receiver<StreamMessage>,
    tx: &mut SplitSink<WebSocket, Message>,
    limit: Duration,
) -> Result<(), Forward> {
    let write = async {
        let mut fed = 0;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            if let Some(text) = subs.wants(&m) {
                tx.feed(Message::Text(text))
                    .await
                    .map_err(|_| Forward::Failed("send_failed"))?;
                fed += 1;
            }
            if fed == BATCH {
                break;
            }
            next = match stream.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Lagged(_)) => return Err(Forward::Lagged),
                Err(_) => None,
            };
        }
        if fed > 0 {
            tx.flush()
                .await
                .map_err(|_| Forward::Failed("send_failed"))?;
        }
        Ok(())
    };
    tokio::time::timeout(limit, write)
        .await
        .unwrap_or(Err(Forward::Failed("slow_consumer")))
}

/// Serves one connection until it ends; returns why it ended.
async fn run_session(gw: &Gateway, socket: WebSocket, start: Start) -> &'static str {
    let (mut tx, mut rx) = socket.split();
    let mut stream = gw.market.subscribe();
    let mut subs = Subscriptions::new(gw.market.topics(), start.combined);
    for (topic, name) in start.streams {
        subs.add(topic, name);
    }
    let mut shutdown = gw.shutdown.clone();
    let mut ping = tokio::time::interval(Duration::from_secs(gw.config.ws_ping_secs));
    ping.tick().await;
    let mut missed_pongs = 0u32;
    let mut incoming = Incoming::new(gw.config.ws_messages_per_sec);
    let send_timeout = Duration::from_millis(gw.config.ws_send_timeout_ms);
    let mut keys = ListenKeys::default();
    let mut key_check = tokio::time::interval(listen::CHECK_EVERY);
    // Idle while no key is held: no burst of missed checks after.
    key_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = key_check.tick(), if subs.has_listen_keys() => {
                if let Err(reason) = check_keys(gw, &mut subs, &mut keys, &mut tx, send_timeout).await {
                    return reason;
                }
            }
            m = stream.recv() => match m {
                Ok(m) => match forward(&subs, m, &mut stream, &mut tx, send_timeout).await {
                    Ok(()) => {}
                    Err(Forward::Failed(reason)) => return reason,
                    Err(Forward::Lagged) => {
                        let _ = send_within(&mut tx, close(1008, "slow consumer"), send_timeout).await;
                        return "slow_consumer";
                    }
                },
                Err(RecvError::Lagged(_)) => {
                    let _ = send_within(&mut tx, close(1008, "slow consumer"), send_timeout).await;
                    return "slow_consumer";
                }
                Err(RecvError::Closed) => {
                    let _ = send_within(&mut tx, close(1001, "server stopping"), send_timeout).await;
                    return "server_stopping";
                }
            },
            m = rx.next() => match on_client(gw, &mut subs, &mut incoming, &mut missed_pongs, m).await {
                Step::Go => {}
                Step::Send(answer) => {
                    if let Err(reason) = send_within(&mut tx, answer, send_timeout).await {
                        return reason;
                    }
                }
                Step::End(frame, reason) => {
                    if let Some(frame) = frame {
                        let _ = send_within(&mut tx, frame, send_timeout).await;
                    }
                    return reason;
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
    use std::sync::Arc;

    use proto::{PairConfig, Symbol, UserId};

    use super::*;
    use crate::Published;

    fn registry() -> Registry {
        Registry::new(&[PairConfig::simple(Symbol::new("BTC-EUR").unwrap())])
    }

    #[test]
    fn at_most_the_limit_per_second_then_a_new_window() {
        let t0 = Instant::now();
        let mut i = Incoming::new(5);
        i.since = t0;
        for _ in 0..5 {
            assert!(i.admit(t0));
        }
        assert!(!i.admit(t0 + Duration::from_millis(999)));
        assert!(i.admit(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn a_connection_gets_its_topics_raw_or_combined_and_uncounts_on_drop() {
        let r = registry();
        let trade = r.parse("btceur@trade").unwrap();
        let depth = r.parse("btceur@depth").unwrap();
        let m = StreamMessage::Market(Arc::new(Published::new(trade, r#"{"e":"trade"}"#.into())));
        {
            let mut subs = Subscriptions::new(&r, false);
            assert_eq!(subs.wants(&m), None);
            subs.add(trade, "btceur@trade".into());
            subs.add(trade, "btceur@trade".into());
            subs.add(depth, "btceur@depth".into());
            assert_eq!(subs.wants(&m).unwrap().as_str(), r#"{"e":"trade"}"#);
            subs.combined = true;
            assert_eq!(
                subs.wants(&m).unwrap().as_str(),
                r#"{"stream":"btceur@trade","data":{"e":"trade"}}"#
            );
            assert_eq!(subs.names(), ["btceur@depth", "btceur@trade"]);
            subs.remove(&depth);
            assert!(!r.watched(&depth));
            assert!(r.watched(&trade));
        }
        // Subscribed twice, counted once; gone with the connection.
        assert!(!r.watched(&trade));
    }

    #[test]
    fn user_messages_reach_the_users_topic_by_its_name() {
        let r = registry();
        let m = StreamMessage::User {
            user: UserId(7),
            text: Arc::from(r#"{"e":"executionReport"}"#),
        };
        let mut subs = Subscriptions::new(&r, true);
        assert_eq!(subs.wants(&m), None);
        subs.add(Topic::User(UserId(7)), "KEY1".into());
        assert_eq!(
            subs.wants(&m).unwrap().as_str(),
            r#"{"stream":"KEY1","data":{"e":"executionReport"}}"#
        );
        subs.combined = false;
        assert_eq!(
            subs.wants(&m).unwrap().as_str(),
            r#"{"e":"executionReport"}"#
        );
    }
}
