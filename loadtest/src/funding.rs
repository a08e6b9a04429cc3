//! Funding the simulated users. An exchange that holds money refuses an
//! order its user cannot pay for, so before a run the harness credits each
//! user it created, in every asset the exchange lists, through the admin
//! API (`POST /admin/v1/deposit`, signed with an admin key made by
//! `exchange admin-keys create`). The references are `loadtest:USER:ASSET`:
//! a second run against the same exchange credits nothing twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use clientkit::{Credentials, Signer, now_ms};
use serde_json::{Value, json};

use crate::error::RunError;
use crate::keys;

/// The admin API's code for "this exchange holds no money".
const ACCOUNTS_DISABLED: i64 = -1051;

/// Retries of one deposit refused by the rate limit.
const RATE_LIMIT_RETRIES: u32 = 20;

/// What funding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Funded {
    /// Every user was credited (or had been, by an earlier run).
    Users {
        /// Deposits sent.
        deposits: usize,
        /// The assets.
        assets: Vec<String>,
    },
    /// The exchange runs without accounts: orders need no funds.
    NotNeeded,
}

/// Every asset of the pairs in `exchange_info`, sorted.
pub fn assets(exchange_info: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in exchange_info["symbols"].as_array().into_iter().flatten() {
        for field in ["baseAsset", "quoteAsset"] {
            if let Some(a) = s[field].as_str() {
                out.insert(a.to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// Credits `amount` of every asset to each of `users`, signing with the
/// admin key `admin`.
pub async fn fund(
    http: &reqwest::Client,
    base: &str,
    admin: &Credentials,
    users: &[String],
    assets: &[String],
    amount: &str,
) -> Result<Funded, RunError> {
    let signer = Signer::new(admin);
    let mut deposits = 0;
    for user in users {
        for asset in assets {
            let body = json!({
                "user": user,
                "asset": asset,
                "amount": amount,
                "ref": format!("loadtest:{user}:{asset}"),
            })
            .to_string();
            if !deposit(http, base, &signer, admin, &body).await? {
                return Ok(Funded::NotNeeded);
            }
            deposits += 1;
        }
    }
    Ok(Funded::Users {
        deposits,
        assets: assets.to_vec(),
    })
}

/// Makes the admin key funding signs with, by running
/// `exchange admin-keys create`.
pub async fn admin_key(binary: &Path, config: Option<&Path>) -> Result<Credentials, RunError> {
    let (binary, config) = (binary.to_path_buf(), config.map(Path::to_path_buf));
    let key = tokio::task::spawn_blocking(move || {
        keys::create_admin_key(&binary, config.as_deref(), "loadtest-funding")
    })
    .await
    .map_err(|e| RunError::Harness(format!("admin key creation failed: {e}")))??;
    Ok(key)
}

/// Sends one deposit; false when the exchange has no accounts.
async fn deposit(
    http: &reqwest::Client,
    base: &str,
    signer: &Signer,
    admin: &Credentials,
    body: &str,
) -> Result<bool, RunError> {
    for _ in 0..=RATE_LIMIT_RETRIES {
        let path = signer.sign("/admin/v1/deposit", "", body.as_bytes(), now_ms());
        let resp = http
            .post(format!("{base}{path}"))
            .header("X-ADMIN-KEY", &admin.api_key)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| RunError::Exchange(format!("deposit failed: {e}")))?;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(true);
        }
        if answer["code"].as_i64() == Some(ACCOUNTS_DISABLED) {
            return Ok(false);
        }
        if status.as_u16() != 429 {
            return Err(RunError::Exchange(format!(
                "deposit {body} refused: {status} {answer}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(RunError::Exchange(
        "deposits kept hitting the admin rate limit".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_every_pair_side_once() {
        let info = json!({"symbols": [
            {"symbol": "BTCEUR", "baseAsset": "BTC", "quoteAsset": "EUR"},
            {"symbol": "ETHEUR", "baseAsset": "ETH", "quoteAsset": "EUR"},
            {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC"},
        ]});
        assert_eq!(assets(&info), vec!["BTC", "ETH", "EUR"]);
        assert!(assets(&json!({})).is_empty());
    }
}
