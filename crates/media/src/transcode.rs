//! Transcoding one rung to CMAF fMP4 (an init segment plus `.m4s` media segments) with
//! keyframes on a fixed time grid, so every rung switches cleanly at segment boundaries.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::MediaConfig;
use crate::error::{MediaError, Result};
use crate::ladder::{Rung, VideoCodec};
use crate::probe::ProbeInfo;
use crate::runner::{self, JobDir, Tool};

/// One media segment of a rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub path: PathBuf,
    /// Actual duration as written by the packager.
    pub duration_ms: u64,
    pub size_bytes: u64,
}

/// A finished rendition: one init segment and its media segments, muxed video (+ audio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub rung: Rung,
    /// Directory holding the files (inside the job dir).
    pub dir: PathBuf,
    pub init: PathBuf,
    pub segments: Vec<Segment>,
    /// Peak segment bit rate, bits/s (HLS `BANDWIDTH`, DASH `@bandwidth`).
    pub bandwidth: u64,
    /// Whole-rendition average bit rate, bits/s (HLS `AVERAGE-BANDWIDTH`).
    pub average_bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`; no audio entry for silent sources.
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub has_audio: bool,
    pub duration_ms: u64,
}

/// Name of the init segment inside a rendition directory.
pub const INIT_NAME: &str = "init.mp4";
/// ffmpeg's own playlist, parsed for segment durations then removed.
const FFMPEG_PLAYLIST: &str = "ffmpeg.m3u8";

/// Output frame rate: the source's, capped by config.
pub(crate) fn output_fps(cfg: &MediaConfig, info: &ProbeInfo) -> (f64, Option<f64>) {
    if info.fps > cfg.max_output_fps {
        (cfg.max_output_fps, Some(cfg.max_output_fps))
    } else {
        (info.fps, None)
    }
}

/// Transcodes `input` to one rung under `job/out/<rung.name>/`. The input is linked into the
/// job dir first; the demuxer is pinned to `info.format`.
pub async fn transcode_rung(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    rung: &Rung,
) -> Result<Rendition> {
    if !rung.width.is_multiple_of(2)
        || !rung.height.is_multiple_of(2)
        || rung.width == 0
        || rung.height == 0
    {
        return Err(MediaError::Invalid(format!("rung {} has odd size", rung.name)));
    }
    let input = job.import(input)?;
    let dir = job.output_dir(&rung.name)?;
    let seg_s = f64::from(cfg.segment_duration_ms.max(500)) / 1000.0;
    let (fps, fps_cap) = output_fps(cfg, info);
    let gop = ((fps * seg_s).round() as u32).max(1).to_string();
    let threads = cfg.threads.max(1).to_string();

    let mut a: Vec<OsString> = runner::args(["-filter_threads", "1"]);
    a.extend(runner::input_args(&info.format, &input, cfg.threads.max(1)));
    // ffmpeg autorotates on decode, so the rung's displayed size is what we scale to.
    let mut vf = String::new();
    if let Some(cap) = fps_cap {
        vf.push_str(&format!("fps={cap},"));
    }
    vf.push_str(&format!(
        "scale={}:{}:flags=bicubic,setsar=1,format=yuv420p",
        rung.width, rung.height
    ));
    a.extend(runner::args([
        "-map".to_owned(),
        format!("0:{}", info.video_stream_index),
        // Uploader metadata (GPS, device names) must not reach viewers.
        "-map_metadata".into(),
        "-1".into(),
        "-map_chapters".into(),
        "-1".into(),
        "-vf".into(),
        vf,
    ]));
    let (kbps, max_kbps) = (rung.video_kbps.to_string(), rung.max_kbps.to_string());
    match rung.codec {
        VideoCodec::H264 => a.extend(runner::args([
            "-c:v", "libx264", "-preset", &cfg.preset, "-profile:v", "high",
            "-x264-params", "open-gop=0",
        ])),
        VideoCodec::H265 => a.extend(runner::args([
            "-c:v".to_owned(), "libx265".into(), "-preset".into(), cfg.preset.clone(),
            "-tag:v".into(), "hvc1".into(), "-x265-params".into(),
            format!("keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:pools={threads}:frame-threads=1:log-level=error"),
        ])),
    }
    a.extend(runner::args([
        "-b:v".to_owned(),
        format!("{kbps}k"),
        "-maxrate".into(),
        format!("{max_kbps}k"),
        "-bufsize".into(),
        format!("{}k", rung.video_kbps * 2),
        // Fixed GOP on a time grid shared by all rungs: keyframes at every segment start.
        "-g".into(),
        gop.clone(),
        "-keyint_min".into(),
        gop,
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{seg_s})"),
        "-threads".into(),
        threads,
    ]));
    // Audio is its own track (see `transcode_audio`): DASH players and ffmpeg's DASH
    // reader expect one media type per representation.
    a.push("-an".into());
    let segments = package(cfg, job, a, &dir, seg_s).await?;
    let init = dir.join(INIT_NAME);
    let init_bytes = std::fs::read(&init).map_err(|e| MediaError::io("reading init segment", e))?;
    let codecs = codec_string(&init_bytes, rung.codec)?;

    let bandwidth =
        segments.iter().map(|s| bits_per_second(s.size_bytes, s.duration_ms)).max().unwrap_or(0);
    let duration_ms: u64 = segments.iter().map(|s| s.duration_ms).sum();
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum::<u64>() + init_bytes.len() as u64;
    Ok(Rendition {
        rung: rung.clone(),
        dir,
        init,
        segments,
        bandwidth,
        average_bandwidth: bits_per_second(total, duration_ms),
        codecs,
        width: rung.width,
        height: rung.height,
        fps,
        has_audio: false,
        duration_ms,
    })
}

/// The name of the audio track's rendition (and its directory).
pub const AUDIO_RENDITION: &str = "audio";
/// RFC 6381 codecs of the audio track: AAC-LC.
pub const AUDIO_CODECS: &str = "mp4a.40.2";

/// Encodes the source's first audio stream to AAC as a CMAF track of its own, on the same
/// segment grid as the video rungs, under `job/out/audio/`. `None` for a silent source.
/// The result is a [`Rendition`] with zero width and height whose rung is named
/// [`AUDIO_RENDITION`]; every video rung plays with it.
pub async fn transcode_audio(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
) -> Result<Option<Rendition>> {
    if !info.has_audio {
        return Ok(None);
    }
    let input = job.import(input)?;
    let dir = job.output_dir(AUDIO_RENDITION)?;
    let seg_s = f64::from(cfg.segment_duration_ms.max(500)) / 1000.0;
    let mut a: Vec<OsString> = runner::args(["-filter_threads", "1"]);
    a.extend(runner::input_args(&info.format, &input, 1));
    a.extend(runner::args([
        "-map".to_owned(),
        "0:a:0".into(),
        "-map_metadata".into(),
        "-1".into(),
        "-map_chapters".into(),
        "-1".into(),
        "-vn".into(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", cfg.audio_kbps),
        "-ac".into(),
        "2".into(),
        "-ar".into(),
        "48000".into(),
    ]));
    let segments = package(cfg, job, a, &dir, seg_s).await?;
    let init = dir.join(INIT_NAME);
    let init_len =
        std::fs::metadata(&init).map_err(|e| MediaError::io("reading init segment", e))?.len();
    let bandwidth =
        segments.iter().map(|s| bits_per_second(s.size_bytes, s.duration_ms)).max().unwrap_or(0);
    let duration_ms: u64 = segments.iter().map(|s| s.duration_ms).sum();
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum::<u64>() + init_len;
    Ok(Some(Rendition {
        rung: Rung {
            name: AUDIO_RENDITION.to_owned(),
            codec: VideoCodec::H264,
            width: 0,
            height: 0,
            video_kbps: 0,
            max_kbps: 0,
        },
        dir,
        init,
        segments,
        bandwidth,
        average_bandwidth: bits_per_second(total, duration_ms),
        codecs: AUDIO_CODECS.to_owned(),
        width: 0,
        height: 0,
        fps: 0.0,
        has_audio: true,
        duration_ms,
    }))
}

/// Runs ffmpeg with `args` (inputs and encoders) plus the CMAF packaging options into
/// `dir`, and returns the segments it wrote, with durations from its playlist.
async fn package(
    cfg: &MediaConfig,
    job: &JobDir,
    mut a: Vec<OsString>,
    dir: &Path,
    seg_s: f64,
) -> Result<Vec<Segment>> {
    a.extend(runner::args([
        "-sn",
        "-dn",
        "-f",
        "hls",
        "-hls_time",
        &format!("{seg_s}"),
        "-hls_segment_type",
        "fmp4",
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        INIT_NAME,
        "-hls_segment_filename",
    ]));
    a.push(dir.join("seg_%05d.m4s").into_os_string());
    a.push(dir.join(FFMPEG_PLAYLIST).into_os_string());

    runner::run(cfg, Tool::Ffmpeg, &a, job.path(), cfg.job_timeout).await?;

    let playlist_path = dir.join(FFMPEG_PLAYLIST);
    let playlist = std::fs::read_to_string(&playlist_path)
        .map_err(|e| MediaError::io("reading ffmpeg's playlist", e))?;
    let mut segments = Vec::new();
    for (name, duration_ms) in parse_extinf(&playlist)? {
        // Only plain file names from our own pattern: never follow anything else.
        if name.contains('/') || !name.ends_with(".m4s") {
            return Err(MediaError::BadOutput(format!("unexpected segment name {name:?}")));
        }
        let path = dir.join(&name);
        let size_bytes = std::fs::metadata(&path)
            .map_err(|e| MediaError::io(format!("reading segment {name}"), e))?
            .len();
        segments.push(Segment { path, duration_ms, size_bytes });
    }
    let _ = std::fs::remove_file(&playlist_path);
    if segments.is_empty() {
        return Err(MediaError::BadOutput("ffmpeg produced no segments".into()));
    }
    Ok(segments)
}

fn bits_per_second(bytes: u64, ms: u64) -> u64 {
    bytes.saturating_mul(8).saturating_mul(1000).checked_div(ms).unwrap_or(0)
}

/// `(uri, duration_ms)` pairs from an HLS media playlist.
fn parse_extinf(playlist: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut pending: Option<u64> = None;
    for line in playlist.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = rest
                .split(',')
                .next()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| MediaError::BadOutput(format!("bad EXTINF line {line:?}")))?;
            pending = Some((secs * 1000.0).round() as u64);
        } else if !line.starts_with('#')
            && let Some(d) = pending.take()
        {
            out.push((line.to_owned(), d));
        }
    }
    Ok(out)
}

fn find_box<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let pos = data.windows(4).position(|w| w == kind)?;
    data.get(pos + 4..)
}

/// RFC 6381 codec string for the video track, read from the init segment's config box.
pub(crate) fn codec_string(init: &[u8], codec: VideoCodec) -> Result<String> {
    let missing = |b: &str| MediaError::BadOutput(format!("init segment has no {b} box"));
    match codec {
        VideoCodec::H264 => {
            let c =
                find_box(init, b"avcC").filter(|c| c.len() >= 4).ok_or_else(|| missing("avcC"))?;
            Ok(format!("avc1.{:02x}{:02x}{:02x}", c[1], c[2], c[3]))
        }
        VideoCodec::H265 => {
            let c =
                find_box(init, b"hvcC").filter(|c| c.len() >= 13).ok_or_else(|| missing("hvcC"))?;
            let space = ["", "A", "B", "C"][usize::from(c[1] >> 6)];
            let tier = if c[1] & 0x20 != 0 { 'H' } else { 'L' };
            let profile = c[1] & 0x1f;
            let compat = u32::from_be_bytes([c[2], c[3], c[4], c[5]]).reverse_bits();
            let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", c[12]);
            let constraints = &c[6..12];
            let keep = constraints.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            for b in &constraints[..keep] {
                s.push_str(&format!(".{b:X}"));
            }
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extinf_parsing() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.002000,\nseg_00000.m4s\n#EXTINF:0.5,\nseg_00001.m4s\n#EXT-X-ENDLIST\n";
        assert_eq!(
            parse_extinf(p).unwrap(),
            vec![("seg_00000.m4s".to_owned(), 2002), ("seg_00001.m4s".to_owned(), 500)]
        );
    }

    #[test]
    fn codec_strings() {
        let avc = b"....avcC\x01\x64\x00\x1f\xff";
        assert_eq!(codec_string(avc, VideoCodec::H264).unwrap(), "avc1.64001f");
        // Main profile, compat flags 0x60000000, constraint 0xB0, level 93.
        let hvc = b"hvcC\x01\x01\x60\x00\x00\x00\xb0\x00\x00\x00\x00\x00\x5d";
        assert_eq!(codec_string(hvc, VideoCodec::H265).unwrap(), "hvc1.1.6.L93.B0");
    }
}
