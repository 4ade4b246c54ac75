//! Stories (F6.6) through the whole app over real HTTP: the row of followed authors with
//! unseen stories, per-viewer progress, exact expiry on a manual clock, likes and comments on
//! live and expired stories, blocks, the author's archive, stories kept out of the public
//! list, and the pipeline's duration limit for uploaded stories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quicktok_core::{Clock, ManualClock, SystemClock};
use quicktok_testkit::{AppSandbox, Uploader, make_clip};
use serde_json::{Value, json};

/// Sends a request with an optional bearer token and JSON body; returns status and JSON.
async fn call(
    app: &AppSandbox,
    method: http::Method,
    path: &str,
    who: Option<&Uploader>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(u) = who {
        request = request.bearer_auth(&u.token);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(app: &AppSandbox, path: &str, who: Option<&Uploader>) -> (u16, Value) {
    call(app, http::Method::GET, path, who, None).await
}

async fn post(app: &AppSandbox, path: &str, who: &Uploader, body: Value) -> (u16, Value) {
    call(app, http::Method::POST, path, Some(who), Some(body)).await
}

/// `GET /api/v1/stories` as `who`: (author id, unseen, total, resume_from) per item.
async fn row(app: &AppSandbox, who: &Uploader) -> Vec<(String, u64, u64, String)> {
    let (status, body) = get(app, "/api/v1/stories", Some(who)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["next_cursor"].is_null(), "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["author"]["id"].as_str().unwrap().to_owned(),
                i["unseen"].as_u64().unwrap(),
                i["total"].as_u64().unwrap(),
                i["resume_from"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn seen(app: &AppSandbox, who: &Uploader, story: &str) -> (u16, Value) {
    post(app, &format!("/api/v1/stories/{story}/seen"), who, json!({})).await
}

fn ids(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_row_progress_blocks_and_exact_expiry() {
    // Near the real time: access tokens are checked against the system clock.
    let clock = ManualClock::new(SystemClock.now_ms());
    let app = AppSandbox::start_with_clock(clock.clone(), |_| {}).await.unwrap();
    let lifetime = app.config.social.stories.lifetime_ms_i64();
    let ann = app.uploader("ann").await.unwrap();
    let viewer = app.uploader("viewer").await.unwrap();
    let other = app.uploader("other").await.unwrap();
    let stranger = app.uploader("stranger").await.unwrap();
    let blocker = app.uploader("blocker").await.unwrap();
    let follow = format!("/api/v1/users/{}/follow", ann.user_id);
    for who in [&viewer, &other, &blocker] {
        assert_eq!(post(&app, &follow, who, json!({})).await.0, 200);
    }
    assert!(row(&app, &viewer).await.is_empty());

    let video = app.published_video(&ann.user_id, false).await.unwrap();
    let s1 = app.published_story(&ann.user_id, 5_000).await.unwrap();
    clock.advance_ms(1_000);
    let s2 = app.published_story(&ann.user_id, 5_000).await.unwrap();

    // Stories stay out of the public list; the video is there.
    let (status, list) = get(&app, "/api/v1/videos", None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list["items"]), [video]);

    let ann_id = ann.user_id.clone();
    assert_eq!(row(&app, &viewer).await, [(ann_id.clone(), 2, 2, s1.clone())]);
    let (status, body) = get(&app, "/api/v1/stories", Some(&viewer)).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["author"]["username"], "ann");
    let (status, _) = get(&app, "/api/v1/stories", None).await;
    assert_eq!(status, 401, "the row is the signed-in viewer's");

    // The author's stories in watch order, with play URLs and the resume point.
    let stories_of_ann = format!("/api/v1/users/{}/stories", ann.user_id);
    let (status, page) = get(&app, &stories_of_ann, Some(&viewer)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page["items"]), [s1.clone(), s2.clone()]);
    assert_eq!(page["resume_from"], s1.as_str());
    let first = &page["items"][0];
    assert_eq!(
        (first["seen"].as_bool(), first["duration_ms"].as_i64()),
        (Some(false), Some(5_000))
    );
    assert!(first["play"]["hls"].as_str().unwrap().contains("master.m3u8"), "{first}");
    assert_eq!(first["video"]["kind"], "story");
    let expires_s1 = first["expires_at_ms"].as_i64().unwrap();
    assert_eq!(expires_s1, first["published_at_ms"].as_i64().unwrap() + lifetime);

    // Watching the first moves the resume point to the second; others are unaffected.
    let (status, state) = seen(&app, &viewer, &s1).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(
        (state["last_seen"].as_str(), state["resume_from"].as_str()),
        (Some(&*s1), Some(&*s2))
    );
    assert_eq!(row(&app, &viewer).await, [(ann_id.clone(), 1, 2, s2.clone())]);
    assert_eq!(row(&app, &other).await, [(ann_id.clone(), 2, 2, s1.clone())]);
    let (_, page) = get(&app, &stories_of_ann, Some(&viewer)).await;
    assert_eq!(
        (page["items"][0]["seen"].as_bool(), page["items"][1]["seen"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(page["resume_from"], s2.as_str());
    // Again: nothing changes.
    assert_eq!(seen(&app, &viewer, &s1).await.1["resume_from"], s2.as_str());

    // Watching all removes ann from the row; going back does not bring her back.
    let (_, state) = seen(&app, &viewer, &s2).await;
    assert!(state["resume_from"].is_null(), "{state}");
    assert!(row(&app, &viewer).await.is_empty());
    let (_, state) = seen(&app, &viewer, &s1).await;
    assert_eq!(state["last_seen"], s2.as_str(), "progress never moves backwards");
    assert!(row(&app, &viewer).await.is_empty());

    // A new story brings her back.
    clock.advance_ms(1_000);
    let s3 = app.published_story(&ann.user_id, 5_000).await.unwrap();
    assert_eq!(row(&app, &viewer).await, [(ann_id.clone(), 1, 3, s3.clone())]);

    // Not following, or blocked: no row entry, and her stories are closed to a blocker.
    assert!(row(&app, &stranger).await.is_empty());
    assert_eq!(row(&app, &blocker).await, [(ann_id.clone(), 3, 3, s1.clone())]);
    let block = format!("/api/v1/users/{}/block", ann.user_id);
    assert_eq!(post(&app, &block, &blocker, json!({})).await.0, 200);
    assert!(row(&app, &blocker).await.is_empty());
    let (status, body) = get(&app, &stories_of_ann, Some(&blocker)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("blocked")));
    assert_eq!(seen(&app, &blocker, &s3).await.0, 403);

    // Like and comment on a live story.
    let (status, body) = post(&app, &format!("/api/v1/videos/{s1}/like"), &other, json!({})).await;
    assert_eq!((status, body["liked"].as_bool()), (200, Some(true)), "{body}");
    let comments_s1 = format!("/api/v1/videos/{s1}/comments");
    let (status, body) = post(&app, &comments_s1, &other, json!({"text": "nice"})).await;
    assert_eq!(status, 201, "{body}");

    // One millisecond before its end, s1 is live for everyone...
    clock.set(expires_s1 - 1);
    assert_eq!(get(&app, &format!("/api/v1/videos/{s1}"), None).await.0, 200);
    assert_eq!(row(&app, &other).await, [(ann_id.clone(), 3, 3, s1.clone())]);
    // ... and at exactly its end it is gone for everyone but ann.
    clock.set(expires_s1);
    for who in [None, Some(&other)] {
        for path in [
            format!("/api/v1/videos/{s1}"),
            format!("/api/v1/videos/{s1}/play"),
            comments_s1.clone(),
        ] {
            let (status, body) = get(&app, &path, who).await;
            assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{path}");
        }
    }
    let (status, body) = get(&app, &format!("/api/v1/videos/{s1}"), Some(&ann)).await;
    assert_eq!(
        (status, body["expires_at_ms"].as_i64()),
        (200, Some(expires_s1)),
        "the author keeps it"
    );
    assert_eq!(row(&app, &other).await, [(ann_id.clone(), 2, 2, s2.clone())]);
    let (_, page) = get(&app, &stories_of_ann, Some(&other)).await;
    assert_eq!(ids(&page["items"]), [s2.clone(), s3.clone()]);
    assert_eq!(seen(&app, &other, &s1).await.0, 404);
    // Likes and comments on the expired story are refused, for its author too.
    for who in [&other, &viewer, &ann] {
        let (status, _) = post(&app, &format!("/api/v1/videos/{s1}/like"), who, json!({})).await;
        assert_eq!(status, 404);
        let (status, _) = post(&app, &comments_s1, who, json!({"text": "late"})).await;
        assert_eq!(status, 404);
    }
    // A live one still takes them.
    let (status, _) = post(&app, &format!("/api/v1/videos/{s2}/like"), &other, json!({})).await;
    assert_eq!(status, 200);

    // The author's archive keeps every story, expired ones included.
    let (status, archive) = get(&app, "/api/v1/me/stories", Some(&ann)).await;
    assert_eq!(status, 200, "{archive}");
    assert_eq!(ids(&archive["items"]), [s3.clone(), s2.clone(), s1.clone()]);

    // Every story gone: the row is empty.
    clock.advance_ms(2 * lifetime);
    assert!(row(&app, &other).await.is_empty());
    let (_, page) = get(&app, &stories_of_ann, None).await;
    assert!(page["items"].as_array().unwrap().is_empty() && page["resume_from"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_row_pages_newest_first() {
    let clock = ManualClock::new(SystemClock.now_ms());
    let app = AppSandbox::start_with_clock(clock.clone(), |_| {}).await.unwrap();
    let viewer = app.uploader("viewer").await.unwrap();
    let mut authors = Vec::new();
    for name in ["amy", "bea", "cid"] {
        let author = app.uploader(name).await.unwrap();
        let follow = format!("/api/v1/users/{}/follow", author.user_id);
        assert_eq!(post(&app, &follow, &viewer, json!({})).await.0, 200);
        authors.push(author);
    }
    // bea's story is the newest, then cid's, then amy's.
    for i in [0, 2, 1] {
        app.published_story(&authors[i].user_id, 3_000).await.unwrap();
        clock.advance_ms(10);
    }
    let mut seen_authors = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/stories?limit=2&cursor={c}"),
            None => "/api/v1/stories?limit=2".to_owned(),
        };
        let (status, page) = get(&app, &path, Some(&viewer)).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen_authors.push(item["author"]["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen_authors, ["bea", "cid", "amy"]);
    let (status, body) = get(&app, "/api/v1/stories?cursor=nonsense", Some(&viewer)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
}

/// An uploaded story runs through the pipeline: longer than the limit it is rejected with
/// the reason before transcoding; a short one is published with its expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_stories_are_limited_in_length_and_expire() {
    let app = AppSandbox::start().await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let long = make_clip(dir.path(), "long.mp4", "testsrc2=s=160x120:d=16:r=10", false).unwrap();
    let short = make_clip(dir.path(), "short.mp4", "testsrc2=s=320x240:d=2:r=25", false).unwrap();

    // An unknown kind is refused at creation.
    let bytes = std::fs::read(&short).unwrap();
    let refused = app.tus_upload(&ann.token, &bytes, &[("kind", "reel")], 1 << 20).await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("400") && message.contains("kind"), "{message}");

    let long_id = app
        .tus_upload(&ann.token, &std::fs::read(&long).unwrap(), &[("kind", "story")], 1 << 20)
        .await
        .unwrap();
    let short_id = app.tus_upload(&ann.token, &bytes, &[("kind", "story")], 1 << 20).await.unwrap();
    let wait = Duration::from_secs(180);
    let done = ["published", "rejected"];
    let v = app.wait_for_video(&ann.token, &long_id, &done, wait).await.unwrap();
    assert_eq!(v["status"], "rejected", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("story too long") && reason.contains("at most 15.0 s"), "{reason}");
    assert!(v["renditions"].as_array().unwrap().is_empty(), "nothing was encoded: {v}");

    let v = app.wait_for_video(&ann.token, &short_id, &done, wait).await.unwrap();
    assert_eq!(
        (v["status"].as_str(), v["kind"].as_str()),
        (Some("published"), Some("story")),
        "{v}"
    );
    let published = v["published_at_ms"].as_i64().unwrap();
    let lifetime = app.config.social.stories.lifetime_ms_i64();
    assert_eq!(v["expires_at_ms"].as_i64(), Some(published + lifetime));
    // Not in the public list, but in the author's archive.
    let (_, list) = get(&app, "/api/v1/videos", None).await;
    assert!(ids(&list["items"]).is_empty(), "{list}");
    let (_, archive) = get(&app, "/api/v1/me/stories", Some(&ann)).await;
    assert_eq!(ids(&archive["items"]), [short_id.clone(), long_id.clone()]);
}
