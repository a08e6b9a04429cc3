//! Decimal strings to and from integers at a pair's scale, as the API
//! sends them (`"30000.00"` at scale 2 is 3,000,000), with proto's own
//! decimal code: a client reads and writes numbers exactly as the gateway
//! parses them.

pub use proto::DecimalError;

/// `s` as an integer number of units of `10^-scale`: proto's parser, so
/// refused exactly when the gateway would refuse it (more significant
/// decimals than `scale`, a sign, an exponent, too large).
pub fn to_scale(s: &str, scale: u8) -> Result<u64, DecimalError> {
    proto::parse_decimal(s, scale)
}

/// `v` units of `10^-scale` as a decimal string with exactly `scale`
/// decimals.
pub fn format(v: u64, scale: u8) -> String {
    proto::format_decimal(v, scale)
}

/// Whether `s` is a plain decimal greater than zero, read at the scale of
/// its own decimals (so a large whole number does not overflow).
pub fn is_positive(s: &str) -> bool {
    let decimals = s.split_once('.').map_or(0, |(_, f)| f.len());
    u8::try_from(decimals).is_ok_and(|scale| to_scale(s, scale).is_ok_and(|v| v > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(to_scale("30000", 2), Ok(3_000_000));
        assert_eq!(to_scale("30000.10", 2), Ok(3_000_010));
        assert_eq!(to_scale("0.00001000", 8), Ok(1_000));
        assert_eq!(
            to_scale("0.001", 2),
            Err(DecimalError::TooManyDecimals { max: 2 })
        );
        assert_eq!(to_scale("0.100", 1), Ok(1));
        assert_eq!(to_scale("-1", 2), Err(DecimalError::Negative));
        assert_eq!(to_scale("1e5", 2), Err(DecimalError::Invalid));
        assert_eq!(to_scale("", 2), Err(DecimalError::Empty));
        assert_eq!(format(3_000_010, 2), "30000.10");
        assert_eq!(format(1_000, 8), "0.00001000");
        assert_eq!(format(65_000, 6), "0.065000");
        assert_eq!(format(7, 0), "7");
        for (v, scale) in [(0, 2), (1, 8), (123_456_789, 4)] {
            assert_eq!(to_scale(&format(v, scale), scale), Ok(v));
        }
        assert!(is_positive("0.065"));
        assert!(is_positive("30000000000"));
        assert!(!is_positive("0"));
        assert!(!is_positive("abc"));
    }
}
