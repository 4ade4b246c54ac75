//! The worker role's pipeline: a durable consumer of the `uploads` topic that turns each
//! `upload_completed` event into a job, and the runner that walks jobs through the stages.
//!
//! Enqueueing is idempotent (one job per video), and the consumer commits its offset only
//! after the jobs of a batch are stored, so a crash re-reads at most one batch and loses
//! nothing.

use std::sync::Arc;

use quicktok_core::{Event, Shutdown};
use quicktok_log::EventLog;
use quicktok_meta::{CounterKey, MetaStore};
use quicktok_pipeline::jobs::{Job, JobStore};
use tokio::sync::Notify;

use crate::stages::keys;

/// The consumer's name in the log.
const CONSUMER: &str = "pipeline";
const TOPIC: &str = "uploads";

/// A creator's priority in the queue (F3.8: creators with many followers first): the
/// order of magnitude of their follower count, so a creator with a million followers goes
/// before one with a thousand, and within a magnitude uploads go first come, first served.
fn priority_for_followers(followers: i64) -> i64 {
    let mut priority = 0;
    let mut n = followers.max(0);
    while n >= 10 {
        n /= 10;
        priority += 1;
    }
    priority
}

/// `owner`'s queue priority from the stored follower counter (flushed by the counter
/// service within seconds of a follow); 0 when it cannot be read, which only delays.
async fn priority_of(meta: &MetaStore, owner: quicktok_core::Id) -> i64 {
    let key = CounterKey { subject: "user", id: owner, metric: "followers" };
    match meta.counters().get(&[key]).await {
        Ok(values) => priority_for_followers(values.first().copied().unwrap_or(0)),
        Err(e) => {
            tracing::warn!(%owner, error = %e, "follower count unavailable; default priority");
            0
        }
    }
}

/// Reads `upload_completed` events and enqueues a job per video until `shutdown`.
pub async fn run_enqueuer(
    log: Arc<dyn EventLog>,
    jobs: Arc<dyn JobStore>,
    meta: MetaStore,
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
            let mut job = Job::new(video_id, owner, priority_of(&meta, owner).await, at_ms);
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

#[cfg(test)]
mod tests {
    use super::priority_for_followers;

    #[test]
    fn priority_is_the_follower_count_s_order_of_magnitude() {
        let cases = [(-3, 0), (0, 0), (9, 0), (10, 1), (999, 2), (1_000, 3), (1_000_000, 6)];
        for (followers, priority) in cases {
            assert_eq!(priority_for_followers(followers), priority, "{followers}");
        }
    }
}
