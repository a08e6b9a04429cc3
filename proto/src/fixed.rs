//! Fixed-point numbers. A pair fixes two scales: prices are integers in units
//! of `10^-price_scale` quote currency, quantities in units of
//! `10^-qty_scale` base currency. Decimal strings exist only at the API edge
//! and convert exactly; there is no floating point anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest number of decimals a pair may configure. Keeps `10^scale` and
/// `price * qty` comfortably inside `u128`.
pub const MAX_SCALE: u8 = 18;

/// Largest price, quantity or quote amount anything in the system holds:
/// `i64::MAX`, so every value fits a signed 64-bit column (Postgres
/// `BIGINT`, SQLite `INTEGER`) as it is. A pair's config is refused unless
/// its largest order, at its largest price, stays at or below this
/// ([`crate::PairConfig::validate`]); so nothing the engine emits can exceed it.
pub const MAX_VALUE: u64 = i64::MAX as u64;

/// Longest decimal string accepted, so a hostile input costs nothing to reject.
pub const MAX_DECIMAL_LEN: usize = 40;

macro_rules! fixed {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);

            /// Parses a decimal string with at most `scale` decimals.
            /// Zero is accepted; callers that need a positive value use
            /// [`Self::parse_positive`].
            pub fn parse(s: &str, scale: u8) -> Result<Self, DecimalError> {
                parse_decimal(s, scale).map(Self)
            }

            /// Like [`Self::parse`] but rejects zero.
            pub fn parse_positive(s: &str, scale: u8) -> Result<Self, DecimalError> {
                match parse_decimal(s, scale)? {
                    0 => Err(DecimalError::Zero),
                    v => Ok(Self(v)),
                }
            }

            /// Formats with exactly `scale` decimals, e.g. `12.50`.
            pub fn to_decimal(self, scale: u8) -> String {
                format_decimal(self.0, scale)
            }

            /// True when this is zero.
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

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

fixed!(
    /// A price in units of `10^-price_scale` quote currency.
    Price
);
fixed!(
    /// A base-asset quantity in units of `10^-qty_scale` base currency.
    Qty
);
fixed!(
    /// A quote-asset amount (what a market buy may spend) in units of
    /// `10^-price_scale` quote currency, the same unit as [`Price`].
    QuoteQty
);

/// Why a decimal string was refused. Each variant is a distinct API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// The string is empty.
    Empty,
    /// Not digits with at most one `.` between digits (no sign, exponent or spaces).
    Invalid,
    /// Starts with `-`.
    Negative,
    /// Zero where a positive value is required.
    Zero,
    /// More non-zero decimals than the pair allows.
    TooManyDecimals {
        /// The pair's scale.
        max: u8,
    },
    /// Does not fit in 64 bits at this scale.
    Overflow,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecimalError::Empty => f.write_str("empty number"),
            DecimalError::Invalid => f.write_str("not a decimal number"),
            DecimalError::Negative => f.write_str("must not be negative"),
            DecimalError::Zero => f.write_str("must be greater than zero"),
            DecimalError::TooManyDecimals { max } => write!(f, "more than {max} decimals"),
            DecimalError::Overflow => f.write_str("too large"),
        }
    }
}

impl std::error::Error for DecimalError {}

/// Parses `s` as an exact decimal scaled by `10^scale`.
///
/// Accepts `123`, `123.45`, `0.5`; trailing zeros past the scale are allowed
/// (`1.500` at scale 2) because the value is still exact. Rejects `.5`, `5.`,
/// `+5`, `1e3`, whitespace and anything longer than [`MAX_DECIMAL_LEN`].
pub fn parse_decimal(s: &str, scale: u8) -> Result<u64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::Invalid);
    }
    let value = parse_amount(s, scale)?;
    u64::try_from(value).map_err(|_| DecimalError::Overflow)
}

/// [`parse_decimal`] for balances, which count in `u128` at scales up to 38.
pub fn parse_amount(s: &str, scale: u8) -> Result<u128, DecimalError> {
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    if s.len() > MAX_DECIMAL_LEN || scale > 38 {
        return Err(DecimalError::Invalid);
    }
    let (s, negative) = match s.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
        return Err(DecimalError::Invalid);
    }
    if negative {
        return Err(DecimalError::Negative);
    }
    let frac = frac_part.unwrap_or("");
    let (kept, dropped) = frac.split_at(frac.len().min(scale as usize));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooManyDecimals { max: scale });
    }
    let mut value: u128 = 0;
    for b in int_part.bytes().chain(kept.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    for _ in kept.len()..scale as usize {
        value = value.checked_mul(10).ok_or(DecimalError::Overflow)?;
    }
    Ok(value)
}

/// Formats `value / 10^scale` with exactly `scale` decimals.
pub fn format_decimal(value: u64, scale: u8) -> String {
    let digits = value.to_string();
    let scale = scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{i}.{f}")
}

/// `10^exp` as `u128` (`exp` ≤ 38).
pub fn pow10(exp: u8) -> u128 {
    10u128.pow(u32::from(exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        let cases: &[(&str, u8, Result<u64, DecimalError>)] = &[
            ("0", 2, Ok(0)),
            ("1", 2, Ok(100)),
            ("1.5", 2, Ok(150)),
            ("1.50", 2, Ok(150)),
            ("1.500", 2, Ok(150)),
            ("0.01", 2, Ok(1)),
            ("007.10", 2, Ok(710)),
            ("12345", 0, Ok(12345)),
            ("12345.0", 0, Ok(12345)),
            ("0.00000001", 8, Ok(1)),
            ("18446744073709551615", 0, Ok(u64::MAX)),
            ("18446744073709551616", 0, Err(DecimalError::Overflow)),
            ("184467440737095516.16", 2, Err(DecimalError::Overflow)),
            ("1.005", 2, Err(DecimalError::TooManyDecimals { max: 2 })),
            ("0.1", 0, Err(DecimalError::TooManyDecimals { max: 0 })),
            ("-1", 2, Err(DecimalError::Negative)),
            ("-0.5", 2, Err(DecimalError::Negative)),
            ("", 2, Err(DecimalError::Empty)),
            (".5", 2, Err(DecimalError::Invalid)),
            ("5.", 2, Err(DecimalError::Invalid)),
            ("+5", 2, Err(DecimalError::Invalid)),
            ("1e3", 2, Err(DecimalError::Invalid)),
            (" 1", 2, Err(DecimalError::Invalid)),
            ("1.2.3", 2, Err(DecimalError::Invalid)),
            ("--1", 2, Err(DecimalError::Invalid)),
            ("NaN", 2, Err(DecimalError::Invalid)),
            ("١", 2, Err(DecimalError::Invalid)),
        ];
        for (s, scale, want) in cases {
            assert_eq!(parse_decimal(s, *scale), *want, "{s:?} at scale {scale}");
        }
        let long = "1".repeat(MAX_DECIMAL_LEN + 1);
        assert_eq!(parse_decimal(&long, 0), Err(DecimalError::Invalid));
    }

    #[test]
    fn positive_rejects_zero() {
        assert_eq!(Qty::parse_positive("0.000", 3), Err(DecimalError::Zero));
        assert_eq!(Qty::parse_positive("0.001", 3), Ok(Qty(1)));
    }

    #[test]
    fn formats_with_fixed_decimals() {
        assert_eq!(format_decimal(0, 2), "0.00");
        assert_eq!(format_decimal(5, 2), "0.05");
        assert_eq!(format_decimal(150, 2), "1.50");
        assert_eq!(format_decimal(12345, 0), "12345");
        assert_eq!(format_decimal(1, 8), "0.00000001");
        assert_eq!(Price(u64::MAX).to_decimal(18), "18.446744073709551615");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(v: u64, scale in 0u8..=MAX_SCALE) {
            prop_assert_eq!(parse_decimal(&format_decimal(v, scale), scale), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in ".{0,48}", scale in 0u8..=20) {
            let _ = parse_decimal(&s, scale);
        }
    }
}
