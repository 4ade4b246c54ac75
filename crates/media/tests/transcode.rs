//! Transcoding to CMAF fMP4 ladders and serving them through HLS and DASH manifests.

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{clip, config, ffmpeg, ffprobe};
use quicktok_media::{
    JobDir, MediaConfig, Rendition, VideoCodec, dash_mpd, hls_master, hls_media_playlist,
    plan_ladder, plan_ladder_for, probe, transcode_audio, transcode_rung,
};

fn path_url(p: &Path) -> String {
    p.display().to_string()
}

/// Keyframe times (seconds, ms precision) of a rendition, read from init + all segments.
fn keyframes(r: &Rendition, scratch: &Path) -> Vec<i64> {
    let mut bytes = std::fs::read(&r.init).unwrap();
    for s in &r.segments {
        bytes.extend(std::fs::read(&s.path).unwrap());
    }
    let joined = scratch.join(format!("{}-joined.mp4", r.rung.name));
    std::fs::write(&joined, bytes).unwrap();
    let csv = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        joined.to_str().unwrap(),
    ]);
    csv.lines()
        .filter(|l| l.contains('K'))
        .map(|l| (l.split(',').next().unwrap().parse::<f64>().unwrap() * 1000.0).round() as i64)
        .collect()
}

#[tokio::test]
async fn vertical_1080p_ladder_with_audio_plays_via_hls_and_dash() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "v.mp4", "testsrc2=s=1080x1920:d=2:r=25", true, &[]);
    let cfg = MediaConfig { segment_duration_ms: 1000, threads: 2, ..config() };
    let info = probe(&cfg, &src).await.unwrap();
    let rungs = plan_ladder_for(&info, &cfg);
    assert_eq!(
        rungs.iter().map(|r| (r.width, r.height)).collect::<Vec<_>>(),
        vec![(480, 854), (720, 1280), (1080, 1920)]
    );
    let job = JobDir::new(&cfg).unwrap();
    let mut renditions = Vec::new();
    for rung in &rungs {
        let r = transcode_rung(&cfg, &job, &src, &info, rung).await.unwrap();
        assert!(
            r.init.starts_with(job.path().canonicalize().unwrap()),
            "outputs stay in the job dir"
        );
        assert_eq!(r.segments.len(), 2, "{:?}", r.segments);
        assert!(
            r.segments.iter().all(|s| (s.duration_ms as i64 - 1000).abs() <= 40),
            "{:?}",
            r.segments
        );
        // ultrafast (the test preset) yields constrained baseline; production presets give High.
        // Video only: audio is a track of its own (below).
        assert!(r.codecs.starts_with("avc1.") && !r.codecs.contains(','), "{}", r.codecs);
        assert!(!r.has_audio);
        assert!(r.bandwidth >= r.average_bandwidth / 2 && r.bandwidth > 0);
        std::fs::write(r.dir.join("index.m3u8"), hls_media_playlist(&r, path_url)).unwrap();
        renditions.push(r);
    }
    // Keyframes sit on the shared 1 s grid in every rung: clean switching.
    let scratch = tempfile::tempdir().unwrap();
    let first = keyframes(&renditions[0], scratch.path());
    for r in &renditions {
        let k = keyframes(r, scratch.path());
        // Same instants in every rung; relative to the first (AAC priming shifts the start).
        assert_eq!(k, first, "{}", r.rung.name);
        assert_eq!(
            k.iter().map(|t| t - k[0]).collect::<Vec<_>>(),
            vec![0, 1000],
            "{}",
            r.rung.name
        );
        let json = ffprobe(&[
            "-protocol_whitelist",
            "file",
            "-show_entries",
            "stream=codec_type,width,height",
            "-of",
            "csv=p=0",
            r.dir.join("index.m3u8").to_str().unwrap(),
        ]);
        assert!(json.contains(&format!("video,{},{}", r.width, r.height)), "{json}");
        assert!(!json.contains("audio"), "{json}");
    }
    let audio = transcode_audio(&cfg, &job, &src, &info).await.unwrap().expect("an audio track");
    assert!(quicktok_media::is_audio_track(&audio));
    assert_eq!(audio.codecs, "mp4a.40.2");
    // AAC frames (1024 samples) do not end exactly on the grid: a tiny tail segment is fine.
    assert!((audio.duration_ms as i64 - 2000).abs() <= 100, "{:?}", audio.segments);
    assert!((2..=3).contains(&audio.segments.len()), "{:?}", audio.segments);
    std::fs::write(audio.dir.join("index.m3u8"), hls_media_playlist(&audio, path_url)).unwrap();
    renditions.push(audio);
    let master = job.path().join("master.m3u8");
    std::fs::write(&master, hls_master(&renditions, |r| path_url(&r.dir.join("index.m3u8"))))
        .unwrap();
    let streams = ffprobe(&[
        "-protocol_whitelist",
        "file",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        master.to_str().unwrap(),
    ]);
    for (w, h) in [(480, 854), (720, 1280), (1080, 1920)] {
        assert!(streams.contains(&format!("{w},{h}")), "master lacks {w}x{h}: {streams}");
    }
    let mpd = job.path().join("manifest.mpd");
    std::fs::write(&mpd, dash_mpd(&renditions, path_url)).unwrap();
    let streams = ffprobe(&[
        "-protocol_whitelist",
        "file",
        "-show_entries",
        "stream=codec_type,width,height",
        "-of",
        "csv=p=0",
        mpd.to_str().unwrap(),
    ]);
    assert!(streams.contains("video,1080,1920"), "dash: {streams}");
    assert!(streams.contains("audio"), "dash: {streams}");
    // Every stream decodes through both manifests (a muxed Representation would feed audio
    // packets to the video decoder here).
    for manifest in [&master, &mpd] {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-protocol_whitelist", "file", "-i"])
            .arg(manifest)
            .args(["-map", "0", "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn rotated_silent_clip_and_hevc_rung() {
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
    let cfg = MediaConfig { hevc_enabled: true, ..config() };
    let info = probe(&cfg, &rot).await.unwrap();
    let rungs = plan_ladder(info.width, info.height, true);
    assert_eq!(rungs.len(), 2);
    let job = JobDir::new(&cfg).unwrap();
    for rung in &rungs {
        assert_eq!((rung.width, rung.height), (240, 320));
        let r = transcode_rung(&cfg, &job, &rot, &info, rung).await.unwrap();
        assert!(!r.has_audio && !r.codecs.contains("mp4a"), "{}", r.codecs);
        match rung.codec {
            VideoCodec::H264 => assert!(r.codecs.starts_with("avc1."), "{}", r.codecs),
            VideoCodec::H265 => assert!(r.codecs.starts_with("hvc1.1.6.L"), "{}", r.codecs),
        }
        let pl = r.dir.join("index.m3u8");
        std::fs::write(&pl, hls_media_playlist(&r, path_url)).unwrap();
        let out = ffprobe(&[
            "-protocol_whitelist",
            "file",
            "-show_entries",
            "stream=codec_type,width,height:stream_side_data=rotation",
            "-of",
            "csv=p=0",
            pl.to_str().unwrap(),
        ]);
        // Upright output: rotation baked into the pixels, no display matrix left behind.
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| *l == "video,240,320"),
            "{}: {out}",
            r.rung.name
        );
    }
}

#[tokio::test]
async fn a_live_pass_reports_finished_segments_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "live.mp4", "testsrc2=s=320x568:d=6:r=25", true, &[]);
    let cfg = MediaConfig { segment_duration_ms: 1000, threads: 2, ..config() };
    let info = probe(&cfg, &src).await.unwrap();
    let rungs = plan_ladder_for(&info, &cfg);
    let job = JobDir::new(&cfg).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pass = quicktok_media::transcode_pass_live(&cfg, &job, &src, &info, &rungs, true, tx)
        .await
        .unwrap();
    let mut snapshots: Vec<Rendition> = Vec::new();
    let mut encoded = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            quicktok_media::PassProgress::Segments(s) => snapshots.push(s),
            quicktok_media::PassProgress::Encoded { media_ms } => encoded.push(media_ms),
        }
    }
    assert!(!snapshots.is_empty(), "no progress was reported");
    // ffmpeg's own progress: increasing, within the clip.
    assert!(
        !encoded.is_empty(),
        "no encoding progress was reported: {:?}",
        std::fs::read_to_string(job.path().join("progress.log"))
    );
    assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
    assert!(encoded.iter().all(|ms| *ms <= 6_100), "{encoded:?}");
    let finals: Vec<&Rendition> = pass.renditions.iter().chain(pass.audio.as_ref()).collect();
    for f in &finals {
        assert!(!f.growing);
        let mine: Vec<&Rendition> =
            snapshots.iter().filter(|s| s.rung.name == f.rung.name).collect();
        let mut last = 0;
        for s in &mine {
            assert!(s.growing);
            assert!(s.segments.len() > last, "every snapshot adds segments");
            last = s.segments.len();
            // What was reported is final: the same files and durations as the finished pass.
            assert_eq!(s.segments[..], f.segments[..s.segments.len()], "{}", f.rung.name);
            assert_eq!(s.init, f.init);
            assert_eq!(s.codecs, f.codecs);
            // Video's VBV model bounds every segment (audio's peak is set by its short last
            // segment, whose few bytes of framing make any rate).
            assert!(
                f.rung.name == quicktok_media::AUDIO_RENDITION || s.bandwidth >= f.bandwidth,
                "{}: estimate {} below the real peak {}",
                f.rung.name,
                s.bandwidth,
                f.bandwidth
            );
        }
    }
    // A 6 s clip in 1 s segments: some segment of some output was reported before the end.
    assert!(
        snapshots.iter().any(|s| s.segments.len() < 6),
        "progress came only after the pass: {:?}",
        snapshots.iter().map(|s| (&s.rung.name, s.segments.len())).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_short_first_segment_then_the_regular_grid_in_every_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "grid.mp4", "testsrc2=s=320x568:d=5:r=30", true, &[]);
    let cfg =
        MediaConfig { segment_duration_ms: 2000, first_segment_ms: 1000, threads: 2, ..config() };
    let info = probe(&cfg, &src).await.unwrap();
    let rungs = plan_ladder_for(&info, &cfg);
    let job = JobDir::new(&cfg).unwrap();
    let pass =
        quicktok_media::transcode_pass(&cfg, &job, &src, &info, &rungs, true, None).await.unwrap();
    for r in &pass.renditions {
        let durations: Vec<u64> = r.segments.iter().map(|s| s.duration_ms).collect();
        assert_eq!(durations, vec![1000, 2000, 2000], "{}", r.rung.name);
    }
    // Every audio frame is a keyframe, so ffmpeg cuts the audio track at the first length
    // throughout (its own track: players need not align it with video); audio frames
    // (21.3 ms at 48 kHz) round the cuts a little.
    let audio: Vec<u64> =
        pass.audio.as_ref().unwrap().segments.iter().map(|s| s.duration_ms).collect();
    assert!(audio.len() >= 5, "{audio:?}");
    assert!(audio[..audio.len() - 1].iter().all(|d| d.abs_diff(1000) <= 30), "{audio:?}");
    for r in &pass.renditions {
        assert_eq!(keyframes(r, dir.path()), vec![0, 1000, 3000], "{}", r.rung.name);
    }
}
