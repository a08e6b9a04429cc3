//! Open order lists (OCO and OTO): which orders belong together until the
//! list is done.

use proto::{ClientOrderId, ListKind, OrderId, UserId};
use serde::{Deserialize, Serialize};

use crate::hash::IdMap;

/// An open order list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderList {
    /// The list's id.
    pub list_id: OrderId,
    /// Its client list id, if any.
    pub client_list_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// OCO or OTO.
    pub kind: ListKind,
    /// Its orders, in the order given (OTO: working, then pending).
    pub legs: [OrderId; 2],
    /// The placement number of its first order: lists end in this order
    /// when a cancel-all ends several.
    pub placed: u64,
}

/// The open lists, by id and by client list id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lists {
    by_id: IdMap<OrderId, OrderList>,
    client_ids: IdMap<(UserId, ClientOrderId), OrderId>,
}

impl Lists {
    pub(crate) fn get(&self, id: OrderId) -> Option<&OrderList> {
        self.by_id.get(&id)
    }

    pub(crate) fn by_client(&self, user: UserId, cid: ClientOrderId) -> Option<OrderId> {
        self.client_ids.get(&(user, cid)).copied()
    }

    pub(crate) fn insert(&mut self, list: OrderList) {
        if let Some(cid) = list.client_list_id {
            self.client_ids.insert((list.user, cid), list.list_id);
        }
        self.by_id.insert(list.list_id, list);
    }

    pub(crate) fn remove(&mut self, id: OrderId) -> Option<OrderList> {
        let list = self.by_id.remove(&id)?;
        if let Some(cid) = list.client_list_id {
            self.client_ids.remove(&(list.user, cid));
        }
        Some(list)
    }

    /// A user's open lists in placement order.
    pub(crate) fn of_user(&self, user: UserId) -> Vec<OrderList> {
        let mut mine: Vec<OrderList> = self
            .by_id
            .values()
            .filter(|l| l.user == user)
            .copied()
            .collect();
        mine.sort_unstable_by_key(|l| l.placed);
        mine
    }

    /// Every open list in id order: the canonical order of snapshots.
    pub(crate) fn canonical(&self) -> Vec<OrderList> {
        let mut all: Vec<OrderList> = self.by_id.values().copied().collect();
        all.sort_unstable_by_key(|l| l.list_id);
        all
    }
}
