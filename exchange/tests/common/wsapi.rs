//! A client of the WebSocket API (`/ws-api/v3`) for the tests: requests
//! in Binance's envelope, answers by id, signatures of sorted params.

use std::time::Duration;

use client::Credentials;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsApi {
    pub ws: Socket,
    /// Frames read while waiting for another.
    pub seen: Vec<Value>,
}

impl WsApi {
    pub async fn connect(ex: &super::TestExchange) -> WsApi {
        let url = format!("{}/ws-api/v3", ex.url.replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        WsApi {
            ws,
            seen: Vec::new(),
        }
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends `texts` in one write, so that the server has them all at once.
    pub async fn send_burst(&mut self, texts: impl IntoIterator<Item = String>) {
        for text in texts {
            self.ws.feed(Message::text(text)).await.unwrap();
        }
        self.ws.flush().await.unwrap();
    }

    pub async fn send(&mut self, id: Value, method: &str, params: Value) {
        let req = json!({"id": id, "method": method, "params": params});
        self.send_text(req.to_string()).await;
    }

    /// The next JSON frame, waiting at most 5 s.
    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("the connection is open")
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).unwrap();
            }
        }
    }

    /// The answer to request `id` (frames before it are kept in `seen`).
    pub async fn answer(&mut self, id: &Value) -> Value {
        if let Some(i) = self.seen.iter().position(|v| &v["id"] == id) {
            return self.seen.remove(i);
        }
        loop {
            let v = self.next().await;
            if &v["id"] == id && v.get("status").is_some() {
                return v;
            }
            self.seen.push(v);
        }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = json!(format!("{method}-{}", super::now_ms()));
        self.send(id.clone(), method, params).await;
        self.answer(&id).await
    }

    pub async fn signed(&mut self, method: &str, params: Value, who: &Credentials) -> Value {
        self.call(method, sign(params, who)).await
    }
}

/// `params` with `apiKey`, `timestamp` and the signature of the sorted
/// params, as Binance's WebSocket API signs them.
pub fn sign(mut params: Value, who: &Credentials) -> Value {
    let p = params.as_object_mut().unwrap();
    p.insert("apiKey".into(), json!(who.api_key));
    p.entry("timestamp").or_insert(json!(super::now_ms()));
    let mut pairs: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().map_or(v.to_string(), str::to_string);
            (k.clone(), v)
        })
        .collect();
    pairs.sort();
    let payload: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sig = gateway::sign(&who.secret, payload.join("&").as_bytes());
    p.insert("signature".into(), json!(sig));
    params
}
