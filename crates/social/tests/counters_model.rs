//! The counter service against a simple model: random adds, reads, flushes, failed flushes
//! and cache expiry; every read must equal the model's total, and after every successful
//! flush the store must hold exactly the model's totals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use quicktok_core::{Id, ManualClock};
use quicktok_social::{
    CounterKey, CounterService, CounterStore, CountersConfig, Metric, Result, SocialError,
};

/// An in-memory store whose next `apply` can be made to fail.
#[derive(Default)]
struct FakeStore {
    values: Mutex<HashMap<CounterKey, i64>>,
    fail_next: AtomicBool,
    loads: AtomicUsize,
    applies: AtomicUsize,
}

#[async_trait::async_trait]
impl CounterStore for FakeStore {
    async fn load(&self, keys: &[CounterKey]) -> Result<Vec<i64>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        let values = self.values.lock().unwrap();
        Ok(keys.iter().map(|k| values.get(k).copied().unwrap_or(0)).collect())
    }

    async fn apply(&self, deltas: &[(CounterKey, i64)]) -> Result<()> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(SocialError::store(true, "injected failure"));
        }
        let mut values = self.values.lock().unwrap();
        for (key, delta) in deltas {
            *values.entry(*key).or_insert(0) += delta;
        }
        Ok(())
    }
}

fn keys() -> Vec<CounterKey> {
    let mut keys = Vec::new();
    for id in [1, 2, u64::MAX] {
        keys.push(CounterKey::video(Id(id), Metric::Likes));
        keys.push(CounterKey::video(Id(id), Metric::Comments));
        keys.push(CounterKey::user(Id(id), Metric::Followers));
    }
    keys
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, i64),
    Get(Vec<usize>),
    Flush,
    /// A flush with reads interleaved while the store is writing.
    FlushWhileReading(Vec<usize>),
    FailedFlush,
    /// Time passes (cached values may expire).
    Tick(i64),
    ClearCache,
}

fn op() -> impl Strategy<Value = Op> {
    let n = keys().len();
    prop_oneof![
        6 => (0..n, -3i64..=5).prop_map(|(k, d)| Op::Add(k, d)),
        4 => prop::collection::vec(0..n, 1..5).prop_map(Op::Get),
        2 => Just(Op::Flush),
        2 => prop::collection::vec(0..n, 1..5).prop_map(Op::FlushWhileReading),
        1 => Just(Op::FailedFlush),
        1 => (0i64..3_000).prop_map(Op::Tick),
        1 => Just(Op::ClearCache),
    ]
}

fn service(store: Arc<FakeStore>, clock: &ManualClock, shards: usize) -> CounterService {
    let config = CountersConfig {
        shards,
        cache_ttl_ms: 1_000,
        max_cached_per_shard: 4,
        ..Default::default()
    };
    CounterService::new(store, config, Arc::new(clock.clone()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_model(ops in prop::collection::vec(op(), 1..80), shards in 1usize..4) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let keys = keys();
            let store = Arc::new(FakeStore::default());
            let clock = ManualClock::new(1_000_000);
            let counters = service(store.clone(), &clock, shards);
            let mut model: HashMap<CounterKey, i64> = HashMap::new();
            let mut persisted: HashMap<CounterKey, i64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Add(k, d) => {
                        counters.add(keys[k], d);
                        *model.entry(keys[k]).or_insert(0) += d;
                    }
                    Op::Get(ks) => {
                        let wanted: Vec<CounterKey> = ks.iter().map(|&k| keys[k]).collect();
                        let got = counters.get_many(&wanted).await.unwrap();
                        let expected: Vec<i64> =
                            wanted.iter().map(|k| model.get(k).copied().unwrap_or(0)).collect();
                        prop_assert_eq!(got, expected);
                    }
                    Op::Flush => {
                        counters.flush().await.unwrap();
                        persisted = model.clone();
                        prop_assert_eq!(counters.pending_len(), 0);
                    }
                    Op::FlushWhileReading(ks) => {
                        let wanted: Vec<CounterKey> = ks.iter().map(|&k| keys[k]).collect();
                        let (flushed, got) = tokio::join!(counters.flush(), counters.get_many(&wanted));
                        flushed.unwrap();
                        persisted = model.clone();
                        let expected: Vec<i64> =
                            wanted.iter().map(|k| model.get(k).copied().unwrap_or(0)).collect();
                        prop_assert_eq!(got.unwrap(), expected);
                    }
                    Op::FailedFlush => {
                        store.fail_next.store(true, Ordering::SeqCst);
                        let pending = counters.pending_len();
                        let result = counters.flush().await;
                        // Nothing to write means no store call, so nothing can fail.
                        prop_assert_eq!(result.is_err(), pending > 0);
                        store.fail_next.store(false, Ordering::SeqCst);
                        prop_assert_eq!(counters.pending_len(), pending);
                    }
                    Op::Tick(ms) => clock.advance_ms(ms),
                    Op::ClearCache => counters.clear_cache(),
                }
                // The store only ever holds what successful flushes wrote.
                let stored = store.values.lock().unwrap().clone();
                for key in &keys {
                    prop_assert_eq!(
                        stored.get(key).copied().unwrap_or(0),
                        persisted.get(key).copied().unwrap_or(0)
                    );
                }
            }
            // Exact after a final flush, and every read agrees.
            counters.flush().await.unwrap();
            let stored = store.values.lock().unwrap().clone();
            let got = counters.get_many(&keys).await.unwrap();
            for (key, value) in keys.iter().zip(got) {
                let expected = model.get(key).copied().unwrap_or(0);
                prop_assert_eq!(stored.get(key).copied().unwrap_or(0), expected);
                prop_assert_eq!(value, expected);
            }
            Ok(())
        })?;
    }
}

/// Adds, reads and flushes from many tasks at once: no delta is lost or counted twice, and
/// reads taken while nothing is being added see the exact total.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_reads_and_flushes_stay_exact() {
    const TASKS: i64 = 8;
    const ADDS: i64 = 500;
    let store = Arc::new(FakeStore::default());
    let clock = ManualClock::new(0);
    let counters = Arc::new(service(store.clone(), &clock, 4));
    let key = CounterKey::video(Id(7), Metric::Likes);
    // The flusher runs until every adder is done (and at least 200 times), so flushes,
    // failed ones included, interleave with the adds whatever the scheduling.
    let adding = Arc::new(std::sync::atomic::AtomicUsize::new(TASKS as usize));
    let flusher = {
        let counters = counters.clone();
        let store = store.clone();
        let adding = adding.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while i < 200 || adding.load(Ordering::SeqCst) > 0 {
                // Every fifth flush fails: its deltas must come back.
                store.fail_next.store(i % 5 == 0, Ordering::SeqCst);
                let _ = counters.flush().await;
                let value = counters.get(key).await.unwrap();
                assert!((0..=TASKS * ADDS).contains(&value), "{value}");
                tokio::task::yield_now().await;
                i += 1;
            }
        })
    };
    let adders: Vec<_> = (0..TASKS)
        .map(|_| {
            let counters = counters.clone();
            let adding = adding.clone();
            tokio::spawn(async move {
                for i in 0..ADDS {
                    counters.add(key, 1);
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                for _ in 0..ADDS / 2 {
                    counters.add(key, -1);
                    tokio::task::yield_now().await;
                }
                adding.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for adder in adders {
        adder.await.unwrap();
    }
    flusher.await.unwrap();
    assert_eq!(counters.get(key).await.unwrap(), TASKS * ADDS / 2);
    store.fail_next.store(false, Ordering::SeqCst);
    counters.flush().await.unwrap();
    assert_eq!(store.values.lock().unwrap()[&key], TASKS * ADDS / 2);
    assert_eq!(counters.get(key).await.unwrap(), TASKS * ADDS / 2);
    assert!(store.applies.load(Ordering::SeqCst) > 1);
    assert!(store.loads.load(Ordering::SeqCst) >= 1);
}
