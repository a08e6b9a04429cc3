//! The read paths: order status and trade history come from the store, not
//! from the engine, and trail it by the persister's lag.

use proto::{ClientOrderId, ListKind, OrderId, Price, Qty, Seq, Side, Symbol, Timestamp, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    FillRow, ListLeg, ListStatus, OrderListRow, OrderRow, OrderStatus, Store, StoreError, from_db,
    symbol, to_db,
};

/// How a query names an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderLookup {
    /// By order id.
    Id(OrderId),
    /// By the owner's client order id (the most recent order with it).
    Client(ClientOrderId),
}

pub(crate) const ORDER_COLUMNS: &str = "pair, order_id, client_order_id, user_id, side, order_type, \
    time_in_force, post_only, price, orig_qty, orig_quote_qty, executed_qty, cum_quote_qty, \
    status, created_at, updated_at, stop_price, trailing_delta, iceberg_qty, good_till, \
    order_list_id, working_time, accepted_seq";

/// A user's open orders (`$1`), on one pair (`$2`) or all (`''`): its
/// status condition is the partial index `orders_open_by_user`'s (store
/// migration 0018), so the index serves it.
fn open_orders_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 \
         AND status IN {OPEN_STATUSES} AND ($2 = '' OR pair = $2) \
         ORDER BY created_at, order_id"
    )
}

/// The statuses of an open order, as SQL.
const OPEN_STATUSES: &str = "('NEW', 'PARTIALLY_FILLED', 'PENDING_NEW')";

pub(crate) const FILL_COLUMNS: &str = "pair, seq, price, qty, quote_qty, taker_side, maker_order_id, \
    maker_user, taker_order_id, taker_user, ts";

fn status(s: &str) -> Result<OrderStatus, StoreError> {
    OrderStatus::from_name(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown order status {s:?}")))
}

fn side(s: &str) -> Result<Side, StoreError> {
    Side::from_name(s).ok_or_else(|| StoreError::Corrupt(format!("unknown side {s:?}")))
}

fn opt_u64(r: &AnyRow, i: usize) -> Result<Option<u64>, StoreError> {
    r.try_get::<Option<i64>, _>(i)?.map(from_db).transpose()
}

fn u64_at(r: &AnyRow, i: usize) -> Result<u64, StoreError> {
    from_db(r.try_get(i)?)
}

fn client_id_at(r: &AnyRow, i: usize) -> Result<Option<ClientOrderId>, StoreError> {
    r.try_get::<Option<String>, _>(i)?
        .map(|c| {
            ClientOrderId::new(&c)
                .map_err(|_| StoreError::Corrupt(format!("bad client order id {c:?}")))
        })
        .transpose()
}

pub(crate) fn order_row(r: &AnyRow) -> Result<OrderRow, StoreError> {
    let client_order_id = client_id_at(r, 2)?;
    let trailing_delta = opt_u64(r, 17)?
        .map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt(format!("trailing delta {d}"))))
        .transpose()?;
    Ok(OrderRow {
        pair: symbol(&r.try_get::<String, _>(0)?)?,
        order_id: OrderId(u64_at(r, 1)?),
        client_order_id,
        user: UserId(u64_at(r, 3)?),
        side: side(&r.try_get::<String, _>(4)?)?,
        order_type: r.try_get(5)?,
        time_in_force: r.try_get(6)?,
        post_only: r.try_get::<i64, _>(7)? != 0,
        price: opt_u64(r, 8)?.map(Price),
        orig_qty: opt_u64(r, 9)?.map(Qty),
        orig_quote_qty: opt_u64(r, 10)?,
        executed_qty: Qty(u64_at(r, 11)?),
        cum_quote_qty: u64_at(r, 12)?,
        status: status(&r.try_get::<String, _>(13)?)?,
        created_at: Timestamp(u64_at(r, 14)?),
        updated_at: Timestamp(u64_at(r, 15)?),
        stop_price: opt_u64(r, 16)?.map(Price),
        trailing_delta,
        iceberg_qty: opt_u64(r, 18)?.map(Qty),
        good_till: opt_u64(r, 19)?.map(Timestamp),
        order_list_id: opt_u64(r, 20)?.map(OrderId),
        working_time: opt_u64(r, 21)?.map(Timestamp),
        accepted_seq: Seq(opt_u64(r, 22)?.unwrap_or(0)),
    })
}

pub(crate) const LIST_COLUMNS: &str = "pair, list_id, client_list_id, user_id, kind, status, \
    order_id_0, client_order_id_0, order_id_1, client_order_id_1, created_at, updated_at";

pub(crate) fn list_row(r: &AnyRow) -> Result<OrderListRow, StoreError> {
    let kind: String = r.try_get(4)?;
    let status: String = r.try_get(5)?;
    Ok(OrderListRow {
        pair: symbol(&r.try_get::<String, _>(0)?)?,
        list_id: OrderId(u64_at(r, 1)?),
        client_list_id: client_id_at(r, 2)?,
        user: UserId(u64_at(r, 3)?),
        kind: ListKind::from_name(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown list kind {kind:?}")))?,
        status: ListStatus::from_name(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown list status {status:?}")))?,
        orders: [
            ListLeg {
                order_id: OrderId(u64_at(r, 6)?),
                client_order_id: client_id_at(r, 7)?,
            },
            ListLeg {
                order_id: OrderId(u64_at(r, 8)?),
                client_order_id: client_id_at(r, 9)?,
            },
        ],
        created_at: Timestamp(u64_at(r, 10)?),
        updated_at: Timestamp(u64_at(r, 11)?),
    })
}

pub(crate) fn fill_row(r: &AnyRow) -> Result<FillRow, StoreError> {
    Ok(FillRow {
        pair: symbol(&r.try_get::<String, _>(0)?)?,
        seq: Seq(u64_at(r, 1)?),
        price: Price(u64_at(r, 2)?),
        qty: Qty(u64_at(r, 3)?),
        quote_qty: u64_at(r, 4)?,
        taker_side: side(&r.try_get::<String, _>(5)?)?,
        maker_order_id: OrderId(u64_at(r, 6)?),
        maker_user: UserId(u64_at(r, 7)?),
        taker_order_id: OrderId(u64_at(r, 8)?),
        taker_user: UserId(u64_at(r, 9)?),
        timestamp: Timestamp(u64_at(r, 10)?),
    })
}

impl Store {
    /// One of `user`'s orders on `pair`.
    pub async fn order(
        &self,
        pair: Symbol,
        user: UserId,
        lookup: OrderLookup,
    ) -> Result<Option<OrderRow>, StoreError> {
        // Stored ids are database integers: a larger id names no order.
        if let OrderLookup::Id(id) = lookup
            && i64::try_from(id.0).is_err()
        {
            return Ok(None);
        }
        let (filter, order) = match lookup {
            OrderLookup::Id(_) => ("order_id = $3", ""),
            OrderLookup::Client(_) => (
                "client_order_id = $3",
                " ORDER BY created_at DESC, order_id DESC LIMIT 1",
            ),
        };
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE pair = $1 AND user_id = $2 AND {filter}{order}"
        );
        let q = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(to_db(user.0)?);
        let q = match lookup {
            OrderLookup::Id(id) => q.bind(to_db(id.0)?),
            OrderLookup::Client(cid) => q.bind(cid.as_str().to_string()),
        };
        q.fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(order_row)
            .transpose()
    }

    /// `user`'s open orders, on one pair or all, oldest first.
    pub async fn open_orders(
        &self,
        user: UserId,
        pair: Option<Symbol>,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let rows = sqlx::query(&open_orders_sql())
            .bind(to_db(user.0)?)
            .bind(pair.map(|p| p.as_str().to_string()).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_row).collect()
    }

    /// Every open order of `pair`, oldest first: what a gateway's order
    /// view starts from.
    pub async fn open_orders_of_pair(&self, pair: Symbol) -> Result<Vec<OrderRow>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE pair = $1 \
             AND status IN {OPEN_STATUSES} ORDER BY order_id"
        );
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_row).collect()
    }

    /// The most recent trades of `pair`, newest first.
    pub async fn trades(&self, pair: Symbol, limit: u32) -> Result<Vec<FillRow>, StoreError> {
        let sql =
            format!("SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 ORDER BY seq DESC LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fill_row).collect()
    }

    /// `user`'s most recent trades on `pair`, as maker or taker, newest first.
    pub async fn user_trades(
        &self,
        user: UserId,
        pair: Symbol,
        limit: u32,
    ) -> Result<Vec<FillRow>, StoreError> {
        let sql = format!(
            "SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 \
             AND (maker_user = $2 OR taker_user = $2) ORDER BY seq DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(to_db(user.0)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fill_row).collect()
    }

    /// All fills of `pair` in seq order: for checks and audits.
    pub async fn all_fills(&self, pair: Symbol) -> Result<Vec<FillRow>, StoreError> {
        let sql = format!("SELECT {FILL_COLUMNS} FROM fills WHERE pair = $1 ORDER BY seq");
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fill_row).collect()
    }
}

impl Store {
    /// The largest order or list id ever stored (they share one
    /// sequence), or 0.
    pub async fn max_order_id(&self) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MAX(order_id) FROM orders), (SELECT MAX(list_id) FROM order_lists)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(opt_u64(&row, 0)?
            .unwrap_or(0)
            .max(opt_u64(&row, 1)?.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// The partial index holds only open orders, so a query whose status
    /// condition differs from its predicate in any way would silently scan
    /// instead.
    #[tokio::test]
    async fn open_orders_are_read_through_the_open_orders_index() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let url = format!("sqlite:{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url, 1).await.expect("a store");
        let plan = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", open_orders_sql()))
            .bind(1_i64)
            .bind("")
            .fetch_all(&store.pool)
            .await
            .expect("a plan");
        let steps: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String, _>(3).expect("a step"))
            .collect();
        assert!(
            steps
                .iter()
                .any(|s| s.contains("USING INDEX orders_open_by_user")),
            "{steps:?}"
        );
    }
}
