//! The operator commands that are clients of a running exchange's admin
//! API (`exchange accounts deposit|withdraw|balances`, `exchange audit`,
//! `exchange pairs status|rules`):
//! signed with an admin key through the `client` crate, like any client.

use client::{Answer, Client, Credentials, Method};
use serde_json::{Value, json};

/// Where the admin API is and the admin key to sign with.
#[derive(Debug, Clone)]
pub struct AdminTarget {
    /// The exchange's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The admin key and its secret.
    pub credentials: Credentials,
}

/// The base URL of the exchange listening on `listen` (a wildcard address
/// is reached on loopback).
pub fn url_for_listen(listen: &str) -> String {
    let local = listen
        .strip_prefix("0.0.0.0:")
        .map(|port| format!("127.0.0.1:{port}"))
        .or_else(|| {
            listen
                .strip_prefix("[::]:")
                .map(|port| format!("[::1]:{port}"))
        })
        .unwrap_or_else(|| listen.to_string());
    format!("http://{local}")
}

/// A deposit or a withdrawal, as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementArgs {
    /// `deposit` or `withdraw`.
    pub kind: MovementKind,
    /// The user's name.
    pub user: String,
    /// The asset's name.
    pub asset: String,
    /// A decimal amount.
    pub amount: String,
    /// The operator's reference (text; the same text is the same movement).
    pub reference: String,
}

/// Which way a movement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// Credits the user.
    Deposit,
    /// Debits the user's free balance.
    Withdraw,
}

impl MovementKind {
    fn path(self) -> &'static str {
        match self {
            MovementKind::Deposit => "/admin/v1/deposit",
            MovementKind::Withdraw => "/admin/v1/withdraw",
        }
    }
}

/// `POST /admin/v1/deposit` or `/withdraw`.
pub async fn movement(t: &AdminTarget, m: &MovementArgs) -> Result<Answer, reqwest::Error> {
    let body = json!({"user": m.user, "asset": m.asset, "amount": m.amount, "ref": m.reference});
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::POST, m.kind.path(), "", Some(&body))
        .await
}

/// `GET /admin/v1/balances?user=NAME`.
pub async fn balances(t: &AdminTarget, user: &str) -> Result<Answer, reqwest::Error> {
    let q = format!("user={}", encode(user));
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::GET, "/admin/v1/balances", &q, None)
        .await
}

/// `GET /admin/v1/audit`.
pub async fn audit(t: &AdminTarget) -> Result<Answer, reqwest::Error> {
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::GET, "/admin/v1/audit", "", None)
        .await
}

/// `POST /admin/v1/pairs/status`: the pair's market status (`TRADING`,
/// `HALT`, `BREAK`), sequenced in its log.
pub async fn pair_status(
    t: &AdminTarget,
    pair: &str,
    status: &str,
) -> Result<Answer, reqwest::Error> {
    let body = json!({"symbol": pair, "status": status.to_ascii_uppercase()});
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::POST, "/admin/v1/pairs/status", "", Some(&body))
        .await
}

/// `POST /admin/v1/pairs`: lists the pair `spec` describes (the config
/// file's `[[pairs]]` table), at once, with an empty book.
pub async fn add_pair(t: &AdminTarget, spec: &proto::PairSpec) -> Result<Answer, reqwest::Error> {
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::POST, "/admin/v1/pairs", "", Some(&json!(spec)))
        .await
}

/// A change of a pair's rules, as the command line gives it: each rule a
/// decimal at the pair's scale, `None` to keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairRules {
    /// The pair, e.g. `BTC-EUR`.
    pub pair: String,
    /// `tickSize`.
    pub tick_size: Option<String>,
    /// `stepSize` (the lot).
    pub step_size: Option<String>,
    /// `minQty`.
    pub min_qty: Option<String>,
    /// `maxQty`.
    pub max_qty: Option<String>,
    /// `maxPrice`.
    pub max_price: Option<String>,
    /// `minNotional`.
    pub min_notional: Option<String>,
    /// `maxNotional`.
    pub max_notional: Option<String>,
    /// `maxOpenOrders`.
    pub max_open_orders: Option<u32>,
    /// `defaultSelfTradePreventionMode`.
    pub default_stp: Option<String>,
    /// `makerFeeBps`.
    pub maker_fee_bps: Option<u16>,
    /// `takerFeeBps`.
    pub taker_fee_bps: Option<u16>,
}

/// `POST /admin/v1/pairs/rules`: the rules given, sequenced in the pair's log.
pub async fn pair_rules(t: &AdminTarget, r: &PairRules) -> Result<Answer, reqwest::Error> {
    let mut body = json!({"symbol": r.pair});
    for (name, v) in [
        ("tickSize", &r.tick_size),
        ("stepSize", &r.step_size),
        ("minQty", &r.min_qty),
        ("maxQty", &r.max_qty),
        ("maxPrice", &r.max_price),
        ("minNotional", &r.min_notional),
        ("maxNotional", &r.max_notional),
        ("defaultSelfTradePreventionMode", &r.default_stp),
    ] {
        if let Some(v) = v {
            body[name] = json!(v);
        }
    }
    if let Some(n) = r.max_open_orders {
        body["maxOpenOrders"] = json!(n);
    }
    for (name, v) in [
        ("makerFeeBps", r.maker_fee_bps),
        ("takerFeeBps", r.taker_fee_bps),
    ] {
        if let Some(v) = v {
            body[name] = json!(v);
        }
    }
    Client::admin(&t.url, t.credentials.clone())
        .signed(Method::POST, "/admin/v1/pairs/rules", "", Some(&body))
        .await
}

/// A user name in a query string: letters, digits and `-_.~` as they are,
/// every other byte percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The audit answer as text, one asset a line, and whether it passed.
/// An answer that is not a report (an error) did not pass.
pub fn audit_text(a: &Answer) -> (String, bool) {
    let body = &a.body;
    let passed = a.status.is_success() && body["passed"].as_bool() == Some(true);
    let mut out = String::new();
    for asset in body["assets"].as_array().into_iter().flatten() {
        let f = |k: &str| asset[k].as_str().unwrap_or("?").to_string();
        out.push_str(&format!(
            "{:<6} held {}  expected {}  fees {}\n",
            f("asset"),
            f("held"),
            f("expected"),
            f("fees")
        ));
    }
    if let Some(n) = body["openHolds"].as_u64() {
        out.push_str(&format!("open holds: {n}\n"));
    }
    for failure in body["failures"].as_array().into_iter().flatten() {
        out.push_str(&format!("FAILURE: {}\n", failure.as_str().unwrap_or("?")));
    }
    if body.get("assets").is_none() {
        out.push_str(&format!("HTTP {}: {}\n", a.status, error_text(body)));
    }
    out.push_str(if passed {
        "audit passed\n"
    } else {
        "audit FAILED\n"
    });
    (out, passed)
}

/// `{code,msg}` as `msg (code)`, or the body as it is.
fn error_text(body: &Value) -> String {
    match (body["code"].as_i64(), body["msg"].as_str()) {
        (Some(code), Some(msg)) => format!("{msg} ({code})"),
        _ => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use client::StatusCode;

    use super::*;

    #[test]
    fn urls_come_from_listen_addresses() {
        assert_eq!(url_for_listen("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url_for_listen("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(url_for_listen("[::]:9000"), "http://[::1]:9000");
    }

    #[test]
    fn names_are_encoded_in_queries() {
        assert_eq!(encode("alice"), "alice");
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn the_audit_text_says_pass_or_fail() {
        let report = json!({"passed": true, "openHolds": 2, "failures": [],
            "assets": [{"asset": "EUR", "held": "1.00", "expected": "1.00", "fees": "0.00"}]});
        let ok = Answer {
            status: StatusCode::OK,
            retry_after: None,
            body: report,
        };
        let (text, passed) = audit_text(&ok);
        assert!(passed);
        assert!(text.contains("EUR    held 1.00  expected 1.00  fees 0.00"));
        assert!(text.ends_with("audit passed\n"));
        let failed = Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            retry_after: None,
            body: json!({"code": -1054, "msg": "The audit found a failure; see failures.",
                "passed": false, "openHolds": 0, "failures": ["EUR: held 2 != expected 1"],
                "assets": []}),
        };
        let (text, passed) = audit_text(&failed);
        assert!(!passed);
        assert!(text.contains("FAILURE: EUR: held 2 != expected 1"));
        let disabled = Answer {
            status: StatusCode::NOT_IMPLEMENTED,
            retry_after: None,
            body: json!({"code": -1051, "msg": "Accounts are not enabled."}),
        };
        let (text, passed) = audit_text(&disabled);
        assert!(!passed);
        assert!(text.contains("Accounts are not enabled. (-1051)"));
    }
}
