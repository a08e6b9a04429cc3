//! Pairs halted because their events could not be stored. A failure that
//! retrying cannot fix (a value or row the database refuses) stops only its
//! pair: the row here says why, the pair starts halted until an operator
//! resumes it, and every other pair keeps being stored.

use proto::{Seq, Symbol};
use sqlx::Row;

use crate::{Store, StoreError, from_db, symbol, to_db};

/// A pair the persister stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaltedPair {
    /// The pair.
    pub pair: Symbol,
    /// The pair's last stored event seq: events after it were not stored.
    pub seq: Seq,
    /// What the store said.
    pub reason: String,
    /// When, in nanoseconds since the epoch.
    pub halted_at: u64,
}

impl Store {
    /// Records that `pair` is halted after `seq` because of `reason`. The
    /// first reason is kept if the pair is already halted.
    pub async fn halt_pair(&self, halt: &HaltedPair) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO halted_pairs (pair, seq, reason, halted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (pair) DO NOTHING",
        )
        .bind(halt.pair.as_str().to_string())
        .bind(to_db(halt.seq.0)?)
        .bind(halt.reason.clone())
        .bind(to_db(halt.halted_at)?)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every halted pair, by name.
    pub async fn halted_pairs(&self) -> Result<Vec<HaltedPair>, StoreError> {
        let rows =
            sqlx::query("SELECT pair, seq, reason, halted_at FROM halted_pairs ORDER BY pair")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(HaltedPair {
                    pair: symbol(&r.try_get::<String, _>(0)?)?,
                    seq: Seq(from_db(r.try_get(1)?)?),
                    reason: r.try_get(2)?,
                    halted_at: from_db(r.try_get(3)?)?,
                })
            })
            .collect()
    }

    /// Lets `pair` start again at the next start; false if it was not halted.
    pub async fn resume_pair(&self, pair: Symbol) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM halted_pairs WHERE pair = $1")
            .bind(pair.as_str().to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
