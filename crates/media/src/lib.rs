//! QuickTok media handling: the only crate that runs ffmpeg/ffprobe.
//!
//! Flow for one upload (what the pipeline orchestrator does):
//! 1. [`sha256_file`] for exact dedup, [`probe`] to accept or reject (`MediaError::Rejected`
//!    carries a [`Rejection`] with a stable [`RejectReason`] code).
//! 2. [`plan_ladder_for`] picks rungs; [`JobDir::new`] makes a private working dir;
//!    [`transcode_rung`] writes each rung as CMAF fMP4 (lowest rung first: publish it, then
//!    add rungs as they finish).
//! 3. [`hls_media_playlist`], [`hls_master`] and [`dash_mpd`] describe the same segments
//!    with URLs supplied by the caller.
//! 4. [`covers`], [`contact_sheet`], [`frame_hashes`] + [`clip_distance`] for near-dups.
//!
//! Every child runs without a shell, with `-nostdin`, `file,pipe` protocols only, the demuxer
//! pinned to what probe found, bounded threads, `prlimit` CPU/address-space caps and a
//! wall-clock timeout (see [`MediaConfig`]).

mod config;
mod covers;
mod error;
mod frames;
mod hash;
mod ladder;
mod manifest;
mod phash;
mod probe;
mod runner;
pub mod synth;
mod transcode;

pub use config::MediaConfig;
pub use covers::{
    BLACK_MEAN_LUMA, BLUR_LAPLACIAN_VAR, COVER_WIDTHS, Cover, CoverImage, FLAT_STDDEV, FrameStats,
    choose_covers, contact_sheet, covers, frame_stats,
};
pub use error::{MediaError, RejectReason, Rejection, Result};
pub use hash::{ContentHash, sha256_file};
pub use ladder::{Rung, STANDARD_RUNGS, VideoCodec, plan_ladder};
pub use manifest::{dash_mpd, hls_master, hls_media_playlist, is_audio_track};
pub use phash::{clip_distance, dhash_9x8, dhash_gray, frame_hashes, hamming};
pub use probe::{ALLOWED_FORMATS, ALLOWED_VIDEO_CODECS, ProbeInfo, probe};
pub use runner::JobDir;
pub use synth::{DemoClip, Pattern, synthesize};
pub use transcode::{
    AUDIO_CODECS, AUDIO_RENDITION, INIT_NAME, Pass, PassProgress, Rendition, SampledFrame,
    Sampling, Segment, key_frame_expr, segment_grid, transcode_audio, transcode_pass,
    transcode_pass_live, transcode_rung,
};

/// The ladder for a probed source under `cfg` (H.265 rungs when `cfg.hevc_enabled`).
pub fn plan_ladder_for(info: &ProbeInfo, cfg: &MediaConfig) -> Vec<Rung> {
    plan_ladder(info.width, info.height, cfg.hevc_enabled)
}

/// Whether CPU/address-space caps can be applied (the configured `prlimit` exists).
pub fn rlimits_available(cfg: &MediaConfig) -> bool {
    runner::prlimit_available(cfg).is_some()
}
