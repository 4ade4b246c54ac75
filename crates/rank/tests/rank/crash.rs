//! Crash recovery through the real `FileLog`: snapshot mid-stream, "kill" the ranker (drop it
//! without a final snapshot), damage the newest snapshots, restart, and compare with the
//! oracle and with a ranker that never stopped.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use quicktok_core::{Id, ManualClock};
use quicktok_log::{EventLog, FileLog, LogConfig, SyncPolicy};
use quicktok_rank::{
    RankerConfig, RankerService, ShardedRanker, SnapshotStore, ViewRecord, Window,
};

use crate::oracle::{DAY, Oracle, TAGS, lcg_stream};

const SHARDS: u32 = 3;

fn config() -> RankerConfig {
    RankerConfig {
        shards: SHARDS,
        // Snapshots only when the test asks; no wall-clock ticks.
        snapshot_interval_secs: 0,
        snapshot_every_events: 0,
        tick_interval_ms: 0,
        batch_max_records: 97,
        ..RankerConfig::default()
    }
}

fn log_config() -> LogConfig {
    LogConfig { sync: SyncPolicy::Never, segment_bytes: 64 * 1024, ..LogConfig::default() }
}

async fn append(log: &FileLog, records: &[ViewRecord]) {
    for chunk in records.chunks(50) {
        let batch = chunk
            .iter()
            .map(|r| quicktok_log::NewRecord::new(r.at_ms(), r.encode().unwrap()))
            .collect();
        log.append("views", batch).await.unwrap();
    }
}

async fn service(dir: &Path, log: &Arc<FileLog>) -> RankerService {
    let log: Arc<dyn EventLog> = log.clone();
    RankerService::open(dir, log, config(), Arc::new(ManualClock::new(0))).await.unwrap()
}

/// The uninterrupted reference: every record of the log applied in one go.
async fn reference(log: &FileLog) -> (ShardedRanker, Oracle) {
    let mut ranker = ShardedRanker::new(SHARDS);
    let mut oracle = Oracle::default();
    let end = log.end_offset("views").await.unwrap();
    let mut next = 0;
    while next < end {
        for r in log.read("views", next, 1000, usize::MAX).await.unwrap() {
            ranker.apply_payload(r.offset, &r.payload);
            oracle.apply(&ViewRecord::decode(&r.payload).unwrap());
            next = r.offset + 1;
        }
    }
    ranker.finish_batch();
    (ranker, oracle)
}

fn assert_same(got: &ShardedRanker, want: &ShardedRanker, oracle: &Oracle) {
    assert_eq!(got.as_of(), want.as_of());
    for w in Window::ALL {
        for k in [1, 5, 1000] {
            assert_eq!(got.top(w, k), want.top(w, k), "{w} k={k}");
            assert_eq!(got.top(w, k), oracle.top(w, k), "{w} k={k} vs oracle");
        }
        for (g, r) in got.shards().iter().zip(want.shards()) {
            assert_eq!(g.counts(w), r.counts(w), "full counts of {w}");
        }
        let mut all: Vec<(Id, u64)> = got.shards().iter().flat_map(|s| s.counts(w)).collect();
        all.sort();
        assert_eq!(all, oracle.sorted_counts(w), "{w} vs oracle");
    }
    for (g, r) in got.shards().iter().zip(want.shards()) {
        assert_eq!(g.tag_counts(), r.tag_counts());
        assert_eq!(g.footprint(), r.footprint());
    }
    for tag in TAGS {
        assert_eq!(got.top_tag(tag, 1000), oracle.top_tag(tag, 1000), "tag {tag}");
    }
}

#[tokio::test]
async fn recovers_exactly_from_snapshots_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let (log_dir, snap_dir) = (tmp.path().join("log"), tmp.path().join("rank"));
    let records = lcg_stream(11, 4_000, 400, 3 * DAY);
    let (q1, q2, q3) = (1_000, 2_000, 3_000);

    let log = Arc::new(FileLog::open(&log_dir, log_config()).await.unwrap());
    let mut a = service(&snap_dir, &log).await;
    append(&log, &records[..q1]).await;
    a.catch_up().await.unwrap();
    a.snapshot().await.unwrap(); // older snapshot, at q1
    append(&log, &records[q1..q2]).await;
    a.catch_up().await.unwrap();
    a.snapshot().await.unwrap(); // newest snapshot, at q2
    assert_eq!(log.committed("views", "ranker").await.unwrap(), Some(q2 as u64));
    append(&log, &records[q2..q3]).await;
    a.catch_up().await.unwrap();
    // Kill: no final snapshot; the process (and its log handle) goes away.
    drop(a);
    log.close().await.unwrap();
    drop(log);

    // Damage the newest snapshot of shard 0 (torn) and shard 1 (bit flip); shard 2 keeps it.
    let store = SnapshotStore::new(&snap_dir, SHARDS, 2);
    for shard in 0..SHARDS {
        let list = store.list(shard).unwrap();
        assert_eq!(list.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![q2 as u64, q1 as u64]);
    }
    let newest = |s| store.list(s).unwrap()[0].1.clone();
    let bytes = fs::read(newest(0)).unwrap();
    fs::write(newest(0), &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = fs::read(newest(1)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(newest(1), &bytes).unwrap();
    // A leftover temp file from a crash mid-write is ignored and removed.
    fs::write(store.shard_dir(2).join("00000000000000009999.snap.tmp"), b"partial").unwrap();

    // Restart: more views arrived meanwhile.
    let log = Arc::new(FileLog::open(&log_dir, log_config()).await.unwrap());
    append(&log, &records[q3..]).await;
    let mut b = service(&snap_dir, &log).await;
    let rec = b.recovery().clone();
    assert_eq!(rec.rejected.len(), 2, "{:?}", rec.rejected);
    assert_eq!(rec.resume_offset, q1 as u64, "replay from the oldest snapshot needed");
    assert!(rec.restored_from.iter().all(Option::is_some));
    assert!(!b.handle().lists().caught_up);
    assert!(!store.shard_dir(2).join("00000000000000009999.snap.tmp").exists());
    b.catch_up().await.unwrap();
    let (want, oracle) = reference(&log).await;
    assert_same(b.ranker(), &want, &oracle);
    // The published lists agree too.
    let h = b.handle();
    assert!(h.lists().caught_up);
    for w in Window::ALL {
        assert_eq!(h.top(w, 100).videos, want.top(w, 100));
    }
    assert_eq!(h.top_tag("cat", 20).videos, want.top_tag("cat", 20));
    drop(b);

    // With every snapshot gone, a full replay reaches the same state.
    fs::remove_dir_all(&snap_dir).unwrap();
    let mut c = service(&snap_dir, &log).await;
    assert_eq!(c.recovery().resume_offset, 0);
    c.catch_up().await.unwrap();
    assert_same(c.ranker(), &want, &oracle);
    log.close().await.unwrap();
}

#[tokio::test]
async fn snapshot_files_are_atomic_and_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(FileLog::open(tmp.path().join("log"), log_config()).await.unwrap());
    let snap_dir = tmp.path().join("rank");
    let records = lcg_stream(5, 600, 50, DAY);
    let mut s = service(&snap_dir, &log).await;
    for chunk in records.chunks(150) {
        append(&log, chunk).await;
        s.catch_up().await.unwrap();
        s.snapshot().await.unwrap();
    }
    let store = SnapshotStore::new(&snap_dir, SHARDS, 2);
    for shard in 0..SHARDS {
        let offsets: Vec<u64> = store.list(shard).unwrap().iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, vec![600, 450], "only the newest two are kept");
        let dir = store.shard_dir(shard);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".snap")), "{names:?}");
        // A snapshot of the wrong shard under this shard's name is rejected.
        let loaded = store.load(shard).unwrap();
        assert_eq!(loaded.ranker.unwrap().as_of().next_offset, 600);
    }
    let other = store.list(1).unwrap()[0].1.clone();
    fs::copy(&other, store.shard_dir(0).join("00000000000000000601.snap")).unwrap();
    let loaded = store.load(0).unwrap();
    assert_eq!(loaded.rejected.len(), 1);
    assert_eq!(loaded.ranker.unwrap().as_of().next_offset, 600);
    drop(s);
    log.close().await.unwrap();
}

/// After a power loss the log can lose a suffix the ranker had already snapshotted; such a
/// snapshot must not be used, or the records that reuse those offsets would be skipped.
#[tokio::test]
async fn snapshot_past_the_log_end_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (log_dir, snap_dir) = (tmp.path().join("log"), tmp.path().join("rank"));
    let records = lcg_stream(23, 900, 80, DAY);
    let log = Arc::new(FileLog::open(&log_dir, log_config()).await.unwrap());
    let mut a = service(&snap_dir, &log).await;
    append(&log, &records[..300]).await;
    a.catch_up().await.unwrap();
    a.snapshot().await.unwrap(); // at 300: survives
    append(&log, &records[300..600]).await;
    a.catch_up().await.unwrap();
    a.snapshot().await.unwrap(); // at 600: the log will lose part of what it covers
    drop(a);
    log.close().await.unwrap();
    drop(log);
    // Tear the log's tail: only the last segment can lose records, so cut it short enough
    // to reach back before offset 600.
    let mut segs: Vec<_> = fs::read_dir(log_dir.join("topics/views"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len * 3 / 4).unwrap();

    let log = Arc::new(FileLog::open(&log_dir, log_config()).await.unwrap());
    let end = log.end_offset("views").await.unwrap();
    assert!((300..600).contains(&end), "log now ends at {end}");
    // Restarted before anything new arrived: the snapshot at 600 is past the end.
    let c = service(&snap_dir, &log).await;
    assert_eq!(c.recovery().resume_offset, 300);
    let reasons: Vec<&String> = c.recovery().rejected.iter().map(|(_, r)| r).collect();
    assert_eq!(reasons.len(), SHARDS as usize);
    assert!(reasons.iter().all(|r| r.contains("past the log's end")), "{reasons:?}");
    drop(c);
    // New views take the lost offsets: the snapshot at 600 is within the log again, but
    // the record before its offset is not the one it counted.
    append(&log, &records[600..]).await;
    let mut b = service(&snap_dir, &log).await;
    assert_eq!(b.recovery().resume_offset, 300);
    let reasons: Vec<&String> = b.recovery().rejected.iter().map(|(_, r)| r).collect();
    assert_eq!(reasons.len(), SHARDS as usize);
    assert!(reasons.iter().all(|r| r.contains("differs")), "{reasons:?}");
    b.catch_up().await.unwrap();
    let (want, oracle) = reference(&log).await;
    assert_same(b.ranker(), &want, &oracle);
    log.close().await.unwrap();
}
