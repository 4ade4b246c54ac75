//! Cover selection: sample candidate frames, drop black/flat and blurry ones (luma
//! statistics and variance of the Laplacian, computed here on raw gray frames), then write
//! JPEGs in the sizes clients use. Plus a contact sheet for reviewers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::MediaConfig;
use crate::error::{MediaError, Result};
use crate::frames::{GrayFrame, gray_frames};
use crate::probe::ProbeInfo;
use crate::runner::{self, JobDir, Tool};

/// JPEG widths written for each cover (never upscaled beyond the source).
pub const COVER_WIDTHS: &[u32] = &[720, 360];
/// Mean luma at or below this is "black" (limited-range black is 16).
pub const BLACK_MEAN_LUMA: f64 = 28.0;
/// Luma standard deviation below this is a flat frame (fades, solid slates).
pub const FLAT_STDDEV: f64 = 4.0;
/// Laplacian variance (256-px analysis frame) below this is blurry.
pub const BLUR_LAPLACIAN_VAR: f64 = 15.0;

/// One JPEG of a cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// A chosen cover moment: `path`/`width`/`height` is the largest JPEG, `thumbnails` the
/// smaller ones (see [`COVER_WIDTHS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cover {
    pub at_ms: u64,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub thumbnails: Vec<CoverImage>,
    /// Higher is better (sharpness and contrast); comparable within one clip.
    pub score: f64,
}

/// Frame statistics used to judge a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameStats {
    pub mean: f64,
    pub stddev: f64,
    pub laplacian_var: f64,
}

impl FrameStats {
    pub fn is_black(&self) -> bool {
        self.mean <= BLACK_MEAN_LUMA || self.stddev < FLAT_STDDEV
    }
    pub fn is_blurry(&self) -> bool {
        self.laplacian_var < BLUR_LAPLACIAN_VAR
    }
    pub fn score(&self) -> f64 {
        (1.0 + self.laplacian_var).ln() + (self.stddev / 32.0).min(2.0)
    }
}

/// Mean, standard deviation and variance of the 4-neighbour Laplacian of a gray frame.
pub fn frame_stats(pixels: &[u8], width: usize, height: usize) -> FrameStats {
    let n = (width * height).min(pixels.len());
    if n == 0 {
        return FrameStats { mean: 0.0, stddev: 0.0, laplacian_var: 0.0 };
    }
    let px = &pixels[..n];
    let mean = px.iter().map(|&p| f64::from(p)).sum::<f64>() / n as f64;
    let var = px.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / n as f64;
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    for y in 1..height.saturating_sub(1) {
        for x in 1..width.saturating_sub(1) {
            let at = |xx: usize, yy: usize| f64::from(px[yy * width + xx]);
            let l = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            sum += l;
            sum2 += l * l;
            count += 1;
        }
    }
    let laplacian_var =
        if count == 0 { 0.0 } else { sum2 / count as f64 - (sum / count as f64).powi(2) };
    FrameStats { mean, stddev: var.sqrt(), laplacian_var }
}

/// Even size with the source's aspect, `width` wide (capped at the source width).
pub(crate) fn sized(info: &ProbeInfo, width: u32) -> (u32, u32) {
    let w = width.min(info.width) & !1;
    let h = ((f64::from(info.height) * f64::from(w) / f64::from(info.width) / 2.0).round() as u32
        * 2)
    .max(2);
    (w.max(2), h)
}

/// The size frames are judged at: 256 pixels on the long side, the clip's aspect.
pub(crate) fn analysis_size(info: &ProbeInfo) -> (u32, u32) {
    if info.width >= info.height {
        (256, sized(info, 256).1)
    } else {
        let w = ((256.0 * f64::from(info.width) / f64::from(info.height) / 2.0).round() as u32 * 2)
            .max(2);
        (w, 256)
    }
}

/// Good frames first, then blurry-but-visible, black last: a mostly black clip still gets
/// a cover, but a black one is never preferred.
fn cover_rank(s: &FrameStats) -> u8 {
    u8::from(s.is_blurry()) + 2 * u8::from(s.is_black())
}

/// Picks up to `n` covers, best first, among frames a pass sampled (see
/// [`crate::transcode_pass`]): the same judgement as [`covers`], without decoding again.
pub fn choose_covers(samples: &[crate::transcode::SampledFrame], n: usize) -> Vec<Cover> {
    let mut judged: Vec<(&crate::transcode::SampledFrame, FrameStats)> = samples
        .iter()
        .filter(|f| !f.covers.is_empty())
        .map(|f| (f, frame_stats(&f.gray, f.width as usize, f.height as usize)))
        .collect();
    judged.sort_by(|(_, a), (_, b)| {
        cover_rank(a).cmp(&cover_rank(b)).then(b.score().total_cmp(&a.score()))
    });
    judged
        .into_iter()
        .take(n)
        .filter_map(|(f, stats)| {
            let mut images = f.covers.iter().cloned();
            let main = images.next()?;
            Some(Cover {
                at_ms: f.at_ms,
                path: main.path,
                width: main.width,
                height: main.height,
                thumbnails: images.collect(),
                score: stats.score(),
            })
        })
        .collect()
}

/// Picks up to `n` covers from different moments, best first.
pub async fn covers(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    n: usize,
) -> Result<Vec<Cover>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let candidates = (n * 4).clamp(8, 32);
    let (aw, ah) = analysis_size(info);
    let frames = gray_frames(cfg, job, input, info, candidates, aw, ah).await?;
    let mut judged: Vec<(GrayFrame, FrameStats)> = frames
        .into_iter()
        .map(|f| {
            let s = frame_stats(&f.pixels, f.width as usize, f.height as usize);
            (f, s)
        })
        .collect();
    judged.sort_by(|(_, a), (_, b)| {
        cover_rank(a).cmp(&cover_rank(b)).then(b.score().total_cmp(&a.score()))
    });
    let chosen: Vec<(u64, f64)> =
        judged.iter().take(n).map(|(f, s)| (f.at_ms, s.score())).collect();

    let out_dir = job.output_dir("covers")?;
    let input = job.import(input)?;
    let mut result = Vec::new();
    for (i, (at_ms, score)) in chosen.into_iter().enumerate() {
        let mut a = runner::args(["-ss".to_owned(), format!("{:.3}", at_ms as f64 / 1000.0)]);
        a.extend(runner::input_args(&info.format, &input, cfg.threads.max(1)));
        let sizes: Vec<(u32, u32)> = COVER_WIDTHS.iter().map(|&w| sized(info, w)).collect();
        let mut graph = format!("[0:{}]split={}", info.video_stream_index, sizes.len());
        for k in 0..sizes.len() {
            graph.push_str(&format!("[s{k}]"));
        }
        for (k, (w, h)) in sizes.iter().enumerate() {
            graph.push_str(&format!(";[s{k}]scale={w}:{h}:flags=lanczos,setsar=1[o{k}]"));
        }
        a.extend(runner::args(["-filter_complex".to_owned(), graph]));
        let mut images = Vec::new();
        for (k, (w, h)) in sizes.iter().enumerate() {
            let path = out_dir.join(format!("cover_{i:02}_{w}.jpg"));
            a.extend(runner::args([
                "-map".to_owned(),
                format!("[o{k}]"),
                "-frames:v".into(),
                "1".into(),
                "-q:v".into(),
                "3".into(),
                "-update".into(),
                "1".into(),
                "-f".into(),
                "image2".into(),
            ]));
            a.push(path.clone().into_os_string());
            images.push(CoverImage { path, width: *w, height: *h });
        }
        runner::run(cfg, Tool::Ffmpeg, &a, job.path(), cfg.job_timeout).await?;
        let mut images = images.into_iter();
        let Some(main) = images.next() else {
            return Err(MediaError::Invalid("no cover sizes configured".into()));
        };
        result.push(Cover {
            at_ms,
            path: main.path,
            width: main.width,
            height: main.height,
            thumbnails: images.collect(),
            score,
        });
    }
    Ok(result)
}

/// A `cols` x `rows` grid of evenly spaced frames, each `tile_width` wide, as one JPEG.
pub async fn contact_sheet(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    cols: u32,
    rows: u32,
    tile_width: u32,
) -> Result<CoverImage> {
    if cols == 0 || rows == 0 || cols * rows > 100 {
        return Err(MediaError::Invalid(format!("contact sheet grid {cols}x{rows}")));
    }
    let input = job.import(input)?;
    let count = cols * rows;
    let interval = info.duration_ms as f64 / 1000.0 / f64::from(count);
    let (tw, th) = sized(info, tile_width);
    let path = job.output_dir("sheet")?.join("contact_sheet.jpg");
    let mut a = runner::args(["-ss".to_owned(), format!("{:.3}", interval / 2.0)]);
    a.extend(runner::input_args(&info.format, &input, cfg.threads.max(1)));
    a.extend(runner::args([
        "-map".to_owned(),
        format!("0:{}", info.video_stream_index),
        "-vf".into(),
        format!(
            "fps=fps={:.6},scale={tw}:{th}:flags=area,setsar=1,tile={cols}x{rows}:padding=4:margin=4",
            1.0 / interval
        ),
        "-frames:v".into(), "1".into(), "-q:v".into(), "4".into(),
        "-update".into(), "1".into(), "-f".into(), "image2".into(),
    ]));
    a.push(path.clone().into_os_string());
    runner::run(cfg, Tool::Ffmpeg, &a, job.path(), cfg.job_timeout).await?;
    let (w, h) = (cols * tw + 2 * 4 + (cols - 1) * 4, rows * th + 2 * 4 + (rows - 1) * 4);
    Ok(CoverImage { path, width: w, height: h })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_flat_and_sharp_frames() {
        let black = vec![16u8; 64 * 64];
        let s = frame_stats(&black, 64, 64);
        assert!(s.is_black() && s.is_blurry());
        let checker: Vec<u8> =
            (0..64 * 64).map(|i| if (i % 64 + i / 64) % 2 == 0 { 20 } else { 235 }).collect();
        let s = frame_stats(&checker, 64, 64);
        assert!(!s.is_black() && !s.is_blurry());
        let ramp: Vec<u8> = (0..64 * 64).map(|i| (i % 64 * 3 + 30) as u8).collect();
        let s = frame_stats(&ramp, 64, 64);
        assert!(!s.is_black() && s.is_blurry());
    }
}
