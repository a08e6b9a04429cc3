//! Decimal strings at every scale: parsing never panics, and a parsed value
//! formats back to a string that parses to the same value; every `u64`
//! formats to a string that parses back (when it fits the length limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{MAX_DECIMAL_LEN, MAX_SCALE, format_decimal, parse_decimal};

fuzz_target!(|data: &[u8]| {
    let Some((&scale, rest)) = data.split_first() else {
        return;
    };
    // A few scales past the maximum, which must be refused.
    let scale = scale % (MAX_SCALE + 3);
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Ok(v) = parse_decimal(s, scale) {
            let formatted = format_decimal(v, scale);
            assert_eq!(
                parse_decimal(&formatted, scale),
                Ok(v),
                "{s:?} -> {formatted:?}"
            );
        }
    }
    if scale <= MAX_SCALE && rest.len() >= 8 {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&rest[..8]);
        let v = u64::from_le_bytes(raw);
        let formatted = format_decimal(v, scale);
        if formatted.len() <= MAX_DECIMAL_LEN {
            assert_eq!(parse_decimal(&formatted, scale), Ok(v), "{formatted:?}");
        }
    }
});
