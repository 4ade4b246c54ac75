//! The read side every durable log consumer of the binary shares: the next batch after an
//! offset, waiting for one when the topic has nothing new, and giving up on shutdown.

use quicktok_core::Shutdown;
use quicktok_log::{EventLog, Record};

/// The next non-empty batch of `topic` from offset `next` (at most `max_records` records
/// or about `max_bytes`), waiting for appends as long as there are none; `None` once
/// `shutdown` is requested. The consumer commits `last.offset + 1` after handling it.
pub async fn next_batch(
    log: &dyn EventLog,
    topic: &str,
    next: u64,
    max_records: usize,
    max_bytes: usize,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<Vec<Record>>> {
    loop {
        let records = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            r = log.read(topic, next, max_records, max_bytes) => r?,
        };
        if !records.is_empty() {
            return Ok(Some(records));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            r = log.wait_for(topic, next) => { r?; }
        }
    }
}

/// The offset to commit after handling `records` read from `next`.
pub fn after(records: &[Record], next: u64) -> u64 {
    records.last().map_or(next, |r| r.offset + 1)
}
