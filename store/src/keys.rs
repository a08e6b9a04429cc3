//! API keys: a public key naming a user, and a secret that signs requests.

use std::collections::HashMap;

use proto::UserId;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{ROWS_PER_STATEMENT, Store, StoreError, from_db, placeholders, to_db};

/// A key as created: the secret is shown once, to whoever created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Sent with every signed request.
    pub api_key: String,
    /// Signs requests (HMAC-SHA256); never sent.
    pub secret: String,
    /// The account it acts for.
    pub user: UserId,
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Corrupt(format!("no randomness available: {e}")))?;
    Ok(hex::encode(buf))
}

impl Store {
    /// Creates a key for the user called `name`, creating the user first if
    /// there is none by that name.
    pub async fn create_api_key(&self, name: &str, now_ns: u64) -> Result<ApiKey, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.to_string())
        .bind(to_db(now_ns)?)
        .execute(&mut *tx)
        .await?;
        let user: i64 = sqlx::query("SELECT user_id FROM users WHERE name = $1")
            .bind(name.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let key = ApiKey {
            api_key: random_hex(16)?,
            secret: random_hex(32)?,
            user: UserId(from_db(user)?),
        };
        sqlx::query(
            "INSERT INTO api_keys (api_key, secret, user_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key.api_key.clone())
        .bind(key.secret.clone())
        .bind(user)
        .bind(to_db(now_ns)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The secret and user of each key of `api_keys` that exists.
    pub async fn api_keys(
        &self,
        api_keys: &[String],
    ) -> Result<HashMap<String, (String, UserId)>, StoreError> {
        let head = "SELECT api_key, secret, user_id FROM api_keys WHERE api_key IN";
        self.keys_in(head, api_keys, |r| {
            Ok((r.try_get(1)?, UserId(from_db(r.try_get(2)?)?)))
        })
        .await
    }

    /// What `head` (a query of the key, its secret and its holder, ending
    /// in `IN`) finds of `keys`, by key, each row's secret and holder
    /// read by `holder`: one query per [`ROWS_PER_STATEMENT`] keys.
    pub(crate) async fn keys_in<T>(
        &self,
        head: &str,
        keys: &[String],
        holder: impl Fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<HashMap<String, T>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{head} {}", placeholders(self.backend, 1, chunk.len()));
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k.clone());
            }
            for r in q.fetch_all(&self.pool).await? {
                found.insert(r.try_get(0)?, holder(&r)?);
            }
        }
        Ok(found)
    }

    /// Deletes a key; true if it existed.
    pub async fn revoke_api_key(&self, api_key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE api_key = $1")
            .bind(api_key.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
