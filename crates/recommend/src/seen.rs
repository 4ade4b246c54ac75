//! The per-user "already seen" filter: two generations of Bloom filters over video ids, so
//! memory per user is fixed, the false-positive rate is bounded, and the oldest views are
//! forgotten once a generation fills (a clip seen thousands of views ago may come back).
//!
//! Hashing is splitmix64 over the id (double hashing for the k probes): the same on every
//! node and across restarts, so a filter can be stored and loaded as bytes.

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

    /// Records a view of `id`.
    pub fn insert(&mut self, id: u64) {
        if Self::test(&self.current, self.positions(id)) {
            return;
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
    }

    /// Bytes of memory the bit arrays take.
    pub fn memory_bytes(&self) -> usize {
        (self.current.len() + self.previous.len()) * 8
    }

    /// The filter as bytes (to keep it in a shared store); [`SeenFilter::from_bytes`] reads
    /// it back when its parameters are the same.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.memory_bytes());
        out.extend_from_slice(&self.filled.to_le_bytes());
        for w in self.current.iter().chain(&self.previous) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// A filter from [`SeenFilter::to_bytes`]; `None` when the bytes do not fit `params`
    /// (the caller starts an empty filter: forgetting views is the safe failure).
    pub fn from_bytes(params: SeenParams, bytes: &[u8]) -> Option<SeenFilter> {
        let mut filter = SeenFilter::new(params);
        let words = filter.current.len();
        if bytes.len() != 4 + words * 16 {
            return None;
        }
        let (head, body) = bytes.split_at(4);
        filter.filled = u32::from_le_bytes(head.try_into().ok()?);
        for (i, chunk) in body.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            if i < words {
                filter.current[i] = w;
            } else {
                filter.previous[i - words] = w;
            }
        }
        Some(filter)
    }
}

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

    #[test]
    fn bytes_round_trip_and_refuse_other_shapes() {
        let params = SeenParams::default();
        let mut filter = SeenFilter::new(params);
        for id in 0..7000u64 {
            filter.insert(id);
        }
        let bytes = filter.to_bytes();
        assert_eq!(SeenFilter::from_bytes(params, &bytes), Some(filter));
        let other = SeenParams { capacity: 100, ..params };
        assert_eq!(SeenFilter::from_bytes(other, &bytes), None);
        assert_eq!(SeenFilter::from_bytes(params, &bytes[..10]), None);
    }
}
