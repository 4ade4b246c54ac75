//! Search through the whole app over HTTP: a published video becomes searchable through the
//! indexer (the `videos` topic), edits are reflected, deletion, admin removal and going
//! private take it out; the new video endpoints' authorization; suggestions with a Chinese
//! prefix; bad input answers 400.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use quicktok_core::{Event, Id};
use quicktok_log::NewRecord;
use quicktok_meta::{NewVideo, VideoStatus};
use quicktok_testkit::AppSandbox;
use serde_json::{Value, json};

/// Publishes a video the way the pipeline does: the row, then `video_published`.
async fn publish(app: &AppSandbox, author: &str, title: &str, tags: &[&str]) -> String {
    let author: Id = author.parse().unwrap();
    let id = app.state().next_id();
    let now = app.state().clock().now_ms();
    let videos = app.state().meta().videos();
    videos
        .create(NewVideo {
            id,
            author_id: author,
            title: title.into(),
            description: "一段描述 with words".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            created_at_ms: now,
        })
        .await
        .unwrap();
    videos.set_media_info(id, 20_000, 720, 1280, now).await.unwrap();
    videos.set_status(id, VideoStatus::Published, None, now).await.unwrap();
    let event = Event::VideoPublished { video_id: id, author, at_ms: now };
    app.state()
        .log()
        .append(event.topic(), vec![NewRecord::new(now, event.encode())])
        .await
        .unwrap();
    id.to_string()
}

async fn search(app: &AppSandbox, query: &str) -> Value {
    let r = app.get(&format!("/api/v1/search?{query}"), None).await.unwrap();
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// Polls the search until `want(ids)` holds, failing after a few seconds.
async fn wait_search(app: &AppSandbox, query: &str, want: impl Fn(&[String]) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = search(app, query).await;
        if want(&ids(&page)) {
            return page;
        }
        assert!(Instant::now() < deadline, "{query}: still {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn q(text: &str) -> String {
    let encoded: String =
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
    format!("q={encoded}")
}

async fn send(
    app: &AppSandbox,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn published_videos_are_searchable_and_changes_follow() {
    let app = AppSandbox::start_with(|c| {
        c.auth.admins = vec!["mod_ann".into()];
        c.search.suggest_refresh_ms = 0;
    })
    .await
    .unwrap();
    let li = app.uploader("li_wei").await.unwrap();
    let duck = publish(&app, &li.user_id, "周末去吃北京烤鸭", &["美食"]).await;
    let dogs = publish(&app, &li.user_id, "Running Dogs", &["pets"]).await;
    let trip = publish(&app, &li.user_id, "北京一日游", &[]).await;

    let page = wait_search(&app, &q("烤鸭"), |ids| ids == [duck.clone()]).await;
    let item = &page["items"][0];
    assert_eq!(item["title"], "周末去吃北京烤鸭");
    assert_eq!(item["author"]["username"], "li_wei");
    assert_eq!(item["status"], "published");
    assert_eq!(item["highlight"]["title"], "周末去吃北京<b>烤鸭</b>");
    assert!(page["next_cursor"].is_null());
    wait_search(&app, &q("run dog"), |ids| ids == [dogs.clone()]).await;
    wait_search(&app, &q("#pets"), |ids| ids == [dogs.clone()]).await;
    let both = wait_search(&app, &q("北京"), |ids| ids.len() == 2).await;
    assert!(ids(&both).contains(&trip));

    // Creators and suggestions.
    let users = search(&app, &format!("{}&type=users", q("@li_wei"))).await;
    assert_eq!(users["items"][0]["id"], li.user_id.as_str());
    let r = app.get(&format!("/api/v1/search/suggest?{}", q("北京")), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    let texts: Vec<&str> =
        s["items"].as_array().unwrap().iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["北京一日游"], "{s}");

    // An edit is reflected.
    let r = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/videos/{dogs}"),
        &li.token,
        Some(json!({"title": "Sleeping cats", "tags": ["#Cats"]})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tags"], json!(["cats"]));
    wait_search(&app, &q("cat"), |ids| ids == [dogs.clone()]).await;
    wait_search(&app, &q("run dog"), |ids| ids.is_empty()).await;

    // Private videos are not searchable; public again, they are.
    let r = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/videos/{dogs}/visibility"),
        &li.token,
        Some(json!({"private": true})),
    )
    .await;
    assert_eq!(r.status(), 200);
    wait_search(&app, &q("cat"), |ids| ids.is_empty()).await;
    let r = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/videos/{dogs}/visibility"),
        &li.token,
        Some(json!({"private": false})),
    )
    .await;
    assert_eq!(r.status(), 200);
    wait_search(&app, &q("cat"), |ids| ids == [dogs.clone()]).await;

    // The creator deletes one, an admin removes the other: both disappear.
    let r = send(&app, reqwest::Method::DELETE, &format!("/api/v1/videos/{dogs}"), &li.token, None)
        .await;
    assert_eq!(r.status(), 204);
    wait_search(&app, &q("cat"), |ids| ids.is_empty()).await;
    let video: Value =
        app.get(&format!("/api/v1/videos/{dogs}"), None).await.unwrap().json().await.unwrap();
    assert_eq!(
        (video["status"].as_str(), video["reason"].as_str()),
        (Some("removed"), Some("deleted by creator"))
    );
    let admin = app.admin("mod_ann").await.unwrap();
    let r = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/admin/videos/{duck}/remove"),
        &admin.token,
        Some(json!({"reason": "spam"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    wait_search(&app, &q("烤鸭"), |ids| ids.is_empty()).await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn new_video_endpoints_check_who_asks() {
    let app = AppSandbox::start_with(|c| c.auth.admins = vec!["mod_ann".into()]).await.unwrap();
    let owner = app.uploader("owner_one").await.unwrap();
    let other = app.uploader("someone_else").await.unwrap();
    let video = app.published_video(&owner.user_id, false).await.unwrap();
    let path = format!("/api/v1/videos/{video}");
    let edit = json!({"title": "mine"});
    for (method, body) in
        [(reqwest::Method::PATCH, Some(edit.clone())), (reqwest::Method::DELETE, None)]
    {
        let r = send(&app, method.clone(), &path, &other.token, body.clone()).await;
        assert_eq!(r.status(), 403, "{method}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "forbidden");
        let r = send(&app, method.clone(), "/api/v1/videos/123456789", &owner.token, body).await;
        assert_eq!(r.status(), 404, "{method}");
    }
    // Invalid edits are refused like invalid upload metadata.
    for bad in [
        json!({"title": ""}),
        json!({"title": "x".repeat(151)}),
        json!({"tags": ["no spaces"]}),
        json!({"tags": ["#123"]}),
        json!({"colour": "red"}),
    ] {
        let r = send(&app, reqwest::Method::PATCH, &path, &owner.token, Some(bad.clone())).await;
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
        let e: Value = r.json().await.unwrap();
        assert!(e["message"].is_string(), "{bad}");
    }
    let removal = json!({"reason": "spam"});
    let admin_path = format!("/api/v1/admin/videos/{video}/remove");
    let r =
        send(&app, reqwest::Method::POST, &admin_path, &owner.token, Some(removal.clone())).await;
    assert_eq!(r.status(), 403);
    let admin = app.admin("mod_ann").await.unwrap();
    let r = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/admin/videos/98765/remove",
        &admin.token,
        Some(removal.clone()),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r =
        send(&app, reqwest::Method::POST, &admin_path, &admin.token, Some(json!({"reason": " "})))
            .await;
    assert_eq!(r.status(), 422);
    let r = send(&app, reqwest::Method::DELETE, &path, &owner.token, None).await;
    assert_eq!(r.status(), 204);
    // Deleting twice is harmless; editing a removed video is refused.
    let r = send(&app, reqwest::Method::DELETE, &path, &owner.token, None).await;
    assert_eq!(r.status(), 204);
    let r = send(&app, reqwest::Method::PATCH, &path, &owner.token, Some(edit)).await;
    assert_eq!(r.status(), 409);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_search_input_is_a_400() {
    let app = AppSandbox::start().await.unwrap();
    for query in [
        "q=",
        "q=%20%20",
        "q=cat&cursor=%25%25",
        "q=cat&type=things",
        "q=cat&limit=0",
        "q=cat&limit=51",
        "q=%23",
    ] {
        let r = app.get(&format!("/api/v1/search?{query}"), None).await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "bad_request", "{query}");
    }
    for query in ["q=", "q=a&limit=21"] {
        let r = app.get(&format!("/api/v1/search/suggest?{query}"), None).await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
    }
    // A missing q is refused by the query extractor (4xx in the error shape).
    let r = app.get("/api/v1/search", None).await.unwrap();
    assert!(r.status().is_client_error());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_index_survives_a_restart_and_rebuild_recovers_what_the_log_missed() {
    let app = AppSandbox::start().await.unwrap();
    let li = app.uploader("li_wei").await.unwrap();
    let a = publish(&app, &li.user_id, "restart one", &[]).await;
    let b = publish(&app, &li.user_id, "restart two", &[]).await;
    wait_search(&app, &q("restart"), |ids| ids.len() == 2).await;
    // A video the log never heard of (as if its event were lost to retention), and a
    // private one: only the first belongs in a rebuilt index.
    let silent = app.published_video(&li.user_id, false).await.unwrap();
    app.published_video(&li.user_id, true).await.unwrap();
    let config = app.config.clone();
    let dir = app.stop().await.unwrap();

    // Restarted, the indexer resumes from its committed offset: nothing lost or doubled.
    let app = AppSandbox::start_in(dir, config.clone()).await.unwrap();
    let li2 = publish(&app, &li.user_id, "restart three", &[]).await;
    let page = wait_search(&app, &q("restart"), |ids| ids.len() == 3).await;
    let mut got = ids(&page);
    got.sort();
    let mut want = vec![a, b, li2];
    want.sort();
    assert_eq!(got, want);
    let dir = app.stop().await.unwrap();

    // `quicktok search rebuild`, offline on the same data dir.
    let data = dir.path();
    let meta = quicktok_meta::MetaStore::connect(&config.meta, data).await.unwrap();
    let log = quicktok_log::FileLog::open(&data.join("log"), config.log.clone()).await.unwrap();
    let counters = quicktok_social::CounterService::new(
        std::sync::Arc::new(quicktok::counters::MetaCounterStore::new(meta.clone())),
        config.social.counters.clone(),
        std::sync::Arc::new(quicktok_core::SystemClock),
    );
    let index = std::sync::Arc::new(
        quicktok_search::SearchIndex::open(&data.join("search"), config.search.clone()).unwrap(),
    );
    let mut seen = 0;
    let (videos, offset) =
        quicktok::search::rebuild(index.clone(), &meta, &counters, &log, |n| seen = n)
            .await
            .unwrap();
    assert_eq!((videos, seen), (4, 4));
    assert_eq!(offset, quicktok_log::EventLog::end_offset(&log, "videos").await.unwrap());
    assert_eq!(index.committed_offset(), Some(offset));
    assert_eq!(index.video_count().unwrap(), 4);
    let silent_id: u64 = silent.parse().unwrap();
    let query = quicktok_search::VideoQuery { q: "clip".into(), limit: 10, ..Default::default() };
    let found = index.search_videos(&query, 0).unwrap();
    assert_eq!(found.items.iter().map(|h| h.id).collect::<Vec<_>>(), [silent_id]);
    quicktok_log::EventLog::close(&log).await.unwrap();
    meta.close().await;
}
