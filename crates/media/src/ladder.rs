//! Ladder planning (pure): which renditions to encode for a source of a given size.

use serde::{Deserialize, Serialize};

/// Output video codec of a rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
}

/// One rendition to encode. Width/height are the displayed output size (even numbers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rung {
    /// Stable name, also the output directory: `480p`, `1080p`, `720p-hevc`, ...
    pub name: String,
    pub codec: VideoCodec,
    pub width: u32,
    pub height: u32,
    /// Target average video bitrate, kbit/s.
    pub video_kbps: u32,
    /// VBV peak, kbit/s.
    pub max_kbps: u32,
}

/// The standard rungs: (short side, H.264 kbit/s). The short side is the "p" number, so a
/// vertical 1080x1920 clip's 1080p rung is 1080x1920.
pub const STANDARD_RUNGS: &[(u32, u32)] = &[(480, 500), (720, 1000), (1080, 1500)];

/// H.265 gets the same quality for roughly 70% of the bits.
const HEVC_PERCENT: u32 = 70;

/// Nearest even number to `x`, at least 2 and never above `limit` rounded down to even.
fn even_within(x: f64, limit: u32) -> u32 {
    let cap = (limit & !1).max(2);
    let e = ((x / 2.0).round() as u32).saturating_mul(2).max(2);
    e.min(cap)
}

/// Plans the ladder for a displayed `width` x `height` source. Never upscales: a source whose
/// short side is below 480 gets one rung at its own (even) size. Rungs come H.264 first,
/// each codec ordered by ascending size and bitrate.
pub fn plan_ladder(width: u32, height: u32, hevc_enabled: bool) -> Vec<Rung> {
    let (w, h) = (width.max(2), height.max(2));
    let (short, long) = (w.min(h), w.max(h));
    let portrait = h > w;
    let mut base: Vec<(String, u32, u32, u32)> = Vec::new();
    for &(p, kbps) in STANDARD_RUNGS {
        if p > short {
            break;
        }
        let long_out = even_within(f64::from(long) * f64::from(p) / f64::from(short), long);
        let (ow, oh) = if portrait { (p, long_out) } else { (long_out, p) };
        base.push((format!("{p}p"), ow, oh, kbps));
    }
    if base.is_empty() {
        // Tiny source: one rung at its own size, bitrate scaled by pixel count.
        let (ow, oh) = ((w & !1).max(2), (h & !1).max(2));
        let (p, kbps) = STANDARD_RUNGS[0];
        let ref_pixels = f64::from(p) * f64::from(p) * 16.0 / 9.0;
        let scaled = (f64::from(kbps) * f64::from(ow) * f64::from(oh) / ref_pixels).round() as u32;
        base.push((format!("{}p", ow.min(oh)), ow, oh, scaled.clamp(100, kbps)));
    }
    let mut rungs: Vec<Rung> = base
        .iter()
        .map(|(name, w, h, kbps)| Rung {
            name: name.clone(),
            codec: VideoCodec::H264,
            width: *w,
            height: *h,
            video_kbps: *kbps,
            max_kbps: kbps * 3 / 2,
        })
        .collect();
    if hevc_enabled {
        let hevc: Vec<Rung> = rungs
            .iter()
            .map(|r| {
                let kbps = (r.video_kbps * HEVC_PERCENT / 100).max(80);
                Rung {
                    name: format!("{}-hevc", r.name),
                    codec: VideoCodec::H265,
                    video_kbps: kbps,
                    max_kbps: kbps * 3 / 2,
                    ..r.clone()
                }
            })
            .collect();
        rungs.extend(hevc);
    }
    rungs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(r: &[Rung]) -> Vec<(u32, u32)> {
        r.iter().map(|r| (r.width, r.height)).collect()
    }

    #[test]
    fn vertical_1080p_gets_three_rungs() {
        let l = plan_ladder(1080, 1920, false);
        assert_eq!(sizes(&l), vec![(480, 854), (720, 1280), (1080, 1920)]);
        assert_eq!(l.iter().map(|r| r.video_kbps).collect::<Vec<_>>(), vec![500, 1000, 1500]);
    }

    #[test]
    fn landscape_720p_is_not_upscaled() {
        let l = plan_ladder(1280, 720, false);
        assert_eq!(sizes(&l), vec![(854, 480), (1280, 720)]);
    }

    #[test]
    fn tiny_source_gets_one_even_rung() {
        let l = plan_ladder(321, 241, false);
        assert_eq!(sizes(&l), vec![(320, 240)]);
        assert_eq!(l[0].name, "240p");
    }

    #[test]
    fn hevc_rungs_follow_h264() {
        let l = plan_ladder(720, 1280, true);
        assert_eq!(l.len(), 4);
        assert_eq!(l[2].codec, VideoCodec::H265);
        assert_eq!(l[2].name, "480p-hevc");
        assert!(l[2].video_kbps < l[0].video_kbps);
    }
}
