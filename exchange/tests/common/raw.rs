//! Raw HTTP/1.1 and WebSocket bytes over a `TcpStream`: for the requests and
//! frames a proper client refuses to send.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the body is `{code: <integer>, msg: <non-empty string>}`.
    pub fn is_code_msg(&self) -> bool {
        self.json().is_some_and(|v| {
            v["code"].as_i64().is_some() && v["msg"].as_str().is_some_and(|m| !m.is_empty())
        })
    }
}

/// Sends `bytes` (a whole request; it should say `Connection: close`) and
/// reads the answer until the server closes the connection.
pub async fn request(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before all of an oversized request is
    // written: that is an answer too.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    parse(&out)
}

/// Parses an HTTP/1.1 answer; an empty one has status 0.
pub fn parse(raw: &[u8]) -> RawResponse {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return RawResponse {
            status: 0,
            headers: vec![],
            body: raw.to_vec(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut r = RawResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if r.header("transfer-encoding") == Some("chunked") {
        r.body = dechunk(&r.body);
    }
    r
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// Opens `/ws` by hand: the stream is positioned after the 101's head.
pub async fn ws_connect(addr: SocketAddr) -> TcpStream {
    let (status, s) = ws_try_connect(addr).await;
    assert_eq!(
        status.status,
        101,
        "{:?}",
        String::from_utf8_lossy(&status.body)
    );
    s
}

/// Tries to open `/ws`; the answer's head, and the stream.
pub async fn ws_try_connect(addr: SocketAddr) -> (RawResponse, TcpStream) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    // Byte by byte, so that no frame after the head is consumed.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await {
            Ok(Ok(1)) => head.push(b[0]),
            _ => break,
        }
    }
    let mut r = parse(&head);
    if r.status != 101
        && let Some(n) = r.header("content-length").and_then(|v| v.parse().ok())
    {
        let mut body = vec![0u8; n];
        let _ = s.read_exact(&mut body).await;
        r.body = body;
    }
    (r, s)
}

pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame header: `first` is FIN, RSV and opcode bits; masked with
/// [`MASK`] when `masked`.
pub fn frame_header(first: u8, masked: bool, len: u64) -> Vec<u8> {
    let m = if masked { 0x80 } else { 0 };
    let mut h = vec![first];
    match len {
        0..=125 => h.push(m | len as u8),
        126..=0xffff => {
            h.push(m | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(m | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        h.extend_from_slice(&MASK);
    }
    h
}

/// A whole frame, masked as a client's must be unless `masked` is false.
pub fn frame(first: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_header(first, masked, payload.len() as u64);
    f.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ MASK[i % 4] } else { *b }),
    );
    f
}

/// A final, masked text frame.
pub fn text(s: &str) -> Vec<u8> {
    frame(0x81, true, s.as_bytes())
}

/// Reads one server frame: opcode and payload, `None` at end of stream.
pub async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            u64::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.ok()?;
            u64::from_be_bytes(l)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// The next text frame, skipping pings.
pub async fn read_text(s: &mut TcpStream) -> Option<Value> {
    loop {
        let (op, p) = tokio::time::timeout(Duration::from_secs(5), read_frame(s))
            .await
            .ok()??;
        match op {
            1 => return serde_json::from_slice(&p).ok(),
            9 | 10 => continue,
            _ => return None,
        }
    }
}

/// Reads until the server's close frame: its code and reason. `None` if
/// the connection ended without one, or nothing came within 5 s.
pub async fn close_code(s: &mut TcpStream) -> Option<(u16, String)> {
    loop {
        let (op, p) = tokio::time::timeout(Duration::from_secs(5), read_frame(s))
            .await
            .ok()??;
        if op == 8 {
            let code = u16::from_be_bytes([*p.first()?, *p.get(1)?]);
            return Some((code, String::from_utf8_lossy(&p[2..]).into_owned()));
        }
    }
}

/// Whether the server ends the connection within `limit`: end of stream
/// or a reset, after skipping whatever it still sends.
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}
