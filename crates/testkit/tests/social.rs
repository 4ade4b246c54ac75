//! Relations, interactions, counters and their authorization rules through the whole app
//! over real HTTP: follows and their lists, blocks, likes (also concurrent), comments with
//! replies and the sensitive-word filter, shares, reports, counts on videos and profiles,
//! the events on the `social` topic, flush at shutdown and the repair command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quicktok_core::{Event, Id};
use quicktok_testkit::{AppSandbox, Uploader};
use serde_json::{Value, json};

/// Sends a request with an optional bearer token and JSON body; returns status and JSON.
async fn call(
    app: &AppSandbox,
    method: http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(app: &AppSandbox, path: &str, who: &Uploader, body: Value) -> (u16, Value) {
    call(app, http::Method::POST, path, Some(&who.token), Some(body)).await
}

async fn delete(app: &AppSandbox, path: &str, who: &Uploader) -> (u16, Value) {
    call(app, http::Method::DELETE, path, Some(&who.token), None).await
}

async fn get(app: &AppSandbox, path: &str, who: Option<&Uploader>) -> (u16, Value) {
    call(app, http::Method::GET, path, who.map(|u| u.token.as_str()), None).await
}

async fn users(app: &AppSandbox, names: &[&str]) -> Vec<Uploader> {
    let mut out = Vec::new();
    for name in names {
        out.push(app.uploader(name).await.unwrap());
    }
    out
}

async fn counts(app: &AppSandbox, video: &str) -> Value {
    let (status, body) = get(app, &format!("/api/v1/videos/{video}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["counts"].clone()
}

async fn profile_counts(app: &AppSandbox, user: &Uploader) -> (i64, i64) {
    let (status, body) = get(app, &format!("/api/v1/users/{}", user.user_id), None).await;
    assert_eq!(status, 200, "{body}");
    (body["counts"]["followers"].as_i64().unwrap(), body["counts"]["following"].as_i64().unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// Every event on the `social` topic so far.
async fn social_events(app: &AppSandbox) -> Vec<Event> {
    let records =
        app.state().log().read(quicktok_core::SOCIAL_TOPIC, 0, 10_000, 64 << 20).await.unwrap();
    records.iter().map(|r| Event::decode(&r.payload).unwrap()).collect()
}

fn id(s: &str) -> Id {
    s.parse().unwrap()
}

#[tokio::test]
async fn follows_are_idempotent_listed_newest_first_and_counted() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b, c] = <[Uploader; 3]>::try_from(users(&app, &["ann", "bob", "cat"]).await).unwrap();
    let follow_b = format!("/api/v1/users/{}/follow", b.user_id);

    for _ in 0..2 {
        let (status, body) = post(&app, &follow_b, &a, json!({})).await;
        assert_eq!((status, body), (200, json!({"following": true})));
    }
    assert_eq!(post(&app, &follow_b, &c, json!({})).await.0, 200);
    assert_eq!(profile_counts(&app, &b).await, (2, 0));
    assert_eq!(profile_counts(&app, &a).await, (0, 1));

    // The viewer's own relation shows on a profile.
    let (_, profile) = get(&app, &format!("/api/v1/users/{}", b.user_id), Some(&a)).await;
    assert_eq!(profile["username"], "bob");
    assert_eq!(
        (profile["following"].clone(), profile["blocked"].clone()),
        (json!(true), json!(false))
    );
    let (_, own) = get(&app, &format!("/api/v1/users/{}", b.user_id), Some(&b)).await;
    assert_eq!(own["following"], Value::Null);

    // Newest follow first, paged by an opaque cursor.
    let (status, page) =
        get(&app, &format!("/api/v1/users/{}/followers?limit=1", b.user_id), None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), [c.user_id.as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) =
        get(&app, &format!("/api/v1/users/{}/followers?limit=1&cursor={cursor}", b.user_id), None)
            .await;
    assert_eq!(ids(&page2), [a.user_id.as_str()]);
    let (_, page3) = get(
        &app,
        &format!(
            "/api/v1/users/{}/followers?limit=1&cursor={}",
            b.user_id,
            page2["next_cursor"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(page3, json!({"items": [], "next_cursor": null}));
    let (_, following) = get(&app, &format!("/api/v1/users/{}/following", a.user_id), None).await;
    assert_eq!(ids(&following), [b.user_id.as_str()]);
    assert_eq!(following["items"][0]["username"], "bob");
    assert_eq!(following["next_cursor"], Value::Null);

    // Unfollow twice: idempotent, counted once.
    for _ in 0..2 {
        let (status, body) = delete(&app, &follow_b, &a).await;
        assert_eq!((status, body), (200, json!({"following": false})));
    }
    assert_eq!(profile_counts(&app, &b).await, (1, 0));
    assert_eq!(profile_counts(&app, &a).await, (0, 0));

    // Bad input.
    let (status, body) =
        post(&app, &format!("/api/v1/users/{}/follow", a.user_id), &a, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    assert_eq!(post(&app, "/api/v1/users/123/follow", &a, json!({})).await.0, 404);
    assert_eq!(post(&app, "/api/v1/users/nope/follow", &a, json!({})).await.0, 404);
    assert_eq!(get(&app, "/api/v1/users/123", None).await.0, 404);
    assert_eq!(
        get(&app, &format!("/api/v1/users/{}/followers?cursor=x", b.user_id), None).await.0,
        400
    );

    // Only real changes are events.
    let follows: Vec<_> = social_events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::UserFollowed { follower, followee, following, .. } => {
                Some((follower, followee, following))
            }
            _ => None,
        })
        .collect();
    let (ai, bi, ci) = (id(&a.user_id), id(&b.user_id), id(&c.user_id));
    assert_eq!(follows, [(ai, bi, true), (ci, bi, true), (ai, bi, false)]);
}

#[tokio::test]
async fn likes_are_idempotent_even_concurrently_and_counted() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b] = <[Uploader; 2]>::try_from(users(&app, &["ann", "bob"]).await).unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    let like = format!("/api/v1/videos/{video}/like");

    let answers =
        futures::future::join_all((0..12).map(|_| post(&app, &like, &b, json!({})))).await;
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["liked"], true);
    }
    assert_eq!(post(&app, &like, &b, json!({})).await.1, json!({"liked": true, "likes": 1}));
    assert_eq!(post(&app, &like, &a, json!({})).await.1, json!({"liked": true, "likes": 2}));
    assert_eq!(counts(&app, &video).await["likes"], 2);
    // The video list shows the same counts.
    let (_, list) = get(&app, "/api/v1/videos", None).await;
    assert_eq!(list["items"][0]["counts"]["likes"], 2);

    let answers = futures::future::join_all((0..6).map(|_| delete(&app, &like, &b))).await;
    assert!(answers.iter().all(|(s, body)| *s == 200 && body["liked"] == false));
    assert_eq!(delete(&app, &like, &b).await.1, json!({"liked": false, "likes": 1}));
    assert_eq!(counts(&app, &video).await["likes"], 1);
    let liked: Vec<_> = social_events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::VideoLiked { user_id, liked, .. } => Some((user_id, liked)),
            _ => None,
        })
        .collect();
    assert_eq!(liked, [(id(&b.user_id), true), (id(&a.user_id), true), (id(&b.user_id), false)]);

    // Private videos take likes from their creator only; unpublished ones from nobody.
    let private = app.published_video(&a.user_id, true).await.unwrap();
    assert_eq!(post(&app, &format!("/api/v1/videos/{private}/like"), &b, json!({})).await.0, 404);
    assert_eq!(post(&app, &format!("/api/v1/videos/{private}/like"), &a, json!({})).await.0, 200);
    let processing = app.published_video(&a.user_id, false).await.unwrap();
    app.state()
        .meta()
        .videos()
        .set_status(id(&processing), quicktok_meta::VideoStatus::Processing, None, 1)
        .await
        .unwrap();
    assert_eq!(
        post(&app, &format!("/api/v1/videos/{processing}/like"), &a, json!({})).await.0,
        404
    );
    assert_eq!(post(&app, "/api/v1/videos/42/like", &a, json!({})).await.0, 404);
}

#[tokio::test]
async fn comments_replies_filter_and_deletion_rights() {
    let app = AppSandbox::start().await.unwrap();
    let [owner, b, c] =
        <[Uploader; 3]>::try_from(users(&app, &["owner", "bob", "cat"]).await).unwrap();
    let video = app.published_video(&owner.user_id, false).await.unwrap();
    let other_video = app.published_video(&owner.user_id, false).await.unwrap();
    let comments = format!("/api/v1/videos/{video}/comments");

    let (status, top) = post(&app, &comments, &b, json!({"text": "  first!  "})).await;
    assert_eq!(status, 201, "{top}");
    assert_eq!(top["text"], "first!");
    assert_eq!(top["author"]["username"], "bob");
    assert_eq!((top["parent_id"].clone(), top["reply_to"].clone()), (Value::Null, Value::Null));
    let top_id = top["id"].as_str().unwrap().to_owned();
    let (status, reply) =
        post(&app, &comments, &c, json!({"text": "hi bob", "reply_to": top_id})).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["parent_id"], top_id.as_str());
    let reply_id = reply["id"].as_str().unwrap().to_owned();
    // A reply to a reply attaches to the top-level comment.
    let (status, nested) =
        post(&app, &comments, &b, json!({"text": "hi cat", "reply_to": reply_id})).await;
    assert_eq!(status, 201, "{nested}");
    assert_eq!(
        (nested["parent_id"].as_str(), nested["reply_to"].as_str()),
        (Some(top_id.as_str()), Some(reply_id.as_str()))
    );
    let (status, second) = post(&app, &comments, &c, json!({"text": "second"})).await;
    assert_eq!(status, 201);
    assert_eq!(counts(&app, &video).await["comments"], 4);

    // Top level newest first with reply counts; replies oldest first.
    let (_, page) = get(&app, &comments, None).await;
    assert_eq!(ids(&page), [second["id"].as_str().unwrap(), top_id.as_str()]);
    assert_eq!(page["items"][1]["reply_count"], 2);
    let (_, page1) = get(&app, &format!("{comments}?limit=1"), None).await;
    let (_, page2) = get(
        &app,
        &format!("{comments}?limit=1&cursor={}", page1["next_cursor"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(ids(&page2), [top_id.as_str()]);
    let (_, replies) = get(&app, &format!("/api/v1/comments/{top_id}/replies"), None).await;
    assert_eq!(ids(&replies), [reply_id.clone(), nested["id"].as_str().unwrap().to_owned()]);

    // Bad input stores nothing.
    for (body, code) in [
        (json!({"text": "   "}), "validation_failed"),
        (json!({"text": "x".repeat(501)}), "validation_failed"),
        (json!({"text": "FREE  crypto giveaway here"}), "sensitive_content"),
        (json!({"text": "buy followers cheap"}), "sensitive_content"),
        (json!({"text": "ok", "extra": 1}), "validation_failed"),
    ] {
        let (status, err) = post(&app, &comments, &b, body.clone()).await;
        assert_eq!((status, err["error"].as_str()), (422, Some(code)), "{body}");
    }
    let (status, _) = post(
        &app,
        &format!("/api/v1/videos/{other_video}/comments"),
        &b,
        json!({"text": "x", "reply_to": top_id}),
    )
    .await;
    assert_eq!(status, 404, "a reply must answer a comment of the same video");
    assert_eq!(post(&app, &comments, &b, json!({"text": "x", "reply_to": "77"})).await.0, 404);
    assert_eq!(
        call(&app, http::Method::POST, &comments, None, Some(json!({"text": "anon"}))).await.0,
        401
    );
    assert_eq!(counts(&app, &video).await["comments"], 4);

    // Deletion: the author or the video's creator; others get 403 and nothing goes.
    let (status, err) = delete(&app, &format!("/api/v1/comments/{top_id}"), &c).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        delete(&app, &format!("/api/v1/comments/{}", second["id"].as_str().unwrap()), &b).await.0,
        403
    );
    assert_eq!(delete(&app, &format!("/api/v1/comments/{reply_id}"), &c).await.0, 204);
    assert_eq!(counts(&app, &video).await["comments"], 3);
    let (_, page) = get(&app, &comments, None).await;
    assert_eq!(page["items"][1]["reply_count"], 1);
    // The creator removes bob's thread, replies included.
    assert_eq!(delete(&app, &format!("/api/v1/comments/{top_id}"), &owner).await.0, 204);
    assert_eq!(counts(&app, &video).await["comments"], 1);
    assert_eq!(delete(&app, &format!("/api/v1/comments/{top_id}"), &owner).await.0, 404);
    assert_eq!(get(&app, &format!("/api/v1/comments/{top_id}/replies"), None).await.0, 404);

    let posted: Vec<_> = social_events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::CommentPosted { parent_id, reply_to, reply_to_author, video_author, .. } => {
                assert_eq!(video_author, id(&owner.user_id));
                Some((parent_id, reply_to, reply_to_author))
            }
            _ => None,
        })
        .collect();
    let (t, r) = (Some(id(&top_id)), Some(id(&reply_id)));
    assert_eq!(
        posted,
        [
            (None, None, None),
            (t, t, Some(id(&b.user_id))),
            (t, r, Some(id(&c.user_id))),
            (None, None, None)
        ]
    );

    // Private videos: comments only from (and for) their creator.
    let private = app.published_video(&owner.user_id, true).await.unwrap();
    let path = format!("/api/v1/videos/{private}/comments");
    assert_eq!(post(&app, &path, &b, json!({"text": "hi"})).await.0, 404);
    assert_eq!(get(&app, &path, Some(&b)).await.0, 404);
    assert_eq!(post(&app, &path, &owner, json!({"text": "note to self"})).await.0, 201);
    assert_eq!(ids(&get(&app, &path, Some(&owner)).await.1).len(), 1);
}

#[tokio::test]
async fn blocks_remove_follows_and_forbid_interactions() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b, c] = <[Uploader; 3]>::try_from(users(&app, &["ann", "bob", "cat"]).await).unwrap();
    let a_video = app.published_video(&a.user_id, false).await.unwrap();
    let c_video = app.published_video(&c.user_id, false).await.unwrap();
    assert_eq!(
        post(&app, &format!("/api/v1/users/{}/follow", b.user_id), &a, json!({})).await.0,
        200
    );
    assert_eq!(
        post(&app, &format!("/api/v1/users/{}/follow", a.user_id), &b, json!({})).await.0,
        200
    );
    let (status, bob_comment) = post(
        &app,
        &format!("/api/v1/videos/{c_video}/comments"),
        &b,
        json!({"text": "bob was here"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, cat_comment) =
        post(&app, &format!("/api/v1/videos/{c_video}/comments"), &c, json!({"text": "cat too"}))
            .await;
    assert_eq!(status, 201);
    assert_eq!(profile_counts(&app, &a).await, (1, 1));

    let block_b = format!("/api/v1/users/{}/block", b.user_id);
    for _ in 0..2 {
        assert_eq!(post(&app, &block_b, &a, json!({})).await, (200, json!({"blocked": true})));
    }
    assert_eq!(profile_counts(&app, &a).await, (0, 0));
    assert_eq!(profile_counts(&app, &b).await, (0, 0));

    // Neither can follow the other; bob can neither like nor comment on ann's videos.
    for (who, whom) in [(&b, &a), (&a, &b)] {
        let (status, err) =
            post(&app, &format!("/api/v1/users/{}/follow", whom.user_id), who, json!({})).await;
        assert_eq!((status, err["error"].as_str()), (403, Some("blocked")));
    }
    let (status, err) = post(&app, &format!("/api/v1/videos/{a_video}/like"), &b, json!({})).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("blocked")));
    let (status, err) =
        post(&app, &format!("/api/v1/videos/{a_video}/comments"), &b, json!({"text": "hey"})).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("blocked")));
    // Nor reply to each other's comments elsewhere.
    let (status, _) = post(
        &app,
        &format!("/api/v1/videos/{c_video}/comments"),
        &a,
        json!({"text": "no", "reply_to": bob_comment["id"]}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        counts(&app, &a_video).await,
        json!({"views": 0, "likes": 0, "comments": 0, "shares": 0})
    );

    // Bob's comments are hidden from ann only.
    let path = format!("/api/v1/videos/{c_video}/comments");
    assert_eq!(ids(&get(&app, &path, Some(&a)).await.1), [cat_comment["id"].as_str().unwrap()]);
    assert_eq!(ids(&get(&app, &path, Some(&c)).await.1).len(), 2);
    assert_eq!(ids(&get(&app, &path, None).await.1).len(), 2);
    let (_, profile) = get(&app, &format!("/api/v1/users/{}", b.user_id), Some(&a)).await;
    assert_eq!(profile["blocked"], true);

    // Self-blocks are refused; unblocking lets them follow again.
    assert_eq!(
        post(&app, &format!("/api/v1/users/{}/block", a.user_id), &a, json!({})).await.0,
        400
    );
    assert_eq!(delete(&app, &block_b, &a).await, (200, json!({"blocked": false})));
    assert_eq!(
        post(&app, &format!("/api/v1/users/{}/follow", a.user_id), &b, json!({})).await.0,
        200
    );
    assert_eq!(profile_counts(&app, &a).await, (1, 0));
}

#[tokio::test]
async fn shares_are_recorded_and_counted() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b] = <[Uploader; 2]>::try_from(users(&app, &["ann", "bob"]).await).unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    let path = format!("/api/v1/videos/{video}/share");
    // An empty body is fine.
    let r = app.client.post(app.url(&path)).bearer_auth(&b.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"shares": 1}));
    assert_eq!(
        post(&app, &path, &b, json!({"channel": "wechat"})).await,
        (200, json!({"shares": 2}))
    );
    for bad in [json!({"channel": "We Chat"}), json!({"channel": ""}), json!({"chanel": "x"})] {
        assert_eq!(post(&app, &path, &b, bad).await.0, 422);
    }
    let r =
        app.client.post(app.url(&path)).bearer_auth(&b.token).body("{nope").send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(counts(&app, &video).await["shares"], 2);
    let shared: Vec<_> = social_events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::VideoShared { channel, .. } => Some(channel),
            _ => None,
        })
        .collect();
    assert_eq!(shared, [None, Some("wechat".to_owned())]);
    let private = app.published_video(&a.user_id, true).await.unwrap();
    assert_eq!(post(&app, &format!("/api/v1/videos/{private}/share"), &b, json!({})).await.0, 404);
}

#[tokio::test]
async fn reports_reach_admins_only() {
    let app = AppSandbox::start_with(|c| c.auth.admins = vec!["judge".into()]).await.unwrap();
    let [a, b] = <[Uploader; 2]>::try_from(users(&app, &["ann", "bob"]).await).unwrap();
    let admin = app.admin("judge").await.unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    let (_, comment) =
        post(&app, &format!("/api/v1/videos/{video}/comments"), &a, json!({"text": "hello"})).await;

    let mut made = Vec::new();
    for body in [
        json!({"video_id": video, "reason": "spam"}),
        json!({"comment_id": comment["id"], "reason": "rude"}),
        json!({"user_id": a.user_id, "reason": " impersonation "}),
    ] {
        let (status, report) = post(&app, "/api/v1/reports", &b, body).await;
        assert_eq!(status, 201, "{report}");
        assert_eq!(report["reporter_id"], b.user_id.as_str());
        made.push(report);
    }
    assert_eq!(made[2]["reason"], "impersonation");
    assert_eq!(made[1]["target"], json!({"kind": "comment", "id": comment["id"]}));

    for bad in [
        json!({"reason": "no target"}),
        json!({"video_id": video, "user_id": a.user_id, "reason": "two"}),
        json!({"video_id": video, "reason": "   "}),
        json!({"video_id": video, "reason": "x".repeat(501)}),
    ] {
        assert_eq!(post(&app, "/api/v1/reports", &b, bad.clone()).await.0, 422, "{bad}");
    }
    for missing in [
        json!({"video_id": "9", "reason": "r"}),
        json!({"comment_id": "9", "reason": "r"}),
        json!({"user_id": "x", "reason": "r"}),
    ] {
        assert_eq!(post(&app, "/api/v1/reports", &b, missing).await.0, 404);
    }
    let private = app.published_video(&a.user_id, true).await.unwrap();
    assert_eq!(
        post(&app, "/api/v1/reports", &b, json!({"video_id": private, "reason": "r"})).await.0,
        404
    );
    assert_eq!(
        call(
            &app,
            http::Method::POST,
            "/api/v1/reports",
            None,
            Some(json!({"user_id": a.user_id, "reason": "r"}))
        )
        .await
        .0,
        401
    );

    let (status, err) = get(&app, "/api/v1/admin/reports", Some(&b)).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")));
    let (status, page) = get(&app, "/api/v1/admin/reports?limit=2", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), [made[2]["id"].as_str().unwrap(), made[1]["id"].as_str().unwrap()]);
    let (_, rest) = get(
        &app,
        &format!("/api/v1/admin/reports?limit=2&cursor={}", page["next_cursor"].as_str().unwrap()),
        Some(&admin),
    )
    .await;
    assert_eq!(ids(&rest), [made[0]["id"].as_str().unwrap()]);
}

/// Authorization: every social endpoint that changes something wants a signed-in user, and
/// acts only on that user's own relations (another user's unfollow leaves yours alone).
#[tokio::test]
async fn every_change_needs_a_user_and_acts_on_their_own_relations() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b, c] = <[Uploader; 3]>::try_from(users(&app, &["ann", "bob", "cat"]).await).unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    let (_, comment) =
        post(&app, &format!("/api/v1/videos/{video}/comments"), &b, json!({"text": "hi"})).await;
    let comment = comment["id"].as_str().unwrap().to_owned();
    let user = &b.user_id;
    for (method, path) in [
        (http::Method::POST, format!("/api/v1/users/{user}/follow")),
        (http::Method::DELETE, format!("/api/v1/users/{user}/follow")),
        (http::Method::POST, format!("/api/v1/users/{user}/block")),
        (http::Method::DELETE, format!("/api/v1/users/{user}/block")),
        (http::Method::POST, format!("/api/v1/videos/{video}/like")),
        (http::Method::DELETE, format!("/api/v1/videos/{video}/like")),
        (http::Method::POST, format!("/api/v1/videos/{video}/share")),
        (http::Method::POST, format!("/api/v1/videos/{video}/comments")),
        (http::Method::DELETE, format!("/api/v1/comments/{comment}")),
        (http::Method::POST, "/api/v1/reports".to_owned()),
        (http::Method::GET, "/api/v1/admin/reports".to_owned()),
    ] {
        let (status, body) =
            call(&app, method.clone(), &path, None, Some(json!({"text": "x"}))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
    }
    // Cat's unfollow and unlike touch cat's relations only.
    assert_eq!(post(&app, &format!("/api/v1/users/{user}/follow"), &a, json!({})).await.0, 200);
    assert_eq!(post(&app, &format!("/api/v1/videos/{video}/like"), &b, json!({})).await.0, 200);
    assert_eq!(
        delete(&app, &format!("/api/v1/users/{user}/follow"), &c).await.1,
        json!({"following": false})
    );
    assert_eq!(
        delete(&app, &format!("/api/v1/videos/{video}/like"), &c).await.1,
        json!({"liked": false, "likes": 1})
    );
    assert!(app.state().meta().social().is_following(id(&a.user_id), id(user)).await.unwrap());
    assert_eq!(profile_counts(&app, &b).await, (1, 0));
    // Nobody deletes another's comment on another's video.
    assert_eq!(delete(&app, &format!("/api/v1/comments/{comment}"), &c).await.0, 403);
    assert_eq!(get(&app, &format!("/api/v1/comments/{comment}/replies"), None).await.0, 200);
}

#[tokio::test]
async fn views_likes_and_follows_survive_a_restart_and_the_repair_command() {
    let app = AppSandbox::start().await.unwrap();
    let [a, b] = <[Uploader; 2]>::try_from(users(&app, &["ann", "bob"]).await).unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    assert_eq!(post(&app, &format!("/api/v1/videos/{video}/like"), &b, json!({})).await.0, 200);
    assert_eq!(
        post(&app, &format!("/api/v1/videos/{video}/comments"), &b, json!({"text": "nice"}))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&app, &format!("/api/v1/users/{}/follow", a.user_id), &b, json!({})).await.0,
        200
    );
    // A qualified view reaches the count through the play-statistics consumer.
    let (status, _) =
        post(&app, &format!("/api/v1/videos/{video}/views"), &b, json!({"watched_ms": 10_000}))
            .await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while counts(&app, &video).await["views"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the view never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected = json!({"views": 1, "likes": 1, "comments": 1, "shares": 0});
    assert_eq!(counts(&app, &video).await, expected);

    // Stopping flushes what is pending; the next node reads it back.
    let config = app.config.clone();
    let dir = app.stop().await.unwrap();
    let app = AppSandbox::start_in(dir, config).await.unwrap();
    assert_eq!(counts(&app, &video).await, expected);
    assert_eq!(profile_counts(&app, &a).await, (1, 0));

    // Counters gone wrong are rebuilt from the source tables by the repair command.
    let meta = app.state().meta().clone();
    let key = |metric| quicktok_meta::CounterKey { subject: "video", id: id(&video), metric };
    meta.counters().add(&[(key("likes"), 40), (key("plays"), -1)]).await.unwrap();
    app.state().counters().clear_cache();
    assert_eq!(counts(&app, &video).await["likes"], 41);
    let written = quicktok::counters::repair(&meta).await.unwrap();
    assert_eq!(written.counters, 5, "likes, comments, plays of the video; followers, following");
    assert_eq!(written.following_lists, 1, "the one user who follows anyone");
    app.state().counters().clear_cache();
    assert_eq!(counts(&app, &video).await, expected);
}
