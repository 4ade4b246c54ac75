//! [`TopK`]: exact top-K under increments *and* decrements, plus the exact merge of per-shard
//! lists ([`merge_top`]).
//!
//! # Order
//!
//! Higher count first; equal counts by smaller video id first (ids are time-ordered, so the
//! older video wins a tie). Every list this crate returns uses this order, and the
//! brute-force oracles in the tests use it too.
//!
//! # How it stays exact and cheap
//!
//! A map `id -> count` holds every non-zero count. An ordered set of `(count desc, id)` holds
//! exactly the entries whose count is at least a *floor*. Invariant: the set holds at least
//! `cap` entries, or the floor is 1 (the set holds everything). Because every entry outside
//! the set has a count below the floor, and every entry in it has one at or above, the first
//! `k <= cap` entries of the set are the exact top k, ties included.
//!
//! - The floor rises when the set grows past `4 cap` (to the count of the `2 cap`-th entry),
//!   so most increments (the long tail of rarely watched videos) touch only the map.
//! - When decrements leave fewer than `cap` entries above the floor, the floor is lowered by
//!   one scan of the map to the count that puts about `2 cap` entries back in the set. The
//!   hysteresis band `[cap, 4 cap]` keeps raises and refills rare: a refill needs `cap`
//!   entries to fall below the floor first.
//!
//! Cost: increment/decrement O(1) map work, plus O(log cap) when the entry is above the
//! floor; query O(k); memory about 24 bytes per non-zero count in the map plus about 40 per
//! set entry (at most ~`4 cap` of them).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use quicktok_core::Id;

/// The largest K the rankers answer; larger requests are clamped to it.
pub const MAX_K: usize = 1000;

/// The splitmix64 finaliser: spreads Snowflake ids (whose low bits are a node and a
/// sequence) over all 64 bits. Deterministic across processes, unlike `RandomState`, which
/// shard routing relies on.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A fast hasher for maps keyed by [`Id`]. Ids are made by the server, not chosen by
/// clients, so SipHash's flood resistance is not needed on the 700k/s path.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuild = BuildHasherDefault<IdHasher>;
/// A map keyed by id with the fast hasher.
pub type IdMap<V> = HashMap<Id, V, IdBuild>;

/// Exact top-K counter (see the module docs).
#[derive(Debug, Clone)]
pub struct TopK {
    counts: IdMap<u64>,
    top: BTreeSet<(Reverse<u64>, Id)>,
    floor: u64,
    cap: usize,
    raise_at: usize,
}

impl Default for TopK {
    fn default() -> Self {
        TopK::new(MAX_K)
    }
}

impl TopK {
    /// An empty counter answering exactly for every `k <= cap`.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        TopK { counts: IdMap::default(), top: BTreeSet::new(), floor: 1, cap, raise_at: 4 * cap }
    }

    /// Builds a counter from `(id, count)` pairs (counts of a repeated id add up) in one
    /// pass: the ordered set is filled once instead of churning through every insert.
    pub fn from_counts(cap: usize, counts: impl IntoIterator<Item = (Id, u64)>) -> Self {
        let mut t = TopK::new(cap);
        for (id, c) in counts {
            if c > 0 {
                *t.counts.entry(id).or_insert(0) += c;
            }
        }
        if !t.counts.is_empty() {
            // Nothing is above an infinite floor; refill picks the real one.
            t.floor = u64::MAX;
            t.refill();
        }
        t
    }

    /// The largest k answered exactly.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The count of `id` (0 when absent).
    pub fn get(&self, id: Id) -> u64 {
        self.counts.get(&id).copied().unwrap_or(0)
    }

    /// Ids with a non-zero count.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether every count is zero.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Every non-zero count, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Id, u64)> + '_ {
        self.counts.iter().map(|(&id, &c)| (id, c))
    }

    /// Adds `delta` to `id`.
    pub fn add(&mut self, id: Id, delta: u64) {
        if delta == 0 {
            return;
        }
        let entry = self.counts.entry(id).or_insert(0);
        let old = *entry;
        let new = old.saturating_add(delta);
        *entry = new;
        if old >= self.floor {
            self.top.remove(&(Reverse(old), id));
        }
        if new >= self.floor {
            self.top.insert((Reverse(new), id));
            if self.top.len() > self.raise_at {
                self.raise();
            }
        }
    }

    /// Subtracts `delta` from `id` (stopping at zero, which removes the entry).
    pub fn sub(&mut self, id: Id, delta: u64) {
        if delta == 0 {
            return;
        }
        let Some(entry) = self.counts.get_mut(&id) else {
            debug_assert!(false, "decrement of absent {id:?}");
            return;
        };
        let old = *entry;
        debug_assert!(old >= delta, "decrement of {id:?} below zero");
        let new = old.saturating_sub(delta);
        if new == 0 {
            self.counts.remove(&id);
        } else {
            *entry = new;
        }
        if old >= self.floor {
            self.top.remove(&(Reverse(old), id));
            if new >= self.floor && new > 0 {
                self.top.insert((Reverse(new), id));
            }
            if self.top.len() < self.cap && self.floor > 1 {
                self.refill();
            }
        }
    }

    /// The top `k` (clamped to `cap`) as `(id, count)`, in the crate's order.
    pub fn top(&self, k: usize) -> Vec<(Id, u64)> {
        self.top.iter().take(k.min(self.cap)).map(|&(Reverse(c), id)| (id, c)).collect()
    }

    /// Raises the floor to the count of the `2 cap`-th entry and drops what falls below.
    fn raise(&mut self) {
        let target = 2 * self.cap;
        if let Some(&(Reverse(c), _)) = self.top.iter().nth(target - 1)
            && c > self.floor
        {
            self.floor = c;
            while let Some(&(Reverse(last), _)) = self.top.last() {
                if last >= self.floor {
                    break;
                }
                self.top.pop_last();
            }
        }
        // With many ties at the floor the set cannot shrink; wait until it doubles before
        // trying again so a plateau of equal counts does not cost a scan per increment.
        self.raise_at = (4 * self.cap).max(2 * self.top.len());
    }

    /// Lowers the floor so about `2 cap` entries are in the set again (or all of them).
    fn refill(&mut self) {
        let need = 2 * self.cap - self.top.len();
        // The `need` largest counts below the floor, smallest on top.
        let mut best: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(need + 1);
        for &c in self.counts.values() {
            if c < self.floor {
                if best.len() < need {
                    best.push(Reverse(c));
                } else if best.peek().is_some_and(|&Reverse(min)| c > min) {
                    best.pop();
                    best.push(Reverse(c));
                }
            }
        }
        let new_floor = match best.peek() {
            Some(&Reverse(min)) if best.len() == need => min.max(1),
            _ => 1,
        };
        for (&id, &c) in &self.counts {
            if c >= new_floor && c < self.floor {
                self.top.insert((Reverse(c), id));
            }
        }
        self.floor = new_floor;
        self.raise_at = (4 * self.cap).max(2 * self.top.len());
    }

    /// Checks the invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        assert!(self.top.len() >= self.cap || self.floor == 1, "too few above the floor");
        for (&id, &c) in &self.counts {
            assert!(c > 0);
            assert_eq!(self.top.contains(&(Reverse(c), id)), c >= self.floor);
        }
        assert!(self.top.iter().all(|&(Reverse(c), id)| self.counts.get(&id) == Some(&c)));
    }
}

/// Merges lists that are each in the crate's order and hold disjoint ids (one per shard)
/// into the exact top `k` of their union: every video lives on exactly one shard, so the
/// global top k is among the union of the shards' top k.
pub fn merge_top<L: AsRef<[(Id, u64)]>>(lists: &[L], k: usize) -> Vec<(Id, u64)> {
    // Min-heap of each list's next entry: (order key, list index, position in the list).
    type Cursor = Reverse<(Reverse<u64>, Id, usize, usize)>;
    let mut heap: BinaryHeap<Cursor> = lists
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.as_ref().first().map(|&(id, c)| Reverse((Reverse(c), id, i, 0))))
        .collect();
    let mut out = Vec::with_capacity(k.min(lists.iter().map(|l| l.as_ref().len()).sum()));
    while out.len() < k {
        let Some(Reverse((Reverse(c), id, list, pos))) = heap.pop() else { break };
        out.push((id, c));
        if let Some(&(next_id, next_c)) = lists[list].as_ref().get(pos + 1) {
            heap.push(Reverse((Reverse(next_c), next_id, list, pos + 1)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(counts: &HashMap<Id, u64>, k: usize) -> Vec<(Id, u64)> {
        let mut v: Vec<(Id, u64)> =
            counts.iter().filter(|(_, c)| **c > 0).map(|(&i, &c)| (i, c)).collect();
        v.sort_by_key(|&(id, c)| (Reverse(c), id));
        v.truncate(k);
        v
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u64, u64),
        Sub(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..40, 1u64..4).prop_map(|(i, d)| Op::Add(i, d)),
            2 => (0u64..40, 1u64..4).prop_map(|(i, d)| Op::Sub(i, d)),
        ]
    }

    proptest! {
        #[test]
        fn exact_under_increments_and_decrements(
            cap in 1usize..6,
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let mut t = TopK::new(cap);
            let mut model: HashMap<Id, u64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Add(i, d) => {
                        t.add(Id(i), d);
                        *model.entry(Id(i)).or_default() += d;
                    }
                    Op::Sub(i, d) => {
                        let have = model.get(&Id(i)).copied().unwrap_or(0);
                        let d = d.min(have);
                        if d > 0 {
                            t.sub(Id(i), d);
                            *model.entry(Id(i)).or_default() -= d;
                        }
                    }
                }
                t.check();
                for k in [1, cap.div_ceil(2), cap] {
                    prop_assert_eq!(t.top(k), brute(&model, k));
                }
                prop_assert_eq!(t.len(), model.values().filter(|c| **c > 0).count());
            }
        }

        #[test]
        fn merge_equals_global_sort(
            counts in proptest::collection::hash_map(0u64..200, 1u64..20, 0..100),
            shards in 1usize..5,
            k in 1usize..30,
        ) {
            let model: HashMap<Id, u64> = counts.into_iter().map(|(i, c)| (Id(i), c)).collect();
            let mut lists = vec![Vec::new(); shards];
            for (&id, &c) in &model {
                lists[(mix64(id.0) % shards as u64) as usize].push((id, c));
            }
            let lists: Vec<Vec<(Id, u64)>> = lists
                .into_iter()
                .map(|l| brute(&l.into_iter().collect(), k))
                .collect();
            prop_assert_eq!(merge_top(&lists, k), brute(&model, k));
        }
    }

    #[test]
    fn floor_rises_and_refills_at_full_size() {
        let mut t = TopK::new(MAX_K);
        let mut model = HashMap::new();
        // 6000 ids with distinct-ish counts push the floor up...
        for i in 0..6000u64 {
            let c = 1 + (i * 7919) % 997;
            t.add(Id(i), c);
            model.insert(Id(i), c);
        }
        t.check();
        assert!(t.floor > 1);
        assert!(t.top.len() < 4 * MAX_K + 1);
        assert_eq!(t.top(MAX_K), brute(&model, MAX_K));
        // ...and draining the leaders forces refills.
        for (id, c) in brute(&model, 3000) {
            t.sub(id, c);
            model.remove(&id);
            t.check();
        }
        assert_eq!(t.top(MAX_K), brute(&model, MAX_K));
        assert_eq!(t.top(5000).len(), MAX_K, "k is clamped to the cap");
    }

    #[test]
    fn bulk_build_equals_incremental() {
        for n in [0u64, 3, 50, 5000] {
            let pairs: Vec<(Id, u64)> = (0..n).map(|i| (Id(i % 4000), 1 + i % 13)).collect();
            let bulk = TopK::from_counts(7, pairs.iter().copied());
            let mut inc = TopK::new(7);
            let mut model = HashMap::new();
            for &(id, c) in &pairs {
                inc.add(id, c);
                *model.entry(id).or_insert(0) += c;
            }
            bulk.check();
            assert_eq!(bulk.top(7), inc.top(7));
            assert_eq!(bulk.top(7), brute(&model, 7));
            assert_eq!(bulk.len(), inc.len());
        }
    }

    #[test]
    fn plateau_of_ties_does_not_thrash() {
        let mut t = TopK::new(10);
        for i in 0..10_000u64 {
            t.add(Id(i), 1);
        }
        t.check();
        assert_eq!(t.top(3), vec![(Id(0), 1), (Id(1), 1), (Id(2), 1)]);
        // Everything ties at the floor, so the set cannot shrink; raises back off.
        assert_eq!(t.floor, 1);
        assert!(t.top.len() <= t.raise_at);
    }
}
