//! Shared helpers for the integration tests: generating tiny clips with ffmpeg.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use quicktok_media::MediaConfig;

/// Runs ffmpeg with `args` (synchronously; test setup only) and panics on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// ffprobe with `args`, returning stdout.
pub fn ffprobe(args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test clip: `src` is a lavfi video source graph, e.g. `testsrc2=s=320x240:d=2:r=25`.
pub fn clip(dir: &Path, name: &str, src: &str, audio: bool, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let p = path.to_str().unwrap();
    let mut args = vec!["-f", "lavfi", "-i", src];
    if audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-shortest"]);
    }
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
    if audio {
        args.extend(["-c:a", "aac", "-b:a", "64k"]);
    }
    args.extend(extra);
    args.push(p);
    ffmpeg(&args);
    path
}

/// Test config: tiny limits on threads so parallel tests share the 2 cores.
pub fn config() -> MediaConfig {
    MediaConfig { threads: 1, preset: "ultrafast".into(), ..MediaConfig::default() }
}
