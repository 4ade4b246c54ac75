//! Raw gray frame extraction shared by covers and perceptual hashes: one ffmpeg pass
//! emitting evenly spaced frames as `-f rawvideo -pix_fmt gray` on stdout.

use std::path::Path;

use crate::config::MediaConfig;
use crate::error::{MediaError, Result};
use crate::probe::ProbeInfo;
use crate::runner::{self, JobDir, Tool};

/// A decoded gray frame and the source time it was taken at.
#[derive(Debug, Clone)]
pub(crate) struct GrayFrame {
    pub at_ms: u64,
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// `count` frames at the centres of `count` equal slices of the clip, scaled to `w`x`h`.
pub(crate) async fn gray_frames(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    count: usize,
    w: u32,
    h: u32,
) -> Result<Vec<GrayFrame>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let frame_len = (w as usize) * (h as usize);
    if frame_len.saturating_mul(count) > cfg.max_stdout_bytes {
        return Err(MediaError::Invalid(format!(
            "{count} frames of {w}x{h} exceed the output cap"
        )));
    }
    let input = job.import(input)?;
    let dur_s = info.duration_ms as f64 / 1000.0;
    let interval = dur_s / count as f64;
    let start = interval / 2.0;
    let mut a = runner::args(["-ss".to_owned(), format!("{start:.3}")]);
    a.extend(runner::input_args(&info.format, &input, cfg.threads.max(1)));
    a.extend(runner::args([
        "-map".to_owned(),
        format!("0:{}", info.video_stream_index),
        "-vf".into(),
        // eof_action=pass keeps the last slot when the clip ends just after it.
        format!(
            "fps=fps={:.6}:eof_action=pass,scale={w}:{h}:flags=area,format=gray",
            1.0 / interval
        ),
        "-frames:v".into(),
        count.to_string(),
        "-an".into(),
        "-f".into(),
        "rawvideo".into(),
        "-pix_fmt".into(),
        "gray".into(),
        "pipe:1".into(),
    ]));
    let out = runner::run(cfg, Tool::Ffmpeg, &a, job.path(), cfg.job_timeout).await?;
    Ok(out
        .stdout
        .chunks_exact(frame_len)
        .enumerate()
        .map(|(i, px)| GrayFrame {
            at_ms: ((start + i as f64 * interval) * 1000.0).round() as u64,
            width: w,
            height: h,
            pixels: px.to_vec(),
        })
        .collect())
}
