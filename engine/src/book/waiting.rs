//! Orders the book holds off its levels: conditional orders waiting for
//! their trigger, and OTO pending orders waiting for their working order.
//! Indexed so that a trade finds what it fires without scanning: static
//! stops by stop price in two ordered sets (one per direction); trailing
//! orders, whose trigger moves with every trade, in a set scanned per trade.

use std::collections::{BTreeMap, BTreeSet};

use proto::{ClientOrderId, NewOrder, OrderId, Price, Side, UserId};
use serde::{Deserialize, Serialize};

use crate::hash::IdMap;

/// What a waiting order waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitFor {
    /// Its trigger. A trailing order keeps the best trade price since it
    /// started trailing (the highest for a sell, the lowest for a buy);
    /// `None` until it starts.
    Trigger {
        /// The price it trails from.
        tracking: Option<Price>,
    },
    /// Its OTO list's working order to fill completely.
    List,
}

/// An order held off the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingOrder {
    /// The order as placed (or as amended since).
    pub order: NewOrder,
    /// Its owner.
    pub user: UserId,
    /// Its order list, if any.
    pub list_id: Option<OrderId>,
    /// Its placement number.
    pub placed: u64,
    /// What it waits for.
    pub wait: WaitFor,
}

impl WaitingOrder {
    /// The trade price at or beyond which a static (non-trailing) stop
    /// fires, and whether it fires as the price rises to it.
    fn static_stop(&self) -> Option<(Price, bool)> {
        let WaitFor::Trigger { .. } = self.wait else {
            return None;
        };
        match self.order.order_type {
            proto::OrderType::Conditional { kind, trigger, .. }
                if trigger.trailing_delta.is_none() =>
            {
                trigger
                    .stop_price
                    .map(|stop| (stop, kind.fires_on_rise(self.order.side)))
            }
            _ => None,
        }
    }

    fn trails(&self) -> bool {
        matches!(self.wait, WaitFor::Trigger { .. })
            && self
                .order
                .order_type
                .trigger()
                .is_some_and(|t| t.trailing_delta.is_some())
    }

    /// Moves a trailing order's state on by one trade at `p`; true when it
    /// fires. Binance's rules: with a stop price it starts trailing at the
    /// first trade that meets the stop condition; a sell trails the highest
    /// price and fires on a fall of `delta` basis points from it, a buy
    /// trails the lowest and fires on a rise.
    fn trail(&mut self, p: Price) -> bool {
        let proto::OrderType::Conditional { kind, trigger, .. } = self.order.order_type else {
            return false;
        };
        let (WaitFor::Trigger { tracking }, Some(delta)) = (&mut self.wait, trigger.trailing_delta)
        else {
            return false;
        };
        let side = self.order.side;
        let best = match (*tracking, trigger.stop_price) {
            (Some(t), _) => t,
            (None, None) => p,
            (None, Some(stop)) if stop_met(kind.fires_on_rise(side), stop, p) => p,
            (None, Some(_)) => return false,
        };
        let (p128, d) = (u128::from(p.0), u128::from(delta));
        let (best, fires) = match side {
            Side::Sell => {
                let best = best.max(p);
                (best, p128 * 10_000 <= u128::from(best.0) * (10_000 - d))
            }
            Side::Buy => {
                let best = best.min(p);
                (best, p128 * 10_000 >= u128::from(best.0) * (10_000 + d))
            }
        };
        *tracking = Some(best);
        fires
    }
}

/// True when a stop at `stop` firing on a rise (or on a fall) is met at `p`.
pub(crate) fn stop_met(rises: bool, stop: Price, p: Price) -> bool {
    if rises { p >= stop } else { p <= stop }
}

/// The waiting orders and their indexes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WaitingSet {
    /// By placement number: the canonical order.
    by_placed: BTreeMap<u64, WaitingOrder>,
    ids: IdMap<OrderId, u64>,
    client_ids: IdMap<(UserId, ClientOrderId), u64>,
    /// Static stops firing on a rise, by (stop price, placement).
    rises: BTreeSet<(Price, u64)>,
    /// Static stops firing on a fall, by (stop price, placement).
    falls: BTreeSet<(Price, u64)>,
    /// Trailing orders, by placement.
    trailing: BTreeSet<u64>,
}

impl WaitingSet {
    pub(crate) fn len(&self) -> usize {
        self.by_placed.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &WaitingOrder> {
        self.by_placed.values()
    }

    pub(crate) fn contains_id(&self, id: OrderId) -> bool {
        self.ids.contains_key(&id)
    }

    pub(crate) fn contains_client_id(&self, user: UserId, cid: ClientOrderId) -> bool {
        self.client_ids.contains_key(&(user, cid))
    }

    pub(crate) fn placed_of(&self, id: OrderId) -> Option<u64> {
        self.ids.get(&id).copied()
    }

    pub(crate) fn placed_of_client(&self, user: UserId, cid: ClientOrderId) -> Option<u64> {
        self.client_ids.get(&(user, cid)).copied()
    }

    pub(crate) fn get(&self, placed: u64) -> Option<&WaitingOrder> {
        self.by_placed.get(&placed)
    }

    pub(crate) fn insert(&mut self, w: WaitingOrder) {
        self.ids.insert(w.order.order_id, w.placed);
        if let Some(cid) = w.order.client_order_id {
            self.client_ids.insert((w.user, cid), w.placed);
        }
        self.index(&w);
        self.by_placed.insert(w.placed, w);
    }

    fn index(&mut self, w: &WaitingOrder) {
        if let Some((stop, rises)) = w.static_stop() {
            let set = if rises {
                &mut self.rises
            } else {
                &mut self.falls
            };
            set.insert((stop, w.placed));
        } else if w.trails() {
            self.trailing.insert(w.placed);
        }
    }

    fn unindex(&mut self, w: &WaitingOrder) {
        if let Some((stop, rises)) = w.static_stop() {
            let set = if rises {
                &mut self.rises
            } else {
                &mut self.falls
            };
            set.remove(&(stop, w.placed));
        }
        self.trailing.remove(&w.placed);
    }

    pub(crate) fn remove(&mut self, placed: u64) -> Option<WaitingOrder> {
        let w = self.by_placed.remove(&placed)?;
        self.ids.remove(&w.order.order_id);
        if let Some(cid) = w.order.client_order_id {
            self.client_ids.remove(&(w.user, cid));
        }
        self.unindex(&w);
        Some(w)
    }

    /// Replaces a waiting order's data (an amend), re-indexing its trigger so
    /// that a changed stop price is never found under the old one.
    pub(crate) fn replace(&mut self, w: WaitingOrder) {
        if let Some(old) = self.by_placed.get(&w.placed).copied() {
            self.unindex(&old);
            self.index(&w);
            self.by_placed.insert(w.placed, w);
        }
    }

    /// Every order a trade at `p` fires, appended to `fired` in placement
    /// order; trailing orders' state moves on whether they fire or not.
    /// Fired orders stay in the set: the caller removes them.
    pub(crate) fn fired_by(&mut self, p: Price, fired: &mut Vec<u64>) {
        fired.clear();
        fired.extend(
            self.rises
                .iter()
                .take_while(|(stop, _)| *stop <= p)
                .map(|k| k.1),
        );
        fired.extend(
            self.falls
                .iter()
                .rev()
                .take_while(|(stop, _)| *stop >= p)
                .map(|k| k.1),
        );
        for &placed in &self.trailing {
            if let Some(w) = self.by_placed.get_mut(&placed)
                && w.trail(p)
            {
                fired.push(placed);
            }
        }
        fired.sort_unstable();
    }

    /// True when `w`'s entries in the indexes are its own.
    pub(crate) fn consistent_for(&self, w: &WaitingOrder) -> bool {
        self.ids.get(&w.order.order_id) == Some(&w.placed)
            && (w.order.client_order_id)
                .is_none_or(|cid| self.client_ids.get(&(w.user, cid)) == Some(&w.placed))
            && match w.static_stop() {
                Some((stop, true)) => self.rises.contains(&(stop, w.placed)),
                Some((stop, false)) => self.falls.contains(&(stop, w.placed)),
                None => !w.trails() || self.trailing.contains(&w.placed),
            }
    }

    /// True when the indexes hold nothing beyond the orders' own entries.
    pub(crate) fn indexes_match(&self) -> bool {
        let orders = self.by_placed.values();
        let with_cid = orders.clone().filter(|w| w.order.client_order_id.is_some());
        let triggered = orders.filter(|w| w.static_stop().is_some() || w.trails());
        self.ids.len() == self.by_placed.len()
            && self.client_ids.len() == with_cid.count()
            && self.rises.len() + self.falls.len() + self.trailing.len() == triggered.count()
    }
}

#[cfg(test)]
mod tests {
    use proto::{ConditionalKind, OrderSize, OrderType, Qty, TimeInForce, Trigger};

    use super::*;

    fn trailing(side: Side, kind: ConditionalKind, stop: Option<u64>, delta: u32) -> WaitingOrder {
        let order_type = OrderType::Conditional {
            kind,
            limit: Some(Price(1)),
            trigger: Trigger {
                stop_price: stop.map(Price),
                trailing_delta: Some(delta),
            },
        };
        WaitingOrder {
            order: NewOrder::plain(
                OrderId(1),
                side,
                order_type,
                TimeInForce::Gtc,
                OrderSize::Base(Qty(1)),
            ),
            user: UserId(1),
            list_id: None,
            placed: 1,
            wait: WaitFor::Trigger { tracking: None },
        }
    }

    /// Feeds trade prices; returns the index of the one that fired, if any.
    fn fires_at(w: &mut WaitingOrder, prices: &[u64]) -> Option<usize> {
        prices.iter().position(|&p| w.trail(Price(p)))
    }

    // Binance's trailing stop FAQ, scenarios A to E, trade by trade.

    #[test]
    fn scenario_a_stop_loss_limit_buy_starts_at_its_stop_and_trails_the_low() {
        let mut w = trailing(Side::Buy, ConditionalKind::StopLoss, Some(44_000), 500);
        // Falls to 37,000: not tracking yet; rises through 44,000: tracking
        // from 44,000; 46,000 is +4.5%; falls to 42,000; 44,100 = 42,000 * 1.05.
        let path = [
            40_000, 37_000, 44_000, 45_000, 46_000, 42_000, 44_099, 44_100,
        ];
        assert_eq!(fires_at(&mut w, &path), Some(7));
    }

    #[test]
    fn scenario_b_stop_loss_limit_sell_trails_the_high_after_its_stop() {
        let mut w = trailing(Side::Sell, ConditionalKind::StopLoss, Some(39_000), 1_000);
        let path = [40_000, 41_500, 39_000, 37_000, 41_000, 36_901, 36_900];
        assert_eq!(fires_at(&mut w, &path), Some(6));
    }

    #[test]
    fn scenario_c_take_profit_limit_buy_trails_the_low_below_its_stop() {
        let mut w = trailing(Side::Buy, ConditionalKind::TakeProfit, Some(38_000), 850);
        let path = [
            40_000, 42_000, 38_000, 37_000, 39_000, 38_000, 40_144, 40_145,
        ];
        assert_eq!(fires_at(&mut w, &path), Some(7));
    }

    #[test]
    fn scenario_d_take_profit_limit_sell_trails_the_high_above_its_stop() {
        let mut w = trailing(
            Side::Sell,
            ConditionalKind::TakeProfit,
            Some(4_200_000),
            750,
        );
        // Prices in cents: 43,012.50 = 46,500 * 0.925.
        let path = [
            4_000_000, 4_150_000, 3_900_000, 4_200_000, 4_500_000, 4_400_000, 4_650_000,
        ];
        assert_eq!(fires_at(&mut w, &path), None);
        assert_eq!(fires_at(&mut w, &[4_301_251, 4_301_250]), Some(1));
    }

    #[test]
    fn scenario_e_without_a_stop_price_it_trails_from_the_first_trade() {
        let mut w = trailing(Side::Sell, ConditionalKind::StopLoss, None, 700);
        let path = [40_000, 42_000, 39_500, 45_500, 42_316, 42_315];
        assert_eq!(fires_at(&mut w, &path), Some(5));
    }

    #[test]
    fn a_static_stop_is_indexed_by_direction_and_fires_in_placement_order() {
        let mut set = WaitingSet::default();
        for (placed, side, kind, stop) in [
            (1, Side::Sell, ConditionalKind::StopLoss, 95),
            (2, Side::Buy, ConditionalKind::StopLoss, 105),
            (3, Side::Sell, ConditionalKind::StopLoss, 97),
            (4, Side::Buy, ConditionalKind::TakeProfit, 96),
        ] {
            let mut w = trailing(side, kind, Some(stop), 10);
            w.placed = placed;
            w.order.order_id = OrderId(placed);
            if let OrderType::Conditional { trigger, .. } = &mut w.order.order_type {
                trigger.trailing_delta = None;
            }
            set.insert(w);
        }
        let mut fired = Vec::new();
        set.fired_by(Price(96), &mut fired);
        assert_eq!(fired, vec![3, 4]);
        set.fired_by(Price(105), &mut fired);
        assert_eq!(fired, vec![2]);
        set.fired_by(Price(94), &mut fired);
        assert_eq!(fired, vec![1, 3, 4]);
        assert!(set.indexes_match());
    }
}
