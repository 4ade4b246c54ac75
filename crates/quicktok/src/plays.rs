//! Play statistics for tiering: a durable consumer of the `views` topic that adds each
//! qualified view to its video's hourly play count in the metadata store.
//!
//! Each batch's plays also go to the counter service (`plays` of each video), which shows
//! them as the videos' view counts.
//!
//! It commits its log offset only after the counts are stored, so a crash replays at most one
//! batch; such a replay counts those plays twice, which tiering (a top-10% cut and
//! day-scale thresholds) tolerates, and nothing user-visible reads these counts.

use std::sync::Arc;
use std::time::Duration;

use quicktok_core::Shutdown;
use quicktok_log::EventLog;
use quicktok_meta::{MetaStore, PlayDelta};
use quicktok_rank::{VIEWS_TOPIC, ViewRecord};
use quicktok_social::{CounterKey, CounterService, Metric};

/// The consumer's name in the log.
const CONSUMER: &str = "plays";
const BATCH_RECORDS: usize = 8192;
const BATCH_BYTES: usize = 4 << 20;
/// Hourly rows older than this are pruned: tiering looks back 7 days.
const KEEP_MS: i64 = 8 * 86_400_000;

/// Reads views from the log and records plays until `shutdown`.
pub async fn run(
    log: Arc<dyn EventLog>,
    meta: MetaStore,
    counters: Arc<CounterService>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut next = log.committed(VIEWS_TOPIC, CONSUMER).await?.unwrap_or(0);
    let mut last_prune_hour = i64::MIN;
    while let Some(records) = crate::consumer::next_batch(
        log.as_ref(),
        VIEWS_TOPIC,
        next,
        BATCH_RECORDS,
        BATCH_BYTES,
        &shutdown,
    )
    .await?
    {
        let after = crate::consumer::after(&records, next);
        let mut deltas = Vec::with_capacity(records.len());
        let mut newest = i64::MIN;
        for record in &records {
            match ViewRecord::decode(&record.payload) {
                Ok(ViewRecord::View(view)) => {
                    newest = newest.max(view.at_ms);
                    deltas.push(PlayDelta { video_id: view.video_id, at_ms: view.at_ms, plays: 1 });
                }
                Ok(ViewRecord::Tick { .. }) => {}
                Err(e) => {
                    tracing::warn!(offset = record.offset, error = %e, "skipping undecodable view record")
                }
            }
        }
        if let Err(e) = meta.plays().record(&deltas).await {
            // Retry the same batch: the offset is not committed.
            tracing::warn!(error = %e, "recording plays failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        for delta in &deltas {
            let plays = i64::try_from(delta.plays).unwrap_or(i64::MAX);
            counters.add(CounterKey::video(delta.video_id, Metric::Plays), plays);
        }
        log.commit(VIEWS_TOPIC, CONSUMER, after).await?;
        next = after;
        let hour = newest.div_euclid(3_600_000);
        if newest != i64::MIN && hour > last_prune_hour {
            last_prune_hour = hour;
            if let Err(e) = meta.plays().prune(newest - KEEP_MS).await {
                tracing::warn!(error = %e, "pruning old play counts failed");
            }
        }
    }
    Ok(())
}
