//! Hostile uploads through the whole app: text, an empty file, truncated MP4s, an HLS
//! playlist, an ffconcat list and a DASH manifest renamed `.mp4` that point at a local
//! canary file, a PNG, audio only and absurd dimensions each end `rejected` with a reason
//! the uploader can act on; the canary is never read; a good clip still publishes after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use quicktok_testkit::{AppSandbox, make_clip};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Runs ffmpeg with `args` (split on whitespace) writing `out` (test setup only).
fn ffmpeg(args: &str, out: &Path) {
    let result = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args.split_whitespace())
        .arg(out)
        .output()
        .unwrap();
    assert!(result.status.success(), "ffmpeg {args}: {}", String::from_utf8_lossy(&result.stderr));
}

/// A file whose last access (2 days ago) is older than its last change (1 day ago), so any
/// read updates its atime even under `relatime`.
fn old_atime_file(path: &Path, contents: &[u8]) -> SystemTime {
    std::fs::write(path, contents).unwrap();
    let now = SystemTime::now();
    let times = std::fs::FileTimes::new().set_accessed(now - 2 * DAY).set_modified(now - DAY);
    std::fs::File::options().write(true).open(path).unwrap().set_times(times).unwrap();
    accessed(path)
}

fn accessed(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().accessed().unwrap()
}

struct Case {
    name: &'static str,
    path: PathBuf,
    /// What the rejection reason must say.
    reason: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_rejected_and_the_platform_keeps_working() {
    let app = AppSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The canary: a local file the playlists point at. A control file with the same times
    // shows whether this filesystem records reads in atime at all.
    let canary = d.join("canary.ts");
    let canary_atime = old_atime_file(&canary, b"CANARY: must never be read");
    let control = d.join("control");
    let control_atime = old_atime_file(&control, b"read me");
    std::fs::read(&control).unwrap();
    let atime_works = accessed(&control) != control_atime;
    if !atime_works {
        println!(
            "note: this filesystem does not record reads (noatime); the canary check is vacuous"
        );
    }
    let canary_url = format!("file://{}", canary.display());

    let mut cases = Vec::new();
    let mut case = |name: &'static str, path: PathBuf, reason: &'static str| {
        cases.push(Case { name, path, reason });
    };

    let text = d.join("notes.mp4");
    std::fs::write(&text, "Dear diary, this is not a video.\n").unwrap();
    case("text", text, "looks like a text file");

    let hls = d.join("playlist.mp4");
    std::fs::write(
        &hls,
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{canary_url}\n\
             #EXTINF:10.0,\n{}\n#EXT-X-ENDLIST\n",
            canary.display()
        ),
    )
    .unwrap();
    case("hls playlist", hls, "looks like an HLS playlist");

    let concat = d.join("concat.mp4");
    std::fs::write(&concat, format!("ffconcat version 1.0\nfile '{}'\n", canary.display()))
        .unwrap();
    case("ffconcat list", concat, "looks like a concat list");

    let mpd = d.join("manifest.mp4");
    std::fs::write(
        &mpd,
        format!(
            "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
             mediaPresentationDuration=\"PT10S\"><Period><AdaptationSet mimeType=\"video/mp2t\">\
             <Representation id=\"0\" bandwidth=\"1\"><BaseURL>{canary_url}</BaseURL>\
             </Representation></AdaptationSet></Period></MPD>\n"
        ),
    )
    .unwrap();
    case("dash manifest", mpd, "an XML document");

    let png = d.join("image.mp4");
    ffmpeg("-f lavfi -i testsrc2=s=320x240 -frames:v 1 -f image2 -c:v png", &png);
    case("png image", png, "looks like a PNG image");

    let audio = d.join("song.mp4");
    ffmpeg("-f lavfi -i sine=frequency=440:d=3 -c:a aac -f mp4", &audio);
    case("audio only", audio, "has audio but no video");

    // Far narrower than the 4:1 aspect limit, and wider than the 4096 pixel width limit.
    let narrow = make_clip(d, "narrow.mp4", "color=c=blue:s=16x4000:d=0.4:r=5", false).unwrap();
    case("16x4000", narrow, "16x4000 is too narrow");
    let wide = make_clip(d, "wide.mp4", "color=c=red:s=5000x2000:d=0.4:r=5", false).unwrap();
    case("5000x2000", wide, "5000x2000 exceeds the limit");

    // The first half of a real clip: with its index first (faststart), the index promises
    // frames that are missing; with its index last, there is no index at all.
    let faststart = d.join("faststart.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=s=640x360:d=4:r=25 -f lavfi -i sine=frequency=440:d=4 -shortest \
         -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -movflags +faststart",
        &faststart,
    );
    let bytes = std::fs::read(&faststart).unwrap();
    let half = d.join("half_faststart.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    case("truncated (index first)", half, "the file is incomplete");
    let plain = make_clip(d, "plain.mp4", "testsrc2=s=640x360:d=4:r=25", true).unwrap();
    let bytes = std::fs::read(&plain).unwrap();
    let half = d.join("half_plain.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    case("truncated (index last)", half, "the video could not be read");

    let alice = app.uploader("alice").await.unwrap();

    // An empty upload is refused by the tus server at creation (nothing is created, so
    // there is no video to reject later).
    let r = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&alice.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "0")
        .header("Upload-Metadata", "filename ZW1wdHkubXA0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(body["message"].as_str().unwrap().contains("empty"), "{body}");

    let mut uploaded = Vec::new();
    for c in &cases {
        let bytes = std::fs::read(&c.path).unwrap();
        let filename = c.path.file_name().unwrap().to_str().unwrap();
        let video = app
            .tus_upload(&alice.token, &bytes, &[("filename", filename), ("title", c.name)], 1 << 20)
            .await
            .unwrap();
        uploaded.push((c, video));
    }
    for (c, video) in &uploaded {
        let v = app
            .wait_for_video(&alice.token, video, &["rejected", "published", "review"], WAIT)
            .await
            .unwrap();
        assert_eq!(v["status"], "rejected", "{}: {v}", c.name);
        let reason = v["reason"].as_str().unwrap_or_default();
        println!("{}: {reason}", c.name);
        assert!(reason.contains(c.reason), "{}: reason {reason:?} lacks {:?}", c.name, c.reason);
        // Nobody else sees it, and its owner cannot play it.
        assert_eq!(app.get(&format!("/api/v1/videos/{video}"), None).await.unwrap().status(), 404);
        let play = app.get(&format!("/api/v1/videos/{video}/play"), Some(&alice.token)).await;
        assert_eq!(play.unwrap().status(), 409, "{}", c.name);
    }
    // Refused files do not linger on the node.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for (c, video) in &uploaded {
        let work = app.data_dir().join("work").join(video);
        while work.exists() {
            assert!(tokio::time::Instant::now() < deadline, "{}: {} kept", c.name, work.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The platform still works: a good clip from the same user publishes.
    let good = make_clip(d, "good.mp4", "testsrc2=s=360x640:d=2:r=25", true).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let video = app
        .tus_upload(&alice.token, &bytes, &[("filename", "good.mp4"), ("title", "fine")], 1 << 20)
        .await
        .unwrap();
    let v =
        app.wait_for_video(&alice.token, &video, &["published", "rejected"], WAIT).await.unwrap();
    assert_eq!(v["status"], "published", "{v}");
    assert_eq!(app.get(&format!("/api/v1/videos/{video}/play"), None).await.unwrap().status(), 200);

    // Nothing ever read the canary (checked before this test reads it itself).
    if atime_works {
        assert_eq!(accessed(&canary), canary_atime, "something read the canary");
    }
    assert_eq!(std::fs::read(&canary).unwrap(), b"CANARY: must never be read");
    app.stop().await.unwrap();
}
