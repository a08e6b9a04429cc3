//! Signed requests, by Binance's rules: the API key in the `X-MBX-APIKEY`
//! header; `timestamp` (milliseconds) and optional `recvWindow` among the
//! parameters; `signature` in the query string or the body, the hex
//! HMAC-SHA256, keyed by the secret, of the query string followed by the
//! body, each without the `signature` parameter.
//!
//! Operators' requests (`/admin/v1/...`) are signed the same way with an
//! admin key in the `X-ADMIN-KEY` header. Each header is checked against
//! its own table through its own cache, so a trading key is unknown to
//! the admin API and an admin key unknown to the trading API.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hmac::Mac;
use proto::UserId;
use store::Store;
use tokio::sync::Semaphore;

use crate::errors::{ApiError, code};

// The header and the signature are clientkit's, so the gateway checks
// exactly what clients produce.
pub use clientkit::{ADMIN_KEY_HEADER, API_KEY_HEADER, sign};

/// Longest receive window a request may ask for, in milliseconds.
pub(crate) const MAX_RECV_WINDOW_MS: u64 = 60_000;

/// Receive window when the request names none, in milliseconds.
pub(crate) const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;

/// Age after which a cached answer about a key (its secret, or that it
/// does not exist) is asked again, in the background: the request that
/// notices is still answered from the cache, so a key in use never waits
/// for the store. Revocation deletes the key's row, by any process
/// (`exchange keys revoke`, another gateway's operator); a key in use sees
/// it within this plus one store query.
pub(crate) const KEY_REFRESH: Duration = Duration::from_millis(300);

/// Age after which a cached answer is not used at all: the request asks
/// the store and waits. So no answer older than this is ever trusted, and
/// a revoked key stops within it everywhere, well inside the promised
/// second, whether it was in use or not.
pub(crate) const KEY_EXPIRY: Duration = Duration::from_millis(800);

/// Cached answers at most: an entry older than [`KEY_EXPIRY`] is worthless
/// (it is asked again anyway), so a full cache first drops those, and when
/// all are fresh a new answer is not cached. This bounds what a flood of
/// made-up keys can make the gateway hold.
const MAX_CACHED_KEYS: usize = 65_536;

/// How long a background refresh waits for more keys to come due before
/// it asks the store about all of them in one query. Keys refreshed
/// together come due together again, so the keys in use are refreshed by
/// about one query per [`KEY_REFRESH`], not one per key.
const KEY_GATHER: Duration = Duration::from_millis(50);

// A refreshed answer arrives before its entry expires.
const _: () =
    assert!(KEY_REFRESH.as_millis() + 2 * KEY_GATHER.as_millis() < KEY_EXPIRY.as_millis());

/// Store queries for keys in flight at once, per gateway: a flood of
/// unknown keys costs the store at most this many concurrent point
/// queries, and requests for the same stale key wait for the first one's
/// answer instead of asking again.
const MAX_KEY_LOOKUPS: usize = 4;

/// Which table a cache's keys live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// `api_keys`: a user's trading keys.
    Trading,
    /// `admin_keys`: operators' keys.
    Admin,
}

/// Who a key acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// A trading key's account.
    User(UserId),
    /// An admin key's holder, by name.
    Operator(String),
}

/// A key's secret and holder.
type Found = Option<(String, Holder)>;

/// What the store said about a key, and when.
#[derive(Debug, Clone)]
struct Cached {
    found: Found,
    checked: Instant,
}

/// Keys as the store knew them at most [`KEY_EXPIRY`] ago, known and
/// unknown alike: a request costs a map lookup, and the keys in use about
/// one background store query per [`KEY_REFRESH`], all together.
#[derive(Debug)]
pub struct KeyCache {
    store: Store,
    kind: KeyKind,
    shared: Arc<Shared>,
}

/// An authenticated operator (an admin key's holder).
#[derive(Debug, Clone)]
pub struct Operator {
    /// The name the key was created for.
    pub name: String,
    /// The key used, for rate limits.
    pub admin_key: String,
}

/// What `kind`'s table says about each of `keys` it holds.
async fn fetch(
    store: &Store,
    kind: KeyKind,
    keys: &[String],
) -> Result<HashMap<String, (String, Holder)>, store::StoreError> {
    Ok(match kind {
        KeyKind::Trading => store
            .api_keys(keys)
            .await?
            .into_iter()
            .map(|(key, (secret, user))| (key, (secret, Holder::User(user))))
            .collect(),
        KeyKind::Admin => store
            .admin_keys(keys)
            .await?
            .into_iter()
            .map(|(key, (secret, name))| (key, (secret, Holder::Operator(name))))
            .collect(),
    })
}

/// What the background refreshes share with the cache.
#[derive(Debug)]
struct Shared {
    keys: RwLock<HashMap<String, Cached>>,
    lookups: Semaphore,
    /// Keys in use whose answer is due for a refresh.
    due: Mutex<Due>,
}

/// Keys waiting for the next background refresh.
#[derive(Debug, Default)]
struct Due {
    keys: HashSet<String>,
    /// A refresh is gathering them: it takes them all when it asks.
    gathering: bool,
}

impl Shared {
    /// The cached answer for `key` and its age, if younger than [`KEY_EXPIRY`].
    fn cached(&self, key: &str, now: Instant) -> Option<(Found, Duration)> {
        let keys = self.keys.read().ok()?;
        let hit = keys.get(key)?;
        let age = now.saturating_duration_since(hit.checked);
        (age < KEY_EXPIRY).then(|| (hit.found.clone(), age))
    }

    fn remember(&self, key: &str, found: Found, now: Instant) {
        let Ok(mut keys) = self.keys.write() else {
            return;
        };
        if keys.len() >= MAX_CACHED_KEYS && !keys.contains_key(key) {
            keys.retain(|_, c| now.saturating_duration_since(c.checked) < KEY_EXPIRY);
            if keys.len() >= MAX_CACHED_KEYS {
                return;
            }
        }
        keys.insert(
            key.to_string(),
            Cached {
                found,
                checked: now,
            },
        );
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account.
    pub user: UserId,
    /// The key used, for rate limits.
    pub api_key: String,
}

impl KeyCache {
    /// An empty cache of trading keys over `store`.
    pub fn new(store: Store) -> Self {
        KeyCache::of(store, KeyKind::Trading)
    }

    /// An empty cache of admin keys over `store`.
    pub fn admin(store: Store) -> Self {
        KeyCache::of(store, KeyKind::Admin)
    }

    fn of(store: Store, kind: KeyKind) -> Self {
        KeyCache {
            store,
            kind,
            shared: Arc::new(Shared {
                keys: RwLock::default(),
                lookups: Semaphore::new(MAX_KEY_LOOKUPS),
                due: Mutex::default(),
            }),
        }
    }

    /// The error for a key this cache's table does not hold.
    fn unknown(&self) -> ApiError {
        match self.kind {
            KeyKind::Trading => ApiError::new(code::UNKNOWN_API_KEY, "Invalid API key."),
            KeyKind::Admin => ApiError::new(code::UNKNOWN_ADMIN_KEY, "Invalid admin key."),
        }
    }

    async fn lookup(&self, key: &str) -> Result<(String, Holder), ApiError> {
        let unknown = || self.unknown();
        if let Some((found, age)) = self.shared.cached(key, Instant::now()) {
            if age >= KEY_REFRESH {
                self.refresh_in_background(key);
            }
            return found.ok_or_else(unknown);
        }
        let shared = &self.shared;
        let _permit = shared.lookups.acquire().await.map_err(ApiError::internal)?;
        // Another request may have asked while this one waited.
        if let Some((found, _)) = shared.cached(key, Instant::now()) {
            return found.ok_or_else(unknown);
        }
        let found = fetch(&self.store, self.kind, &[key.to_string()])
            .await
            .map_err(ApiError::internal)?
            .remove(key);
        shared.remember(key, found.clone(), Instant::now());
        found.ok_or_else(unknown)
    }

    /// Asks the store about `key` again without anyone waiting: with
    /// every other key that comes due within [`KEY_GATHER`], in one query.
    /// A failed refresh changes nothing: the entries then expire and the
    /// next request for each asks itself.
    fn refresh_in_background(&self, key: &str) {
        let Ok(mut due) = self.shared.due.lock() else {
            return;
        };
        if !due.keys.insert(key.to_string()) || due.gathering {
            return;
        }
        due.gathering = true;
        drop(due);
        let (store, shared, kind) = (self.store.clone(), self.shared.clone(), self.kind);
        tokio::spawn(async move {
            tokio::time::sleep(KEY_GATHER).await;
            let keys: Vec<String> = match shared.due.lock() {
                Ok(mut due) => {
                    due.gathering = false;
                    std::mem::take(&mut due.keys).into_iter().collect()
                }
                Err(_) => return,
            };
            if let Ok(_permit) = shared.lookups.acquire().await
                && let Ok(mut found) = fetch(&store, kind, &keys).await
            {
                let now = Instant::now();
                for key in &keys {
                    shared.remember(key, found.remove(key), now);
                }
            }
        });
    }

    /// True once the store no longer knows `key` (it was revoked), as seen
    /// within [`KEY_EXPIRY`]. A store that does not answer revokes nothing.
    pub(crate) async fn is_revoked(&self, key: &str) -> bool {
        let unknown = self.unknown().code;
        matches!(self.lookup(key).await, Err(e) if e.code == unknown)
    }

    /// Checks a signed request: `api_key` from the header, the raw query
    /// string and body; `now_ms` is the server's clock. Public for
    /// benchmarks of the request path.
    pub async fn verify(
        &self,
        api_key: Option<&str>,
        query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Caller, ApiError> {
        match self.check(api_key, query, body, now_ms).await? {
            (api_key, Holder::User(user)) => Ok(Caller { user, api_key }),
            (_, Holder::Operator(_)) => Err(self.unknown()),
        }
    }

    /// The holder of a trading key sent alone, unsigned: Binance's
    /// USER_STREAM security type (listen keys).
    pub(crate) async fn holder(&self, api_key: Option<&str>) -> Result<Caller, ApiError> {
        let api_key = api_key.filter(|k| is_key_form(k)).ok_or_else(|| {
            ApiError::new(
                code::BAD_API_KEY_FORMAT,
                "Missing or malformed X-MBX-APIKEY header.",
            )
        })?;
        match self.lookup(api_key).await? {
            (_, Holder::User(user)) => Ok(Caller {
                user,
                api_key: api_key.to_string(),
            }),
            (_, Holder::Operator(_)) => Err(self.unknown()),
        }
    }

    /// Checks a signed admin request, as [`KeyCache::verify`] checks a
    /// trading one; only a cache made by [`KeyCache::admin`] knows admin keys.
    pub async fn verify_admin(
        &self,
        admin_key: Option<&str>,
        query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Operator, ApiError> {
        match self.check(admin_key, query, body, now_ms).await? {
            (admin_key, Holder::Operator(name)) => Ok(Operator { name, admin_key }),
            (_, Holder::User(_)) => Err(self.unknown()),
        }
    }

    /// The key and its holder, once the request's form, freshness and
    /// signature are checked.
    async fn check(
        &self,
        api_key: Option<&str>,
        query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(String, Holder), ApiError> {
        let header = match self.kind {
            KeyKind::Trading => "X-MBX-APIKEY",
            KeyKind::Admin => "X-ADMIN-KEY",
        };
        let signed = signed_query_for(header, api_key, query, body, now_ms)?;
        let (secret, holder) = self.lookup(signed.api_key).await?;
        let expected = hex::decode(signed.signature).map_err(|_| {
            ApiError::new(
                code::BAD_SIGNATURE,
                "Signature for this request is not valid.",
            )
        })?;
        let mut mac = clientkit::keyed(&secret);
        for part in signed.payload() {
            mac.update(part);
        }
        // Constant-time comparison.
        mac.verify_slice(&expected).map_err(|_| {
            ApiError::new(
                code::BAD_SIGNATURE,
                "Signature for this request is not valid.",
            )
        })?;
        Ok((signed.api_key.to_string(), holder))
    }
}

/// The parts of a signed request that the signature covers, checked for
/// form and freshness (everything but the key's secret).
#[derive(Debug)]
pub(crate) struct SignedQuery<'a> {
    pub(crate) api_key: &'a str,
    /// The query string without its `signature` parameter.
    pub(crate) query: Cow<'a, str>,
    /// The body without its `signature` parameter.
    pub(crate) body: Cow<'a, [u8]>,
    /// The hex signature.
    pub(crate) signature: &'a str,
}

impl SignedQuery<'_> {
    /// What the signature covers: Binance's `totalParams`, the query
    /// string followed by the body with nothing between them.
    fn payload(&self) -> [&[u8]; 2] {
        [self.query.as_bytes(), &self.body]
    }
}

/// Checks the key's form, splits off the signature and checks `timestamp`
/// and `recvWindow` against `now_ms`: no store, so the fuzz target of the
/// request path runs it as the handler does.
pub(crate) fn signed_query<'a>(
    api_key: Option<&'a str>,
    query: &'a str,
    body: &'a [u8],
    now_ms: u64,
) -> Result<SignedQuery<'a>, ApiError> {
    signed_query_for("X-MBX-APIKEY", api_key, query, body, now_ms)
}

/// `s` without its `signature=` parameter, and the signature; `None` when
/// it has none.
fn split_signature(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut start = 0;
    for part in s.split('&') {
        let end = start + part.len();
        if let Some(sig) = part.strip_prefix("signature=") {
            let rest = if start == 0 {
                Cow::Borrowed(s.get(end + 1..).unwrap_or(""))
            } else if end == s.len() {
                Cow::Borrowed(&s[..start - 1])
            } else {
                Cow::Owned(format!("{}{}", &s[..start], &s[end + 1..]))
            };
            return Some((rest, sig));
        }
        start = end + 1;
    }
    None
}

/// A request's query string and body without the signature, and the
/// signature.
type Unsigned<'a> = (Cow<'a, str>, Cow<'a, [u8]>, &'a str);

/// The signature from the query string or, failing that, the body
/// (Binance takes it in either), and both without it.
fn signature_of<'a>(query: &'a str, body: &'a [u8]) -> Result<Unsigned<'a>, ApiError> {
    if let Some((rest, sig)) = split_signature(query) {
        return Ok((rest, Cow::Borrowed(body), sig));
    }
    let form = std::str::from_utf8(body).unwrap_or("");
    match split_signature(form) {
        Some((rest, sig)) => Ok((Cow::Borrowed(query), bytes(rest), sig)),
        None => Err(ApiError::new(
            code::MISSING_PARAM,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        )),
    }
}

fn bytes(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
        Cow::Owned(o) => Cow::Owned(o.into_bytes()),
    }
}

/// `timestamp` and `recvWindow` from the signed parameters: the query
/// first, then the body.
fn freshness(query: &str, body: &[u8]) -> Result<(Option<u64>, u64), ApiError> {
    let form = std::str::from_utf8(body).unwrap_or("");
    let mut timestamp = None;
    let mut window = None;
    for (k, v) in query
        .split('&')
        .chain(form.split('&'))
        .filter_map(|kv| kv.split_once('='))
    {
        match k {
            "timestamp" if timestamp.is_none() => timestamp = v.parse::<u64>().ok(),
            "recvWindow" if window.is_none() => {
                window = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
                        .ok_or_else(|| {
                            ApiError::new(
                                code::BAD_NUMBER,
                                format!("recvWindow must be 1 to {MAX_RECV_WINDOW_MS} ms."),
                            )
                        })?,
                );
            }
            _ => {}
        }
    }
    Ok((timestamp, window.unwrap_or(DEFAULT_RECV_WINDOW_MS)))
}

/// Checks `timestamp` (mandatory) and `recvWindow` among the parameters
/// of `query` and `body` against `now_ms`. Also the check of a WebSocket
/// API request in a logged-on session, which carries no signature but
/// still its timestamp.
pub(crate) fn check_fresh(query: &str, body: &[u8], now_ms: u64) -> Result<(), ApiError> {
    let (timestamp, window) = freshness(query, body)?;
    let timestamp = timestamp.ok_or_else(|| {
        ApiError::new(
            code::MISSING_PARAM,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        )
    })?;
    // Binance's rule: not more than 1 s ahead, not older than the window.
    if timestamp > now_ms + 1_000 || now_ms.saturating_sub(timestamp) > window {
        return Err(ApiError::new(
            code::STALE_TIMESTAMP,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

/// Whether `k` has the form of a key: 1 to 128 ASCII letters and digits.
fn is_key_form(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// [`signed_query`] with the key from `header` (named in the refusal).
fn signed_query_for<'a>(
    header: &str,
    api_key: Option<&'a str>,
    query: &'a str,
    body: &'a [u8],
    now_ms: u64,
) -> Result<SignedQuery<'a>, ApiError> {
    let api_key = api_key.filter(|k| is_key_form(k)).ok_or_else(|| {
        ApiError::new(
            code::BAD_API_KEY_FORMAT,
            format!("Missing or malformed {header} header."),
        )
    })?;
    let (query, body, signature) = signature_of(query, body)?;
    check_fresh(&query, &body, now_ms)?;
    Ok(SignedQuery {
        api_key,
        query,
        body,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_taken_from_the_query_or_the_body() {
        fn split(q: &str) -> Option<(String, &str)> {
            split_signature(q).map(|(rest, sig)| (rest.into_owned(), sig))
        }
        assert_eq!(split("a=1&signature=ff"), Some(("a=1".into(), "ff")));
        assert_eq!(split("signature=ff&a=1"), Some(("a=1".into(), "ff")));
        assert_eq!(
            split("a=1&signature=ff&b=2"),
            Some(("a=1&b=2".into(), "ff"))
        );
        assert_eq!(split("signature=ff"), Some((String::new(), "ff")));
        assert_eq!(split("a=1&xsignature=ff"), None);
        // Binance's example 3: the query and the body, nothing between.
        let (q, b, sig) = signature_of("symbol=A&side=BUY", b"quantity=1&signature=ab").unwrap();
        assert_eq!(
            (q.as_ref(), b.as_ref(), sig),
            ("symbol=A&side=BUY", &b"quantity=1"[..], "ab")
        );
        let (q, b, sig) = signature_of("a=1&signature=cd", b"b=2").unwrap();
        assert_eq!((q.as_ref(), b.as_ref(), sig), ("a=1", &b"b=2"[..], "cd"));
        assert!(signature_of("a=1", b"b=2").is_err());
    }

    #[test]
    fn freshness_is_read_from_the_body_too() {
        assert_eq!(
            freshness("a=1", b"timestamp=5&recvWindow=10000").ok(),
            Some((Some(5), 10_000))
        );
        assert_eq!(
            freshness("timestamp=7", b"timestamp=5").ok(),
            Some((Some(7), DEFAULT_RECV_WINDOW_MS))
        );
        assert!(freshness("recvWindow=0", b"").is_err());
    }

    #[tokio::test]
    async fn a_form_body_signed_as_python_binance_signs_it_passes() {
        let (keys, store, _dir) = cache().await;
        let key = store.create_api_key("alice", 1).await.unwrap();
        let now = 1_700_000_000_000u64;
        let body = format!("recvWindow=10000&symbol=BTCEUR&timestamp={now}");
        let sig = sign(&key.secret, body.as_bytes());
        let signed = format!("{body}&signature={sig}");
        let ok = keys
            .verify(Some(&key.api_key), "", signed.as_bytes(), now)
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        let tampered = signed.replace("BTCEUR", "ETHEUR");
        let bad = keys
            .verify(Some(&key.api_key), "", tampered.as_bytes(), now)
            .await;
        assert_eq!(bad.map_err(|e| e.code).err(), Some(code::BAD_SIGNATURE));
    }

    async fn cache() -> (KeyCache, Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("keys.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        (KeyCache::new(store.clone()), store, dir)
    }

    async fn check(keys: &KeyCache, key: &str, secret: &str) -> Result<Caller, ApiError> {
        let now = 1_700_000_000_000u64;
        let query = format!("timestamp={now}");
        let sig = sign(secret, query.as_bytes());
        keys.verify(Some(key), &format!("{query}&signature={sig}"), b"", now)
            .await
    }

    #[tokio::test]
    async fn a_revoked_key_in_use_is_refused_after_one_background_refresh() {
        let (keys, store, _dir) = cache().await;
        let k = store.create_api_key("alice", 1).await.unwrap();
        assert_eq!(
            check(&keys, &k.api_key, &k.secret).await.unwrap().user,
            k.user
        );
        assert!(store.revoke_api_key(&k.api_key).await.unwrap());
        // Past the refresh age the cached answer still serves, and starts a
        // refresh in the background...
        tokio::time::sleep(KEY_REFRESH + Duration::from_millis(20)).await;
        assert!(check(&keys, &k.api_key, &k.secret).await.is_ok());
        // ...whose answer the next request sees.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = check(&keys, &k.api_key, &k.secret).await.unwrap_err();
        assert_eq!(refused.code, code::UNKNOWN_API_KEY);
    }

    #[tokio::test]
    async fn keys_in_use_are_refreshed_together() {
        let (keys, store, _dir) = cache().await;
        let a = store.create_api_key("alice", 1).await.unwrap();
        let b = store.create_api_key("bob", 1).await.unwrap();
        for k in [&a, &b] {
            assert!(check(&keys, &k.api_key, &k.secret).await.is_ok());
            assert!(store.revoke_api_key(&k.api_key).await.unwrap());
        }
        tokio::time::sleep(KEY_REFRESH + Duration::from_millis(20)).await;
        // Both stale: the first starts a refresh, the second joins it.
        for k in [&a, &b] {
            assert!(check(&keys, &k.api_key, &k.secret).await.is_ok());
        }
        {
            let due = keys.shared.due.lock().unwrap();
            assert!(due.gathering);
            assert_eq!(due.keys.len(), 2);
        }
        tokio::time::sleep(KEY_GATHER + Duration::from_millis(100)).await;
        for k in [&a, &b] {
            let refused = check(&keys, &k.api_key, &k.secret).await.unwrap_err();
            assert_eq!(refused.code, code::UNKNOWN_API_KEY);
        }
        let due = keys.shared.due.lock().unwrap();
        assert!(!due.gathering && due.keys.is_empty());
    }

    #[tokio::test]
    async fn a_revoked_key_left_unused_is_refused_once_its_entry_expired() {
        let (keys, store, _dir) = cache().await;
        let k = store.create_api_key("alice", 1).await.unwrap();
        assert!(check(&keys, &k.api_key, &k.secret).await.is_ok());
        assert!(store.revoke_api_key(&k.api_key).await.unwrap());
        tokio::time::sleep(KEY_EXPIRY + Duration::from_millis(20)).await;
        let refused = check(&keys, &k.api_key, &k.secret).await.unwrap_err();
        assert_eq!(refused.code, code::UNKNOWN_API_KEY);
    }

    #[tokio::test]
    async fn unknown_keys_are_remembered_and_the_cache_is_bounded() {
        let (keys, _store, _dir) = cache().await;
        let shared = &keys.shared;
        let now = Instant::now();
        for i in 0..MAX_CACHED_KEYS {
            shared.remember(&format!("k{i}"), None, now);
        }
        // An unknown key is answered from memory while fresh.
        assert_eq!(shared.cached("k1", now), Some((None, Duration::ZERO)));
        // Full of fresh entries: a new answer is not kept.
        shared.remember("more", None, now);
        assert_eq!(shared.cached("more", now), None);
        let len = || shared.keys.read().unwrap().len();
        assert_eq!(len(), MAX_CACHED_KEYS);
        // Once they expired they make room.
        shared.remember("later", None, now + KEY_EXPIRY);
        assert_eq!(len(), 1);
        assert_eq!(shared.cached("k1", now + KEY_EXPIRY), None);
    }
}
