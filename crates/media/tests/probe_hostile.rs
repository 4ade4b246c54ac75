//! Probe acceptance and the hostile-input suite (every file generated here, never fetched).

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{clip, config, ffmpeg};
use quicktok_media::{MediaError, RejectReason, probe};

async fn rejected(path: &Path) -> (RejectReason, String) {
    match probe(&config(), path).await {
        Err(MediaError::Rejected(r)) => (r.reason, r.message),
        other => panic!("{}: expected a rejection, got {other:?}", path.display()),
    }
}

#[tokio::test]
async fn probes_a_normal_clip_with_audio() {
    let dir = tempfile::tempdir().unwrap();
    let p = clip(dir.path(), "n.mp4", "testsrc2=s=320x240:d=2:r=25", true, &[]);
    let info = probe(&config(), &p).await.unwrap();
    assert_eq!(info.format, "mov");
    assert_eq!((info.width, info.height, info.rotation), (320, 240, 0));
    assert!((info.duration_ms as i64 - 2000).abs() < 100, "{}", info.duration_ms);
    assert!((info.fps - 25.0).abs() < 0.01);
    assert_eq!(info.video_codec, "h264");
    assert!(info.has_audio);
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    assert!(info.bit_rate.unwrap() > 0);
    assert_eq!(info.size_bytes, std::fs::metadata(&p).unwrap().len());
}

#[tokio::test]
async fn probes_rotated_and_vertical_clips() {
    let dir = tempfile::tempdir().unwrap();
    let base = clip(dir.path(), "b.mp4", "testsrc2=s=320x240:d=1:r=25", false, &[]);
    let rot = dir.path().join("rot.mp4");
    ffmpeg(&[
        "-i",
        base.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rot.to_str().unwrap(),
    ]);
    let info = probe(&config(), &rot).await.unwrap();
    assert_eq!((info.coded_width, info.coded_height), (320, 240));
    assert_eq!((info.width, info.height), (240, 320), "displayed size follows rotation");
    assert!(info.rotation == 90 || info.rotation == 270, "{}", info.rotation);
    assert!(info.is_vertical() && !info.has_audio);

    let vert = clip(dir.path(), "v.mkv", "testsrc2=s=360x640:d=1:r=30", false, &[]);
    let info = probe(&config(), &vert).await.unwrap();
    assert_eq!(info.format, "matroska");
    assert_eq!((info.width, info.height, info.rotation), (360, 640, 0));
}

#[tokio::test]
async fn hostile_inputs_are_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = d.join("secret.txt");
    std::fs::write(&secret, b"TOP SECRET").unwrap();
    let secret_before = std::fs::metadata(&secret).unwrap().accessed().unwrap();

    let text = d.join("notes.mp4");
    std::fs::write(&text, "just some text, not a video\n").unwrap();
    let empty = d.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let hls = d.join("playlist.mp4");
    std::fs::write(
        &hls,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{}\n#EXT-X-ENDLIST\n",
            secret.display()
        ),
    )
    .unwrap();
    let concat = d.join("concat.mp4");
    std::fs::write(&concat, format!("ffconcat version 1.0\nfile '{}'\n", secret.display()))
        .unwrap();
    let png = d.join("image.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x64:d=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        png.to_str().unwrap(),
    ]);
    let jpg = d.join("photo.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x64:d=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "mjpeg",
        jpg.to_str().unwrap(),
    ]);
    let audio = d.join("song.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", audio.to_str().unwrap()]);
    let tall = clip(d, "tall.mp4", "color=c=blue:s=16x4000:d=0.2:r=5", false, &[]);
    let huge = clip(d, "huge.mp4", "color=c=red:s=5000x2000:d=0.2:r=5", false, &[]);

    // A real clip with its index first (faststart) cut in half, and one cut to 1 KiB.
    let full =
        clip(d, "full.mp4", "testsrc2=s=320x240:d=2:r=25", false, &["-movflags", "+faststart"]);
    let bytes = std::fs::read(&full).unwrap();
    let half = d.join("half.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let kib = d.join("kib.mp4");
    std::fs::write(&kib, &bytes[..1024]).unwrap();
    let plain = clip(d, "plain.mp4", "testsrc2=s=320x240:d=2:r=25", false, &[]);
    let pbytes = std::fs::read(&plain).unwrap();
    let half_end = d.join("half_end.mp4");
    std::fs::write(&half_end, &pbytes[..pbytes.len() / 2]).unwrap();

    let cases: Vec<(&Path, &[RejectReason])> = vec![
        (&text, &[RejectReason::FormatNotAllowed]),
        (&empty, &[RejectReason::EmptyFile]),
        (&hls, &[RejectReason::FormatNotAllowed]),
        (&concat, &[RejectReason::FormatNotAllowed]),
        (&png, &[RejectReason::FormatNotAllowed]),
        (&jpg, &[RejectReason::FormatNotAllowed]),
        (&audio, &[RejectReason::AudioOnly]),
        (&tall, &[RejectReason::DimensionsOutOfRange]),
        (&huge, &[RejectReason::DimensionsOutOfRange]),
        (&half, &[RejectReason::Truncated, RejectReason::Unreadable]),
        (&kib, &[RejectReason::Truncated, RejectReason::Unreadable]),
        (&half_end, &[RejectReason::Unreadable, RejectReason::Truncated]),
    ];
    for (path, allowed) in cases {
        let (reason, message) = rejected(path).await;
        println!("{}: {reason} ({message})", path.file_name().unwrap().to_string_lossy());
        assert!(allowed.contains(&reason), "{}: got {reason} ({message})", path.display());
        assert!(!message.is_empty());
    }
    // The playlist and concat list were refused at the allow-list stage with a clear message,
    // before any demuxer could open the URLs inside.
    assert!(rejected(&hls).await.1.contains("HLS playlist"));
    assert!(rejected(&concat).await.1.contains("concat list"));
    assert_eq!(std::fs::metadata(&secret).unwrap().accessed().unwrap(), secret_before);
    assert_eq!(std::fs::read(&secret).unwrap(), b"TOP SECRET");
}

#[tokio::test]
async fn too_long_and_zero_fps_limits_come_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = clip(dir.path(), "n.mp4", "testsrc2=s=160x120:d=2:r=10", false, &[]);
    let cfg = quicktok_media::MediaConfig { max_duration_ms: 1000, ..config() };
    match probe(&cfg, &p).await {
        Err(MediaError::Rejected(r)) => assert_eq!(r.reason, RejectReason::TooLong),
        other => panic!("{other:?}"),
    }
    let cfg = quicktok_media::MediaConfig { max_input_fps: 5.0, ..config() };
    match probe(&cfg, &p).await {
        Err(MediaError::Rejected(r)) => assert_eq!(r.reason, RejectReason::InvalidFrameRate),
        other => panic!("{other:?}"),
    }
}
