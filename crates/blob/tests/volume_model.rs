//! Property test: random operation sequences (puts of 0 bytes to several 64 KiB blocks,
//! failed puts, deletes, ranged reads, stats, class moves, compactions, close and reopen)
//! against `VolumeStore` with tiny volumes and against a `HashMap` model; every answer
//! must match, including usage per class and etags.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quicktok_blob::testsuite::{body, failing_body, pattern, range, read_all};
use quicktok_blob::volume::VolumeStore;
use quicktok_blob::{BlobError, BlobStore, StorageClass, VolumeConfig};
use quicktok_core::Id;

const IDS: u64 = 10;
const CONTENT_TYPES: [&str; 3] = ["video/mp4", "image/jpeg", ""];

#[derive(Debug, Clone)]
enum Bad {
    Short,
    Long,
    Failing,
}

#[derive(Debug, Clone)]
enum Op {
    Put { id: u64, class: usize, size: usize, ct: usize, chunk: usize },
    BadPut { id: u64, size: usize, bad: Bad },
    Delete { id: u64 },
    Get { id: u64, a: u64, b: u64, whole: bool },
    Stat { id: u64 },
    SetClass { id: u64, class: usize },
    Compact { pick: prop::sample::Index },
    CompactAll,
    Reopen,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        6 => 1usize..600,
        2 => 60_000usize..140_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..IDS, 0..3usize, size(), 0..3usize, prop_oneof![Just(1usize << 20), 1usize..70_000])
            .prop_map(|(id, class, size, ct, chunk)| Op::Put { id, class, size, ct, chunk }),
        1 => (0..IDS, 1usize..70_000, prop_oneof![Just(Bad::Short), Just(Bad::Long), Just(Bad::Failing)])
            .prop_map(|(id, size, bad)| Op::BadPut { id, size, bad }),
        3 => (0..IDS).prop_map(|id| Op::Delete { id }),
        5 => (0..IDS, any::<u64>(), any::<u64>(), any::<bool>())
            .prop_map(|(id, a, b, whole)| Op::Get { id, a, b, whole }),
        1 => (0..IDS).prop_map(|id| Op::Stat { id }),
        3 => (0..IDS, 0..3usize).prop_map(|(id, class)| Op::SetClass { id, class }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::Compact { pick }),
        1 => Just(Op::CompactAll),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    volume_bytes: u64,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (prop_oneof![1024u64..4096, 4096u64..200_000], prop::collection::vec(op(), 1..60))
        .prop_map(|(volume_bytes, ops)| Case { volume_bytes, ops })
}

#[derive(Debug, Clone)]
struct Blob {
    class: StorageClass,
    data: Bytes,
    content_type: String,
    etag: String,
    created_at_ms: i64,
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = VolumeConfig {
        volume_bytes: case.volume_bytes,
        sync: false,
        compaction_garbage_percent: 20,
        ..VolumeConfig::default()
    };
    let mut store = VolumeStore::open(dir.path(), config.clone()).await.unwrap();
    let mut model: HashMap<u64, Blob> = HashMap::new();
    let mut seed = 0u64;

    for op in case.ops {
        match op {
            Op::Put { id, class, size, ct, chunk } => {
                seed += 1;
                let data = pattern(seed, size);
                let class = StorageClass::ALL[class];
                let got = store
                    .put(Id(id), class, size as u64, CONTENT_TYPES[ct], body(data.clone(), chunk))
                    .await;
                if model.contains_key(&id) {
                    prop_assert!(matches!(got, Err(BlobError::AlreadyExists(_))), "{:?}", got);
                } else {
                    let meta = got.unwrap();
                    prop_assert_eq!((meta.size, meta.class), (size as u64, class));
                    let blob = Blob {
                        class,
                        data,
                        content_type: CONTENT_TYPES[ct].to_owned(),
                        etag: meta.etag,
                        created_at_ms: meta.created_at_ms,
                    };
                    prop_assert!(model.values().all(|b| b.etag != blob.etag), "etags are unique");
                    model.insert(id, blob);
                }
            }
            Op::BadPut { id, size, bad } => {
                let data = pattern(12345, size);
                let (announced, b) = match bad {
                    Bad::Short => (size as u64 + 1, body(data, 5000)),
                    Bad::Long => (size as u64 - 1, body(data, 5000)),
                    Bad::Failing => (size as u64 + 10, failing_body(data, 5000)),
                };
                let got = store.put(Id(id), StorageClass::Hot, announced, "x/y", b).await;
                prop_assert!(got.is_err(), "a bad body was accepted");
                if model.contains_key(&id) {
                    prop_assert!(matches!(got, Err(BlobError::AlreadyExists(_))), "{:?}", got);
                }
            }
            Op::Delete { id } => {
                let got = store.delete(Id(id)).await.unwrap();
                prop_assert_eq!(got, model.remove(&id).is_some());
            }
            Op::Get { id, a, b, whole } => {
                let Some(blob) = model.get(&id) else {
                    let got = store.get(Id(id), None).await.map(|r| r.meta);
                    prop_assert!(matches!(got, Err(BlobError::NotFound(_))), "{:?}", got);
                    continue;
                };
                let n = blob.data.len() as u64;
                if whole {
                    prop_assert_eq!(
                        read_all(&store, Id(id), None).await.unwrap(),
                        blob.data.clone()
                    );
                    continue;
                }
                // Mostly valid ranges, sometimes just past either end.
                let (s, e) = (a % (n + 2), b % (n + 2));
                let got = read_all(&store, Id(id), range(s, e)).await;
                if s > e || e > n {
                    prop_assert!(
                        matches!(got, Err(BlobError::RangeNotSatisfiable { .. })),
                        "{}..{} of {}: {:?}",
                        s,
                        e,
                        n,
                        got.map(|b| b.len())
                    );
                } else {
                    prop_assert_eq!(got.unwrap(), blob.data.slice(s as usize..e as usize));
                }
            }
            Op::Stat { id } => {
                let got = store.stat(Id(id)).await.unwrap();
                match model.get(&id) {
                    None => prop_assert_eq!(got, None),
                    Some(b) => {
                        let m = got.unwrap();
                        prop_assert_eq!(m.size, b.data.len() as u64);
                        prop_assert_eq!(m.class, b.class);
                        prop_assert_eq!(&m.content_type, &b.content_type);
                        prop_assert_eq!(&m.etag, &b.etag, "etag survives moves and compaction");
                        prop_assert_eq!(m.created_at_ms, b.created_at_ms);
                    }
                }
            }
            Op::SetClass { id, class } => {
                let class = StorageClass::ALL[class];
                let got = store.set_class(Id(id), class).await;
                match model.get_mut(&id) {
                    None => prop_assert!(matches!(got, Err(BlobError::NotFound(_))), "{:?}", got),
                    Some(b) => {
                        let m = got.unwrap();
                        prop_assert_eq!((m.class, &m.etag), (class, &b.etag));
                        b.class = class;
                    }
                }
            }
            Op::Compact { pick } => {
                let vols = store.volumes();
                if !vols.is_empty() {
                    let v = &vols[pick.index(vols.len())];
                    let before = v.bytes;
                    let r = store.compact(v.id).await.unwrap();
                    prop_assert_eq!(r.bytes_before, before);
                    prop_assert!(r.bytes_after <= r.bytes_before);
                }
            }
            Op::CompactAll => {
                store.compact_all().await.unwrap();
            }
            Op::Reopen => {
                store.close().await.unwrap();
                store = VolumeStore::open(dir.path(), config.clone()).await.unwrap();
            }
        }
        let usage = store.usage().await.unwrap();
        for (class, n, live, disk) in usage.classes {
            let want: Vec<&Blob> = model.values().filter(|b| b.class == class).collect();
            prop_assert_eq!(n, want.len() as u64, "{:?} blobs", class);
            prop_assert_eq!(
                live,
                want.iter().map(|b| b.data.len() as u64).sum::<u64>(),
                "{:?} bytes",
                class
            );
            prop_assert!(disk >= live);
        }
    }
    // Everything reads back, before and after a final reopen.
    for round in 0..2 {
        for id in 0..IDS {
            match model.get(&id) {
                Some(b) => {
                    prop_assert_eq!(read_all(&store, Id(id), None).await.unwrap(), b.data.clone())
                }
                None => prop_assert_eq!(store.stat(Id(id)).await.unwrap(), None),
            }
        }
        if round == 0 {
            store.close().await.unwrap();
            store = VolumeStore::open(dir.path(), config.clone()).await.unwrap();
        }
    }
    store.close().await.unwrap();
    Ok(())
}

#[test]
fn volume_store_matches_model() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128);
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&case(), |c| rt.block_on(run_case(c)));
    if let Err(e) = result {
        panic!("{e}");
    }
}
