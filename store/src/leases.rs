//! Which engine owns each pair, and which risk role each risk shard
//! (distributed mode).
//!
//! Every member (an engine or a risk role) bumps a counter, its `beat`, in
//! `engine_members` and in each lease it holds, once per heartbeat. Nobody
//! compares clocks: an observer calls a member dead when its beat has not
//! moved for a lease period by the observer's own clock. A lease changes
//! hands only by a compare-and-set on the `(epoch, beat)` the taker saw, so
//! two members never take the same lease from the same state.

use std::fmt;

use proto::Symbol;
use sqlx::Row;

use crate::{Store, StoreError, from_db, symbol, to_db};

/// The kind of process that holds leases: each plans its own leases among
/// its own members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A pair engine (`exchange engine`).
    Engine,
    /// A risk role (`exchange risk`).
    Risk,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Engine => "engine",
            Role::Risk => "risk",
        }
    }
}

/// What a lease names: a pair, run by an engine, or a risk shard, run by a
/// risk role (stored as `risk/N`, which no pair symbol can spell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaseKey {
    /// A pair's book.
    Pair(Symbol),
    /// Risk shard `n` (of `accounts.shards`).
    RiskShard(u16),
}

impl LeaseKey {
    /// The role that holds this lease.
    pub fn role(self) -> Role {
        match self {
            LeaseKey::Pair(_) => Role::Engine,
            LeaseKey::RiskShard(_) => Role::Risk,
        }
    }

    fn to_db(self) -> String {
        self.to_string()
    }

    fn from_db(s: &str) -> Result<LeaseKey, StoreError> {
        match s.strip_prefix("risk/") {
            Some(n) => n
                .parse()
                .map(LeaseKey::RiskShard)
                .map_err(|_| StoreError::Corrupt(format!("bad lease name {s:?}"))),
            None => symbol(s).map(LeaseKey::Pair),
        }
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseKey::Pair(p) => f.write_str(p.as_str()),
            LeaseKey::RiskShard(n) => write!(f, "risk/{n}"),
        }
    }
}

/// A lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What it names.
    pub key: LeaseKey,
    /// The member holding it; `None` when released or never taken.
    pub owner: Option<String>,
    /// Bumped each time the lease changes hands.
    pub epoch: u64,
    /// Bumped by the owner every heartbeat.
    pub beat: u64,
}

/// One member's liveness counter as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id, unique per process start.
    pub id: String,
    /// Bumped by the member every heartbeat.
    pub beat: u64,
}

impl Store {
    /// Creates the lease rows of `keys` that do not exist yet, unowned.
    pub async fn ensure_leases(&self, keys: &[LeaseKey]) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query(
                "INSERT INTO pair_leases (pair, owner, epoch, beat, role) \
                 VALUES ($1, NULL, 0, 0, $2) ON CONFLICT (pair) DO NOTHING",
            )
            .bind(key.to_db())
            .bind(key.role().as_str())
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// One heartbeat of `member`, a process of `role`: bumps its member row
    /// (creating it) and every lease it holds; returns the leases it still
    /// holds.
    pub async fn heartbeat(&self, role: Role, member: &str) -> Result<Vec<LeaseKey>, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO engine_members (engine_id, beat, role) VALUES ($1, 0, $2) \
             ON CONFLICT (engine_id) DO UPDATE SET beat = engine_members.beat + 1",
        )
        .bind(member.to_string())
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        let rows =
            sqlx::query("UPDATE pair_leases SET beat = beat + 1 WHERE owner = $1 RETURNING pair")
                .bind(member.to_string())
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| LeaseKey::from_db(&r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Every member of `role` and every lease its members plan.
    pub async fn ownership(&self, role: Role) -> Result<(Vec<Member>, Vec<Lease>), StoreError> {
        let members = sqlx::query("SELECT engine_id, beat FROM engine_members WHERE role = $1")
            .bind(role.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Member {
                    id: r.try_get(0)?,
                    beat: from_db(r.try_get(1)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let leases =
            sqlx::query("SELECT pair, owner, epoch, beat FROM pair_leases WHERE role = $1")
                .bind(role.as_str())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(Lease {
                        key: LeaseKey::from_db(&r.try_get::<String, _>(0)?)?,
                        owner: r.try_get(1)?,
                        epoch: from_db(r.try_get(2)?)?,
                        beat: from_db(r.try_get(3)?)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((members, leases))
    }

    /// Gives `seen`'s lease to `member` if it is still exactly as seen;
    /// true if it did.
    pub async fn take_lease(&self, seen: &Lease, member: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pair_leases SET owner = $1, epoch = epoch + 1, beat = 0 \
             WHERE pair = $2 AND epoch = $3 AND beat = $4",
        )
        .bind(member.to_string())
        .bind(seen.key.to_db())
        .bind(to_db(seen.epoch)?)
        .bind(to_db(seen.beat)?)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `member` holds `key` now (read from the primary).
    pub async fn holds_lease(&self, key: LeaseKey, member: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT owner FROM pair_leases WHERE pair = $1")
            .bind(key.to_db())
            .fetch_optional(&self.writer)
            .await?;
        let owner: Option<String> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        Ok(owner.as_deref() == Some(member))
    }

    /// Releases `key` if `member` holds it, so another member can take it
    /// without waiting for a lease period.
    pub async fn release_lease(&self, key: LeaseKey, member: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pair_leases SET owner = NULL, epoch = epoch + 1, beat = 0 \
             WHERE pair = $1 AND owner = $2",
        )
        .bind(key.to_db())
        .bind(member.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Removes a member row, if its beat is still `beat` (a member that
    /// came back meanwhile keeps its row).
    pub async fn forget_member(&self, id: &str, beat: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM engine_members WHERE engine_id = $1 AND beat = $2")
            .bind(id.to_string())
            .bind(to_db(beat)?)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Releases every lease `engine` holds and removes its member row: a
    /// clean shutdown, after which the others take its leases at once.
    pub async fn leave(&self, engine: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE pair_leases SET owner = NULL, epoch = epoch + 1, beat = 0 WHERE owner = $1",
        )
        .bind(engine.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM engine_members WHERE engine_id = $1")
            .bind(engine.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
