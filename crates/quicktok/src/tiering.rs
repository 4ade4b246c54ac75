//! Wiring for blob tiering: the play statistics of the metadata store as the tiering job's
//! activity source, and the daily schedule.

use std::sync::Arc;
use std::time::Duration;

use quicktok_blob::tiering::{ActivitySource, BlobActivity, TieringJob};
use quicktok_blob::{BlobError, BlobStore, StorageClass};
use quicktok_core::Shutdown;
use quicktok_core::clock::SharedClock;
use quicktok_meta::MetaStore;

/// Activity of every video blob: plays from `video_plays_hourly`, archive flags from
/// `videos`, the current class from the blob store (one `stat` per blob: in memory for the
/// volume engine, a HEAD on S3, acceptable once a day).
pub struct MetaActivity {
    pub meta: MetaStore,
    pub blobs: Arc<dyn BlobStore>,
}

#[async_trait::async_trait]
impl ActivitySource for MetaActivity {
    async fn activity(&self, now_ms: i64) -> quicktok_blob::Result<Vec<BlobActivity>> {
        let rows = self
            .meta
            .plays()
            .tiering_activity(now_ms)
            .await
            .map_err(|e| BlobError::Unavailable(format!("play statistics: {e}")))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            // A blob recorded in the metadata but gone from the store has nothing to move.
            let Some(meta) = self.blobs.stat(row.blob_id).await? else { continue };
            out.push(BlobActivity {
                id: row.blob_id,
                class: meta.class,
                plays_7d: row.plays_7d,
                plays_1d: row.plays_1d,
                last_play_ms: row.last_play_ms,
                created_at_ms: row.created_at_ms,
                archived: row.archived,
            });
        }
        Ok(out)
    }
}

/// Runs `job` every day at its configured hour until `shutdown`.
pub async fn run_daily(
    job: TieringJob,
    clock: SharedClock,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    loop {
        let wait = u64::try_from(job.until_next_run(clock.now_ms())).unwrap_or(0);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(wait.max(1000))) => {}
        }
        match job.run_once().await {
            Ok(report) => tracing::info!(?report, "tiering run finished"),
            Err(e) => tracing::warn!(error = %e, "tiering run failed"),
        }
    }
}

/// Moves every blob of a video to `class` (creator archive / unarchive), best effort: a blob
/// that fails stays where it is and the daily job retries it.
pub async fn move_video(
    meta: &MetaStore,
    blobs: &dyn BlobStore,
    video: quicktok_core::Id,
    class: StorageClass,
) -> usize {
    let Ok(list) = meta.video_blobs().for_video(video).await else { return 0 };
    let mut moved = 0;
    for b in list {
        match blobs.set_class(b.blob_id, class).await {
            Ok(_) => moved += 1,
            Err(e) => tracing::warn!(blob = %b.blob_id, error = %e, "archive move failed"),
        }
    }
    moved
}

/// Reacts to `video_archived` events on the `videos` topic by moving the video's blobs to
/// cold storage (archive) or back to warm (unarchive; the daily job promotes it further if it
/// gets played). Durable consumer: a restart resumes after the last handled event.
pub async fn run_archive_consumer(
    log: Arc<dyn quicktok_log::EventLog>,
    meta: MetaStore,
    blobs: Arc<dyn BlobStore>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    use quicktok_core::Event;
    const TOPIC: &str = "videos";
    const CONSUMER: &str = "tiering-archive";
    let mut next = log.committed(TOPIC, CONSUMER).await?.unwrap_or(0);
    while let Some(records) =
        crate::consumer::next_batch(log.as_ref(), TOPIC, next, 256, 1 << 20, &shutdown).await?
    {
        let after = crate::consumer::after(&records, next);
        for record in &records {
            if let Ok(Event::VideoArchived { video_id, archived, .. }) =
                Event::decode(&record.payload)
            {
                let class = if archived { StorageClass::Cold } else { StorageClass::Warm };
                let moved = move_video(&meta, blobs.as_ref(), video_id, class).await;
                tracing::info!(%video_id, archived, moved, "archive request applied");
            }
        }
        log.commit(TOPIC, CONSUMER, after).await?;
        next = after;
    }
    Ok(())
}
