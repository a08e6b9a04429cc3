//! Decimal strings to and from integers at a fixed scale, as the API sends
//! them (`"30000.00"` at scale 2 is 3,000,000).

/// The digits of a plain decimal (`123`, `0.065`) as an integer and the
/// number of decimals. No sign, no exponent.
pub fn parse(s: &str) -> Option<(u128, u32)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || frac.len() > 30 {
        return None;
    }
    let mut v: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    Some((v, frac.len() as u32))
}

/// `s` as an integer number of units of `10^-scale`; `None` if it has more
/// significant decimals than that or does not fit.
pub fn to_scale(s: &str, scale: u32) -> Option<u64> {
    let (v, decimals) = parse(s)?;
    let v = if decimals <= scale {
        v.checked_mul(10u128.checked_pow(scale - decimals)?)?
    } else {
        let div = 10u128.checked_pow(decimals - scale)?;
        if v % div != 0 {
            return None;
        }
        v / div
    };
    u64::try_from(v).ok()
}

/// `v` units of `10^-scale` as a decimal string with exactly `scale`
/// decimals.
pub fn format(v: u64, scale: u32) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let p = 10u64.pow(scale.min(19));
    format!(
        "{}.{:0width$}",
        v / p,
        v % p,
        width = scale.min(19) as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(parse("30000"), Some((30_000, 0)));
        assert_eq!(parse("0.065"), Some((65, 3)));
        assert_eq!(parse(".5"), Some((5, 1)));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("1e5"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("."), None);
        assert_eq!(to_scale("30000", 2), Some(3_000_000));
        assert_eq!(to_scale("30000.10", 2), Some(3_000_010));
        assert_eq!(to_scale("0.00001000", 8), Some(1_000));
        assert_eq!(to_scale("0.001", 2), None);
        assert_eq!(to_scale("0.100", 1), Some(1));
        assert_eq!(format(3_000_010, 2), "30000.10");
        assert_eq!(format(1_000, 8), "0.00001000");
        assert_eq!(format(65_000, 6), "0.065000");
        assert_eq!(format(7, 0), "7");
        for (v, scale) in [(0, 2), (1, 8), (123_456_789, 4)] {
            assert_eq!(to_scale(&format(v, scale), scale), Some(v));
        }
    }
}
