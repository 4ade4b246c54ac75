//! Creator archive and play-driven tiering through the whole app: archive moves a video's
//! blobs to cold storage via the event log, unarchive brings them back, qualified views
//! become play statistics that make a video's blobs hot; URLs serve the same bytes all along.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream;
use quicktok::tiering::MetaActivity;
use quicktok_blob::tiering::{TieringConfig, TieringJob};
use quicktok_blob::{BlobStore, StorageClass};
use quicktok_core::{Id, ManualClock, SystemClock};
use quicktok_meta::{NewVideo, VideoStatus};
use quicktok_testkit::AppSandbox;
use serde_json::json;

async fn video_with_blobs(app: &AppSandbox, author: Id, video: u64, blobs: &[u64]) -> Id {
    let id = Id(video);
    let videos = app.state().meta().videos();
    videos
        .create(NewVideo {
            id,
            author_id: author,
            title: "clip".into(),
            description: String::new(),
            tags: vec![],
            created_at_ms: 1,
        })
        .await
        .unwrap();
    videos.set_media_info(id, 20_000, 720, 1280, 2).await.unwrap();
    videos.set_status(id, VideoStatus::Published, None, 3).await.unwrap();
    for &b in blobs {
        let bytes: Vec<u8> = (0..50_000u64).map(|i| ((i + b) % 251) as u8).collect();
        app.blobs()
            .put(
                Id(b),
                StorageClass::Warm,
                bytes.len() as u64,
                "video/mp4",
                Box::pin(stream::iter(vec![Ok(Bytes::from(bytes))])),
            )
            .await
            .unwrap();
        app.state()
            .meta()
            .video_blobs()
            .attach(id, Id(b), "segment", quicktok_core::Clock::now_ms(&SystemClock))
            .await
            .unwrap();
    }
    id
}

async fn wait_class(store: &Arc<dyn BlobStore>, id: u64, class: StorageClass) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if store.stat(Id(id)).await.unwrap().unwrap().class == class {
            return;
        }
        assert!(Instant::now() < deadline, "blob {id} never reached {class:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn archive_moves_media_cold_and_back() {
    let app = AppSandbox::start().await.unwrap();
    let owner = app.register("creator").await.unwrap();
    let other = app.register("stranger").await.unwrap();
    let owner_id: Id = owner["user"]["id"].as_str().unwrap().parse().unwrap();
    let token = owner["access_token"].as_str().unwrap();
    let video = video_with_blobs(&app, owner_id, 500, &[501, 502]).await;
    let url = app.url(&app.media_path(Id(501)));

    let path = format!("/api/v1/videos/{video}/archive");
    let r = app.post_json(&path, &json!({}), other["access_token"].as_str()).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = app.post_json(&path, &json!({}), None).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app.post_json("/api/v1/videos/999/archive", &json!({}), Some(token)).await.unwrap();
    assert_eq!(r.status(), 404);

    let r = app.post_json(&path, &json!({}), Some(token)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), json!({"archived": true}));
    wait_class(app.blobs(), 501, StorageClass::Cold).await;
    wait_class(app.blobs(), 502, StorageClass::Cold).await;
    assert!(
        app.state().meta().videos().by_id(video).await.unwrap().unwrap().archived_at_ms.is_some()
    );
    let body = app.client.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.len(), 50_000);

    let r = app.client.delete(app.url(&path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_class(app.blobs(), 501, StorageClass::Warm).await;
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn views_become_play_statistics_that_drive_tiering() {
    let app = AppSandbox::start().await.unwrap();
    let owner = app.register("creator").await.unwrap();
    let owner_id: Id = owner["user"]["id"].as_str().unwrap().parse().unwrap();
    let popular = video_with_blobs(&app, owner_id, 600, &[601]).await;
    let quiet = video_with_blobs(&app, owner_id, 700, &[701]).await;
    let _unplayed = video_with_blobs(&app, owner_id, 800, &[801]).await;

    // Three viewers watch the popular video, one the quiet one.
    let mut viewers = Vec::new();
    for i in 0..3 {
        viewers.push(
            app.register(&format!("fan{i}")).await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for t in &viewers {
        app.post_json(
            &format!("/api/v1/videos/{popular}/views"),
            &json!({"watched_ms": 10_000}),
            Some(t),
        )
        .await
        .unwrap();
    }
    app.post_json(
        &format!("/api/v1/videos/{quiet}/views"),
        &json!({"watched_ms": 10_000}),
        Some(&viewers[0]),
    )
    .await
    .unwrap();

    // The plays consumer turns the views into hourly counts.
    let meta = app.state().meta().clone();
    let now = quicktok_core::Clock::now_ms(&SystemClock);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = meta.plays().tiering_activity(now + 1000).await.unwrap();
        let plays = |blob: u64| rows.iter().find(|r| r.blob_id == Id(blob)).map(|r| r.plays_1d);
        if plays(601) == Some(3) && plays(701) == Some(1) {
            assert_eq!(plays(801), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "plays never recorded: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Today's run: the top 10% (one of two played blobs) is hot; the quiet one stays warm.
    let clock = ManualClock::new(now + 1000);
    let job = TieringJob::new(
        TieringConfig::default(),
        app.blobs().clone(),
        Arc::new(MetaActivity { meta: meta.clone(), blobs: app.blobs().clone() }),
        Arc::new(clock.clone()),
    );
    job.run_once().await.unwrap();
    wait_class(app.blobs(), 601, StorageClass::Hot).await;
    wait_class(app.blobs(), 701, StorageClass::Warm).await;
    // Three months on with no plays, everything is cold.
    clock.advance_ms(91 * 86_400_000);
    job.run_once().await.unwrap();
    for b in [601, 701, 801] {
        wait_class(app.blobs(), b, StorageClass::Cold).await;
    }
    let url = app.url(&app.media_path(Id(601)));
    assert_eq!(app.client.get(&url).send().await.unwrap().bytes().await.unwrap().len(), 50_000);
}
