//! The following feed's pure core (F6.5): the opaque cursor and the k-way merge of the
//! pushed inbox with the pulled outboxes of celebrities, newest first by (`at_ms`, video id),
//! without duplicates, one page at a time. No IO: the API reads the sources and the
//! metadata store filters them (visibility, blocks, follows).
//!
//! Paging is exact when every source holds, newest first, the entries strictly after the
//! page's cursor and at least `limit + 1` of them (or all it has): the page's entries are
//! then the newest `limit` distinct entries of the whole union, and the next cursor is given
//! exactly when more exist. A video present in several sources must carry the same key in
//! each (both sources use the video's publication time), so it lands on one page only.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quicktok_core::Id;

/// One feed entry: a video, its author and its place in the feed (newest first by
/// `(at_ms, video_id)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedEntry {
    pub at_ms: i64,
    pub video_id: Id,
    pub author_id: Id,
}

impl FeedEntry {
    /// The feed order's key: larger is newer.
    pub fn key(&self) -> (i64, Id) {
        (self.at_ms, self.video_id)
    }

    /// The cursor that continues after this entry.
    pub fn cursor(&self) -> FeedCursor {
        FeedCursor { at_ms: self.at_ms, video_id: self.video_id }
    }
}

/// A position in the feed: the next page holds entries strictly older than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedCursor {
    pub at_ms: i64,
    pub video_id: Id,
}

/// A cursor string that is not one this module wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad feed cursor")]
pub struct BadCursor;

impl FeedCursor {
    /// The opaque form: URL-safe base64 of a version byte, the time and the id (big endian).
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 17];
        bytes[0] = 1;
        bytes[1..9].copy_from_slice(&self.at_ms.to_be_bytes());
        bytes[9..].copy_from_slice(&self.video_id.0.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses [`FeedCursor::encode`]'s output; anything else is [`BadCursor`].
    pub fn decode(s: &str) -> Result<FeedCursor, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        let bytes: [u8; 17] = bytes.try_into().map_err(|_| BadCursor)?;
        if bytes[0] != 1 {
            return Err(BadCursor);
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[1..9]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[9..]);
        Ok(FeedCursor { at_ms: i64::from_be_bytes(at), video_id: Id(u64::from_be_bytes(id)) })
    }
}

/// One page of the merged feed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedPage {
    pub items: Vec<FeedEntry>,
    /// Where the next page starts; `None` when nothing follows.
    pub next: Option<FeedCursor>,
}

/// Merges `sources` (each newest first, see the module docs) into the newest `limit` distinct
/// videos and the cursor after them when more exist. Sources out of order are tolerated
/// (each is sorted first), duplicates within and across sources are dropped.
/// Sources are borrowed (a cached outbox head is merged where it lies); only one out of
/// order is copied to be sorted.
pub fn merge_page<S: AsRef<[FeedEntry]>>(sources: &[S], limit: usize) -> FeedPage {
    let sources: Vec<Cow<'_, [FeedEntry]>> = sources
        .iter()
        .map(|source| {
            let source = source.as_ref();
            if source.windows(2).all(|w| w[0].key() >= w[1].key()) {
                Cow::Borrowed(source)
            } else {
                let mut sorted = source.to_vec();
                sorted.sort_unstable_by_key(|e| Reverse(e.key()));
                Cow::Owned(sorted)
            }
        })
        .collect();
    // Max-heap of each source's head: (key, source, index in source).
    let mut heap: BinaryHeap<((i64, Id), usize, usize)> = sources
        .iter()
        .enumerate()
        .filter_map(|(s, source)| source.first().map(|e| (e.key(), s, 0)))
        .collect();
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(limit.min(1024));
    let mut more = false;
    while let Some((_, s, i)) = heap.pop() {
        let entry = sources[s][i];
        if let Some(next) = sources[s].get(i + 1) {
            heap.push((next.key(), s, i + 1));
        }
        if !seen.insert(entry.video_id) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(entry);
    }
    let next = if more { items.last().map(FeedEntry::cursor) } else { None };
    FeedPage { items, next }
}

/// Whether the fan-out should trim `user`'s inbox after pushing `video` to it: a fixed
/// pseudo-random one in `every` pushes, so inboxes are trimmed now and then rather than on
/// every insert, with no state to keep (an inbox overshoots its bound by about `every` rows).
pub fn should_trim(user: Id, video: Id, every: u32) -> bool {
    if every <= 1 {
        return true;
    }
    // SplitMix64's finaliser: well-mixed bits from the two ids.
    let mut z = user.0 ^ video.0.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.is_multiple_of(u64::from(every))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn entry(at_ms: i64, video: u64) -> FeedEntry {
        FeedEntry { at_ms, video_id: Id(video), author_id: Id(video % 7) }
    }

    #[test]
    fn cursor_round_trips_and_refuses_junk() {
        for c in [
            FeedCursor { at_ms: 0, video_id: Id(0) },
            FeedCursor { at_ms: -5, video_id: Id(u64::MAX) },
            FeedCursor { at_ms: i64::MAX, video_id: Id(1_234_567_890_123) },
        ] {
            let s = c.encode();
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(FeedCursor::decode(&s), Ok(c));
        }
        let good = FeedCursor { at_ms: 7, video_id: Id(9) }.encode();
        for bad in ["", "x", "!!!!", "12345", &good[..good.len() - 1], &format!("{good}AA")] {
            assert_eq!(FeedCursor::decode(bad), Err(BadCursor), "{bad:?}");
        }
        // Another version byte.
        let mut raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
        raw[0] = 2;
        assert_eq!(FeedCursor::decode(&URL_SAFE_NO_PAD.encode(raw)), Err(BadCursor));
    }

    #[test]
    fn merge_interleaves_dedups_and_says_when_more_exist() {
        let inbox = vec![entry(9, 90), entry(5, 50), entry(1, 10)];
        let star = vec![entry(8, 80), entry(5, 50), entry(2, 20)];
        let page = merge_page(&[inbox.clone(), star.clone()], 3);
        assert_eq!(page.items, [entry(9, 90), entry(8, 80), entry(5, 50)]);
        assert_eq!(page.next, Some(entry(5, 50).cursor()));
        let all = merge_page(&[inbox, star], 10);
        assert_eq!(all.items.len(), 5);
        assert_eq!(all.next, None);
        assert_eq!(merge_page::<Vec<FeedEntry>>(&[], 5), FeedPage::default());
        assert_eq!(merge_page(&[vec![entry(1, 1)]], 0).next, None);
    }

    #[test]
    fn trimming_is_occasional_and_deterministic() {
        let hits = (0..10_000u64).filter(|&v| should_trim(Id(42), Id(v), 32)).count();
        assert!((200..=430).contains(&hits), "{hits}");
        assert_eq!(should_trim(Id(1), Id(2), 32), should_trim(Id(1), Id(2), 32));
        assert!(should_trim(Id(1), Id(2), 1));
        assert!(should_trim(Id(1), Id(2), 0));
    }

    /// Videos (id -> time) and sources that each hold some of them.
    fn world() -> impl Strategy<Value = (BTreeMap<u64, i64>, Vec<Vec<u64>>)> {
        prop::collection::btree_map(0u64..200, 0i64..40, 0..80).prop_flat_map(|videos| {
            let ids: Vec<u64> = videos.keys().copied().collect();
            let source = prop::sample::subsequence(ids.clone(), 0..=ids.len());
            (Just(videos), prop::collection::vec(source, 0..6))
        })
    }

    proptest! {
        /// Paging through the merge with arbitrary page sizes, each source read the way the
        /// API reads it (strictly after the cursor, `limit + 1` entries), yields the sorted,
        /// deduplicated union: no duplicates, no gaps, and a cursor exactly when more exist.
        #[test]
        fn paged_merge_is_the_sorted_dedup_union(
            (videos, sources) in world(),
            sizes in prop::collection::vec(1usize..7, 1..10),
        ) {
            let e = |id: u64| entry(videos[&id], id);
            let sources: Vec<Vec<FeedEntry>> = sources
                .iter()
                .map(|s| {
                    let mut v: Vec<FeedEntry> = s.iter().map(|&id| e(id)).collect();
                    v.sort_by_key(|x| Reverse(x.key()));
                    v
                })
                .collect();
            let mut model: Vec<FeedEntry> =
                sources.iter().flatten().copied().collect::<HashSet<_>>().into_iter().collect();
            model.sort_by_key(|x| Reverse(x.key()));

            let mut got = Vec::new();
            let mut cursor: Option<FeedCursor> = None;
            for page_no in 0.. {
                let limit = sizes[page_no % sizes.len()];
                // Through the opaque form, as a client would send it back.
                let after = cursor.map(|c| FeedCursor::decode(&c.encode()).unwrap());
                let fetched: Vec<Vec<FeedEntry>> = sources
                    .iter()
                    .map(|s| {
                        s.iter()
                            .filter(|x| after.is_none_or(|c| x.key() < (c.at_ms, c.video_id)))
                            .take(limit + 1)
                            .copied()
                            .collect()
                    })
                    .collect();
                let page = merge_page(&fetched, limit);
                prop_assert!(page.items.len() <= limit);
                got.extend(page.items.iter().copied());
                match page.next {
                    Some(next) => {
                        prop_assert_eq!(page.items.len(), limit);
                        prop_assert_eq!(Some(next), page.items.last().map(FeedEntry::cursor));
                        cursor = Some(next);
                    }
                    None => break,
                }
                prop_assert!(page_no < 200, "paging does not end");
            }
            prop_assert_eq!(got, model);
        }
    }
}
