//! The harness only ever sends traffic to this machine: a target URL must be
//! `http://` to an address in 127.0.0.0/8, `[::1]`, or `localhost` (and then
//! every address `localhost` resolves to must be loopback too).

use std::net::{IpAddr, SocketAddr};

pub use crate::error::LoopbackError;

/// A checked target: where to connect and what to send as `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackTarget {
    /// The base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// `host:port` as written in the URL, for the `Host` header.
    pub authority: String,
    /// The host as written (`127.0.0.1`, `[::1]`, `localhost`).
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
}

/// Parses `url` and refuses anything but plain HTTP to a loopback host. Does
/// not resolve names: see [`resolve`].
pub fn check_url(url: &str) -> Result<LoopbackTarget, LoopbackError> {
    let bad = |why: String| LoopbackError::Url {
        url: url.to_string(),
        why,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported (the harness does no TLS)".into()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let path = &rest[authority.len()..];
    if !(path.is_empty() || path == "/") {
        return Err(bad("give the exchange's base URL, without a path".into()));
    }
    if authority.contains('@') {
        return Err(bad("user info is not allowed".into()));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| bad("cannot parse host and port".into()))?;
    if !is_loopback_host(&host) {
        return Err(bad(format!(
            "refusing a non-loopback host {host:?}; the load tester only \
             sends to 127.0.0.0/8, [::1] or localhost"
        )));
    }
    Ok(LoopbackTarget {
        base: format!("http://{authority}"),
        authority: authority.to_string(),
        host,
        port,
    })
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok().filter(|&p: &u16| p > 0)?,
    };
    (!host.is_empty()).then_some((host, port))
}

/// True for `localhost`, an IPv4 address in 127.0.0.0/8 and `[::1]` (or
/// `::1`). IPv4-mapped IPv6 forms are refused: they are not on the list.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => is_loopback_ip(ip),
        Err(_) => false,
    }
}

/// 127.0.0.0/8 or ::1.
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// The socket address to connect to; every address the host resolves to
/// must be loopback (a `localhost` entry pointing elsewhere is refused).
pub async fn resolve(t: &LoopbackTarget) -> Result<SocketAddr, LoopbackError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&t.authority)
        .await
        .map_err(|e| LoopbackError::Resolve {
            authority: t.authority.clone(),
            detail: e.to_string(),
        })?
        .collect();
    if let Some(bad) = addrs.iter().find(|a| !is_loopback_ip(a.ip())) {
        return Err(LoopbackError::NotLoopback {
            host: t.host.clone(),
            addr: bad.to_string(),
        });
    }
    // Prefer IPv4: the exchange listens on 127.0.0.1 by default.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| LoopbackError::NoAddress(t.host.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3:9",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            let t = check_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(!t.base.ends_with('/'), "{url}");
        }
        let t = check_url("http://127.0.0.1:8080/").expect("loopback");
        assert_eq!(t.base, "http://127.0.0.1:8080");
        assert_eq!(t.port, 8080);
        assert_eq!(check_url("http://localhost").expect("ok").port, 80);
        assert_eq!(check_url("http://[::1]:81").expect("ok").host, "[::1]");
    }

    #[test]
    fn refuses_everything_else() {
        for url in [
            "http://10.0.0.1:8080",
            "http://192.168.1.10:8080",
            "http://172.16.0.1",
            "http://8.8.8.8",
            "http://128.0.0.1",
            "http://0.0.0.0:8080",
            "http://[::ffff:127.0.0.1]:8080",
            "http://[::2]:8080",
            "http://[fe80::1]:8080",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "http://evil@127.0.0.1:8080",
            "https://127.0.0.1:8080",
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/api",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://",
        ] {
            assert!(check_url(url).is_err(), "{url} must be refused");
        }
    }

    #[test]
    fn loopback_ips() {
        assert!(is_loopback_host("127.255.255.254"));
        assert!(is_loopback_host("::1"));
        assert!(!is_loopback_host("::"));
        assert!(!is_loopback_host("126.0.0.1"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn resolves_localhost_to_loopback() {
        let t = check_url("http://localhost:8080").expect("ok");
        let addr = resolve(&t).await.expect("localhost resolves to loopback");
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 8080);
    }
}
