//! Synthetic demo clips: every pattern renders, probe accepts the result at the asked size,
//! and different patterns or seeds are not near duplicates of each other.

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::config;
use quicktok_media::{DemoClip, JobDir, Pattern, clip_distance, frame_hashes, probe, synthesize};

#[tokio::test]
async fn vertical_clip_with_tone_probes_as_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let out = dir.path().join("demo.mp4");
    let clip = DemoClip { pattern: Pattern::Mandelbrot, duration_ms: 3000, ..DemoClip::default() };
    synthesize(&cfg, &clip, &out).await.unwrap();
    assert!(!dir.path().join("demo.mp4.part").exists(), "the partial file is renamed");
    let info = probe(&cfg, &out).await.unwrap();
    assert_eq!((info.width, info.height), (540, 960));
    assert_eq!(info.format, "mov");
    assert_eq!(info.video_codec, "h264");
    assert!(info.has_audio);
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    assert!((2900..=3100).contains(&info.duration_ms), "{}", info.duration_ms);
    assert!((info.fps - 25.0).abs() < 0.01, "{}", info.fps);
    // +faststart: the movie box comes before the media data.
    let bytes = std::fs::read(&out).unwrap();
    let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");
}

#[tokio::test]
async fn every_pattern_renders_and_differs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let job = JobDir::new(&cfg).unwrap();
    let mut hashes = Vec::new();
    for (i, pattern) in Pattern::ALL.into_iter().enumerate() {
        let out = dir.path().join(format!("{}.mp4", pattern.name()));
        let clip = DemoClip {
            width: 180,
            height: 320,
            duration_ms: 1500,
            pattern,
            hue_deg: (i * 40) as u16,
            tone_hz: None,
            seed: 7,
            ..DemoClip::default()
        };
        synthesize(&cfg, &clip, &out).await.unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        let info = probe(&cfg, &out).await.unwrap();
        assert_eq!((info.width, info.height), (180, 320), "{pattern:?}");
        assert!(!info.has_audio, "{pattern:?} is silent");
        hashes.push((pattern, frame_hashes(&cfg, &job, &out, &info, 16).await.unwrap()));
    }
    // The pipeline rejects clips within 10 bits of mean frame distance (16 frames).
    for (i, (pa, a)) in hashes.iter().enumerate() {
        for (pb, b) in &hashes[i + 1..] {
            let d = clip_distance(a, b);
            assert!(d > 10.0, "{pa:?} and {pb:?} are near duplicates ({d:.1} bits)");
        }
    }
}

#[tokio::test]
async fn bad_specs_are_refused_before_ffmpeg_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.mp4");
    let bad = DemoClip { width: 333, ..DemoClip::default() };
    let err = synthesize(&config(), &bad, &out).await.unwrap_err();
    assert!(err.to_string().contains("even"), "{err}");
    assert!(!out.exists());
}
