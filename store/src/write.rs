//! The row-writing steps of [`crate::Store::write_batch`], each a set of
//! multi-row statements of at most [`ROWS_PER_STATEMENT`] rows inside the
//! batch's transaction.

use std::collections::{BTreeMap, HashSet};

use proto::{OrderId, Symbol};
use sqlx::{AnyConnection, Row};

use crate::fold::OrderUpdate;
use crate::{
    Backend, FillRow, ListStatus, OrderListRow, OrderRow, OrderStatus, ROWS_PER_STATEMENT,
    StoreError, candles, from_db, placeholders, symbol, to_db,
};

/// Whether the store's progress already covers `progress` (any pair of it:
/// a batch is committed whole). One query per [`ROWS_PER_STATEMENT`] pairs.
pub(crate) async fn already_written(
    conn: &mut AnyConnection,
    backend: Backend,
    progress: &BTreeMap<Symbol, proto::Seq>,
) -> Result<bool, StoreError> {
    let progress: Vec<_> = progress.iter().collect();
    for chunk in progress.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT 1 FROM progress JOIN (VALUES {}) AS b ON progress.pair = b.column1 \
             WHERE progress.last_seq >= b.column2 LIMIT 1",
            placeholders(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (pair, seq) in chunk {
            q = q
                .bind(pair.as_str().to_string())
                .bind(to_db(seq.0).unwrap_or(i64::MAX));
        }
        if q.fetch_optional(&mut *conn).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Records how far each pair of `progress` is stored, one statement per
/// [`ROWS_PER_STATEMENT`] pairs.
pub(crate) async fn set_progress(
    conn: &mut AnyConnection,
    backend: Backend,
    progress: &BTreeMap<Symbol, proto::Seq>,
) -> Result<(), StoreError> {
    let progress: Vec<_> = progress.iter().collect();
    for chunk in progress.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO progress (pair, last_seq) VALUES {} \
             ON CONFLICT (pair) DO UPDATE SET last_seq = excluded.last_seq",
            placeholders(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (pair, seq) in chunk {
            q = q.bind(pair.as_str().to_string()).bind(to_db(seq.0)?);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts trades; one already stored (same pair and seq) is left as is.
/// Returns the `(pair, seq)` of those inserted: only they may be added to
/// the candles, so a batch written again (a retry after a commit whose
/// answer was lost, a replay) adds nothing twice.
pub(crate) async fn insert_fills(
    conn: &mut AnyConnection,
    backend: Backend,
    fills: &[FillRow],
) -> Result<HashSet<(Symbol, u64)>, StoreError> {
    let mut inserted = HashSet::with_capacity(fills.len());
    for chunk in fills.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO fills (pair, seq, price, qty, quote_qty, taker_side, maker_order_id, \
             maker_user, taker_order_id, taker_user, ts) VALUES {} \
             ON CONFLICT (pair, seq) DO NOTHING RETURNING pair, seq",
            placeholders(backend, chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for f in chunk {
            q = q
                .bind(f.pair.as_str().to_string())
                .bind(to_db(f.seq.0)?)
                .bind(to_db(f.price.0)?)
                .bind(to_db(f.qty.0)?)
                .bind(to_db(f.quote_qty)?)
                .bind(f.taker_side.as_str())
                .bind(to_db(f.maker_order_id.0)?)
                .bind(to_db(f.maker_user.0)?)
                .bind(to_db(f.taker_order_id.0)?)
                .bind(to_db(f.taker_user.0)?)
                .bind(to_db(f.timestamp.0)?);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let pair = symbol(&r.try_get::<String, _>(0)?)?;
            inserted.insert((pair, from_db(r.try_get(1)?)?));
        }
    }
    Ok(inserted)
}

/// Adds the fills of `fills` that `inserted` names to the candles.
pub(crate) async fn add_to_candles(
    conn: &mut AnyConnection,
    backend: Backend,
    fills: &[FillRow],
    inserted: &HashSet<(Symbol, u64)>,
) -> Result<(), StoreError> {
    let new = fills
        .iter()
        .filter(|f| inserted.contains(&(f.pair, f.seq.0)));
    let buckets = candles::fold(new)?;
    candles::upsert(conn, backend, &buckets).await
}

/// Inserts orders first seen in this batch; one already stored is left as
/// is.
pub(crate) async fn insert_new_orders(
    conn: &mut AnyConnection,
    backend: Backend,
    new_orders: &BTreeMap<(Symbol, OrderId), OrderRow>,
) -> Result<(), StoreError> {
    let new_orders: Vec<&OrderRow> = new_orders.values().collect();
    for chunk in new_orders.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO orders (pair, order_id, client_order_id, user_id, side, order_type, \
             time_in_force, post_only, price, orig_qty, orig_quote_qty, executed_qty, \
             cum_quote_qty, status, created_at, updated_at, stop_price, trailing_delta, \
             iceberg_qty, good_till, order_list_id, working_time, accepted_seq) VALUES {} \
             ON CONFLICT (pair, order_id) DO NOTHING",
            placeholders(backend, chunk.len(), 23)
        );
        let mut q = sqlx::query(&sql);
        for o in chunk {
            q = q
                .bind(o.pair.as_str().to_string())
                .bind(to_db(o.order_id.0)?)
                .bind(o.client_order_id.map(|c| c.as_str().to_string()))
                .bind(to_db(o.user.0)?)
                .bind(o.side.as_str())
                .bind(o.order_type.as_str())
                .bind(o.time_in_force.as_str())
                .bind(i64::from(o.post_only))
                .bind(o.price.map(|p| to_db(p.0)).transpose()?)
                .bind(o.orig_qty.map(|q| to_db(q.0)).transpose()?)
                .bind(o.orig_quote_qty.map(to_db).transpose()?)
                .bind(to_db(o.executed_qty.0)?)
                .bind(to_db(o.cum_quote_qty)?)
                .bind(o.status.as_str())
                .bind(to_db(o.created_at.0)?)
                .bind(to_db(o.updated_at.0)?)
                .bind(o.stop_price.map(|p| to_db(p.0)).transpose()?)
                .bind(o.trailing_delta.map(i64::from))
                .bind(o.iceberg_qty.map(|q| to_db(q.0)).transpose()?)
                .bind(o.good_till.map(|t| to_db(t.0)).transpose()?)
                .bind(o.order_list_id.map(|l| to_db(l.0)).transpose()?)
                .bind(o.working_time.map(|t| to_db(t.0)).transpose()?)
                .bind(to_db(o.accepted_seq.0)?);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies changes to orders stored by earlier batches: fills add to the
/// executed totals, the rest replace.
pub(crate) async fn update_orders(
    conn: &mut AnyConnection,
    backend: Backend,
    updates: &BTreeMap<(Symbol, OrderId), OrderUpdate>,
) -> Result<(), StoreError> {
    let updates: Vec<_> = updates.iter().collect();
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        // One statement per chunk; VALUES columns are named column1.. on
        // both backends.
        // A released order works from its release unless it is
        // conditional (it then works when its trigger fires: column10).
        let sql = format!(
            "UPDATE orders SET executed_qty = orders.executed_qty + u.column3, \
             cum_quote_qty = orders.cum_quote_qty + u.column4, \
             status = COALESCE(u.column5, orders.status), \
             price = COALESCE(u.column6, orders.price), \
             orig_qty = COALESCE(u.column7, orders.orig_qty), updated_at = u.column8, \
             stop_price = COALESCE(u.column9, orders.stop_price), \
             working_time = COALESCE(u.column10, CASE WHEN u.column11 IS NOT NULL \
             AND orders.stop_price IS NULL AND orders.trailing_delta IS NULL \
             THEN u.column11 ELSE orders.working_time END) \
             FROM (VALUES {}) AS u \
             WHERE orders.pair = u.column1 AND orders.order_id = u.column2",
            placeholders(backend, chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for ((pair, order_id), u) in chunk {
            q = q
                .bind(pair.as_str().to_string())
                .bind(to_db(order_id.0)?)
                .bind(to_db(u.executed_delta)?)
                .bind(to_db(u.quote_delta)?)
                .bind(u.status.map(OrderStatus::as_str))
                .bind(u.price.map(|p| to_db(p.0)).transpose()?)
                .bind(u.orig_qty.map(|q| to_db(q.0)).transpose()?)
                .bind(to_db(u.updated_at.0)?)
                .bind(u.stop_price.map(|p| to_db(p.0)).transpose()?)
                .bind(u.working_time.map(|t| to_db(t.0)).transpose()?)
                .bind(u.released_at.map(|t| to_db(t.0)).transpose()?);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts order lists first seen in this batch; one already stored is
/// left as is.
pub(crate) async fn insert_new_lists(
    conn: &mut AnyConnection,
    backend: Backend,
    lists: &BTreeMap<(Symbol, OrderId), OrderListRow>,
) -> Result<(), StoreError> {
    let lists: Vec<&OrderListRow> = lists.values().collect();
    for chunk in lists.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO order_lists (pair, list_id, client_list_id, user_id, kind, status, \
             order_id_0, client_order_id_0, order_id_1, client_order_id_1, created_at, \
             updated_at) VALUES {} ON CONFLICT (pair, list_id) DO NOTHING",
            placeholders(backend, chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            let cid = |c: Option<proto::ClientOrderId>| c.map(|c| c.as_str().to_string());
            q = q
                .bind(l.pair.as_str().to_string())
                .bind(to_db(l.list_id.0)?)
                .bind(cid(l.client_list_id))
                .bind(to_db(l.user.0)?)
                .bind(l.kind.as_str())
                .bind(l.status.as_str())
                .bind(to_db(l.orders[0].order_id.0)?)
                .bind(cid(l.orders[0].client_order_id))
                .bind(to_db(l.orders[1].order_id.0)?)
                .bind(cid(l.orders[1].client_order_id))
                .bind(to_db(l.created_at.0)?)
                .bind(to_db(l.updated_at.0)?);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Marks lists stored by earlier batches as over.
pub(crate) async fn end_lists(
    conn: &mut AnyConnection,
    done: &BTreeMap<(Symbol, OrderId), proto::Timestamp>,
) -> Result<(), StoreError> {
    for ((pair, list_id), at) in done {
        sqlx::query(
            "UPDATE order_lists SET status = $1, updated_at = $2 WHERE pair = $3 AND list_id = $4",
        )
        .bind(ListStatus::AllDone.as_str())
        .bind(to_db(at.0)?)
        .bind(pair.as_str().to_string())
        .bind(to_db(list_id.0)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
