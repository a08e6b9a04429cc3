//! Which engine owns each pair (distributed mode).
//!
//! Every engine bumps a counter, its `beat`, in `engine_members` and in each
//! lease it holds, once per heartbeat. Nobody compares clocks: an observer
//! calls a member dead when its beat has not moved for a lease period by the
//! observer's own clock. A lease changes hands only by a compare-and-set on
//! the `(epoch, beat)` the taker saw, so two engines never take the same
//! lease from the same state.

use proto::Symbol;
use sqlx::Row;

use crate::{Store, StoreError, from_db, symbol, to_db};

/// A pair's lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The pair.
    pub pair: Symbol,
    /// The engine holding it; `None` when released or never taken.
    pub owner: Option<String>,
    /// Bumped each time the lease changes hands.
    pub epoch: u64,
    /// Bumped by the owner every heartbeat.
    pub beat: u64,
}

/// One engine's liveness counter as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The engine's id, unique per process start.
    pub id: String,
    /// Bumped by the engine every heartbeat.
    pub beat: u64,
}

impl Store {
    /// Creates the lease rows of `pairs` that do not exist yet, unowned.
    pub async fn ensure_leases(&self, pairs: &[Symbol]) -> Result<(), StoreError> {
        for pair in pairs {
            sqlx::query(
                "INSERT INTO pair_leases (pair, owner, epoch, beat) VALUES ($1, NULL, 0, 0) \
                 ON CONFLICT (pair) DO NOTHING",
            )
            .bind(pair.as_str().to_string())
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// One heartbeat of `engine`: bumps its member row (creating it) and
    /// every lease it holds; returns the pairs it still holds.
    pub async fn heartbeat(&self, engine: &str) -> Result<Vec<Symbol>, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO engine_members (engine_id, beat) VALUES ($1, 0) \
             ON CONFLICT (engine_id) DO UPDATE SET beat = engine_members.beat + 1",
        )
        .bind(engine.to_string())
        .execute(&mut *tx)
        .await?;
        let rows =
            sqlx::query("UPDATE pair_leases SET beat = beat + 1 WHERE owner = $1 RETURNING pair")
                .bind(engine.to_string())
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| symbol(&r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Every member and every lease.
    pub async fn ownership(&self) -> Result<(Vec<Member>, Vec<Lease>), StoreError> {
        let members = sqlx::query("SELECT engine_id, beat FROM engine_members")
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
        let leases = sqlx::query("SELECT pair, owner, epoch, beat FROM pair_leases")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Lease {
                    pair: symbol(&r.try_get::<String, _>(0)?)?,
                    owner: r.try_get(1)?,
                    epoch: from_db(r.try_get(2)?)?,
                    beat: from_db(r.try_get(3)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((members, leases))
    }

    /// Gives `seen`'s pair to `engine` if the lease is still exactly as
    /// seen; true if it did.
    pub async fn take_lease(&self, seen: &Lease, engine: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pair_leases SET owner = $1, epoch = epoch + 1, beat = 0 \
             WHERE pair = $2 AND epoch = $3 AND beat = $4",
        )
        .bind(engine.to_string())
        .bind(seen.pair.as_str().to_string())
        .bind(to_db(seen.epoch)?)
        .bind(to_db(seen.beat)?)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases `pair` if `engine` holds it, so another engine can take it
    /// without waiting for a lease period.
    pub async fn release_lease(&self, pair: Symbol, engine: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pair_leases SET owner = NULL, epoch = epoch + 1, beat = 0 \
             WHERE pair = $1 AND owner = $2",
        )
        .bind(pair.as_str().to_string())
        .bind(engine.to_string())
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
    /// clean shutdown, after which the others take its pairs at once.
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
