//! Order lists (OCO, OTO) as stored, and Binance's queries of them:
//! `orderList`, `allOrderList`, `openOrderList`. A list id is unique across
//! pairs (lists take their ids from the order ids' sequence), so none of
//! them names a pair.

use proto::{ClientOrderId, OrderId, Symbol, UserId};

use crate::history::{Params, id_from, ns_window};
use crate::queries::{LIST_COLUMNS, ORDER_COLUMNS, list_row, order_row};
use crate::{ListStatus, OrderListRow, OrderRow, Store, StoreError, to_db};

/// How a query names an order list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListLookup {
    /// By list id.
    Id(OrderId),
    /// By the owner's client list id (the most recent list with it).
    Client(ClientOrderId),
}

/// What a trade reports of one of its orders (see [`Store::trade_orders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeOrder {
    /// The list it is in.
    pub list_id: Option<OrderId>,
    /// The seq of its `Accepted` event; 0 where unknown.
    pub accepted_seq: proto::Seq,
}

/// What `allOrderList` asks for, beside the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// From this list id, inclusive.
    pub from_id: Option<OrderId>,
    /// Placed from this time (UTC ms), inclusive.
    pub start_ms: Option<u64>,
    /// Placed up to this time (UTC ms), inclusive.
    pub end_ms: Option<u64>,
    /// At most this many lists.
    pub limit: u32,
}

impl Store {
    /// One of `user`'s order lists, on `pair` or on any pair. A client list
    /// id is unique only among a pair's open lists: a cancel, which names
    /// its pair, must not find the same id's newer list on another pair.
    pub async fn order_list(
        &self,
        user: UserId,
        lookup: ListLookup,
        pair: Option<Symbol>,
    ) -> Result<Option<OrderListRow>, StoreError> {
        let sql = match lookup {
            // Stored ids are database integers: a larger id names no list.
            ListLookup::Id(id) if i64::try_from(id.0).is_err() => return Ok(None),
            ListLookup::Id(_) => {
                format!(
                    "SELECT {LIST_COLUMNS} FROM order_lists WHERE user_id = $1 AND list_id = $2"
                )
            }
            ListLookup::Client(_) => format!(
                "SELECT {LIST_COLUMNS} FROM order_lists WHERE user_id = $1 \
                 AND client_list_id = $2 AND ($3 = '' OR pair = $3) \
                 ORDER BY created_at DESC, list_id DESC LIMIT 1"
            ),
        };
        let q = sqlx::query(&sql).bind(to_db(user.0)?);
        let q = match lookup {
            ListLookup::Id(id) => q.bind(to_db(id.0)?),
            ListLookup::Client(cid) => q
                .bind(cid.as_str().to_string())
                .bind(pair.map(|p| p.as_str().to_string()).unwrap_or_default()),
        };
        q.fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(list_row)
            .transpose()
    }

    /// Binance's `allOrderList`: `user`'s lists on every pair with id `>=
    /// from_id`, or else placed from `start_ms`, the first `limit`;
    /// otherwise the last `limit` (placed up to `end_ms`); ascending by id.
    pub async fn order_lists(
        &self,
        user: UserId,
        filter: ListFilter,
    ) -> Result<Vec<OrderListRow>, StoreError> {
        let ascending = filter.from_id.is_some() || filter.start_ms.is_some();
        let (lo, hi) = ns_window(filter.start_ms, filter.end_ms);
        let mut p = Params::default();
        let mut conds = String::new();
        if let Some(id) = filter.from_id {
            conds += &format!(" AND list_id >= {}", p.push(1, id_from(id.0)));
        }
        if filter.start_ms.is_some() {
            conds += &format!(" AND created_at >= {}", p.push(1, lo));
        }
        if filter.end_ms.is_some() {
            conds += &format!(" AND created_at < {}", p.push(1, hi));
        }
        let dir = if ascending { "ASC" } else { "DESC" };
        let lim = p.push(1, i64::from(filter.limit));
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM order_lists WHERE user_id = $1{conds} \
             ORDER BY list_id {dir} LIMIT {lim}"
        );
        let mut q = sqlx::query(&sql).bind(to_db(user.0)?);
        for v in p.values {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = rows.iter().map(list_row).collect::<Result<Vec<_>, _>>()?;
        if !ascending {
            out.reverse();
        }
        Ok(out)
    }

    /// `user`'s open lists on every pair, oldest first.
    pub async fn open_order_lists(&self, user: UserId) -> Result<Vec<OrderListRow>, StoreError> {
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM order_lists WHERE user_id = $1 AND status = $2 \
             ORDER BY list_id"
        );
        let rows = sqlx::query(&sql)
            .bind(to_db(user.0)?)
            .bind(ListStatus::Executing.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(list_row).collect()
    }

    /// What a trade reports of the stored orders `ids` of `pair`: the list
    /// each is in (a trade's `orderListId`) and the seq it was accepted at
    /// (the rates it is charged).
    pub async fn trade_orders(
        &self,
        pair: proto::Symbol,
        ids: &[OrderId],
    ) -> Result<std::collections::HashMap<OrderId, TradeOrder>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for chunk in ids.chunks(crate::ROWS_PER_STATEMENT) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT order_id, order_list_id, accepted_seq FROM orders WHERE pair = $1 \
                 AND order_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(pair.as_str().to_string());
            for id in chunk {
                q = q.bind(id_from(id.0));
            }
            for r in q.fetch_all(&self.pool).await? {
                let order: i64 = sqlx::Row::try_get(&r, 0)?;
                let list: Option<i64> = sqlx::Row::try_get(&r, 1)?;
                let accepted: Option<i64> = sqlx::Row::try_get(&r, 2)?;
                let facts = TradeOrder {
                    list_id: list.map(crate::from_db).transpose()?.map(OrderId),
                    accepted_seq: proto::Seq(
                        accepted.map(crate::from_db).transpose()?.unwrap_or(0),
                    ),
                };
                out.insert(OrderId(crate::from_db(order)?), facts);
            }
        }
        Ok(out)
    }

    /// Every open list of `pair`, by id: what a gateway's order view
    /// starts from.
    pub async fn open_order_lists_of_pair(
        &self,
        pair: proto::Symbol,
    ) -> Result<Vec<OrderListRow>, StoreError> {
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM order_lists WHERE pair = $1 AND status = $2 ORDER BY list_id"
        );
        let rows = sqlx::query(&sql)
            .bind(pair.as_str().to_string())
            .bind(ListStatus::Executing.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(list_row).collect()
    }

    /// The orders of `list` as stored, in the list's order; an order not
    /// stored yet is left out.
    pub async fn list_orders(&self, list: &OrderListRow) -> Result<Vec<OrderRow>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE pair = $1 AND user_id = $2 \
             AND order_id IN ($3, $4) ORDER BY order_id"
        );
        let rows = sqlx::query(&sql)
            .bind(list.pair.as_str().to_string())
            .bind(to_db(list.user.0)?)
            .bind(to_db(list.orders[0].order_id.0)?)
            .bind(to_db(list.orders[1].order_id.0)?)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows.iter().map(order_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|o| usize::from(o.order_id != list.orders[0].order_id));
        Ok(out)
    }
}
