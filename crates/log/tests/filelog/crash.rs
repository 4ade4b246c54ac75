//! Crash recovery: the last record of the last segment is torn at every byte position, or
//! garbled at every byte, or followed by garbage; reopening must keep every earlier record,
//! drop the torn one, continue at the right offset and survive another reopen. Damage in a
//! sealed segment must be reported, never silently dropped.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use quicktok_log::{
    EventLog, FRAME_OVERHEAD_BYTES, FileLog, LogConfig, LogError, NewRecord, SyncPolicy,
};

const N: u64 = 25;

fn payload(i: u64) -> Vec<u8> {
    (0..(i % 13) as u8 + 1).map(|b| b.wrapping_mul(i as u8 + 7)).collect()
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig { sync: SyncPolicy::Always, ..crate::small(segment_bytes) }
}

/// Writes N records one append at a time, closes, and returns the last segment's path.
async fn write_original(dir: &Path, cfg: &LogConfig) -> std::path::PathBuf {
    let log = FileLog::open(dir, cfg.clone()).await.unwrap();
    for i in 0..N {
        log.append("t", vec![NewRecord::new(i as i64, payload(i))]).await.unwrap();
    }
    log.close().await.unwrap();
    let segs = crate::segments(dir, "t");
    assert!(segs.len() > 1, "the scenario needs several segments");
    segs.last().unwrap().clone()
}

/// Opens the damaged copy and checks records `0..survivors` are exactly what was written;
/// that the damaged segment was cut back to `valid_len` bytes; then appends one record,
/// reopens and checks again.
async fn check_recovered(
    dir: &Path,
    cfg: &LogConfig,
    (segment, valid_len): (&Path, u64),
    survivors: u64,
    what: &str,
) {
    let log = FileLog::open(dir, cfg.clone()).await.unwrap();
    assert_eq!(fs::metadata(segment).unwrap().len(), valid_len, "{what}: truncated on open");
    assert_eq!(log.end_offset("t").await.unwrap(), survivors, "{what}");
    let check = |records: Vec<quicktok_log::Record>, n: u64| {
        assert_eq!(records.len() as u64, n, "{what}");
        for r in records.iter().take(survivors as usize) {
            assert_eq!(r.timestamp_ms, r.offset as i64, "{what}");
            assert_eq!(r.payload, payload(r.offset), "{what}");
        }
    };
    check(log.read("t", 0, usize::MAX, usize::MAX).await.unwrap(), survivors);
    let new = log.append_one("t", 999, b"after".to_vec()).await.unwrap();
    assert_eq!(new, survivors, "{what}: appends continue at the torn record's offset");
    log.close().await.unwrap();

    let log = FileLog::open(dir, cfg.clone()).await.unwrap();
    let all = log.read("t", 0, usize::MAX, usize::MAX).await.unwrap();
    check(all.clone(), survivors + 1);
    let last = all.last().unwrap();
    assert_eq!(
        (last.offset, last.timestamp_ms, last.payload.as_slice()),
        (survivors, 999, &b"after"[..])
    );
    log.close().await.unwrap();
}

async fn torn_and_garbled_last_record(segment_bytes: u64) {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    let cfg = config(segment_bytes);
    let last_seg = write_original(&original, &cfg).await;
    let rel = last_seg.strip_prefix(&original).unwrap().to_path_buf();
    let file_len = fs::metadata(&last_seg).unwrap().len();
    let last_start = file_len - (FRAME_OVERHEAD_BYTES + payload(N - 1).len()) as u64;

    for (n, cut) in (last_start..file_len).enumerate() {
        let copy = root.path().join(format!("torn-{n}"));
        crate::copy_dir(&original, &copy);
        OpenOptions::new().write(true).open(copy.join(&rel)).unwrap().set_len(cut).unwrap();
        check_recovered(
            &copy,
            &cfg,
            (&copy.join(&rel), last_start),
            N - 1,
            &format!("cut at {cut}"),
        )
        .await;
        fs::remove_dir_all(&copy).unwrap();
    }
    for (n, at) in (last_start..file_len).enumerate() {
        let copy = root.path().join(format!("garbled-{n}"));
        crate::copy_dir(&original, &copy);
        let path = copy.join(&rel);
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x5a;
        // Also garble what follows, like a partially written sector.
        for b in bytes.iter_mut().skip(at as usize + 1).step_by(3) {
            *b = b.wrapping_add(1);
        }
        fs::write(&path, &bytes).unwrap();
        check_recovered(&copy, &cfg, (&path, last_start), N - 1, &format!("garbled from {at}"))
            .await;
        fs::remove_dir_all(&copy).unwrap();
    }
    // Zeros (a file extended but never written) or junk after an intact tail.
    for (n, junk) in [vec![0u8; 100], vec![0xff; 3], vec![7u8; 30]].into_iter().enumerate() {
        let copy = root.path().join(format!("junk-{n}"));
        crate::copy_dir(&original, &copy);
        OpenOptions::new().append(true).open(copy.join(&rel)).unwrap().write_all(&junk).unwrap();
        check_recovered(&copy, &cfg, (&copy.join(&rel), file_len), N, &format!("junk {n}")).await;
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_in_a_shared_segment() {
    // Several records per segment.
    torn_and_garbled_last_record(150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_that_is_alone_in_its_segment() {
    // Every record gets its own segment, so recovery empties the last segment.
    torn_and_garbled_last_record(30).await;
}

async fn damaged_sealed_segment_setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    write_original(root.path(), &config(150)).await;
    let first = crate::segments(root.path(), "t")[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[FRAME_OVERHEAD_BYTES + 3] ^= 0xff; // second record's header/body
    fs::write(&first, &bytes).unwrap();
    (root, first)
}

#[tokio::test]
async fn corrupt_sealed_segment_is_an_error_on_verified_open() {
    let (root, first) = damaged_sealed_segment_setup().await;
    let cfg = LogConfig { verify_on_open: true, ..config(150) };
    match FileLog::open(root.path(), cfg).await {
        Err(LogError::Corrupt { path, .. }) => assert_eq!(path, first),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Without the index snapshot a normal open has to scan, and finds it too.
    fs::remove_file(first.with_extension("idx")).unwrap();
    assert!(matches!(FileLog::open(root.path(), config(150)).await, Err(LogError::Corrupt { .. })));
}

#[tokio::test]
async fn corrupt_sealed_segment_is_an_error_on_read() {
    let (root, _) = damaged_sealed_segment_setup().await;
    // The snapshot matches the file length, so open trusts it; the read checks the CRC.
    let log = FileLog::open(root.path(), config(150)).await.unwrap();
    assert!(matches!(log.read("t", 0, 100, 1 << 20).await, Err(LogError::Corrupt { .. })));
    // Records in later segments are still readable.
    let later = log.read("t", N - 1, 1, 1 << 20).await.unwrap();
    assert_eq!(later[0].payload, payload(N - 1));
    log.close().await.unwrap();
}

#[tokio::test]
async fn missing_middle_segment_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    write_original(root.path(), &config(100)).await;
    let segs = crate::segments(root.path(), "t");
    assert!(segs.len() >= 3);
    fs::remove_file(&segs[1]).unwrap();
    assert!(matches!(FileLog::open(root.path(), config(100)).await, Err(LogError::Corrupt { .. })));
}
