//! Limits and tool settings for every ffmpeg/ffprobe run.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Media settings. `Default` gives the production values documented on each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// ffmpeg binary (looked up on `PATH` if relative). Default `ffmpeg`.
    pub ffmpeg_path: PathBuf,
    /// ffprobe binary. Default `ffprobe`.
    pub ffprobe_path: PathBuf,
    /// util-linux `prlimit`, used to apply CPU and address-space rlimits to the child
    /// (the workspace forbids `unsafe`, so no in-process `setrlimit`). Default
    /// `/usr/bin/prlimit`; `None` disables rlimits.
    pub prlimit_path: Option<PathBuf>,
    /// Fail instead of running uncapped when `prlimit_path` is missing. Default `false`:
    /// a warning is logged and only the wall-clock cap applies.
    pub require_prlimit: bool,
    /// RLIMIT_CPU per child, seconds of CPU time. Default 900.
    pub max_cpu_secs: u64,
    /// RLIMIT_AS per child, bytes. Default 3 GiB (x264 at 1080p needs well under 1 GiB;
    /// glibc reserves address space per thread, hence the headroom).
    pub max_address_space_bytes: u64,
    /// Wall-clock cap for one ffprobe run, seconds in the config file. Default 30 s.
    #[serde(with = "whole_seconds")]
    pub probe_timeout: Duration,
    /// Wall-clock cap for one ffmpeg run (one rung, one cover pass), seconds in the config
    /// file. Default 10 min.
    #[serde(with = "whole_seconds")]
    pub job_timeout: Duration,
    /// A transcode's caps grow with its work: at least this many CPU seconds per second of
    /// video per output rung (x264 `veryfast` at 1080p needs well under 2). Default 8.
    pub cpu_secs_per_output_second: f64,
    /// Likewise for the wall clock, seconds per second of video per output rung. Default 4.
    pub wall_secs_per_output_second: f64,
    /// Scheduling niceness (0-19) media tools run at; 0 is normal priority. Default 0.
    pub niceness: u8,
    /// Niceness of the encoding pass (every rung of a video), so the frame sampling its
    /// publication waits for, this video's or another's, gets the CPU first; the pass takes
    /// what is left and all of it afterwards. Default 10.
    pub encode_niceness: u8,
    /// `-threads` for decoders, encoders and filters. Default 2.
    pub threads: u32,
    /// Directory holding per-job temp dirs. Default: the system temp dir.
    pub work_root: Option<PathBuf>,
    /// Largest accepted input, bytes. Default 2 GiB.
    pub max_input_bytes: u64,
    /// Longest accepted clip. Default 10 min.
    pub max_duration_ms: u64,
    /// Largest displayed width / height / pixel count. Defaults 4096 / 4096 / 3840*2160.
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// Largest long-side / short-side ratio. Default 4.0 (a 9:16 clip is 1.78).
    pub max_aspect_ratio: f64,
    /// Highest accepted source frame rate; output is capped at `max_output_fps`. Default 240.
    pub max_input_fps: f64,
    /// Output frame-rate cap. Default 60.
    pub max_output_fps: f64,
    /// CMAF segment duration. Default 2000 ms. Keyframes are forced on this grid.
    pub segment_duration_ms: u32,
    /// The first segment's duration, when shorter than `segment_duration_ms`: a player
    /// starts (and publication can happen) once it is there. 0 or not shorter: the same as
    /// the others. Default 1000 ms.
    pub first_segment_ms: u32,
    /// Add H.265 rungs to the ladder. Default `false`.
    pub hevc_enabled: bool,
    /// x264/x265 preset. Default `veryfast`.
    pub preset: String,
    /// AAC bitrate, kbit/s. Default 96.
    pub audio_kbps: u32,
    /// Largest stdout a tool may produce (raw frames, JSON). Default 64 MiB.
    pub max_stdout_bytes: usize,
    /// Stderr tail kept for error messages. Default 8 KiB.
    pub max_stderr_bytes: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            ffprobe_path: PathBuf::from("ffprobe"),
            prlimit_path: Some(PathBuf::from("/usr/bin/prlimit")),
            require_prlimit: false,
            max_cpu_secs: 900,
            max_address_space_bytes: 3 << 30,
            probe_timeout: Duration::from_secs(30),
            job_timeout: Duration::from_secs(600),
            cpu_secs_per_output_second: 8.0,
            wall_secs_per_output_second: 4.0,
            niceness: 0,
            encode_niceness: 10,
            threads: 2,
            work_root: None,
            max_input_bytes: 2 << 30,
            max_duration_ms: 10 * 60 * 1000,
            max_width: 4096,
            max_height: 4096,
            max_pixels: 3840 * 2160,
            max_aspect_ratio: 4.0,
            max_input_fps: 240.0,
            max_output_fps: 60.0,
            segment_duration_ms: 2000,
            first_segment_ms: 1000,
            hevc_enabled: false,
            preset: "veryfast".to_owned(),
            audio_kbps: 96,
            max_stdout_bytes: 64 << 20,
            max_stderr_bytes: 8 << 10,
        }
    }
}

/// Durations as whole seconds in config files (`job_timeout = 600`), not serde's
/// `{secs, nanos}` table.
mod whole_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
