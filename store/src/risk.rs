//! The risk stage's shard snapshots: the latest one per shard, with the
//! position of the shard's input stream it covers.

use sqlx::Row;

use crate::{Store, StoreError, from_db, to_db};

/// A risk shard's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskSnapshotRow {
    /// The shard (the embedded runtime runs shard 0 only).
    pub shard: u16,
    /// The last input of the shard's stream the state includes.
    pub position: u64,
    /// The state hash, checked on restore.
    pub state_hash: u64,
    /// When it was taken, nanoseconds since the epoch.
    pub taken_at: u64,
    /// The serialized shard.
    pub bytes: Vec<u8>,
    /// Distributed mode: the offset in the shard's `risk-events` partition
    /// from which every decision after `position` can be read, where a
    /// gateway starts following the shard. `None` where unknown; a newer
    /// snapshot stored without one keeps the older one's.
    pub decisions_from: Option<u64>,
}

impl Store {
    /// Stores `row` unless a snapshot of its shard at a later position is
    /// already there: only the latest is kept.
    pub async fn save_risk_snapshot(&self, row: &RiskSnapshotRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO risk_snapshots \
             (shard, position, state_hash, taken_at, bytes, decisions_from) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (shard) DO UPDATE SET position = excluded.position, \
             state_hash = excluded.state_hash, taken_at = excluded.taken_at, \
             bytes = excluded.bytes, \
             decisions_from = COALESCE(excluded.decisions_from, risk_snapshots.decisions_from) \
             WHERE excluded.position >= risk_snapshots.position",
        )
        .bind(i32::from(row.shard))
        .bind(to_db(row.position)?)
        // The hash is stored bit for bit in a signed column.
        .bind(row.state_hash as i64)
        .bind(to_db(row.taken_at)?)
        .bind(row.bytes.clone())
        .bind(row.decisions_from.map(to_db).transpose()?)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The latest snapshot of `shard`, if one was stored.
    pub async fn latest_risk_snapshot(
        &self,
        shard: u16,
    ) -> Result<Option<RiskSnapshotRow>, StoreError> {
        let row = sqlx::query(
            "SELECT position, state_hash, taken_at, bytes, decisions_from FROM risk_snapshots \
             WHERE shard = $1",
        )
        .bind(i32::from(shard))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(RiskSnapshotRow {
                shard,
                position: from_db(r.try_get(0)?)?,
                state_hash: r.try_get::<i64, _>(1)? as u64,
                taken_at: from_db(r.try_get(2)?)?,
                bytes: r.try_get(3)?,
                decisions_from: r.try_get::<Option<i64>, _>(4)?.map(from_db).transpose()?,
            })
        })
        .transpose()
    }
}
