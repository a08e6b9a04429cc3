//! A connection's session: its logon (`session.logon`, `.status`,
//! `.logout`) and its user data subscriptions (`userDataStream.*`).
//!
//! Binance's `session.logon` takes Ed25519 keys only; keys here are HMAC,
//! so the logon is signed as any WebSocket API request is: the HMAC of the
//! sorted params. Once logged on, a signed request needs its `timestamp`
//! but neither `apiKey` nor `signature`; one that carries them is checked
//! by them instead (Binance's ad hoc authorization).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::HeaderMap;
use proto::UserId;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::methods::{Request, verify_signed};
use super::{Conn, envelope};
use crate::auth::Caller;
use crate::errors::{ApiError, code};
use crate::now_ms;
use crate::{Gateway, StreamMessage};

/// Binance's weight of each session and subscription method.
const SESSION_WEIGHT: u32 = 2;
/// Binance's bound on a connection's active subscriptions.
const MAX_ACTIVE: usize = 1_000;
/// Binance's bound on the subscriptions a connection may start in all.
const MAX_STARTED: u32 = 65_535;
/// The params a signed session method takes.
const SIGNED_PARAMS: [&str; 4] = ["apiKey", "timestamp", "signature", "recvWindow"];

/// Who the connection is logged on as, and since when.
#[derive(Debug)]
struct Logon {
    caller: Caller,
    since: u64,
}

/// One user data subscription.
#[derive(Debug)]
struct Subscription {
    user: UserId,
    /// Re-checked while the subscription lasts.
    api_key: String,
    /// Started by `userDataStream.subscribe`: `session.logout` ends it.
    from_logon: bool,
    /// Counts the user as watched while the subscription lasts.
    _watch: crate::market::UserWatch,
}

/// A connection's logon and subscriptions.
#[derive(Debug, Default)]
pub(super) struct Session {
    logon: Option<Logon>,
    subscriptions: BTreeMap<u32, Subscription>,
    /// Subscriptions started so far; the next one's id.
    started: u32,
}

fn not_logged_on() -> ApiError {
    ApiError::new(
        code::UNKNOWN_API_KEY,
        "This connection is not logged on: call session.logon first, or use userDataStream.subscribe.signature.",
    )
}

fn revoked() -> ApiError {
    ApiError::new(
        code::UNKNOWN_API_KEY,
        "Invalid API-key, IP, or permissions for action.",
    )
}

impl Session {
    /// The caller a signed request without its own signature acts for.
    pub(super) fn logon(&self) -> Option<Caller> {
        self.logon.as_ref().map(|l| l.caller.clone())
    }

    /// Whether any key is in use, to be re-checked for revocation.
    pub(super) fn holds_keys(&self) -> bool {
        self.logon.is_some() || !self.subscriptions.is_empty()
    }

    /// The frames that carry `user`'s event `text`, one per subscription
    /// of that user (at most one: a user is subscribed once).
    pub(super) fn events_for(&self, user: UserId, text: &str) -> Vec<String> {
        self.subscriptions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(id, _)| format!("{{\"subscriptionId\":{id},\"event\":{text}}}"))
            .collect()
    }

    /// Listens to the market's broadcast while a subscription is active,
    /// and only then: a connection without one is never a slow consumer.
    pub(super) fn follow(
        &self,
        gw: &Gateway,
        stream: &mut Option<broadcast::Receiver<StreamMessage>>,
    ) {
        match (self.subscriptions.is_empty(), stream.is_some()) {
            (false, false) => *stream = Some(gw.market.subscribe()),
            (true, true) => *stream = None,
            _ => {}
        }
    }

    /// Ends the logon and the subscriptions whose key was revoked; returns
    /// the frames that tell the client: Binance's -2015 for the session,
    /// `eventStreamTerminated` for each subscription.
    pub(super) async fn drop_revoked(&mut self, gw: &Gateway) -> Vec<String> {
        let keys: BTreeSet<&str> = self
            .logon
            .iter()
            .map(|l| l.caller.api_key.as_str())
            .chain(self.subscriptions.values().map(|s| s.api_key.as_str()))
            .collect();
        let mut gone = BTreeSet::new();
        for key in keys {
            if gw.keys.is_revoked(key).await {
                gone.insert(key.to_string());
            }
        }
        let mut frames = Vec::new();
        if gone.is_empty() {
            return frames;
        }
        if self
            .logon
            .as_ref()
            .is_some_and(|l| gone.contains(&l.caller.api_key))
        {
            self.logon = None;
            frames.push(envelope::error(&Value::Null, &revoked(), &[]));
        }
        let ended: Vec<u32> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| gone.contains(&s.api_key))
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.subscriptions.remove(&id);
            frames.push(terminated(id));
        }
        frames
    }

    /// Answers a session or subscription method; `None` for any other.
    pub(super) async fn handle(&mut self, conn: &Conn, req: &Request) -> Option<String> {
        if !matches!(
            req.method.as_str(),
            "session.logon"
                | "session.status"
                | "session.logout"
                | "userDataStream.subscribe"
                | "userDataStream.subscribe.signature"
                | "userDataStream.unsubscribe"
        ) {
            return None;
        }
        let gw = &conn.gw;
        let used = match gw.usage.charge_ip(conn.peer.ip(), SESSION_WEIGHT, now_ms()) {
            Ok(used) => used,
            Err(e) => return Some(envelope::limit_error(gw, &req.id, e, req.rate_limits)),
        };
        let headers: HeaderMap = used.headers().into_iter().collect();
        let limits = envelope::rate_limits(gw, &headers, req.rate_limits);
        Some(match self.answer(conn, req).await {
            Ok(result) => envelope::success(&req.id, &result.to_string(), &limits),
            Err(e) => envelope::error(&req.id, &e, &limits),
        })
    }

    async fn answer(&mut self, conn: &Conn, req: &Request) -> Result<Value, ApiError> {
        let gw = &conn.gw;
        let params = &req.params;
        match req.method.as_str() {
            "session.logon" => {
                params.only(&SIGNED_PARAMS)?;
                let caller = verify_signed(gw, params).await?;
                gw.demo.fund(gw.log.accounts(), caller.user).await;
                self.logon = Some(Logon {
                    caller,
                    since: now_ms(),
                });
                Ok(self.status(conn))
            }
            "session.status" => {
                params.only(&[])?;
                Ok(self.status(conn))
            }
            "session.logout" => {
                params.only(&[])?;
                self.logon = None;
                self.subscriptions.retain(|_, s| !s.from_logon);
                Ok(self.status(conn))
            }
            "userDataStream.subscribe" => {
                params.only(&[])?;
                let logon = self.logon.as_ref().ok_or_else(not_logged_on)?;
                if gw.keys.is_revoked(&logon.caller.api_key).await {
                    self.logon = None;
                    return Err(revoked());
                }
                let caller = logon.caller.clone();
                self.start(&gw.market, caller, true)
            }
            "userDataStream.subscribe.signature" => {
                params.only(&SIGNED_PARAMS)?;
                let caller = verify_signed(gw, params).await?;
                self.start(&gw.market, caller, false)
            }
            _ => {
                params.only(&["subscriptionId"])?;
                self.unsubscribe(params.get("subscriptionId"))
            }
        }
    }

    fn start(
        &mut self,
        market: &std::sync::Arc<crate::MarketData>,
        caller: Caller,
        from_logon: bool,
    ) -> Result<Value, ApiError> {
        if let Some(id) = self
            .subscriptions
            .iter()
            .find(|(_, s)| s.user == caller.user)
            .map(|(id, _)| *id)
        {
            return Err(ApiError::new(
                code::UNSUPPORTED_OPERATION,
                format!("This account already has a subscription on this connection: {id}."),
            )
            .with_status(axum::http::StatusCode::BAD_REQUEST));
        }
        if self.subscriptions.len() >= MAX_ACTIVE || self.started >= MAX_STARTED {
            return Err(ApiError::new(
                code::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "At most {MAX_ACTIVE} active subscriptions, and {MAX_STARTED} in all, per connection."
                ),
            ));
        }
        let id = self.started;
        self.started += 1;
        self.subscriptions.insert(
            id,
            Subscription {
                user: caller.user,
                api_key: caller.api_key,
                from_logon,
                _watch: market.watch_user(caller.user),
            },
        );
        Ok(json!({"subscriptionId": id}))
    }

    /// Ends one subscription, if it exists, or all of them.
    fn unsubscribe(&mut self, id: Option<&str>) -> Result<Value, ApiError> {
        match id {
            None => self.subscriptions.clear(),
            Some(id) => {
                let id: u32 = id.parse().map_err(|_| {
                    ApiError::new(code::ILLEGAL_CHARS, "subscriptionId must be an integer.")
                })?;
                self.subscriptions.remove(&id);
            }
        }
        Ok(json!({}))
    }

    /// `session.status`'s answer (and `logon`'s and `logout`'s).
    fn status(&self, conn: &Conn) -> Value {
        json!({
            "apiKey": self.logon.as_ref().map(|l| l.caller.api_key.clone()),
            "authorizedSince": self.logon.as_ref().map(|l| l.since),
            "connectedSince": conn.connected_since,
            "returnRateLimits": conn.return_rate_limits,
            "serverTime": now_ms(),
            "userDataStream": !self.subscriptions.is_empty(),
        })
    }
}

/// The event that tells a client its subscription ended.
fn terminated(id: u32) -> String {
    format!(
        "{{\"subscriptionId\":{id},\"event\":{{\"e\":\"eventStreamTerminated\",\"E\":{}}}}}",
        now_ms()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: u64, key: &str) -> Caller {
        Caller {
            user: UserId(user),
            api_key: key.into(),
        }
    }

    fn market() -> std::sync::Arc<crate::MarketData> {
        std::sync::Arc::new(crate::MarketData::new(&[], 16))
    }

    #[test]
    fn subscriptions_are_numbered_once_per_account_and_wrap_events() {
        let m = market();
        let watched = |u| m.topics().watched(&crate::Topic::User(UserId(u)));
        let mut s = Session::default();
        assert_eq!(
            s.start(&m, caller(1, "a"), false).unwrap()["subscriptionId"],
            0
        );
        assert_eq!(
            s.start(&m, caller(2, "b"), true).unwrap()["subscriptionId"],
            1
        );
        assert!(watched(1) && watched(2) && !watched(3));
        let again = s.start(&m, caller(1, "a2"), false).unwrap_err();
        assert_eq!(again.code, code::UNSUPPORTED_OPERATION);
        assert_eq!(
            s.events_for(UserId(2), r#"{"e":"executionReport"}"#),
            vec![r#"{"subscriptionId":1,"event":{"e":"executionReport"}}"#.to_string()]
        );
        assert!(s.events_for(UserId(3), "{}").is_empty());
        // One by id (an unknown id changes nothing), then all.
        s.unsubscribe(Some("9")).unwrap();
        s.unsubscribe(Some("0")).unwrap();
        assert!(s.events_for(UserId(1), "{}").is_empty());
        assert!(
            !watched(1) && watched(2),
            "reports are made for watched users only"
        );
        assert_eq!(
            s.unsubscribe(Some("x")).unwrap_err().code,
            code::ILLEGAL_CHARS
        );
        s.unsubscribe(None).unwrap();
        assert!(!s.holds_keys());
        assert!(!watched(2));
        // Ids are never reused.
        assert_eq!(
            s.start(&m, caller(1, "a"), false).unwrap()["subscriptionId"],
            2
        );
    }

    #[test]
    fn a_connection_starts_a_bounded_number_of_subscriptions() {
        let mut s = Session {
            started: MAX_STARTED,
            ..Session::default()
        };
        let e = s.start(&market(), caller(1, "a"), false).unwrap_err();
        assert_eq!(e.code, code::TOO_MANY_SUBSCRIPTIONS);
    }

    #[test]
    fn the_termination_event_is_json() {
        let v: Value = serde_json::from_str(&terminated(4)).unwrap();
        assert_eq!(v["subscriptionId"], 4);
        assert_eq!(v["event"]["e"], "eventStreamTerminated");
    }
}
