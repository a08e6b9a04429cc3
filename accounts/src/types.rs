//! The shard's vocabulary: inputs, outputs, reject codes and the records it keeps.

use std::fmt;

use serde::{Deserialize, Serialize};

use proto::{
    ClientOrderId, Fees, ListKind, NewOrder, NewOrderList, OrderId, Price, Qty, Seq, Side, Symbol,
    TradeId, UserId,
};

/// An asset, by its index in the shard's asset table (see [`crate::Shard::assets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssetId(pub u16);

/// An asset's name and the scale all of its amounts use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetInfo {
    /// `BTC`, `EUR`: the part of a pair symbol before or after the `-`.
    pub name: String,
    /// Amounts count units of `10^-scale` of the asset.
    pub scale: u8,
}

/// The operator's id of a deposit or withdrawal; a second use is a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference(pub u64);

/// Check and lock the worst case of a new order before it may reach its book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The pair.
    pub pair: Symbol,
    /// The owner.
    pub user: UserId,
    /// The order as it will be sent to the pair's engine. A market buy by
    /// base quantity must be [`proto::OrderSize::BaseWithin`]: its budget is
    /// what the engine may spend on its fills, so it is what the hold covers.
    pub order: NewOrder,
    /// The rates this order will be charged.
    pub fees: Fees,
}

/// Check and lock the worst case of an order list (OCO or OTO) before it
/// may reach its book: both orders are held, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceList {
    /// The pair.
    pub pair: Symbol,
    /// The owner.
    pub user: UserId,
    /// The list as it will be sent to the pair's engine (a market buy by
    /// base quantity in it carries its budget, as in [`Place`]).
    pub list: NewOrderList,
    /// The rates its orders will be charged.
    pub fees: Fees,
}

/// Check an amend of an open order (a resting limit order, or a
/// conditional order waiting for its trigger) before it may reach its book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amend {
    /// The pair.
    pub pair: Symbol,
    /// Who asks: must own the order.
    pub user: UserId,
    /// The order.
    pub order_id: OrderId,
    /// New total quantity.
    pub new_qty: Option<Qty>,
    /// New limit price.
    pub new_price: Option<Price>,
}

/// One input of a shard, applied in log order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// An operator credits `amount` (at the asset's scale) to `free`.
    Deposit {
        /// Whose account.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// How much; zero is refused.
        amount: u128,
        /// Idempotency key, shared with withdrawals.
        reference: Reference,
    },
    /// An operator debits `amount` from `free`.
    Withdraw {
        /// Whose account.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// How much; zero or more than `free` is refused.
        amount: u128,
        /// Idempotency key, shared with deposits.
        reference: Reference,
    },
    /// See [`Place`].
    Place(Place),
    /// See [`Amend`].
    Amend(Amend),
    /// One event of a pair's engine, in that pair's `seq` order.
    Settle(proto::Event),
    /// See [`PlaceList`]. (Last, so that the encodings of the inputs before
    /// it keep their variant index.)
    PlaceList(PlaceList),
}

/// Which side of a trade an order was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The resting order.
    Maker,
    /// The incoming order.
    Taker,
}

/// What a shard says about an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// A deposit was credited.
    Deposited {
        /// Whose account.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// How much.
        amount: u128,
        /// Its reference.
        reference: Reference,
    },
    /// A withdrawal was debited.
    Withdrew {
        /// Whose account.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// How much.
        amount: u128,
        /// Its reference.
        reference: Reference,
    },
    /// The input was seen before; nothing changed.
    Duplicate(Duplicate),
    /// The input was refused; nothing changed.
    Rejected(RiskCode),
    /// `amount` moved from free to locked for an order (zero for an amend
    /// that needs no more: what it frees is released when the engine
    /// confirms it). An OCO list locks once, under its list id.
    Locked {
        /// The owner.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// The order's pair.
        pair: Symbol,
        /// The order.
        order_id: OrderId,
        /// How much.
        amount: u128,
    },
    /// `amount` moved from locked back to free (from an OCO list's shared
    /// hold: under its list id).
    Released {
        /// The owner.
        user: UserId,
        /// Which asset.
        asset: AssetId,
        /// The order's pair.
        pair: Symbol,
        /// The order.
        order_id: OrderId,
        /// How much.
        amount: u128,
    },
    /// One side of a trade settled: base and quote moved, the fee was charged.
    Filled {
        /// The order's owner.
        user: UserId,
        /// The pair.
        pair: Symbol,
        /// The order.
        order_id: OrderId,
        /// The trade.
        trade_id: TradeId,
        /// Maker or taker.
        role: Role,
        /// Bought or sold.
        side: Side,
        /// Base quantity, at the base asset's scale.
        base: u128,
        /// Price times quantity, at the quote asset's scale.
        quote: u128,
        /// Fee in the quote asset, credited to its fee account.
        fee: u128,
    },
    /// An engine event was applied (possibly changing nothing here).
    Settled {
        /// The pair.
        pair: Symbol,
        /// The event's position in the pair's stream.
        seq: Seq,
    },
}

/// What a duplicate input repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Duplicate {
    /// A deposit or withdrawal reference already used.
    Reference(Reference),
    /// An engine event at or below the pair's last settled `seq`.
    Settle {
        /// The pair.
        pair: Symbol,
        /// The repeated event's seq.
        seq: Seq,
    },
}

/// Why a shard refused an input. Distinct per cause, so callers can map them
/// to API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RiskCode {
    /// A deposit or withdrawal of zero.
    ZeroAmount,
    /// An asset id not in the shard's table.
    UnknownAsset,
    /// More than `free` was asked for (withdraw, place or amend up).
    InsufficientBalance,
    /// A pair the shard was not configured with.
    UnknownPair,
    /// An order id with a hold already on this pair.
    DuplicateOrder,
    /// An amend of an order the shard holds nothing for.
    UnknownOrder,
    /// An amend by someone else than the order's owner.
    NotOwner,
    /// A market buy by base quantity without a budget
    /// ([`proto::OrderSize::Base`] instead of `BaseWithin`).
    BudgetRequired,
    /// A maker rate above the taker rate, or a rate above 10,000 bps.
    BadFees,
    /// A market or quote-sized order that is not waiting for a trigger:
    /// only limit orders and waiting conditional orders can be amended.
    NotAmendable,
    /// An amend below what has already filled.
    AmendBelowFilled,
    /// A sell sized in quote, or a sell or limit order with a budget: only
    /// market buys may be (the engine agrees).
    UnsupportedOrder,
    /// An amount beyond `u128`.
    Overflow,
}

impl RiskCode {
    /// The Binance error code the API answers with, where one fits.
    pub fn binance_code(self) -> Option<i32> {
        match self {
            RiskCode::InsufficientBalance => Some(-2010),
            _ => None,
        }
    }
}

/// One (user, asset) account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Spendable and withdrawable.
    pub free: u128,
    /// Held for open orders.
    pub locked: u128,
}

/// How a hold is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldKind {
    /// A limit order: its rest needs `remaining` base (sell) or
    /// `price * remaining` plus the taker fee in quote (buy).
    Limit {
        /// The limit price now.
        price: Price,
    },
    /// A market sell: its rest needs `remaining` base.
    MarketSell,
    /// A market buy (by quote, or by base with a budget): spends its hold
    /// down and releases what is left when it ends.
    MarketBuy,
}

/// What an order has locked and what the shard knows of its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The owner.
    pub user: UserId,
    /// Buy (holds quote) or sell (holds base).
    pub side: Side,
    /// How it is sized.
    pub kind: HoldKind,
    /// Total quantity (filled plus open); zero for a quote-sized buy.
    pub qty: Qty,
    /// Open quantity; zero for a quote-sized buy.
    pub remaining: Qty,
    /// Its fee rates.
    pub fees: Fees,
    /// Locked for it now. For an order of an OCO list this is what it
    /// would lock alone, kept for sizing only: its list's shared hold
    /// ([`ListHold::amount`]) is what is locked for both.
    pub amount: u128,
    /// Amends the shard passed on that the engine has not answered yet, in
    /// order: the hold covers each of them as well as the current state.
    pub pending: Vec<(Qty, Price)>,
    /// The owner's client order id, if the order has one.
    pub client: Option<ClientOrderId>,
    /// The order list it was placed in, if any.
    pub list: Option<OrderId>,
    /// Placed as a conditional order: amendable while it waits, whatever
    /// it works as once triggered.
    pub conditional: bool,
}

/// An order list the shard holds funds for, until its last order ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListHold {
    /// The owner.
    pub user: UserId,
    /// OCO or OTO.
    pub kind: ListKind,
    /// Buy (holds quote) or sell (holds base): an OCO's two orders are on
    /// one side; an OTO's orders hold each for itself, see `kind`.
    pub side: Side,
    /// Its orders, in list order.
    pub orders: [OrderId; 2],
    /// OCO: locked once for both orders, sized for the larger need of the
    /// two, spent by fills of either and trimmed to what the orders still
    /// open need. OTO: zero (each order holds its own).
    pub amount: u128,
}

/// Per asset, the flows that change the shard's total of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AssetTotals {
    /// Sum of deposits.
    pub deposits: u128,
    /// Sum of withdrawals.
    pub withdrawals: u128,
    /// Received from trade counterparties (of this shard or another).
    pub received: u128,
    /// Paid to trade counterparties (of this shard or another).
    pub sent: u128,
}

/// A pair set the shard cannot keep exact accounts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The symbol is not `BASE-QUOTE` with two different non-empty names.
    BadSymbol(Symbol),
    /// The same pair twice.
    DuplicatePair(Symbol),
    /// A quote scale `price_scale + qty_scale` beyond `u8`, an asset with
    /// more than 18 decimals beyond a pair's own amounts, or more pairs or
    /// assets than ids.
    TooLarge(Symbol),
    /// A pair listed on a running shard would count an asset it already
    /// has in a finer unit: every balance of that asset would have to be
    /// rescaled.
    FinerUnit {
        /// The pair listed.
        pair: Symbol,
        /// The asset.
        asset: String,
        /// The decimals the asset counts in.
        scale: u8,
        /// The decimals the pair would need.
        needed: u8,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadSymbol(s) => write!(f, "pair {s}: symbol is not BASE-QUOTE"),
            ConfigError::DuplicatePair(s) => write!(f, "pair {s} appears twice"),
            ConfigError::TooLarge(s) => write!(f, "pair {s}: scale or id space too large"),
            ConfigError::FinerUnit {
                pair,
                asset,
                scale,
                needed,
            } => write!(
                f,
                "pair {pair}: {asset} counts in {scale} decimals here and the pair needs {needed}; \
                 list it with scales that need at most {scale}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
