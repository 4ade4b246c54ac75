//! QuickTok event log: every event other parts of the platform react to (user registered,
//! video published, view, like…) is appended here, and consumers (rankers, pipelines,
//! notifications) read it back by offset or by time.
//!
//! The log stores opaque bytes; event meanings live in `quicktok-core`. [`EventLog`] is the
//! backend-neutral contract (a NATS JetStream backend is planned and must pass the same
//! [`testsuite`]); [`FileLog`] is the embedded implementation described below.
//!
//! # Model
//!
//! Named topics (`"users"`, `"views"`…), each an independent sequence of records numbered
//! from offset 0 without gaps. A record is `(offset, timestamp_ms, payload)`; the timestamp is
//! the producer's and may be slightly out of order. Retention removes whole segments from the
//! front, so the readable records are always `start_offset..end_offset`. Named consumers
//! durably commit "next offset to read" per topic.
//!
//! # Files
//!
//! ```text
//! <dir>/LOCK                                  flock(2)ed while open: one instance per dir
//! <dir>/topics/<topic>/<base:020>.log         segment: records from offset <base> on
//! <dir>/topics/<topic>/<base:020>.idx         index snapshot of a sealed segment
//! <dir>/consumers/<topic>/<consumer>.offset   committed offset, decimal text
//! ```
//!
//! A segment is a plain concatenation of frames (see [`format`](mod@format)):
//! `[len u32][crc32c u32][offset u64][timestamp i64][payload]`, little-endian, where `len`
//! counts the bytes after the 8-byte header and the CRC-32C covers exactly those. A segment
//! is rolled before a record would take it past `segment_bytes`.
//!
//! In memory every segment has a sparse index: one entry per `index_interval_bytes` of
//! records, holding the offset, its file position and the running maximum timestamp of
//! the segment up to the end of that entry's block. Reads binary-search it, then parse
//! forward from that position with positional reads (`pread`), verifying every record's
//! CRC. [`EventLog::offset_for_time`] finds the first segment whose maximum timestamp
//! reaches the time, binary-searches the running maxima (monotonic even when timestamps are
//! not) and scans one block, so its answer is exact: the first record in offset order with
//! a timestamp at or after the time.
//!
//! # Recovery
//!
//! On open each topic is loaded:
//! - **Sealed segments** (all but the last): the `.idx` snapshot written when the segment
//!   was sealed is used if its checksum, base offset and recorded file length all match;
//!   otherwise (or with `verify_on_open`) the segment is scanned and every record checked.
//!   Any bad record in a sealed segment is [`LogError::Corrupt`]: a sealed segment was
//!   fsynced before its successor existed, so damage there is not a torn write and the log
//!   refuses to silently drop data. Damage that the snapshot hides is caught on read (each
//!   record's CRC is checked whenever it is read), also as `Corrupt`.
//! - **The last segment** is always scanned. At the first record that is short, has an
//!   impossible length or a CRC mismatch, the file is truncated (and synced): that is the
//!   torn tail of writes that were never acknowledged under `SyncPolicy::Always`. A
//!   CRC-valid record with the wrong offset is `Corrupt` instead.
//! - Segments must chain (`base` of each = end of the previous), else `Corrupt`.
//!
//! Cost: opening reads each topic's last segment (up to `segment_bytes`) plus any sealed
//! segment without a valid snapshot. Each segment keeps one open file descriptor; very large
//! logs need a raised `RLIMIT_NOFILE`.
//!
//! # Durability promise
//!
//! With **`SyncPolicy::Always`** (the default): `append` returns `Ok` only after every
//! record of the call has been written and `fdatasync`ed (and, for a new segment file, its
//! directory entry fsynced). An acknowledged record survives a process crash, a kernel crash
//! and power loss, provided the storage honours flushes. Records become readable (and wake
//! `wait_for`) only once durable, so no consumer ever acts on a record a crash could take
//! back. Concurrent appends are group-committed: one writer thread takes everything queued
//! (up to `max_batch_records`), writes each topic's share with one write and does one
//! `fdatasync` per touched topic for the whole batch, then acknowledges all of them.
//!
//! With **`SyncPolicy::Interval(d)`**: `append` returns once the records are handed to the
//! OS, and they are readable at once; dirty segments are fsynced every `d`. A process crash
//! loses nothing acknowledged; a kernel crash or power loss can lose records acknowledged in
//! roughly the last `d` (plus one batch). Lost records are always a suffix of a topic: the
//! log never has holes, and a sealed segment is always fsynced before the next one is
//! started.
//!
//! With **`SyncPolicy::Never`** (tests only): nothing is fsynced; a process crash loses
//! nothing, power loss can lose anything not yet flushed by the kernel.
//!
//! Under every policy: an `append` that returns an error may or may not have stored its
//! records (an ambiguous outcome, as for any remote log); a multi-record append is not
//! atomic across a crash (a prefix of it may survive); after a write or fsync error the log
//! refuses further appends ([`LogError::Poisoned`]) until reopened, because the page cache
//! can no longer be trusted. Consumer commits are durable when `commit` returns (temp file,
//! fsync, rename, directory fsync; not fsynced under `Never`). After a power loss under
//! `Interval`/`Never` a committed consumer offset may point past the recovered end of its
//! topic; consumers should clamp it to [`EventLog::end_offset`].
//!
//! # Cost
//!
//! - append: encoding plus, per batch and topic, one `pwrite` and (under `Always`) one
//!   `fdatasync`; latency is about one fsync, throughput grows with concurrency.
//! - read: an in-memory binary search, then sequential `pread`s of ≥16 KiB, parsing and
//!   CRC-checking from the index entry before the requested offset (at most
//!   `index_interval_bytes` of skipped records), and one payload copy per record.
//! - memory: 24 bytes per index entry, i.e. about 0.75 MB per GiB of log at the default
//!   32 KiB interval.
//! - Blocking file work runs on the writer thread or in `spawn_blocking`, never on the
//!   async runtime's workers.

mod api;
mod config;
mod error;
mod file;
pub mod format;
pub mod testsuite;

pub use api::{
    EventLog, LogStats, MAX_NAME_LEN, NewRecord, Record, RetentionReport, validate_name,
};
pub use config::{LogConfig, SyncPolicy};
pub use error::{LogError, Result};
pub use file::FileLog;
pub use format::{FRAME_OVERHEAD_BYTES, MAX_PAYLOAD_BYTES};
