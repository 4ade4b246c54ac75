//! The search indexer (role `indexer`): a consumer of the `videos` topic that keeps the
//! search index in step with the metadata store, and `quicktok search rebuild`.
//!
//! Every event names a video; the indexer re-reads that video's row (and its counters) and
//! indexes it if [`indexable`], else deletes it, so applying an event twice changes nothing
//! and replaying after a crash is safe. The next offset to apply is committed with the index
//! itself (in the Tantivy commit payload), never in the log's consumer table, so the two
//! cannot disagree. While changes are pending the index is committed every
//! `search.commit_interval_ms`; readers reload on commit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicktok_core::{Event, Id, Shutdown};
use quicktok_log::EventLog;
use quicktok_meta::{MetaStore, Video};
use quicktok_search::{CreatorDoc, SearchIndex, VideoDoc};
use quicktok_social::{CounterKey, CounterService, Metric};

use crate::notifications::VIDEOS_TOPIC;

const BATCH_RECORDS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;

/// Whether a video belongs in search: the one place this is decided (the indexer and the
/// rebuild both ask). Published and public only.
pub fn indexable(video: &Video) -> bool {
    video.is_listable()
}

/// The index's view of `video` with its author's name and its counters now.
async fn video_doc(
    meta: &MetaStore,
    counters: &CounterService,
    video: &Video,
) -> anyhow::Result<(VideoDoc, CreatorDoc)> {
    let author = meta.users().by_id(video.author_id).await?;
    let username = author.map(|u| u.username).unwrap_or_default();
    let keys = [
        CounterKey::video(video.id, Metric::Plays),
        CounterKey::video(video.id, Metric::Likes),
        CounterKey::user(video.author_id, Metric::Followers),
    ];
    let values = counters.get_many(&keys).await?;
    let count = |i: usize| values.get(i).copied().unwrap_or(0).max(0) as u64;
    let doc = VideoDoc {
        id: video.id.0,
        title: video.title.clone(),
        description: video.description.clone(),
        tags: video.tags.clone(),
        creator_id: video.author_id.0,
        creator: username.clone(),
        published_at_ms: video.published_at_ms.unwrap_or(video.created_at_ms),
        duration_ms: video.duration_ms.unwrap_or(0).max(0) as u64,
        views: count(0).max(video.view_count.max(0) as u64),
        likes: count(1),
    };
    let creator = CreatorDoc { id: video.author_id.0, username, followers: count(2) };
    Ok((doc, creator))
}

/// Brings the index's copy of video `id` up to date with the store.
pub async fn reindex(
    index: &SearchIndex,
    meta: &MetaStore,
    counters: &CounterService,
    id: Id,
) -> anyhow::Result<()> {
    match meta.videos().by_id(id).await? {
        Some(video) if indexable(&video) => {
            let (doc, creator) = video_doc(meta, counters, &video).await?;
            index.upsert_video(&doc)?;
            index.upsert_creator(&creator)?;
        }
        _ => index.delete_video(id.0)?,
    }
    Ok(())
}

/// The video an event of the `videos` topic concerns, if search cares about it.
fn video_of(event: &Event) -> Option<Id> {
    match event {
        Event::VideoPublished { video_id, .. }
        | Event::VideoUpdated { video_id, .. }
        | Event::VideoRemoved { video_id, .. }
        | Event::VideoRejected { video_id, .. } => Some(*video_id),
        _ => None,
    }
}

async fn commit(index: &Arc<SearchIndex>, offset: u64) -> anyhow::Result<()> {
    let index = index.clone();
    tokio::task::spawn_blocking(move || index.commit(offset)).await??;
    Ok(())
}

/// Runs the indexer until `shutdown`, from the offset of the index's last commit.
pub async fn run_indexer(
    log: Arc<dyn EventLog>,
    meta: MetaStore,
    counters: Arc<CounterService>,
    index: Arc<SearchIndex>,
    commit_every: Duration,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut next = index.committed_offset().unwrap_or(0);
    let mut pending = false;
    let mut last_commit = Instant::now();
    loop {
        let read = crate::consumer::next_batch(
            log.as_ref(),
            VIDEOS_TOPIC,
            next,
            BATCH_RECORDS,
            BATCH_BYTES,
            &shutdown,
        );
        let records = if pending {
            let wait = commit_every.saturating_sub(last_commit.elapsed());
            tokio::select! {
                r = read => r?,
                _ = tokio::time::sleep(wait) => {
                    commit(&index, next).await?;
                    pending = false;
                    last_commit = Instant::now();
                    continue;
                }
            }
        } else {
            read.await?
        };
        let Some(records) = records else {
            if pending {
                commit(&index, next).await?;
            }
            return Ok(());
        };
        let after = crate::consumer::after(&records, next);
        let mut touched = BTreeSet::new();
        for record in &records {
            match Event::decode(&record.payload) {
                Ok(event) => touched.extend(video_of(&event)),
                Err(e) => {
                    tracing::warn!(offset = record.offset, error = %e, "skipping undecodable event")
                }
            }
        }
        // Each video once per batch: its row is its latest state whatever the events said.
        for id in touched {
            reindex(&index, &meta, &counters, id).await?;
        }
        next = after;
        pending = true;
        if last_commit.elapsed() >= commit_every {
            commit(&index, next).await?;
            pending = false;
            last_commit = Instant::now();
        }
    }
}

/// Re-reads every indexed-worthy video and re-indexes it, so popularity (views, likes,
/// followers) catches up; run every `search.popularity_refresh_secs` by the indexer role.
/// Returns how many videos were indexed.
pub async fn refresh_all(
    index: &SearchIndex,
    meta: &MetaStore,
    counters: &CounterService,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut before = None;
    let mut done = 0u64;
    loop {
        let page = meta.videos().latest_published(before, 500).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for video in &page {
            if indexable(video) {
                let (doc, creator) = video_doc(meta, counters, video).await?;
                index.upsert_video(&doc)?;
                index.upsert_creator(&creator)?;
                done += 1;
            }
        }
        progress(done);
    }
    Ok(done)
}

/// `quicktok search rebuild`: empties the index, indexes every published public video and
/// its creator from the store, and commits with the `videos` offset read before the scan
/// (events after it are replayed by the indexer; replays are idempotent). Run it with the
/// indexer stopped (the index writer is exclusive).
pub async fn rebuild(
    index: Arc<SearchIndex>,
    meta: &MetaStore,
    counters: &CounterService,
    log: &dyn EventLog,
    progress: impl FnMut(u64),
) -> anyhow::Result<(u64, u64)> {
    let offset = log.end_offset(VIDEOS_TOPIC).await?;
    index.clear()?;
    let done = refresh_all(&index, meta, counters, progress).await?;
    commit(&index, offset).await?;
    Ok((done, offset))
}
