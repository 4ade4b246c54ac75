//! Crash recovery of `VolumeStore`: the newest volume cut at every byte of its last needle
//! (a put, then a tombstone), its `.idx` cut, garbled at every byte or deleted, torn needles
//! followed by good ones, junk tails and interrupted compactions. After every reopen each
//! acknowledged blob must read back exactly, the torn one must be gone, nothing deleted may
//! come back, and the store must keep working (put, reopen, read).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use quicktok_blob::testsuite::{body, pattern, read_all};
use quicktok_blob::volume::VolumeStore;
use quicktok_blob::{BlobStore, StorageClass, VolumeConfig};
use quicktok_core::Id;

fn config() -> VolumeConfig {
    // sync off: the damage is simulated by editing files, and fsyncs would only slow the
    // hundreds of reopens down.
    VolumeConfig { volume_bytes: 6000, sync: false, ..VolumeConfig::default() }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// What the store must contain: id -> bytes (`None`: deleted, must stay absent).
type Expected = BTreeMap<u64, Option<Bytes>>;

async fn put(store: &VolumeStore, id: u64, data: &Bytes) {
    store
        .put(Id(id), StorageClass::Hot, data.len() as u64, "video/mp4", body(data.clone(), 1000))
        .await
        .unwrap();
}

/// Builds the original store: blobs over several volumes (one bigger than a volume), some
/// deleted, one moved to another class. Returns the expectations.
async fn build(dir: &Path) -> Expected {
    let store = VolumeStore::open(dir, config()).await.unwrap();
    let mut expected = Expected::new();
    for i in 1..=14u64 {
        let len = if i == 5 { 70_000 } else { 300 + (i as usize * 337) % 1500 };
        let data = pattern(i, len);
        put(&store, i, &data).await;
        expected.insert(i, Some(data));
    }
    for i in [2, 7, 11] {
        assert!(store.delete(Id(i)).await.unwrap());
        expected.insert(i, None);
    }
    store.set_class(Id(3), StorageClass::Cold).await.unwrap();
    store.close().await.unwrap();
    expected
}

async fn check(store: &VolumeStore, expected: &Expected, what: &str) {
    for (id, want) in expected {
        match want {
            Some(data) => {
                let got = read_all(store, Id(*id), None).await;
                assert_eq!(got.as_ref().ok(), Some(data), "{what}: blob {id}: {got:?}");
            }
            None => assert_eq!(
                store.stat(Id(*id)).await.unwrap(),
                None,
                "{what}: blob {id} must be absent"
            ),
        }
    }
}

/// Opens the damaged copy, checks it, adds a blob, reopens and checks again.
async fn recover_and_check(dir: &Path, expected: &Expected, what: &str) {
    let store = VolumeStore::open(dir, config())
        .await
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    check(&store, expected, what).await;
    let extra = pattern(999, 777);
    put(&store, 999, &extra).await;
    store.close().await.unwrap();
    let store = VolumeStore::open(dir, config()).await.unwrap();
    check(&store, expected, &format!("{what}, second open")).await;
    assert_eq!(
        read_all(&store, Id(999), None).await.unwrap(),
        extra,
        "{what}: blob written after recovery"
    );
    store.close().await.unwrap();
}

/// The needle of `id`: (volume file relative to `root`, offset, length).
async fn needle_of(root: &Path, id: u64) -> (PathBuf, u64, u64) {
    let store = VolumeStore::open(root, config()).await.unwrap();
    let loc = store.locate(Id(id)).await.unwrap().unwrap();
    store.close().await.unwrap();
    (loc.path.strip_prefix(root).unwrap().to_path_buf(), loc.offset, loc.needle_len)
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_put_at_every_byte() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    let mut expected = build(&original).await;
    // The last acknowledged put: a small needle at the end of the newest volume.
    let last = pattern(100, 250);
    {
        let store = VolumeStore::open(&original, config()).await.unwrap();
        put(&store, 100, &last).await;
        store.close().await.unwrap();
    }
    let (rel, offset, len) = needle_of(&original, 100).await;
    assert_eq!(
        fs::metadata(original.join(&rel)).unwrap().len(),
        offset + len,
        "it is the last needle"
    );
    // Torn: the put never completed, so the blob must be gone.
    expected.insert(100, None);
    for cut in offset..offset + len {
        let copy = root.path().join(format!("cut-{cut}"));
        copy_dir(&original, &copy);
        truncate(&copy.join(&rel), cut);
        recover_and_check(&copy, &expected, &format!("cut at {cut}")).await;
        let dat = fs::metadata(copy.join(&rel)).unwrap().len();
        assert!(dat >= offset, "cut at {cut}: the volume lost good needles ({dat} < {offset})");
        fs::remove_dir_all(&copy).unwrap();
    }
    // Uncut, with junk or zeros after it (a file extended but never written), it survives.
    expected.insert(100, Some(last));
    for (n, junk) in [vec![0u8; 100], vec![0xff; 3], vec![7u8; 4096]].into_iter().enumerate() {
        let copy = root.path().join(format!("junk-{n}"));
        copy_dir(&original, &copy);
        OpenOptions::new().append(true).open(copy.join(&rel)).unwrap().write_all(&junk).unwrap();
        recover_and_check(&copy, &expected, &format!("junk {n}")).await;
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_tombstone_at_every_byte() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    let mut expected = build(&original).await;
    let doomed = pattern(200, 400);
    let (rel, tomb_off) = {
        let store = VolumeStore::open(&original, config()).await.unwrap();
        put(&store, 200, &doomed).await;
        let loc = store.locate(Id(200)).await.unwrap().unwrap();
        assert!(store.delete(Id(200)).await.unwrap());
        store.close().await.unwrap();
        // The tombstone went to the blob's own volume, right after it.
        (loc.path.strip_prefix(&original).unwrap().to_path_buf(), loc.offset + loc.needle_len)
    };
    let len = fs::metadata(original.join(&rel)).unwrap().len();
    assert_eq!(len, tomb_off + 64, "the tombstone is the volume's last needle");
    // A torn tombstone is a delete that never completed: the blob is still there.
    expected.insert(200, Some(doomed));
    for cut in tomb_off..len {
        let copy = root.path().join(format!("cut-{cut}"));
        copy_dir(&original, &copy);
        truncate(&copy.join(&rel), cut);
        recover_and_check(&copy, &expected, &format!("tombstone cut at {cut}")).await;
        fs::remove_dir_all(&copy).unwrap();
    }
    expected.insert(200, None);
    let copy = root.path().join("intact");
    copy_dir(&original, &copy);
    recover_and_check(&copy, &expected, "intact tombstone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_index_is_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    let mut expected = build(&original).await;
    // Small puts until the newest one shares its volume with at least two other needles.
    let mut id = 100;
    let idx_rel = loop {
        let store = VolumeStore::open(&original, config()).await.unwrap();
        put(&store, id, &pattern(id, 250)).await;
        store.close().await.unwrap();
        expected.insert(id, Some(pattern(id, 250)));
        let (rel, _, _) = needle_of(&original, id).await;
        let idx_rel = rel.with_extension("idx");
        if fs::metadata(original.join(&idx_rel)).unwrap().len() >= 32 + 3 * 40 {
            break idx_rel;
        }
        id += 1;
        assert!(id < 120);
    };
    let idx_len = fs::metadata(original.join(&idx_rel)).unwrap().len();

    for cut in 0..idx_len {
        let copy = root.path().join(format!("idx-cut-{cut}"));
        copy_dir(&original, &copy);
        truncate(&copy.join(&idx_rel), cut);
        recover_and_check(&copy, &expected, &format!("index cut at {cut}")).await;
        fs::remove_dir_all(&copy).unwrap();
    }
    for at in 0..idx_len {
        let copy = root.path().join(format!("idx-garbled-{at}"));
        copy_dir(&original, &copy);
        let path = copy.join(&idx_rel);
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x5a;
        fs::write(&path, &bytes).unwrap();
        recover_and_check(&copy, &expected, &format!("index garbled at {at}")).await;
        fs::remove_dir_all(&copy).unwrap();
    }
    // Every index of every class gone: a full rebuild from the volumes.
    let copy = root.path().join("no-indexes");
    copy_dir(&original, &copy);
    for class in ["hot", "warm", "cold"] {
        let dir = copy.join("blobs").join(class);
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "idx") {
                fs::remove_file(p).unwrap();
            }
        }
    }
    recover_and_check(&copy, &expected, "all indexes deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_needle_before_good_ones_is_skipped() {
    // Concurrent puts finish out of order: a crash can leave a torn needle followed by a
    // complete, acknowledged one whose index entry was not written yet.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let cfg = VolumeConfig { volume_bytes: 1 << 20, ..config() };
    let store = VolumeStore::open(&dir, cfg.clone()).await.unwrap();
    for i in 1..=3u64 {
        put(&store, i, &pattern(i, 100_000)).await;
    }
    let torn = store.locate(Id(2)).await.unwrap().unwrap();
    store.close().await.unwrap();
    // Blob 2's second block never reached the disk, and the index lost its last entries.
    let mut bytes = fs::read(&torn.path).unwrap();
    for b in &mut bytes[(torn.data_offset + 70_000) as usize..(torn.data_offset + 80_000) as usize]
    {
        *b = 0;
    }
    fs::write(&torn.path, &bytes).unwrap();
    let idx = torn.path.with_extension("idx");
    truncate(&idx, 32 + 40);

    let store = VolumeStore::open(&dir, cfg.clone()).await.unwrap();
    assert_eq!(read_all(&store, Id(1), None).await.unwrap(), pattern(1, 100_000));
    assert_eq!(store.stat(Id(2)).await.unwrap(), None, "the torn put is gone");
    assert_eq!(
        read_all(&store, Id(3), None).await.unwrap(),
        pattern(3, 100_000),
        "the later put survives"
    );
    put(&store, 2, &pattern(22, 10)).await;
    let garbage: u64 = store.volumes().iter().map(|v| v.garbage_bytes).sum();
    assert!(garbage >= 100_000, "the torn needle is garbage for compaction ({garbage})");
    store.close().await.unwrap();
    let store = VolumeStore::open(&dir, cfg).await.unwrap();
    assert_eq!(read_all(&store, Id(2), None).await.unwrap(), pattern(22, 10));
    assert_eq!(read_all(&store, Id(3), None).await.unwrap(), pattern(3, 100_000));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_compaction_finishes_or_rolls_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let cfg = VolumeConfig { volume_bytes: 1 << 20, ..config() };
    let store = VolumeStore::open(&dir, cfg.clone()).await.unwrap();
    for i in 1..=10u64 {
        put(&store, i, &pattern(i, 5000)).await;
    }
    for i in [1, 3, 5, 7] {
        store.delete(Id(i)).await.unwrap();
    }
    let vol = store.locate(Id(2)).await.unwrap().unwrap();
    store.close().await.unwrap();
    let hot = dir.join("blobs/hot");
    let saved = root.path().join("saved");
    copy_dir(&hot, &saved);

    let store = VolumeStore::open(&dir, cfg.clone()).await.unwrap();
    let report = store.compact(vol.volume).await.unwrap();
    assert_eq!(report.blobs_copied, 6);
    store.close().await.unwrap();
    let expected: Expected =
        (1..=10u64).map(|i| (i, (![1, 3, 5, 7].contains(&i)).then(|| pattern(i, 5000)))).collect();

    // Crash after the commit point, before the old volume was unlinked: both files exist.
    let after = root.path().join("after-commit");
    copy_dir(&dir, &after);
    let name = vol.path.file_name().unwrap();
    let idx_name = Path::new(name).with_extension("idx");
    fs::copy(saved.join(name), after.join("blobs/hot").join(name)).unwrap();
    fs::copy(saved.join(&idx_name), after.join("blobs/hot").join(&idx_name)).unwrap();
    recover_and_check(&after, &expected, "crash after the compaction's rename").await;
    assert!(!after.join("blobs/hot").join(name).exists(), "the replaced volume is deleted on open");

    // Crash before the commit point: the original plus a half-written temporary copy.
    let before = root.path().join("before-commit");
    copy_dir(&dir, &before);
    let hot_before = before.join("blobs/hot");
    fs::remove_dir_all(&hot_before).unwrap();
    copy_dir(&saved, &hot_before);
    fs::write(hot_before.join("0000000099.dat.tmp"), b"half a volume").unwrap();
    recover_and_check(&before, &expected, "crash during the compaction's copy").await;
    assert!(!hot_before.join("0000000099.dat.tmp").exists());
}
