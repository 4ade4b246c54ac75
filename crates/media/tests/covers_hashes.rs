//! Cover selection, contact sheets, perceptual near-duplicate hashes and content hashes.

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{clip, config, ffmpeg, ffprobe};
use quicktok_media::{
    JobDir, clip_distance, contact_sheet, covers, frame_hashes, probe, sha256_file,
};

#[tokio::test]
async fn covers_skip_the_black_opening() {
    let dir = tempfile::tempdir().unwrap();
    // Black for the first second, then a sharp test pattern.
    let src = clip(
        dir.path(),
        "c.mp4",
        "testsrc2=s=400x300:d=3:r=10,drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,1)'",
        false,
        &[],
    );
    let cfg = config();
    let info = probe(&cfg, &src).await.unwrap();
    let job = JobDir::new(&cfg).unwrap();
    let got = covers(&cfg, &job, &src, &info, 3).await.unwrap();
    assert_eq!(got.len(), 3);
    let mut times: Vec<u64> = got.iter().map(|c| c.at_ms).collect();
    assert!(times.iter().all(|&t| t >= 1000), "a cover came from the black second: {times:?}");
    times.dedup();
    assert_eq!(times.len(), 3, "covers come from different moments");
    for c in &got {
        assert_eq!((c.width, c.height), (400, 300), "never upscaled past the source");
        assert_eq!(c.thumbnails.len(), 1);
        assert_eq!((c.thumbnails[0].width, c.thumbnails[0].height), (360, 270));
        let size = ffprobe(&[
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            c.path.to_str().unwrap(),
        ]);
        assert_eq!(size.trim(), "mjpeg,400,300");
        assert!(c.thumbnails[0].path.exists());
    }
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
    let sheet = contact_sheet(&cfg, &job, &src, &info, 3, 2, 120).await.unwrap();
    let size = ffprobe(&[
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        sheet.path.to_str().unwrap(),
    ]);
    assert_eq!(size.trim(), format!("{},{}", sheet.width, sheet.height));
}

#[tokio::test]
async fn near_duplicates_are_close_and_different_clips_far() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = clip(d, "a.mp4", "testsrc2=s=320x240:d=3:r=10", false, &[]);
    // The same clip, re-encoded at a much lower bitrate and resized, in another container.
    let b = d.join("b.mkv");
    ffmpeg(&[
        "-i",
        a.to_str().unwrap(),
        "-vf",
        "scale=200:150",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "150k",
        b.to_str().unwrap(),
    ]);
    let c = clip(d, "c.mp4", "mandelbrot=s=320x240:r=10,trim=duration=3", false, &[]);
    let cfg = config();
    let job = JobDir::new(&cfg).unwrap();
    let mut hashes = Vec::new();
    for p in [&a, &b, &c] {
        let info = probe(&cfg, p).await.unwrap();
        let h = frame_hashes(&cfg, &job, p, &info, 8).await.unwrap();
        assert_eq!(h.len(), 8);
        hashes.push(h);
    }
    let near = clip_distance(&hashes[0], &hashes[1]);
    let far = clip_distance(&hashes[0], &hashes[2]);
    println!("near {near} far {far}");
    assert!(near <= 6.0, "re-encode distance {near}");
    assert!(far >= 16.0, "different clip distance {far}");

    let (ha, hb) = (sha256_file(&a).await.unwrap(), sha256_file(&b).await.unwrap());
    assert_ne!(ha, hb, "content hash is exact, not perceptual");
    assert_eq!(ha, sha256_file(&a).await.unwrap());
}
