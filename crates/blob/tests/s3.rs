//! The S3 backend against a real S3 server: the one at `QUICKTOK_TEST_S3_URL` if set (keys
//! in `QUICKTOK_TEST_S3_ACCESS_KEY_ID` / `QUICKTOK_TEST_S3_SECRET_ACCESS_KEY`, default
//! `quicktok` / `quicktok-secret`), else a SeaweedFS that `scripts/seaweedfs.sh` starts from
//! `QUICKTOK_WEED_BIN`, `weed` on PATH or the virtualenv of `scripts/seaweedfs.sh install`.
//! Without any, each test prints `skipped: no s3` and passes. Every test gets a bucket of
//! its own. The shared `quicktok_blob::testsuite` runs here check by check, then the
//! S3-specific tests.
//!
//! One SeaweedFS serves a whole test run: under nextest (a process per test) the first
//! process starts it and the others find it through a directory named after the run; a
//! watchdog stops it when the run's runner process (or, under `cargo test`, the test
//! process) exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use quicktok_blob::testsuite::{self, body, failing_body, range};
use quicktok_blob::{BlobError, BlobStore, ByteRange, S3Config, S3Store, StorageClass};
use quicktok_core::Id;
use quicktok_core::clock::ManualClock;

const MIB: u64 = 1024 * 1024;

/// Where the tests' S3 server is.
#[derive(Debug)]
struct TestServer {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    /// Started by these tests (so it checks signatures with known keys).
    managed: bool,
}

static SERVER: OnceLock<Option<TestServer>> = OnceLock::new();

fn server() -> Option<&'static TestServer> {
    SERVER.get_or_init(find_server).as_ref()
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn find_server() -> Option<TestServer> {
    let access_key_id = env_or("QUICKTOK_TEST_S3_ACCESS_KEY_ID", "quicktok");
    let secret_access_key = env_or("QUICKTOK_TEST_S3_SECRET_ACCESS_KEY", "quicktok-secret");
    if let Ok(url) = std::env::var("QUICKTOK_TEST_S3_URL")
        && !url.is_empty()
    {
        return Some(TestServer {
            endpoint: url,
            access_key_id,
            secret_access_key,
            managed: false,
        });
    }
    let weed = weed_binary()?;
    let endpoint = shared_seaweedfs(&weed, &access_key_id, &secret_access_key)
        .unwrap_or_else(|e| panic!("`weed` is installed but SeaweedFS did not start: {e}"));
    Some(TestServer { endpoint, access_key_id, secret_access_key, managed: true })
}

/// `QUICKTOK_WEED_BIN`, else `weed` on PATH, else the virtualenv `scripts/seaweedfs.sh
/// install` falls back to when pip may not install into python3 itself.
fn weed_binary() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("QUICKTOK_WEED_BIN")
        && !bin.is_empty()
    {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).map(|dir| dir.join("weed")).find(|p| p.is_file());
    on_path.or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(cache.join("quicktok/seaweedfs-venv/bin/weed")).filter(|p| p.is_file())
    })
}

/// Starts (or joins) the SeaweedFS of this test run and returns its endpoint.
fn shared_seaweedfs(weed: &Path, access_key: &str, secret: &str) -> Result<String, String> {
    // nextest runs each test in its own process, all children of the runner and sharing
    // NEXTEST_RUN_ID; `cargo test` runs them all in this process.
    let (run, watch) = match std::env::var("NEXTEST_RUN_ID") {
        Ok(run) if !run.is_empty() => (run, std::os::unix::process::parent_id()),
        _ => (format!("pid{}", std::process::id()), std::process::id()),
    };
    let dir = std::env::temp_dir().join(format!("quicktok-seaweedfs-{run}"));
    let endpoint_file = dir.join("endpoint");
    let failed_file = dir.join("failed");
    if std::fs::create_dir(&dir).is_ok() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/seaweedfs.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&dir)
            .env("QUICKTOK_WEED_BIN", weed)
            .env("QUICKTOK_TEST_S3_ACCESS_KEY_ID", access_key)
            .env("QUICKTOK_TEST_S3_SECRET_ACCESS_KEY", secret)
            .env("SEAWEEDFS_WATCH_PID", watch.to_string())
            .env("SEAWEEDFS_REMOVE_DIR", "1")
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr).into_owned();
            let _ = std::fs::write(&failed_file, &why);
            return Err(why);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(endpoint) = std::fs::read_to_string(&endpoint_file)
            && endpoint.ends_with('\n')
        {
            return Ok(endpoint.trim().to_owned());
        }
        if let Ok(why) = std::fs::read_to_string(&failed_file) {
            return Err(why);
        }
        if Instant::now() > deadline {
            return Err(format!("no endpoint in {} after 120 s", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn base_config(server: &TestServer) -> S3Config {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    S3Config {
        endpoint: server.endpoint.clone(),
        bucket: format!(
            "qt-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: server.secret_access_key.clone(),
        allow_http: true,
        max_retries: 2,
        retry_timeout_secs: 10,
        ..S3Config::default()
    }
}

/// A store on a new bucket, or `None` (after printing why) without an S3 server.
async fn fresh_store(tweak: impl FnOnce(&mut S3Config)) -> Option<S3Store> {
    let Some(server) = server() else {
        println!("skipped: no s3");
        return None;
    };
    let mut config = base_config(server);
    tweak(&mut config);
    let store = S3Store::new(config).unwrap_or_else(|e| panic!("S3Store::new: {e}"));
    // A server that has just started may still be connecting its filer: retry a little.
    let mut attempt = 0;
    loop {
        match store.create_bucket().await {
            Ok(()) => break,
            Err(e) if attempt < 50 => {
                attempt += 1;
                if attempt == 1 {
                    eprintln!("creating bucket: {e}; retrying");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot create a bucket: {e}"),
        }
    }
    Some(store)
}

/// Deterministic pseudo-random bytes, different per seed.
fn data(len: usize, seed: u64) -> Bytes {
    testsuite::pattern(seed, len)
}

/// Reads `range` of `id` completely (checking the range answered and the length streamed).
async fn read_all(store: &S3Store, id: Id, range: Option<ByteRange>) -> Bytes {
    testsuite::read_all(store, id, range).await.unwrap_or_else(|e| panic!("get {id}: {e}"))
}

/// One test per check of the shared suite, each on a fresh bucket.
macro_rules! shared_suite {
    ($($check:ident),* $(,)?) => {
        const SUITE_CHECKS: &[&str] = &[$(stringify!($check)),*];
        mod shared_suite {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some(store) = super::fresh_store(|_| {}).await else { return };
                    let store: std::sync::Arc<dyn quicktok_blob::BlobStore> = std::sync::Arc::new(store);
                    quicktok_blob::testsuite::run_check(stringify!($check), store).await;
                }
            )*
        }
    };
}

shared_suite!(
    put_get_whole,
    ranged_gets,
    zero_length_blob,
    range_past_end,
    stat_metadata,
    missing_blob,
    delete_then_not_found,
    double_put_already_exists,
    size_mismatch_stores_nothing,
    failing_body_stores_nothing,
    set_class_keeps_bytes_and_id,
    usage_per_class,
    concurrent_puts_and_reads,
    ping,
);

#[test]
fn shared_suite_covers_every_check() {
    assert_eq!(SUITE_CHECKS, quicktok_blob::testsuite::CHECKS, "add new checks to shared_suite!");
}

#[tokio::test]
async fn small_blob_round_trip() {
    let clock = ManualClock::new(1_760_000_000_123);
    let Some(store) = fresh_store(|_| {}).await else { return };
    let store = store.with_clock(std::sync::Arc::new(clock));
    let id = Id(7_261_839_467_622_400_001);
    let bytes = data(100_000, 1);
    assert_eq!(store.stat(id).await.unwrap(), None);
    let meta = store
        .put(id, StorageClass::Hot, 100_000, "video/mp4", body(bytes.clone(), 7000))
        .await
        .unwrap();
    assert_eq!(
        (meta.size, meta.class, meta.created_at_ms),
        (100_000, StorageClass::Hot, 1_760_000_000_123)
    );
    assert_eq!(meta.content_type, "video/mp4");
    assert!(!meta.etag.is_empty() && !meta.etag.contains('"'), "{}", meta.etag);
    assert_eq!(store.stat(id).await.unwrap(), Some(meta.clone()));
    assert_eq!(read_all(&store, id, None).await, bytes);
    let read = store.get(id, range(10, 20)).await.unwrap();
    assert_eq!((read.meta.clone(), read.range), (meta.clone(), ByteRange { start: 10, end: 20 }));
    assert_eq!(read_all(&store, id, range(99_990, 100_000)).await, bytes.slice(99_990..));
    assert!(store.key(id).starts_with("blobs/"));
    store.ping().await.unwrap();

    // Same id again: refused atomically, the original untouched.
    let again = store
        .put(id, StorageClass::Cold, 3, "text/plain", body(Bytes::from_static(b"abc"), 3))
        .await;
    assert!(matches!(again, Err(BlobError::AlreadyExists(got)) if got == id), "{again:?}");
    assert_eq!(store.stat(id).await.unwrap(), Some(meta));

    assert!(store.delete(id).await.unwrap());
    assert!(!store.delete(id).await.unwrap());
    assert_eq!(store.stat(id).await.unwrap(), None);
    assert!(matches!(store.get(id, None).await, Err(BlobError::NotFound(got)) if got == id));
    assert!(matches!(store.set_class(id, StorageClass::Cold).await, Err(BlobError::NotFound(_))));

    // An empty blob.
    let empty = Id(42);
    store.put(empty, StorageClass::Warm, 0, "image/jpeg", body(Bytes::new(), 1)).await.unwrap();
    assert_eq!(read_all(&store, empty, None).await, Bytes::new());
    assert_eq!(read_all(&store, empty, range(0, 0)).await, Bytes::new());
}

#[tokio::test]
async fn bad_bodies_store_nothing() {
    let Some(store) = fresh_store(|_| {}).await else { return };
    let short = store.put(Id(1), StorageClass::Hot, 10, "x/y", body(data(9, 2), 4)).await;
    assert!(
        matches!(short, Err(BlobError::SizeMismatch { announced: 10, actual: 9 })),
        "{short:?}"
    );
    let long = store.put(Id(1), StorageClass::Hot, 10, "x/y", body(data(25, 2), 4)).await;
    assert!(matches!(long, Err(BlobError::SizeMismatch { announced: 10, actual: 25 })), "{long:?}");
    let failing = store.put(Id(1), StorageClass::Hot, 10, "x/y", failing_body(data(5, 2), 4)).await;
    assert!(matches!(failing, Err(BlobError::Body(_))), "{failing:?}");
    assert_eq!(store.stat(Id(1)).await.unwrap(), None);
}

#[tokio::test]
async fn ranges_outside_the_blob_are_refused() {
    let Some(store) = fresh_store(|_| {}).await else { return };
    let id = Id(5);
    store.put(id, StorageClass::Hot, 100, "x/y", body(data(100, 3), 100)).await.unwrap();
    for (start, end) in [(100, 101), (150, 160), (90, 101), (0, 1000), (101, 101), (20, 10)] {
        let got = store.get(id, range(start, end)).await;
        assert!(
            matches!(got, Err(BlobError::RangeNotSatisfiable { start: s, end: e, size: 100 }) if s == start && e == end),
            "{start}..{end}: {got:?}"
        );
    }
    assert_eq!(read_all(&store, id, range(100, 100)).await, Bytes::new());
    assert_eq!(read_all(&store, id, range(99, 100)).await, data(100, 3).slice(99..));
    assert!(matches!(store.get(Id(6), range(0, 1)).await, Err(BlobError::NotFound(_))));
    assert!(matches!(store.get(Id(6), range(1, 1)).await, Err(BlobError::NotFound(_))));
}

/// A multipart store: 5 MiB parts above 5 MiB, so a 12 MiB blob has parts 5 + 5 + 2.
fn multipart(config: &mut S3Config) {
    config.multipart_threshold_bytes = 5 * MIB;
    config.part_size_bytes = 5 * MIB;
}

#[tokio::test]
async fn multipart_put_and_ranged_reads_across_parts() {
    let Some(store) = fresh_store(multipart).await else { return };
    let id = Id(9_000_001);
    let size = 12 * MIB + 123;
    let bytes = data(size as usize, 4);
    // Odd-sized chunks so parts are cut across chunk boundaries.
    let meta = store
        .put(id, StorageClass::Warm, size, "video/mp4", body(bytes.clone(), 300_001))
        .await
        .unwrap();
    assert_eq!((meta.size, meta.class), (size, StorageClass::Warm));
    let stat = store.stat(id).await.unwrap().unwrap();
    assert_eq!(stat, meta, "multipart uploads keep content type, class and creation time");
    assert!(store.incomplete_uploads().await.unwrap().is_empty());
    // The storage class was set on the multipart upload too (usage reads it from the listing).
    assert_eq!(store.usage().await.unwrap().classes[1], (StorageClass::Warm, 1, size, size));

    assert_eq!(read_all(&store, id, None).await, bytes);
    let p = 5 * MIB;
    for (start, end) in [
        (p - 10, p + 10),
        (2 * p - 1, 2 * p + 1),
        (p - 1, 2 * p + 1),
        (0, 1),
        (size - 1, size),
        (3, size),
    ] {
        let got = read_all(&store, id, range(start, end)).await;
        assert!(got == bytes.slice(start as usize..end as usize), "range {start}..{end}");
    }

    // Refused without uploading when the id is live (HEAD before the upload).
    let again = store
        .put(id, StorageClass::Hot, size, "video/mp4", body(bytes.clone(), MIB as usize))
        .await;
    assert!(matches!(again, Err(BlobError::AlreadyExists(_))), "{again:?}");
    assert!(store.incomplete_uploads().await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_multipart_uploads_are_aborted() {
    let Some(store) = fresh_store(multipart).await else { return };
    let size = 12 * MIB;
    // The body fails after two parts were sent.
    let id = Id(77);
    let got = store
        .put(
            id,
            StorageClass::Hot,
            size,
            "video/mp4",
            failing_body(data(11 * MIB as usize, 5), MIB as usize),
        )
        .await;
    assert!(matches!(got, Err(BlobError::Body(_))), "{got:?}");
    // Too short, and too long.
    let got = store
        .put(
            id,
            StorageClass::Hot,
            size,
            "video/mp4",
            body(data(size as usize - 1, 5), MIB as usize),
        )
        .await;
    assert!(
        matches!(got, Err(BlobError::SizeMismatch { actual, .. }) if actual == size - 1),
        "{got:?}"
    );
    let got = store
        .put(
            id,
            StorageClass::Hot,
            size,
            "video/mp4",
            body(data(size as usize + 7, 5), MIB as usize),
        )
        .await;
    assert!(
        matches!(got, Err(BlobError::SizeMismatch { actual, .. }) if actual == size + 7),
        "{got:?}"
    );
    assert_eq!(store.stat(id).await.unwrap(), None);
    assert!(store.usage().await.unwrap().classes.iter().all(|c| c.1 == 0));
    assert_eq!(store.incomplete_uploads().await.unwrap(), Vec::<String>::new());

    // A put dropped mid-upload (client gone, request cancelled) is aborted in the background.
    let stalled =
        body(data(7 * MIB as usize, 6), MIB as usize).chain(futures::stream::pending()).boxed();
    let put = store.put(Id(78), StorageClass::Hot, size, "video/mp4", stalled);
    assert!(tokio::time::timeout(Duration::from_secs(1), put).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.incomplete_uploads().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the dropped upload was not aborted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.stat(Id(78)).await.unwrap(), None);
}

#[tokio::test]
async fn set_class_keeps_id_bytes_and_creation_time() {
    let Some(store) = fresh_store(multipart).await else { return };
    let small = Id(1001);
    let large = Id(1002);
    let small_bytes = data(4096, 7);
    let large_bytes = data(6 * MIB as usize + 5, 8);
    let small_meta = store
        .put(small, StorageClass::Hot, 4096, "image/jpeg", body(small_bytes.clone(), 1000))
        .await
        .unwrap();
    let large_meta = store
        .put(
            large,
            StorageClass::Hot,
            large_bytes.len() as u64,
            "video/mp4",
            body(large_bytes.clone(), MIB as usize),
        )
        .await
        .unwrap();
    let key = store.key(large);

    for class in [StorageClass::Warm, StorageClass::Cold, StorageClass::Hot, StorageClass::Cold] {
        let moved = store.set_class(small, class).await.unwrap();
        assert_eq!(moved.class, class);
        assert_eq!(store.stat(small).await.unwrap(), Some(moved.clone()));
        assert_eq!(
            (moved.created_at_ms, moved.content_type.as_str()),
            (small_meta.created_at_ms, "image/jpeg")
        );
        assert_eq!(read_all(&store, small, None).await, small_bytes);
    }

    // A reader that started before the move finishes reading the same bytes.
    let mut read = store.get(large, None).await.unwrap();
    let first = read.body.next().await.unwrap().unwrap();
    let moved = store.set_class(large, StorageClass::Cold).await.unwrap();
    let rest: Vec<Bytes> = read.body.try_collect().await.unwrap();
    assert_eq!(Bytes::from([vec![first], rest].concat().concat()), large_bytes);
    assert_eq!(
        (moved.class, moved.size, moved.created_at_ms),
        (StorageClass::Cold, large_meta.size, large_meta.created_at_ms)
    );
    assert_eq!(store.key(large), key);
    assert_eq!(
        read_all(&store, large, range(5 * MIB - 3, 5 * MIB + 3)).await,
        large_bytes.slice(5 * MIB as usize - 3..5 * MIB as usize + 3)
    );
    // Moving to the class it has is a no-op.
    assert_eq!(store.set_class(large, StorageClass::Cold).await.unwrap(), moved);

    // The storage class reached the server: usage counts by the listing's storage class.
    let usage = store.usage().await.unwrap();
    let cold = usage.classes.iter().find(|c| c.0 == StorageClass::Cold).unwrap();
    assert_eq!(cold.1, 2);
    assert_eq!(cold.2, 4096 + large_bytes.len() as u64);
}

#[tokio::test]
async fn usage_counts_per_class() {
    let Some(store) = fresh_store(|_| {}).await else { return };
    let sizes = [
        (StorageClass::Hot, 10u64),
        (StorageClass::Hot, 20),
        (StorageClass::Warm, 5),
        (StorageClass::Cold, 1),
    ];
    for (i, (class, size)) in sizes.iter().enumerate() {
        store
            .put(Id(100 + i as u64), *class, *size, "x/y", body(data(*size as usize, 9), 4))
            .await
            .unwrap();
    }
    let usage = store.usage().await.unwrap();
    assert_eq!(
        usage.classes,
        vec![
            (StorageClass::Hot, 2, 30, 30),
            (StorageClass::Warm, 1, 5, 5),
            (StorageClass::Cold, 1, 1, 1)
        ]
    );
}

#[tokio::test]
async fn usage_heads_objects_when_classes_share_a_name() {
    // Servers without tiers: every class stored as STANDARD; the metadata tells them apart.
    let Some(store) = fresh_store(|c| {
        c.storage_class_warm = "STANDARD".into();
        c.storage_class_cold = String::new();
    })
    .await
    else {
        return;
    };
    store.put(Id(1), StorageClass::Hot, 3, "x/y", body(data(3, 1), 3)).await.unwrap();
    store.put(Id(2), StorageClass::Warm, 4, "x/y", body(data(4, 1), 4)).await.unwrap();
    store.put(Id(3), StorageClass::Cold, 5, "x/y", body(data(5, 1), 5)).await.unwrap();
    store.set_class(Id(1), StorageClass::Cold).await.unwrap();
    let usage = store.usage().await.unwrap();
    assert_eq!(
        usage.classes,
        vec![
            (StorageClass::Hot, 0, 0, 0),
            (StorageClass::Warm, 1, 4, 4),
            (StorageClass::Cold, 2, 8, 8)
        ]
    );
}

#[tokio::test]
async fn prefixes_isolate_stores_in_one_bucket() {
    let Some(a) = fresh_store(|c| c.prefix = "tenant-a/blobs".into()).await else { return };
    let mut config = a.config().clone();
    config.prefix = String::new();
    let b = S3Store::new(config).unwrap();
    a.put(Id(1), StorageClass::Hot, 3, "x/y", body(data(3, 1), 3)).await.unwrap();
    b.put(Id(1), StorageClass::Warm, 4, "x/y", body(data(4, 2), 4)).await.unwrap();
    assert_eq!(a.stat(Id(1)).await.unwrap().unwrap().size, 3);
    assert_eq!(b.stat(Id(1)).await.unwrap().unwrap().size, 4);
    assert_eq!(a.usage().await.unwrap().classes[0], (StorageClass::Hot, 1, 3, 3));
    // The unprefixed store sees the other store's objects as foreign keys and skips them.
    assert_eq!(b.usage().await.unwrap().classes[1], (StorageClass::Warm, 1, 4, 4));
    assert_eq!(b.usage().await.unwrap().classes[0], (StorageClass::Hot, 0, 0, 0));
}

#[tokio::test]
async fn wrong_credentials_or_missing_bucket_are_unavailable() {
    let Some(store) = fresh_store(|_| {}).await else { return };
    let mut config = store.config().clone();
    config.bucket = "qt-no-such-bucket".into();
    let missing = S3Store::new(config.clone()).unwrap();
    assert!(matches!(missing.ping().await, Err(BlobError::Unavailable(_))));
    if !server().is_some_and(|s| s.managed) {
        return; // an external server may not check signatures
    }
    config.bucket = store.config().bucket.clone();
    config.secret_access_key = "wrong".into();
    let denied = S3Store::new(config).unwrap();
    let got = denied.ping().await;
    assert!(matches!(got, Err(BlobError::Unavailable(_))), "{got:?}");
    let got = denied.put(Id(1), StorageClass::Hot, 1, "x/y", body(data(1, 1), 1)).await;
    assert!(matches!(got, Err(BlobError::Unavailable(_))), "{got:?}");
}

/// No server needed: a closed port on loopback.
#[tokio::test]
async fn server_down_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = S3Store::new(S3Config {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "down".into(),
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        allow_http: true,
        max_retries: 1,
        retry_timeout_secs: 2,
        ..S3Config::default()
    })
    .unwrap();
    let started = Instant::now();
    let unavailable = |r: &Result<(), BlobError>| matches!(r, Err(BlobError::Unavailable(_)));
    let results = [
        store.ping().await,
        store
            .put(Id(1), StorageClass::Hot, 1, "x/y", body(Bytes::from_static(b"a"), 1))
            .await
            .map(drop),
        store
            .put(
                Id(1),
                StorageClass::Hot,
                6 * MIB,
                "x/y",
                body(data(6 * MIB as usize, 1), MIB as usize),
            )
            .await
            .map(drop),
        store.get(Id(1), None).await.map(drop),
        store.get(Id(1), range(0, 1)).await.map(drop),
        store.stat(Id(1)).await.map(drop),
        store.delete(Id(1)).await.map(drop),
        store.set_class(Id(1), StorageClass::Cold).await.map(drop),
        store.usage().await.map(drop),
    ];
    for (i, result) in results.iter().enumerate() {
        assert!(unavailable(result), "operation {i}: {result:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}
