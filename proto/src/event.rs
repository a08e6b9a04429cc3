//! Events: everything a pair's order book says. Each carries `(pair, seq)`
//! with `seq` contiguous per pair, so any consumer can detect gaps and drop
//! duplicates.

use serde::{Deserialize, Serialize};

use crate::{
    ClientOrderId, Command, CommandBody, CommandKind, ListKind, NewOrder, OrderId, OrderRef,
    OrderSize, OrderType, PairConfig, Price, Qty, RejectCode, Seq, Side, Symbol, TimeInForce,
    Timestamp, TradeId, TradingStatus, UserId,
};

/// An order entered the book's processing (it may still trade, rest, or be
/// canceled by its own rules in the same command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accepted {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
    /// Limit (with price) or market.
    pub order_type: OrderType,
    /// GTC, IOC or FOK.
    pub time_in_force: TimeInForce,
    /// Maker only.
    pub post_only: bool,
    /// Base quantity or quote amount.
    pub size: OrderSize,
    /// The visible slice of an iceberg order.
    pub iceberg_qty: Option<Qty>,
    /// When a GTD order expires.
    pub good_till: Option<Timestamp>,
    /// The order list it belongs to, if any.
    pub list_id: Option<OrderId>,
}

/// A command was refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rejected {
    /// Who sent the command.
    pub user: UserId,
    /// Which kind of command it was.
    pub command: CommandKind,
    /// The new order's id, or the targeted order's id when named by id.
    pub order_id: Option<OrderId>,
    /// The new order's or the targeted order's client order id, when given.
    pub client_order_id: Option<ClientOrderId>,
    /// Why.
    pub code: RejectCode,
}

/// Two orders traded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trade {
    /// Deterministic: the `seq` of this event.
    pub trade_id: TradeId,
    /// The maker's price.
    pub price: Price,
    /// Base quantity traded.
    pub qty: Qty,
    /// The side of the incoming (aggressing) order.
    pub taker_side: Side,
    /// The resting order.
    pub maker_order_id: OrderId,
    /// Its owner.
    pub maker_user: UserId,
    /// What remains open of the maker after this trade.
    pub maker_remaining: Qty,
    /// The incoming order.
    pub taker_order_id: OrderId,
    /// Its owner.
    pub taker_user: UserId,
    /// What remains of the taker after this trade: base quantity, or for a
    /// quote-sized market buy the unspent quote amount (rounded down).
    pub taker_remaining: OrderSize,
}

/// Why an order left the book (or never rested) without filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    /// The owner asked.
    UserRequest,
    /// The unfilled rest of an IOC or market order.
    IocRemainder,
    /// A FOK order that could not fill completely; nothing traded.
    FokNotFillable,
    /// Self-trade prevention.
    SelfTradePrevention,
    /// A post-only order that would have taken liquidity; nothing traded.
    PostOnlyWouldCross,
    /// The owner's cancel-all.
    CancelAll,
    /// A GTD order's time came.
    Expired,
    /// Another order of its list filled, fired or ended (OCO), or its
    /// working order ended unfilled (OTO), or the list was canceled.
    ListSibling,
}

/// An order (or its unfilled rest) was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Canceled {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
    /// What was canceled: open base quantity, or unspent quote amount.
    pub remaining: OrderSize,
    /// Why.
    pub reason: CancelReason,
}

/// An open order's quantity and/or price changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amended {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
    /// The limit price now (zero for a conditional order that will work as
    /// a market order).
    pub price: Price,
    /// The stop price now, for a conditional order that has not fired.
    pub stop_price: Option<Price>,
    /// The total quantity now (filled plus open).
    pub qty: Qty,
    /// The open quantity now.
    pub remaining: Qty,
    /// False when the order went to the back of its level.
    pub priority_kept: bool,
}

/// A price level's total open quantity changed. Zero removes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BookDelta {
    /// Bid or ask.
    pub side: Side,
    /// The level.
    pub price: Price,
    /// The level's new total open quantity.
    pub qty: Qty,
}

/// The summary that ends a cancel-all (after one `Canceled` per order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CanceledAll {
    /// Whose orders.
    pub user: UserId,
    /// How many were canceled.
    pub count: u32,
}

/// A conditional order's trigger fired: it works from now on (it trades,
/// rests or is canceled next, as a new order would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Triggered {
    /// The order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
    /// The trade price that fired it.
    pub price: Price,
}

/// An OTO list's pending order is placed: its working order filled. It then
/// works (or, if conditional, waits for its trigger) as a new order would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Released {
    /// The pending order.
    pub order_id: OrderId,
    /// Its client order id, if any.
    pub client_order_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// Buy or sell.
    pub side: Side,
}

/// An order list was accepted; an `Accepted` for each of its orders follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListAccepted {
    /// The list.
    pub list_id: OrderId,
    /// Its client list id, if any.
    pub client_list_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
    /// OCO or OTO.
    pub kind: ListKind,
    /// Its orders, in the order given.
    pub orders: [OrderId; 2],
}

/// An order list is over (Binance's `ALL_DONE`): its orders are ended, or
/// live on by themselves (the order that filled or fired, a released one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListDone {
    /// The list.
    pub list_id: OrderId,
    /// Its client list id, if any.
    pub client_list_id: Option<ClientOrderId>,
    /// Its owner.
    pub user: UserId,
}

/// A pair's rules or status changed (an operator's `ChangePair`): the whole
/// resulting state, so every consumer learns it from the event stream alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairChanged {
    /// The pair's rules now.
    pub config: PairConfig,
    /// Its trading status now.
    pub status: TradingStatus,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventBody {
    /// See [`Accepted`].
    Accepted(Accepted),
    /// See [`Rejected`].
    Rejected(Rejected),
    /// See [`Trade`].
    Trade(Trade),
    /// See [`Canceled`].
    Canceled(Canceled),
    /// See [`Amended`].
    Amended(Amended),
    /// See [`BookDelta`].
    BookDelta(BookDelta),
    /// See [`CanceledAll`].
    CanceledAll(CanceledAll),
    /// See [`Triggered`].
    Triggered(Triggered),
    /// See [`Released`].
    Released(Released),
    /// See [`ListAccepted`].
    ListAccepted(ListAccepted),
    /// See [`ListDone`].
    ListDone(ListDone),
    /// See [`PairChanged`].
    PairChanged(PairChanged),
}

/// One output of a pair's order book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// The pair.
    pub pair: Symbol,
    /// Position in the pair's event stream, contiguous from 1.
    pub seq: Seq,
    /// The timestamp of the command that caused it.
    pub timestamp: Timestamp,
    /// What happened.
    pub body: EventBody,
}

impl NewOrder {
    /// The `Accepted` event for this order placed by `user`, in `list`.
    pub fn accepted_in(&self, user: UserId, list_id: Option<OrderId>) -> Accepted {
        Accepted {
            order_id: self.order_id,
            client_order_id: self.client_order_id,
            user,
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            post_only: self.post_only,
            size: self.size,
            iceberg_qty: self.iceberg_qty,
            good_till: self.good_till,
            list_id,
        }
    }

    /// The `Accepted` event for this order placed by `user`, in no list.
    pub fn accepted(&self, user: UserId) -> Accepted {
        self.accepted_in(user, None)
    }
}

impl Command {
    /// The `Rejected` event refusing this command with `code`; it names the
    /// new order, or the targeted order as the command named it.
    pub fn rejected(&self, code: RejectCode) -> Rejected {
        let (order_id, client_order_id) = match &self.body {
            CommandBody::NewOrder(o) => (Some(o.order_id), o.client_order_id),
            CommandBody::NewOrderList(l) => (Some(l.list_id), l.client_list_id),
            CommandBody::Cancel { target }
            | CommandBody::CancelList { target }
            | CommandBody::Amend(crate::Amend { target, .. }) => match *target {
                OrderRef::Id(id) => (Some(id), None),
                OrderRef::Client(cid) => (None, Some(cid)),
            },
            CommandBody::CancelAll | CommandBody::AdvanceTime | CommandBody::ChangePair(_) => {
                (None, None)
            }
        };
        Rejected {
            user: self.user,
            command: self.body.kind(),
            order_id,
            client_order_id,
            code,
        }
    }
}
