//! The following feed's read side (F6.5), shared by `GET /api/v1/feed/following` and the
//! benchmark: one page merged from the user's pushed inbox and the outboxes of the
//! celebrities they follow, and the rebuild by pull of a returning inactive user's inbox.
//! The merge itself is `quicktok_social::feed` (pure); the visibility filter is in the
//! metadata store's queries.
//!
//! A read costs one query whatever the reader follows: when they were last seen and one page
//! of their inbox (one covering index), plus, unless this node keeps them, their follows (one
//! stored row per user, `following_lists`) and blocks. Follows are checked in memory, not per
//! row in the store, and kept for the reader's next reads for
//! `social.feed.reader_graph_cache_ms`: this node's follow and block handlers drop them at
//! once, and its consumer of the `social` topic drops them when another node changes them.
//! Celebrities are read by every one of their followers, so the list of who is a celebrity
//! is cached in process for `social.feed.celebrity_cache_ms`, and the head of each
//! celebrity's outbox for `social.feed.outbox_cache_ms` (then refreshed in the background
//! while still served): a new video of theirs shows up that much later, and a removed one is
//! dropped by the handler's final status check.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use quicktok_core::Id;
use quicktok_meta::{Activity, FeedItem, InboxRow, MetaError, MetaStore, ReaderGraph, ReaderStart};
use quicktok_social::{FeedConfig, FeedCursor, FeedEntry, FeedPage, merge_page};

fn entries(items: Vec<FeedItem>) -> Vec<FeedEntry> {
    items
        .into_iter()
        .map(|i| FeedEntry { at_ms: i.at_ms, video_id: i.video_id, author_id: i.author_id })
        .collect()
}

/// The entries one source gives a page: read for it, or a range of a cached outbox head
/// (merged where it lies, not copied).
enum Source {
    Read(Vec<FeedEntry>),
    Head(Arc<Vec<FeedEntry>>, std::ops::Range<usize>),
}

impl AsRef<[FeedEntry]> for Source {
    fn as_ref(&self) -> &[FeedEntry] {
        match self {
            Source::Read(entries) => entries,
            Source::Head(head, range) => head.get(range.clone()).unwrap_or_default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Celebrities cached before the cache starts over.
const CACHED_CREATORS: usize = 10_000;

/// When a head was read, and its entries (newest first).
type CachedHead = (i64, Arc<Vec<FeedEntry>>);

/// The cached outbox heads, and the creators whose head is being read again in the
/// background (one refresh at a time per creator).
#[derive(Debug, Default)]
struct Heads {
    by_creator: HashMap<Id, CachedHead>,
    refreshing: HashSet<Id>,
}

/// A reader's follows as a page read uses them: whom they follow, less anyone on either
/// side of a block with them, by id; `truncated` when they follow more than
/// `reader_followees_max` (their reads check follows in the store instead).
#[derive(Debug, Default)]
struct ReaderFollows {
    followed: Vec<Id>,
    truncated: bool,
}

impl ReaderFollows {
    fn of(graph: ReaderGraph) -> ReaderFollows {
        let blocked: HashSet<Id> = graph.blocked.into_iter().collect();
        // Filtering keeps the store's order by id, which `follows` searches.
        let followed = graph.followees.into_iter().filter(|f| !blocked.contains(f)).collect();
        ReaderFollows { followed, truncated: graph.truncated }
    }

    fn follows(&self, creator: Id) -> bool {
        self.followed.binary_search(&creator).is_ok()
    }
}

/// The readers' follows a node keeps, each with when it was read, and how many times any was
/// dropped: a read keeps what it loaded only if nothing was dropped meanwhile, so a change
/// made during the load is never hidden behind the list from before it.
#[derive(Debug, Default)]
struct Graphs {
    by_reader: HashMap<Id, (i64, Arc<ReaderFollows>)>,
    drops: u64,
}

/// The node's cached reader follows (`social.feed.reader_graph_cache_ms`), shared with what
/// must drop them when a reader's graph changes: this node's follow and block handlers, and
/// its consumer of the `social` topic for changes made on other nodes.
#[derive(Debug, Clone, Default)]
pub struct ReaderGraphs(Arc<Mutex<Graphs>>);

impl ReaderGraphs {
    /// Drops `reader`'s cached follows: their next read loads them again.
    pub fn forget(&self, reader: Id) {
        let mut graphs = lock(&self.0);
        graphs.by_reader.remove(&reader);
        graphs.drops = graphs.drops.wrapping_add(1);
    }

    /// `reader`'s follows if kept and younger than `ttl_ms`; else the drop count to hand to
    /// [`ReaderGraphs::keep`] after loading them.
    fn cached(&self, reader: Id, now_ms: i64, ttl_ms: i64) -> Result<Arc<ReaderFollows>, u64> {
        let graphs = lock(&self.0);
        match graphs.by_reader.get(&reader) {
            Some((at, follows)) if (0..ttl_ms).contains(&now_ms.saturating_sub(*at)) => {
                Ok(follows.clone())
            }
            _ => Err(graphs.drops),
        }
    }

    /// Keeps `follows`, loaded at `now_ms` after [`ReaderGraphs::cached`] answered `drops`,
    /// unless something was dropped since.
    fn keep(&self, reader: Id, now_ms: i64, follows: Arc<ReaderFollows>, drops: u64, max: usize) {
        let mut graphs = lock(&self.0);
        if graphs.drops != drops || max == 0 {
            return;
        }
        if graphs.by_reader.len() >= max && !graphs.by_reader.contains_key(&reader) {
            graphs.by_reader.clear();
        }
        graphs.by_reader.insert(reader, (now_ms, follows));
    }
}

/// What a node's feed readers share: who the celebrities are, the newest entries of their
/// outboxes, and the readers' own follows.
#[derive(Debug, Default)]
pub struct FeedCache {
    /// Sorted by id.
    celebrities: Mutex<Option<(i64, Arc<Vec<Id>>)>>,
    heads: Arc<Mutex<Heads>>,
    graphs: ReaderGraphs,
}

/// How a cached head may answer a read at a given moment.
enum HeadState {
    /// Younger than `outbox_cache_ms`.
    Fresh(Arc<Vec<FeedEntry>>),
    /// Older, but younger than twice that: served, and read again in the background.
    Stale(Arc<Vec<FeedEntry>>),
    /// Missing or too old: read on the request path.
    Missing,
}

impl FeedCache {
    /// The readers' cached follows, for whatever must drop them on a change.
    pub fn graphs(&self) -> &ReaderGraphs {
        &self.graphs
    }

    /// `user`'s follows from the cache, or from the store along with the rest of the read's
    /// start (then kept for the next reads); and that start.
    async fn reader_start(
        &self,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now_ms: i64,
        user: Id,
        before: Option<(i64, Id)>,
        depth: u32,
    ) -> Result<(Arc<ReaderFollows>, ReaderStart), MetaError> {
        let ttl = i64::try_from(cfg.reader_graph_cache_ms).unwrap_or(i64::MAX);
        let feed = meta.feed();
        match self.graphs.cached(user, now_ms, ttl) {
            Ok(follows) => Ok((follows, feed.reader_start(user, None, before, depth).await?)),
            Err(drops) => {
                let max = cfg.reader_followees_max;
                let mut start = feed.reader_start(user, Some(max), before, depth).await?;
                let follows = Arc::new(ReaderFollows::of(start.graph.take().unwrap_or_default()));
                let readers = if ttl > 0 { cfg.reader_graph_cache_readers as usize } else { 0 };
                self.graphs.keep(user, now_ms, follows.clone(), drops, readers);
                Ok((follows, start))
            }
        }
    }

    /// The creators at or above `celebrity_followers`, read again once the cached list is
    /// `celebrity_cache_ms` old (a small partial index answers).
    async fn celebrities(
        &self,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now_ms: i64,
    ) -> Result<Arc<Vec<Id>>, MetaError> {
        let ttl = i64::try_from(cfg.celebrity_cache_ms).unwrap_or(i64::MAX);
        if let Some((at, set)) = lock(&self.celebrities).as_ref()
            && (0..ttl).contains(&now_ms.saturating_sub(*at))
        {
            return Ok(set.clone());
        }
        let mut ids = meta.feed().celebrities(cfg.celebrity_followers).await?;
        ids.sort_unstable();
        ids.dedup();
        let set = Arc::new(ids);
        *lock(&self.celebrities) = Some((now_ms, set.clone()));
        Ok(set)
    }

    /// Each of `creators`' outbox entries after `before`, `depth` deep (or all there are), in
    /// `creators` order: from the cached heads when they cover them, else from the store.
    /// Heads past `outbox_cache_ms` are still used while a background task reads them again.
    async fn outboxes(
        &self,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now_ms: i64,
        creators: &[Id],
        before: Option<(i64, Id)>,
        depth: u32,
    ) -> Result<Vec<Source>, MetaError> {
        let ttl = i64::try_from(cfg.outbox_cache_ms).unwrap_or(i64::MAX);
        // One more than the largest page read needs.
        let head_len = cfg.page_size_max.saturating_add(1);
        let mut found = Vec::with_capacity(creators.len());
        if ttl == 0 || depth > head_len {
            for &creator in creators {
                found
                    .push(Source::Read(entries(meta.feed().outbox(creator, before, depth).await?)));
            }
            return Ok(found);
        }
        // One lock for the whole page: every reader takes it.
        let states: Vec<HeadState> = {
            let mut heads = lock(&self.heads);
            creators
                .iter()
                .map(|creator| match heads.by_creator.get(creator) {
                    Some((at, head)) if now_ms.saturating_sub(*at) < ttl => {
                        HeadState::Fresh(head.clone())
                    }
                    Some((at, head)) if now_ms.saturating_sub(*at) < ttl.saturating_mul(2) => {
                        let head = head.clone();
                        if heads.refreshing.insert(*creator) {
                            self.refresh_in_background(meta, *creator, head_len, now_ms);
                        }
                        HeadState::Stale(head)
                    }
                    _ => HeadState::Missing,
                })
                .collect()
        };
        for (&creator, state) in creators.iter().zip(states) {
            let head = match state {
                HeadState::Fresh(head) | HeadState::Stale(head) => head,
                HeadState::Missing => {
                    let head =
                        Arc::new(entries(meta.feed().outbox(creator, None, head_len).await?));
                    store_head(&self.heads, creator, now_ms, head.clone());
                    head
                }
            };
            // Heads are newest first (as the store answers), so the entries after the cursor
            // are the rest of the head from where the cursor falls.
            let start = head.partition_point(|e| before.is_some_and(|b| e.key() >= b));
            let end = head.len().min(start.saturating_add(depth as usize));
            // The head is a prefix of the outbox: it answers when it holds the whole outbox
            // or enough entries after the cursor.
            if head.len() < head_len as usize || end - start == depth as usize {
                found.push(Source::Head(head, start..end));
            } else {
                found
                    .push(Source::Read(entries(meta.feed().outbox(creator, before, depth).await?)));
            }
        }
        Ok(found)
    }

    /// Reads `creator`'s head again off the request path; `now_ms` stamps it (the clock the
    /// readers pass in, which tests control).
    fn refresh_in_background(&self, meta: &MetaStore, creator: Id, head_len: u32, now_ms: i64) {
        let (meta, heads) = (meta.clone(), self.heads.clone());
        tokio::spawn(async move {
            match meta.feed().outbox(creator, None, head_len).await {
                Ok(head) => store_head(&heads, creator, now_ms, Arc::new(entries(head))),
                // The stale head stays; the next read past twice the TTL reads it itself.
                Err(e) => tracing::warn!(%creator, error = %e, "outbox head refresh failed"),
            }
            lock(&heads).refreshing.remove(&creator);
        });
    }
}

fn store_head(heads: &Mutex<Heads>, creator: Id, now_ms: i64, head: Arc<Vec<FeedEntry>>) {
    let mut heads = lock(heads);
    if heads.by_creator.len() >= CACHED_CREATORS && !heads.by_creator.contains_key(&creator) {
        heads.by_creator.clear();
    }
    heads.by_creator.insert(creator, (now_ms, head));
}

/// The ids in both `a` and `b`, each sorted: one pass over the two (a reader's follows and
/// the celebrities are a few hundred ids each, so this beats a lookup per follow).
fn sorted_intersection(a: &[Id], b: &[Id]) -> Vec<Id> {
    let (mut i, mut j) = (0, 0);
    let mut both = Vec::new();
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    both
}

/// Inbox reads per page at most before the rest is left to the store's per-row checks.
const INBOX_READS: usize = 3;

/// Whether a reader last seen as `activity` has a complete inbox at `now_ms`: pushes reach
/// only active users, so one who was inactive (or is new, or came back) is rebuilt first.
fn has_complete_inbox(cfg: &FeedConfig, activity: Option<Activity>, now_ms: i64) -> bool {
    matches!(activity, Some(a) if !a.stale && a.last_active_ms >= cfg.active_since(now_ms))
}

/// The page of `user`'s following feed after `after` (the top when `None`): the inbox and
/// each followed celebrity's outbox are read `limit + 1` deep after the cursor, then merged.
/// A reader whose inbox may be incomplete (inactive, new, or back after inactivity) gets it
/// rebuilt by pull first and is marked active.
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
    let (follows, mut start) = cache.reader_start(meta, cfg, now_ms, user, before, depth).await?;
    if !has_complete_inbox(cfg, start.activity, now_ms) {
        rebuild(meta, cfg, cache, user, now_ms).await?;
        feed.mark_fresh(user, now_ms).await?;
        start = feed.reader_start(user, None, before, depth).await?;
    }
    if follows.truncated {
        return read_page_checked_in_store(meta, cfg, cache, now_ms, user, before, limit).await;
    }
    let celebrities = cache.celebrities(meta, cfg, now_ms).await?;
    let pulled = sorted_intersection(&follows.followed, &celebrities);
    let mut sources = Vec::with_capacity(pulled.len() + 1);
    sources
        .push(Source::Read(inbox_entries(meta, user, &follows, start.inbox, before, depth).await?));
    sources.extend(cache.outboxes(meta, cfg, now_ms, &pulled, before, depth).await?);
    Ok(merge_page(&sources, limit as usize))
}

/// `depth` entries of `user`'s inbox after `before` whose authors `follows` has (rows of
/// an unfollow the fan-out has not deleted yet are skipped), starting from `first` (the
/// first read's rows) and reading on past skipped rows a few times before asking the store
/// to check each row.
async fn inbox_entries(
    meta: &MetaStore,
    user: Id,
    follows: &ReaderFollows,
    first: Vec<FeedItem>,
    before: Option<(i64, Id)>,
    depth: u32,
) -> Result<Vec<FeedEntry>, MetaError> {
    let mut kept = Vec::with_capacity(depth as usize);
    let mut rows = first;
    let mut want = depth;
    for read in 1..=INBOX_READS {
        let complete = rows.len() < want as usize;
        let from = rows.last().map(|r| (r.at_ms, r.video_id));
        kept.extend(entries(rows).into_iter().filter(|e| follows.follows(e.author_id)));
        if complete || kept.len() == depth as usize {
            return Ok(kept);
        }
        want = depth - kept.len() as u32;
        if read == INBOX_READS {
            let rest = meta.feed().inbox_page(user, from.or(before), want).await?;
            kept.extend(entries(rest));
            break;
        }
        rows = meta.feed().inbox_rows(user, from, want).await?;
    }
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
    sources.push(Source::Read(entries(feed.inbox_page(user, before, depth).await?)));
    sources.extend(cache.outboxes(meta, cfg, now_ms, &celebrities, before, depth).await?);
    Ok(merge_page(&sources, limit as usize))
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
        if celebrities.binary_search(&creator).is_err() {
            sources.push(entries(feed.outbox(creator, None, cfg.backfill_per_author).await?));
        }
    }
    let newest = merge_page(&sources, cfg.inbox_max as usize);
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
        let mut pages = Vec::new();
        for cfg in [&cfg, &in_store] {
            // Its own cache: the first reads keep the follows they loaded.
            let cache = FeedCache::default();
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

    /// One creator's entries through [`FeedCache::outboxes`].
    async fn after(
        cache: &FeedCache,
        meta: &MetaStore,
        cfg: &FeedConfig,
        now: i64,
        before: Option<(i64, Id)>,
        depth: u32,
    ) -> Vec<FeedEntry> {
        let found = cache.outboxes(meta, cfg, now, &[Id(1)], before, depth).await.unwrap();
        assert_eq!(found.len(), 1);
        found[0].as_ref().to_vec()
    }

    #[tokio::test]
    async fn outbox_heads_are_cached_refreshed_in_the_background_and_deep_pages_read_the_store() {
        let meta = store_with_videos(60).await;
        let cfg = FeedConfig::default();
        let cache = FeedCache::default();
        let now = 10_000;
        let top = after(&cache, &meta, &cfg, now, None, 21).await;
        assert_eq!(ids(&top), (139..=159).rev().collect::<Vec<_>>());
        // A new video is not seen while the head is fresh.
        publish(&meta, 160, 2_000).await;
        assert_eq!(ids(&after(&cache, &meta, &cfg, now + 999, None, 3).await), [159, 158, 157]);
        // Once the head is past its TTL it is still served, and read again in the background.
        assert_eq!(ids(&after(&cache, &meta, &cfg, now + 1_000, None, 3).await), [159, 158, 157]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = ids(&after(&cache, &meta, &cfg, now + 1_500, None, 3).await);
            if got == [160, 159, 158] {
                break;
            }
            assert_eq!(got, [159, 158, 157]);
            assert!(std::time::Instant::now() < deadline, "the head was never refreshed");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(lock(&cache.heads).refreshing.is_empty());
        // A head twice its TTL old is read on the request path: the reader sees it at once.
        publish(&meta, 161, 2_001).await;
        assert_eq!(ids(&after(&cache, &meta, &cfg, now + 3_000, None, 3).await), [161, 160, 159]);
        // Past the cached head (51 entries), the store answers: the same as an outbox read.
        for depth in [5, 21, 51] {
            let at = &top[20];
            let before = Some((at.at_ms, at.video_id));
            let got = after(&cache, &meta, &cfg, now + 3_000, before, depth).await;
            let want = entries(meta.feed().outbox(Id(1), before, depth).await.unwrap());
            assert_eq!(got, want, "depth {depth}");
        }
        let deep = (1_010, Id(110));
        let got = after(&cache, &meta, &cfg, now + 3_000, Some(deep), 21).await;
        assert_eq!(ids(&got), (100..=109).rev().collect::<Vec<_>>());
        // A small outbox is whole in its head: any cursor is answered from it.
        let small = store_with_videos(3).await;
        let cache = FeedCache::default();
        assert_eq!(ids(&after(&cache, &small, &cfg, 0, None, 2).await), [102, 101]);
        let (uncached, off) = (FeedCache::default(), FeedConfig { outbox_cache_ms: 0, ..cfg });
        publish(&small, 103, 1_003).await;
        assert_eq!(ids(&after(&uncached, &small, &off, 0, None, 2).await), [103, 102]);
    }

    #[tokio::test]
    async fn a_reader_with_an_incomplete_inbox_is_rebuilt_by_the_read_itself() {
        let meta = store_with_videos(0).await;
        for id in 2..=3 {
            user(&meta, id).await;
        }
        meta.social().follow(Id(2), Id(3), Id(900), 0).await.unwrap();
        for i in 0..4u64 {
            publish_by(&meta, 200 + i, 3, 5_000 + i as i64).await;
        }
        let (cfg, cache) = (FeedConfig::default(), FeedCache::default());
        let now = 10 * 86_400_000;
        // Never seen, nothing pushed: the read rebuilds the inbox and marks the reader active.
        assert!(meta.feed().raw_inbox(Id(2), 10).await.unwrap().is_empty());
        let page = read_page(&meta, &cfg, &cache, now, Id(2), None, 10).await.unwrap();
        assert_eq!(ids(&page.items), [203, 202, 201, 200]);
        let fresh = Activity { last_active_ms: now, stale: false };
        assert_eq!(meta.feed().activity(Id(2)).await.unwrap(), Some(fresh));
        // Back after a long absence (marked stale by the activity note): rebuilt again.
        publish_by(&meta, 204, 3, 6_000).await;
        let later = now + 40 * 86_400_000;
        meta.feed().touch(Id(2), later, cfg.active_since(later)).await.unwrap();
        let page = read_page(&meta, &cfg, &cache, later, Id(2), None, 2).await.unwrap();
        assert_eq!(ids(&page.items), [204, 203]);
        // An active reader's inbox is read as it is: nothing is rebuilt behind the fan-out.
        publish_by(&meta, 205, 3, 7_000).await;
        let page = read_page(&meta, &cfg, &cache, later + 1, Id(2), None, 2).await.unwrap();
        assert_eq!(ids(&page.items), [204, 203]);
    }

    #[tokio::test]
    async fn a_readers_follows_are_kept_until_a_change_drops_them_or_they_expire() {
        let meta = store_with_videos(0).await;
        for id in 2..=4 {
            user(&meta, id).await;
        }
        let social = meta.social();
        social.follow(Id(2), Id(3), Id(900), 0).await.unwrap();
        let rows = [publish_by(&meta, 200, 3, 5_000).await, publish_by(&meta, 201, 4, 5_001).await];
        let rows = rows.map(|item| InboxRow { user_id: Id(2), item });
        meta.feed().push(&rows).await.unwrap();
        let (cfg, cache) = (FeedConfig::default(), FeedCache::default());
        let now = 10 * 86_400_000;
        meta.feed().mark_fresh(Id(2), now).await.unwrap();
        let read = async |at: i64| {
            ids(&read_page(&meta, &cfg, &cache, at, Id(2), None, 10).await.unwrap().items)
        };
        // Creator 4 is not followed: their row is skipped.
        assert_eq!(read(now).await, [200]);
        // A follow the node was not told of is not seen while the follows are kept...
        social.follow(Id(2), Id(4), Id(901), now).await.unwrap();
        assert_eq!(read(now + 1).await, [200]);
        // ...and is once they are dropped (as the handlers and the consumer do).
        cache.graphs().forget(Id(2));
        assert_eq!(read(now + 2).await, [201, 200]);
        // Unseen changes show once the kept follows are `reader_graph_cache_ms` old.
        social.unfollow(Id(2), Id(3)).await.unwrap();
        let ttl = cfg.reader_graph_cache_ms as i64;
        assert_eq!(read(now + 2 + ttl - 1).await, [201, 200]);
        assert_eq!(read(now + 2 + ttl).await, [201]);
        // With the cache off, every read loads them.
        let off = FeedConfig { reader_graph_cache_ms: 0, ..cfg.clone() };
        social.follow(Id(2), Id(3), Id(902), now).await.unwrap();
        let page = read_page(&meta, &off, &cache, now + 3 + ttl, Id(2), None, 10).await.unwrap();
        assert_eq!(ids(&page.items), [201, 200]);
    }

    #[test]
    fn follows_loaded_across_a_drop_are_not_kept_and_the_cache_is_bounded() {
        let graphs = ReaderGraphs::default();
        let follows = Arc::new(ReaderFollows { followed: vec![Id(3)], truncated: false });
        // A drop (of anyone) between the miss and the load's end: the load may predate the
        // change, so it is not kept.
        let drops = graphs.cached(Id(1), 0, 1_000).unwrap_err();
        graphs.forget(Id(9));
        graphs.keep(Id(1), 0, follows.clone(), drops, 10);
        assert!(graphs.cached(Id(1), 0, 1_000).is_err());
        let drops = graphs.cached(Id(1), 0, 1_000).unwrap_err();
        graphs.keep(Id(1), 0, follows.clone(), drops, 10);
        assert!(graphs.cached(Id(1), 999, 1_000).unwrap().follows(Id(3)));
        assert!(graphs.cached(Id(1), 1_000, 1_000).is_err());
        // Past `max` readers the cache starts over.
        for reader in 2..=3 {
            let drops = graphs.cached(Id(reader), 0, 1_000).unwrap_err();
            graphs.keep(Id(reader), 0, follows.clone(), drops, 2);
        }
        assert!(graphs.cached(Id(1), 0, 1_000).is_err());
        assert!(graphs.cached(Id(3), 0, 1_000).is_ok());
        // Blocked followees are left out of the follows.
        let graph = ReaderGraph {
            followees: vec![Id(2), Id(3), Id(4)],
            blocked: vec![Id(3)],
            truncated: false,
        };
        assert_eq!(ReaderFollows::of(graph).followed, [Id(2), Id(4)]);
    }
}
