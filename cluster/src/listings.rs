//! Pairs listed at runtime in distributed mode. A gateway records the
//! listing in the store with the lowest spare partition of both topics
//! (`listed_pairs.kafka_partition`, unique); every role polls the rows and
//! adds what it does not run yet to its [`Partitions`], which its clones
//! share. A new partition is read from offset zero everywhere, so nothing
//! written to it before a role noticed the pair is missed.

use std::time::Duration;

use proto::{PairConfig, PairSpec};
use store::{ListedPair, Store};
use tracing::warn;

use crate::error::ClusterError;
use crate::kafka::Partitions;

/// How often a role looks for new listings: a pair listed through one
/// gateway takes orders on the others within about this long.
pub(crate) const LISTING_POLL: Duration = Duration::from_millis(500);

/// A pair listed at runtime, with its partition of both topics.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its rules and fee rates.
    pub config: PairConfig,
    /// Its partition of `orders` and `events`.
    pub partition: i32,
}

/// Reads a row: `None` for a listing of the embedded exchange (no
/// partition).
pub fn read_listing(row: &ListedPair) -> Result<Option<Listed>, ClusterError> {
    let Some(partition) = row.partition else {
        return Ok(None);
    };
    let bad = |e: String| ClusterError::Config(format!("listed pair {}: {e}", row.pair));
    let spec: PairSpec = serde_json::from_str(&row.spec).map_err(|e| bad(e.to_string()))?;
    let config = spec.config().map_err(|e| bad(e.to_string()))?;
    Ok(Some(Listed { config, partition }))
}

/// The stored listings `partitions` does not have yet, added to it, in
/// listing order (see [`adopt`]).
pub async fn adopt_listings(
    store: &Store,
    partitions: &Partitions,
) -> Result<Vec<Listed>, ClusterError> {
    Ok(adopt(&stored_listings(store).await?, partitions))
}

/// Every stored listing, in listing order.
pub(crate) async fn stored_listings(store: &Store) -> Result<Vec<ListedPair>, ClusterError> {
    store
        .listed_pairs()
        .await
        .map_err(|e| ClusterError::store("reading the listed pairs", e))
}

/// The listings among `rows` that `partitions` does not have yet, added to
/// it, in order.
pub(crate) fn adopt(rows: &[ListedPair], partitions: &Partitions) -> Vec<Listed> {
    // Rows of pairs served already are not read again.
    let unseen = rows.iter().filter(|r| partitions.of(r.pair).is_none());
    in_partitions(unseen, partitions)
        .into_iter()
        .filter_map(|(listed, new)| new.then_some(listed))
        .collect()
}

/// Every listing among `rows` with a partition, in order, each added to
/// `partitions` and marked whether it was new there. A row that does not
/// read, or that clashes with the config file's pairs, is reported and
/// skipped.
pub(crate) fn in_partitions<'a>(
    rows: impl IntoIterator<Item = &'a ListedPair>,
    partitions: &Partitions,
) -> Vec<(Listed, bool)> {
    let mut out = Vec::new();
    for row in rows {
        let listed = match read_listing(row) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "a listing is skipped");
                continue;
            }
        };
        match partitions.add(&listed.config, listed.partition) {
            Ok(new) => out.push((listed, new)),
            Err(e) => warn!(error = %e, "a listing is skipped"),
        }
    }
    out
}
