//! FileLog-specific behaviour: group commit, directory locking, retention, persistence of
//! consumer offsets across reopen, and the interval sync policy.

use std::sync::Arc;
use std::time::Duration;

use quicktok_log::{EventLog, FileLog, LogConfig, LogError, NewRecord, SyncPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches_concurrent_appends() {
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { sync: SyncPolicy::Always, ..LogConfig::default() };
    let log = Arc::new(FileLog::open(dir.path(), config).await.unwrap());
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let (log, barrier) = (Arc::clone(&log), Arc::clone(&barrier));
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut offsets = Vec::new();
            for i in 0..PER_TASK {
                let rec = NewRecord::new(i as i64, format!("{task}/{i}"));
                offsets.extend(log.append("views", vec![rec]).await.unwrap());
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..TASKS * PER_TASK).collect::<Vec<_>>(), "unique and contiguous");

    let stats = log.stats();
    assert_eq!(stats.append_calls, TASKS * PER_TASK);
    assert_eq!(stats.records_appended, TASKS * PER_TASK);
    assert!(
        stats.fsyncs < stats.append_calls,
        "group commit should need fewer fsyncs than appends: {stats:?}"
    );
    assert!(stats.write_batches < stats.append_calls, "{stats:?}");
    eprintln!(
        "group commit: {} appends, {} batches, {} fsyncs",
        stats.append_calls, stats.write_batches, stats.fsyncs
    );
    log.close().await.unwrap();

    // Everything acknowledged is there after reopen.
    let log = FileLog::open(dir.path(), LogConfig::default()).await.unwrap();
    assert_eq!(log.end_offset("views").await.unwrap(), TASKS * PER_TASK);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_directory_is_open_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::open(dir.path(), crate::small(1000)).await;
    match FileLog::open(dir.path(), crate::small(1000)).await {
        Err(LogError::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    log.close().await.unwrap();
    let again = crate::open(dir.path(), crate::small(1000)).await;
    again.close().await.unwrap();
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 0, ..LogConfig::default() };
    assert!(matches!(FileLog::open(dir.path(), config).await, Err(LogError::InvalidConfig(_))));
}

#[tokio::test]
async fn retention_deletes_old_segments_only() {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_days: 2, ..crate::small(100) };
    let log = crate::open(dir.path(), config.clone()).await;
    // 3 records (~33 bytes each) per segment, one record per day.
    for day in 0..10 {
        log.append("t", vec![NewRecord::new(day * DAY, vec![1; 9])]).await.unwrap();
    }
    log.append("u", vec![NewRecord::new(0, vec![2; 9])]).await.unwrap();
    let before = crate::segments(dir.path(), "t").len();
    assert_eq!(before, 4);

    // At day 10 the cutoff is day 8: segments [0,1,2] and [3,4,5] go; [6,7,8] has day 8.
    let report = log.apply_retention(10 * DAY).await.unwrap();
    assert_eq!((report.segments_deleted, report.records_deleted), (2, 6));
    assert_eq!(crate::segments(dir.path(), "t").len(), 2);
    assert_eq!(log.start_offset("t").await.unwrap(), 6);
    assert_eq!(log.end_offset("t").await.unwrap(), 10);
    // Reading below the start clamps to it.
    assert_eq!(log.read("t", 0, 1, 1 << 20).await.unwrap()[0].offset, 6);
    assert_eq!(log.offset_for_time("t", 0).await.unwrap(), 6);
    // The only segment of "u" is active and survives any age.
    assert_eq!(log.start_offset("u").await.unwrap(), 0);
    assert_eq!(log.read("u", 0, 10, 1 << 20).await.unwrap().len(), 1);

    // Far in the future everything but the active segment goes.
    log.apply_retention(100 * DAY).await.unwrap();
    assert_eq!(log.start_offset("t").await.unwrap(), 9);
    log.close().await.unwrap();

    let log = crate::open(dir.path(), config).await;
    assert_eq!(log.start_offset("t").await.unwrap(), 9);
    assert_eq!(log.append_one("t", 11 * DAY, vec![]).await.unwrap(), 10);
    log.close().await.unwrap();
}

#[tokio::test]
async fn retention_zero_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::open(dir.path(), LogConfig { retention_days: 0, ..crate::small(30) }).await;
    for i in 0..5 {
        log.append_one("t", i, vec![0; 10]).await.unwrap();
    }
    assert_eq!(log.apply_retention(i64::MAX).await.unwrap().segments_deleted, 0);
    assert_eq!(log.start_offset("t").await.unwrap(), 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn consumer_offsets_and_records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { sync: SyncPolicy::Always, ..crate::small(200) };
    let log = crate::open(dir.path(), config.clone()).await;
    log.append("views", (0..20).map(|i| NewRecord::new(i, vec![i as u8; 7])).collect())
        .await
        .unwrap();
    log.commit("views", "ranker-1h", 12).await.unwrap();
    log.commit("views", "notifier", 20).await.unwrap();
    log.commit("views", "ranker-1h", 15).await.unwrap();
    log.close().await.unwrap();

    let log = crate::open(dir.path(), config).await;
    assert_eq!(log.committed("views", "ranker-1h").await.unwrap(), Some(15));
    assert_eq!(log.committed("views", "notifier").await.unwrap(), Some(20));
    assert_eq!(log.end_offset("views").await.unwrap(), 20);
    assert_eq!(log.offset_for_time("views", 13).await.unwrap(), 13);
    assert_eq!(log.topics().await.unwrap(), vec!["views".to_owned()]);
    log.close().await.unwrap();
}

#[tokio::test]
async fn interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let sync = SyncPolicy::Interval(Duration::from_millis(10));
    let log = crate::open(dir.path(), LogConfig { sync, ..crate::small(1 << 20) }).await;
    log.append_one("t", 1, b"a".to_vec()).await.unwrap();
    // Readable at once, before any fsync.
    assert_eq!(log.read("t", 0, 1, 100).await.unwrap().len(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.stats().fsyncs == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no background fsync");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn oversized_payload_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::open(dir.path(), crate::small(1000)).await;
    let big = vec![0; quicktok_log::MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        log.append("t", vec![NewRecord::new(0, big)]).await,
        Err(LogError::RecordTooLarge { .. })
    ));
    assert_eq!(log.end_offset("t").await.unwrap(), 0);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_readers_and_retention_agree() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_days: 1, ..crate::small(256) };
    let log = Arc::new(crate::open(dir.path(), config).await);
    let acked: Arc<Mutex<HashMap<u64, Vec<u8>>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (log, acked) = (Arc::clone(&log), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            for i in 0..150u64 {
                let payloads: Vec<Vec<u8>> =
                    (0..1 + i % 3).map(|k| format!("{w}-{i}-{k}").into_bytes()).collect();
                // Timestamps advance one "hour" per append so retention has work to do.
                let ts = (i as i64) * DAY / 24;
                let records = payloads.iter().map(|p| NewRecord::new(ts, p.clone())).collect();
                let offsets = log.append("t", records).await.unwrap();
                acked.lock().unwrap().extend(offsets.into_iter().zip(payloads));
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (log, acked, done) = (Arc::clone(&log), Arc::clone(&acked), Arc::clone(&done));
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            let mut seed = r + 1;
            while !done.load(Ordering::Relaxed) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let end = log.end_offset("t").await.unwrap();
                let from = if end == 0 { 0 } else { (seed >> 33) % end };
                let got = log.read("t", from, 1 + (seed % 50) as usize, 1 << 20).await.unwrap();
                if let Some(first) = got.first() {
                    assert!(first.offset >= from, "read started before the requested offset");
                }
                assert!(got.windows(2).all(|w| w[1].offset == w[0].offset + 1), "gap in a read");
                let acked = acked.lock().unwrap();
                for rec in &got {
                    // A record can be readable a moment before its appender records the ack.
                    if let Some(p) = acked.get(&rec.offset) {
                        assert_eq!(&rec.payload, p, "offset {}", rec.offset);
                    }
                }
                reads += 1;
            }
            reads
        }));
    }
    let retention = {
        let (log, done) = (Arc::clone(&log), Arc::clone(&done));
        tokio::spawn(async move {
            let mut now = DAY;
            while !done.load(Ordering::Relaxed) {
                log.apply_retention(now).await.unwrap();
                now += DAY / 24;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    retention.await.unwrap();

    let start = log.start_offset("t").await.unwrap();
    let end = log.end_offset("t").await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(end, acked.len() as u64);
    let all = log.read("t", 0, usize::MAX, usize::MAX).await.unwrap();
    assert_eq!(all.len() as u64, end - start);
    assert!(start > 0, "retention should have run concurrently");
    for rec in &all {
        assert_eq!(Some(&rec.payload), acked.get(&rec.offset));
    }
    log.close().await.unwrap();
}
