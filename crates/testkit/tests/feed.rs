//! The following feed (F6.5) through the whole app over real HTTP: ordinary creators' videos
//! pushed to active followers' inboxes by the `feed` consumer, celebrities' pulled at read
//! time, both merged newest first and paged without duplicates or gaps; an inactive follower
//! gets no pushes but a correct feed when they come back; removed, blocked and unfollowed
//! authors' videos leave the feed; a follow made on another node reaches a reader whose
//! follows this node keeps; bad cursors are 400 and anonymous readers 401.
//! Videos are published straight through the repositories plus the `video_published` event,
//! as the pipeline's publish stage does (a real encode is slow on two cores).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use quicktok_core::{Event, Id};
use quicktok_testkit::{AppSandbox, Uploader};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

/// A published video by `author`, announced on the `videos` topic like the pipeline does.
async fn publish(app: &AppSandbox, author: &Uploader) -> String {
    let video = app.published_video(&author.user_id, false).await.unwrap();
    let now = app.state().clock().now_ms();
    let event = Event::VideoPublished {
        video_id: video.parse().unwrap(),
        author: author.user_id.parse().unwrap(),
        at_ms: now,
    };
    app.state().log().append_one(event.topic(), now, event.encode()).await.unwrap();
    video
}

fn id(user: &Uploader) -> Id {
    user.user_id.parse().unwrap()
}

async fn post(app: &AppSandbox, path: &str, who: &Uploader) -> u16 {
    let r = app.post_json(path, &json!({}), Some(&who.token)).await.unwrap();
    r.status().as_u16()
}

async fn follow(app: &AppSandbox, who: &Uploader, whom: &Uploader) {
    let status = post(app, &format!("/api/v1/users/{}/follow", whom.user_id), who).await;
    assert!(status < 300, "follow: {status}");
}

/// One page of `who`'s feed: status and body.
async fn feed_page(app: &AppSandbox, who: &Uploader, query: &str) -> (u16, Value) {
    let r = app.get(&format!("/api/v1/feed/following{query}"), Some(&who.token)).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every video id of `who`'s feed, paging `limit` at a time; checks the pages' shape.
async fn whole_feed(app: &AppSandbox, who: &Uploader, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit={limit}&cursor={c}"),
            None => format!("?limit={limit}"),
        };
        let (status, body) = feed_page(app, who, &query).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize, "{body}");
        for item in items {
            assert_eq!(item["status"], "published", "{item}");
            assert!(item["author"]["username"].is_string(), "{item}");
            ids.push(item["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit as usize, "a cursor after a short page: {body}");
                cursor = Some(next.to_owned());
            }
            None => return ids,
        }
        assert!(ids.len() < 1000, "paging does not end");
    }
}

/// Polls until `done` holds for `who`'s whole feed (consumers are asynchronous).
async fn feed_until(
    app: &AppSandbox,
    who: &Uploader,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ids = whole_feed(app, who, 50).await;
        if done(&ids) {
            return ids;
        }
        assert!(Instant::now() < deadline, "the feed never got there: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The video ids stored in `who`'s inbox (pushed rows), read from the store directly.
async fn inbox(app: &AppSandbox, who: &Uploader) -> Vec<String> {
    let rows = app.state().meta().feed().raw_inbox(id(who), 1000).await.unwrap();
    rows.iter().map(|r| r.video_id.to_string()).collect()
}

/// Polls `who`'s stored inbox until `done` holds.
async fn inbox_until(app: &AppSandbox, who: &Uploader, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ids = inbox(app, who).await;
        if done(&ids) {
            return;
        }
        assert!(Instant::now() < deadline, "the inbox never got there: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn newest_first(published: &[String]) -> Vec<String> {
    published.iter().rev().cloned().collect()
}

/// Creators with two or more followers are celebrities here.
async fn start() -> AppSandbox {
    AppSandbox::start_with(|c| c.social.feed.celebrity_followers = 2).await.unwrap()
}

#[tokio::test]
async fn pushed_and_pulled_videos_merge_newest_first_without_dups_or_gaps() {
    let app = start().await;
    let viewer = app.uploader("viewer").await.unwrap();
    let fan = app.uploader("fan").await.unwrap();
    let plain = app.uploader("plain").await.unwrap();
    let star = app.uploader("star").await.unwrap();
    let stranger = app.uploader("stranger").await.unwrap();
    follow(&app, &viewer, &plain).await;
    follow(&app, &viewer, &star).await;
    follow(&app, &fan, &star).await;
    // The push/pull split reads the stored follower counts.
    app.state().counters().flush().await.unwrap();
    // The first read makes the viewer's (empty) inbox fresh: what follows is pushed.
    assert!(whole_feed(&app, &viewer, 5).await.is_empty());

    let mut published = Vec::new();
    let mut pushed = Vec::new();
    for i in 0..9 {
        let author = if i % 3 == 0 { &star } else { &plain };
        let video = publish(&app, author).await;
        if i % 3 != 0 {
            pushed.push(video.clone());
        }
        published.push(video);
    }
    let unseen = publish(&app, &stranger).await;
    inbox_until(&app, &viewer, |ids| pushed.iter().all(|v| ids.contains(v))).await;
    // The celebrity's videos were not pushed: they come by pull.
    let stored = inbox(&app, &viewer).await;
    assert!(published.iter().filter(|v| !pushed.contains(v)).all(|v| !stored.contains(v)));
    assert_eq!(stored.len(), pushed.len(), "{stored:?}");

    // Celebrities' outbox heads are cached for up to a second (the first read cached an
    // empty one): wait for them, then page in every size.
    let expected = newest_first(&published);
    feed_until(&app, &viewer, |ids| ids == expected).await;
    for limit in [1, 2, 4, 9, 50] {
        assert_eq!(whole_feed(&app, &viewer, limit).await, expected, "limit {limit}");
    }
    assert!(!whole_feed(&app, &viewer, 50).await.contains(&unseen));
    // The items are the video list's items.
    let (_, first) = feed_page(&app, &viewer, "?limit=1").await;
    let item = &first["items"][0];
    assert_eq!(item["id"], expected[0].as_str());
    assert_eq!(item["author"]["username"], "plain");
    assert!(item["counts"]["likes"].is_number() && item["renditions"].is_array(), "{item}");
    // The fan follows only the celebrity: every one of its videos, by pull.
    let stars: Vec<String> = expected.iter().filter(|v| !pushed.contains(v)).cloned().collect();
    assert_eq!(whole_feed(&app, &fan, 2).await, stars);
    assert!(inbox(&app, &fan).await.is_empty());
}

#[tokio::test]
async fn an_inactive_follower_gets_no_pushes_but_a_correct_feed_on_return() {
    let app = AppSandbox::start().await.unwrap();
    let creator = app.uploader("creator").await.unwrap();
    let active = app.uploader("active").await.unwrap();
    let away = app.uploader("away").await.unwrap();
    let older = publish(&app, &creator).await;
    follow(&app, &active, &creator).await;
    follow(&app, &away, &creator).await;
    // Following backfills the creator's recent videos (before any feed read).
    inbox_until(&app, &active, |ids| ids == [older.clone()]).await;
    inbox_until(&app, &away, |ids| ids == [older.clone()]).await;
    assert_eq!(whole_feed(&app, &active, 10).await, vec![older.clone()]);

    // `away` was last seen a month ago.
    let now = app.state().clock().now_ms();
    app.state().meta().feed().mark_fresh(id(&away), now - 30 * DAY_MS).await.unwrap();
    let newer = publish(&app, &creator).await;
    feed_until(&app, &active, |ids| ids.first() == Some(&newer)).await;
    assert_eq!(inbox(&app, &active).await, [newer.clone(), older.clone()]);
    // The fan-out has run (the active follower has the video) and skipped `away`.
    assert_eq!(inbox(&app, &away).await, vec![older.clone()]);

    // Coming back: the inbox is rebuilt by pull before the first page, and `away` is
    // active again (the next publication is pushed).
    assert_eq!(whole_feed(&app, &away, 1).await, [newer.clone(), older.clone()]);
    assert_eq!(inbox(&app, &away).await, [newer.clone(), older.clone()]);
    let activity = app.state().meta().feed().activity(id(&away)).await.unwrap().unwrap();
    assert!(!activity.stale && activity.last_active_ms >= now, "{activity:?}");
    let newest = publish(&app, &creator).await;
    inbox_until(&app, &away, |ids| ids.first() == Some(&newest)).await;
}

#[tokio::test]
async fn removed_blocked_and_unfollowed_videos_leave_the_feed() {
    let app = start().await;
    let viewer = app.uploader("viewer").await.unwrap();
    let fan = app.uploader("fan").await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let bob = app.uploader("bob").await.unwrap();
    let star = app.uploader("star").await.unwrap();
    for whom in [&ann, &bob, &star] {
        follow(&app, &viewer, whom).await;
    }
    follow(&app, &fan, &star).await;
    app.state().counters().flush().await.unwrap();
    assert!(whole_feed(&app, &viewer, 5).await.is_empty());

    let a1 = publish(&app, &ann).await;
    let a2 = publish(&app, &ann).await;
    let b1 = publish(&app, &bob).await;
    let s1 = publish(&app, &star).await;
    let s2 = publish(&app, &star).await;
    let all = [a1.clone(), a2.clone(), b1.clone(), s1.clone(), s2.clone()];
    feed_until(&app, &viewer, |ids| ids == newest_first(&all)).await;

    // Removed videos go, pushed (a1) or pulled (s1).
    let videos = app.state().meta().videos();
    let now = app.state().clock().now_ms();
    for video in [&a1, &s1] {
        let video: Id = video.parse().unwrap();
        videos
            .set_status(video, quicktok_meta::VideoStatus::Removed, Some("spam"), now)
            .await
            .unwrap();
    }
    assert_eq!(whole_feed(&app, &viewer, 2).await, [s2.clone(), b1.clone(), a2.clone()]);
    // Bob blocks the viewer: his videos go at once.
    assert!(post(&app, &format!("/api/v1/users/{}/block", viewer.user_id), &bob).await < 300);
    assert_eq!(whole_feed(&app, &viewer, 2).await, [s2.clone(), a2.clone()]);
    // Unfollowing ann hides her videos at once; the consumer then deletes her rows.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/users/{}/follow", ann.user_id)))
        .bearer_auth(&viewer.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(whole_feed(&app, &viewer, 2).await, vec![s2.clone()]);
    inbox_until(&app, &viewer, |ids| !ids.contains(&a2)).await;
}

#[tokio::test]
async fn a_follow_made_on_another_node_reaches_this_nodes_cached_reader() {
    let app = start().await;
    let viewer = app.uploader("viewer").await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let cat = app.uploader("cat").await.unwrap();
    follow(&app, &viewer, &ann).await;
    let a1 = publish(&app, &ann).await;
    let c1 = publish(&app, &cat).await;
    // This node now keeps the viewer's follows (ann only).
    feed_until(&app, &viewer, |ids| ids == [a1.clone()]).await;
    // Another API node stores a follow of cat and announces it on the log; this node's
    // handlers never see it.
    let now = app.state().clock().now_ms();
    let social = app.state().meta().social();
    assert!(social.follow(id(&viewer), id(&cat), app.state().next_id(), now).await.unwrap());
    let event = Event::UserFollowed {
        follower: id(&viewer),
        followee: id(&cat),
        following: true,
        at_ms: now,
    };
    app.state().log().append_one(event.topic(), now, event.encode()).await.unwrap();
    // The feed consumer backfills cat's video and this node's social consumer drops the kept
    // follows: it shows well before `reader_graph_cache_ms`.
    assert!(app.state().feed_config().reader_graph_cache_ms >= 60_000);
    feed_until(&app, &viewer, |ids| ids == [c1.clone(), a1.clone()]).await;
}

#[tokio::test]
async fn bad_cursors_and_limits_are_400_and_anonymous_readers_401() {
    let app = AppSandbox::start().await.unwrap();
    let viewer = app.uploader("viewer").await.unwrap();
    for query in
        ["?cursor=nonsense", "?cursor=12345", "?limit=0", "?limit=51", "?limit=x", "?page=2"]
    {
        let (status, body) = feed_page(&app, &viewer, query).await;
        assert!(status == 400 || status == 422, "{query}: {status} {body}");
        assert!(body["error"].is_string() && body["message"].is_string(), "{query}: {body}");
    }
    let (status, _) = feed_page(&app, &viewer, "?cursor=nonsense").await;
    assert_eq!(status, 400);
    let (status, body) = feed_page(&app, &viewer, "").await;
    assert_eq!((status, body), (200, json!({"items": [], "next_cursor": null})));
    let r = app.get("/api/v1/feed/following", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
}
