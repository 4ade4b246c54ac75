//! The For-You recommender's wiring (API role): each API node keeps its own in-memory
//! [`Recommender`], filled at start from the metadata store (the catalogue) and a replay of
//! the recent engagement in the log (so it can train at once), then kept current by reading
//! the `videos`, `watches` and `social` topics as they grow, and retrained on a schedule.
//!
//! The state is rebuilt from the store and the log at every start, so its consumers keep no
//! offsets. While a consumer is idle it reports itself caught up once a second: a reader
//! that falls more than `recommend.max_realtime_lag_ms` behind shows as `realtime_stale`.
//!
//! What the log cannot rebuild and users would notice losing - the seen filters (clips
//! served but not watched are in no event) and the cover bandit's statistics - is written
//! behind to the store's `recommend_state` table every `recommend.persist_interval_ms` and
//! once more at shutdown, and restored at start before the replay. The labelled impressions
//! (training data only) and per-clip impression counts stay in memory: a restart costs the
//! ranker some examples and the fresh source its exposure counts, nothing a user sees twice.

use std::sync::Arc;
use std::time::Duration;

use quicktok_core::clock::SharedClock;
use quicktok_core::{Event, SOCIAL_TOPIC, Shutdown, WATCHES_TOPIC};
use quicktok_log::{EventLog, Record};
use quicktok_meta::{MetaStore, StateKind, StateRow, Video};
use quicktok_recommend::interests::Signal;
use quicktok_recommend::{RecommendConfig, Recommender, UserEvent, VideoInfo};

use crate::notifications::VIDEOS_TOPIC;

const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;
const CATALOGUE_PAGE: u32 = 1000;
/// Stored state rows read per query at start.
const STATE_PAGE: u32 = 1000;

/// The clip as the recommender knows it, when it may be recommended at all.
fn recommendable(v: &Video) -> Option<VideoInfo> {
    v.is_listable().then(|| VideoInfo {
        id: v.id.0,
        author: v.author_id.0,
        tags: v.tags.clone(),
        published_at_ms: v.published_at_ms.unwrap_or(v.created_at_ms),
    })
}

/// What an engagement event means to the recommender (`None`: nothing).
pub fn user_event(event: &Event, config: &RecommendConfig) -> Option<UserEvent> {
    let (user, video, signal, at_ms) = match event {
        Event::VideoWatched { video_id, user_id, watched_ms, duration_ms, at_ms } => {
            let share = duration_ms.filter(|d| *d > 0).map(|d| *watched_ms as f64 / d as f64);
            let signal = match share {
                Some(s) if s >= config.completion_share => Signal::Completed,
                Some(s) if s < config.skip_share => Signal::Skipped,
                _ => Signal::Watched,
            };
            (*user_id, *video_id, signal, *at_ms)
        }
        Event::VideoLiked { video_id, user_id, liked: true, at_ms, .. } => {
            (*user_id, *video_id, Signal::Liked, *at_ms)
        }
        Event::CommentPosted { video_id, author, at_ms, .. } => {
            (*author, *video_id, Signal::Commented, *at_ms)
        }
        Event::VideoShared { video_id, user_id, at_ms, .. } => {
            (*user_id, *video_id, Signal::Shared, *at_ms)
        }
        _ => return None,
    };
    Some(UserEvent { user: user.0, video: video.0, signal, at_ms })
}

/// Applies a `videos` topic event: (re)publish or remove the clip as the store says now.
async fn apply_video_event(
    rec: &Recommender,
    meta: &MetaStore,
    event: &Event,
) -> anyhow::Result<()> {
    let id = match event {
        Event::VideoPublished { video_id, .. }
        | Event::VideoRejected { video_id, .. }
        | Event::VideoRemoved { video_id, .. }
        | Event::VideoUpdated { video_id, .. } => *video_id,
        _ => return Ok(()),
    };
    match meta.videos().by_id(id).await?.as_ref().and_then(recommendable) {
        Some(info) => rec.publish(info),
        None => rec.remove(id.0),
    }
    Ok(())
}

/// Builds the recommender: the catalogue, a replay of the recent engagement, one training.
/// Returns it with the offsets its consumers continue from.
pub async fn load(
    config: &RecommendConfig,
    meta: &MetaStore,
    log: &dyn EventLog,
    clock: &SharedClock,
) -> anyhow::Result<(Arc<Recommender>, [(&'static str, u64); 3])> {
    let rec = Arc::new(Recommender::new(config.params()));
    // Events from here on are applied by the consumer, so nothing published meanwhile is lost.
    let videos_from = log.end_offset(VIDEOS_TOPIC).await?;
    let mut before = None;
    loop {
        let page = meta.videos().latest_published(before, CATALOGUE_PAGE).await?;
        for v in &page {
            if let Some(info) = recommendable(v) {
                rec.publish(info);
            }
        }
        match page.last() {
            Some(last) if page.len() == CATALOGUE_PAGE as usize => before = Some(last.id),
            _ => break,
        }
    }
    // Before the replay: replayed views then land in the restored filters (no rewrite).
    if config.persist_interval_ms > 0 {
        let (restored, unreadable) = restore_state(&rec, config, meta, clock.now_ms()).await?;
        tracing::info!(restored, unreadable, "recommender state restored");
    }
    let since = clock.now_ms().saturating_sub(config.replay_ms);
    let mut offsets = [(VIDEOS_TOPIC, videos_from), (WATCHES_TOPIC, 0), (SOCIAL_TOPIC, 0)];
    for slot in offsets.iter_mut().skip(1) {
        let topic = slot.0;
        let end = log.end_offset(topic).await?;
        let mut next = log.offset_for_time(topic, since).await?.max(log.start_offset(topic).await?);
        while next < end {
            let records = log.read(topic, next, BATCH_RECORDS, BATCH_BYTES).await?;
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            apply_engagement(&rec, config, &records);
        }
        slot.1 = next;
    }
    let trainer = rec.clone();
    let now = clock.now_ms();
    let summary = tokio::task::spawn_blocking(move || trainer.train(now)).await?;
    report_training(&summary);
    tracing::info!(?summary, "recommender trained at start");
    rec.caught_up(clock.now_ms());
    Ok((rec, offsets))
}

/// Restores the stored seen filters and cover statistics, after deleting those untouched
/// for `recommend.state_retention_ms`. Returns (restored, unreadable) entries; an unreadable
/// one (other seen-filter settings, a newer format) is skipped: that user starts afresh.
async fn restore_state(
    rec: &Recommender,
    config: &RecommendConfig,
    meta: &MetaStore,
    now_ms: i64,
) -> anyhow::Result<(usize, usize)> {
    let since = now_ms.saturating_sub(config.state_retention_ms);
    let repo = meta.recommend_state();
    let (mut restored, mut unreadable) = (0, 0);
    for kind in [StateKind::Seen, StateKind::Cover] {
        repo.prune(kind, since).await?;
        let mut after = None;
        loop {
            let page = repo.page(kind, since, after, STATE_PAGE).await?;
            for row in &page {
                let done = match kind {
                    StateKind::Seen => rec.restore_seen(row.subject, &row.data),
                    StateKind::Cover => rec.restore_covers(row.subject, row.segment, &row.data),
                };
                match done {
                    Ok(()) => restored += 1,
                    Err(e) => {
                        unreadable += 1;
                        tracing::debug!(error = %e, kind = kind.as_str(), subject = row.subject, "stored state skipped");
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == STATE_PAGE as usize => {
                    after = Some((last.subject, last.segment))
                }
                _ => break,
            }
        }
    }
    Ok((restored, unreadable))
}

/// Writes the state changed since the last flush (one transaction). When the store fails
/// the changes are marked again, so the next flush retries them. Returns the rows written.
pub async fn flush_state(
    rec: &Arc<Recommender>,
    meta: &MetaStore,
    now_ms: i64,
) -> anyhow::Result<usize> {
    // Encoding touches every changed filter: off the async workers.
    let taker = rec.clone();
    let changes = tokio::task::spawn_blocking(move || taker.take_changes()).await?;
    if changes.is_empty() {
        return Ok(0);
    }
    let seen = changes.seen.iter().map(|(user, data)| StateRow {
        kind: StateKind::Seen,
        subject: *user,
        segment: 0,
        data: data.clone(),
        updated_at_ms: now_ms,
    });
    let covers = changes.covers.iter().map(|(video, segment, data)| StateRow {
        kind: StateKind::Cover,
        subject: *video,
        segment: *segment,
        data: data.clone(),
        updated_at_ms: now_ms,
    });
    let rows: Vec<StateRow> = seen.chain(covers).collect();
    match meta.recommend_state().upsert(&rows).await {
        Ok(()) => {
            metrics::counter!("recommend_state_rows_written_total").increment(rows.len() as u64);
            Ok(rows.len())
        }
        Err(e) => {
            rec.mark_changed(&changes);
            Err(e.into())
        }
    }
}

/// Flushes the changed state every `recommend.persist_interval_ms` until shutdown (the
/// node flushes once more after its tasks stopped, see `App::run_until_stopped`).
pub async fn persist_periodically(
    rec: Arc<Recommender>,
    meta: MetaStore,
    config: RecommendConfig,
    clock: SharedClock,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let every = Duration::from_millis(config.persist_interval_ms.max(100));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        // A failed flush is retried with the next one; the node keeps serving meanwhile.
        if let Err(e) = flush_state(&rec, &meta, clock.now_ms()).await {
            tracing::warn!(error = %e, "writing the recommender state failed");
        }
    }
}

fn apply_engagement(rec: &Recommender, config: &RecommendConfig, records: &[Record]) {
    for r in records {
        match Event::decode(&r.payload) {
            Ok(event) => {
                if let Some(e) = user_event(&event, config) {
                    rec.record(e);
                }
            }
            Err(e) => tracing::warn!(error = %e, offset = r.offset, "undecodable event skipped"),
        }
    }
}

/// What a consumer of the recommender needs.
#[derive(Clone)]
pub struct Feeder {
    pub rec: Arc<Recommender>,
    pub config: RecommendConfig,
    pub meta: MetaStore,
    pub log: Arc<dyn EventLog>,
    pub clock: SharedClock,
}

/// Follows `topic` from `next` until shutdown, applying events and reporting itself caught
/// up while idle.
pub async fn follow(
    feeder: Feeder,
    topic: &'static str,
    mut next: u64,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Feeder { rec, config, meta, log, clock } = feeder;
    loop {
        let records = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = log.read(topic, next, BATCH_RECORDS, BATCH_BYTES) => r?,
        };
        if let Some(last) = records.last() {
            next = last.offset + 1;
            if topic == VIDEOS_TOPIC {
                for r in &records {
                    match Event::decode(&r.payload) {
                        Ok(event) => apply_video_event(&rec, &meta, &event).await?,
                        Err(e) => tracing::warn!(error = %e, "undecodable event skipped"),
                    }
                }
            } else {
                apply_engagement(&rec, &config, &records);
            }
            continue;
        }
        rec.caught_up(clock.now_ms());
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = log.wait_for(topic, next) => { r?; }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The training job's offline metrics, in `/metrics`.
fn report_training(summary: &quicktok_recommend::TrainingSummary) {
    metrics::gauge!("recommend_trained_users").set(summary.users as f64);
    metrics::gauge!("recommend_trained_videos").set(summary.videos as f64);
    metrics::gauge!("recommend_trained_interactions").set(summary.interactions as f64);
    metrics::gauge!("recommend_trained_profiles").set(summary.profiles as f64);
    if let Some(r) = &summary.ranker {
        metrics::gauge!("recommend_ranker_examples").set(r.examples as f64);
        metrics::gauge!("recommend_ranker_holdout_auc").set(r.holdout_auc);
        metrics::gauge!("recommend_ranker_holdout_log_loss").set(r.holdout_log_loss);
        metrics::gauge!("recommend_ranker_fallback_auc").set(r.fallback_auc);
    }
}

/// Retrains every `recommend.train_interval_ms` until shutdown.
pub async fn train_periodically(
    rec: Arc<Recommender>,
    config: RecommendConfig,
    clock: SharedClock,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let every = Duration::from_millis(config.train_interval_ms.max(60_000));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let trainer = rec.clone();
        let now = clock.now_ms();
        let summary = tokio::task::spawn_blocking(move || trainer.train(now)).await?;
        report_training(&summary);
        tracing::info!(?summary, "recommender retrained");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quicktok_core::Id;

    #[test]
    fn watch_reports_become_completions_skips_or_plain_watches() {
        let config = RecommendConfig::default();
        let watched = |watched_ms, duration_ms| Event::VideoWatched {
            video_id: Id(1),
            user_id: Id(2),
            watched_ms,
            duration_ms,
            at_ms: 5,
        };
        let signal = |e: Event| user_event(&e, &config).map(|u| u.signal);
        assert_eq!(signal(watched(9_500, Some(10_000))), Some(Signal::Completed));
        assert_eq!(signal(watched(1_000, Some(10_000))), Some(Signal::Skipped));
        assert_eq!(signal(watched(5_000, Some(10_000))), Some(Signal::Watched));
        assert_eq!(signal(watched(5_000, None)), Some(Signal::Watched));
        let unlike = Event::VideoLiked {
            video_id: Id(1),
            author: Id(3),
            user_id: Id(2),
            liked: false,
            at_ms: 1,
        };
        assert_eq!(signal(unlike), None);
    }
}
