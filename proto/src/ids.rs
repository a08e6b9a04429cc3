//! Identifiers. Small, `Copy`, allocation-free: they sit in every command and
//! event on the hot path.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A short ASCII string stored inline (no heap), zero-padded so that the
/// derived `Eq`/`Ord`/`Hash` compare the text itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct InlineStr<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> InlineStr<N> {
    fn new(s: &str, allowed: impl Fn(u8) -> bool) -> Option<Self> {
        if s.is_empty() || s.len() > N || !s.bytes().all(allowed) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Self {
            bytes,
            len: s.len() as u8,
        })
    }

    fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `new`), so this cannot fail.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

/// Implements `Display`, `Debug`, `FromStr` and string serde for an inline
/// string newtype, with its validation rule.
macro_rules! inline_string_id {
    ($(#[$doc:meta])* $name:ident, $cap:expr, $err:ident, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(InlineStr<$cap>);

        impl $name {
            /// Longest accepted text, in bytes.
            pub const MAX_LEN: usize = $cap;

            /// Validates and stores `s`.
            pub fn new(s: &str) -> Result<Self, IdError> {
                let valid: fn(&str) -> bool = $valid;
                if !valid(s) {
                    return Err(IdError::$err);
                }
                InlineStr::new(s, |b| b.is_ascii_graphic())
                    .map(Self)
                    .ok_or(IdError::$err)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(stringify!($name))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

inline_string_id!(
    /// A trading pair such as `BTC-EUR`: base and quote asset codes
    /// (`A-Z`, `0-9`, 1 to 7 characters each) joined by one dash.
    Symbol,
    15,
    InvalidSymbol,
    |s| {
        let mut parts = s.split('-');
        let ok = |p: Option<&str>| {
            p.is_some_and(|p| {
                (1..=7).contains(&p.len())
                    && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
        };
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    }
);

impl Symbol {
    /// The base and quote asset codes.
    pub fn assets(&self) -> (&str, &str) {
        self.as_str().split_once('-').unwrap_or((self.as_str(), ""))
    }

    /// The name Binance's API gives the pair: base and quote joined with
    /// nothing between them, `BTCEUR` for `BTC-EUR`.
    pub fn joined(&self) -> String {
        let (base, quote) = self.assets();
        format!("{base}{quote}")
    }
}

inline_string_id!(
    /// The trader's own name for an order: 1 to 36 characters of
    /// `A-Z a-z 0-9 . _ : / -` (Binance's rule), unique among that user's
    /// open orders.
    ClientOrderId,
    36,
    InvalidClientOrderId,
    |s| {
        !s.is_empty()
            && s.len() <= 36
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
    }
);

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Not `BASE-QUOTE` with 1 to 7 upper-case letters or digits on each side.
    InvalidSymbol,
    /// Empty, longer than 36 characters, or a character outside `A-Za-z0-9._:/-`.
    InvalidClientOrderId,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::InvalidSymbol => "invalid symbol: expected BASE-QUOTE such as BTC-EUR",
            IdError::InvalidClientOrderId => {
                "invalid client order id: 1 to 36 characters of A-Z a-z 0-9 . _ : / -"
            }
        })
    }
}

impl std::error::Error for IdError {}

/// Defines a transparent integer identifier.
macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

int_id!(
    /// An order's id, unique per pair. Assigned by the sender of the command
    /// (the gateway), so an `ACK` can name it before the engine has run.
    OrderId
);
int_id!(
    /// An account.
    UserId
);
int_id!(
    /// Position of an event in its pair's event stream: contiguous from 1.
    Seq
);
int_id!(
    /// A trade's id: the `seq` of its trade event, so it is deterministic and
    /// unique per pair.
    TradeId
);
int_id!(
    /// Nanoseconds since the Unix epoch, stamped by the sender. The engine
    /// never reads a clock; time is an input.
    Timestamp
);

/// The number of a gateway among several: every order id a gateway of the
/// distributed exchange assigns ends in its instance number, so no two
/// gateways ever hand out the same id. The store hands the numbers out
/// (unique among the last [`InstanceId::COUNT`] registered); the gateway puts
/// them in the low [`InstanceId::BITS`] bits of its order ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InstanceId(u16);

impl InstanceId {
    /// Bits of an order id that hold the instance number.
    pub const BITS: u32 = 10;
    /// How many distinct instance numbers there are.
    pub const COUNT: u64 = 1 << Self::BITS;

    /// The instance number for the `n`th registration: registrations cycle
    /// through the [`InstanceId::COUNT`] numbers.
    pub fn from_registration(n: u64) -> InstanceId {
        // Below COUNT (1,024) after the modulo, so it fits in a u16.
        InstanceId((n % Self::COUNT) as u16)
    }

    /// The number, below [`InstanceId::COUNT`].
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols() {
        for ok in ["BTC-EUR", "ETH-BTC", "A-B", "1INCH-USDT", "ABCDEFG-HIJKLMN"] {
            assert_eq!(Symbol::new(ok).map(|s| s.to_string()), Ok(ok.to_string()));
        }
        for bad in [
            "",
            "BTCEUR",
            "btc-eur",
            "BTC-",
            "-EUR",
            "BTC-EUR-X",
            "ABCDEFGH-EUR",
            "BTC EUR",
            "BTC_EUR",
        ] {
            assert_eq!(Symbol::new(bad), Err(IdError::InvalidSymbol), "{bad:?}");
        }
    }

    #[test]
    fn client_order_ids() {
        assert!(ClientOrderId::new("my-order_1.2:3/4").is_ok());
        assert!(ClientOrderId::new(&"x".repeat(36)).is_ok());
        for bad in ["", "a b", "é", "a\0", &"x".repeat(37)] {
            assert_eq!(
                ClientOrderId::new(bad),
                Err(IdError::InvalidClientOrderId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn inline_strings_order_like_their_text() {
        let a = ClientOrderId::new("a").unwrap();
        let ab = ClientOrderId::new("ab").unwrap();
        let b = ClientOrderId::new("b").unwrap();
        assert!(a < ab && ab < b);
    }

    #[test]
    fn instance_ids_cycle_through_ten_bits() {
        assert_eq!(InstanceId::COUNT, 1024);
        assert_eq!(InstanceId::from_registration(5).get(), 5);
        assert_eq!(InstanceId::from_registration(1023).get(), 1023);
        assert_eq!(InstanceId::from_registration(1024).get(), 0);
        assert_eq!(InstanceId::from_registration(u64::MAX).get(), 1023);
    }

    #[test]
    fn json_rejects_invalid_ids() {
        assert!(serde_json::from_str::<Symbol>("\"BTC-EUR\"").is_ok());
        assert!(serde_json::from_str::<Symbol>("\"btc\"").is_err());
        assert!(serde_json::from_str::<Symbol>("42").is_err());
    }
}
