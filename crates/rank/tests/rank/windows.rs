//! Property tests: random view streams (minute, hour, day and month jumps, late views at and
//! around every window edge, ticks) against the brute-force oracle, for every window and for
//! K in {1, 5, 1000}, including snapshot round trips in the middle of a stream.

use proptest::prelude::*;
use quicktok_rank::{Ranker, Window};

use crate::oracle::{Oracle, TAGS, resolve, step};

fn assert_matches(ranker: &Ranker, oracle: &Oracle, ks: &[usize]) -> Result<(), TestCaseError> {
    prop_assert_eq!(ranker.as_of().watermark_ms, oracle.watermark);
    for w in Window::ALL {
        prop_assert_eq!(ranker.counts(w), oracle.sorted_counts(w), "counts of {}", w);
        for &k in ks {
            prop_assert_eq!(ranker.top(w, k), oracle.top(w, k), "top {} of {}", k, w);
        }
    }
    for tag in TAGS {
        for &k in ks {
            prop_assert_eq!(ranker.top_tag(tag, k), oracle.top_tag(tag, k), "tag {} k {}", tag, k);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The real configuration (cap 1000) with few videos, so ties are everywhere.
    #[test]
    fn windows_match_brute_force(steps in proptest::collection::vec(step(12), 1..160)) {
        let records = resolve(&steps);
        let mut ranker = Ranker::new();
        let mut oracle = Oracle::default();
        for (offset, r) in records.iter().enumerate() {
            prop_assert!(ranker.apply(offset as u64, r));
            oracle.apply(r);
            assert_matches(&ranker, &oracle, &[1, 5, 1000])?;
        }
        // Replaying an overlap is a no-op.
        prop_assert!(!ranker.apply(0, &records[0]));
        assert_matches(&ranker, &oracle, &[1, 5, 1000])?;
    }

    /// A tiny top-K cap with many videos, so the floor rises and refills constantly.
    #[test]
    fn small_cap_floors_stay_exact(steps in proptest::collection::vec(step(60), 1..200)) {
        let records = resolve(&steps);
        let mut ranker = Ranker::new().with_top_capacity(3);
        let mut oracle = Oracle::default();
        for (offset, r) in records.iter().enumerate() {
            ranker.apply(offset as u64, r);
            oracle.apply(r);
            assert_matches(&ranker, &oracle, &[1, 2, 3])?;
        }
    }

    /// Snapshot -> restore at random points changes nothing, now or later.
    #[test]
    fn snapshot_round_trip_mid_stream(
        steps in proptest::collection::vec(step(12), 1..120),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let records = resolve(&steps);
        let cut_at: Vec<usize> = cuts.iter().map(|c| c.index(records.len())).collect();
        let mut ranker = Ranker::new();
        let mut oracle = Oracle::default();
        for (offset, r) in records.iter().enumerate() {
            ranker.apply(offset as u64, r);
            oracle.apply(r);
            if cut_at.contains(&offset) {
                let bytes = ranker.to_snapshot();
                let restored = Ranker::from_snapshot(&bytes).unwrap();
                prop_assert_eq!(restored.as_of(), ranker.as_of());
                prop_assert_eq!(restored.tag_counts(), ranker.tag_counts());
                prop_assert_eq!(restored.footprint(), ranker.footprint());
                ranker = restored;
                assert_matches(&ranker, &oracle, &[1, 5, 1000])?;
            }
        }
        assert_matches(&ranker, &oracle, &[1, 5, 1000])?;
    }
}

/// Retention: after a month of silence nothing but `all` remains, and the minute aggregates
/// are gone.
#[test]
fn state_is_released_as_windows_pass() {
    use crate::oracle::{BASE, DAY, HOUR, MIN, MONTH};
    use quicktok_core::Id;
    use quicktok_rank::{QualifiedView, ViewRecord};
    let mut ranker = Ranker::new();
    let mut offset = 0u64;
    let mut apply = |ranker: &mut Ranker, r: ViewRecord| {
        ranker.apply(offset, &r);
        offset += 1;
    };
    let t0 = BASE / MIN * MIN;
    for i in 0..600i64 {
        let v = QualifiedView::new(Id(1 + (i % 50) as u64), ["cat"], t0 + i * 6_000);
        apply(&mut ranker, ViewRecord::View(v));
    }
    let f = ranker.footprint();
    assert_eq!(f.raw_views, 600);
    assert_eq!(f.minutes, 0);
    apply(&mut ranker, ViewRecord::Tick { at_ms: t0 + 2 * HOUR });
    let f = ranker.footprint();
    assert_eq!(f.raw_views, 0);
    assert_eq!(f.minutes, 60, "one aggregate per minute");
    assert_eq!(f.video_minutes, 600, "10 views/minute of distinct videos");
    assert_eq!(ranker.count(Window::Day, Id(1)), 12);
    apply(&mut ranker, ViewRecord::Tick { at_ms: t0 + 2 * DAY });
    let f = ranker.footprint();
    assert_eq!((f.tag_video_minutes, f.tags), (0, 0), "tag aggregates live one day");
    assert_eq!(f.minutes, 60);
    apply(&mut ranker, ViewRecord::Tick { at_ms: t0 + MONTH + DAY });
    let f = ranker.footprint();
    assert_eq!(f.minutes, 0);
    assert_eq!(f.videos, [0, 0, 0, 50]);
    assert_eq!(ranker.top(Window::All, 1), vec![(Id(1), 12)]);
}

/// More than 1000 videos with the real cap: the top-1000 list stays exact as the floor
/// moves up (growth) and down (the day window draining).
#[test]
fn thousands_of_videos_at_full_cap() {
    let records = crate::oracle::lcg_stream(7, 12_000, 4_000, 3 * crate::oracle::DAY);
    let mut ranker = Ranker::new();
    let mut oracle = Oracle::default();
    for (offset, r) in records.iter().enumerate() {
        ranker.apply(offset as u64, r);
        oracle.apply(r);
        if offset % 1500 == 1499 {
            for w in Window::ALL {
                assert_eq!(ranker.top(w, 1000), oracle.top(w, 1000), "{w} at {offset}");
            }
        }
    }
    for w in Window::ALL {
        assert_eq!(ranker.counts(w), oracle.sorted_counts(w));
    }
}
