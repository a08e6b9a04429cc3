//! User data streams opened by a listen key (`/ws/<listenKey>`,
//! `/stream?streams=<listenKey>`, or a SUBSCRIBE of it): what a session
//! checks while it carries one.
//!
//! Every [`CHECK_EVERY`] the session asks whether each of its keys still
//! holds: the API key that made it must not be revoked (the key cache
//! answers within 1 s of a revocation, without a query), and the key must
//! not be closed or expired. The store is asked again only every
//! [`STORE_EVERY`], or once the expiry it last gave has passed (a keepalive
//! through another gateway may have moved it), so a thousand user streams
//! cost a few hundred small queries a second.

use std::collections::HashMap;
use std::time::Duration;

use proto::UserId;
use tokio::time::Instant;

use crate::Gateway;
use crate::rest::userstream::listen_key_owner;

/// How often a session with a user stream checks its keys: as often as
/// the key cache refreshes, so a revocation ends the stream within 1 s.
pub(super) const CHECK_EVERY: Duration = crate::auth::KEY_REFRESH;
/// How often the store is asked about a key that has not expired yet: a
/// closed key's stream stops within this.
const STORE_EVERY: Duration = Duration::from_secs(3);

/// What became of a listen key since the last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lapse {
    /// Its time ran out: the stream gets `listenKeyExpired`, then nothing.
    Expired(String, UserId),
    /// Closed by its owner (`DELETE`) or replaced: the stream just stops.
    Closed(String, UserId),
    /// The API key that made it was revoked: the connection is closed.
    Revoked,
}

/// What the session knows of one key.
#[derive(Debug)]
struct Known {
    api_key: String,
    expires_at: u64,
    asked: Instant,
}

/// The listen keys of one session.
#[derive(Debug, Default)]
pub(super) struct ListenKeys {
    known: HashMap<String, Known>,
}

impl ListenKeys {
    /// Checks each of `keys` (`(listen key, user)`); returns what lapsed.
    pub(super) async fn check(&mut self, gw: &Gateway, keys: &[(String, UserId)]) -> Vec<Lapse> {
        self.known
            .retain(|k, _| keys.iter().any(|(key, _)| key == k));
        let mut lapsed = Vec::new();
        let now = Instant::now();
        let now_ms = crate::now_ms();
        for (key, user) in keys {
            let stale = self.known.get(key).is_none_or(|k| {
                now.duration_since(k.asked) >= STORE_EVERY || k.expires_at <= now_ms
            });
            if stale {
                match gw.store.listen_key(key).await {
                    Ok(Some(found)) if found.user == *user => {
                        self.known.insert(
                            key.clone(),
                            Known {
                                api_key: found.api_key,
                                expires_at: found.expires_at,
                                asked: now,
                            },
                        );
                    }
                    Ok(_) => {
                        lapsed.push(Lapse::Closed(key.clone(), *user));
                        continue;
                    }
                    // A store that does not answer ends nothing; asked
                    // again at the next check.
                    Err(_) => continue,
                }
            }
            let Some(k) = self.known.get(key) else {
                continue;
            };
            if gw.keys.is_revoked(&k.api_key).await {
                lapsed.push(Lapse::Revoked);
            } else if k.expires_at <= now_ms {
                lapsed.push(Lapse::Expired(key.clone(), *user));
            }
        }
        lapsed
    }
}

/// The topic a listen key opens, while it is valid.
pub(super) async fn resolve(gw: &Gateway, name: &str) -> Option<crate::Topic> {
    let key = listen_key_owner(gw, name).await.ok()??;
    Some(crate::Topic::User(key.user))
}
