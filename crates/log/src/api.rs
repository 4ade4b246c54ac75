//! The backend-neutral [`EventLog`] trait and the values it exchanges. The embedded
//! [`crate::FileLog`] implements it today; a NATS JetStream backend is meant to follow and
//! run the same [`crate::testsuite`].

use async_trait::async_trait;

use crate::error::{LogError, Result};

/// Longest topic or consumer name.
pub const MAX_NAME_LEN: usize = 64;

/// A record to append: an opaque payload and the producer's timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// When the event happened, Unix milliseconds, supplied by the producer. Need not be
    /// monotonic (see [`EventLog::offset_for_time`]).
    pub timestamp_ms: i64,
    /// The encoded event. The log never looks inside.
    pub payload: Vec<u8>,
}

impl NewRecord {
    /// Builds a record.
    pub fn new(timestamp_ms: i64, payload: impl Into<Vec<u8>>) -> Self {
        NewRecord { timestamp_ms, payload: payload.into() }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in its topic: 0 for the first record ever appended, then +1 per record.
    pub offset: u64,
    /// The producer's timestamp, Unix milliseconds.
    pub timestamp_ms: i64,
    /// The payload as appended.
    pub payload: Vec<u8>,
}

/// Counters since the log was opened, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Successful `append` calls with at least one record.
    pub append_calls: u64,
    /// Records appended (acknowledged).
    pub records_appended: u64,
    /// Payload bytes appended (acknowledged), without framing.
    pub payload_bytes_appended: u64,
    /// Write batches the writer performed (one batch serves many appends).
    pub write_batches: u64,
    /// fsyncs of segment data (`fdatasync`). With group commit this is far below
    /// `append_calls` under concurrency.
    pub fsyncs: u64,
    /// Records returned by `read`.
    pub records_read: u64,
}

/// What [`EventLog::apply_retention`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Whole segments deleted, across all topics.
    pub segments_deleted: u64,
    /// Records in them.
    pub records_deleted: u64,
    /// Their size on disk (framing included).
    pub bytes_deleted: u64,
}

/// Checks a topic or consumer name: 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 _ -`.
///
/// The alphabet is what both file names and JetStream stream/consumer names accept, so a
/// name valid for one backend is valid for all.
pub fn validate_name(kind: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(LogError::InvalidName { kind, name: name.to_owned() }) }
}

/// An append-only log of opaque records, organised in named topics.
///
/// Each topic has its own offset space: the first record ever appended gets offset 0, the
/// next 1, and so on without gaps. Retention removes records from the front only, so the
/// readable records of a topic are always the contiguous range
/// `start_offset..end_offset`.
///
/// Object safe: share it as `Arc<dyn EventLog>`.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `records` to `topic` (created on first use) and returns their offsets, which
    /// are consecutive and in the order given. Returns only once the records are as durable
    /// as the backend's sync policy promises; they are readable by then.
    ///
    /// An empty `records` returns an empty vec and writes nothing. If it returns an error the
    /// records may or may not have been stored (as with any remote write): producers that
    /// must not duplicate should make their events idempotent.
    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<u64>>;

    /// Reads records of `topic` in offset order, starting at `from_offset`.
    ///
    /// - Stops after `max_records`, or before the payloads would exceed `max_bytes` in total,
    ///   but always returns at least one record when one is available (so a consumer with a
    ///   small byte budget still makes progress). `max_records == 0` returns nothing.
    /// - `from_offset` below [`EventLog::start_offset`] (deleted by retention) starts at the
    ///   earliest retained record instead of failing; compare `records[0].offset` with
    ///   `from_offset` to detect the skipped gap.
    /// - At or past the end (or for a topic never written) returns an empty vec.
    async fn read(
        &self,
        topic: &str,
        from_offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>>;

    /// The offset of the first retained record (in offset order) whose timestamp is
    /// `>= timestamp_ms`, or [`EventLog::end_offset`] when there is none.
    ///
    /// Because producers' clocks make timestamps slightly non-monotonic, this is defined by
    /// offset order, not by sorting on time: no record before the returned offset has a
    /// timestamp `>= timestamp_ms`, so a consumer that starts reading there sees every record
    /// at or after the time (and possibly a few older, late records, which it filters).
    async fn offset_for_time(&self, topic: &str, timestamp_ms: i64) -> Result<u64>;

    /// The first retained offset (0 for a topic never written or never trimmed).
    async fn start_offset(&self, topic: &str) -> Result<u64>;

    /// One past the last record's offset: the offset the next append will get.
    async fn end_offset(&self, topic: &str) -> Result<u64>;

    /// Durably records that the named consumer of `topic` has processed everything below
    /// `offset`, i.e. `offset` is the next one it wants (Kafka's convention). Moving
    /// backwards is allowed (replays). Fails with [`LogError::OffsetOutOfRange`] past
    /// [`EventLog::end_offset`]. Commits of one consumer should not race each other; the
    /// last one to finish wins.
    async fn commit(&self, topic: &str, consumer: &str, offset: u64) -> Result<()>;

    /// The consumer's last committed offset, `None` if it never committed.
    async fn committed(&self, topic: &str, consumer: &str) -> Result<Option<u64>>;

    /// Waits until the record at `offset` exists (the end offset is past it) and returns the
    /// end offset then. Returns at once if it already exists. Fails with
    /// [`LogError::Closed`] when the log is closed while waiting. Cancel-safe: wrap it in
    /// `tokio::time::timeout` to bound the wait.
    async fn wait_for(&self, topic: &str, offset: u64) -> Result<u64>;

    /// Deletes, per topic, the oldest whole segments whose newest record is older than the
    /// configured retention at `now_ms`. Never deletes the segment being appended to, and only
    /// ever a prefix of a topic (a segment is kept while an older one is kept), so offsets
    /// stay contiguous. Backends with their own age limit may do nothing.
    async fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport>;

    /// Names of the topics holding (or having held) records, sorted.
    async fn topics(&self) -> Result<Vec<String>>;

    /// Readiness: `Ok` when the log accepts appends.
    async fn ping(&self) -> Result<()>;

    /// Counters since open.
    fn stats(&self) -> LogStats;

    /// Flushes and stops: later appends and commits fail with [`LogError::Closed`] and
    /// pending `wait_for` calls return it. Appends already submitted complete first.
    /// Idempotent.
    async fn close(&self) -> Result<()>;

    /// Appends one record and returns its offset.
    async fn append_one(&self, topic: &str, timestamp_ms: i64, payload: Vec<u8>) -> Result<u64> {
        let offsets = self.append(topic, vec![NewRecord { timestamp_ms, payload }]).await?;
        offsets
            .first()
            .copied()
            .ok_or_else(|| LogError::Backend("append of one record returned no offset".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["users", "views", "a", "A-b_9", &"x".repeat(MAX_NAME_LEN)] {
            assert!(validate_name("topic", ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a.b", "a/b", "..", "a b", "ü", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(validate_name("topic", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trait_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn EventLog>>) {}
        takes(None);
    }
}
