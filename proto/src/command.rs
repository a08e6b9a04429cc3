//! Commands: what a trader asks of a pair's order book. They enter the
//! command log stamped by the gateway and are applied in log order.

use serde::{Deserialize, Serialize};

use crate::{ClientOrderId, OrderId, Price, Qty, QuoteQty, Symbol, Timestamp, UserId};

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

/// Limit or market, with the limit price where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    /// Trades at `price` or better; may rest on the book.
    Limit {
        /// The worst acceptable price.
        price: Price,
    },
    /// Trades at any price against the book; never rests.
    Market,
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
}

/// What the command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// One input to a pair's order book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl CommandBody {
    /// The kind of this command.
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandBody::NewOrder(_) => CommandKind::NewOrder,
            CommandBody::Cancel { .. } => CommandKind::Cancel,
            CommandBody::Amend(_) => CommandKind::Amend,
            CommandBody::CancelAll => CommandKind::CancelAll,
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
wire_names!(TimeInForce { Gtc = "GTC", Ioc = "IOC", Fok = "FOK" });
wire_names!(StpMode {
    None = "NONE",
    CancelTaker = "EXPIRE_TAKER",
    CancelMaker = "EXPIRE_MAKER",
    CancelBoth = "EXPIRE_BOTH",
});

impl OrderType {
    /// `LIMIT` or `MARKET`.
    pub fn name(&self) -> &'static str {
        match self {
            OrderType::Limit { .. } => "LIMIT",
            OrderType::Market => "MARKET",
        }
    }

    /// The limit price, if any.
    pub fn price(&self) -> Option<Price> {
        match self {
            OrderType::Limit { price } => Some(*price),
            OrderType::Market => None,
        }
    }
}
