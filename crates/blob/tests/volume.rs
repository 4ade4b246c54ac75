//! Integration tests of `VolumeStore`: the backend-neutral suite (default and tiny volumes),
//! reopening, class directories, group commit, per-block corruption detection, compaction
//! (reclaiming space, readers streaming through it, concurrent writers), cancellation and
//! closing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use quicktok_blob::testsuite::{self, body, pattern, range, read_all};
use quicktok_blob::volume::VolumeStore;
use quicktok_blob::{BlobError, BlobStore, StorageClass, VolumeConfig};
use quicktok_core::Id;

const B: u64 = 64 * 1024;

fn tiny(volume_bytes: u64) -> VolumeConfig {
    VolumeConfig { volume_bytes, sync: false, ..VolumeConfig::default() }
}

async fn open(dir: &Path, config: VolumeConfig) -> VolumeStore {
    VolumeStore::open(dir, config).await.unwrap()
}

async fn put(store: &VolumeStore, id: u64, class: StorageClass, data: &Bytes) {
    store
        .put(Id(id), class, data.len() as u64, "video/mp4", body(data.clone(), 10_000))
        .await
        .unwrap();
}

async fn get(store: &VolumeStore, id: u64) -> Bytes {
    read_all(store, Id(id), None).await.unwrap()
}

/// Sum of the sizes of every `.dat` under `dir`.
fn dat_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            total += dat_bytes(&p);
        } else if p.extension().is_some_and(|x| x == "dat") {
            total += fs::metadata(&p).unwrap().len();
        }
    }
    total
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

async fn run_suite(config: VolumeConfig) {
    let root = tempfile::tempdir().unwrap();
    let n = AtomicU32::new(0);
    let stores = std::sync::Mutex::new(Vec::new());
    testsuite::run_all(|| async {
        let dir = root.path().join(n.fetch_add(1, Ordering::Relaxed).to_string());
        let store = Arc::new(open(&dir, config.clone()).await);
        stores.lock().unwrap().push(Arc::clone(&store));
        store as Arc<dyn BlobStore>
    })
    .await;
    for s in stores.into_inner().unwrap() {
        s.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_default_config() {
    run_suite(VolumeConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_tiny_volumes() {
    // Rolls every few blobs; bigger blobs get volumes of their own.
    run_suite(tiny(20_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_blobs_classes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(50_000);
    let store = open(dir.path(), cfg.clone()).await;
    let mut metas = Vec::new();
    for i in 0..20u64 {
        let class = StorageClass::ALL[(i % 3) as usize];
        let data = pattern(i, (i as usize * 9_001) % 150_000);
        let meta = store
            .put(Id(i), class, data.len() as u64, "video/mp4", body(data, 7_000))
            .await
            .unwrap();
        metas.push(meta);
    }
    for i in (0..20).step_by(4) {
        assert!(store.delete(Id(i)).await.unwrap());
    }
    metas[1] = store.set_class(Id(1), StorageClass::Cold).await.unwrap();
    let usage = store.usage().await.unwrap();
    store.close().await.unwrap();

    let store = open(dir.path(), cfg).await;
    assert_eq!(store.usage().await.unwrap(), usage);
    for (i, meta) in metas.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(4) {
            assert_eq!(store.stat(Id(i)).await.unwrap(), None, "deleted blob {i} came back");
        } else {
            assert_eq!(store.stat(Id(i)).await.unwrap().as_ref(), Some(meta));
            assert_eq!(get(&store, i).await, pattern(i, (i as usize * 9_001) % 150_000));
        }
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_live_in_their_own_directories() {
    let root = tempfile::tempdir().unwrap();
    let cold = root.path().join("cheap-disk/cold");
    let cfg = VolumeConfig { cold_dir: cold.display().to_string(), ..tiny(1 << 20) };
    let store = open(&root.path().join("data"), cfg.clone()).await;
    assert_eq!(store.class_dir(StorageClass::Hot), root.path().join("data/blobs/hot"));
    assert_eq!(store.class_dir(StorageClass::Cold), cold);
    put(&store, 1, StorageClass::Hot, &pattern(1, 5000)).await;
    assert_eq!(dat_bytes(&cold), 0);
    store.set_class(Id(1), StorageClass::Cold).await.unwrap();
    assert!(dat_bytes(&cold) > 5000);
    let loc = store.locate(Id(1)).await.unwrap().unwrap();
    assert!(loc.path.starts_with(&cold));
    assert_eq!(loc.class, StorageClass::Cold);
    store.close().await.unwrap();
    let store = open(&root.path().join("data"), cfg).await;
    assert_eq!(get(&store, 1).await, pattern(1, 5000));
    assert_eq!(store.stat(Id(1)).await.unwrap().unwrap().class, StorageClass::Cold);
    store.close().await.unwrap();

    let same =
        VolumeConfig { hot_dir: "/x".into(), warm_dir: "/x".into(), ..VolumeConfig::default() };
    assert!(matches!(VolumeStore::open(root.path(), same).await, Err(BlobError::InvalidConfig(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), tiny(1 << 20)).await;
    assert!(matches!(
        VolumeStore::open(dir.path(), tiny(1 << 20)).await,
        Err(BlobError::Io { .. })
    ));
    store.close().await.unwrap();
    let again = open(dir.path(), tiny(1 << 20)).await;
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), VolumeConfig { sync: true, ..tiny(1 << 20) }).await);
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { put(&store, i, StorageClass::Hot, &pattern(i, 3000)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.puts, 32);
    // Every put needs a sync that started after its write; group commit lets them share.
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 32, "{stats:?}");
    eprintln!("32 concurrent puts took {} fsyncs", stats.fsyncs);
    for i in 0..32 {
        assert_eq!(get(&store, i).await, pattern(i, 3000));
    }
    store.close().await.unwrap();
}

fn flip_bit(path: &Path, at: u64, bit: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 1 << (bit % 8);
    fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_fails_only_the_blocks_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(1 << 20);
    let store = open(dir.path(), cfg.clone()).await;
    let size = 3 * B + 100;
    let a = pattern(1, size as usize);
    put(&store, 1, StorageClass::Hot, &a).await;
    put(&store, 2, StorageClass::Hot, &pattern(2, 5000)).await;
    let loc = store.locate(Id(1)).await.unwrap().unwrap();
    store.close().await.unwrap();
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64;
    let in_block = seed % B;
    flip_bit(&loc.path, loc.data_offset + B + in_block, seed / B);

    let store = open(dir.path(), cfg).await;
    let integrity = |r: Result<Bytes, BlobError>| matches!(r, Err(BlobError::Integrity { .. }));
    for (s, e) in [(B, 2 * B), (B + in_block, B + in_block + 1), (B - 10, B + 10), (0, size)] {
        assert!(integrity(read_all(&store, Id(1), range(s, e)).await), "{s}..{e} must fail");
    }
    for (s, e) in [(0, B), (2 * B, size), (10, 20), (B - 1, B), (2 * B, 2 * B + 1)] {
        let got = read_all(&store, Id(1), range(s, e)).await.unwrap();
        assert_eq!(got, a.slice(s as usize..e as usize), "{s}..{e} does not touch the bad block");
    }
    // A streaming whole read yields the good first block, then the error, then ends.
    let mut stream = store.get(Id(1), None).await.unwrap().body;
    let first = stream.next().await.unwrap();
    assert!(matches!(first, Err(BlobError::Integrity { .. })), "blocks are read 16 at a time");
    assert!(stream.next().await.is_none());
    assert_eq!(get(&store, 2).await, pattern(2, 5000), "other blobs are unaffected");
    assert_eq!(store.stat(Id(1)).await.unwrap().unwrap().size, size);

    // A damaged header fails stat and get, but the blob can still be deleted.
    let loc2 = store.locate(Id(2)).await.unwrap().unwrap();
    flip_bit(&loc2.path, loc2.offset + 20, 3);
    assert!(matches!(store.stat(Id(2)).await, Err(BlobError::Integrity { .. })));
    assert!(matches!(store.get(Id(2), None).await, Err(BlobError::Integrity { .. })));
    assert!(store.delete(Id(2)).await.unwrap());
    assert_eq!(store.stat(Id(2)).await.unwrap(), None);
    // Compaction refuses to copy a damaged blob rather than spread or drop it.
    assert!(matches!(store.compact(loc.volume).await, Err(BlobError::Integrity { .. })));
    assert!(integrity(read_all(&store, Id(1), range(B, B + 1)).await));
    assert_eq!(read_all(&store, Id(1), range(0, 5)).await.unwrap(), a.slice(0..5));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_reclaims_garbage_and_keeps_live_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(60_000);
    let store = open(dir.path(), cfg.clone()).await;
    let size = |i: u64| 3000 + (i as usize * 1237) % 9000;
    for i in 0..60u64 {
        put(&store, i, StorageClass::ALL[(i % 2) as usize], &pattern(i, size(i))).await;
    }
    for i in (0..60u64).filter(|i| i % 3 != 0) {
        store.delete(Id(i)).await.unwrap();
    }
    store.set_class(Id(3), StorageClass::Cold).await.unwrap();
    let before = dat_bytes(dir.path());
    let volumes_before = store.volumes();
    assert!(volumes_before.len() > 3);
    let report = store.compact_all().await.unwrap();
    let after = dat_bytes(dir.path());
    assert!(report.volumes_compacted > 0 && report.bytes_reclaimed > 0, "{report:?}");
    assert_eq!(before - after, report.bytes_reclaimed, "{report:?}");
    assert!(after * 2 < before, "{before} -> {after}");
    // A second pass finds nothing worth doing.
    assert_eq!(store.compact_all().await.unwrap().volumes_compacted, 0);
    for v in store.volumes() {
        assert_eq!(v.garbage_bytes, 0, "{v:?}");
    }
    for i in 0..60u64 {
        if i % 3 == 0 {
            assert_eq!(get(&store, i).await, pattern(i, size(i)), "blob {i}");
        } else {
            assert_eq!(store.stat(Id(i)).await.unwrap(), None, "deleted blob {i}");
        }
    }
    assert_eq!(store.stat(Id(3)).await.unwrap().unwrap().class, StorageClass::Cold);
    store.close().await.unwrap();
    let store = open(dir.path(), cfg).await;
    for i in 0..60u64 {
        if i % 3 == 0 {
            assert_eq!(get(&store, i).await, pattern(i, size(i)), "blob {i} after reopen");
        } else {
            assert_eq!(store.stat(Id(i)).await.unwrap(), None, "deleted blob {i} came back");
        }
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_streams_through_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), tiny(8 << 20)).await;
    let big = pattern(1, 3 << 20);
    put(&store, 2, StorageClass::Hot, &pattern(2, 500_000)).await;
    put(&store, 1, StorageClass::Hot, &big).await;
    store.delete(Id(2)).await.unwrap();
    let old_file = store.locate(Id(1)).await.unwrap().unwrap();
    let read = store.get(Id(1), None).await.unwrap();
    let mut body = read.body;
    let mut got = body.next().await.unwrap().unwrap().to_vec();
    assert!(got.len() < big.len());

    let report = store.compact(old_file.volume).await.unwrap();
    assert_eq!(report.blobs_copied, 1);
    assert!(!old_file.path.exists(), "the old volume is unlinked at once");
    let new_loc = store.locate(Id(1)).await.unwrap().unwrap();
    assert_ne!(new_loc.volume, old_file.volume);
    assert!(new_loc.offset < old_file.offset, "the garbage before it is gone");

    while let Some(chunk) = body.try_next().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(Bytes::from(got), big, "the open stream kept reading the old file");
    assert_eq!(get(&store, 1).await, big);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(40_000);
    let store = Arc::new(open(dir.path(), cfg.clone()).await);
    for i in 0..80u64 {
        put(&store, i, StorageClass::Hot, &pattern(i, 2000 + (i as usize % 7) * 500)).await;
    }
    for i in (0..80u64).step_by(2) {
        store.delete(Id(i)).await.unwrap();
    }
    // Deletes, moves and puts race with compaction of the same volumes.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in (1..80u64).step_by(2) {
                match i % 6 {
                    1 => assert!(store.delete(Id(i)).await.unwrap()),
                    3 => {
                        store.set_class(Id(i), StorageClass::Warm).await.unwrap();
                    }
                    _ => put(&store, 1000 + i, StorageClass::Hot, &pattern(1000 + i, 3000)).await,
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for _ in 0..3 {
        store.compact_all().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    store.compact_all().await.unwrap();

    let expect = |i: u64| -> Option<Bytes> {
        if i >= 1000 {
            return Some(pattern(i, 3000));
        }
        (i % 2 == 1 && i % 6 != 1).then(|| pattern(i, 2000 + (i as usize % 7) * 500))
    };
    let ids: Vec<u64> =
        (0..80u64).chain((1..80).step_by(2).filter(|i| i % 6 == 5).map(|i| 1000 + i)).collect();
    let check = |s: Arc<VolumeStore>, when: &'static str| {
        let ids = ids.clone();
        async move {
            for &i in &ids {
                match expect(i) {
                    Some(data) => assert_eq!(get(&s, i).await, data, "blob {i} {when}"),
                    None => assert_eq!(s.stat(Id(i)).await.unwrap(), None, "deleted {i} {when}"),
                }
            }
        }
    };
    check(Arc::clone(&store), "after compaction").await;
    store.close().await.unwrap();
    let store = Arc::new(open(dir.path(), cfg).await);
    check(Arc::clone(&store), "after reopen").await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_that_die_during_a_compaction_stay_dead() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(1 << 20);
    let store = Arc::new(open(dir.path(), cfg.clone()).await);
    for i in 0..10u64 {
        put(&store, i, StorageClass::Hot, &pattern(i, 3000)).await;
    }
    store.delete(Id(0)).await.unwrap();
    let vol = store.locate(Id(1)).await.unwrap().unwrap().volume;
    let (reached, resume) = store.hold_next_compaction();
    let compaction = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.compact(vol).await })
    };
    reached.notified().await;
    // Copied already, not yet committed: these die or move under the compaction's feet.
    assert!(store.delete(Id(2)).await.unwrap());
    assert!(store.delete(Id(3)).await.unwrap());
    store.set_class(Id(4), StorageClass::Cold).await.unwrap();
    resume.notify_one();
    let report = compaction.await.unwrap().unwrap();
    assert_eq!(report.blobs_copied, 6, "{report:?}");

    let check = |store: Arc<VolumeStore>, when: &'static str| async move {
        for i in 0..10u64 {
            let stat = store.stat(Id(i)).await.unwrap();
            if [0, 2, 3].contains(&i) {
                assert_eq!(stat, None, "blob {i} {when}");
            } else {
                let class = if i == 4 { StorageClass::Cold } else { StorageClass::Hot };
                assert_eq!(stat.map(|m| m.class), Some(class), "blob {i} {when}");
                assert_eq!(get(&store, i).await, pattern(i, 3000), "blob {i} {when}");
            }
        }
    };
    check(Arc::clone(&store), "after compaction").await;
    store.close().await.unwrap();
    let store = Arc::new(open(dir.path(), cfg).await);
    check(Arc::clone(&store), "after reopen").await;
    let loc = store.locate(Id(4)).await.unwrap().unwrap();
    assert_eq!(loc.class, StorageClass::Cold);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_put_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(1 << 20);
    let store = open(dir.path(), cfg.clone()).await;
    // A body that sends one chunk and then stalls forever (a client that went quiet).
    let stalled =
        futures::stream::iter([Ok(pattern(1, 100_000))]).chain(futures::stream::pending()).boxed();
    let put_fut = store.put(Id(1), StorageClass::Hot, 300_000, "x/y", stalled);
    assert!(tokio::time::timeout(Duration::from_millis(100), put_fut).await.is_err());
    assert_eq!(store.stat(Id(1)).await.unwrap(), None);
    put(&store, 1, StorageClass::Hot, &pattern(2, 1000)).await;
    assert_eq!(get(&store, 1).await, pattern(2, 1000));
    // A stalled upload still in progress does not hold `close` up: it fails with Closed.
    let store = Arc::new(store);
    let stalled =
        futures::stream::iter([Ok(pattern(3, 10))]).chain(futures::stream::pending()).boxed();
    let upload = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.put(Id(2), StorageClass::Hot, 100, "x/y", stalled).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(5), store.close()).await.unwrap().unwrap();
    assert!(matches!(upload.await.unwrap(), Err(BlobError::Closed)));
    let store = open(dir.path(), cfg).await;
    assert_eq!(get(&store, 1).await, pattern(2, 1000));
    assert_eq!(store.stat(Id(2)).await.unwrap(), None);
    store.close().await.unwrap();
}

type View = Vec<(u64, Option<(StorageClass, String)>)>;

async fn view(store: &VolumeStore) -> View {
    let mut seen = Vec::new();
    for id in (0..40u64).chain(100..140) {
        seen.push((id, store.stat(Id(id)).await.unwrap().map(|m| (m.class, m.etag))));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_leave_memory_and_disk_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(30_000);
    let store = open(dir.path(), cfg.clone()).await;
    for i in 0..40u64 {
        put(&store, i, StorageClass::Hot, &pattern(i, 2000)).await;
    }
    // Callers that give up at arbitrary points: whatever happened must be what a reopen sees.
    for i in 0..40u64 {
        let wait = Duration::from_micros(i * 173 % 1500);
        match i % 4 {
            0 => drop(tokio::time::timeout(wait, store.delete(Id(i))).await),
            1 => drop(tokio::time::timeout(wait, store.set_class(Id(i), StorageClass::Cold)).await),
            2 => {
                let data = pattern(100 + i, 3000);
                let f = store.put(Id(100 + i), StorageClass::Warm, 3000, "x/y", body(data, 700));
                drop(tokio::time::timeout(wait, f).await);
            }
            _ => {
                let vols = store.volumes();
                drop(
                    tokio::time::timeout(wait, store.compact(vols[i as usize % vols.len()].id))
                        .await,
                );
            }
        }
    }
    // Wait until work that outlived its caller has settled, then compare with a reopen.
    let mut seen = view(&store).await;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = view(&store).await;
        if again == seen {
            break;
        }
        seen = again;
    }
    store.close().await.unwrap();
    let store = open(dir.path(), cfg).await;
    for (id, before) in seen {
        let after = store.stat(Id(id)).await.unwrap().map(|m| (m.class, m.etag));
        assert_eq!(after, before, "blob {id}");
        if after.is_some() {
            let want = if id >= 100 { pattern(id, 3000) } else { pattern(id, 2000) };
            assert_eq!(get(&store, id).await, want);
        }
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_oversize_blobs_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), tiny(4096)).await;
    put(&store, 1, StorageClass::Hot, &pattern(1, 1000)).await;
    put(&store, 2, StorageClass::Hot, &pattern(2, 20_000)).await;
    put(&store, 3, StorageClass::Hot, &pattern(3, 1000)).await;
    let (l1, l2, l3) = (
        store.locate(Id(1)).await.unwrap().unwrap(),
        store.locate(Id(2)).await.unwrap().unwrap(),
        store.locate(Id(3)).await.unwrap().unwrap(),
    );
    assert!(
        l1.volume != l2.volume && l2.volume != l3.volume,
        "a blob over volume_bytes gets its own volume"
    );
    let long_ct = "x".repeat(2000);
    let r = store.put(Id(9), StorageClass::Hot, 1, &long_ct, body(pattern(1, 1), 1)).await;
    assert!(matches!(r, Err(BlobError::InvalidArgument(_))), "{r:?}");
    assert!(matches!(store.compact(9999).await, Err(BlobError::InvalidArgument(_))));
    let stats = store.stats();
    assert_eq!((stats.puts, stats.blobs), (3, 3));
    assert!(stats.index_bytes > 0);

    store.close().await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(store.get(Id(1), None).await, Err(BlobError::Closed)));
    assert!(matches!(
        store.put(Id(5), StorageClass::Hot, 1, "a/b", body(pattern(1, 1), 1)).await,
        Err(BlobError::Closed)
    ));
    assert!(matches!(store.delete(Id(1)).await, Err(BlobError::Closed)));
    assert!(matches!(store.ping().await, Err(BlobError::Closed)));
    assert_eq!(files_with_ext(&dir.path().join("blobs/hot"), "tmp").len(), 0);
}
