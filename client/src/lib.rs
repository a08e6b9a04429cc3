//! A client of the exchange's REST API (Binance's `/api/v3`) that signs
//! requests by Binance's rules: parameters in the query string or a form
//! body, `timestamp` and `signature` last in the query string, the
//! signature over the query before it followed by the body.

pub use clientkit::Credentials;
use clientkit::{ADMIN_KEY_HEADER, API_KEY_HEADER, now_ms};
pub use reqwest::{Client as HttpClient, Method, StatusCode};
use serde_json::Value;

/// An answer: the HTTP status and the JSON body (or the text as a string).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Retry-After` header, when sent.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> Option<i64> {
        self.body["code"].as_i64()
    }
}

/// A client of one exchange.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// The header the key goes in: a trader's or an operator's.
    key_header: &'static str,
    /// How a body's parameters are sent: a form to `/api/v3`, JSON to the
    /// operators' `/admin/v1`.
    json_bodies: bool,
}

impl Client {
    /// A client of the exchange at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, credentials: Option<Credentials>) -> Self {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            credentials,
            key_header: API_KEY_HEADER,
            json_bodies: false,
        }
    }

    /// A client of the operators' API (`/admin/v1/...`) at `base`: the
    /// same signing, with an admin key in the admin key header.
    pub fn admin(base: &str, credentials: Credentials) -> Self {
        Client {
            key_header: ADMIN_KEY_HEADER,
            json_bodies: true,
            ..Client::new(base, Some(credentials))
        }
    }

    /// The same exchange with other credentials.
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        Client {
            credentials: Some(credentials),
            ..self.clone()
        }
    }

    /// The API key in use, if any.
    pub fn api_key(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.api_key.as_str())
    }

    /// An unsigned `GET` of `path?query`.
    pub async fn get(&self, path: &str, query: &str) -> Result<Answer, reqwest::Error> {
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        Self::answer(self.http.get(url).send().await?).await
    }

    /// A signed request: `query` is `k=v&k=v` (may be empty); `body`, a
    /// JSON object of parameters, is sent form-encoded, as Binance's
    /// clients send `POST` and `PUT` parameters (as JSON by an operators'
    /// client, [`Client::admin`]).
    pub async fn signed(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Result<Answer, reqwest::Error> {
        let body = match body {
            Some(b) if self.json_bodies => b.to_string(),
            Some(b) => form(b),
            None => String::new(),
        };
        self.signed_raw(method, path, query, &body, now_ms()).await
    }

    /// A signed request with a raw body (a form, or JSON from an operators'
    /// client) and an explicit timestamp: for tests of what the gateway
    /// refuses.
    pub async fn signed_raw(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: &str,
        timestamp_ms: u64,
    ) -> Result<Answer, reqwest::Error> {
        let (key, signed) = match &self.credentials {
            Some(c) => (
                c.api_key.clone(),
                clientkit::Signer::new(c).signed_query(query, body.as_bytes(), timestamp_ms),
            ),
            // Unsigned on purpose: what the gateway says to a request
            // without a key.
            None => {
                let mut q = query.to_string();
                if !q.is_empty() {
                    q.push('&');
                }
                q.push_str(&format!("timestamp={timestamp_ms}&signature="));
                (String::new(), q)
            }
        };
        let url = format!("{}{path}?{signed}", self.base);
        let mut req = self.http.request(method, url).header(self.key_header, key);
        if !body.is_empty() {
            let content_type = if self.json_bodies {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            };
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        Self::answer(req.send().await?).await
    }

    async fn answer(resp: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// `POST /api/v3/order` with `order`'s fields as its parameters.
    pub async fn place(&self, order: &Value) -> Result<Answer, reqwest::Error> {
        self.signed(Method::POST, "/api/v3/order", "", Some(order))
            .await
    }

    /// The exchange's base URL (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether requests are signed (the client holds a key).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The WebSocket URL of this exchange's raw streams (`/ws`).
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    /// The URL of the combined streams `streams` (`/stream?streams=a/b`):
    /// market stream names, or a listen key for the user's events.
    pub fn stream_url(&self, streams: &[&str]) -> String {
        format!(
            "{}/stream?streams={}",
            self.base.replacen("http", "ws", 1),
            streams.join("/")
        )
    }

    /// `POST /api/v3/userDataStream` (the API key alone, unsigned): the
    /// listen key that opens the user's event stream.
    pub async fn listen_key(&self) -> Result<Answer, reqwest::Error> {
        let key = self
            .credentials
            .as_ref()
            .map_or(String::new(), |c| c.api_key.clone());
        let url = format!("{}/api/v3/userDataStream", self.base);
        Self::answer(
            self.http
                .post(url)
                .header(self.key_header, key)
                .send()
                .await?,
        )
        .await
    }
}

/// A JSON object's fields as a form body, `k=v&k=v`: strings as they are,
/// other values as JSON writes them (`7`, `true`), each percent-encoded;
/// `null` fields are left out.
pub fn form(fields: &Value) -> String {
    let Some(map) = fields.as_object() else {
        return String::new();
    };
    let pairs: Vec<(&str, String)> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.as_str(), text)
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}
