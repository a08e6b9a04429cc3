//! Pairs listed at runtime. A row is the pair's table as the config file
//! would give it (the caller's JSON), written before the pair takes its
//! first command, so every start lists it again, after the configured
//! pairs and in listing order.

use proto::{Fees, Seq, Symbol};
use sqlx::Row;

use crate::{Store, StoreError, from_db, symbol, to_db};

/// A pair an operator listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPair {
    /// The pair.
    pub pair: Symbol,
    /// Its table, as JSON.
    pub spec: String,
    /// When, in nanoseconds since the epoch.
    pub listed_at: u64,
    /// Its partition of both Kafka topics (distributed mode only).
    pub partition: Option<i32>,
}

impl Store {
    /// Records a listing; false (and nothing written) if `pair` is listed
    /// already, or another pair has its partition.
    pub async fn list_pair(&self, listed: &ListedPair) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO listed_pairs (pair, spec, listed_at, kafka_partition) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(listed.pair.as_str().to_string())
        .bind(listed.spec.clone())
        .bind(to_db(listed.listed_at)?)
        .bind(listed.partition)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a listing whose pair never started (its start failed).
    pub async fn unlist_pair(&self, pair: Symbol) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM listed_pairs WHERE pair = $1")
            .bind(pair.as_str().to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every listed pair, in listing order: by partition where listings
    /// have one (distributed mode gives each the lowest free one as it is
    /// accepted, whatever the gateways' clocks say), by time otherwise.
    pub async fn listed_pairs(&self) -> Result<Vec<ListedPair>, StoreError> {
        let rows = sqlx::query(
            "SELECT pair, spec, listed_at, kafka_partition FROM listed_pairs \
             ORDER BY COALESCE(kafka_partition, -1), listed_at, pair",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ListedPair {
                    pair: symbol(&r.try_get::<String, _>(0)?)?,
                    spec: r.try_get(1)?,
                    listed_at: from_db(r.try_get(2)?)?,
                    partition: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// `pair`'s changes in seq order: each `PairChanged`'s seq and the fee
    /// rates after it.
    pub async fn fee_changes(&self, pair: Symbol) -> Result<Vec<(Seq, Fees)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, maker_fee_bps, taker_fee_bps FROM pair_fee_changes \
             WHERE pair = $1 ORDER BY seq",
        )
        .bind(pair.as_str().to_string())
        .fetch_all(&self.pool)
        .await?;
        let bps =
            |v: i32| u16::try_from(v).map_err(|_| StoreError::Corrupt(format!("fee rate {v}")));
        rows.iter()
            .map(|r| {
                let fees = Fees {
                    maker_bps: bps(r.try_get(1)?)?,
                    taker_bps: bps(r.try_get(2)?)?,
                };
                Ok((Seq(from_db(r.try_get(0)?)?), fees))
            })
            .collect()
    }
}
