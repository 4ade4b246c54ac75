//! tus interoperability end to end: the real PyPI client (tuspy 1.1.0, run by
//! `tus_client.py`) uploads a clip in checksummed chunks, the video publishes with its whole
//! ladder, and the real ffmpeg/ffprobe read the HLS master and the DASH manifest over HTTP
//! and decode every rendition.
//!
//! Needs `QUICKTOK_TEST_PYTHON`, an interpreter that can `import tusclient`: `make test`
//! (scripts/deps.sh test, then scripts/test-env.sh) provides it; without it the test skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quicktok_testkit::{AppSandbox, make_clip};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);

/// Frames ffmpeg decoded from `url` (every video and audio stream demuxed, decoded and
/// checksummed per frame by the `framecrc` muxer): per video stream its decoded size and
/// frame count, and the number of audio frames.
fn decode_all(url: &str) -> (Vec<(String, usize)>, usize) {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg.args(["-nostdin", "-hide_banner", "-v", "error"]);
    if url.contains(".m3u8") {
        // A growing (EVENT) playlist is live to ffmpeg, which would start near its end
        // (it does not read EXT-X-START); players do start at the beginning.
        ffmpeg.args(["-live_start_index", "0"]);
    }
    let out = ffmpeg
        .args(["-i", url])
        .args(["-map", "0:v", "-map", "0:a?", "-f", "framecrc", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg decoding {url}: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg decoding {url} complained: {stderr}");
    // framecrc prints `#media_type N: video|audio` and `#dimensions N: WxH` headers, then one
    // line per decoded frame: `stream, dts, pts, duration, size, crc`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header = |key: &str| -> BTreeMap<usize, String> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(key))
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().parse().unwrap(), v.trim().to_owned())
            })
            .collect()
    };
    let (kinds, dimensions) = (header("#media_type "), header("#dimensions "));
    let mut video: BTreeMap<usize, usize> = BTreeMap::new();
    let mut audio = 0;
    for line in stdout.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let stream: usize = line.split(',').next().unwrap().trim().parse().unwrap();
        match kinds.get(&stream).map(String::as_str) {
            Some("video") => *video.entry(stream).or_insert(0) += 1,
            Some("audio") => audio += 1,
            other => panic!("frame of an unexpected stream {stream} ({other:?}): {line}"),
        }
    }
    let mut video: Vec<(String, usize)> =
        video.into_iter().map(|(n, frames)| (dimensions[&n].clone(), frames)).collect();
    video.sort();
    (video, audio)
}

/// ffprobe over HTTP: the streams it lists.
fn probe_streams(url: &str) -> Vec<Value> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_streams", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"].as_array().cloned().unwrap_or_default()
}

/// How many `PATCH /api/v1/uploads/{id}` requests the server answered 204, from `/metrics`.
async fn patches_answered(app: &AppSandbox) -> u64 {
    let text = app.get("/metrics", None).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("method=\"PATCH\"")
                && l.contains("status=\"204\"")
                && l.contains("/api/v1/uploads/")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn run_tuspy(python: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus_client.py");
    let out = Command::new(python).arg(&script).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tuspy failed ({}): {stderr}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// A node with one clip uploaded by tuspy in five checksummed PATCHes, published with its
/// whole ladder; `None` (after printing why) when tuspy is not available.
struct Published {
    app: AppSandbox,
    hls: String,
    dash: String,
    /// ffmpeg decoding the HLS master from the moment of publication, when the playlists may
    /// still be growing.
    early: tokio::task::JoinHandle<(Vec<(String, usize)>, usize)>,
}

async fn publish_with_tuspy() -> Option<Published> {
    let Some(python) = quicktok_testkit::env_url("QUICKTOK_TEST_PYTHON") else {
        println!("skipped: no tuspy (run make test)");
        return None;
    };
    let app = AppSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "beach.mp4", "testsrc2=s=720x1280:d=4:r=25", true).unwrap();
    let size = std::fs::metadata(&clip).unwrap().len() as usize;
    // Five PATCHes (the last one short).
    let chunk = size / 5 + 1;
    assert!(size.div_ceil(chunk) >= 4, "{size} bytes in {chunk} byte chunks");
    let alice = app.uploader("alice").await.unwrap();

    let args = [
        app.url("/api/v1/uploads"),
        alice.token.clone(),
        clip.to_str().unwrap().to_owned(),
        chunk.to_string(),
        "Sunset at the beach #travel".to_owned(),
        "beach.mp4".to_owned(),
    ];
    let upload_url = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tuspy(&python, &args)
    })
    .await
    .unwrap();
    assert!(upload_url.starts_with(&app.url("/api/v1/uploads/")), "{upload_url}");
    assert_eq!(patches_answered(&app).await, size.div_ceil(chunk) as u64);

    // The upload's HEAD names its video and confirms every byte arrived.
    let head = app
        .client
        .head(&upload_url)
        .bearer_auth(&alice.token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let header = |name: &str| head.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("upload-offset"), size.to_string());
    assert_eq!(header("upload-length"), size.to_string());
    let video = header("quicktok-video-id");

    let published =
        app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(published["status"], "published", "{published}");
    assert_eq!(published["title"], "Sunset at the beach #travel");
    assert_eq!(
        (published["width"].as_u64(), published["height"].as_u64()),
        (Some(720), Some(1280))
    );
    let duration = published["duration_ms"].as_i64().unwrap();
    assert!((duration - 4000).abs() < 200, "{duration}");

    // It plays at once: a client starts now, while the pass may still be encoding.
    let play: Value =
        app.get(&format!("/api/v1/videos/{video}/play"), None).await.unwrap().json().await.unwrap();
    let early_hls = app.url(play["hls"].as_str().unwrap());
    let early = tokio::task::spawn_blocking(move || decode_all(&early_hls));
    if play["complete"] == false {
        // DASH waits for the end of the pass, and says when to come back.
        let r = app.client.get(app.url(play["dash"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        println!("published while still encoding");
    }

    // The pass completes both rungs: 480p (480x854) and 720p (720x1280).
    let deadline = tokio::time::Instant::now() + WAIT;
    let full = loop {
        let v: Value =
            app.get(&format!("/api/v1/videos/{video}"), None).await.unwrap().json().await.unwrap();
        let renditions = v["renditions"].as_array().unwrap();
        if renditions.len() >= 2 && renditions.iter().all(|r| r["complete"] == true) {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "ladder incomplete: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sizes: Vec<(String, u64, u64)> = full["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["width"].as_u64().unwrap(),
                r["height"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sizes, vec![("480p".into(), 480, 854), ("720p".into(), 720, 1280)]);

    let play: Value =
        app.get(&format!("/api/v1/videos/{video}/play"), None).await.unwrap().json().await.unwrap();
    let hls = app.url(play["hls"].as_str().unwrap());
    let dash = app.url(play["dash"].as_str().unwrap());
    Some(Published { app, hls, dash, early })
}

/// ffmpeg decodes every frame of both renditions and the audio through `url`.
async fn assert_decodes_every_rendition(url: &str) {
    let decoded = tokio::task::spawn_blocking({
        let url = url.to_owned();
        move || decode_all(&url)
    })
    .await
    .unwrap();
    assert_decoded_everything(url, decoded);
}

fn assert_decoded_everything(url: &str, (video, audio): (Vec<(String, usize)>, usize)) {
    let sizes: Vec<&str> = video.iter().map(|(size, _)| size.as_str()).collect();
    assert_eq!(sizes, vec!["480x854", "720x1280"], "{url}: {video:?}");
    // 4 s at 25 fps in each rendition.
    assert!(video.iter().all(|(_, n)| (98..=102).contains(n)), "{url}: {video:?}");
    assert!(audio > 0, "{url}: no audio frames decoded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_upload_publishes_and_ffmpeg_decodes_every_rendition() {
    let Some(Published { app, hls, dash, early }) = publish_with_tuspy().await else { return };
    // The client that started at publication got every frame too.
    assert_decoded_everything("the HLS master at publication", early.await.unwrap());
    // ffprobe lists one video stream per rendition in each manifest, with the right sizes.
    for url in [&hls, &dash] {
        let streams = probe_streams(url);
        let mut videos: Vec<(u64, u64)> = streams
            .iter()
            .filter(|s| s["codec_type"] == "video")
            .map(|s| (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()))
            .collect();
        videos.sort_unstable();
        assert_eq!(videos, vec![(480, 854), (720, 1280)], "{url}: {streams:?}");
        assert!(
            streams
                .iter()
                .filter(|s| s["codec_type"] == "video")
                .all(|s| s["codec_name"] == "h264")
        );
        assert!(streams.iter().any(|s| s["codec_name"] == "aac"), "{url}: {streams:?}");
    }
    // ffmpeg decodes every frame of every rendition through the HLS master.
    assert_decodes_every_rendition(&hls).await;
    app.stop().await.unwrap();
}

/// The same through the DASH manifest: the audio track is an AdaptationSet of its own
/// (DASH clients expect one media component per Representation; a muxed one sends audio
/// packets to the video decoder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_manifest_decodes_every_rendition() {
    let Some(Published { app, dash, early, .. }) = publish_with_tuspy().await else { return };
    assert_decoded_everything("the HLS master at publication", early.await.unwrap());
    assert_decodes_every_rendition(&dash).await;
    app.stop().await.unwrap();
}
