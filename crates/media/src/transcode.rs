//! Transcoding to CMAF fMP4 (an init segment plus `.m4s` media segments) with keyframes on
//! a fixed time grid, so every rung switches cleanly at segment boundaries: one decode of
//! the input feeds any number of rungs, the audio track and the frame sampler.

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
    /// Still being encoded: `segments` are the ones finished so far (in order, each final),
    /// and `bandwidth` is an upper estimate (the rung's rate cap) until it completes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub growing: bool,
    /// The pass making it failed for good after publication: `segments` end early, the
    /// playlists end there (no viewer waits for segments that are not coming), and a
    /// retried pass completes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
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

/// Frames sampled evenly over the clip during a pass, for fingerprints and covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampling {
    /// How many frames (at the centres of equal slices of the clip).
    pub count: usize,
    /// Cover JPEG widths written for every sampled frame, largest first.
    pub cover_widths: Vec<u32>,
}

/// One sampled frame: a small gray picture for analysis and its cover JPEGs.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledFrame {
    pub at_ms: u64,
    /// Gray pixels, row-major, `width` x `height` (256 on the long side).
    pub gray: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The frame as JPEG in every [`Sampling::cover_widths`] size, largest first.
    pub covers: Vec<crate::covers::CoverImage>,
}

/// What one pass over the input produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// One per requested rung, in the order asked.
    pub renditions: Vec<Rendition>,
    /// The audio track, when asked for and the source has audio.
    pub audio: Option<Rendition>,
    /// The sampled frames, when asked for.
    pub samples: Vec<SampledFrame>,
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
    let pass =
        transcode_pass(cfg, job, input, info, std::slice::from_ref(rung), false, None).await?;
    pass.renditions
        .into_iter()
        .next()
        .ok_or_else(|| MediaError::BadOutput("the pass produced no rendition".into()))
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
    Ok(transcode_pass(cfg, job, input, info, &[], true, None).await?.audio)
}

/// One decode of `input` feeding every output at once: the video `rungs` (each under
/// `job/out/<rung.name>/`, video only), the audio track (`audio`), and evenly spaced
/// sampled frames (`sampling`: gray analysis pictures on stdout and cover JPEGs under
/// `job/out/samples/`). Decoding a phone's 1080p upload costs about as much as encoding
/// a small rung, so doing it once per pass instead of once per output is the main cost
/// saving of the pipeline.
pub async fn transcode_pass(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    rungs: &[Rung],
    audio: bool,
    sampling: Option<&Sampling>,
) -> Result<Pass> {
    run_pass(cfg, job, input, info, rungs, audio, sampling, None).await
}

/// What a live pass reports while ffmpeg runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PassProgress {
    /// A rendition (a rung or the audio track) finished segments: a `growing` snapshot of
    /// it with every segment finished so far.
    Segments(Rendition),
    /// How much of the clip ffmpeg has encoded, ms (its own progress report, ten times a
    /// second): the pass's speed, before any segment closes.
    Encoded { media_ms: u64 },
}

/// [`transcode_pass`] reporting [`PassProgress`] while ffmpeg runs. A caller can store and
/// serve finished segments while the rest is still being encoded; the returned [`Pass`]
/// holds the complete renditions.
pub async fn transcode_pass_live(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    rungs: &[Rung],
    audio: bool,
    progress: tokio::sync::mpsc::UnboundedSender<PassProgress>,
) -> Result<Pass> {
    run_pass(cfg, job, input, info, rungs, audio, None, Some(progress)).await
}

#[allow(clippy::too_many_arguments)]
async fn run_pass(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    rungs: &[Rung],
    audio: bool,
    sampling: Option<&Sampling>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<PassProgress>>,
) -> Result<Pass> {
    for rung in rungs {
        if !rung.width.is_multiple_of(2)
            || !rung.height.is_multiple_of(2)
            || rung.width == 0
            || rung.height == 0
        {
            return Err(MediaError::Invalid(format!("rung {} has odd size", rung.name)));
        }
    }
    let sampling = sampling.filter(|s| s.count > 0);
    let audio = audio && info.has_audio;
    if rungs.is_empty() && !audio && sampling.is_none() {
        return Ok(Pass { renditions: Vec::new(), audio: None, samples: Vec::new() });
    }
    let input = job.import(input)?;
    let seg_s = f64::from(cfg.segment_duration_ms.max(500)) / 1000.0;
    let (fps, fps_cap) = output_fps(cfg, info);
    let gop = ((fps * seg_s).round() as u32).max(1).to_string();
    let threads = cfg.threads.max(1).to_string();

    let sampling_only = rungs.is_empty() && !audio;
    // Scaling a 1080p source is real work: let the filters use the configured threads (one
    // when only sampling, beside an encoding pass).
    let filter_threads = if sampling_only { 1 } else { cfg.threads.max(1) };
    let mut a: Vec<OsString> =
        runner::args(["-filter_threads".to_owned(), filter_threads.to_string()]);
    let progress_file = job.path().join("progress.log");
    if progress.is_some() {
        a.extend(runner::args(["-stats_period", "0.1", "-progress"]));
        a.push(runner::file_url(&progress_file));
    }
    if sampling_only {
        // Sampling only (fingerprints, covers): B-frames are skipped, halving the decode of
        // a typical upload; a sample then lands on the nearest I or P frame, a frame or two
        // away, which neither a 64-bit dHash nor a cover notices.
        a.extend(runner::args(["-skip_frame", "bidir"]));
    }
    // Sampling runs beside an encoding pass: one decoder thread spends less CPU on
    // threading and leaves the pass a core.
    let decoder_threads = if sampling_only { 1 } else { cfg.threads.max(1) };
    a.extend(runner::input_args(&info.format, &input, decoder_threads));

    // The filter graph: decode once, split into the rungs' branch and the sampler's. The
    // rungs' distinct sizes, largest first, form a cascade: each is scaled from the one above
    // (cheaper than scaling each from the source, and alike to the eye at ladder ratios).
    // ffmpeg autorotates on decode, so a rung's displayed size is what we scale to.
    let mut sizes: Vec<(u32, u32)> = rungs.iter().map(|r| (r.width, r.height)).collect();
    sizes.sort_unstable_by_key(|&(w, h)| std::cmp::Reverse(u64::from(w) * u64::from(h)));
    sizes.dedup();
    let branches = usize::from(!sizes.is_empty()) + usize::from(sampling.is_some());
    let sampler_branch = branches.saturating_sub(1);
    let analysis = crate::covers::analysis_size(info);
    let mut sample_plan = None;
    if branches > 0 {
        let mut g = format!("[0:{}]", info.video_stream_index);
        if let Some(cap) = fps_cap {
            g.push_str(&format!("fps={cap},"));
        }
        g.push_str(&format!("split={branches}"));
        for i in 0..branches {
            g.push_str(&format!("[p{i}]"));
        }
        for (k, &(w, h)) in sizes.iter().enumerate() {
            let input = if k == 0 { "[p0]".to_owned() } else { format!("[c{}]", k - 1) };
            let users: Vec<usize> = rungs
                .iter()
                .enumerate()
                .filter(|(_, r)| (r.width, r.height) == (w, h))
                .map(|(i, _)| i)
                .collect();
            let next = k + 1 < sizes.len();
            g.push_str(&format!(
                ";{input}scale={w}:{h}:flags=bicubic,setsar=1,format=yuv420p,split={}",
                users.len() + usize::from(next)
            ));
            for i in users {
                g.push_str(&format!("[v{i}]"));
            }
            if next {
                g.push_str(&format!("[c{k}]"));
            }
        }
        if let Some(s) = sampling {
            let dur_s = (info.duration_ms as f64 / 1000.0).max(0.001);
            let interval = dur_s / s.count as f64;
            let start = interval / 2.0;
            let sizes: Vec<(u32, u32)> =
                s.cover_widths.iter().map(|&w| crate::covers::sized(info, w)).collect();
            g.push_str(&format!(
                ";[p{}]fps=fps={:.6}:start_time={start:.3}:eof_action=pass,split={}[sg]",
                sampler_branch,
                1.0 / interval,
                1 + sizes.len()
            ));
            for k in 0..sizes.len() {
                g.push_str(&format!("[sc{k}]"));
            }
            g.push_str(&format!(
                ";[sg]scale={}:{}:flags=area,format=gray[gray]",
                analysis.0, analysis.1
            ));
            for (k, (w, h)) in sizes.iter().enumerate() {
                g.push_str(&format!(";[sc{k}]scale={w}:{h}:flags=lanczos,setsar=1[j{k}]"));
            }
            sample_plan = Some((start, interval, sizes));
        }
        a.extend(runner::args(["-filter_complex".to_owned(), g]));
    }

    let mut rung_dirs = Vec::with_capacity(rungs.len());
    for (i, rung) in rungs.iter().enumerate() {
        let dir = job.output_dir(&rung.name)?;
        a.extend(runner::args(["-map".to_owned(), format!("[v{i}]")]));
        a.extend(stripped_metadata());
        a.extend(video_encoder_args(cfg, rung, &gop, &threads));
        // Audio is its own track: DASH players and ffmpeg's DASH reader expect one media
        // type per representation.
        a.push("-an".into());
        a.extend(hls_output_args(cfg, &dir));
        rung_dirs.push(dir);
    }
    let audio_dir = if audio {
        let dir = job.output_dir(AUDIO_RENDITION)?;
        a.extend(runner::args(["-map", "0:a:0"]));
        a.extend(stripped_metadata());
        a.extend(runner::args([
            "-vn".to_owned(),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            format!("{}k", cfg.audio_kbps),
            "-ac".into(),
            "2".into(),
            "-ar".into(),
            "48000".into(),
        ]));
        a.extend(hls_output_args(cfg, &dir));
        Some(dir)
    } else {
        None
    };
    let samples_dir = match (&sample_plan, sampling) {
        (Some((_, _, sizes)), Some(s)) => {
            let dir = job.output_dir("samples")?;
            for (k, (w, _)) in sizes.iter().enumerate() {
                a.extend(runner::args([
                    "-map".to_owned(),
                    format!("[j{k}]"),
                    "-frames:v".into(),
                    s.count.to_string(),
                    "-q:v".into(),
                    "3".into(),
                    "-start_number".into(),
                    "0".into(),
                    "-f".into(),
                    "image2".into(),
                ]));
                a.push(dir.join(format!("s_%02d_{w}.jpg")).into_os_string());
            }
            a.extend(runner::args([
                "-map".to_owned(),
                "[gray]".into(),
                "-frames:v".into(),
                s.count.to_string(),
                "-f".into(),
                "rawvideo".into(),
                "-pix_fmt".into(),
                "gray".into(),
                "pipe:1".into(),
            ]));
            Some(dir)
        }
        _ => None,
    };

    // The configured caps fit a short clip; a ten-minute upload's ladder needs more, so they
    // grow with the work asked (seconds of video times outputs), generously: they are there
    // to stop runaway or hostile inputs, not long honest ones.
    let work_s = info.duration_ms as f64 / 1000.0 * (rungs.len().max(1) as f64);
    let mut caps = cfg.clone();
    caps.max_cpu_secs = cfg.max_cpu_secs.max((work_s * cfg.cpu_secs_per_output_second) as u64);
    let wall = work_s * cfg.wall_secs_per_output_second;
    // from_secs_f64 panics on NaN or negative values; a config may say either.
    let wall = if wall.is_finite() { wall.clamp(0.0, 86_400.0) } else { 0.0 };
    let timeout = cfg.job_timeout.max(std::time::Duration::from_secs_f64(wall));
    let run = runner::run(&caps, Tool::Ffmpeg, &a, job.path(), timeout);
    let out = match progress {
        None => run.await?,
        Some(tx) => {
            let mut watched: Vec<Watched> = rungs
                .iter()
                .zip(&rung_dirs)
                .map(|(rung, dir)| Watched { rung: Some(rung), dir: dir.clone(), reported: 0 })
                .collect();
            if let Some(dir) = &audio_dir {
                watched.push(Watched { rung: None, dir: dir.clone(), reported: 0 });
            }
            tokio::pin!(run);
            // ffmpeg rewrites each output's playlist (atomically: temp file and rename) as a
            // segment closes, and appends to its progress file; polling both is cheaper than
            // anything ffmpeg would stream to us.
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            let mut encoded = 0;
            loop {
                tokio::select! {
                    out = &mut run => {
                        let out = out?;
                        if let Some(ms) = encoded_ms(&progress_file).filter(|ms| *ms > encoded) {
                            let _ = tx.send(PassProgress::Encoded { media_ms: ms });
                        }
                        break out;
                    }
                    _ = tick.tick() => {
                        // A caller that stopped listening still gets the whole pass.
                        if let Some(ms) = encoded_ms(&progress_file).filter(|ms| *ms > encoded) {
                            encoded = ms;
                            let _ = tx.send(PassProgress::Encoded { media_ms: ms });
                        }
                        for w in &mut watched {
                            if let Some(snapshot) = w.snapshot(cfg, fps)? {
                                let _ = tx.send(PassProgress::Segments(snapshot));
                            }
                        }
                    }
                }
            }
        }
    };

    let mut renditions = Vec::with_capacity(rungs.len());
    for (rung, dir) in rungs.iter().zip(rung_dirs) {
        renditions.push(video_rendition(rung, dir, fps)?);
    }
    let audio = audio_dir.map(audio_rendition).transpose()?;
    let mut samples = Vec::new();
    if let (Some(dir), Some((start, interval, sizes))) = (samples_dir, sample_plan) {
        let frame_len = (analysis.0 as usize) * (analysis.1 as usize);
        for (i, gray) in out.stdout.chunks_exact(frame_len.max(1)).enumerate() {
            let covers = sizes
                .iter()
                .map(|&(w, h)| crate::covers::CoverImage {
                    path: dir.join(format!("s_{i:02}_{w}.jpg")),
                    width: w,
                    height: h,
                })
                .filter(|c| c.path.is_file())
                .collect();
            samples.push(SampledFrame {
                at_ms: ((start + i as f64 * interval) * 1000.0).round() as u64,
                gray: gray.to_vec(),
                width: analysis.0,
                height: analysis.1,
                covers,
            });
        }
    }
    Ok(Pass { renditions, audio, samples })
}

/// Uploader metadata (GPS, device names) must not reach viewers.
fn stripped_metadata() -> Vec<OsString> {
    runner::args(["-map_metadata", "-1", "-map_chapters", "-1"])
}

/// The encoder options of one rung: bitrate, VBV, and a fixed GOP on the time grid shared
/// by all rungs (keyframes at every segment start).
fn video_encoder_args(cfg: &MediaConfig, rung: &Rung, gop: &str, threads: &str) -> Vec<OsString> {
    let mut a = match rung.codec {
        VideoCodec::H264 => runner::args([
            "-c:v",
            "libx264",
            "-preset",
            &cfg.preset,
            "-profile:v",
            "high",
            "-x264-params",
            "open-gop=0",
        ]),
        VideoCodec::H265 => runner::args([
            "-c:v".to_owned(),
            "libx265".into(),
            "-preset".into(),
            cfg.preset.clone(),
            "-tag:v".into(),
            "hvc1".into(),
            "-x265-params".into(),
            format!(
                "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:pools={threads}:frame-threads=1:log-level=error"
            ),
        ]),
    };
    a.extend(runner::args([
        "-b:v".to_owned(),
        format!("{}k", rung.video_kbps),
        "-maxrate".into(),
        format!("{}k", rung.max_kbps),
        "-bufsize".into(),
        format!("{}k", rung.video_kbps * 2),
        "-g".into(),
        gop.to_owned(),
        "-keyint_min".into(),
        gop.to_owned(),
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        key_frame_expr(cfg),
        "-threads".into(),
        threads.to_owned(),
    ]));
    a
}

/// The segment grid, seconds: the first segment's length and every other's. A short first
/// segment is what a player (and publication) waits for before anything plays.
pub fn segment_grid(cfg: &MediaConfig) -> (f64, f64) {
    let seg_s = f64::from(cfg.segment_duration_ms.max(500)) / 1000.0;
    let first_s = f64::from(cfg.first_segment_ms) / 1000.0;
    let first_s = if first_s >= 0.5 && first_s < seg_s { first_s } else { seg_s };
    (first_s, seg_s)
}

/// `-force_key_frames`: a keyframe at every segment start of [`segment_grid`] (0, first,
/// first + seg, ...), in every rung, so rungs switch cleanly at segment boundaries.
pub fn key_frame_expr(cfg: &MediaConfig) -> String {
    let (first_s, seg_s) = segment_grid(cfg);
    if first_s < seg_s {
        format!("expr:gte(t,if(eq(n_forced,0),0,{first_s}+(n_forced-1)*{seg_s}))")
    } else {
        format!("expr:gte(t,n_forced*{seg_s})")
    }
}

/// CMAF packaging of one output into `dir`: fMP4 HLS, ffmpeg's playlist only read back
/// for the segment durations.
fn hls_output_args(cfg: &MediaConfig, dir: &Path) -> Vec<OsString> {
    let (first_s, seg_s) = segment_grid(cfg);
    let mut a = runner::args([
        "-sn",
        "-dn",
        "-f",
        "hls",
        "-hls_time",
        &format!("{seg_s}"),
        "-hls_segment_type",
        "fmp4",
        // `event`, not `vod`: ffmpeg then rewrites the playlist after every segment, which
        // is how a live pass learns of finished segments (the last write adds ENDLIST).
        "-hls_playlist_type",
        "event",
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        INIT_NAME,
    ]);
    if first_s < seg_s {
        // ffmpeg cuts at the first keyframe this long after a segment's start: with the
        // keyframes forced on the grid, the short first segment, then the regular ones.
        a.extend(runner::args(["-hls_init_time".to_owned(), format!("{first_s}")]));
    }
    a.extend(runner::args(["-hls_segment_filename"]));
    a.push(dir.join("seg_%05d.m4s").into_os_string());
    a.push(dir.join(FFMPEG_PLAYLIST).into_os_string());
    a
}

/// The segments ffmpeg wrote into `dir`, with durations from its playlist.
fn collect_segments(dir: &Path) -> Result<Vec<Segment>> {
    let playlist_path = dir.join(FFMPEG_PLAYLIST);
    let playlist = std::fs::read_to_string(&playlist_path)
        .map_err(|e| MediaError::io("reading ffmpeg's playlist", e))?;
    let segments = listed_segments(dir, &playlist)?;
    let _ = std::fs::remove_file(&playlist_path);
    if segments.is_empty() {
        return Err(MediaError::BadOutput("ffmpeg produced no segments".into()));
    }
    Ok(segments)
}

/// The clip time ffmpeg last reported encoded in its `-progress` file, ms. (`out_time_us`
/// and, despite its name, `out_time_ms` are both microseconds; `N/A` before any output.)
fn encoded_ms(progress_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(progress_file).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("out_time_us=").and_then(|v| v.trim().parse::<u64>().ok()))
        .map(|us| us / 1000)
}

/// One output of a live pass and how many of its segments were reported.
struct Watched<'a> {
    /// `None` for the audio track.
    rung: Option<&'a Rung>,
    dir: PathBuf,
    reported: usize,
}

impl Watched<'_> {
    /// A growing snapshot when the output finished segments since the last report.
    fn snapshot(&mut self, cfg: &MediaConfig, fps: f64) -> Result<Option<Rendition>> {
        let Ok(playlist) = std::fs::read_to_string(self.dir.join(FFMPEG_PLAYLIST)) else {
            return Ok(None); // no segment closed yet
        };
        let segments = listed_segments(&self.dir, &playlist)?;
        let init = self.dir.join(INIT_NAME);
        if segments.len() <= self.reported || !init.is_file() {
            return Ok(None);
        }
        self.reported = segments.len();
        let mut r = match self.rung {
            Some(rung) => growing_video(cfg, rung, &self.dir, segments, fps)?,
            None => growing_audio(cfg, &self.dir, segments)?,
        };
        r.growing = true;
        Ok(Some(r))
    }
}

fn growing_video(
    cfg: &MediaConfig,
    rung: &Rung,
    dir: &Path,
    segments: Vec<Segment>,
    fps: f64,
) -> Result<Rendition> {
    let init = dir.join(INIT_NAME);
    let init_bytes = std::fs::read(&init).map_err(|e| MediaError::io("reading init segment", e))?;
    let codecs = codec_string(&init_bytes, rung.codec)?;
    // The encoder's VBV model bounds the segments still to come: over any d seconds at most
    // maxrate * d + bufsize bits (bufsize is twice the rate, see `video_encoder_args`), plus
    // a few percent of fMP4 framing.
    let seg_ms = u64::from(cfg.segment_duration_ms.max(500));
    let vbv =
        u64::from(rung.max_kbps) * 1000 + u64::from(rung.video_kbps) * 2 * 1000 * 1000 / seg_ms;
    let cap = vbv + vbv / 20;
    let peak = segments.iter().map(|s| bits_per_second(s.size_bytes, s.duration_ms)).max();
    let duration_ms = segments.iter().map(|s| s.duration_ms).sum();
    Ok(Rendition {
        rung: rung.clone(),
        dir: dir.to_owned(),
        init,
        segments,
        bandwidth: peak.unwrap_or(0).max(cap),
        average_bandwidth: u64::from(rung.video_kbps).saturating_mul(1000),
        codecs,
        width: rung.width,
        height: rung.height,
        fps,
        has_audio: false,
        duration_ms,
        growing: true,
        truncated: false,
    })
}

fn growing_audio(cfg: &MediaConfig, dir: &Path, segments: Vec<Segment>) -> Result<Rendition> {
    let mut r = audio_from(dir.to_owned(), segments)?;
    let nominal = u64::from(cfg.audio_kbps).saturating_mul(1000);
    // AAC's rate wanders around its target from segment to segment: half as much again
    // bounds it (and is small beside any video rung).
    r.bandwidth = r.bandwidth.max(nominal + nominal / 2);
    r.average_bandwidth = nominal;
    r.growing = true;
    Ok(r)
}

/// The finished segments `playlist` (ffmpeg's, in `dir`) lists, in order.
fn listed_segments(dir: &Path, playlist: &str) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for (name, duration_ms) in parse_extinf(playlist)? {
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
    Ok(segments)
}

fn video_rendition(rung: &Rung, dir: PathBuf, fps: f64) -> Result<Rendition> {
    let segments = collect_segments(&dir)?;
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
        growing: false,
        truncated: false,
    })
}

fn audio_rendition(dir: PathBuf) -> Result<Rendition> {
    let segments = collect_segments(&dir)?;
    audio_from(dir, segments)
}

fn audio_from(dir: PathBuf, segments: Vec<Segment>) -> Result<Rendition> {
    let init = dir.join(INIT_NAME);
    let init_len =
        std::fs::metadata(&init).map_err(|e| MediaError::io("reading init segment", e))?.len();
    let bandwidth =
        segments.iter().map(|s| bits_per_second(s.size_bytes, s.duration_ms)).max().unwrap_or(0);
    let duration_ms: u64 = segments.iter().map(|s| s.duration_ms).sum();
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum::<u64>() + init_len;
    Ok(Rendition {
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
        growing: false,
        truncated: false,
    })
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
