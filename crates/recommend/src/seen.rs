//! The per-user "already seen" filter: two generations of Bloom filters over video ids, so
//! memory per user is fixed, the false-positive rate is bounded, and the oldest views are
//! forgotten once a generation fills (a clip seen thousands of views ago may come back).
//!
//! Hashing is splitmix64 over the id (double hashing for the k probes): the same on every
//! node and across restarts, so a filter can be stored and loaded as bytes.

use crate::codec::Reader;
use crate::error::RecommendError;

/// Sizing of one user's filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeenParams {
    /// Views one generation holds before the filter rotates (the older generation is
    /// dropped). The filter remembers between `capacity` and `2 * capacity` recent views.
    pub capacity: u32,
    /// Upper bound on the probability that an unseen video is reported seen.
    pub false_positive_rate: f64,
}

impl Default for SeenParams {
    fn default() -> Self {
        SeenParams { capacity: 5000, false_positive_rate: 0.01 }
    }
}

impl SeenParams {
    /// Bits and probes of one generation. Each generation targets half the bound: a query
    /// is a false positive when either generation says yes, so the total stays <= the bound.
    fn shape(&self) -> (u32, u32) {
        let n = f64::from(self.capacity.max(1));
        let p = (self.false_positive_rate / 2.0).clamp(1e-9, 0.5);
        let ln2 = std::f64::consts::LN_2;
        let mut bits = (-(n * p.ln()) / (ln2 * ln2)).ceil().max(64.0);
        let probes = ((bits / n) * ln2).round().clamp(1.0, 30.0);
        // Rounding the probe count moves the rate off the optimum: grow until the full
        // generation's rate (1 - e^(-kn/m))^k is within its share of the bound.
        while (1.0 - (-probes * n / bits).exp()).powf(probes) > p {
            bits = (bits * 1.01).ceil();
        }
        (bits as u32, probes as u32)
    }
}

/// One user's seen filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenFilter {
    params: SeenParams,
    bits: u32,
    probes: u32,
    current: Vec<u64>,
    previous: Vec<u64>,
    /// Views inserted into `current`.
    filled: u32,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl SeenFilter {
    pub fn new(params: SeenParams) -> SeenFilter {
        let (bits, probes) = params.shape();
        let words = bits.div_ceil(64) as usize;
        SeenFilter {
            params,
            bits,
            probes,
            current: vec![0; words],
            previous: vec![0; words],
            filled: 0,
        }
    }

    /// The bit positions of `id`.
    fn positions(&self, id: u64) -> impl Iterator<Item = usize> + '_ {
        let h1 = splitmix64(id);
        let h2 = splitmix64(h1) | 1;
        (0..u64::from(self.probes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % u64::from(self.bits)) as usize)
    }

    fn test(words: &[u64], positions: impl Iterator<Item = usize>) -> bool {
        let mut all = true;
        for p in positions {
            all &= words.get(p / 64).is_some_and(|w| w & (1 << (p % 64)) != 0);
        }
        all
    }

    /// Whether `id` was (probably) seen: never false for an id inserted within the last
    /// `capacity` insertions.
    pub fn contains(&self, id: u64) -> bool {
        Self::test(&self.current, self.positions(id))
            || Self::test(&self.previous, self.positions(id))
    }

    /// Records a view of `id`; false when the current generation already had it (nothing
    /// changed, nothing to store).
    pub fn insert(&mut self, id: u64) -> bool {
        if Self::test(&self.current, self.positions(id)) {
            return false;
        }
        if self.filled >= self.params.capacity {
            self.previous = std::mem::replace(&mut self.current, vec![0; self.previous.len()]);
            self.filled = 0;
        }
        let positions: Vec<usize> = self.positions(id).collect();
        for p in positions {
            if let Some(w) = self.current.get_mut(p / 64) {
                *w |= 1 << (p % 64);
            }
        }
        self.filled += 1;
        true
    }

    /// Bytes of memory the bit arrays take.
    pub fn memory_bytes(&self) -> usize {
        (self.current.len() + self.previous.len()) * 8
    }

    /// Adds every view `other` remembers (same settings; otherwise nothing changes): a
    /// filter restored from the store meeting one rebuilt from the log, or two nodes' views.
    pub fn merge(&mut self, other: &SeenFilter) {
        if other.params != self.params || other.bits != self.bits {
            return;
        }
        for (a, b) in self.current.iter_mut().zip(&other.current) {
            *a |= b;
        }
        for (a, b) in self.previous.iter_mut().zip(&other.previous) {
            *a |= b;
        }
        self.filled = self.filled.max(other.filled);
    }

    /// The filter as compact, versioned bytes (to keep it in a store across restarts);
    /// [`SeenFilter::from_bytes`] reads them back under the same parameters. A generation
    /// with few bits set (most users: a few hundred views) is stored as the positions of its
    /// set bits, so a light user costs hundreds of bytes, not the full arrays.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.params.capacity.to_le_bytes());
        out.extend_from_slice(&self.params.false_positive_rate.to_bits().to_le_bytes());
        out.extend_from_slice(&self.filled.to_le_bytes());
        for words in [&self.current, &self.previous] {
            let set: u32 = words.iter().map(|w| w.count_ones()).sum();
            // A position costs at most 3 bytes as a varint delta (bits < 2^21 for any sane
            // capacity; larger ones simply pick the raw form), a word 8.
            if (set as usize) * 3 < words.len() * 8 {
                out.push(GEN_SPARSE);
                crate::codec::put_varint(&mut out, u64::from(set));
                let mut last = 0u64;
                for (i, w) in words.iter().enumerate() {
                    let mut w = *w;
                    while w != 0 {
                        let pos = (i as u64) * 64 + u64::from(w.trailing_zeros());
                        crate::codec::put_varint(&mut out, pos - last);
                        last = pos;
                        w &= w - 1;
                    }
                }
            } else {
                out.push(GEN_RAW);
                for w in words.iter() {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
        out
    }

    /// A filter from [`SeenFilter::to_bytes`]. Fails when the bytes are damaged, of another
    /// format, or written under other parameters (the bit positions would mean nothing): the
    /// caller then starts an empty filter, forgetting views being the safe failure.
    pub fn from_bytes(params: SeenParams, bytes: &[u8]) -> Result<SeenFilter, RecommendError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != FORMAT_V1 {
            return Err(RecommendError::BadState("unknown seen filter format"));
        }
        let capacity = r.u32()?;
        let rate = f64::from_bits(r.u64()?);
        if capacity != params.capacity || rate.to_bits() != params.false_positive_rate.to_bits() {
            return Err(RecommendError::BadState("seen filter written under other settings"));
        }
        let mut filter = SeenFilter::new(params);
        filter.filled = r.u32()?.min(params.capacity);
        let bits = u64::from(filter.bits);
        for words in [&mut filter.current, &mut filter.previous] {
            match r.u8()? {
                GEN_SPARSE => {
                    let set = r.varint()?;
                    if set > bits {
                        return Err(RecommendError::BadState("seen filter overfull"));
                    }
                    let mut pos = 0u64;
                    for n in 0..set {
                        let delta = r.varint()?;
                        // Positions strictly increase (the first may be 0).
                        if n > 0 && delta == 0 {
                            return Err(RecommendError::BadState(
                                "seen filter positions unordered",
                            ));
                        }
                        pos = pos
                            .checked_add(delta)
                            .filter(|p| *p < bits)
                            .ok_or(RecommendError::BadState("seen filter position out of range"))?;
                        if let Some(w) = words.get_mut((pos / 64) as usize) {
                            *w |= 1 << (pos % 64);
                        }
                    }
                }
                GEN_RAW => {
                    for w in words.iter_mut() {
                        *w = r.u64()?;
                    }
                }
                _ => return Err(RecommendError::BadState("unknown seen generation encoding")),
            }
        }
        r.finish()?;
        Ok(filter)
    }
}

const FORMAT_V1: u8 = 1;
const GEN_RAW: u8 = 0;
const GEN_SPARSE: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Against a model (the last `capacity` distinct insertions): no false negatives.
        #[test]
        fn never_forgets_a_recent_view(ids in proptest::collection::vec(0u64..5000, 1..3000)) {
            let params = SeenParams { capacity: 400, false_positive_rate: 0.01 };
            let mut filter = SeenFilter::new(params);
            let mut recent: Vec<u64> = Vec::new();
            for (step, id) in ids.into_iter().enumerate() {
                filter.insert(id);
                recent.retain(|r| *r != id);
                recent.push(id);
                if recent.len() > 400 {
                    recent.remove(0);
                }
                if step % 37 == 0 {
                    for r in &recent {
                        prop_assert!(filter.contains(*r), "forgot {}", r);
                    }
                }
            }
            for r in &recent {
                prop_assert!(filter.contains(*r), "forgot {}", r);
            }
        }
    }

    #[test]
    fn false_positive_rate_stays_under_the_bound() {
        for rate in [0.01, 0.05] {
            let params = SeenParams { capacity: 5000, false_positive_rate: rate };
            let mut filter = SeenFilter::new(params);
            // Both generations full: the worst case.
            for id in 0..10_000u64 {
                filter.insert(id * 7919);
            }
            let trials = 200_000u64;
            let false_hits =
                (0..trials).filter(|i| filter.contains(1_000_000_007 + i * 104_729)).count();
            let measured = false_hits as f64 / trials as f64;
            assert!(measured <= rate, "rate {rate}: measured {measured}");
        }
    }

    #[test]
    fn rotation_forgets_the_oldest_generation() {
        let params = SeenParams { capacity: 100, false_positive_rate: 0.001 };
        let mut filter = SeenFilter::new(params);
        for id in 0..300u64 {
            filter.insert(id);
        }
        // 0..100 were in the generation dropped at the second rotation.
        let remembered = (0..100u64).filter(|id| filter.contains(*id)).count();
        assert!(remembered < 5, "{remembered} of the oldest still reported");
        assert!((200..300u64).all(|id| filter.contains(id)));
    }

    /// Stored and read back: every inserted id is still there and the false-positive rate
    /// is what it was (the very same bits), for a light user (sparse form) and a heavy one
    /// (raw form, both generations full); damaged bytes and other settings are refused.
    #[test]
    fn bytes_round_trip_and_refuse_other_shapes() {
        let params = SeenParams::default();
        let probe = |f: &SeenFilter| {
            (0..50_000u64).filter(|i| f.contains(1_000_000_007 + i * 104_729)).count()
        };
        for (views, max_len) in [(0u64, 40), (40, 1_000), (7000, usize::MAX)] {
            let mut filter = SeenFilter::new(params);
            for id in 0..views {
                filter.insert(id * 7919 + 3);
            }
            let bytes = filter.to_bytes();
            assert!(bytes.len() <= max_len, "{views} views: {} bytes", bytes.len());
            let back = SeenFilter::from_bytes(params, &bytes);
            assert_eq!(back.as_ref(), Ok(&filter));
            let Ok(back) = back else { continue };
            assert!((0..views).all(|id| back.contains(id * 7919 + 3)));
            assert_eq!(probe(&back), probe(&filter));
        }
        let mut filter = SeenFilter::new(params);
        filter.insert(42);
        let bytes = filter.to_bytes();
        let other = SeenParams { capacity: 100, ..params };
        assert!(SeenFilter::from_bytes(other, &bytes).is_err());
        assert!(SeenFilter::from_bytes(params, &bytes[..10]).is_err());
        assert!(SeenFilter::from_bytes(params, &[]).is_err());
        let mut versioned = bytes.clone();
        versioned[0] = 2;
        assert!(SeenFilter::from_bytes(params, &versioned).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(SeenFilter::from_bytes(params, &trailing).is_err());
    }

    #[test]
    fn merge_keeps_both_sides_views() {
        let params = SeenParams { capacity: 100, false_positive_rate: 0.01 };
        let (mut a, mut b) = (SeenFilter::new(params), SeenFilter::new(params));
        assert!(a.insert(1));
        assert!(!a.insert(1), "a repeat changes nothing");
        b.insert(2);
        a.merge(&b);
        assert!(a.contains(1) && a.contains(2));
    }
}
