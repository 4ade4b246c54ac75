//! Notifications (F6.4) through the whole app over real HTTP: likes, replies, follows and
//! publication outcomes reach their recipients' inboxes through the log consumer, likes are
//! grouped, own actions notify nobody, each user reads only their own inbox, marking read
//! moves the unread count, and the SSE stream delivers a like made after connecting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use quicktok_core::{Event, Id};
use quicktok_testkit::{AppSandbox, Uploader};
use serde_json::{Value, json};

async fn call(
    app: &AppSandbox,
    method: http::Method,
    path: &str,
    who: &Uploader,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(&who.token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn post(app: &AppSandbox, path: &str, who: &Uploader, body: Value) -> (u16, Value) {
    call(app, http::Method::POST, path, who, Some(body)).await
}

async fn inbox(app: &AppSandbox, who: &Uploader) -> Value {
    let (status, body) = call(app, http::Method::GET, "/api/v1/notifications", who, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `who`'s inbox until `done` holds (the consumer is asynchronous).
async fn inbox_until(app: &AppSandbox, who: &Uploader, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = inbox(app, who).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "inbox never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().unwrap()
}

#[tokio::test]
async fn interactions_fan_out_to_the_right_inboxes() {
    let app = AppSandbox::start().await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let bob = app.uploader("bob").await.unwrap();
    let cat = app.uploader("cat").await.unwrap();
    let dan = app.uploader("dan").await.unwrap();
    let video = app.published_video(&ann.user_id, false).await.unwrap();
    let like = format!("/api/v1/videos/{video}/like");

    // Her own like notifies nobody; three others' likes become one item.
    for who in [&ann, &bob, &cat, &dan] {
        let (status, body) = post(&app, &like, who, json!({})).await;
        assert!(status < 300, "{body}");
    }
    let body = inbox_until(&app, &ann, |b| b["unread"] == 3).await;
    let got = items(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0]["kind"], "like");
    assert_eq!(got[0]["video_id"], video.as_str());
    assert_eq!(got[0]["text"], "dan and 2 others liked your video");
    assert_eq!(got[0]["others"], 2);
    assert_eq!(got[0]["actors"].as_array().unwrap().len(), 3);
    assert_eq!(got[0]["read"], false);

    // A reply notifies the parent comment's author (and the creator of the comment).
    let comments = format!("/api/v1/videos/{video}/comments");
    let (status, top) = post(&app, &comments, &bob, json!({"text": "nice"})).await;
    assert_eq!(status, 201, "{top}");
    let (status, _) =
        post(&app, &comments, &cat, json!({"text": "agreed", "reply_to": top["id"]})).await;
    assert_eq!(status, 201);
    let body = inbox_until(&app, &bob, |b| b["unread"] == 1).await;
    assert_eq!(items(&body)[0]["kind"], "reply");
    assert_eq!(items(&body)[0]["text"], "cat replied to your comment");
    assert_eq!(items(&body)[0]["actors"][0]["username"], "cat");

    // A follow notifies the followee.
    let (status, _) =
        post(&app, &format!("/api/v1/users/{}/follow", ann.user_id), &dan, json!({})).await;
    assert!(status < 300);
    let body = inbox_until(&app, &ann, |b| items(b).iter().any(|i| i["kind"] == "follow")).await;
    let follow = items(&body).iter().find(|i| i["kind"] == "follow").unwrap();
    assert_eq!(follow["text"], "dan started following you");

    // Nobody else sees ann's notifications: each inbox is its reader's own.
    let dans = inbox(&app, &dan).await;
    assert_eq!(dans["unread"], 0, "{dans}");
    assert!(items(&dans).is_empty(), "{dans}");

    // Marking read up to the newest item clears the count.
    let unread = body["unread"].as_u64().unwrap();
    assert!(unread >= 5, "{body}");
    let newest = items(&body)[0]["ids"][0].clone();
    // Dan marking "up to ann's newest" touches only his own (empty) inbox.
    let (status, marked) =
        post(&app, "/api/v1/notifications/read", &dan, json!({"up_to": newest})).await;
    assert_eq!((status, marked["marked"].clone()), (200, json!(0)));
    assert_eq!(inbox(&app, &ann).await["unread"], unread);
    let (status, marked) =
        post(&app, "/api/v1/notifications/read", &ann, json!({"up_to": newest})).await;
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["unread"], 0);
    let after = inbox(&app, &ann).await;
    assert!(items(&after).iter().all(|i| i["read"] == true), "{after}");

    let (status, bad) = post(&app, "/api/v1/notifications/read", &ann, json!({"up_to": "x"})).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].is_string());
    let r = app.client.get(app.url("/api/v1/notifications")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn publication_outcomes_notify_the_author() {
    let app = AppSandbox::start().await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let author: Id = ann.user_id.parse().unwrap();
    // The pipeline's events, appended as it does (a real encode is slow on two cores).
    let now = app.state().clock().now_ms();
    for event in [
        Event::VideoPublished { video_id: Id(11), author, at_ms: now },
        Event::VideoRejected { video_id: Id(12), author, reason: "duplicate".into(), at_ms: now },
    ] {
        app.state().log().append_one(event.topic(), now, event.encode()).await.unwrap();
    }
    let body = inbox_until(&app, &ann, |b| b["unread"] == 2).await;
    let got = items(&body);
    assert_eq!(got[0]["kind"], "rejected");
    assert_eq!(got[0]["reason"], "duplicate");
    assert_eq!(got[1]["kind"], "published");
    assert_eq!(got[1]["video_id"], "11");
    assert_eq!(got[1]["text"], "Your video is published");
}

#[tokio::test]
async fn the_stream_delivers_a_like_made_after_connecting() {
    let app = AppSandbox::start().await.unwrap();
    let ann = app.uploader("ann").await.unwrap();
    let bob = app.uploader("bob").await.unwrap();
    let video = app.published_video(&ann.user_id, false).await.unwrap();

    let response = app
        .client
        .get(app.url("/api/v1/notifications/stream"))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut body = response.bytes_stream();

    let (status, _) = post(&app, &format!("/api/v1/videos/{video}/like"), &bob, json!({})).await;
    assert!(status < 300);

    let mut seen = String::new();
    let read = async {
        while !seen.contains("\n\n") || !seen.contains("event: notification") {
            let chunk = body.next().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("no event within 10 s");
    assert!(seen.contains("event: notification"), "{seen}");
    assert!(seen.contains("id: "), "{seen}");
    assert!(seen.contains("bob liked your video"), "{seen}");
}
