//! The following feed's write side (F6.5): a durable consumer (named `feed`, run by the
//! worker role) of the `videos` topic, which pushes each published video of an ordinary
//! creator into the inboxes of their *active* followers, and of the `social` topic, which
//! backfills a newly followed creator's recent videos into the follower's inbox and deletes
//! an unfollowed creator's rows. Celebrities (stored follower count at or above
//! `social.feed.celebrity_followers`) are never pushed: readers pull them.
//!
//! Every write is idempotent (the inbox's primary key is (user, video)), so a batch replayed
//! after a crash, or handled by two nodes, changes nothing the second time.

use std::sync::Arc;

use quicktok_core::clock::SharedClock;
use quicktok_core::{Event, Id, Shutdown};
use quicktok_log::EventLog;
use quicktok_meta::{CounterKey, FeedItem, InboxRow, MetaError, MetaStore};
use quicktok_social::{FeedConfig, should_trim};

/// The consumer's durable name on both topics.
const CONSUMER: &str = "feed";
/// Small batches: one publication can mean thousands of inserts, and the offset is
/// committed after each batch.
const BATCH_RECORDS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// Followers read (and inbox rows inserted) per step of a fan-out.
const FANOUT_PAGE: u32 = 1_000;

/// The stored follower count of `user` (what the push/pull split is decided on, on both
/// the write and the read side).
async fn stored_followers(meta: &MetaStore, user: Id) -> Result<i64, MetaError> {
    let key = CounterKey { subject: "user", id: user, metric: "followers" };
    Ok(meta.counters().get(&[key]).await?.first().copied().unwrap_or(0))
}

fn is_celebrity(cfg: &FeedConfig, followers: i64) -> bool {
    u64::try_from(followers).is_ok_and(|n| n >= cfg.celebrity_followers)
}

/// Pushes published video `video_id` into the inboxes of its author's followers seen since
/// `social.feed.active_days` before `now_ms`, unless the video is not public or its author
/// is a celebrity. Followers are paged by follow id; inboxes are trimmed now and then.
/// Returns the inbox rows inserted.
pub async fn fan_out(
    meta: &MetaStore,
    cfg: &FeedConfig,
    now_ms: i64,
    video_id: Id,
) -> Result<u64, MetaError> {
    let Some(video) = meta.videos().by_id(video_id).await? else { return Ok(0) };
    // Stories have their own row (`GET /stories`), never the following feed.
    if !video.is_listable() {
        return Ok(0);
    }
    if is_celebrity(cfg, stored_followers(meta, video.author_id).await?) {
        return Ok(0);
    }
    let item = FeedItem {
        video_id,
        author_id: video.author_id,
        at_ms: video.published_at_ms.unwrap_or(video.created_at_ms),
    };
    let feed = meta.feed();
    let since = cfg.active_since(now_ms);
    let mut before = None;
    let mut inserted = 0;
    loop {
        let page = feed.active_followers(video.author_id, since, before, FANOUT_PAGE).await?;
        let rows: Vec<InboxRow> =
            page.iter().map(|&(_, follower)| InboxRow { user_id: follower, item }).collect();
        inserted += feed.push(&rows).await?;
        for &(_, follower) in &page {
            if should_trim(follower, video_id, cfg.trim_every) {
                feed.trim(follower, cfg.inbox_max).await?;
            }
        }
        if page.len() < FANOUT_PAGE as usize {
            return Ok(inserted);
        }
        before = page.last().map(|&(link, _)| link);
    }
}

/// Copies `followee`'s newest videos (`social.feed.backfill_per_author`) into `follower`'s
/// inbox after a follow, unless the followee is a celebrity or the follow is gone again.
/// Returns the rows inserted.
pub async fn backfill(
    meta: &MetaStore,
    cfg: &FeedConfig,
    follower: Id,
    followee: Id,
) -> Result<u64, MetaError> {
    if is_celebrity(cfg, stored_followers(meta, followee).await?)
        || !meta.social().is_following(follower, followee).await?
    {
        return Ok(0);
    }
    let feed = meta.feed();
    let rows: Vec<InboxRow> = feed
        .outbox(followee, None, cfg.backfill_per_author)
        .await?
        .into_iter()
        .map(|item| InboxRow { user_id: follower, item })
        .collect();
    let inserted = feed.push(&rows).await?;
    if inserted > 0 {
        feed.trim(follower, cfg.inbox_max).await?;
    }
    Ok(inserted)
}

/// What one event does to the inboxes.
async fn handle(
    meta: &MetaStore,
    cfg: &FeedConfig,
    now_ms: i64,
    event: &Event,
) -> Result<(), MetaError> {
    match *event {
        Event::VideoPublished { video_id, .. } => {
            let pushed = fan_out(meta, cfg, now_ms, video_id).await?;
            tracing::debug!(video = %video_id, pushed, "feed fan-out");
        }
        Event::UserFollowed { follower, followee, following: true, .. } => {
            backfill(meta, cfg, follower, followee).await?;
        }
        // Reads skip unfollowed authors already; this frees the rows.
        Event::UserFollowed { follower, followee, following: false, .. } => {
            meta.feed().delete_author(follower, followee).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Reads `topic` (`videos` or `social`) and keeps the inboxes in step until `shutdown`. An
/// error returns (the supervisor restarts from the last committed offset).
pub async fn run(
    log: Arc<dyn EventLog>,
    meta: MetaStore,
    cfg: FeedConfig,
    clock: SharedClock,
    topic: &'static str,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut next = log.committed(topic, CONSUMER).await?.unwrap_or(0);
    while let Some(records) = crate::consumer::next_batch(
        log.as_ref(),
        topic,
        next,
        BATCH_RECORDS,
        BATCH_BYTES,
        &shutdown,
    )
    .await?
    {
        let after = crate::consumer::after(&records, next);
        for record in &records {
            match Event::decode(&record.payload) {
                Ok(event) => handle(&meta, &cfg, clock.now_ms(), &event).await?,
                Err(e) => {
                    tracing::warn!(topic, offset = record.offset, error = %e, "skipping undecodable event")
                }
            }
        }
        log.commit(topic, CONSUMER, after).await?;
        next = after;
    }
    Ok(())
}
