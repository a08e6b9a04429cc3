//! Many WebSocket clients announcing frames far over the limit, and never
//! finishing them, cost the exchange next to nothing: each is refused on
//! the frame header with close code 1009, before any payload is buffered.
//! (Issue 13 item 3: 40 such clients took RSS from 83 to 723 MiB.)
//!
//! Alone in its binary: it measures this process's resident set, which
//! another test running beside it would disturb.

mod common;

use std::time::{Duration, Instant};

use common::raw;
use tokio::io::AsyncWriteExt;

const CLIENTS: usize = 40;
const ANNOUNCED: u64 = 15 << 20;
/// The stated bound: what 40 such clients may add to the process's RSS.
/// Before the fix, each pinned about 16 MiB (640 MiB in all).
const MAX_GROWTH_MIB: u64 = 48;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// One client: announces a 15 MiB frame, reads the server's answer, then
/// tries to send the payload but its last byte. Returns the close code and
/// whether the server stopped taking the payload before it was all sent,
/// and the connection, kept open while the memory is measured.
async fn client(addr: std::net::SocketAddr) -> (Option<u16>, bool, tokio::net::TcpStream) {
    let mut s = raw::ws_connect(addr).await;
    s.write_all(&raw::frame_header(0x81, true, ANNOUNCED))
        .await
        .expect("header");
    let close = raw::close_code(&mut s).await.map(|(c, _)| c);
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0u64;
    let write = tokio::time::timeout(Duration::from_secs(20), async {
        while sent + (chunk.len() as u64) < ANNOUNCED {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
            sent += chunk.len() as u64;
        }
    })
    .await;
    let refused = write.is_ok() && sent + (chunk.len() as u64) < ANNOUNCED;
    (close, refused, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_large_frames_do_not_pin_memory() {
    let ex = common::start().await;
    let addr = ex.running.addr;
    // Warm the path once, so that one-time allocations are in the baseline.
    let _ = client(addr).await;
    let before = rss_mib();
    let t = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(addr))).collect();
    let mut peak = before;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("client task"));
        peak = peak.max(rss_mib());
    }
    // The server may still be reading what the clients wrote: watch for a
    // second with every connection still open on this side.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mib());
    }
    let after = rss_mib();
    println!(
        "{CLIENTS} clients announcing {} MiB frames: RSS {before} -> peak {peak} -> {after} MiB in {:?}",
        ANNOUNCED >> 20,
        t.elapsed()
    );
    for (i, (close, refused, _)) in results.iter().enumerate() {
        assert_eq!(*close, Some(1009), "client {i}: close frame");
        assert!(refused, "client {i}: the server took the whole payload");
    }
    assert!(
        peak.saturating_sub(before) < MAX_GROWTH_MIB,
        "RSS grew from {before} to {peak} MiB"
    );
    drop(results);
    // The exchange still serves WebSocket clients.
    let mut s = raw::ws_connect(addr).await;
    s.write_all(&raw::text(
        r#"{"method":"SUBSCRIBE","params":["btceur@trade"],"id":1}"#,
    ))
    .await
    .expect("write");
    let v = raw::read_text(&mut s).await.expect("answer");
    assert_eq!(v["result"], serde_json::Value::Null, "{v}");
    ex.running.shutdown().await;
}
