//! Probing uploads: a byte-level container sniff against the allow-list, then ffprobe with
//! the demuxer pinned, then policy checks (duration, dimensions, frame rate, codecs).
//!
//! The sniff runs before any ffmpeg code sees the file, so a playlist, concat list or other
//! "container of URLs" renamed `.mp4` is refused without a demuxer ever opening its URLs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::config::MediaConfig;
use crate::error::{MediaError, RejectReason, Result};
use crate::runner::{self, Tool};

/// Container demuxers we accept, as passed to `-f`, with the family ffprobe reports.
///
/// Everything else is refused, notably: hls, dash, concat/ffconcat, sdp/rtsp/rtp, image2
/// and every image pipe demuxer, gif, tty/ansi and other text formats, data/bin, lavfi,
/// ogg (rare for video, large parser surface) and all raw elementary streams.
pub const ALLOWED_FORMATS: &[(&str, &str)] = &[
    ("mov", "mov,mp4,m4a,3gp,3g2,mj2"),
    ("matroska", "matroska,webm"),
    ("avi", "avi"),
    ("flv", "flv"),
    ("mpegts", "mpegts"),
];

/// Video codecs we decode. Image codecs (png, gif, ...) are refused even inside an
/// allowed container: a single still is not a video.
pub const ALLOWED_VIDEO_CODECS: &[&str] = &[
    "h264",
    "hevc",
    "vp8",
    "vp9",
    "av1",
    "mpeg4",
    "mpeg2video",
    "mpeg1video",
    "h263",
    "flv1",
    "mjpeg",
    "prores",
];

/// What probe learned about an accepted input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// The pinned demuxer name (`-f` value) every later run uses, e.g. `mov`.
    pub format: String,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// Container bit rate, bits/s, when known.
    pub bit_rate: Option<u64>,
    /// Displayed width and height: after rotation and sample aspect ratio.
    pub width: u32,
    pub height: u32,
    /// Stored (coded) frame size, before rotation.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Clockwise rotation ffmpeg applies on decode (0, 90, 180 or 270).
    pub rotation: u16,
    pub fps: f64,
    pub fps_num: u32,
    pub fps_den: u32,
    pub video_codec: String,
    pub pix_fmt: Option<String>,
    pub video_stream_index: u32,
    pub has_audio: bool,
    pub audio_codec: Option<String>,
}

impl ProbeInfo {
    /// Whether the clip displays taller than wide.
    pub fn is_vertical(&self) -> bool {
        self.height > self.width
    }
}

/// What the first bytes of a file look like.
fn sniff(head: &[u8]) -> std::result::Result<&'static str, String> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if head.len() >= 8 {
        let boxtype = &head[4..8];
        if [&b"ftyp"[..], b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"].contains(&boxtype) {
            if boxtype == b"ftyp" {
                let brand = head.get(8..12).unwrap_or_default();
                if [&b"heic"[..], b"heix", b"mif1", b"msf1", b"avif", b"avis", b"hevc"]
                    .contains(&brand)
                {
                    return Err("an HEIF/AVIF image".into());
                }
            }
            return Ok("mov");
        }
    }
    if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        return Ok("matroska");
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Ok("avi");
    }
    if at(0, b"FLV") && head.len() > 3 && head[3] == 1 {
        return Ok("flv");
    }
    let ts = |pkt: usize, off: usize| (0..3).all(|i| head.get(off + i * pkt) == Some(&0x47));
    if head.len() >= 3 * 188 && (ts(188, 0) || ts(192, 4)) {
        return Ok("mpegts");
    }
    Err(describe_unknown(head))
}

/// A human description of a refused file, for the rejection message.
fn describe_unknown(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(&head[..head.len().min(512)]);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let what = if t.starts_with("#EXTM3U") || t.starts_with("#EXT") {
        "an HLS playlist"
    } else if t.starts_with("ffconcat") || t.starts_with("file ") || t.starts_with("file\t") {
        "a concat list"
    } else if t.starts_with("<?xml") || t.starts_with("<MPD") || t.starts_with('<') {
        "an XML document (e.g. a DASH manifest)"
    } else if t.starts_with("v=0") {
        "an SDP session description"
    } else if head.starts_with(b"\x89PNG") {
        "a PNG image"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "a JPEG image"
    } else if head.starts_with(b"GIF8") {
        "a GIF image"
    } else if head.starts_with(b"BM")
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
    {
        "an image"
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE")
        || head.starts_with(b"ID3")
        || head.starts_with(b"fLaC")
        || head.starts_with(b"OggS")
    {
        "an audio file or unsupported container"
    } else if !head.is_empty()
        && head.iter().all(|&b| {
            b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
        })
    {
        "a text file"
    } else {
        "an unknown format"
    };
    format!(
        "the file looks like {what}, not a video container we accept (mp4/mov, mkv/webm, avi, flv, mpeg-ts)"
    )
}

fn reject(reason: RejectReason, message: impl Into<String>) -> MediaError {
    MediaError::reject(reason, message)
}

fn parse_ratio(s: Option<&str>) -> Option<(u32, u32)> {
    let (n, d) = s?.split_once('/')?;
    let (n, d) = (n.trim().parse::<u32>().ok()?, d.trim().parse::<u32>().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

fn num_field(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// The first line of a tool's stderr, fit for an uploader: without ffmpeg's
/// `[demuxer @ 0x55...]` prefix (a memory address, different on every run).
fn first_line(s: &str) -> &str {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("no diagnostic").trim();
    match line.strip_prefix('[').and_then(|rest| rest.split_once("] ")) {
        Some((context, message)) if context.contains(" @ 0x") => message.trim(),
        _ => line,
    }
}

/// Probes `path`: accepted inputs yield [`ProbeInfo`]; bad input yields
/// `MediaError::Rejected` with a reason code. Never modifies the file.
pub async fn probe(cfg: &MediaConfig, path: &Path) -> Result<ProbeInfo> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| MediaError::io(format!("reading {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(MediaError::Invalid(format!("{} is not a regular file", path.display())));
    }
    let size = meta.len();
    if size == 0 {
        return Err(reject(RejectReason::EmptyFile, "the file is empty"));
    }
    if size > cfg.max_input_bytes {
        return Err(reject(
            RejectReason::FileTooLarge,
            format!("the file is {size} bytes; the limit is {}", cfg.max_input_bytes),
        ));
    }
    let mut head = Vec::with_capacity(4096);
    tokio::fs::File::open(path)
        .await
        .map_err(|e| MediaError::io(format!("opening {}", path.display()), e))?
        .take(4096)
        .read_to_end(&mut head)
        .await
        .map_err(|e| MediaError::io(format!("reading {}", path.display()), e))?;
    let format = sniff(&head).map_err(|msg| reject(RejectReason::FormatNotAllowed, msg))?;

    let abs = path
        .canonicalize()
        .map_err(|e| MediaError::io(format!("resolving {}", path.display()), e))?;
    let cwd = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut a = runner::args([
        "-protocol_whitelist",
        "file",
        "-f",
        format,
        "-threads",
        "1",
        "-count_packets",
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        "-i",
    ]);
    a.push(runner::file_url(&abs));
    let out = match runner::run(cfg, Tool::Ffprobe, &a, &cwd, cfg.probe_timeout).await {
        Ok(o) => o,
        Err(MediaError::ToolFailed { stderr, .. }) => {
            return Err(reject(
                RejectReason::Unreadable,
                format!("the video could not be read ({})", first_line(&stderr)),
            ));
        }
        // A file that makes the prober spin is the file's fault, not ours.
        Err(MediaError::Timeout { .. } | MediaError::ResourceLimit { .. }) => {
            return Err(reject(RejectReason::Unreadable, "the video took too long to analyse"));
        }
        Err(e) => return Err(e),
    };
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| MediaError::BadOutput(format!("ffprobe JSON: {e}")))?;
    evaluate(cfg, format, size, &json)
}

/// Applies policy to ffprobe's JSON (pure, so it is unit-testable).
pub(crate) fn evaluate(
    cfg: &MediaConfig,
    format: &str,
    size: u64,
    json: &Value,
) -> Result<ProbeInfo> {
    let fmt = json
        .get("format")
        .ok_or_else(|| reject(RejectReason::Unreadable, "the container could not be parsed"))?;
    let format_name = fmt.get("format_name").and_then(Value::as_str).unwrap_or_default();
    // Defence in depth: the pinned demuxer must report the family we expect.
    if !ALLOWED_FORMATS.iter().any(|(pin, family)| *pin == format && *family == format_name) {
        return Err(reject(
            RejectReason::FormatNotAllowed,
            format!("container {format_name:?} is not accepted"),
        ));
    }
    let streams = json.get("streams").and_then(Value::as_array).cloned().unwrap_or_default();
    let is_type = |s: &Value, t: &str| s.get("codec_type").and_then(Value::as_str) == Some(t);
    // Cover art travels as a video stream flagged attached_pic; it is not the video.
    let video = streams.iter().find(|s| {
        is_type(s, "video")
            && s.pointer("/disposition/attached_pic").and_then(Value::as_i64).unwrap_or(0) == 0
    });
    let audio = streams.iter().find(|s| is_type(s, "audio"));
    let Some(video) = video else {
        return Err(match audio {
            Some(_) => reject(RejectReason::AudioOnly, "the file has audio but no video"),
            None => reject(RejectReason::NoVideoStream, "the file has no video stream"),
        });
    };
    let codec = video.get("codec_name").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    if !ALLOWED_VIDEO_CODECS.contains(&codec.as_str()) {
        return Err(reject(
            RejectReason::CodecNotAllowed,
            format!("video codec {codec:?} is not accepted"),
        ));
    }

    // Truncation: the index promises more frames than the demuxer could read.
    let declared = num_field(video, "nb_frames").unwrap_or(0.0);
    let read = num_field(video, "nb_read_packets").unwrap_or(0.0);
    if declared > 0.0 && read < declared * 0.97 && declared - read > 1.0 {
        return Err(reject(
            RejectReason::Truncated,
            format!("the file is incomplete: {read} of {declared} video frames are present"),
        ));
    }
    if video.get("nb_read_packets").is_some() && read == 0.0 {
        return Err(reject(RejectReason::Unreadable, "the video stream holds no frames"));
    }

    let duration_s =
        num_field(fmt, "duration").or_else(|| num_field(video, "duration")).unwrap_or(0.0);
    let duration_ms = if duration_s.is_finite() && duration_s > 0.0 {
        (duration_s * 1000.0).round() as u64
    } else {
        0
    };
    if duration_ms == 0 {
        return Err(reject(RejectReason::ZeroDuration, "the video has no duration"));
    }
    if duration_ms > cfg.max_duration_ms {
        return Err(reject(
            RejectReason::TooLong,
            format!(
                "the video is {:.1} s long; the limit is {:.0} s",
                duration_ms as f64 / 1000.0,
                cfg.max_duration_ms as f64 / 1000.0
            ),
        ));
    }

    let (fps_num, fps_den) = parse_ratio(video.get("avg_frame_rate").and_then(Value::as_str))
        .or_else(|| parse_ratio(video.get("r_frame_rate").and_then(Value::as_str)))
        .ok_or_else(|| reject(RejectReason::InvalidFrameRate, "the video has no frame rate"))?;
    let fps = f64::from(fps_num) / f64::from(fps_den);
    if !(fps >= 1.0 && fps <= cfg.max_input_fps) {
        return Err(reject(
            RejectReason::InvalidFrameRate,
            format!("frame rate {fps:.2} is outside 1..={}", cfg.max_input_fps),
        ));
    }

    let coded_w = num_field(video, "width").unwrap_or(0.0) as u32;
    let coded_h = num_field(video, "height").unwrap_or(0.0) as u32;
    let rotation = rotation_of(video);
    // Non-square pixels: displayed width is width * SAR.
    let (mut w, mut h) = (coded_w, coded_h);
    if let Some((sn, sd)) = parse_ratio(
        video
            .get("sample_aspect_ratio")
            .and_then(Value::as_str)
            .map(|s| s.replace(':', "/"))
            .as_deref(),
    ) && sn != sd
    {
        w = ((f64::from(w) * f64::from(sn) / f64::from(sd)).round() as u32).max(1);
    }
    if rotation % 180 == 90 {
        std::mem::swap(&mut w, &mut h);
    }
    check_dimensions(cfg, w, h)?;

    let bit_rate = num_field(fmt, "bit_rate").filter(|b| *b > 0.0).map(|b| b as u64);
    Ok(ProbeInfo {
        format: format.to_owned(),
        duration_ms,
        size_bytes: size,
        bit_rate,
        width: w,
        height: h,
        coded_width: coded_w,
        coded_height: coded_h,
        rotation,
        fps,
        fps_num,
        fps_den,
        video_codec: codec,
        pix_fmt: video.get("pix_fmt").and_then(Value::as_str).map(str::to_owned),
        video_stream_index: num_field(video, "index").unwrap_or(0.0) as u32,
        has_audio: audio.is_some(),
        audio_codec: audio
            .and_then(|a| a.get("codec_name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn check_dimensions(cfg: &MediaConfig, w: u32, h: u32) -> Result<()> {
    let bad = |why: String| Err(reject(RejectReason::DimensionsOutOfRange, why));
    if w < 16 || h < 16 {
        return bad(format!("{w}x{h} is too small (minimum 16x16)"));
    }
    if w > cfg.max_width || h > cfg.max_height {
        return bad(format!("{w}x{h} exceeds the limit of {}x{}", cfg.max_width, cfg.max_height));
    }
    if u64::from(w) * u64::from(h) > cfg.max_pixels {
        return bad(format!("{w}x{h} has more than {} pixels", cfg.max_pixels));
    }
    let aspect = f64::from(w.max(h)) / f64::from(w.min(h));
    if aspect > cfg.max_aspect_ratio {
        return bad(format!("{w}x{h} is too narrow (aspect ratio above {})", cfg.max_aspect_ratio));
    }
    Ok(())
}

/// Clockwise degrees ffmpeg's autorotate applies: the display matrix wins over the legacy
/// `rotate` tag, mirroring ffmpeg's own `get_rotation` (which negates the matrix angle).
fn rotation_of(video: &Value) -> u16 {
    let matrix = video.get("side_data_list").and_then(Value::as_array).and_then(|list| {
        list.iter()
            .find(|sd| sd.get("side_data_type").and_then(Value::as_str) == Some("Display Matrix"))
            .and_then(|sd| num_field(sd, "rotation"))
            .map(|r| -r)
    });
    let tag = || {
        video
            .pointer("/tags/rotate")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse::<f64>().ok())
    };
    let deg = matrix.or_else(tag).unwrap_or(0.0);
    // Snap to the nearest quarter turn; odd angles are displayed unrotated by ffmpeg too.
    let q = ((deg / 90.0).round() as i64).rem_euclid(4);
    (q * 90) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_lose_the_address_prefix() {
        assert_eq!(
            first_line("\n[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55634ddde2c0] moov atom not found\nmore"),
            "moov atom not found"
        );
        assert_eq!(first_line("[tag] kept as is"), "[tag] kept as is");
        assert_eq!(first_line(""), "no diagnostic");
    }

    #[test]
    fn sniff_allows_containers_and_refuses_the_rest() {
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\0\0"), Ok("mov"));
        assert_eq!(sniff(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0]), Ok("matroska"));
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Ok("avi"));
        assert!(sniff(b"#EXTM3U\n#EXT-X-VERSION:3\n").unwrap_err().contains("HLS"));
        assert!(sniff(b"ffconcat version 1.0\nfile 'x'\n").unwrap_err().contains("concat"));
        assert!(sniff(b"\x89PNG\r\n\x1a\n").unwrap_err().contains("PNG"));
        assert!(sniff(b"\0\0\0\x1cftypavif").unwrap_err().contains("AVIF"));
        assert!(sniff(b"hello world").unwrap_err().contains("text"));
    }

    #[test]
    fn rotation_from_matrix_and_tag() {
        let v: Value = serde_json::json!({"side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]});
        assert_eq!(rotation_of(&v), 90);
        let v: Value = serde_json::json!({"tags":{"rotate":"270"}});
        assert_eq!(rotation_of(&v), 270);
        assert_eq!(rotation_of(&serde_json::json!({})), 0);
    }
}
