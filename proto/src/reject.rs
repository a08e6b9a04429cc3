//! Reject codes: stable numbers, grouped by the stage that refuses a command.
//! A number, once published, never changes meaning; new reasons get new numbers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

macro_rules! reject_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $msg:literal;)*) => {
        /// Why the engine refused a command. `1xx` routing, `2xx` the command
        /// itself is invalid for the pair's rules, `3xx` it conflicts with the
        /// book's current state.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum RejectCode {
            $($(#[$doc])* $name = $num,)*
        }

        impl RejectCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [RejectCode] = &[$(RejectCode::$name,)*];

            /// The stable number.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The code for a number, if there is one.
            pub fn from_code(code: u16) -> Option<Self> {
                match code {
                    $($num => Some(RejectCode::$name),)*
                    _ => None,
                }
            }

            /// A short human-readable explanation.
            pub fn message(self) -> &'static str {
                match self {
                    $(RejectCode::$name => $msg,)*
                }
            }
        }
    };
}

reject_codes! {
    /// The command names a pair this book does not trade.
    UnknownPair = 101, "Unknown pair.";

    /// The limit price is not a multiple of the pair's tick size.
    PriceOffTick = 201, "Price is not a multiple of the tick size.";
    /// The quantity is not a multiple of the pair's lot size.
    QtyOffLot = 202, "Quantity is not a multiple of the lot size.";
    /// The quantity is below the pair's minimum.
    QtyBelowMin = 203, "Quantity is below the minimum.";
    /// The quantity is above the pair's maximum.
    QtyAboveMax = 204, "Quantity is above the maximum.";
    /// Price times quantity (or the quote amount) is below the pair's minimum notional.
    NotionalBelowMin = 205, "Order value is below the minimum notional.";
    /// Market orders must be IOC or FOK.
    InvalidTimeInForce = 206, "Market orders must be IOC or FOK.";
    /// Post-only is for limit GTC orders only.
    PostOnlyNotAllowed = 207, "Post-only requires a limit GTC order.";
    /// A quote amount is for market IOC buys only, and a quote budget for
    /// market buys only.
    QuoteSizeNotAllowed = 208, "A quote amount is only allowed on market IOC buys.";
    /// An amend that names no change, or only the values the order already has.
    NothingToAmend = 209, "Amend changes neither quantity nor price.";
    /// A limit price of zero.
    PriceZero = 210, "Price must be greater than zero.";
    /// The limit price is above the pair's maximum price.
    PriceAboveMax = 211, "Price is above the maximum.";
    /// Price times quantity (or the quote amount) is above the pair's maximum notional.
    NotionalAboveMax = 212, "Order value is above the maximum notional.";
    InvalidTrigger = 213, "A conditional order needs a stop price or a trailing delta within its range.";
    IcebergNotAllowed = 214, "Iceberg quantity requires a limit order that may rest, below its quantity, within the slice limit.";
    InvalidGoodTill = 215, "GTD requires an expiry time, and an expiry time requires GTD.";
    InvalidOrderList = 216, "Order list legs do not fit the list's rules.";
    OrderTypeNotAllowed = 217, "Order type is not allowed on this pair.";
    /// An operator's change of a pair whose merged rules are not valid
    /// (`PairConfig::validate`), alone or with the bounds of the orders
    /// the book holds; nothing changed.
    InvalidPairChange = 218, "The pair change does not make valid rules.";

    /// An open order already has this order id.
    DuplicateOrderId = 301, "Duplicate order id.";
    /// The user already has an open order with this client order id.
    DuplicateClientOrderId = 302, "Duplicate client order id.";
    /// No open order matches (never existed, filled, or canceled).
    UnknownOrder = 303, "Unknown order.";
    /// Retired: the book answers [`RejectCode::UnknownOrder`] for another
    /// user's order, so that nobody can learn which ids exist. The number
    /// stays reserved.
    NotOrderOwner = 304, "Order belongs to another user.";
    /// The book holds as many orders as its configured maximum.
    BookFull = 305, "Order book is full.";
    /// An amend of a post-only order to a price that would take liquidity.
    PostOnlyWouldCross = 306, "Post-only order would take liquidity.";
    /// An amend's new quantity is not above what has already filled.
    AmendBelowFilled = 307, "New quantity is not above the filled quantity.";
    WouldTriggerImmediately = 308, "Order would trigger immediately.";
    GoodTillPassed = 309, "The expiry time has already passed.";
    UnknownOrderList = 310, "Unknown order list.";
    DuplicateOrderListId = 311, "Duplicate order list id.";
    /// The pair is in `HALT`: it takes cancels only.
    PairHalted = 312, "Market is closed: the pair takes cancels only.";
    /// The pair is in `BREAK`: it takes no trading command, cancels included.
    PairBreak = 313, "Market is closed: the pair takes no orders or cancels.";
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.message())
    }
}

impl Serialize for RejectCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for RejectCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(d)?;
        RejectCode::from_code(code)
            .ok_or_else(|| de::Error::custom(format_args!("unknown reject code {code}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for &c in RejectCode::ALL {
            assert!(seen.insert(c.code()), "duplicate {}", c.code());
            assert_eq!(RejectCode::from_code(c.code()), Some(c));
            assert!(!c.message().is_empty());
        }
        assert_eq!(RejectCode::from_code(0), None);
    }
}
