//! FNV-1a, the one checksum and state hash shared by the processes: the
//! engine hashes its snapshot bytes with it (the state hash replay is checked
//! by) and the embedded journal checks each record with it. Both values are
//! stored or compared across runs and versions, so the function must never
//! change: it is the published 64-bit FNV-1a, with no seed.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`: pure, unseeded, the same on every
/// platform. Not collision resistant against an adversary; it detects torn
/// writes and tells states apart, nothing more.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
