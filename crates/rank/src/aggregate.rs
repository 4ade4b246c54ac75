//! Compact per-minute aggregates (what views become once they leave the `1h` window) and the
//! tag interner.
//!
//! A minute's aggregate is `video -> count` (for the `1d` and `30d` trailing edges) and
//! `(tag, video) -> count` (for the per-tag `1d` lists; dropped when the minute leaves the
//! `1d` window). While views are still being folded into a minute it is a hash map; once
//! every view of the minute has left the raw buffer it is *sealed* into two sorted parallel
//! arrays: 12 bytes per (video, minute) instead of about 20 in a hash map. Late views for a
//! sealed minute are inserted in place (binary search), which is rare and stays correct.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Arc;

use quicktok_core::Id;

use crate::topk::IdBuild;

/// Counts per key, open (hash map) or sealed (sorted arrays).
#[derive(Debug, Clone)]
pub(crate) enum Counter<K, S> {
    Open(HashMap<K, u32, S>),
    Sealed { keys: Vec<K>, counts: Vec<u32> },
}

impl<K, S> Default for Counter<K, S> {
    fn default() -> Self {
        Counter::Sealed { keys: Vec::new(), counts: Vec::new() }
    }
}

impl<K: Ord + Hash + Clone, S: BuildHasher + Default> Counter<K, S> {
    pub(crate) fn open() -> Self {
        Counter::Open(HashMap::default())
    }

    /// Adds `n` to `key`. Per-minute counts of one video on one shard cannot approach
    /// `u32::MAX` (that is 71 million views per second); saturating keeps it panic-free.
    pub(crate) fn add(&mut self, key: K, n: u32) {
        match self {
            Counter::Open(map) => {
                let c = map.entry(key).or_insert(0);
                *c = c.saturating_add(n);
            }
            Counter::Sealed { keys, counts } => match keys.binary_search(&key) {
                Ok(i) => counts[i] = counts[i].saturating_add(n),
                Err(i) => {
                    keys.insert(i, key);
                    counts.insert(i, n);
                }
            },
        }
    }

    /// Freezes into sorted arrays.
    pub(crate) fn seal(&mut self) {
        if let Counter::Open(map) = self {
            let mut entries: Vec<(K, u32)> = map.drain().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let (keys, counts) = entries.into_iter().unzip();
            *self = Counter::Sealed { keys, counts };
        }
    }

    /// Back to a hash map (a restored minute that still receives views from the raw buffer).
    pub(crate) fn reopen(&mut self) {
        if let Counter::Sealed { keys, counts } = self {
            let map = std::mem::take(keys).into_iter().zip(std::mem::take(counts)).collect();
            *self = Counter::Open(map);
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Counter::Open(map) => map.len(),
            Counter::Sealed { keys, .. } => keys.len(),
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, u32)) {
        match self {
            Counter::Open(map) => map.iter().for_each(|(k, &c)| f(k, c)),
            Counter::Sealed { keys, counts } => keys.iter().zip(counts).for_each(|(k, &c)| f(k, c)),
        }
    }
}

/// One minute's aggregates.
#[derive(Debug, Clone, Default)]
pub(crate) struct MinuteAgg {
    pub videos: Counter<Id, IdBuild>,
    /// Empty once the minute has left the `1d` window.
    pub tags: Counter<(Arc<str>, Id), RandomState>,
}

impl MinuteAgg {
    pub(crate) fn new(open: bool) -> Self {
        if open {
            MinuteAgg { videos: Counter::open(), tags: Counter::open() }
        } else {
            MinuteAgg::default()
        }
    }

    pub(crate) fn seal(&mut self) {
        self.videos.seal();
        self.tags.seal();
    }

    pub(crate) fn reopen(&mut self) {
        self.videos.reopen();
        self.tags.reopen();
    }
}

/// A view's interned tag set; `None` for no tags. Shared by every raw view with the same
/// tags, so a raw view costs a pointer, not a copy of its tags.
pub(crate) type TagSet = Option<Arc<[Arc<str>]>>;

/// Deduplicates tag strings and tag sets. Entries nobody else references are pruned
/// whenever the interner has doubled since the last prune, so it tracks live tags.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    tags: HashSet<Arc<str>>,
    sets: HashSet<Arc<[Arc<str>]>>,
    prune_at: usize,
}

impl Interner {
    pub(crate) fn tag(&mut self, tag: &str) -> Arc<str> {
        if let Some(t) = self.tags.get(tag) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(tag);
        self.tags.insert(Arc::clone(&t));
        t
    }

    /// The interned set of `tags` (sorted, duplicates removed).
    pub(crate) fn set<T: AsRef<str>>(&mut self, tags: &[T]) -> TagSet {
        if tags.is_empty() {
            return None;
        }
        let mut list: Vec<Arc<str>> = tags.iter().map(|t| self.tag(t.as_ref())).collect();
        list.sort_unstable();
        list.dedup();
        if let Some(s) = self.sets.get(list.as_slice()) {
            return Some(Arc::clone(s));
        }
        let s: Arc<[Arc<str>]> = Arc::from(list);
        self.sets.insert(Arc::clone(&s));
        self.maybe_prune();
        Some(s)
    }

    fn maybe_prune(&mut self) {
        let size = self.tags.len() + self.sets.len();
        if size >= self.prune_at.max(1024) {
            self.prune();
        }
    }

    fn prune(&mut self) {
        // Sets first: dropping a set releases its tags.
        self.sets.retain(|s| Arc::strong_count(s) > 1);
        self.tags.retain(|t| Arc::strong_count(t) > 1);
        self.prune_at = 2 * (self.tags.len() + self.sets.len());
    }

    #[cfg(test)]
    pub(crate) fn force_prune(&mut self) {
        self.prune();
    }

    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.tags.len(), self.sets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_open_and_sealed_agree() {
        let mut a: Counter<Id, IdBuild> = Counter::open();
        let mut b: Counter<Id, IdBuild> = Counter::default();
        for i in [5u64, 3, 5, 9, 1, 3, 3] {
            a.add(Id(i), 1);
            b.add(Id(i), 1);
        }
        a.seal();
        let collect = |c: &Counter<Id, IdBuild>| {
            let mut v = Vec::new();
            c.for_each(|k, n| v.push((*k, n)));
            v.sort();
            v
        };
        assert_eq!(collect(&a), collect(&b));
        assert_eq!(collect(&a), vec![(Id(1), 1), (Id(3), 3), (Id(5), 2), (Id(9), 1)]);
        a.reopen();
        a.add(Id(9), 2);
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn interner_shares_and_prunes() {
        let mut i = Interner::default();
        let a = i.set(&["x", "y", "x"]);
        let b = i.set(&["y", "x"]);
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
        assert_eq!(a.as_ref().unwrap().len(), 2);
        drop((a, b));
        i.force_prune();
        assert_eq!(i.sizes(), (0, 0));
    }
}
