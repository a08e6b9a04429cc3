//! What the operators' API needs from the store: admin keys (a table of
//! their own, never trading keys), users by name, and the numbers behind
//! operators' text references of deposits and withdrawals.

use std::collections::HashMap;

use proto::UserId;
use sqlx::Row;

use crate::keys::random_hex;
use crate::{Store, StoreError, from_db, to_db};

/// An admin key as created: the secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKey {
    /// Sent with every admin request.
    pub admin_key: String,
    /// Signs admin requests (HMAC-SHA256); never sent.
    pub secret: String,
    /// Who holds it, for the operator's records.
    pub name: String,
}

impl Store {
    /// Creates an admin key held by `name`.
    pub async fn create_admin_key(&self, name: &str, now_ns: u64) -> Result<AdminKey, StoreError> {
        let key = AdminKey {
            admin_key: random_hex(16)?,
            secret: random_hex(32)?,
            name: name.to_string(),
        };
        sqlx::query(
            "INSERT INTO admin_keys (admin_key, secret, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key.admin_key.clone())
        .bind(key.secret.clone())
        .bind(key.name.clone())
        .bind(to_db(now_ns)?)
        .execute(&self.writer)
        .await?;
        Ok(key)
    }

    /// The secret and holder of each key of `admin_keys` that exists.
    pub async fn admin_keys(
        &self,
        admin_keys: &[String],
    ) -> Result<HashMap<String, (String, String)>, StoreError> {
        let head = "SELECT admin_key, secret, name FROM admin_keys WHERE admin_key IN";
        self.keys_in(head, admin_keys, |r| Ok((r.try_get(1)?, r.try_get(2)?)))
            .await
    }

    /// Deletes an admin key; true if it existed.
    pub async fn revoke_admin_key(&self, admin_key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM admin_keys WHERE admin_key = $1")
            .bind(admin_key.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The user called `name`, if there is one.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserId>, StoreError> {
        let row = sqlx::query("SELECT user_id FROM users WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(UserId(from_db(r.try_get(0)?)?))).transpose()
    }

    /// The number of the movement reference `text`: assigned on first use
    /// and the same ever after, by every process sharing the store. The
    /// numbers count from 1 and stay far below 2^62, so they never meet
    /// the references the gateway derives itself (demo funding sets the
    /// top bit).
    pub async fn movement_reference(&self, text: &str) -> Result<u64, StoreError> {
        sqlx::query(
            "INSERT INTO movement_refs (reference) VALUES ($1) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(text.to_string())
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT id FROM movement_refs WHERE reference = $1")
            .bind(text.to_string())
            .fetch_one(&self.writer)
            .await?;
        from_db(row.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("admin.db").display());
        (Store::connect(&url, 1).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn admin_keys_live_apart_from_trading_keys() {
        let (s, _dir) = store().await;
        let admin = s.create_admin_key("ops", 1).await.unwrap();
        let trading = s.create_api_key("alice", 1).await.unwrap();
        let both = [admin.admin_key.clone(), trading.api_key.clone()];
        let admins = s.admin_keys(&both).await.unwrap();
        assert_eq!(
            admins.into_iter().collect::<Vec<_>>(),
            [(
                admin.admin_key.clone(),
                (admin.secret.clone(), "ops".to_string())
            )]
        );
        let traders = s.api_keys(&both).await.unwrap();
        assert_eq!(
            traders.into_iter().collect::<Vec<_>>(),
            [(
                trading.api_key.clone(),
                (trading.secret.clone(), trading.user)
            )]
        );
        assert!(s.revoke_admin_key(&admin.admin_key).await.unwrap());
        assert!(!s.revoke_admin_key(&admin.admin_key).await.unwrap());
        assert!(s.admin_keys(&both).await.unwrap().is_empty());
        assert_eq!(s.user_by_name("alice").await.unwrap(), Some(trading.user));
        assert_eq!(s.user_by_name("bob").await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_are_looked_up_together_in_any_number() {
        let (s, _dir) = store().await;
        let mut real = Vec::new();
        for i in 0..3 {
            real.push(s.create_api_key(&format!("u{i}"), 1).await.unwrap());
        }
        // More than one statement's worth, one real key in each.
        let mut asked: Vec<String> = (0..447).map(|i| format!("{i:032x}")).collect();
        for (k, at) in real.iter().zip([10, 250, 440]) {
            asked.insert(at, k.api_key.clone());
        }
        let found = s.api_keys(&asked).await.unwrap();
        assert_eq!(found.len(), 3);
        for k in &real {
            assert_eq!(found[&k.api_key], (k.secret.clone(), k.user));
        }
        assert!(s.api_keys(&[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_reference_keeps_its_number_across_connections() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("refs.db").display());
        let s = Store::connect(&url, 1).await.unwrap();
        let a = s.movement_reference("wire-1").await.unwrap();
        let b = s.movement_reference("wire-2").await.unwrap();
        assert_ne!(a, b);
        assert_eq!(s.movement_reference("wire-1").await.unwrap(), a);
        s.close().await;
        let again = Store::connect(&url, 1).await.unwrap();
        assert_eq!(again.movement_reference("wire-2").await.unwrap(), b);
        assert!(a >= 1 && b < 1 << 62);
    }
}
