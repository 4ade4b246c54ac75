//! Trending over HTTP: view reports qualify (threshold, whole clip, dedup), reach the exact
//! leaderboards through the event log, and are served by `/api/v1/trending`, `/views/top`
//! and the per-hashtag list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use quicktok_core::Id;
use quicktok_meta::{NewVideo, VideoStatus};
use quicktok_testkit::AppSandbox;
use serde_json::{Value, json};

async fn published_video(
    app: &AppSandbox,
    author: Id,
    id: u64,
    duration_ms: i64,
    tags: &[&str],
) -> Id {
    let videos = app.state().meta().videos();
    let id = Id(id);
    videos
        .create(NewVideo {
            id,
            author_id: author,
            title: format!("clip {id}"),
            description: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created_at_ms: 1,
        })
        .await
        .unwrap();
    videos.set_media_info(id, duration_ms, 720, 1280, 2).await.unwrap();
    videos.set_status(id, VideoStatus::Published, None, 3).await.unwrap();
    id
}

async fn view(app: &AppSandbox, video: Id, watched_ms: u64, token: Option<&str>) -> (u16, Value) {
    let r = app
        .post_json(
            &format!("/api/v1/videos/{video}/views"),
            &json!({"watched_ms": watched_ms}),
            token,
        )
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Polls until `path` lists `expected` (video id, views) pairs first; returns the body.
async fn wait_for_list(app: &AppSandbox, path: &str, expected: &[(Id, u64)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = app.get(path, None).await.unwrap().json().await.unwrap();
        let got: Vec<(Id, u64)> = body["videos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (v["video_id"].as_str().unwrap().parse().unwrap(), v["views"].as_u64().unwrap())
            })
            .collect();
        if got == expected {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: still {got:?}, want {expected:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn views_qualify_and_rank() {
    let app = AppSandbox::start().await.unwrap();
    let mut tokens = Vec::new();
    let mut author = Id(0);
    for i in 0..3 {
        let s = app.register(&format!("viewer{i}")).await.unwrap();
        if i == 0 {
            author = s["user"]["id"].as_str().unwrap().parse().unwrap();
        }
        tokens.push(s["access_token"].as_str().unwrap().to_owned());
    }
    let a = published_video(&app, author, 101, 30_000, &["Dance", "cats"]).await;
    let b = published_video(&app, author, 102, 30_000, &["dance"]).await;
    let short = published_video(&app, author, 103, 2_000, &[]).await;

    // Three viewers watch A, two watch B.
    for t in &tokens {
        assert_eq!(view(&app, a, 5_000, Some(t)).await, (202, json!({"counted": true})));
    }
    for t in &tokens[..2] {
        assert_eq!(view(&app, b, 3_000, Some(t)).await.1["counted"], true);
    }
    // A repeat within the dedup window and a too-short watch do not count.
    assert_eq!(
        view(&app, a, 9_000, Some(&tokens[0])).await.1,
        json!({"counted": false, "reason": "duplicate"})
    );
    assert_eq!(
        view(&app, b, 2_999, Some(&tokens[2])).await.1,
        json!({"counted": false, "reason": "too_short"})
    );
    // A 2-second clip watched to the end counts though it is under 3 s; anonymous viewers
    // dedup by address.
    assert_eq!(view(&app, short, 2_000, None).await.1["counted"], true);
    assert_eq!(view(&app, short, 2_000, None).await.1["reason"], "duplicate");

    let expected = [(a, 3), (b, 2), (short, 1)];
    for window in ["1h", "1d", "30d", "all"] {
        let body =
            wait_for_list(&app, &format!("/api/v1/trending?window={window}&k=10"), &expected).await;
        assert_eq!(body["window"], window);
        assert!(body["as_of"].as_i64().unwrap() > 0);
    }
    let top1 = wait_for_list(&app, "/views/top?window=1d&k=1", &expected[..1]).await;
    assert_eq!(top1["caught_up"], true);
    wait_for_list(&app, "/api/v1/trending/tags/%23DANCE?k=5", &[(a, 3), (b, 2)]).await;
    wait_for_list(&app, "/api/v1/trending/tags/cats", &[(a, 3)]).await;
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let app = AppSandbox::start().await.unwrap();
    for q in ["window=2h", "window=1d&k=0", "window=1d&k=1001", "k=abc"] {
        let r = app.get(&format!("/api/v1/trending?{q}"), None).await.unwrap();
        assert_eq!(r.status(), 422, "{q}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "validation_failed");
    }
    let s = app.register("author").await.unwrap();
    let author: Id = s["user"]["id"].as_str().unwrap().parse().unwrap();
    // Unknown, unpublished and malformed videos.
    assert_eq!(view(&app, Id(42), 5000, None).await.0, 404);
    let videos = app.state().meta().videos();
    videos
        .create(NewVideo {
            id: Id(7),
            author_id: author,
            title: "draft".into(),
            description: String::new(),
            tags: vec![],
            created_at_ms: 1,
        })
        .await
        .unwrap();
    assert_eq!(view(&app, Id(7), 5000, None).await.0, 404);
    let r = app
        .post_json("/api/v1/videos/abc/views", &json!({"watched_ms": 5000}), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let id = published_video(&app, author, 8, 10_000, &[]).await;
    let r = app
        .post_json(&format!("/api/v1/videos/{id}/views"), &json!({"watched_ms": -1}), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .post_json(
            &format!("/api/v1/videos/{id}/views"),
            &json!({"watched_ms": 5000}),
            Some("bad-token"),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn counts_survive_a_restart() {
    let app = AppSandbox::start().await.unwrap();
    let s = app.register("author").await.unwrap();
    let author: Id = s["user"]["id"].as_str().unwrap().parse().unwrap();
    let token = s["access_token"].as_str().unwrap().to_owned();
    let v = published_video(&app, author, 55, 10_000, &[]).await;
    view(&app, v, 5_000, Some(&token)).await;
    wait_for_list(&app, "/api/v1/trending?window=all", &[(v, 1)]).await;
    let config = app.config.clone();
    let dir = app.stop().await.unwrap();
    let app = AppSandbox::start_in(dir, config).await.unwrap();
    wait_for_list(&app, "/api/v1/trending?window=all", &[(v, 1)]).await;
}
