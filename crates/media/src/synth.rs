//! Synthetic demo clips: short H.264/AAC MP4s drawn by ffmpeg's lavfi sources (test cards,
//! fractals, cellular automata, gradients), for `quicktok seed-demo` and tests.
//!
//! The filter graph is built here from typed fields, never from user text, so it is trusted
//! input: it skips the upload path's sniffing and demuxer pinning but still runs through the
//! crate's runner (no shell, rlimits, wall-clock timeout).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use crate::config::MediaConfig;
use crate::error::{MediaError, Result};
use crate::runner::{self, Tool};

/// Shortest and longest clip [`synthesize`] makes.
pub const DEMO_MIN_DURATION_MS: u32 = 500;
pub const DEMO_MAX_DURATION_MS: u32 = 60_000;
/// Smallest and largest frame side.
pub const DEMO_MIN_SIDE: u32 = 64;
pub const DEMO_MAX_SIDE: u32 = 1920;

/// What a demo clip shows. Every pattern moves, so covers and frame hashes have something
/// to work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// ffmpeg's `testsrc2` card, slowly spinning.
    TestCard,
    /// A zoom into the Mandelbrot set.
    Mandelbrot,
    /// Conway's game of life in chunky cells.
    Life,
    /// Soft rotating colour gradients.
    Gradients,
    /// A flat colour with boxes bouncing around.
    BouncingBoxes,
    /// A scrolling elementary cellular automaton.
    CellAuto,
    /// SMPTE HD colour bars scrolling sideways while their hues rotate.
    ColorBars,
    /// A colour spectrum scrolling upwards.
    Spectrum,
    /// A Sierpinski carpet or triangle.
    Sierpinski,
}

impl Pattern {
    /// Every pattern.
    pub const ALL: [Pattern; 9] = [
        Pattern::TestCard,
        Pattern::Mandelbrot,
        Pattern::Life,
        Pattern::Gradients,
        Pattern::BouncingBoxes,
        Pattern::CellAuto,
        Pattern::ColorBars,
        Pattern::Spectrum,
        Pattern::Sierpinski,
    ];

    /// A short name for logs and file names.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::TestCard => "testcard",
            Pattern::Mandelbrot => "mandelbrot",
            Pattern::Life => "life",
            Pattern::Gradients => "gradients",
            Pattern::BouncingBoxes => "boxes",
            Pattern::CellAuto => "cellauto",
            Pattern::ColorBars => "colorbars",
            Pattern::Spectrum => "spectrum",
            Pattern::Sierpinski => "sierpinski",
        }
    }
}

/// A demo clip to synthesise. `Default` is a 4 s vertical 540x960 test card at 25 fps with
/// a 440 Hz tone.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoClip {
    /// Frame size; even, [`DEMO_MIN_SIDE`]..=[`DEMO_MAX_SIDE`].
    pub width: u32,
    pub height: u32,
    /// Frames per second, 1..=60.
    pub fps: u32,
    /// [`DEMO_MIN_DURATION_MS`]..=[`DEMO_MAX_DURATION_MS`].
    pub duration_ms: u32,
    pub pattern: Pattern,
    /// Base hue in degrees (taken modulo 360): tints the pattern.
    pub hue_deg: u16,
    /// A sine tone (Hz, 20..=20000) with a beep every second; `None` for no audio track.
    pub tone_hz: Option<u32>,
    /// Varies the pattern's structure (random fills, zoom target, angles, box paths), so
    /// clips with different seeds are not near duplicates of each other. Consecutive seeds
    /// give clearly different clips of the same pattern.
    pub seed: u32,
}

impl Default for DemoClip {
    fn default() -> Self {
        DemoClip {
            width: 540,
            height: 960,
            fps: 25,
            duration_ms: 4000,
            pattern: Pattern::TestCard,
            hue_deg: 0,
            tone_hz: Some(440),
            seed: 0,
        }
    }
}

impl DemoClip {
    fn validate(&self) -> Result<()> {
        let side = DEMO_MIN_SIDE..=DEMO_MAX_SIDE;
        if !side.contains(&self.width)
            || !side.contains(&self.height)
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(MediaError::Invalid(format!(
                "demo clip size {}x{} must be even and {DEMO_MIN_SIDE}..={DEMO_MAX_SIDE} per side",
                self.width, self.height
            )));
        }
        if !(1..=60).contains(&self.fps) {
            return Err(MediaError::Invalid(format!("demo clip fps {} not in 1..=60", self.fps)));
        }
        if !(DEMO_MIN_DURATION_MS..=DEMO_MAX_DURATION_MS).contains(&self.duration_ms) {
            return Err(MediaError::Invalid(format!(
                "demo clip duration {} ms not in {DEMO_MIN_DURATION_MS}..={DEMO_MAX_DURATION_MS}",
                self.duration_ms
            )));
        }
        if let Some(hz) = self.tone_hz
            && !(20..=20_000).contains(&hz)
        {
            return Err(MediaError::Invalid(format!("demo clip tone {hz} Hz not in 20..=20000")));
        }
        Ok(())
    }

    /// The lavfi graph drawing the video.
    fn video_graph(&self) -> String {
        let (w, h, r) = (self.width, self.height, self.fps);
        let hue = u32::from(self.hue_deg) % 360;
        let seed = self.seed;
        // A cheap, stable stream of per-seed numbers (no RNG dependency needed for this).
        let pick = |salt: u32, n: u32| mix(seed, salt) % n.max(1);
        // Structural variants indexed by the seed itself modulo a prime: consecutive seeds
        // (one seed-demo run) and seeds 12 apart (its later rounds) always differ. Hue alone
        // would not do: frame hashes see only luma.
        let variant = |n: u32| seed % n;
        let flips = |v: u32| ["", "hflip,", "vflip,", "hflip,vflip,"][(v % 4) as usize];
        // Expensive sources render at half size (or less) and are scaled up.
        let (hw, hh) = (even(w / 2), even(h / 2));
        let tint = |c: Rgb| {
            // Maps white to `c` and keeps black: a tint for black-and-white sources.
            let f = |v: u8| f64::from(v) / 255.0;
            format!(
                "format=rgb24,colorchannelmixer=rr={:.3}:rg=0:rb=0:gr=0:gg={:.3}:gb=0:br=0:bg=0:bb={:.3}",
                f(c.0),
                f(c.1),
                f(c.2)
            )
        };
        let mut g = String::new();
        // `write!` to a String cannot fail; the results are ignored for that reason.
        match self.pattern {
            Pattern::TestCard => {
                // Drawn on a square as large as the diagonal so the spin never shows corners.
                let d = diagonal(w, h);
                // Seeds 12 apart (the next round of a seed-demo run) turn 5/13 of a circle apart.
                let start = f64::from(variant(13) * 5 % 13) * std::f64::consts::TAU / 13.0;
                let speed = 0.2 + f64::from(pick(2, 40)) / 100.0;
                let _ = write!(
                    g,
                    "testsrc2=s={d}x{d}:r={r},rotate=a='{start:.3}+t*{speed:.2}':ow={w}:oh={h},\
                     hue=h={hue}"
                );
            }
            Pattern::Mandelbrot => {
                // Points on the set's boundary, where a zoom keeps finding detail.
                const TARGETS: [(f64, f64); 7] = [
                    (-0.743_643_887_037_151, 0.131_825_904_205_33),
                    (-1.749_7, 0.0),
                    (-1.250_66, 0.020_12),
                    (-0.160_7, 1.037_7),
                    (0.282_36, 0.010_05),
                    (-0.101_1, 0.956_3),
                    (-0.088_0, 0.654_0),
                ];
                // Seven targets (coprime with 12, so the rounds of a run move on), then
                // mirrorings; a target on the real axis looks the same flipped upside down.
                let v = variant(29);
                let (x, y) = TARGETS[(v % 7) as usize];
                // The zoom starts close in: the whole set, common to every target, would
                // make the first frames of all zooms alike.
                let frames = u64::from(self.duration_ms) * u64::from(r) / 1000;
                let _ = write!(
                    g,
                    "mandelbrot=s={hw}x{hh}:r={r}:maxiter=250:start_x={x}:start_y={y}:\
                     start_scale=0.8:end_scale=0.01:end_pts={frames}:inner=period,{}\
                     scale={w}:{h}:flags=bicubic,hue=h={hue}",
                    flips(v / 7)
                );
            }
            Pattern::Life => {
                let (cw, ch) = ((w / 6).max(8), (h / 6).max(8));
                let live = hsv(hue, 0.85, 1.0);
                let dead = hsv((hue + 200) % 360, 0.8, 0.25);
                let mold = hsv((hue + 180) % 360, 0.6, 0.12);
                let ratio = 0.2 + f64::from(pick(2, 30)) / 100.0;
                let _ = write!(
                    g,
                    "life=s={cw}x{ch}:r={r}:ratio={ratio:.2}:seed={}:mold=12:\
                     life_color={}:death_color={}:mold_color={},scale={w}:{h}:flags=neighbor",
                    pick(1, 1 << 30),
                    live.hex(),
                    dead.hex(),
                    mold.hex()
                );
            }
            Pattern::Gradients => {
                let colours: Vec<String> = [0, 40, 180, 220]
                    .iter()
                    .map(|d| hsv((hue + d) % 360, 0.8, 0.95).hex())
                    .collect();
                // Soft gradients alone hash like any other smooth clip, and the pipeline's
                // near-duplicate check would confuse them: a slowly turning lattice of thin
                // lines on top gives each seed its own structure. The square canvas is as
                // large as the diagonal so the turn never shows corners.
                let d = diagonal(w, h);
                let cell = d / (5 + pick(3, 5));
                // A square lattice repeats every quarter turn: the variants split that.
                let start = f64::from(variant(13) * 5 % 13) * std::f64::consts::FRAC_PI_2 / 13.0;
                let _ = write!(
                    g,
                    "gradients=s={}x{}:r={r}:n=4:c0={}:c1={}:c2={}:c3={}:seed={}:speed=0.03:type={},\
                     scale={d}:{d}:flags=bicubic,\
                     drawgrid=x={}:y={}:w={cell}:h={cell}:t=3:c=white@0.5,\
                     rotate=a='{start:.2}+t*0.15':ow={w}:oh={h}",
                    even(d / 2),
                    even(d / 2),
                    colours[0],
                    colours[1],
                    colours[2],
                    colours[3],
                    pick(1, 1 << 30),
                    ["linear", "radial", "circular", "spiral"][pick(2, 4) as usize],
                    pick(5, cell.max(1)),
                    pick(6, cell.max(1)),
                );
            }
            Pattern::BouncingBoxes => {
                // Bright boxes on a dark ground: the boxes are the structure, so enough of
                // them, large enough, place each seed's clip apart from the others.
                let bg = hsv(hue, 0.7, 0.3);
                let _ = write!(g, "color=c={}:s={w}x{h}:r={r},hue=h='t*20'[bg0]", bg.hex());
                let mut last = "bg0".to_owned();
                for i in 0..6u32 {
                    let side = even(w / 6 + pick(10 + i, w / 5));
                    let colour = hsv((hue + 120 + i * 45) % 360, 0.45, 1.0);
                    let (vx, vy) = (60 + pick(20 + i, 300), 60 + pick(30 + i, 400));
                    let (ox, oy) = (pick(40 + i, 2 * w), pick(50 + i, 2 * h));
                    let out = format!("bg{}", i + 1);
                    let _ = write!(
                        g,
                        ";color=c={}:s={side}x{side}:r={r}[box{i}];[{last}][box{i}]overlay=\
                         x='abs(mod({ox}+t*{vx},2*(W-w))-(W-w))':\
                         y='abs(mod({oy}+t*{vy},2*(H-h))-(H-h))':shortest=1[{out}]",
                        colour.hex()
                    );
                    last = out;
                }
                // The graph's output is its last, otherwise unconnected pad.
                let _ = write!(g, ";[{last}]null");
            }
            Pattern::CellAuto => {
                const RULES: [u32; 6] = [30, 45, 73, 90, 110, 150];
                let rule = RULES[pick(1, RULES.len() as u32) as usize];
                let _ = write!(
                    g,
                    "cellauto=s={}x{}:r={r}:rule={rule}:seed={}:ratio=0.5:scroll=1,\
                     scale={w}:{h}:flags=neighbor,{}",
                    (w / 4).max(8),
                    (h / 4).max(8),
                    pick(2, 1 << 30),
                    tint(hsv(hue, 0.6, 1.0))
                );
            }
            Pattern::ColorBars => {
                let v = variant(13);
                let hpos = f64::from(v / 4) / 4.0;
                let speed = [0.004, -0.004, 0.009, -0.009][pick(2, 4) as usize];
                let _ = write!(
                    g,
                    "smptehdbars=s={w}x{h}:r={r},{}scroll=h={speed}:hpos={hpos},hue=h='{hue}+t*90'",
                    flips(v)
                );
            }
            Pattern::Spectrum => {
                // Every row has the same hue sequence, so frame hashes (which compare
                // horizontal neighbours) tell spectra apart only by horizontal position: the
                // variants shift it sideways.
                // Seeds 12 apart (the next round of a seed-demo run) land 5/13 of a width apart.
                let hpos = f64::from(variant(13) * 5 % 13) / 13.0;
                let kind = ["all", "white", "black"][pick(1, 3) as usize];
                let speed = [0.004, -0.004, 0.008, -0.008][pick(2, 4) as usize];
                let _ = write!(
                    g,
                    "colorspectrum=s={w}x{h}:r={r}:type={kind},\
                     scroll=h={speed}:hpos={hpos:.3},hue=h='{hue}+t*45'"
                );
            }
            Pattern::Sierpinski => {
                // The fractal is symmetric, so variants shift it rather than mirror it.
                let kind = if variant(2) == 0 { "carpet" } else { "triangle" };
                let (hpos, vpos) = (f64::from(variant(7)) / 7.0, f64::from(variant(5)) / 5.0);
                let _ = write!(
                    g,
                    "sierpinski=s={w}x{h}:r={r}:seed={}:jump={}:type={kind},\
                     scroll=hpos={hpos:.3}:vpos={vpos:.3},{}",
                    pick(2, 1 << 30),
                    20 + pick(3, 80),
                    tint(hsv(hue, 0.55, 1.0))
                );
            }
        }
        // Square pixels: scaling a coarse grid to the frame would otherwise skew the aspect.
        g.push_str(",setsar=1");
        g
    }
}

/// Writes `clip` to `out` as H.264/AAC MP4 with `+faststart` (the `moov` box first, so
/// players start before the whole file arrives). The parent directory must exist; the file
/// appears only when complete. Encodes with x264's `ultrafast` preset: demo clips need
/// speed, not compression.
pub async fn synthesize(cfg: &MediaConfig, clip: &DemoClip, out: &Path) -> Result<()> {
    clip.validate()?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let dir = parent
        .canonicalize()
        .map_err(|e| MediaError::io(format!("resolving {}", parent.display()), e))?;
    let name = out
        .file_name()
        .ok_or_else(|| MediaError::Invalid(format!("{} is not a file path", out.display())))?;
    let mut part_name = name.to_owned();
    part_name.push(".part");
    let (target, part) = (dir.join(name), dir.join(part_name));

    let threads = cfg.threads.max(1).to_string();
    let seconds = format!("{:.3}", f64::from(clip.duration_ms) / 1000.0);
    let gop = (clip.fps * 2).to_string();
    let mut a: Vec<OsString> = runner::args(["-filter_threads", &threads, "-f", "lavfi", "-i"]);
    a.push(clip.video_graph().into());
    if let Some(hz) = clip.tone_hz {
        a.extend(runner::args(["-f", "lavfi", "-i"]));
        // beep_factor: a short higher beep each second, so the clip has a rhythm.
        a.push(format!("sine=frequency={hz}:sample_rate=48000:beep_factor=2,volume=0.3").into());
    }
    a.extend(runner::args([
        "-t",
        &seconds,
        "-map",
        "0:v:0",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "26",
        "-pix_fmt",
        "yuv420p",
        "-g",
        &gop,
        "-threads",
        &threads,
    ]));
    if clip.tone_hz.is_some() {
        a.extend(runner::args([
            "-map".to_owned(),
            "1:a:0".into(),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            format!("{}k", cfg.audio_kbps),
            "-ar".into(),
            "48000".into(),
            "-ac".into(),
            "2".into(),
        ]));
    } else {
        a.push("-an".into());
    }
    a.extend(runner::args(["-movflags", "+faststart", "-f", "mp4", "-y"]));
    a.push(runner::file_url(&part));

    if let Err(e) = runner::run(cfg, Tool::Ffmpeg, &a, &dir, cfg.job_timeout).await {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &target)
        .map_err(|e| MediaError::io(format!("moving the clip to {}", target.display()), e))
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy)]
struct Rgb(u8, u8, u8);

impl Rgb {
    /// As ffmpeg's colour syntax.
    fn hex(self) -> String {
        format!("0x{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// HSV (hue in degrees, saturation and value 0..=1) to RGB.
fn hsv(hue: u32, s: f64, v: f64) -> Rgb {
    let h = f64::from(hue % 360) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to = |f: f64| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb(to(r), to(g), to(b))
}

/// An even side a little longer than the diagonal of `w` x `h`: a square that still covers
/// the frame when rotated by any angle.
fn diagonal(w: u32, h: u32) -> u32 {
    even((f64::from(w).hypot(f64::from(h))).ceil() as u32 + 2)
}

/// Rounds down to an even number (at least 2): yuv420p needs even sides.
fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

/// A 32-bit hash of `(seed, salt)` (the murmur3 finaliser): independent-looking numbers for
/// each of a pattern's parameters from one seed.
fn mix(seed: u32, salt: u32) -> u32 {
    let mut h = seed ^ salt.wrapping_mul(0x9e37_79b9);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(DemoClip::default().validate().is_ok());
        for bad in [
            DemoClip { width: 541, ..DemoClip::default() },
            DemoClip { height: 4000, ..DemoClip::default() },
            DemoClip { fps: 0, ..DemoClip::default() },
            DemoClip { duration_ms: 100, ..DemoClip::default() },
            DemoClip { tone_hz: Some(5), ..DemoClip::default() },
        ] {
            assert!(matches!(bad.validate(), Err(MediaError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn graphs_depend_on_seed_and_hue() {
        for pattern in Pattern::ALL {
            let a = DemoClip { pattern, seed: 1, ..DemoClip::default() };
            let b = DemoClip { seed: 2, ..a.clone() };
            let c = DemoClip { hue_deg: 90, ..a.clone() };
            // Every graph names its size; none carries user text.
            assert!(a.video_graph().contains(&format!("{}", a.width)), "{pattern:?}");
            assert_ne!(a.video_graph(), c.video_graph(), "{pattern:?} ignores the hue");
            if !matches!(pattern, Pattern::ColorBars | Pattern::Spectrum) {
                // Bars and spectrum may share a variant between two seeds; the rest may not.
                assert_ne!(a.video_graph(), b.video_graph(), "{pattern:?} ignores the seed");
            }
        }
    }

    #[test]
    fn colours() {
        assert_eq!(hsv(0, 1.0, 1.0).hex(), "0xff0000");
        assert_eq!(hsv(120, 1.0, 1.0).hex(), "0x00ff00");
        assert_eq!(hsv(240, 1.0, 0.5).hex(), "0x000080");
        assert_eq!(even(5), 4);
        assert_eq!(even(0), 2);
    }
}
