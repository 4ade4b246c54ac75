//! The following feed's read side (F6.5), shared by `GET /api/v1/feed/following` and the
//! benchmark: one page merged from the user's pushed inbox and the outboxes of the
//! celebrities they follow, and the rebuild by pull of a returning inactive user's inbox.
//! The merge itself is `quicktok_social::feed` (pure); the filtering (visibility, blocks,
//! follows) is in the metadata store's queries.
//!
//! A read costs two queries whatever the reader follows: their follows and blocks (one range
//! of the follows key), then one page of their inbox (one covering index). Follows and blocks
//! are checked in memory against that, not per row in the store. Celebrities are read by
//! every one of their followers, so the list of who is a celebrity is cached in process for
//! `social.feed.celebrity_cache_ms`, and the head of each celebrity's outbox for
//! `social.feed.outbox_cache_ms`: a new video of theirs shows up to that much later, and a
//! removed one is dropped by the handler's final status check.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use quicktok_core::Id;
use quicktok_meta::{FeedItem, InboxRow, MetaError, MetaStore};
use quicktok_social::{FeedConfig, FeedCursor, FeedEntry, FeedPage, merge_page};

fn entries(items: Vec<FeedItem>) -> Vec<FeedEntry> {
    items
        .into_iter()
        .map(|i| FeedEntry { at_ms: i.at_ms, video_id: i.video_id, author_id: i.author_id })
        .collect()
}

/// Users remembered as fresh before that map starts over.
const CACHED_USERS: usize = 200_000;
/// Celebrities cached before the cache starts over.
const CACHED_CREATORS: usize = 10_000;

/// When a head was read, and its entries (newest first).
type CachedHead = (i64, Arc<Vec<FeedEntry>>);

/// What a node's feed readers share: who the celebrities are, the newest entries of their
/// outboxes, and when each user was last found with a complete inbox.
#[derive(Debug, Default)]
pub struct FeedCache {
    celebrities: Mutex<Option<(i64, Arc<HashSet<Id>>)>>,
    heads: Mutex<HashMap<Id, CachedHead>>,
    fresh: Mutex<HashMap<Id, i64>>,
}

impl FeedCache {
    /// The creators at or above `celebrity_followers`, read again once the cached list is
    /// `celebrity_cache_ms` old (a small partial index answers).
    async fn celebrities(
        &self,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now_ms: i64,
    ) -> Result<Arc<HashSet<Id>>, MetaError> {
        let ttl = i64::try_from(cfg.celebrity_cache_ms).unwrap_or(i64::MAX);
        {
            let cached = self.celebrities.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, set)) = cached.as_ref()
                && (0..ttl).contains(&now_ms.saturating_sub(*at))
            {
                return Ok(set.clone());
            }
        }
        let set: Arc<HashSet<Id>> =
            Arc::new(meta.feed().celebrities(cfg.celebrity_followers).await?.into_iter().collect());
        *self.celebrities.lock().unwrap_or_else(|e| e.into_inner()) = Some((now_ms, set.clone()));
        Ok(set)
    }

    /// The entries of `creator`'s outbox after `before`, `depth` deep (or all there are):
    /// from the cached head when it covers them, else from the store.
    async fn after(
        &self,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now_ms: i64,
        creator: Id,
        before: Option<(i64, Id)>,
        depth: u32,
    ) -> Result<Vec<FeedEntry>, MetaError> {
        let ttl = i64::try_from(cfg.outbox_cache_ms).unwrap_or(i64::MAX);
        // One more than the largest page read needs.
        let head_len = cfg.page_size_max.saturating_add(1);
        if ttl == 0 || depth > head_len {
            return Ok(entries(meta.feed().outbox(creator, before, depth).await?));
        }
        let cached = {
            let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
            heads
                .get(&creator)
                .filter(|(at, _)| now_ms.saturating_sub(*at) < ttl)
                .map(|(_, h)| h.clone())
        };
        let head = match cached {
            Some(head) => head,
            None => {
                let head = Arc::new(entries(meta.feed().outbox(creator, None, head_len).await?));
                let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
                if heads.len() >= CACHED_CREATORS {
                    heads.clear();
                }
                heads.insert(creator, (now_ms, head.clone()));
                head
            }
        };
        let found: Vec<FeedEntry> = head
            .iter()
            .filter(|e| before.is_none_or(|b| e.key() < b))
            .take(depth as usize)
            .copied()
            .collect();
        // The head is a prefix of the outbox: it answers when it holds the whole outbox or
        // enough entries after the cursor.
        if head.len() < head_len as usize || found.len() == depth as usize {
            Ok(found)
        } else {
            Ok(entries(meta.feed().outbox(creator, before, depth).await?))
        }
    }
}

/// Inbox reads per page at most before the rest is left to the store's per-row checks.
const INBOX_READS: usize = 3;

/// The page of `user`'s following feed after `after` (the top when `None`): the inbox and
/// each followed celebrity's outbox are read `limit + 1` deep after the cursor, then merged.
pub async fn read_page(
    meta: &MetaStore,
    cfg: &FeedConfig,
    cache: &FeedCache,
    now_ms: i64,
    user: Id,
    after: Option<FeedCursor>,
    limit: u32,
) -> Result<FeedPage, MetaError> {
    let feed = meta.feed();
    let before = after.map(|c| (c.at_ms, c.video_id));
    let depth = limit.saturating_add(1);
    let graph = feed.reader_graph(user, cfg.reader_followees_max).await?;
    if graph.truncated {
        return read_page_checked_in_store(meta, cfg, cache, now_ms, user, before, limit).await;
    }
    let blocked: HashSet<Id> = graph.blocked.into_iter().collect();
    let followed: HashSet<Id> =
        graph.followees.into_iter().filter(|f| !blocked.contains(f)).collect();
    let celebrities = cache.celebrities(meta, cfg, now_ms).await?;
    let mut sources = Vec::new();
    sources.push(inbox_entries(meta, user, &followed, before, depth).await?);
    for &creator in followed.iter().filter(|f| celebrities.contains(f)) {
        sources.push(cache.after(meta, cfg, now_ms, creator, before, depth).await?);
    }
    Ok(merge_page(sources, limit as usize))
}

/// `depth` entries of `user`'s inbox after `before` whose authors are in `followed` (rows of
/// an unfollow the fan-out has not deleted yet are skipped), reading on past skipped rows a
/// few times before asking the store to check each row.
async fn inbox_entries(
    meta: &MetaStore,
    user: Id,
    followed: &HashSet<Id>,
    before: Option<(i64, Id)>,
    depth: u32,
) -> Result<Vec<FeedEntry>, MetaError> {
    let mut kept = Vec::with_capacity(depth as usize);
    let mut from = before;
    for _ in 0..INBOX_READS {
        let want = depth - kept.len() as u32;
        let rows = meta.feed().inbox_rows(user, from, want).await?;
        let complete = rows.len() < want as usize;
        from = rows.last().map(|r| (r.at_ms, r.video_id));
        kept.extend(entries(rows).into_iter().filter(|e| followed.contains(&e.author_id)));
        if complete || kept.len() == depth as usize {
            return Ok(kept);
        }
    }
    let rest = meta.feed().inbox_page(user, from, depth - kept.len() as u32).await?;
    kept.extend(entries(rest));
    Ok(kept)
}

/// [`read_page`] for a reader following more than `reader_followees_max` creators: follows
/// and blocks are checked per row in the store.
async fn read_page_checked_in_store(
    meta: &MetaStore,
    cfg: &FeedConfig,
    cache: &FeedCache,
    now_ms: i64,
    user: Id,
    before: Option<(i64, Id)>,
    limit: u32,
) -> Result<FeedPage, MetaError> {
    let feed = meta.feed();
    let depth = limit.saturating_add(1);
    let celebrities = feed.celebrity_followees(user, cfg.celebrity_followers).await?;
    let mut sources = Vec::with_capacity(celebrities.len() + 1);
    sources.push(entries(feed.inbox_page(user, before, depth).await?));
    for creator in celebrities {
        sources.push(cache.after(meta, cfg, now_ms, creator, before, depth).await?);
    }
    Ok(merge_page(sources, limit as usize))
}

/// Makes `user`'s inbox complete before a read: when they were never rebuilt, or were
/// inactive (pushes skipped them), or came back from inactivity, the inbox is rebuilt by
/// pull and they are marked active. Returns whether it rebuilt.
///
/// A user found complete is not checked again on this node for
/// `activity_write_interval_ms`: nobody turns inactive that fast.
pub async fn ensure_fresh(
    meta: &MetaStore,
    cfg: &FeedConfig,
    cache: &FeedCache,
    user: Id,
    now_ms: i64,
) -> Result<bool, MetaError> {
    let recheck = i64::try_from(cfg.activity_write_interval_ms).unwrap_or(i64::MAX);
    {
        let fresh = cache.fresh.lock().unwrap_or_else(|e| e.into_inner());
        if fresh.get(&user).is_some_and(|&at| (0..recheck).contains(&now_ms.saturating_sub(at))) {
            return Ok(false);
        }
    }
    let fresh = matches!(
        meta.feed().activity(user).await?,
        Some(a) if !a.stale && a.last_active_ms >= cfg.active_since(now_ms)
    );
    if !fresh {
        rebuild(meta, cfg, cache, user, now_ms).await?;
        meta.feed().mark_fresh(user, now_ms).await?;
    }
    let mut known = cache.fresh.lock().unwrap_or_else(|e| e.into_inner());
    if known.len() >= CACHED_USERS {
        known.clear();
    }
    known.insert(user, now_ms);
    Ok(!fresh)
}

/// Refills `user`'s inbox from the outboxes of the ordinary creators they follow (at most
/// `rebuild_max_followees` of them, `backfill_per_author` videos each, the newest
/// `inbox_max` overall); celebrities are pulled at read time anyway. Returns the rows added.
/// Celebrities are told apart by the same cached list the reads use, so a rebuild never
/// leaves out a creator the next read would not pull either.
pub async fn rebuild(
    meta: &MetaStore,
    cfg: &FeedConfig,
    cache: &FeedCache,
    user: Id,
    now_ms: i64,
) -> Result<u64, MetaError> {
    let feed = meta.feed();
    let celebrities = cache.celebrities(meta, cfg, now_ms).await?;
    let mut sources = Vec::new();
    for creator in feed.followees(user, cfg.rebuild_max_followees).await? {
        if !celebrities.contains(&creator) {
            sources.push(entries(feed.outbox(creator, None, cfg.backfill_per_author).await?));
        }
    }
    let newest = merge_page(sources, cfg.inbox_max as usize);
    let rows: Vec<InboxRow> = newest
        .items
        .iter()
        .map(|e| InboxRow {
            user_id: user,
            item: FeedItem { video_id: e.video_id, author_id: e.author_id, at_ms: e.at_ms },
        })
        .collect();
    let added = feed.push(&rows).await?;
    feed.trim(user, cfg.inbox_max).await?;
    Ok(added)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use quicktok_meta::{MetaConfig, NewUser, NewVideo, VideoStatus};

    use super::*;

    async fn store_with_videos(count: u64) -> MetaStore {
        let cfg = MetaConfig { url: "sqlite::memory:".into(), ..MetaConfig::default() };
        let meta = MetaStore::connect(&cfg, std::path::Path::new(".")).await.unwrap();
        meta.users()
            .create(NewUser {
                id: Id(1),
                username: "star".into(),
                password_hash: "!".into(),
                created_at_ms: 0,
            })
            .await
            .unwrap();
        for i in 0..count {
            publish(&meta, 100 + i, 1_000 + i as i64).await;
        }
        meta
    }

    async fn publish(meta: &MetaStore, id: u64, at: i64) {
        publish_by(meta, id, 1, at).await;
    }

    async fn user(meta: &MetaStore, id: u64) {
        let new = NewUser {
            id: Id(id),
            username: format!("user{id}"),
            password_hash: "!".into(),
            created_at_ms: 0,
        };
        meta.users().create(new).await.unwrap();
    }

    async fn publish_by(meta: &MetaStore, id: u64, author: u64, at: i64) -> FeedItem {
        let new = NewVideo {
            id: Id(id),
            author_id: Id(author),
            title: String::new(),
            description: String::new(),
            tags: vec![],
            created_at_ms: at,
        };
        meta.videos().create(new).await.unwrap();
        meta.videos().set_status(Id(id), VideoStatus::Published, None, at).await.unwrap();
        FeedItem { video_id: Id(id), author_id: Id(author), at_ms: at }
    }

    #[tokio::test]
    async fn pages_filtered_in_memory_equal_pages_checked_in_the_store() {
        let meta = store_with_videos(0).await; // user 1: the celebrity
        for id in 2..=6 {
            user(&meta, id).await;
        }
        let social = meta.social();
        // Reader 2 follows the celebrity 1 and ordinary creators 3, 4 and 5.
        for (followee, link) in [(1, 900), (3, 901), (4, 902), (5, 903)] {
            social.follow(Id(2), Id(followee), Id(link), 0).await.unwrap();
        }
        let key = quicktok_meta::CounterKey { subject: "user", id: Id(1), metric: "followers" };
        meta.counters().add(&[(key, 50_000)]).await.unwrap();
        let mut rows = Vec::new();
        for i in 0..30u64 {
            let author = 3 + i % 3;
            let item = publish_by(&meta, 200 + i, author, 5_000 + 2 * i as i64).await;
            rows.push(InboxRow { user_id: Id(2), item });
            publish_by(&meta, 300 + i, 1, 5_001 + 2 * i as i64).await;
        }
        // Creator 6 is not followed at all: a stray row of theirs never shows.
        let stray = publish_by(&meta, 400, 6, 9_999).await;
        rows.push(InboxRow { user_id: Id(2), item: stray });
        meta.feed().push(&rows).await.unwrap();
        // An unfollow whose inbox rows are not deleted yet, and a block.
        social.unfollow(Id(2), Id(4)).await.unwrap();
        social.block(Id(5), Id(2), 0).await.unwrap();

        let cfg = FeedConfig::default();
        let in_store = FeedConfig { reader_followees_max: 1, ..cfg.clone() };
        let cache = FeedCache::default();
        let mut pages = Vec::new();
        for cfg in [&cfg, &in_store] {
            let (mut all, mut after) = (Vec::new(), None);
            loop {
                let page = read_page(&meta, cfg, &cache, 0, Id(2), after, 7).await.unwrap();
                all.extend(ids(&page.items));
                after = page.next;
                if after.is_none() {
                    break;
                }
            }
            pages.push(all);
        }
        // Creator 3's and the celebrity's videos only, newest first, each once.
        let mut want: Vec<u64> = (0..30u64)
            .flat_map(|i| [(5_000 + 2 * i, 200 + i), (5_001 + 2 * i, 300 + i)])
            .filter(|&(_, v)| v >= 300 || (v - 200) % 3 == 0)
            .map(|(_, v)| v)
            .collect();
        want.reverse();
        assert_eq!(pages[0], want);
        assert_eq!(pages[1], want);
    }

    fn ids(entries: &[FeedEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.video_id.0).collect()
    }

    #[tokio::test]
    async fn outbox_heads_are_cached_for_their_ttl_and_deep_pages_read_the_store() {
        let meta = store_with_videos(60).await;
        let cfg = FeedConfig::default();
        let cache = FeedCache::default();
        let now = 10_000;
        let top = cache.after(&meta, &cfg, now, Id(1), None, 21).await.unwrap();
        assert_eq!(ids(&top), (139..=159).rev().collect::<Vec<_>>());
        // A new video is not seen while the head is fresh, and is once it expired.
        publish(&meta, 160, 2_000).await;
        let cached = cache.after(&meta, &cfg, now + 999, Id(1), None, 3).await.unwrap();
        assert_eq!(ids(&cached), [159, 158, 157]);
        let fresh = cache.after(&meta, &cfg, now + 1_000, Id(1), None, 3).await.unwrap();
        assert_eq!(ids(&fresh), [160, 159, 158]);
        // Past the cached head (51 entries), the store answers: the same as an outbox read.
        for depth in [5, 21, 51] {
            let at = &top[20];
            let before = Some((at.at_ms, at.video_id));
            let got = cache.after(&meta, &cfg, now + 1_000, Id(1), before, depth).await.unwrap();
            let want = entries(meta.feed().outbox(Id(1), before, depth).await.unwrap());
            assert_eq!(got, want, "depth {depth}");
        }
        let deep = (1_010, Id(110));
        let got = cache.after(&meta, &cfg, now + 1_000, Id(1), Some(deep), 21).await.unwrap();
        assert_eq!(ids(&got), (100..=109).rev().collect::<Vec<_>>());
        // A small outbox is whole in its head: any cursor is answered from it.
        let small = store_with_videos(3).await;
        let cache = FeedCache::default();
        let head = cache.after(&small, &cfg, 0, Id(1), None, 2).await.unwrap();
        assert_eq!(ids(&head), [102, 101]);
        let (uncached, off) = (FeedCache::default(), FeedConfig { outbox_cache_ms: 0, ..cfg });
        publish(&small, 103, 1_003).await;
        assert_eq!(
            ids(&uncached.after(&small, &off, 0, Id(1), None, 2).await.unwrap()),
            [103, 102]
        );
    }
}
