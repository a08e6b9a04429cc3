//! Balances, pre-trade risk and settlement: the state machine of one risk
//! shard, the single writer of its users' accounts.
//!
//! A [`Shard`] applies [`Input`]s in order; each yields at least one
//! [`Output`], and a refused input changes nothing. Inputs are operator
//! movements (deposit, withdraw), pre-trade checks (place, amend) and the
//! pair engines' events fed back for settlement.
//!
//! Architecture Invariant: no I/O, no clock, no randomness and no randomly
//! seeded hash map (see `clippy.toml`): the same inputs from the same
//! snapshot give the same outputs and the same [`Shard::state_hash`].
//!
//! Rules, as implemented:
//! - **Assets and scales.** Each pair `BASE-QUOTE` names two assets. A
//!   pair counts base in units of `10^-qty_scale` and quote in units of
//!   `10^-(price_scale + qty_scale)`, where `price * qty` is exact, so a
//!   trade's notional never rounds. An asset counts in the finest unit any
//!   of its pairs uses (BTC quoted by ETH-BTC at 6 + 8 decimals counts at
//!   14, and BTC-EUR's quantities, at 8, convert by `10^6`), so every
//!   conversion is an exact multiplication ([`ConfigError::TooLarge`] past
//!   18 digits of difference).
//! - **Fees** are paid in the quote asset by both sides, at the order's own
//!   rates ([`Fees`], carried by [`Place`]): `fee = floor(notional * bps /
//!   10_000)`. Rounding down makes the fees of a split fill never exceed the
//!   fee of the whole, so a hold sized for the whole at the taker rate always
//!   covers every partial fill; the fee account is credited exactly the
//!   amounts debited. A maker rate above the taker rate is refused.
//! - **Holds.** A limit buy locks `price * qty + fee(taker)` in quote; a sell
//!   locks `qty` in base; a market buy by quote locks the quote amount plus
//!   its taker fee; a market buy by base must carry a budget
//!   ([`proto::OrderSize::BaseWithin`]), which the engine never exceeds, and
//!   locks it plus its taker fee. After each
//!   fill a limit order's hold is cut to what its rest still needs at its
//!   limit price (this releases price improvement at once); when an order
//!   ends, all of its hold is released.
//! - **Advanced orders.** A conditional order holds, while it waits, as
//!   the order it works as once triggered (its limit price, or a market
//!   order's quantity, quote amount or budget); an iceberg or GTD order as
//!   its limit order. An OTO list holds both of its orders. An OCO list
//!   locks once for both ([`ListHold`]): the larger need of the two, paid
//!   from by fills of either, cut to its open orders' need after each
//!   change (the survivor's once the other ended), released when the last
//!   ends. See `lists.rs`.
//! - **Shards.** A shard settles only the sides of a trade whose order it
//!   holds: every order of its users was placed through it, so holding the
//!   order is holding the user. Value that leaves or enters a shard with a
//!   counterparty's leg is counted per asset ([`AssetTotals`]), which makes
//!   conservation checkable per shard.

mod audit;
mod lists;
mod shard;
mod snapshot;
mod types;

pub use audit::AuditError;
/// The rates a pair's orders are charged: a pair's rule, so it is `proto`'s.
pub use proto::Fees;
pub use shard::{Shard, moves_money};
pub use snapshot::{MAX_SNAPSHOT_BYTES, SNAPSHOT_VERSION, SnapshotError};
pub use types::{
    Amend, AssetId, AssetInfo, AssetTotals, Balance, ConfigError, Duplicate, Hold, HoldKind, Input,
    ListHold, Output, Place, PlaceList, Reference, RiskCode, Role,
};
