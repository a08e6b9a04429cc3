//! WebSocket helpers the stream tests share.

use std::time::Duration;

use client::Client;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A client's WebSocket connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON, within `wait`; `None` when none came
/// (or the connection ended).
pub async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    wait: Duration,
) -> Option<Value> {
    let end = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => {
                return None;
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// `c`'s listen key (`POST /api/v3/userDataStream`).
pub async fn listen_key(c: &Client) -> String {
    let a = c.listen_key().await.unwrap();
    assert!(a.status.is_success(), "{:?}", a.body);
    a.body["listenKey"].as_str().unwrap().to_string()
}

/// A connection to `url`.
pub async fn open(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// `c`'s user data stream, raw, on `/ws/<listenKey>`.
pub async fn user_stream(c: &Client) -> Ws {
    open(&format!("{}/{}", c.ws_url(), listen_key(c).await)).await
}
