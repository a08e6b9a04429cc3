//! Persistence through sqlx, in an SQLite file (embedded mode, the default)
//! or Postgres (a `postgres://` URL). One schema, migrated per backend; the
//! queries are portable SQL with `$n` placeholders, numbered in the order
//! they appear (SQLite binds them by first appearance). Multi-row statements
//! use plain `?` on SQLite instead: SQLite resolves each `$n` by a linear
//! search of the statement's names, quadratic in a 2,000-parameter insert.
//!
//! Architecture Invariant: writes are idempotent on `(pair, seq)`. The
//! persister skips events at or below the pair's recorded `last_seq` and
//! advances it in the same transaction as the rows those events produce.
//! Fills are inserted once per `(pair, seq)` (a second insert does
//! nothing), and only the fills a transaction actually inserts are added to
//! the candles, so candles count every stored fill exactly once.

mod admin;
mod candles;
mod fold;
mod halts;
mod history;
mod interval;
mod keys;
mod klines;
mod leases;
mod listen_keys;
mod listings;
mod lists;
mod queries;
mod risk;
mod ticker;
mod write;

use std::collections::HashMap;
use std::fmt;

use proto::{Seq, Symbol};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

pub use admin::AdminKey;
pub use fold::{
    Batch, FillRow, ListLeg, ListStatus, OrderListRow, OrderRow, OrderStatus, SiblingCause,
    quote_value, stored_size,
};
pub use halts::HaltedPair;
pub use history::{AggTrade, TradeFilter, UserTrade};
pub use interval::{Interval, parse_time_zone};
pub use keys::ApiKey;
pub use klines::{Candle, KlineWindow};
pub use leases::{Lease, LeaseKey, Member, Role};
pub use listen_keys::ListenKey;
pub use listings::ListedPair;
pub use lists::{ListFilter, ListLookup, TradeOrder};
pub use queries::OrderLookup;
pub use risk::RiskSnapshotRow;
pub use ticker::WindowStats;

/// What went wrong in the store.
#[derive(Debug)]
pub enum StoreError {
    /// The database refused or failed.
    Db(sqlx::Error),
    /// A migration failed.
    Migrate(sqlx::migrate::MigrateError),
    /// A stored value does not fit its type (a corrupt or foreign row).
    Corrupt(String),
    /// A value to store does not fit its column; retrying cannot help.
    Unstorable(String),
    /// The URL names neither SQLite nor Postgres.
    UnsupportedUrl(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "database: {e}"),
            StoreError::Migrate(e) => write!(f, "migration: {e}"),
            StoreError::Corrupt(m) => write!(f, "corrupt row: {m}"),
            StoreError::Unstorable(m) => write!(f, "cannot be stored: {m}"),
            StoreError::UnsupportedUrl(u) => write!(
                f,
                "unsupported database URL {u:?}: expected sqlite://PATH or postgres://..."
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// True when writing the same rows again must fail the same way: a
    /// value out of range, or a row the database refuses by its data or its
    /// constraints. False for what may pass on a retry: lost connections,
    /// timeouts, a busy or read-only database (an Aurora failover), a full
    /// disk.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Corrupt(_) | StoreError::Unstorable(_) => true,
            StoreError::Db(sqlx::Error::Database(e)) => {
                let code = e.code().unwrap_or_default();
                if e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE class 22 data exception, 23 integrity
                    // constraint violation, P0001 raised by a trigger.
                    code.starts_with("22") || code.starts_with("23") || code == "P0001"
                } else {
                    // SQLite's primary result code is the low byte of the
                    // extended one: TOOBIG 18, CONSTRAINT 19 (triggers'
                    // RAISE(ABORT) included), MISMATCH 20, RANGE 25.
                    code.parse::<i32>()
                        .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25))
                }
            }
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file, embedded in the process.
    Sqlite,
    /// A server (Aurora-compatible).
    Postgres,
}

/// A pair's latest snapshot and the command-log position it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The pair.
    pub pair: Symbol,
    /// The last command-log position applied to the book.
    pub position: u64,
    /// The book's last event seq.
    pub seq: Seq,
    /// The book's state hash, checked on restore.
    pub state_hash: u64,
    /// The serialized book.
    pub data: Vec<u8>,
    /// When it was taken, nanoseconds since the epoch.
    pub taken_at: u64,
    /// Distributed mode: the offset in the pair's events partition from
    /// which every event after `seq` can be read, where a gateway starts
    /// its view of the pair. `None` where unknown; a newer snapshot stored
    /// without one keeps the older one's, which is as valid for it (its
    /// later events are a subset).
    pub events_from: Option<u64>,
}

/// A pool on one database.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads, and on Postgres also writes.
    pool: AnyPool,
    /// Writes. On SQLite a single connection: SQLite has one write lock, and
    /// writers that contend for it sleep in its busy handler for
    /// milliseconds, while waiting for this pool's one connection is a
    /// fair async queue.
    writer: AnyPool,
    backend: Backend,
}

/// Most rows in one multi-row statement: keeps the bind count under every
/// backend's limit.
const ROWS_PER_STATEMENT: usize = 200;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// `u64` domain value to a database integer.
pub(crate) fn to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Unstorable(format!("{v} does not fit a BIGINT")))
}

/// Database integer back to a `u64` domain value.
pub(crate) fn from_db(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

pub(crate) fn symbol(s: &str) -> Result<Symbol, StoreError> {
    Symbol::new(s).map_err(|_| StoreError::Corrupt(format!("bad symbol {s:?}")))
}

/// `($1, $2, $3), ($4, $5, $6), ...` for `rows` rows of `cols` columns, or
/// with `?` for each on SQLite.
pub(crate) fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// How many WAL pages a commit leaves before it checkpoints them into the
/// database (SQLite's default is 1,000). The writer's commits touch the
/// same index pages over and over (a user's orders, a user's fills), and a
/// checkpoint writes each page once however many frames it has: at 1,000 a
/// checkpoint came about every quarter second at 4,000 orders/s and, with
/// its `fsync`, took 30% of the writer thread. 10,000 (a WAL of about 40 MiB
/// between checkpoints) cut the writer's CPU by about 15% (README,
/// "Performance").
const WAL_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 10000";

impl Store {
    /// Connects to `url` (`sqlite://PATH` creates the file; `postgres://...`)
    /// and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new().after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; NORMAL
                    // syncs at checkpoints, enough for a WAL database to
                    // survive a process crash.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                        // 64 MiB of page cache: the order and fill indexes
                        // stay in memory instead of being read back per
                        // transaction.
                        "PRAGMA cache_size = -65536",
                        // Statement journals of multi-row upserts in memory.
                        "PRAGMA temp_store = MEMORY",
                        WAL_AUTOCHECKPOINT,
                    ] {
                        conn.execute(pragma).await?;
                    }
                }
                Ok(())
            })
        });
        let pool = options
            .clone()
            .max_connections(max_connections)
            .connect(&url)
            .await?;
        let writer = match backend {
            Backend::Sqlite => options.max_connections(1).connect(&url).await?,
            Backend::Postgres => pool.clone(),
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&writer).await.map_err(StoreError::Migrate)?;
        Ok(Store {
            pool,
            writer,
            backend,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A read transaction: one consistent view for a query of several
    /// statements (Postgres reads each statement of a READ COMMITTED
    /// transaction at its own snapshot; an SQLite transaction keeps one).
    pub(crate) async fn begin_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await?;
        }
        Ok(tx)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// True when the journal table that versions before the file journal
    /// wrote still holds commands. This version no longer replays it: a
    /// data directory with such rows must first be started once by the
    /// previous version, whose snapshots then cover (and delete) them.
    pub async fn has_legacy_journal(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM (SELECT 1 FROM journal LIMIT 1) AS j")
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get(0)?;
        Ok(n > 0)
    }

    /// The latest snapshot of `pair`, if one was taken.
    pub async fn latest_snapshot(&self, pair: Symbol) -> Result<Option<SnapshotRow>, StoreError> {
        let row = sqlx::query(
            "SELECT position, seq, state_hash, data, taken_at, events_from FROM snapshots \
             WHERE pair = $1",
        )
        .bind(pair.as_str().to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SnapshotRow {
                pair,
                position: from_db(r.try_get(0)?)?,
                seq: Seq(from_db(r.try_get(1)?)?),
                // The hash is stored bit for bit in a signed column.
                state_hash: r.try_get::<i64, _>(2)? as u64,
                data: r.try_get(3)?,
                taken_at: from_db(r.try_get(4)?)?,
                events_from: r.try_get::<Option<i64>, _>(5)?.map(from_db).transpose()?,
            })
        })
        .transpose()
    }

    /// The last persisted event seq per pair.
    pub async fn last_seqs(&self) -> Result<HashMap<Symbol, Seq>, StoreError> {
        let rows = sqlx::query("SELECT pair, last_seq FROM progress")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    symbol(&r.try_get::<String, _>(0)?)?,
                    Seq(from_db(r.try_get(1)?)?),
                ))
            })
            .collect()
    }

    /// The next offset to read of each partition of `topic`, as stored by
    /// [`Batch::set_log_offset`].
    pub async fn log_offsets(&self, topic: &str) -> Result<HashMap<i32, u64>, StoreError> {
        let rows = sqlx::query("SELECT partition, next_offset FROM log_offsets WHERE topic = $1")
            .bind(topic.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::new();
        for r in rows {
            let partition = i32::try_from(r.try_get::<i64, _>(0)?)
                .map_err(|_| StoreError::Corrupt("partition out of range".into()))?;
            out.insert(partition, from_db(r.try_get(1)?)?);
        }
        Ok(out)
    }

    /// A number for a starting process of `role`, unique among the last
    /// [`proto::InstanceId::COUNT`] registered.
    pub async fn register_instance(
        &self,
        role: &str,
        now: u64,
    ) -> Result<proto::InstanceId, StoreError> {
        let row = sqlx::query(
            "INSERT INTO instances (role, started_at) VALUES ($1, $2) RETURNING instance_id",
        )
        .bind(role.to_string())
        .bind(to_db(now)?)
        .fetch_one(&self.writer)
        .await?;
        Ok(proto::InstanceId::from_registration(from_db(
            row.try_get(0)?,
        )?))
    }

    /// `pair`'s forward fence and the snapshot position it belongs to.
    pub async fn forward_fence(&self, pair: Symbol) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT position, fence FROM forward_fences WHERE pair = $1")
            .bind(pair.as_str().to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((from_db(r.try_get(0)?)?, r.try_get(1)?)))
            .transpose()
    }

    /// Writes a batch in one transaction: fills and the candles they add to,
    /// order states, snapshots (and the journal trimmed up to them) and the
    /// new `last_seq` of each pair.
    pub async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if let Some((pair, why)) = batch.faults.first_key_value() {
            return Err(StoreError::Unstorable(format!("{pair}: {why}")));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        // A batch is written whole or not at all, so one whose progress the
        // store already holds was committed before: a retry after a commit
        // whose answer was lost, or a replay. Its order updates add deltas
        // and must not be applied twice.
        if write::already_written(&mut tx, self.backend, &batch.progress).await? {
            return Ok(());
        }
        let inserted = write::insert_fills(&mut tx, self.backend, &batch.fills).await?;
        write::add_to_candles(&mut tx, self.backend, &batch.fills, &inserted).await?;
        write::insert_new_orders(&mut tx, self.backend, &batch.new_orders).await?;
        write::update_orders(&mut tx, self.backend, &batch.updates).await?;
        write::insert_new_lists(&mut tx, self.backend, &batch.new_lists).await?;
        write::end_lists(&mut tx, &batch.lists_done).await?;
        // A snapshot never replaces a newer one: an engine that lost its
        // pair may store its final snapshot after the new owner's.
        for s in batch.snapshots.values() {
            sqlx::query(
                "INSERT INTO snapshots \
                 (pair, position, seq, state_hash, data, taken_at, events_from) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (pair) DO UPDATE SET \
                 position = excluded.position, seq = excluded.seq, \
                 state_hash = excluded.state_hash, data = excluded.data, \
                 taken_at = excluded.taken_at, \
                 events_from = COALESCE(excluded.events_from, snapshots.events_from) \
                 WHERE excluded.position > snapshots.position",
            )
            .bind(s.pair.as_str().to_string())
            .bind(to_db(s.position)?)
            .bind(to_db(s.seq.0)?)
            .bind(s.state_hash as i64)
            .bind(s.data.clone())
            .bind(to_db(s.taken_at)?)
            .bind(s.events_from.map(to_db).transpose()?)
            .execute(&mut *tx)
            .await?;
        }
        for ((pair, seq), fees) in &batch.fee_changes {
            sqlx::query(
                "INSERT INTO pair_fee_changes (pair, seq, maker_fee_bps, taker_fee_bps) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (pair, seq) DO NOTHING",
            )
            .bind(pair.as_str().to_string())
            .bind(to_db(seq.0)?)
            .bind(i32::from(fees.maker_bps))
            .bind(i32::from(fees.taker_bps))
            .execute(&mut *tx)
            .await?;
        }
        for (pair, (position, fence)) in &batch.fences {
            sqlx::query(
                "INSERT INTO forward_fences (pair, position, fence) VALUES ($1, $2, $3) \
                 ON CONFLICT (pair) DO UPDATE SET position = excluded.position, \
                 fence = excluded.fence WHERE excluded.position > forward_fences.position",
            )
            .bind(pair.as_str().to_string())
            .bind(to_db(*position)?)
            .bind(fence.clone())
            .execute(&mut *tx)
            .await?;
        }
        for ((topic, partition), next) in &batch.log_offsets {
            sqlx::query(
                "INSERT INTO log_offsets (topic, partition, next_offset) VALUES ($1, $2, $3) \
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            )
            .bind(topic.clone())
            .bind(i64::from(*partition))
            .bind(to_db(*next)?)
            .execute(&mut *tx)
            .await?;
        }
        write::set_progress(&mut tx, self.backend, &batch.progress).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Creates the Postgres database `name` through `admin_url` (a connection to
/// any existing database) and returns the URL of the new one: for a fresh,
/// isolated database per test run or first-time setup.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Corrupt(format!("bad database name {name:?}")));
    }
    install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    <sqlx::AnyConnection as sqlx::Connection>::close(conn).await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_in_order() {
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[tokio::test]
    async fn sqlite_checkpoints_every_ten_thousand_pages() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
        let store = Store::connect(&url, 2).await.unwrap();
        for pool in [&store.writer, &store.pool] {
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(pages, 10_000);
        }
    }
}
