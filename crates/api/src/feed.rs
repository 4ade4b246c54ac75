//! The following feed's read side (F6.5), shared by `GET /api/v1/feed/following` and the
//! benchmark: one page merged from the user's pushed inbox and the outboxes of the
//! celebrities they follow, and the rebuild by pull of a returning inactive user's inbox.
//! The merge itself is `quicktok_social::feed` (pure); the filtering (visibility, blocks,
//! follows) is in the metadata store's queries.

use std::collections::HashSet;

use quicktok_core::Id;
use quicktok_meta::{FeedItem, InboxRow, MetaError, MetaStore};
use quicktok_social::{FeedConfig, FeedCursor, FeedEntry, FeedPage, merge_page};

fn entries(items: Vec<FeedItem>) -> Vec<FeedEntry> {
    items
        .into_iter()
        .map(|i| FeedEntry { at_ms: i.at_ms, video_id: i.video_id, author_id: i.author_id })
        .collect()
}

/// The page of `user`'s following feed after `after` (the top when `None`): the inbox and
/// each followed celebrity's outbox are read `limit + 1` deep after the cursor, then merged.
pub async fn read_page(
    meta: &MetaStore,
    cfg: &FeedConfig,
    user: Id,
    after: Option<FeedCursor>,
    limit: u32,
) -> Result<FeedPage, MetaError> {
    let feed = meta.feed();
    let before = after.map(|c| (c.at_ms, c.video_id));
    let depth = limit.saturating_add(1);
    let celebrities = feed.celebrity_followees(user, cfg.celebrity_followers).await?;
    let mut sources = Vec::with_capacity(celebrities.len() + 1);
    sources.push(entries(feed.inbox_page(user, before, depth).await?));
    for creator in celebrities {
        sources.push(entries(feed.outbox(creator, before, depth).await?));
    }
    Ok(merge_page(sources, limit as usize))
}

/// Makes `user`'s inbox complete before a read: when they were never rebuilt, or were
/// inactive (pushes skipped them), or came back from inactivity, the inbox is rebuilt by
/// pull and they are marked active. Returns whether it rebuilt.
pub async fn ensure_fresh(
    meta: &MetaStore,
    cfg: &FeedConfig,
    user: Id,
    now_ms: i64,
) -> Result<bool, MetaError> {
    let fresh = matches!(
        meta.feed().activity(user).await?,
        Some(a) if !a.stale && a.last_active_ms >= cfg.active_since(now_ms)
    );
    if fresh {
        return Ok(false);
    }
    rebuild(meta, cfg, user).await?;
    meta.feed().mark_fresh(user, now_ms).await?;
    Ok(true)
}

/// Refills `user`'s inbox from the outboxes of the ordinary creators they follow (at most
/// `rebuild_max_followees` of them, `backfill_per_author` videos each, the newest
/// `inbox_max` overall); celebrities are pulled at read time anyway. Returns the rows added.
pub async fn rebuild(meta: &MetaStore, cfg: &FeedConfig, user: Id) -> Result<u64, MetaError> {
    let feed = meta.feed();
    let celebrities: HashSet<Id> =
        feed.celebrity_followees(user, cfg.celebrity_followers).await?.into_iter().collect();
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
