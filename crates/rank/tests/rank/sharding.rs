//! Sharding: N shards fed one stream, in batches of random size, answer exactly what one
//! ranker (and the oracle) answers.

use proptest::prelude::*;
use quicktok_rank::{Ranker, ShardedRanker, Window};

use crate::oracle::{Oracle, TAGS, resolve, step};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merged_shards_equal_one_ranker(
        steps in proptest::collection::vec(step(40), 1..200),
        shards in 1u32..6,
        batch in 1usize..20,
    ) {
        let records = resolve(&steps);
        let mut single = Ranker::new();
        let mut batched_single = Ranker::new();
        let mut sharded = ShardedRanker::new(shards);
        // The batch path, on parallel threads for every batch.
        let mut parallel = ShardedRanker::new(shards);
        parallel.set_parallel_threshold(1);
        let mut oracle = Oracle::default();
        for (chunk_no, chunk) in records.chunks(batch).enumerate() {
            let base = (chunk_no * batch) as u64;
            for (i, r) in chunk.iter().enumerate() {
                let offset = base + i as u64;
                single.apply(offset, r);
                sharded.apply(offset, r);
                oracle.apply(r);
            }
            sharded.finish_batch();
            let batch_iter = || chunk.iter().enumerate().map(|(i, r)| (base + i as u64, r));
            prop_assert_eq!(parallel.apply_batch(batch_iter()), chunk.len());
            prop_assert_eq!(batched_single.apply_batch(batch_iter()), chunk.len());
            // Re-applying a batch changes nothing.
            prop_assert_eq!(parallel.apply_batch(batch_iter()), 0);
            prop_assert_eq!(sharded.as_of(), single.as_of());
            prop_assert_eq!(parallel.as_of(), single.as_of());
            prop_assert_eq!(batched_single.as_of(), single.as_of());
            for w in Window::ALL {
                prop_assert_eq!(parallel.top(w, 1000), single.top(w, 1000));
                prop_assert_eq!(batched_single.counts(w), single.counts(w));
            }
            for w in Window::ALL {
                for k in [1, 5, 1000] {
                    let merged = sharded.top(w, k);
                    prop_assert_eq!(&merged, &single.top(w, k), "{} k={}", w, k);
                    prop_assert_eq!(&merged, &oracle.top(w, k));
                }
            }
            for tag in TAGS {
                prop_assert_eq!(sharded.top_tag(tag, 1000), single.top_tag(tag, 1000));
                prop_assert_eq!(parallel.top_tag(tag, 1000), single.top_tag(tag, 1000));
                prop_assert_eq!(batched_single.top_tag(tag, 1000), single.top_tag(tag, 1000));
            }
        }
        // Each video lives on exactly one shard.
        for r in sharded.shards() {
            for (id, _) in r.counts(Window::All) {
                prop_assert!(r.owns(id));
            }
        }
    }
}

/// A small cap on every shard: the merge of per-shard top-k lists is still the global top-k.
#[test]
fn merge_is_exact_with_small_shard_caps() {
    let records = crate::oracle::lcg_stream(3, 5_000, 300, 2 * crate::oracle::DAY);
    let mut sharded = ShardedRanker::with_top_capacity(4, 5);
    let mut single = Ranker::new();
    for (offset, r) in records.iter().enumerate() {
        sharded.apply(offset as u64, r);
        single.apply(offset as u64, r);
    }
    sharded.finish_batch();
    for w in Window::ALL {
        assert_eq!(sharded.top(w, 5), single.top(w, 5), "{w}");
    }
}
