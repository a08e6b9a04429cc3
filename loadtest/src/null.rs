//! `loadtest null-exchange`: a target that does no work, to measure the
//! harness itself. It serves `exchangeInfo` (the flow's default pairs,
//! BTC-EUR, ETH-EUR and ETH-BTC) and the WebSocket API, where it answers
//! every request at once with status 200 and an ACK-shaped result whose
//! `orderId` is the request's `id`. It checks no signature: run it with
//! `[users] keys = "unchecked"` (`loadtest/scenarios/null.toml`).
//!
//! It runs on one thread and answers the frames a connection has ready
//! with one write, so that as much of the machine as possible is left to
//! the harness, and the harness's CPU per request is what the run reports
//! as its own.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{Message, WebSocket};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;

/// Serves on `listen` (loopback only) until the process is stopped.
pub fn serve(listen: SocketAddr) -> std::io::Result<()> {
    if !listen.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "refusing to listen on {listen}: the null exchange is for loopback load tests"
        )));
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("null exchange listening on http://{listen}");
            serve_on(listener).await
        })
}

/// Serves on `listener` until the process is stopped.
pub async fn serve_on(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

fn router() -> Router {
    Router::new()
        .route("/api/v3/ping", get(|| async { "{}" }))
        .route("/api/v3/exchangeInfo", get(|| async { EXCHANGE_INFO }))
        .route(
            "/ws-api/v3",
            get(|ws: WebSocketUpgrade| async {
                // tungstenite zero-fills its read buffer (128 KiB by
                // default) before every read; requests are small.
                ws.read_buffer_size(8 * 1024)
                    .on_upgrade(answer_all)
                    .into_response()
            }),
        )
}

/// The part of a request the answer needs.
#[derive(Deserialize)]
struct Frame {
    id: u64,
}

/// Answers each request the moment it is read; the frames already
/// received go out with one flush.
async fn answer_all(socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    while let Some(Ok(first)) = stream.next().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            if let Message::Text(text) = msg {
                let answer = serde_json::from_str::<Frame>(&text).map_or_else(
                    |_| r#"{"id":null,"status":400,"error":{"code":-1022,"msg":"Malformed request."}}"#.to_string(),
                    |f| {
                        format!(
                            r#"{{"id":{0},"status":200,"result":{{"orderId":{0},"newOrderResponse":{{"orderId":{0}}}}}}}"#,
                            f.id
                        )
                    },
                );
                if sink.feed(Message::text(answer)).await.is_err() {
                    return;
                }
            }
            // Another frame already read, without waiting for one.
            next = stream.next().now_or_never().flatten().and_then(Result::ok);
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The flow's default pairs, with rules like the demo exchange's.
const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","symbols":[
{"symbol":"BTCEUR","baseAsset":"BTC","quoteAsset":"EUR","baseAssetPrecision":8,"quoteAssetPrecision":8,"filters":[
 {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
 {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
 {"filterType":"NOTIONAL","minNotional":"5.00000000","maxNotional":"9000000.00000000"}]},
{"symbol":"ETHEUR","baseAsset":"ETH","quoteAsset":"EUR","baseAssetPrecision":8,"quoteAssetPrecision":8,"filters":[
 {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"100000.00000000","tickSize":"0.01000000"},
 {"filterType":"LOT_SIZE","minQty":"0.00010000","maxQty":"90000.00000000","stepSize":"0.00010000"},
 {"filterType":"NOTIONAL","minNotional":"5.00000000","maxNotional":"9000000.00000000"}]},
{"symbol":"ETHBTC","baseAsset":"ETH","quoteAsset":"BTC","baseAssetPrecision":8,"quoteAssetPrecision":8,"filters":[
 {"filterType":"PRICE_FILTER","minPrice":"0.00001000","maxPrice":"100.00000000","tickSize":"0.00001000"},
 {"filterType":"LOT_SIZE","minQty":"0.00010000","maxQty":"90000.00000000","stepSize":"0.00010000"},
 {"filterType":"NOTIONAL","minNotional":"0.00010000","maxNotional":"1000.00000000"}]}]}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::PairRules;

    #[test]
    fn its_pairs_are_the_flows_default_pairs() {
        let info: serde_json::Value = serde_json::from_str(EXCHANGE_INFO).unwrap();
        let rules = PairRules::from_exchange_info(&info).unwrap();
        let names: Vec<_> = rules.iter().map(|r| r.stream.as_str()).collect();
        assert_eq!(names, ["BTC-EUR", "ETH-EUR", "ETH-BTC"]);
    }

    #[test]
    fn it_listens_on_loopback_only() {
        let e = serve("0.0.0.0:0".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
}
