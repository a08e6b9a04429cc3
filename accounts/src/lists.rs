//! Order lists: the holds of an OCO's two orders, locked once for both, and
//! of an OTO's, each its own.
//!
//! An OCO's orders are on one side, and only one of them can trade: the
//! first fill or trigger of either cancels the other in the same command
//! (the engine's rule). So the list locks once, the larger need of the two
//! ([`ListHold::amount`]), and each order keeps in [`Hold::amount`] what it
//! would lock alone, for sizing only. A fill of either order is paid from
//! the list's hold; after each change the list's hold is trimmed to the
//! largest need among its orders still open, which is the surviving order's
//! once the other ended, and released when the last one ends.

use proto::{ListKind, OrderId, Qty, UserId};

use crate::shard::Shard;
use crate::types::{AssetId, Hold, HoldKind, ListHold, Output, Place, PlaceList, RiskCode};

impl Shard {
    /// Checks and locks both orders of a list, or refuses without a change.
    pub(crate) fn place_list(
        &mut self,
        l: &PlaceList,
        out: &mut Vec<Output>,
    ) -> Result<(), RiskCode> {
        let pi = self.pair_index(l.pair).ok_or(RiskCode::UnknownPair)?;
        check_fees(l.fees)?;
        let list_id = l.list.list_id;
        let orders = l.list.orders;
        let ids = [orders[0].order_id, orders[1].order_id];
        // The engine refuses these too, and its refusal of a copy would
        // release the holds of the live orders (or list) with its ids.
        if ids[0] == ids[1]
            || self.state.lists.contains_key(&(pi, list_id))
            || ids
                .iter()
                .any(|id| self.state.holds.contains_key(&(pi, *id)))
        {
            return Err(RiskCode::DuplicateOrder);
        }
        let sized = [0, 1].map(|i| {
            self.size_hold(
                pi,
                &Place {
                    pair: l.pair,
                    user: l.user,
                    order: orders[i],
                    fees: l.fees,
                },
            )
        });
        let [a, b] = sized;
        let (a, b) = (a?, b?);
        let oco = l.list.kind == ListKind::Oco;
        // One hold for both needs one asset; the engine refuses an OCO whose
        // orders are on two sides.
        if oco && orders[0].side != orders[1].side {
            return Err(RiskCode::UnsupportedOrder);
        }
        let shared = if oco {
            let amount = a.2.max(b.2);
            self.lock(l.user, a.1, amount)?;
            out.push(self.locked(pi, l.user, a.1, list_id, amount));
            amount
        } else {
            self.lock_both(l.user, (a.1, a.2), (b.1, b.2))?;
            out.push(self.locked(pi, l.user, a.1, ids[0], a.2));
            out.push(self.locked(pi, l.user, b.1, ids[1], b.2));
            0
        };
        for (o, (kind, _, amount, qty)) in orders.iter().zip([a, b]) {
            self.hold_listed(pi, l.user, o, (kind, amount, qty), l);
        }
        self.state.lists.insert(
            (pi, list_id),
            ListHold {
                user: l.user,
                kind: l.list.kind,
                side: orders[0].side,
                orders: ids,
                amount: shared,
            },
        );
        Ok(())
    }

    /// Records the hold of one order of list `l` (its amount locked already).
    fn hold_listed(
        &mut self,
        pi: u16,
        user: UserId,
        o: &proto::NewOrder,
        (kind, amount, qty): (HoldKind, u128, Qty),
        l: &PlaceList,
    ) {
        self.state.holds.insert(
            (pi, o.order_id),
            Hold {
                user,
                side: o.side,
                kind,
                qty,
                remaining: qty,
                fees: l.fees,
                amount,
                pending: Vec::new(),
                client: o.client_order_id,
                list: Some(l.list.list_id),
                conditional: o.order_type.trigger().is_some(),
            },
        );
        if let Some(client) = o.client_order_id {
            self.state.clients.insert((pi, user, client), o.order_id);
        }
    }

    /// An `Output::Locked` of `pair` index `pi`.
    fn locked(
        &self,
        pi: u16,
        user: UserId,
        asset: AssetId,
        order_id: OrderId,
        amount: u128,
    ) -> Output {
        Output::Locked {
            user,
            asset,
            pair: self.state.pairs[usize::from(pi)].symbol,
            order_id,
            amount,
        }
    }

    /// Locks two amounts, or neither.
    fn lock_both(
        &mut self,
        user: UserId,
        (a, amount_a): (AssetId, u128),
        (b, amount_b): (AssetId, u128),
    ) -> Result<(), RiskCode> {
        if a == b {
            let sum = amount_a.checked_add(amount_b).ok_or(RiskCode::Overflow)?;
            return self.lock(user, a, sum);
        }
        self.lock(user, a, amount_a)?;
        if let Err(code) = self.lock(user, b, amount_b) {
            // Undo the first: a refused input changes nothing.
            let e = self.state.balances.entry((user, a)).or_default();
            e.locked -= amount_a;
            e.free += amount_a;
            return Err(code);
        }
        Ok(())
    }

    /// The OCO list whose shared hold pays for `hold`, an order of pair `pi`.
    pub(crate) fn shared_by(&self, pi: u16, hold: &Hold) -> Option<OrderId> {
        let list = hold.list?;
        let l = self.state.lists.get(&(pi, list))?;
        (l.kind == ListKind::Oco).then_some(list)
    }

    /// The largest [`Hold::amount`] among the open orders of OCO `list`,
    /// with `replaced` (an order of it) counted at `amount` instead; `None`
    /// when none is open.
    pub(crate) fn list_need(
        &self,
        pi: u16,
        list: OrderId,
        replaced: Option<(OrderId, u128)>,
    ) -> Option<u128> {
        let l = self.state.lists.get(&(pi, list))?;
        l.orders
            .iter()
            .filter_map(|id| {
                if let Some((r, amount)) = replaced
                    && r == *id
                {
                    return Some(amount);
                }
                let h = self.state.holds.get(&(pi, *id))?;
                (h.list == Some(list) && h.user == l.user).then_some(h.amount)
            })
            .max()
    }

    /// After a change to an order of `list`: an OCO's shared hold is cut to
    /// the largest need of its open orders, and released whole (and the
    /// list forgotten) once none is open; an OTO is forgotten once neither
    /// of its orders is open.
    pub(crate) fn trim_list(&mut self, pi: u16, list: OrderId, out: &mut Vec<Output>) {
        let Some(l) = self.state.lists.get(&(pi, list)) else {
            return;
        };
        let (user, side, amount, oco) = (l.user, l.side, l.amount, l.kind == ListKind::Oco);
        let need = self.list_need(pi, list, None);
        if need.is_none() {
            self.state.lists.remove(&(pi, list));
        }
        if !oco {
            return;
        }
        let excess = amount.saturating_sub(need.unwrap_or(0));
        if excess == 0 {
            return;
        }
        if let Some(l) = self.state.lists.get_mut(&(pi, list)) {
            l.amount -= excess;
        }
        self.release(pi, list, user, side, excess, out);
    }

    /// The engine refused list `list` of `user`: both of its orders end.
    pub(crate) fn list_refused(
        &mut self,
        pi: u16,
        list: OrderId,
        user: UserId,
        out: &mut Vec<Output>,
    ) {
        let Some(orders) = self
            .state
            .lists
            .get(&(pi, list))
            .filter(|l| l.user == user)
            .map(|l| l.orders)
        else {
            return;
        };
        for id in orders {
            if self
                .state
                .holds
                .get(&(pi, id))
                .is_some_and(|h| h.list == Some(list))
            {
                self.end(pi, id, user, out);
            }
        }
    }
}

/// A maker rate above the taker rate, or a rate above 10,000 bps, is refused.
pub(crate) fn check_fees(fees: crate::Fees) -> Result<(), RiskCode> {
    if fees.taker_bps > 10_000 || fees.maker_bps > fees.taker_bps {
        return Err(RiskCode::BadFees);
    }
    Ok(())
}
