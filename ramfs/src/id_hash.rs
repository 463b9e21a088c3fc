//! A fast hasher for maps keyed by numbers the server hands out or a connection picks for
//! itself: node ids (the tree numbers them in order) and a session's fids.
//!
//! The standard `HashMap` hashes with SipHash, which resists keys chosen to collide. That
//! is worth its cost for names, which any client chooses and every client shares (they
//! keep it), but not here: node ids come from a counter, and a client choosing fids that
//! collide slows only its own connection's map. SipHash was a fifth of the instructions
//! of a create+write+remove (callgrind), some twenty lookups in these two maps an
//! operation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by ids, hashed by [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Multiplies each word in and folds the product's high half into its low half, so both
/// the low bits (the bucket) and the high bits (hashbrown's tag) depend on every bit of
/// the key, sequential ids included.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

/// 2^64 divided by the golden ratio (Fibonacci hashing), odd.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        let product = u128::from(self.0 ^ n) * u128::from(MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn hash(n: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(n)
    }

    /// Sequential ids spread over both ends of the hash: no two of the first 4096 share
    /// their low 12 bits' bucket more than a few times, and the top 7 bits (hashbrown's
    /// tag) take many values.
    #[test]
    fn sequential_ids_spread_over_low_and_high_bits() {
        let mut buckets = vec![0u32; 4096];
        let mut tags = std::collections::HashSet::new();
        for n in 0..4096u64 {
            let h = hash(n);
            buckets[(h & 4095) as usize] += 1;
            tags.insert(h >> 57);
        }
        assert!(
            buckets.iter().all(|&c| c <= 8),
            "{:?}",
            buckets.iter().max()
        );
        assert!(tags.len() > 100, "{} tags", tags.len());
    }

    #[test]
    fn a_map_of_ids_works_as_a_map() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for n in 0..1000 {
            m.insert(n, n * 2);
        }
        assert!((0..1000).all(|n| m.get(&n) == Some(&(n * 2))));
        assert_eq!(m.remove(&7), Some(14));
        assert_eq!(m.get(&7), None);
    }
}
