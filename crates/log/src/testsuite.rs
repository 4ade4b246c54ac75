//! Backend-neutral conformance tests for [`EventLog`] implementations.
//!
//! Every check takes a fresh, empty log and panics (like `assert!`) on a violation, so a
//! backend's test just calls [`run_all`] with a factory:
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use quicktok_log::{EventLog, FileLog, LogConfig, testsuite};
//! testsuite::run_all(|| async {
//!     let dir = std::env::temp_dir().join(format!("log-{}", std::process::id()));
//!     # let _ = std::fs::remove_dir_all(&dir);
//!     Arc::new(FileLog::open(dir, LogConfig::default()).await.unwrap()) as Arc<dyn EventLog>
//! })
//! .await;
//! # }
//! ```
//!
//! Compiled in normal builds (not only under `cfg(test)`) so other crates' tests and the
//! future JetStream backend can run it.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{EventLog, NewRecord, Record};
use crate::error::LogError;

/// Names of the checks, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "append_assigns_contiguous_offsets",
    "topics_are_independent",
    "read_limits",
    "payload_sizes",
    "offset_for_time",
    "consumer_offsets",
    "wait_for_wakes_on_append",
    "concurrent_appends",
    "invalid_names",
    "health_and_stats",
    "close",
];

/// Runs every check, each on a fresh log from `factory`, closing it afterwards.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventLog>>,
{
    for name in CHECKS {
        let log = factory().await;
        run_check(name, Arc::clone(&log)).await;
        ok(log.close().await, "close");
    }
}

/// Runs one check by name (see [`CHECKS`]).
pub async fn run_check(name: &str, log: Arc<dyn EventLog>) {
    match name {
        "append_assigns_contiguous_offsets" => append_assigns_contiguous_offsets(log).await,
        "topics_are_independent" => topics_are_independent(log).await,
        "read_limits" => read_limits(log).await,
        "payload_sizes" => payload_sizes(log).await,
        "offset_for_time" => offset_for_time(log).await,
        "consumer_offsets" => consumer_offsets(log).await,
        "wait_for_wakes_on_append" => wait_for_wakes_on_append(log).await,
        "concurrent_appends" => concurrent_appends(log).await,
        "invalid_names" => invalid_names(log).await,
        "health_and_stats" => health_and_stats(log).await,
        "close" => close(log).await,
        other => panic!("unknown event log check {other:?}"),
    }
}

#[track_caller]
fn ok<T>(r: Result<T, LogError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

#[track_caller]
fn assert_err<T: Debug>(r: Result<T, LogError>, what: &str, want: impl Fn(&LogError) -> bool) {
    match r {
        Err(e) if want(&e) => {}
        other => panic!("{what}: unexpected result {other:?}"),
    }
}

fn recs(range: std::ops::Range<u64>) -> Vec<NewRecord> {
    range.map(|i| NewRecord::new(1_000 + i as i64, format!("record-{i}"))).collect()
}

fn offsets(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.offset).collect()
}

/// Offsets start at 0, are consecutive across calls, and reads return what was appended.
pub async fn append_assigns_contiguous_offsets(log: Arc<dyn EventLog>) {
    assert_eq!(ok(log.end_offset("t").await, "end_offset"), 0);
    assert_eq!(ok(log.start_offset("t").await, "start_offset"), 0);
    assert!(ok(log.read("t", 0, 10, 1 << 20).await, "read").is_empty());
    assert!(ok(log.topics().await, "topics").is_empty());

    assert_eq!(ok(log.append("t", recs(0..3)).await, "append"), vec![0, 1, 2]);
    assert_eq!(ok(log.append("t", recs(3..4)).await, "append"), vec![3]);
    assert_eq!(ok(log.append_one("t", 7, b"x".to_vec()).await, "append_one"), 4);
    assert_eq!(ok(log.append("t", Vec::new()).await, "empty append"), Vec::<u64>::new());
    assert_eq!(ok(log.end_offset("t").await, "end_offset"), 5);
    assert_eq!(ok(log.start_offset("t").await, "start_offset"), 0);

    let all = ok(log.read("t", 0, 100, 1 << 20).await, "read");
    assert_eq!(offsets(&all), vec![0, 1, 2, 3, 4]);
    for (i, r) in all.iter().take(4).enumerate() {
        assert_eq!(r.timestamp_ms, 1_000 + i as i64);
        assert_eq!(r.payload, format!("record-{i}").into_bytes());
    }
    assert_eq!((all[4].timestamp_ms, all[4].payload.as_slice()), (7, b"x".as_slice()));
    assert_eq!(offsets(&ok(log.read("t", 3, 100, 1 << 20).await, "read")), vec![3, 4]);
    assert!(ok(log.read("t", 5, 100, 1 << 20).await, "read at end").is_empty());
    assert!(ok(log.read("t", 500, 100, 1 << 20).await, "read past end").is_empty());
    assert_eq!(ok(log.topics().await, "topics"), vec!["t".to_owned()]);
}

/// Each topic has its own offset space and contents.
pub async fn topics_are_independent(log: Arc<dyn EventLog>) {
    ok(log.append("a", recs(0..3)).await, "append a");
    assert_eq!(ok(log.append("b", recs(10..12)).await, "append b"), vec![0, 1]);
    assert_eq!(ok(log.append("a", recs(3..4)).await, "append a"), vec![3]);
    assert_eq!(ok(log.end_offset("a").await, "end a"), 4);
    assert_eq!(ok(log.end_offset("b").await, "end b"), 2);
    let b = ok(log.read("b", 0, 10, 1 << 20).await, "read b");
    assert_eq!(b[0].payload, b"record-10".to_vec());
    assert_eq!(ok(log.topics().await, "topics"), vec!["a".to_owned(), "b".to_owned()]);
}

/// `max_records` and `max_bytes` bound a read, yet a read makes progress.
pub async fn read_limits(log: Arc<dyn EventLog>) {
    let payloads: Vec<NewRecord> = (0..10).map(|i| NewRecord::new(i, vec![i as u8; 10])).collect();
    ok(log.append("t", payloads).await, "append");
    assert_eq!(offsets(&ok(log.read("t", 2, 3, 1 << 20).await, "read")), vec![2, 3, 4]);
    assert_eq!(offsets(&ok(log.read("t", 0, 100, 25).await, "read")), vec![0, 1]);
    assert_eq!(offsets(&ok(log.read("t", 0, 100, 30).await, "read")), vec![0, 1, 2]);
    // A budget smaller than one record still returns that record.
    assert_eq!(offsets(&ok(log.read("t", 4, 100, 1).await, "read")), vec![4]);
    assert_eq!(offsets(&ok(log.read("t", 4, 100, 0).await, "read")), vec![4]);
    assert!(ok(log.read("t", 0, 0, 1 << 20).await, "read 0 records").is_empty());
    assert_eq!(offsets(&ok(log.read("t", 8, 100, 1 << 20).await, "read tail")), vec![8, 9]);
}

/// Empty and large payloads round-trip byte for byte.
pub async fn payload_sizes(log: Arc<dyn EventLog>) {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let input = vec![
        NewRecord::new(1, Vec::new()),
        NewRecord::new(2, big.clone()),
        NewRecord::new(3, vec![0]),
        NewRecord::new(i64::MIN, Vec::new()),
        NewRecord::new(i64::MAX, vec![255; 3]),
    ];
    ok(log.append("t", input.clone()).await, "append");
    let out = ok(log.read("t", 0, 100, usize::MAX).await, "read");
    assert_eq!(out.len(), input.len());
    for (o, i) in out.iter().zip(&input) {
        assert_eq!((o.timestamp_ms, &o.payload), (i.timestamp_ms, &i.payload));
    }
}

/// `offset_for_time` returns the first record (by offset) at or after the time, with
/// non-monotonic timestamps.
pub async fn offset_for_time(log: Arc<dyn EventLog>) {
    assert_eq!(ok(log.offset_for_time("t", 0).await, "unknown topic"), 0);
    let ts = [100, 105, 103, 110, 108, 120, 119, 130];
    let input: Vec<NewRecord> = ts.iter().map(|t| NewRecord::new(*t, vec![1, 2, 3])).collect();
    ok(log.append("t", input).await, "append");
    for (t, want) in [
        (i64::MIN, 0),
        (100, 0),
        (101, 1),
        (104, 1),
        (105, 1),
        (106, 3),
        (110, 3),
        (111, 5),
        (119, 5),
        (121, 7),
        (130, 7),
        (131, 8),
        (i64::MAX, 8),
    ] {
        assert_eq!(ok(log.offset_for_time("t", t).await, "offset_for_time"), want, "t={t}");
    }
}

/// Commits are read back, may move backwards, are per topic and consumer, and cannot pass
/// the end of the topic.
pub async fn consumer_offsets(log: Arc<dyn EventLog>) {
    assert_eq!(ok(log.committed("t", "ranker").await, "committed"), None);
    ok(log.append("t", recs(0..5)).await, "append");
    ok(log.commit("t", "ranker", 3).await, "commit");
    assert_eq!(ok(log.committed("t", "ranker").await, "committed"), Some(3));
    ok(log.commit("t", "ranker", 5).await, "commit to end");
    ok(log.commit("t", "ranker", 1).await, "rewind");
    assert_eq!(ok(log.committed("t", "ranker").await, "committed"), Some(1));
    assert_eq!(ok(log.committed("t", "other").await, "committed"), None);
    assert_eq!(ok(log.committed("u", "ranker").await, "committed"), None);
    ok(log.commit("u", "ranker", 0).await, "commit 0 on an empty topic");
    assert_eq!(ok(log.committed("u", "ranker").await, "committed"), Some(0));
    assert_err(log.commit("t", "ranker", 6).await, "commit past end", |e| {
        matches!(e, LogError::OffsetOutOfRange { offset: 6, end: 5, .. })
    });
    assert_eq!(ok(log.committed("t", "ranker").await, "committed"), Some(1));
}

/// `wait_for` returns at once for an existing record and wakes promptly on append.
pub async fn wait_for_wakes_on_append(log: Arc<dyn EventLog>) {
    let quick = Duration::from_secs(5);
    ok(log.append("t", recs(0..2)).await, "append");
    let end = tokio::time::timeout(quick, log.wait_for("t", 1)).await;
    assert!(matches!(end, Ok(Ok(2))), "existing record: {end:?}");

    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for("t", 2).await })
    };
    let other = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for("fresh", 0).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "woke before the append");
    ok(log.append("t", recs(2..3)).await, "append");
    let woke = tokio::time::timeout(quick, waiter).await;
    assert!(matches!(woke, Ok(Ok(Ok(3)))), "waiter: {woke:?}");
    ok(log.append("fresh", recs(0..1)).await, "append to a new topic");
    let woke = tokio::time::timeout(quick, other).await;
    assert!(matches!(woke, Ok(Ok(Ok(1)))), "waiter on a new topic: {woke:?}");

    let timed_out = tokio::time::timeout(Duration::from_millis(30), log.wait_for("t", 10)).await;
    assert!(timed_out.is_err(), "waiting for a record that does not exist must not return");
}

/// Many tasks appending at once get unique, contiguous offsets, each task's records in
/// order, and every record reads back.
pub async fn concurrent_appends(log: Arc<dyn EventLog>) {
    const TASKS: u64 = 32;
    const PER_TASK: u64 = 10;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = Arc::clone(&log);
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..PER_TASK {
                let payload = format!("{task}:{i}").into_bytes();
                let batch = vec![NewRecord::new(i as i64, payload.clone()); 1 + (i % 2) as usize];
                let offs = ok(log.append("t", batch).await, "concurrent append");
                mine.extend(offs.into_iter().map(|o| (o, payload.clone())));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        let mine = match h.await {
            Ok(m) => m,
            Err(e) => panic!("append task failed: {e}"),
        };
        assert!(mine.windows(2).all(|w| w[0].0 < w[1].0), "a task's offsets must increase");
        all.extend(mine);
    }
    all.sort();
    let total = TASKS * (PER_TASK + PER_TASK / 2);
    assert_eq!(all.iter().map(|(o, _)| *o).collect::<Vec<_>>(), (0..total).collect::<Vec<_>>());
    let read = ok(log.read("t", 0, usize::MAX, usize::MAX).await, "read");
    assert_eq!(read.len() as u64, total);
    for (r, (o, p)) in read.iter().zip(&all) {
        assert_eq!((&r.offset, &r.payload), (o, p));
    }
}

/// Names outside the portable alphabet are rejected everywhere.
pub async fn invalid_names(log: Arc<dyn EventLog>) {
    let bad = |e: &LogError| matches!(e, LogError::InvalidName { .. });
    for name in ["", "a/b", "a.b", "../x", "sp ace"] {
        assert_err(log.append(name, recs(0..1)).await, "append", bad);
        assert_err(log.read(name, 0, 1, 1).await, "read", bad);
        assert_err(log.end_offset(name).await, "end_offset", bad);
        assert_err(log.commit("t", name, 0).await, "commit", bad);
        assert_err(log.committed(name, "c").await, "committed", bad);
    }
}

/// A fresh log is healthy and its counters move.
pub async fn health_and_stats(log: Arc<dyn EventLog>) {
    ok(log.ping().await, "ping");
    let before = log.stats();
    ok(log.append("t", recs(0..3)).await, "append");
    ok(log.read("t", 0, 10, 1 << 20).await, "read");
    let after = log.stats();
    assert_eq!(after.append_calls - before.append_calls, 1);
    assert_eq!(after.records_appended - before.records_appended, 3);
    assert!(after.payload_bytes_appended > before.payload_bytes_appended);
    assert_eq!(after.records_read - before.records_read, 3);
    ok(log.ping().await, "ping");
}

/// After `close`, writes and waits fail with `Closed`, and a pending wait is released.
pub async fn close(log: Arc<dyn EventLog>) {
    ok(log.append("t", recs(0..1)).await, "append");
    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for("t", 5).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    ok(log.close().await, "close");
    let released = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(released, Ok(Ok(Err(LogError::Closed)))), "waiter: {released:?}");
    let closed = |e: &LogError| matches!(e, LogError::Closed);
    assert_err(log.append("t", recs(1..2)).await, "append after close", closed);
    assert_err(log.commit("t", "c", 0).await, "commit after close", closed);
    assert_err(log.ping().await, "ping after close", closed);
    ok(log.close().await, "second close");
}
