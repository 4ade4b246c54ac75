//! The tiering job end to end: a controllable clock and play statistics drive blobs between
//! hot, warm and cold volume sets; their media URLs keep serving the same bytes throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream;
use quicktok_blob::tiering::{ActivitySource, BlobActivity, TieringConfig, TieringJob};
use quicktok_blob::{BlobStore, StorageClass};
use quicktok_core::{Id, ManualClock};
use quicktok_testkit::AppSandbox;

const DAY: i64 = 86_400_000;
const START: i64 = 1_800_000_000_000;

/// One blob's statistics: (id, plays in 7 days, plays in 1 day, last play).
type PlayRow = (u64, u64, u64, Option<i64>);

/// Play statistics the test sets by hand.
#[derive(Default)]
struct Plays(Mutex<Vec<PlayRow>>);

#[async_trait::async_trait]
impl ActivitySource for Plays {
    async fn activity(&self, _now: i64) -> quicktok_blob::Result<Vec<BlobActivity>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|&(id, plays_7d, plays_1d, last)| BlobActivity {
                id: Id(id),
                class: StorageClass::Hot, // replaced below from the store
                plays_7d,
                plays_1d,
                last_play_ms: last,
                created_at_ms: START,
                archived: false,
            })
            .collect())
    }
}

/// Adds each blob's real current class, as the production source reads it from the store.
struct WithClasses {
    plays: Arc<Plays>,
    store: Arc<dyn BlobStore>,
}

#[async_trait::async_trait]
impl ActivitySource for WithClasses {
    async fn activity(&self, now: i64) -> quicktok_blob::Result<Vec<BlobActivity>> {
        let mut out = self.plays.activity(now).await?;
        for b in &mut out {
            b.class = self.store.stat(b.id).await?.map(|m| m.class).unwrap_or(StorageClass::Hot);
        }
        Ok(out)
    }
}

#[tokio::test]
async fn blobs_follow_the_policy_and_urls_keep_working() {
    let app = AppSandbox::start().await.unwrap();
    let store = app.blobs().clone();
    let data = |id: u64| -> Vec<u8> { (0..70_000u64).map(|i| ((i * id) % 253) as u8).collect() };
    for id in 1..=20u64 {
        let bytes = data(id);
        store
            .put(
                Id(id),
                StorageClass::Warm,
                bytes.len() as u64,
                "video/mp4",
                Box::pin(stream::iter(vec![Ok(Bytes::from(bytes))])),
            )
            .await
            .unwrap();
    }
    let urls: Vec<String> = (1..=20u64).map(|id| app.url(&app.media_path(Id(id)))).collect();

    let clock = ManualClock::new(START);
    let plays = Arc::new(Plays::default());
    // Day 0: blobs 1 and 2 are the most played (top 10% of 20); 3 has a 5000-play day; the
    // rest were played a little today.
    *plays.0.lock().unwrap() = (1..=20u64)
        .map(|id| match id {
            1 => (id, 90_000, 9_000, Some(START)),
            2 => (id, 80_000, 900, Some(START)),
            3 => (id, 5_000, 5_000, Some(START)),
            _ => (id, 10, 1, Some(START)),
        })
        .collect();
    let job = TieringJob::new(
        TieringConfig::default(),
        store.clone(),
        Arc::new(WithClasses { plays: plays.clone(), store: store.clone() }),
        Arc::new(clock.clone()),
    );
    let report = job.run_once().await.unwrap();
    assert_eq!(report.failed, 0);
    let class = |id: u64| {
        let store = store.clone();
        async move { store.stat(Id(id)).await.unwrap().unwrap().class }
    };
    assert_eq!(class(1).await, StorageClass::Hot);
    assert_eq!(class(2).await, StorageClass::Hot);
    assert_eq!(class(3).await, StorageClass::Hot);
    assert_eq!(class(4).await, StorageClass::Warm);

    // 100 days later nobody played 4..20 again; 1 is still played daily.
    clock.advance_ms(100 * DAY);
    let now = START + 100 * DAY;
    *plays.0.lock().unwrap() = (1..=20u64)
        .map(|id| if id == 1 { (id, 70_000, 10_000, Some(now)) } else { (id, 0, 0, Some(START)) })
        .collect();
    // Read every URL while the job moves blobs.
    let readers: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let client = app.client.clone();
            tokio::spawn(
                async move { client.get(url).send().await.unwrap().bytes().await.unwrap() },
            )
        })
        .collect();
    let report = job.run_once().await.unwrap();
    assert_eq!(report.failed, 0);
    for (i, r) in readers.into_iter().enumerate() {
        assert_eq!(r.await.unwrap().as_ref(), &data(i as u64 + 1)[..]);
    }
    assert_eq!(class(1).await, StorageClass::Hot);
    for id in 2..=20 {
        assert_eq!(class(id).await, StorageClass::Cold, "blob {id}");
    }
    // And after the move, the same URLs serve the same bytes.
    for (i, url) in urls.iter().enumerate() {
        let r = app.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data(i as u64 + 1)[..]);
    }
    let usage = store.usage().await.unwrap();
    let cold = usage.classes.iter().find(|c| c.0 == StorageClass::Cold).unwrap();
    assert_eq!(cold.1, 19);
}
