//! Listen keys of user data streams: which account a key opens, and until
//! when. One key per account, as on Binance: asking again while it is
//! active returns the same key and extends it.

use proto::UserId;
use sqlx::Row;

use crate::keys::random_hex;
use crate::{Store, StoreError, from_db, to_db};

/// A listen key's owner and life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenKey {
    /// The account whose events the key's stream carries.
    pub user: UserId,
    /// The API key that made it: the stream ends if that key is revoked.
    pub api_key: String,
    /// When it expires, ms since the epoch, unless kept alive.
    pub expires_at: u64,
}

impl Store {
    /// `user`'s active listen key extended to `expires_at` (ms), or a new
    /// random one (64 hex digits, like Binance's 64 characters) when it has
    /// none, only an expired one, or one another of its API keys made (that
    /// key may be revoked, and would end the stream). One statement, so two
    /// gateways asking at once agree.
    pub async fn open_listen_key(
        &self,
        user: UserId,
        api_key: &str,
        now_ms: u64,
        expires_at: u64,
    ) -> Result<String, StoreError> {
        let candidate = random_hex(32)?;
        let row = sqlx::query(
            "INSERT INTO listen_keys (listen_key, user_id, api_key, expires_at) \
             VALUES ($1, $2, $5, $3) \
             ON CONFLICT (user_id) DO UPDATE SET \
             listen_key = CASE WHEN listen_keys.expires_at > $4 \
                 AND listen_keys.api_key = excluded.api_key \
                 THEN listen_keys.listen_key ELSE excluded.listen_key END, \
             api_key = excluded.api_key, \
             expires_at = excluded.expires_at \
             RETURNING listen_key",
        )
        .bind(candidate)
        .bind(to_db(user.0)?)
        .bind(to_db(expires_at)?)
        .bind(to_db(now_ms)?)
        .bind(api_key.to_string())
        .fetch_one(&self.writer)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Extends `user`'s active `key` to `expires_at`; false when the user
    /// has no such active key.
    pub async fn keep_listen_key(
        &self,
        user: UserId,
        key: &str,
        now_ms: u64,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE listen_keys SET expires_at = $1 \
             WHERE listen_key = $2 AND user_id = $3 AND expires_at > $4",
        )
        .bind(to_db(expires_at)?)
        .bind(key.to_string())
        .bind(to_db(user.0)?)
        .bind(to_db(now_ms)?)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends `user`'s `key`; false when the user has no such key.
    pub async fn close_listen_key(&self, user: UserId, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM listen_keys WHERE listen_key = $1 AND user_id = $2")
            .bind(key.to_string())
            .bind(to_db(user.0)?)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// What `key` opens; `None` for a key that does not exist (never made,
    /// replaced after it expired, or closed).
    pub async fn listen_key(&self, key: &str) -> Result<Option<ListenKey>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, api_key, expires_at FROM listen_keys WHERE listen_key = $1",
        )
        .bind(key.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ListenKey {
                user: UserId(from_db(r.try_get(0)?)?),
                api_key: r.try_get(1)?,
                expires_at: from_db(r.try_get(2)?)?,
            })
        })
        .transpose()
    }
}
