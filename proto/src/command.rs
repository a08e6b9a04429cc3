//! Commands: what a trader asks of a pair's order book. They enter the
//! command log stamped by the gateway and are applied in log order.

use serde::{Deserialize, Serialize};

use crate::{ClientOrderId, OrderId, PairChange, Price, Qty, QuoteQty, Symbol, Timestamp, UserId};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Bid: wants the base asset.
    Buy,
    /// Ask: offers the base asset.
    Sell,
}

impl Side {
    /// The side this one trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How long an order may stay on the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till canceled: the unfilled part rests on the book.
    Gtc,
    /// Immediate or cancel: fill what can be filled now, cancel the rest.
    Ioc,
    /// Fill or kill: fill completely now, or do nothing at all.
    Fok,
    /// Good till date: rests like GTC until the first command stamped at or
    /// after [`NewOrder::good_till`], which expires it first.
    Gtd,
}

/// What happens when an order would trade against an order of the same user.
/// The taker's mode decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StpMode {
    /// Let them trade.
    None,
    /// Cancel the rest of the incoming order; the resting one stays.
    CancelTaker,
    /// Cancel the resting order and keep matching the incoming one.
    CancelMaker,
    /// Cancel both the resting order and the rest of the incoming one.
    CancelBoth,
}

/// Which conditional order: the stop price's direction follows Binance's
/// rules (see [`ConditionalKind::fires_on_rise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionalKind {
    /// `STOP_LOSS(_LIMIT)`: a sell fires when the price falls to the stop, a
    /// buy when it rises to it.
    StopLoss,
    /// `TAKE_PROFIT(_LIMIT)`: a sell fires when the price rises to the stop,
    /// a buy when it falls to it.
    TakeProfit,
}

impl ConditionalKind {
    /// True when an order of this kind on `side` fires as the last trade
    /// price rises to its stop (`price >= stop`); false when it fires as the
    /// price falls to it (`price <= stop`).
    pub fn fires_on_rise(self, side: Side) -> bool {
        matches!(
            (self, side),
            (ConditionalKind::StopLoss, Side::Buy) | (ConditionalKind::TakeProfit, Side::Sell)
        )
    }
}

/// When a conditional order starts working. At least one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trigger {
    /// Binance's `stopPrice`: the last trade price that fires the order, or
    /// with a trailing delta, the price from which it starts trailing.
    pub stop_price: Option<Price>,
    /// Binance's `trailingDelta` in basis points: the order fires once the
    /// price has moved this far against it from the best trade price since
    /// it started trailing.
    pub trailing_delta: Option<u32>,
}

/// The smallest `trailingDelta`, in basis points.
pub const MIN_TRAILING_DELTA: u32 = 10;
/// The largest `trailingDelta`, in basis points.
pub const MAX_TRAILING_DELTA: u32 = 2_000;
/// At most this many slices per iceberg order (Binance's `ICEBERG_PARTS`).
pub const MAX_ICEBERG_PARTS: u64 = 100;

/// Limit or market, with the limit price where there is one, or conditional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    /// Trades at `price` or better; may rest on the book.
    Limit {
        /// The worst acceptable price.
        price: Price,
    },
    /// Trades at any price against the book; never rests.
    Market,
    /// Waits off the book, invisible in depth, until its trigger fires on
    /// the pair's trades; then works as a limit order at `limit`, or as a
    /// market order when there is no limit.
    Conditional {
        /// Stop-loss or take-profit.
        kind: ConditionalKind,
        /// The limit price once it works (`*_LIMIT`), or none (market).
        limit: Option<Price>,
        /// What fires it.
        trigger: Trigger,
    },
}

/// How much an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderSize {
    /// An amount of the base asset.
    Base(Qty),
    /// For market buys only: spend at most this much quote currency.
    Quote(QuoteQty),
    /// For market buys only: buy `qty` of the base asset, spending at most
    /// `budget` of quote currency (same unit as [`OrderSize::Quote`]), fees
    /// excluded. Last, so the earlier variants keep their encoded indexes.
    BaseWithin {
        /// The base quantity wanted.
        qty: Qty,
        /// The most quote currency its fills may cost.
        budget: QuoteQty,
    },
}

/// Names an existing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderRef {
    /// By the order id.
    Id(OrderId),
    /// By the user's client order id.
    Client(ClientOrderId),
}

/// Place an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewOrder {
    /// Unique per pair; assigned by the sender.
    pub order_id: OrderId,
    /// Optional; unique among the user's open orders on this pair.
    pub client_order_id: Option<ClientOrderId>,
    /// Buy or sell.
    pub side: Side,
    /// Limit (with price) or market.
    pub order_type: OrderType,
    /// GTC, IOC or FOK. Market orders must be IOC or FOK.
    pub time_in_force: TimeInForce,
    /// Maker only: canceled instead of taking liquidity. Limit GTC only.
    pub post_only: bool,
    /// Overrides the pair's default self-trade-prevention mode.
    pub stp: Option<StpMode>,
    /// Base quantity, or quote amount (or base quantity within a quote
    /// budget) for a market buy.
    pub size: OrderSize,
    /// Iceberg: the visible slice of a resting limit order. Only this much
    /// shows in depth; each refill goes to the back of its level.
    pub iceberg_qty: Option<Qty>,
    /// With [`TimeInForce::Gtd`] only: when the order expires.
    pub good_till: Option<Timestamp>,
}

impl NewOrder {
    /// A plain order: no iceberg slice and no expiry time.
    pub fn plain(
        order_id: OrderId,
        side: Side,
        order_type: OrderType,
        time_in_force: TimeInForce,
        size: OrderSize,
    ) -> NewOrder {
        NewOrder {
            order_id,
            client_order_id: None,
            side,
            order_type,
            time_in_force,
            post_only: false,
            stp: None,
            size,
            iceberg_qty: None,
            good_till: None,
        }
    }
}

/// What ties an order list's two orders together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListKind {
    /// One-cancels-the-other: the first fill or trigger of either order
    /// cancels the other, in the same command.
    Oco,
    /// One-triggers-the-other: `orders[1]` waits off the book until
    /// `orders[0]` (the working order) is completely filled, then is placed.
    Oto,
}

/// Place two orders as one list; both are accepted or neither is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewOrderList {
    /// The list's id, from the same sequence as order ids.
    pub list_id: OrderId,
    /// Optional; unique among the user's open lists on this pair.
    pub client_list_id: Option<ClientOrderId>,
    /// OCO or OTO.
    pub kind: ListKind,
    /// OCO: any order. OTO: the working order, then the pending one.
    pub orders: [NewOrder; 2],
}

/// Change an open order's total quantity and/or price. A quantity decrease
/// keeps time priority; an increase or a price change re-queues the order at
/// the back of its level, where it may match at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amend {
    /// The order to change.
    pub target: OrderRef,
    /// New total (original) quantity; must exceed what has already filled.
    pub new_qty: Option<Qty>,
    /// New limit price.
    pub new_price: Option<Price>,
    /// New stop price of a conditional order that has not fired.
    pub new_stop_price: Option<Price>,
}

/// What the command asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandBody {
    /// Place an order.
    NewOrder(NewOrder),
    /// Cancel one open order.
    Cancel {
        /// The order to cancel.
        target: OrderRef,
    },
    /// Amend one open order.
    Amend(Amend),
    /// Cancel all of the user's open orders on this pair. A cancel-all across
    /// pairs is one such command per pair, sent by the gateway.
    CancelAll,
    /// Place an order list (OCO or OTO). Boxed: two orders would more than
    /// double the size of every command.
    NewOrderList(Box<NewOrderList>),
    /// Cancel an open order list and every open order in it. An order of a
    /// list canceled by itself also ends its list.
    CancelList {
        /// The list, by list id or by client list id.
        target: OrderRef,
    },
    /// Nothing but the passing of time: expires good-till-date orders whose
    /// time has come on a book that receives no other command. Stamped by
    /// the sequencer, replayed like any other command; it may emit nothing.
    AdvanceTime,
    /// An operator's change of the pair's status and rules, sequenced in the
    /// pair's log like any command (so replay reaches the same rules). Boxed:
    /// rare, and larger than the common commands.
    ChangePair(Box<PairChange>),
}

/// One input to a pair's order book.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    /// The pair, and so the book, this command is for.
    pub pair: Symbol,
    /// Who sends it: checked against order ownership and self-trade rules.
    pub user: UserId,
    /// When the gateway accepted it; copied onto every event it causes.
    pub timestamp: Timestamp,
    /// The request itself.
    pub body: CommandBody,
}

/// Which kind of command an outcome answers; lets a rejection name its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandKind {
    /// [`CommandBody::NewOrder`].
    NewOrder,
    /// [`CommandBody::Cancel`].
    Cancel,
    /// [`CommandBody::Amend`].
    Amend,
    /// [`CommandBody::CancelAll`].
    CancelAll,
    /// [`CommandBody::NewOrderList`].
    NewOrderList,
    /// [`CommandBody::CancelList`].
    CancelList,
    /// [`CommandBody::AdvanceTime`].
    AdvanceTime,
    /// [`CommandBody::ChangePair`].
    ChangePair,
}

impl CommandBody {
    /// The kind of this command.
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandBody::NewOrder(_) => CommandKind::NewOrder,
            CommandBody::Cancel { .. } => CommandKind::Cancel,
            CommandBody::Amend(_) => CommandKind::Amend,
            CommandBody::CancelAll => CommandKind::CancelAll,
            CommandBody::NewOrderList(_) => CommandKind::NewOrderList,
            CommandBody::CancelList { .. } => CommandKind::CancelList,
            CommandBody::AdvanceTime => CommandKind::AdvanceTime,
            CommandBody::ChangePair(_) => CommandKind::ChangePair,
        }
    }
}

/// The names the API and the store use for an enum's values (Binance's).
macro_rules! wire_names {
    ($ty:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $ty {
            /// The wire name, e.g. `BUY`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            /// The value a wire name stands for; exact, case-sensitive.
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $($name => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_names!(Side { Buy = "BUY", Sell = "SELL" });
wire_names!(TimeInForce {
    Gtc = "GTC",
    Ioc = "IOC",
    Fok = "FOK",
    Gtd = "GTD"
});
wire_names!(ListKind { Oco = "OCO", Oto = "OTO" });
wire_names!(StpMode {
    None = "NONE",
    CancelTaker = "EXPIRE_TAKER",
    CancelMaker = "EXPIRE_MAKER",
    CancelBoth = "EXPIRE_BOTH",
});

impl OrderType {
    /// Binance's name: `LIMIT`, `MARKET`, `STOP_LOSS`, `STOP_LOSS_LIMIT`,
    /// `TAKE_PROFIT` or `TAKE_PROFIT_LIMIT`. (`LIMIT_MAKER` is a limit order
    /// with `post_only`.)
    pub fn name(&self) -> &'static str {
        match self {
            OrderType::Limit { .. } => "LIMIT",
            OrderType::Market => "MARKET",
            OrderType::Conditional { kind, limit, .. } => match (kind, limit) {
                (ConditionalKind::StopLoss, None) => "STOP_LOSS",
                (ConditionalKind::StopLoss, Some(_)) => "STOP_LOSS_LIMIT",
                (ConditionalKind::TakeProfit, None) => "TAKE_PROFIT",
                (ConditionalKind::TakeProfit, Some(_)) => "TAKE_PROFIT_LIMIT",
            },
        }
    }

    /// The limit price, if any (a conditional limit order's included).
    pub fn price(&self) -> Option<Price> {
        match self {
            OrderType::Limit { price } => Some(*price),
            OrderType::Market => None,
            OrderType::Conditional { limit, .. } => *limit,
        }
    }

    /// The trigger of a conditional order.
    pub fn trigger(&self) -> Option<Trigger> {
        match self {
            OrderType::Conditional { trigger, .. } => Some(*trigger),
            _ => None,
        }
    }

    /// The type the order works as once its trigger has fired.
    pub fn working(&self) -> OrderType {
        match self {
            OrderType::Conditional {
                limit: Some(price), ..
            } => OrderType::Limit { price: *price },
            OrderType::Conditional { limit: None, .. } => OrderType::Market,
            other => *other,
        }
    }

    /// True for a market order, or a conditional one that works as market.
    pub fn is_market(&self) -> bool {
        self.working() == OrderType::Market
    }
}
