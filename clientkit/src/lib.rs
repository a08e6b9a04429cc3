//! What every client of the exchange needs, and the gateway checks against:
//! request signing, the header and query names it reads, credentials, the
//! wall clock requests are stamped with, and decimals at a pair's scale.
//!
//! Signed requests, by Binance's rules: the API key in the
//! [`API_KEY_HEADER`] header; `timestamp` (milliseconds) among the
//! parameters; `signature` the hex HMAC-SHA256, keyed by the secret, of the
//! query string followed by the body. These clients put it last in the
//! query string; the gateway also takes it in a form body.
//!
//! Kept small on purpose: clients (`client`, `loadtest`) link this, `proto`
//! and `workload`, never the gateway's server stack.

pub mod decimal;

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header that carries the API key.
pub const API_KEY_HEADER: &str = "x-mbx-apikey";

/// Header that carries an operator's admin key. Admin requests are signed
/// exactly like trading requests, with the admin key's secret; the gateway
/// checks this header against admin keys only, and [`API_KEY_HEADER`]
/// against trading keys only.
pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

/// Query parameter with the request's time in milliseconds since the epoch.
pub const TIMESTAMP_PARAM: &str = "timestamp";

/// Query parameter with the signature; it must come last.
pub const SIGNATURE_PARAM: &str = "signature";

/// An HMAC-SHA256 keyed by `secret`; clone it to sign many payloads without
/// hashing the key again.
pub fn keyed(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// The hex HMAC-SHA256 of `payload` under `secret`.
pub fn sign(secret: &str, payload: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Milliseconds since the Unix epoch, as requests are stamped with; 0 if
/// the clock is before the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An API key and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The public key, sent as [`API_KEY_HEADER`].
    pub api_key: String,
    /// The signing secret.
    pub secret: String,
}

// The secret stays out of logs and panics.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// The key and secret as `exchange keys create` prints them (lines
    /// `api key: ...` and `secret: ...`); `None` if either is missing.
    pub fn from_printed(output: &str) -> Option<Credentials> {
        let field = |name: &str| {
            output
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        Some(Credentials {
            api_key: field("api key:")?,
            secret: field("secret:")?,
        })
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

impl Signer {
    /// A signer for `c`.
    pub fn new(c: &Credentials) -> Signer {
        Signer {
            api_key: c.api_key.clone(),
            keyed: keyed(&c.secret),
        }
    }

    /// The signed query for `query` with `body` at `timestamp_ms`:
    /// `QUERY&timestamp=T&signature=HEX` (no leading `&` when `query` is
    /// empty).
    pub fn signed_query(&self, query: &str, body: &[u8], timestamp_ms: u64) -> String {
        let mut out = String::with_capacity(query.len() + 100);
        self.push_signed_query(&mut out, query, body, timestamp_ms);
        out
    }

    /// The path and signed query for `path?query` with `body` at
    /// `timestamp_ms`: `PATH?QUERY&timestamp=T&signature=HEX`.
    pub fn sign(&self, path: &str, query: &str, body: &[u8], timestamp_ms: u64) -> String {
        let mut out = String::with_capacity(path.len() + query.len() + 100);
        out.push_str(path);
        out.push('?');
        self.push_signed_query(&mut out, query, body, timestamp_ms);
        out
    }

    fn push_signed_query(&self, out: &mut String, query: &str, body: &[u8], timestamp_ms: u64) {
        let signed_from = out.len();
        if !query.is_empty() {
            out.push_str(query);
            out.push('&');
        }
        out.push_str(TIMESTAMP_PARAM);
        out.push('=');
        out.push_str(&timestamp_ms.to_string());
        let mut mac = self.keyed.clone();
        mac.update(&out.as_bytes()[signed_from..]);
        mac.update(body);
        out.push('&');
        out.push_str(SIGNATURE_PARAM);
        out.push('=');
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_hmac_sha256_in_hex() {
        // The well-known HMAC-SHA256 example.
        assert_eq!(
            sign("key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn signs_as_the_gateway_checks() {
        let c = Credentials {
            api_key: "k".into(),
            secret: "s3cret".into(),
        };
        let s = Signer::new(&c);
        let body = br#"{"symbol":"BTC-EUR"}"#;
        let url = s.sign("/api/v1/order", "", body, 1_700_000_000_000);
        let expected = sign("s3cret", b"timestamp=1700000000000{\"symbol\":\"BTC-EUR\"}");
        assert_eq!(
            url,
            format!("/api/v1/order?timestamp=1700000000000&signature={expected}")
        );
        let url = s.sign("/api/v1/order", "symbol=BTC-EUR&orderId=7", b"", 5);
        let expected = sign("s3cret", b"symbol=BTC-EUR&orderId=7&timestamp=5");
        assert_eq!(
            url,
            format!("/api/v1/order?symbol=BTC-EUR&orderId=7&timestamp=5&signature={expected}")
        );
        assert_eq!(
            s.signed_query("symbol=BTC-EUR&orderId=7", b"", 5),
            format!("symbol=BTC-EUR&orderId=7&timestamp=5&signature={expected}")
        );
    }

    #[test]
    fn credentials_hide_the_secret_and_parse_from_the_cli() {
        let c = Credentials::from_printed("created\napi key: abc\nsecret:  xyz \n").expect("both");
        assert_eq!(c.api_key, "abc");
        assert_eq!(c.secret, "xyz");
        assert!(!format!("{c:?}").contains("xyz"));
        assert!(Credentials::from_printed("api key: abc\n").is_none());
    }
}
