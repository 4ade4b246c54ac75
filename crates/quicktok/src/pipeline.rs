//! The worker role's pipeline: a durable consumer of the `uploads` topic that turns each
//! `upload_completed` event into a job, and the runner that walks jobs through the stages.
//!
//! Enqueueing is idempotent (one job per video), and the consumer commits its offset only
//! after the jobs of a batch are stored, so a crash re-reads at most one batch and loses
//! nothing.

use std::sync::Arc;

use quicktok_core::{Event, Shutdown};
use quicktok_log::EventLog;
use quicktok_pipeline::jobs::{Job, JobStore};
use tokio::sync::Notify;

use crate::stages::keys;

/// The consumer's name in the log.
const CONSUMER: &str = "pipeline";
const TOPIC: &str = "uploads";

/// A creator's priority in the queue (F3.8: creators with many followers first). Every
/// creator has the same priority until follower counts exist (the social issue).
fn priority_of(_owner: quicktok_core::Id) -> i64 {
    0
}

/// Reads `upload_completed` events and enqueues a job per video until `shutdown`.
pub async fn run_enqueuer(
    log: Arc<dyn EventLog>,
    jobs: Arc<dyn JobStore>,
    wake: Arc<Notify>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut next = log.committed(TOPIC, CONSUMER).await?.unwrap_or(0);
    while let Some(records) =
        crate::consumer::next_batch(log.as_ref(), TOPIC, next, 256, 1 << 20, &shutdown).await?
    {
        let after = crate::consumer::after(&records, next);
        let mut added = false;
        for record in &records {
            let Ok(Event::UploadCompleted { upload_id, video_id, owner, at_ms, .. }) =
                Event::decode(&record.payload)
            else {
                continue;
            };
            let mut job = Job::new(video_id, owner, priority_of(owner), at_ms);
            job.state.insert(keys::UPLOAD_ID.into(), serde_json::to_value(upload_id)?);
            if jobs.enqueue(job).await? {
                tracing::info!(video = %video_id, upload = %upload_id, "processing queued");
                added = true;
            }
        }
        log.commit(TOPIC, CONSUMER, after).await?;
        next = after;
        if added {
            wake.notify_one();
        }
    }
    Ok(())
}
