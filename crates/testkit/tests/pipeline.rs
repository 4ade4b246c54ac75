//! The upload pipeline end to end over real HTTP: a tus upload becomes a published video
//! with covers, tags and an HLS + DASH ladder that ffprobe (a real client) reads over HTTP;
//! duplicates and blocked words are refused; the review queue works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quicktok_testkit::{AppSandbox, make_clip};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);

/// `GET path` (as `token`, if any) as JSON.
async fn get_json(app: &AppSandbox, path: &str, token: Option<&str>) -> Value {
    app.get(path, token).await.unwrap().json().await.unwrap()
}

/// ffprobe over HTTP: the streams it finds (and it decodes the first frames of each).
fn ffprobe_streams(url: &str) -> Vec<Value> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_streams", "-show_format", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_adaptive_playback() {
    let app = AppSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 540x960 vertical: two rungs would be planned only above 720 short side, so 480p is it.
    let clip = make_clip(dir.path(), "a.mp4", "testsrc2=s=720x1280:d=4:r=25", true).unwrap();
    let bytes = std::fs::read(&clip).unwrap();
    let alice = app.uploader("alice").await.unwrap();
    let video = app
        .tus_upload(
            &alice.token,
            &bytes,
            &[
                ("filename", "a.mp4"),
                ("title", "夏日海边 #旅行"),
                ("description", "Morning run #fitness"),
            ],
            bytes.len() / 3 + 1,
        )
        .await
        .unwrap();
    let published =
        app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(published["status"], "published", "{published}");
    assert_eq!(published["width"], 720);
    assert_eq!(published["height"], 1280);
    let tags: Vec<&str> =
        published["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tags.contains(&"旅行") && tags.contains(&"fitness"), "{tags:?}");
    assert!(published["cover"].is_string(), "{published}");

    // Publication comes while the pass still encodes: both rungs are listed from the
    // start, growing; they play at once (HLS EVENT playlists) and complete later.
    let deadline = tokio::time::Instant::now() + WAIT;
    let full = loop {
        let v: Value = get_json(&app, &format!("/api/v1/videos/{video}"), None).await;
        let renditions = v["renditions"].as_array().unwrap();
        if renditions.len() == 2 && renditions.iter().all(|r| r["complete"] == true) {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "ladder incomplete: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let heights: Vec<u64> = full["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, vec![854, 1280]);

    let play: Value = get_json(&app, &format!("/api/v1/videos/{video}/play"), None).await;
    assert_eq!(play["complete"], true, "{play}");
    let hls = app.url(play["hls"].as_str().unwrap());
    let dash = app.url(play["dash"].as_str().unwrap());
    let master = app.client.get(&hls).send().await.unwrap();
    assert_eq!(master.status(), 200);
    assert_eq!(master.headers()["content-type"], "application/vnd.apple.mpegurl");
    let master = master.text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    // ffprobe reads both manifests over HTTP: one program per HLS variant, one video stream
    // per DASH representation, all H.264 with AAC.
    let streams = ffprobe_streams(&hls);
    let videos: Vec<&Value> = streams.iter().filter(|s| s["codec_type"] == "video").collect();
    assert_eq!(videos.len(), 2, "{streams:?}");
    assert!(videos.iter().all(|s| s["codec_name"] == "h264"));
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"));
    let streams = ffprobe_streams(&dash);
    assert_eq!(streams.iter().filter(|s| s["codec_type"] == "video").count(), 2, "{streams:?}");
    let cover = app.client.get(app.url(play["cover"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(cover.status(), 200);
    assert_eq!(cover.headers()["content-type"], "image/jpeg");

    // A tampered manifest signature is refused.
    let forged = hls.replace("sig=", "sig=A");
    assert_eq!(app.client.get(&forged).send().await.unwrap().status(), 403);

    // The same clip again (byte-identical) is refused as a duplicate.
    let bob = app.uploader("bob").await.unwrap();
    let copy =
        app.tus_upload(&bob.token, &bytes, &[("title", "mine now")], bytes.len()).await.unwrap();
    let refused =
        app.wait_for_video(&bob.token, &copy, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(refused["status"], "rejected");
    assert!(refused["reason"].as_str().unwrap().contains("duplicate"), "{refused}");
    // Others do not see a rejected video; its owner cannot play it.
    assert_eq!(app.get(&format!("/api/v1/videos/{copy}"), None).await.unwrap().status(), 404);
    let r = app.get(&format!("/api/v1/videos/{copy}/play"), Some(&bob.token)).await.unwrap();
    assert_eq!(r.status(), 409);

    let listed: Value = get_json(&app, "/api/v1/videos?limit=5", None).await;
    let ids: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![video.as_str()]);
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_queue_approve_and_refuse() {
    let app = AppSandbox::start_with(|c| {
        c.auth.admins = vec!["mod_jane".into()];
        c.pipeline.compliance.review_words = vec!["giveaway".into()];
        c.pipeline.compliance.block_words = vec!["forbiddenword".into()];
        c.pipeline.sweep_interval_ms = 100;
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = app.uploader("alice").await.unwrap();
    let moderator = app.admin("mod_jane").await.unwrap();

    let blocked = make_clip(dir.path(), "b.mp4", "testsrc2=s=320x240:d=2:r=25", false).unwrap();
    let bytes = std::fs::read(&blocked).unwrap();
    let v = app
        .tus_upload(&alice.token, &bytes, &[("title", "FORBIDDEN-word here")], 1 << 20)
        .await
        .unwrap();
    let v = app.wait_for_video(&alice.token, &v, &["rejected", "published"], WAIT).await.unwrap();
    assert_eq!(v["status"], "rejected");
    assert!(v["reason"].as_str().unwrap().contains("forbiddenword"), "{v}");

    let mut held = Vec::new();
    for (i, src) in ["mandelbrot=s=320x240:r=25", "life=s=320x240:r=25:mold=10"].iter().enumerate()
    {
        let clip =
            make_clip(dir.path(), &format!("r{i}.mp4"), &format!("{src},trim=duration=2"), false)
                .unwrap();
        let bytes = std::fs::read(&clip).unwrap();
        let id = app
            .tus_upload(&alice.token, &bytes, &[("title", "Big GIVEAWAY today")], 1 << 20)
            .await
            .unwrap();
        let v = app
            .wait_for_video(&alice.token, &id, &["review", "rejected", "published"], WAIT)
            .await
            .unwrap();
        assert_eq!(v["status"], "review", "{v}");
        held.push(id);
    }
    // Only admins see the queue.
    assert_eq!(app.get("/api/v1/admin/review", Some(&alice.token)).await.unwrap().status(), 403);
    let queue: Value = get_json(&app, "/api/v1/admin/review", Some(&moderator.token)).await;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{queue}");
    let sheet = items[0]["contact_sheet"].as_str().expect("a contact sheet");
    assert_eq!(app.client.get(app.url(sheet)).send().await.unwrap().status(), 200);

    let path = format!("/api/v1/admin/review/{}", held[0]);
    let r = app.post_json(&path, &json!({"approve": true}), Some(&moderator.token)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v =
        app.wait_for_video(&alice.token, &held[0], &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(v["status"], "published", "{v}");
    // A decided video is no longer waiting.
    let r = app.post_json(&path, &json!({"approve": false}), Some(&moderator.token)).await.unwrap();
    assert_eq!(r.status(), 409);

    let path = format!("/api/v1/admin/review/{}", held[1]);
    let r = app
        .post_json(&path, &json!({"approve": false, "reason": "spam"}), Some(&moderator.token))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = get_json(&app, &format!("/api/v1/videos/{}", held[1]), Some(&alice.token)).await;
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("rejected"), Some("spam")));
    // The worker kept the held video's work dir for a decision; the refusal came through the
    // API, and the worker's sweep removes it.
    let work = app.data_dir().join("work").join(&held[1]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while work.exists() {
        assert!(tokio::time::Instant::now() < deadline, "work dir kept: {}", work.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The refused clip, fixed and uploaded again, is not called a duplicate of itself: the
    // worker's index still holds the refused video, the store no longer does.
    let again = std::fs::read(dir.path().join("r1.mp4")).unwrap();
    let id =
        app.tus_upload(&alice.token, &again, &[("title", "Clean title")], 1 << 20).await.unwrap();
    let v = app.wait_for_video(&alice.token, &id, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(v["status"], "published", "{v}");
    let dead: Value =
        get_json(&app, "/api/v1/admin/jobs?status=done", Some(&moderator.token)).await;
    assert_eq!(dead["items"].as_array().unwrap().len(), 2, "{dead}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_retried() {
    // No ffmpeg (probe's ffprobe still works): the transcode stage fails, once is enough.
    let broken = |c: &mut quicktok::Config| {
        c.auth.admins = vec!["ops".into()];
        c.pipeline.runner.max_attempts = 1;
        c.processing.ffmpeg_path = "/nonexistent/ffmpeg".into();
    };
    let app = AppSandbox::start_with(broken).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = app.uploader("alice").await.unwrap();
    let ops = app.admin("ops").await.unwrap();
    let clip = make_clip(dir.path(), "d.mp4", "testsrc2=s=320x240:d=2:r=25", true).unwrap();
    let bytes = std::fs::read(&clip).unwrap();
    let video =
        app.tus_upload(&alice.token, &bytes, &[("title", "retry me")], 1 << 20).await.unwrap();
    let v =
        app.wait_for_video(&alice.token, &video, &["rejected", "published"], WAIT).await.unwrap();
    assert_eq!(v["status"], "rejected");
    assert!(v["reason"].as_str().unwrap().starts_with("processing failed"), "{v}");
    let dead: Value = get_json(&app, "/api/v1/admin/jobs?status=dead", Some(&ops.token)).await;
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{dead}");
    assert_eq!(
        (items[0]["video_id"].as_str(), items[0]["stage"].as_str()),
        (Some(video.as_str()), Some("transcode"))
    );
    let retry = format!("/api/v1/admin/jobs/{video}/retry");
    assert_eq!(app.post_json(&retry, &json!({}), Some(&alice.token)).await.unwrap().status(), 403);

    // The operator fixes the machine (ffmpeg back), restarts, and retries the dead letter.
    let mut config = app.config.clone();
    config.processing.ffmpeg_path = "ffmpeg".into();
    let data = app.stop().await.unwrap();
    let app = AppSandbox::start_in(data, config).await.unwrap();
    let r = app.client.post(app.url(&retry)).bearer_auth(&ops.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v =
        app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(v["status"], "published", "{v}");
    // Only dead letters can be retried.
    let r = app.client.post(app.url(&retry)).bearer_auth(&ops.token).send().await.unwrap();
    assert_eq!(r.status(), 409);
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_videos_are_for_their_creator_only() {
    let app = AppSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = app.uploader("alice").await.unwrap();
    let bob = app.uploader("bob").await.unwrap();
    let clip = make_clip(dir.path(), "p.mp4", "testsrc2=s=320x240:d=2:r=25", true).unwrap();
    let bytes = std::fs::read(&clip).unwrap();
    let meta = [("title", "just for me"), ("visibility", "private")];
    let video = app.tus_upload(&alice.token, &bytes, &meta, 1 << 20).await.unwrap();
    let v =
        app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!((v["status"].as_str(), v["private"].as_bool()), (Some("published"), Some(true)));
    let path = format!("/api/v1/videos/{video}");
    let play = format!("{path}/play");
    // Nobody else sees or plays it; the creator does.
    assert_eq!(app.get(&path, None).await.unwrap().status(), 404);
    assert_eq!(app.get(&path, Some(&bob.token)).await.unwrap().status(), 404);
    assert_eq!(app.get(&play, Some(&bob.token)).await.unwrap().status(), 404);
    assert_eq!(app.get(&play, Some(&alice.token)).await.unwrap().status(), 200);
    let listed: Value = get_json(&app, "/api/v1/videos", None).await;
    assert!(listed["items"].as_array().unwrap().is_empty(), "{listed}");
    // Views of a private video are not counted (trending lists are public).
    let r = app
        .post_json(&format!("{path}/views"), &json!({"watched_ms": 5000}), Some(&alice.token))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Only the creator changes it; public again, everyone sees it.
    let visibility = format!("{path}/visibility");
    let put = |token: &str| {
        app.client
            .put(app.url(&visibility))
            .bearer_auth(token)
            .json(&json!({"private": false}))
            .send()
    };
    assert_eq!(put(&bob.token).await.unwrap().status(), 403);
    assert_eq!(put(&alice.token).await.unwrap().status(), 200);
    assert_eq!(app.get(&path, None).await.unwrap().status(), 200);
    let listed: Value = get_json(&app, "/api/v1/videos", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    // Bad metadata is refused at creation.
    let r = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&alice.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", 10)
        .header("Upload-Metadata", "visibility ZnJpZW5kcw==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await.unwrap();
}

/// Encodes `source` (a lavfi graph) with `x264` options: the copies differ in every byte.
fn encode(dir: &std::path::Path, name: &str, source: &str, x264: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(source)
        .args(["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000", "-shortest"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(x264)
        .args(["-c:a", "aac", "-b:a", "64k"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reencoded_resized_copy_is_refused_and_another_clip_is_not() {
    let app = AppSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = "testsrc2=s=720x1280:d=4:r=30";
    // The original with B-frames (the sampler skips them), the copy without, smaller, with
    // another GOP and far fewer bits.
    let original = encode(dir.path(), "o.mp4", source, &["-preset", "medium", "-bf", "3"]);
    let copy = encode(
        dir.path(),
        "c.mp4",
        &format!("{source},scale=540:960"),
        &["-preset", "ultrafast", "-bf", "0", "-g", "17", "-crf", "33"],
    );
    let other = encode(
        dir.path(),
        "x.mp4",
        "mandelbrot=s=720x1280:r=30,trim=duration=4",
        &["-preset", "veryfast"],
    );
    let carol = app.uploader("carol").await.unwrap();
    let first = app.tus_upload(&carol.token, &original, &[("title", "mine")], original.len());
    let first = first.await.unwrap();
    let v = app.wait_for_video(&carol.token, &first, &["published", "rejected"], WAIT).await;
    assert_eq!(v.unwrap()["status"], "published");

    let dave = app.uploader("dave").await.unwrap();
    let second = app.tus_upload(&dave.token, &copy, &[("title", "also mine")], copy.len());
    let second = second.await.unwrap();
    let v = app.wait_for_video(&dave.token, &second, &["published", "rejected"], WAIT).await;
    let v = v.unwrap();
    assert_eq!(v["status"], "rejected", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("near copy") && reason.contains(&first), "{reason}");

    let third = app.tus_upload(&dave.token, &other, &[("title", "fractal")], other.len());
    let third = third.await.unwrap();
    let v = app.wait_for_video(&dave.token, &third, &["published", "rejected"], WAIT).await;
    assert_eq!(v.unwrap()["status"], "published");
    app.stop().await.unwrap();
}

/// F3.8: the queue serves creators with many followers first (by order of magnitude).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creators_with_many_followers_get_a_higher_queue_priority() {
    let app = AppSandbox::start_with(|c| {
        c.auth.admins = vec!["ops".into()];
        c.social.counters.flush_interval_ms = 20;
    })
    .await
    .unwrap();
    let ops = app.admin("ops").await.unwrap();
    let star = app.uploader("star").await.unwrap();
    let newcomer = app.uploader("newcomer").await.unwrap();
    for i in 0..10 {
        let fan = app.uploader(&format!("fan{i}")).await.unwrap();
        let path = format!("/api/v1/users/{}/follow", star.user_id);
        let r = app.post_json(&path, &json!({}), Some(&fan.token)).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The follower counter reaches the store (what the enqueuer reads) within a flush.
    let id: quicktok_core::Id = star.user_id.parse().unwrap();
    let key = quicktok_meta::CounterKey { subject: "user", id, metric: "followers" };
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.state().meta().counters().get(&[key]).await.unwrap() != vec![10] {
        assert!(tokio::time::Instant::now() < deadline, "follower counter never flushed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut videos = Vec::new();
    for (who, src) in [(&star, "testsrc2"), (&newcomer, "mandelbrot")] {
        let clip = format!("{src}=s=320x240:r=25,trim=duration=1");
        let bytes =
            std::fs::read(make_clip(dir.path(), &format!("{src}.mp4"), &clip, false).unwrap())
                .unwrap();
        let id = app.tus_upload(&who.token, &bytes, &[("title", "hi")], bytes.len()).await.unwrap();
        app.wait_for_video(&who.token, &id, &["published", "rejected"], WAIT).await.unwrap();
        videos.push(id);
    }
    let done: Value =
        get_json(&app, "/api/v1/admin/jobs?status=done&limit=50", Some(&ops.token)).await;
    let priority = |video: &str| {
        done["items"].as_array().unwrap().iter().find(|j| j["video_id"] == video).unwrap()
            ["priority"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((priority(&videos[0]), priority(&videos[1])), (1, 0), "{done}");
    app.stop().await.unwrap();
}

/// ffmpeg encoders this test process started (through the in-process app), by cmdline.
fn running_encoders() -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![std::process::id()];
    while let Some(pid) = next.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains("libx264") {
                    found.push(child);
                }
                next.push(child);
            }
        }
    }
    found
}

/// The media time an HLS media playlist lists, and whether it ends (`EXT-X-ENDLIST`).
async fn rung_playlist(app: &AppSandbox, video: &str, rung: &str) -> (f64, bool) {
    let play: Value = get_json(app, &format!("/api/v1/videos/{video}/play"), None).await;
    let master =
        app.client.get(app.url(play["hls"].as_str().unwrap())).send().await.unwrap().text().await;
    let master = master.unwrap();
    let line = master.lines().find(|l| l.contains(&format!("/{rung}.m3u8"))).unwrap();
    let playlist = app.client.get(app.url(line)).send().await.unwrap().text().await.unwrap();
    let seconds = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    (seconds, playlist.contains("#EXT-X-ENDLIST"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_failing_after_publication_ends_the_playlists_and_a_retry_completes_them() {
    let app = AppSandbox::start_with(|c| {
        c.auth.admins = vec!["ops".into()];
        c.pipeline.runner.max_attempts = 1;
        // One thread: the pass outlives publication by seconds.
        c.processing.threads = 1;
    })
    .await
    .unwrap();
    let ops = app.admin("ops").await.unwrap();
    let alice = app.uploader("alice").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "long.mp4", "testsrc2=s=720x1280:d=20:r=25", true).unwrap();
    let bytes = std::fs::read(&clip).unwrap();
    let video = app.tus_upload(&alice.token, &bytes, &[("title", "cut")], bytes.len()).await;
    let video = video.unwrap();
    app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    // The machine kills the encoder after publication (an OOM killer, say).
    let encoders = running_encoders();
    assert!(!encoders.is_empty(), "the pass ended before the test could stop it");
    for pid in encoders {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let dead: Value = get_json(&app, "/api/v1/admin/jobs?status=dead", Some(&ops.token)).await;
        if dead["items"].as_array().unwrap().iter().any(|j| j["video_id"] == video.as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter: {dead}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still published; its playlists end where the stored segments do, and say so.
    let v: Value = get_json(&app, &format!("/api/v1/videos/{video}"), None).await;
    assert_eq!(v["status"], "published", "{v}");
    assert!(v["renditions"].as_array().unwrap().iter().all(|r| r["complete"] == false), "{v}");
    // The job is listed dead a moment before the worker's settled hook ends the playlists.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (seconds, ends) = loop {
        let (seconds, ends) = rung_playlist(&app, &video, "480p").await;
        if ends || tokio::time::Instant::now() > deadline {
            break (seconds, ends);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ends && seconds < 19.0, "{seconds} s, ends: {ends}");

    // The operator retries: the pass completes what it had, keeping what was stored.
    let retry = format!("/api/v1/admin/jobs/{video}/retry");
    assert_eq!(app.post_json(&retry, &json!({}), Some(&ops.token)).await.unwrap().status(), 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v: Value = get_json(&app, &format!("/api/v1/videos/{video}"), None).await;
        let renditions = v["renditions"].as_array().unwrap();
        if renditions.iter().all(|r| r["complete"] == true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never completed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (seconds, ends) = rung_playlist(&app, &video, "480p").await;
    assert!(ends && (seconds - 20.0).abs() < 0.2, "{seconds} s, ends: {ends}");
    app.stop().await.unwrap();
}
