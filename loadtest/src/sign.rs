//! Request signing as the gateway checks it: `timestamp` (ms) appended to
//! the query, then `signature`, the hex HMAC-SHA256 keyed by the secret of
//! the query before `&signature=` followed by the raw body.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An API key and its secret.
#[derive(Clone)]
pub struct Credentials {
    /// The public key, sent as `X-API-KEY`.
    pub api_key: String,
    /// The signing secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// A user's signer: the HMAC is keyed once and cloned per request, which
/// saves hashing the key every time.
#[derive(Clone)]
pub struct Signer {
    /// The API key.
    pub api_key: String,
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Signer {
    /// A signer for `c`.
    pub fn new(c: &Credentials) -> Signer {
        Signer {
            api_key: c.api_key.clone(),
            keyed: Hmac::<Sha256>::new_from_slice(c.secret.as_bytes())
                .expect("HMAC takes keys of any length"),
        }
    }

    /// The path and signed query for `path?query` with `body` at
    /// `timestamp_ms`: `PATH?QUERY&timestamp=T&signature=HEX`.
    pub fn sign(&self, path: &str, query: &str, body: &[u8], timestamp_ms: u64) -> String {
        let mut out = String::with_capacity(path.len() + query.len() + 100);
        out.push_str(path);
        out.push('?');
        let signed_from = out.len();
        if !query.is_empty() {
            out.push_str(query);
            out.push('&');
        }
        out.push_str("timestamp=");
        out.push_str(&timestamp_ms.to_string());
        let mut mac = self.keyed.clone();
        mac.update(&out.as_bytes()[signed_from..]);
        mac.update(body);
        out.push_str("&signature=");
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_gateway_checks() {
        let c = Credentials {
            api_key: "k".into(),
            secret: "s3cret".into(),
        };
        let s = Signer::new(&c);
        let body = br#"{"symbol":"BTC-EUR"}"#;
        let url = s.sign("/api/v1/order", "", body, 1_700_000_000_000);
        let expected = gateway::sign("s3cret", b"timestamp=1700000000000{\"symbol\":\"BTC-EUR\"}");
        assert_eq!(
            url,
            format!("/api/v1/order?timestamp=1700000000000&signature={expected}")
        );
        let url = s.sign("/api/v1/order", "symbol=BTC-EUR&orderId=7", b"", 5);
        let expected = gateway::sign("s3cret", b"symbol=BTC-EUR&orderId=7&timestamp=5");
        assert_eq!(
            url,
            format!("/api/v1/order?symbol=BTC-EUR&orderId=7&timestamp=5&signature={expected}")
        );
    }
}
