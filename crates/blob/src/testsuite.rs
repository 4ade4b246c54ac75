//! Backend-neutral conformance tests for [`BlobStore`] implementations (the volume engine,
//! S3). Every check takes a fresh, empty store and panics (like `assert!`) on a violation,
//! so a backend's test calls [`run_all`] with a factory:
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use quicktok_blob::{BlobStore, VolumeConfig, VolumeStore, testsuite};
//! let root = std::env::temp_dir().join(format!("blobs-{}", std::process::id()));
//! let n = std::sync::atomic::AtomicU32::new(0);
//! testsuite::run_all(|| async {
//!     let dir = root.join(n.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string());
//!     Arc::new(VolumeStore::open(dir, VolumeConfig::default()).await.unwrap()) as Arc<dyn BlobStore>
//! })
//! .await;
//! # }
//! ```
//!
//! or runs single checks ([`run_check`], or the `pub async fn`s directly). Range semantics
//! expected of every backend: `start > end` or `end > size` is
//! [`BlobError::RangeNotSatisfiable`]; an empty range inside the blob (`start == end <=
//! size`) reads zero bytes. Compiled in normal builds so other crates' tests can use it.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use quicktok_core::Id;

use crate::api::{BlobBody, BlobMeta, BlobStore, ByteRange, StorageClass, Usage};
use crate::error::{BlobError, Result};

/// A 64 KiB block: the volume engine's checksum unit, so the ranges below hit its edges.
const B: u64 = 64 * 1024;

/// Names of the checks, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "put_get_whole",
    "ranged_gets",
    "zero_length_blob",
    "range_past_end",
    "stat_metadata",
    "missing_blob",
    "delete_then_not_found",
    "double_put_already_exists",
    "size_mismatch_stores_nothing",
    "failing_body_stores_nothing",
    "set_class_keeps_bytes_and_id",
    "usage_per_class",
    "concurrent_puts_and_reads",
    "ping",
];

/// Runs every check, each on a fresh store from `factory`.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn BlobStore>>,
{
    for name in CHECKS {
        run_check(name, factory().await).await;
    }
}

/// Runs one check by name (see [`CHECKS`]).
pub async fn run_check(name: &str, store: Arc<dyn BlobStore>) {
    match name {
        "put_get_whole" => put_get_whole(store).await,
        "ranged_gets" => ranged_gets(store).await,
        "zero_length_blob" => zero_length_blob(store).await,
        "range_past_end" => range_past_end(store).await,
        "stat_metadata" => stat_metadata(store).await,
        "missing_blob" => missing_blob(store).await,
        "delete_then_not_found" => delete_then_not_found(store).await,
        "double_put_already_exists" => double_put_already_exists(store).await,
        "size_mismatch_stores_nothing" => size_mismatch_stores_nothing(store).await,
        "failing_body_stores_nothing" => failing_body_stores_nothing(store).await,
        "set_class_keeps_bytes_and_id" => set_class_keeps_bytes_and_id(store).await,
        "usage_per_class" => usage_per_class(store).await,
        "concurrent_puts_and_reads" => concurrent_puts_and_reads(store).await,
        "ping" => ping(store).await,
        other => panic!("unknown blob store check {other:?}"),
    }
}

#[track_caller]
fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A body yielding `bytes` in chunks of `chunk` bytes (at least 1).
pub fn body(bytes: Bytes, chunk: usize) -> BlobBody {
    let chunk = chunk.max(1);
    let parts: Vec<std::io::Result<Bytes>> = (0..bytes.len())
        .step_by(chunk)
        .map(|i| Ok(bytes.slice(i..(i + chunk).min(bytes.len()))))
        .collect();
    futures::stream::iter(parts).boxed()
}

/// A body yielding `bytes` in chunks and then failing.
pub fn failing_body(bytes: Bytes, chunk: usize) -> BlobBody {
    let err = futures::stream::iter([Err(std::io::Error::other("client went away"))]);
    body(bytes, chunk).chain(err).boxed()
}

/// `Some(start..end)`.
pub fn range(start: u64, end: u64) -> Option<ByteRange> {
    Some(ByteRange { start, end })
}

/// Reads `range` of `id` completely, checking the answer's range and length.
pub async fn read_all(store: &dyn BlobStore, id: Id, range: Option<ByteRange>) -> Result<Bytes> {
    let read = store.get(id, range).await?;
    if let Some(r) = range {
        assert_eq!(read.range, r, "get({id}) answered another range");
    } else {
        assert_eq!(read.range, ByteRange { start: 0, end: read.meta.size }, "whole get of {id}");
    }
    let want = read.range.len();
    let mut out = BytesMut::new();
    let mut body = read.body;
    while let Some(chunk) = body.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    assert_eq!(out.len() as u64, want, "get({id}) streamed a wrong length");
    Ok(out.freeze())
}

async fn put_bytes(
    store: &dyn BlobStore,
    id: Id,
    class: StorageClass,
    bytes: &Bytes,
    chunk: usize,
) -> BlobMeta {
    let meta = ok(
        store.put(id, class, bytes.len() as u64, "video/mp4", body(bytes.clone(), chunk)).await,
        "put",
    );
    assert_eq!((meta.id, meta.size, meta.class), (id, bytes.len() as u64, class), "put's metadata");
    meta
}

fn is_not_found(r: &Result<impl std::fmt::Debug>, id: Id) -> bool {
    matches!(r, Err(BlobError::NotFound(i)) if *i == id)
}

/// Blobs of several sizes and chunkings read back byte for byte.
pub async fn put_get_whole(store: Arc<dyn BlobStore>) {
    let sizes =
        [1usize, 100, 4096, B as usize - 1, B as usize, B as usize + 1, 3 * B as usize + 777];
    for (i, size) in sizes.iter().enumerate() {
        let id = Id(100 + i as u64);
        let data = pattern(i as u64, *size);
        let chunk = [1000, 7, 65_536, 1 << 20][i % 4];
        put_bytes(&*store, id, StorageClass::Hot, &data, chunk).await;
        assert_eq!(ok(read_all(&*store, id, None).await, "get"), data, "size {size}");
    }
    // A body in one big chunk, and one with empty chunks mixed in.
    let data = pattern(99, 300_000);
    put_bytes(&*store, Id(1), StorageClass::Warm, &data, data.len()).await;
    assert_eq!(ok(read_all(&*store, Id(1), None).await, "get"), data);
    let parts =
        vec![Ok(Bytes::new()), Ok(data.slice(..10)), Ok(Bytes::new()), Ok(data.slice(10..))];
    ok(
        store
            .put(
                Id(2),
                StorageClass::Cold,
                data.len() as u64,
                "a/b",
                futures::stream::iter(parts).boxed(),
            )
            .await,
        "put",
    );
    assert_eq!(ok(read_all(&*store, Id(2), None).await, "get"), data);
}

/// Ranges at, just before, just after and across 64 KiB boundaries.
pub async fn ranged_gets(store: Arc<dyn BlobStore>) {
    let size = 3 * B + 1234;
    let data = pattern(7, size as usize);
    let id = Id(1);
    put_bytes(&*store, id, StorageClass::Hot, &data, 10_000).await;
    let cases = [
        (0, 1),
        (0, B),
        (B - 1, B + 1),
        (B, 2 * B),
        (2 * B - 1, 2 * B + 1),
        (B + 5, 3 * B + 5),
        (100, size - 100),
        (3 * B, size),
        (size - 1, size),
        (0, size),
        (5, 5),
        (size, size),
    ];
    for (s, e) in cases {
        let got = ok(read_all(&*store, id, range(s, e)).await, "ranged get");
        assert_eq!(got, data.slice(s as usize..e as usize), "range {s}..{e}");
    }
    let read = ok(store.get(id, range(10, 20)).await, "get");
    assert_eq!(read.meta.size, size, "a ranged get reports the whole blob's size");
}

/// A blob of zero bytes exists, has size 0 and reads back empty.
pub async fn zero_length_blob(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    let meta =
        ok(store.put(id, StorageClass::Hot, 0, "text/plain", body(Bytes::new(), 1)).await, "put");
    assert_eq!(meta.size, 0);
    assert_eq!(ok(read_all(&*store, id, None).await, "get"), Bytes::new());
    assert_eq!(ok(read_all(&*store, id, range(0, 0)).await, "get"), Bytes::new());
    assert_eq!(ok(store.stat(id).await, "stat").map(|m| m.size), Some(0));
    let past = store.get(id, range(0, 1)).await;
    assert!(matches!(past, Err(BlobError::RangeNotSatisfiable { size: 0, .. })), "{past:?}");
    assert!(ok(store.delete(id).await, "delete"));
}

/// Ranges reaching past the end, or inverted, are refused with the blob's size.
pub async fn range_past_end(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    put_bytes(&*store, id, StorageClass::Hot, &pattern(1, 100), 100).await;
    for (s, e) in [(100, 101), (150, 160), (90, 101), (0, 1000), (101, 101), (20, 10)] {
        let got = store.get(id, range(s, e)).await;
        assert!(
            matches!(got, Err(BlobError::RangeNotSatisfiable { start, end, size: 100 }) if start == s && end == e),
            "{s}..{e}: {got:?}"
        );
    }
    assert_eq!(ok(read_all(&*store, id, range(99, 100)).await, "get"), pattern(1, 100).slice(99..));
}

/// `stat`, `put` and `get` agree on the metadata; the etag changes when an id is re-put.
pub async fn stat_metadata(store: Arc<dyn BlobStore>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let id = Id(1);
    let data = pattern(3, 5000);
    let put = ok(
        store.put(id, StorageClass::Warm, 5000, "image/jpeg", body(data.clone(), 999)).await,
        "put",
    );
    assert_eq!(put.content_type, "image/jpeg");
    assert!(!put.etag.is_empty() && !put.etag.contains('"'), "etag {:?} must be bare", put.etag);
    // Loose: a remote backend's clock may differ from ours.
    assert!(
        (put.created_at_ms - now).abs() < 10 * 60 * 1000,
        "created_at {} vs now {now}",
        put.created_at_ms
    );
    let stat = ok(store.stat(id).await, "stat").unwrap_or_else(|| panic!("stat found nothing"));
    assert_eq!(stat, put);
    assert_eq!(ok(store.get(id, None).await, "get").meta, put);
    assert_eq!(ok(store.stat(id).await, "stat"), Some(put.clone()), "stat is stable");

    ok(store.delete(id).await, "delete");
    let again = ok(
        store.put(id, StorageClass::Warm, 5000, "image/jpeg", body(pattern(4, 5000), 999)).await,
        "put",
    );
    assert_ne!(again.etag, put.etag, "a re-put id needs a new etag");
}

/// Absent ids: `get` and `set_class` are `NotFound`, `stat` is `None`, `delete` is `false`.
pub async fn missing_blob(store: Arc<dyn BlobStore>) {
    let id = Id(404);
    assert!(is_not_found(&store.get(id, None).await.map(|r| r.meta), id));
    assert!(is_not_found(&store.get(id, range(0, 1)).await.map(|r| r.meta), id));
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    assert!(!ok(store.delete(id).await, "delete"));
    assert!(is_not_found(&store.set_class(id, StorageClass::Cold).await, id));
}

/// A deleted blob is gone and its id can be used again.
pub async fn delete_then_not_found(store: Arc<dyn BlobStore>) {
    let (a, b) = (Id(1), Id(2));
    put_bytes(&*store, a, StorageClass::Hot, &pattern(1, 70_000), 4096).await;
    put_bytes(&*store, b, StorageClass::Hot, &pattern(2, 10), 4096).await;
    assert!(ok(store.delete(a).await, "delete"));
    assert!(is_not_found(&store.get(a, None).await.map(|r| r.meta), a));
    assert_eq!(ok(store.stat(a).await, "stat"), None);
    assert!(!ok(store.delete(a).await, "second delete"));
    assert_eq!(ok(read_all(&*store, b, None).await, "other blob"), pattern(2, 10));
    put_bytes(&*store, a, StorageClass::Cold, &pattern(3, 20), 4096).await;
    assert_eq!(ok(read_all(&*store, a, None).await, "re-put"), pattern(3, 20));
}

/// A second put of a live id fails and leaves the first intact.
pub async fn double_put_already_exists(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    put_bytes(&*store, id, StorageClass::Hot, &pattern(1, 1000), 100).await;
    let second = store.put(id, StorageClass::Hot, 500, "x/y", body(pattern(2, 500), 100)).await;
    assert!(matches!(second, Err(BlobError::AlreadyExists(i)) if i == id), "{second:?}");
    let other_class =
        store.put(id, StorageClass::Cold, 500, "x/y", body(pattern(2, 500), 100)).await;
    assert!(matches!(other_class, Err(BlobError::AlreadyExists(_))), "{other_class:?}");
    assert_eq!(ok(read_all(&*store, id, None).await, "get"), pattern(1, 1000));
    assert_eq!(ok(store.stat(id).await, "stat").map(|m| m.class), Some(StorageClass::Hot));
}

/// Bodies shorter or longer than announced store nothing and leave the id free.
pub async fn size_mismatch_stores_nothing(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    let short = store.put(id, StorageClass::Hot, 100, "x/y", body(pattern(1, 50), 10)).await;
    assert!(
        matches!(short, Err(BlobError::SizeMismatch { announced: 100, actual: 50 })),
        "{short:?}"
    );
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    let long = store.put(id, StorageClass::Hot, 100, "x/y", body(pattern(1, 150), 10)).await;
    assert!(matches!(long, Err(BlobError::SizeMismatch { announced: 100, .. })), "{long:?}");
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    let big = store
        .put(id, StorageClass::Hot, 3 * B, "x/y", body(pattern(1, 2 * B as usize), 50_000))
        .await;
    assert!(matches!(big, Err(BlobError::SizeMismatch { .. })), "{big:?}");
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    put_bytes(&*store, id, StorageClass::Hot, &pattern(2, 100), 10).await;
    assert_eq!(ok(read_all(&*store, id, None).await, "get"), pattern(2, 100));
}

/// A body stream that fails stores nothing and leaves the id free.
pub async fn failing_body_stores_nothing(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    let failed = store.put(id, StorageClass::Hot, 10, "x/y", failing_body(pattern(1, 5), 4)).await;
    assert!(matches!(failed, Err(BlobError::Body(_))), "{failed:?}");
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    let big = 2 * B as usize + 10;
    let failed = store
        .put(id, StorageClass::Cold, big as u64, "x/y", failing_body(pattern(1, big - 1), 30_000))
        .await;
    assert!(matches!(failed, Err(BlobError::Body(_))), "{failed:?}");
    assert_eq!(ok(store.stat(id).await, "stat"), None);
    put_bytes(&*store, id, StorageClass::Hot, &pattern(2, 10), 4).await;
    assert_eq!(ok(read_all(&*store, id, None).await, "get"), pattern(2, 10));
}

/// Moving between classes keeps the id, bytes, size and content type.
pub async fn set_class_keeps_bytes_and_id(store: Arc<dyn BlobStore>) {
    let id = Id(1);
    let data = pattern(5, 2 * B as usize + 99);
    let put = put_bytes(&*store, id, StorageClass::Hot, &data, 20_000).await;
    for class in [StorageClass::Warm, StorageClass::Cold, StorageClass::Cold, StorageClass::Hot] {
        let moved = ok(store.set_class(id, class).await, "set_class");
        assert_eq!((moved.id, moved.size, moved.class), (id, put.size, class));
        assert_eq!(moved.content_type, put.content_type);
        let stat =
            ok(store.stat(id).await, "stat").unwrap_or_else(|| panic!("moved blob vanished"));
        assert_eq!(stat.class, class);
        assert_eq!(ok(read_all(&*store, id, None).await, "get"), data);
        assert_eq!(
            ok(read_all(&*store, id, range(B - 3, B + 3)).await, "get"),
            data.slice(B as usize - 3..B as usize + 3)
        );
    }
    assert!(ok(store.delete(id).await, "delete"));
    assert_eq!(ok(store.stat(id).await, "stat"), None);
}

fn class_usage(u: &Usage, class: StorageClass) -> (u64, u64, u64) {
    u.classes.iter().find(|c| c.0 == class).map_or((0, 0, 0), |c| (c.1, c.2, c.3))
}

/// Live blobs and bytes per class follow puts, moves and deletes.
pub async fn usage_per_class(store: Arc<dyn BlobStore>) {
    let u = ok(store.usage().await, "usage");
    for class in StorageClass::ALL {
        assert_eq!(class_usage(&u, class).0, 0, "a fresh store is empty");
    }
    put_bytes(&*store, Id(1), StorageClass::Hot, &pattern(1, 1000), 100).await;
    put_bytes(&*store, Id(2), StorageClass::Hot, &pattern(2, 2000), 100).await;
    put_bytes(&*store, Id(3), StorageClass::Cold, &pattern(3, 70_000), 10_000).await;
    let u = ok(store.usage().await, "usage");
    let (n, live, disk) = class_usage(&u, StorageClass::Hot);
    assert_eq!((n, live), (2, 3000));
    assert!(disk >= live, "disk bytes {disk} < live bytes {live}");
    assert_eq!(class_usage(&u, StorageClass::Warm).0, 0);
    assert_eq!(class_usage(&u, StorageClass::Cold).0, 1);
    assert_eq!(class_usage(&u, StorageClass::Cold).1, 70_000);
    ok(store.set_class(Id(1), StorageClass::Warm).await, "set_class");
    ok(store.delete(Id(3)).await, "delete");
    let u = ok(store.usage().await, "usage");
    assert_eq!(class_usage(&u, StorageClass::Hot).0, 1);
    assert_eq!(class_usage(&u, StorageClass::Hot).1, 2000);
    assert_eq!(class_usage(&u, StorageClass::Warm).0, 1);
    assert_eq!(class_usage(&u, StorageClass::Warm).1, 1000);
    assert_eq!(class_usage(&u, StorageClass::Cold).0, 0);
}

/// Many tasks putting and reading at once: every blob reads back exactly.
pub async fn concurrent_puts_and_reads(store: Arc<dyn BlobStore>) {
    const TASKS: u64 = 12;
    const PER_TASK: u64 = 4;
    let size = |t: u64, i: u64| ((t * 7919 + i * 104_729) % (3 * B)) as usize;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let id = Id(t * 100 + i);
                let data = pattern(id.0, size(t, i));
                let class = StorageClass::ALL[((t + i) % 3) as usize];
                put_bytes(&*store, id, class, &data, 8192 + (t as usize) * 1000).await;
                // Read this task's earlier blobs while other tasks write.
                for j in 0..=i {
                    let id = Id(t * 100 + j);
                    let got = ok(read_all(&*store, id, None).await, "concurrent get");
                    assert_eq!(got, pattern(id.0, size(t, j)), "blob {id}");
                }
            }
        }));
    }
    for h in handles {
        if let Err(e) = h.await {
            panic!("a concurrent task failed: {e}");
        }
    }
    for t in 0..TASKS {
        for i in 0..PER_TASK {
            let id = Id(t * 100 + i);
            assert_eq!(ok(read_all(&*store, id, None).await, "get"), pattern(id.0, size(t, i)));
        }
    }
    let u = ok(store.usage().await, "usage");
    let total: u64 = StorageClass::ALL.iter().map(|c| class_usage(&u, *c).0).sum();
    assert_eq!(total, TASKS * PER_TASK);
}

/// A fresh store answers `ping`.
pub async fn ping(store: Arc<dyn BlobStore>) {
    ok(store.ping().await, "ping");
}
