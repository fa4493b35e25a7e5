//! A 64-bit hash whose value never changes: FNV-1a.
//!
//! Everything this module writes to disk and compares in a later process (machine
//! fingerprints, executable identities, payload checksums) must hash to the same value
//! in every build of every version of amorsize, on every platform. std's `DefaultHasher`
//! and `RandomState` promise no such thing (SipHash keys, and the algorithm itself may
//! change between Rust releases), and neither does `rustc-hash` (its `FxHasher` changed
//! its output in 2.0). FNV-1a is fully specified, byte order free and ten lines long.
//!
//! It is not a cryptographic hash: it catches truncation, bit rot and a file from
//! elsewhere, not a forger. Nothing in the cache needs more: an attacker who can write
//! the cache directory can already write the user's other files.

/// FNV-1a, 64-bit, over bytes fed in order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StableHasher {
    /// The running hash.
    state: u64,
}

/// FNV-1a's 64-bit offset basis (the hash of no bytes).
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl StableHasher {
    /// A hasher that has seen no bytes yet.
    pub(crate) const fn new() -> Self {
        StableHasher {
            state: OFFSET_BASIS,
        }
    }

    /// Feeds raw bytes. Callers that feed several fields use the typed writers below,
    /// which mark field boundaries so that `("ab", "c")` and `("a", "bc")` differ.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(PRIME);
        }
    }

    /// Feeds an integer as 8 little-endian bytes (the same on every platform).
    pub(crate) fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Feeds a string with its length first, so adjacent strings cannot run together.
    pub(crate) fn write_str(&mut self, s: &str) {
        self.write_bytes_field(s.as_bytes());
    }

    /// Feeds a byte string with its length first.
    pub(crate) fn write_bytes_field(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        self.write(bytes);
    }

    /// Feeds an optional integer: a tag byte, then the value if there is one, so that
    /// `None` and `Some(0)` differ.
    pub(crate) fn write_opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.write(&[0]),
            Some(v) => {
                self.write(&[1]);
                self.write_u64(v);
            }
        }
    }

    /// The hash of everything fed so far.
    pub(crate) const fn finish(&self) -> u64 {
        self.state
    }
}

/// The hash of one byte string (payload checksums).
#[cfg(test)]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::new();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        assert_eq!(hash_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash_bytes(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_do_not_run_together() {
        let hash = |a: &str, b: &str| {
            let mut h = StableHasher::new();
            h.write_str(a);
            h.write_str(b);
            h.finish()
        };
        assert_ne!(hash("ab", "c"), hash("a", "bc"));
        let opt = |v| {
            let mut h = StableHasher::new();
            h.write_opt_u64(v);
            h.finish()
        };
        assert_ne!(opt(None), opt(Some(0)));
    }
}
