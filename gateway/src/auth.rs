//! Signed requests, Binance style: the API key in the `X-API-KEY` header;
//! `timestamp` (milliseconds) and optional `recvWindow` in the query string;
//! `signature` last in the query string, the hex HMAC-SHA256, keyed by the
//! secret, of everything before `&signature=` followed by the raw body.

use std::collections::HashMap;
use std::sync::RwLock;

use hmac::{Hmac, Mac};
use proto::UserId;
use sha2::Sha256;
use store::Store;

use crate::errors::{ApiError, code};

/// Header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Longest receive window a request may ask for, in milliseconds.
pub(crate) const MAX_RECV_WINDOW_MS: u64 = 60_000;

/// Receive window when the request names none, in milliseconds.
pub(crate) const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;

/// An HMAC-SHA256 keyed by `secret`.
fn keyed(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// The hex HMAC-SHA256 of `payload` under `secret`.
pub fn sign(secret: &str, payload: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Known keys, cached after their first use; keys are never changed in
/// place, only created and revoked.
#[derive(Debug)]
pub struct KeyCache {
    store: Store,
    keys: RwLock<HashMap<String, (String, UserId)>>,
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
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        KeyCache {
            store,
            keys: RwLock::default(),
        }
    }

    async fn lookup(&self, key: &str) -> Result<(String, UserId), ApiError> {
        if let Some(hit) = self.keys.read().ok().and_then(|k| k.get(key).cloned()) {
            return Ok(hit);
        }
        let found = self.store.api_key(key).await.map_err(ApiError::internal)?;
        let found =
            found.ok_or_else(|| ApiError::new(code::UNKNOWN_API_KEY, "Invalid API key."))?;
        if let Ok(mut k) = self.keys.write() {
            k.insert(key.to_string(), found.clone());
        }
        Ok(found)
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
        let api_key = api_key
            .filter(|k| {
                !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .ok_or_else(|| {
                ApiError::new(
                    code::BAD_API_KEY_FORMAT,
                    "Missing or malformed X-API-KEY header.",
                )
            })?;
        let (signed, signature) = query
            .rsplit_once("&signature=")
            .or_else(|| query.strip_prefix("signature=").map(|s| ("", s)))
            .ok_or_else(|| {
                ApiError::new(
                    code::MISSING_PARAM,
                    "Mandatory parameter 'signature' was not sent; it must come last.",
                )
            })?;
        let mut timestamp = None;
        let mut window = DEFAULT_RECV_WINDOW_MS;
        for (k, v) in signed.split('&').filter_map(|kv| kv.split_once('=')) {
            match k {
                "timestamp" => timestamp = v.parse::<u64>().ok(),
                "recvWindow" => {
                    window = v
                        .parse::<u64>()
                        .ok()
                        .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
                        .ok_or_else(|| {
                            ApiError::new(
                                code::BAD_NUMBER,
                                format!("recvWindow must be 1 to {MAX_RECV_WINDOW_MS} ms."),
                            )
                        })?
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| {
            ApiError::new(
                code::MISSING_PARAM,
                "Mandatory parameter 'timestamp' was not sent or is not a number.",
            )
        })?;
        // Binance's rule: not more than 1 s ahead, not older than the window.
        if timestamp > now_ms + 1_000 || now_ms.saturating_sub(timestamp) > window {
            return Err(ApiError::new(
                code::STALE_TIMESTAMP,
                "Timestamp for this request is outside of the recvWindow.",
            ));
        }
        let (secret, user) = self.lookup(api_key).await?;
        let expected = hex::decode(signature).map_err(|_| {
            ApiError::new(
                code::BAD_SIGNATURE,
                "Signature for this request is not valid.",
            )
        })?;
        let mut mac = keyed(&secret);
        mac.update(signed.as_bytes());
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&expected).map_err(|_| {
            ApiError::new(
                code::BAD_SIGNATURE,
                "Signature for this request is not valid.",
            )
        })?;
        Ok(Caller {
            user,
            api_key: api_key.to_string(),
        })
    }
}
