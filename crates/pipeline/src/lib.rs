//! QuickTok processing pipeline: the pure logic of the stages run on each uploaded video.
//!
//! The chain is probe -> compliance -> tags -> transcode (lowest rung and frame samples) ->
//! duplicate check -> covers -> publish -> ladder. Probing, covers and transcoding wrap ffmpeg and live in `quicktok-media`; job
//! state, retries and ordering belong to the orchestrator. This crate holds the stages that
//! are decisions over data the orchestrator already has, with no IO beyond reading the
//! configured word-list files, so they can be tested exhaustively:
//!
//! - [`compliance`] (F3.2): build a [`ComplianceFilter`] once from [`ComplianceConfig`]; per
//!   video call [`ComplianceFilter::check`] on title, description and user tags, run a
//!   [`FrameClassifier`] over the sampled frames with [`classify_frames`] ([`NoopClassifier`]
//!   until a real model is plugged in), and merge both with [`combine_verdicts`]. A
//!   [`Severity::Reject`] stops the job, [`Severity::Review`] parks it for a moderator.
//! - [`dedup`] (F3.3): keep one [`DedupIndex`] per process, filled at start-up from stored
//!   fingerprints ([`DedupIndex::insert`]). For a new upload, call [`DedupIndex::check`] with
//!   its SHA-256 and the 64-bit perceptual hashes of its sampled frames (computed by the media
//!   crate); on [`DedupVerdict::Unique`] (or when a near duplicate is allowed) persist the
//!   fingerprint and `insert` it; `remove` videos that are deleted.
//! - [`tags`] (F3.4): build a [`TagExtractor`] once (it loads jieba's dictionaries) and call
//!   [`TagExtractor::extract`] with title, description and user tags to get [`Tags`]: merged
//!   hashtags and extracted keywords for search and recommendation.
//!
//! - [`jobs`] (F3.1, F3.8): the orchestration: durable [`jobs::Job`]s in a [`jobs::JobStore`],
//!   a [`jobs::Runner`] that claims them by priority with bounded concurrency, leases that let
//!   another worker resume a crashed job at its stage, retries with exponential backoff, dead
//!   letters and a review queue. The work of each stage plugs in through [`jobs::Stages`].
//!
//! All configs are serde structs with defaults that reject unknown keys, for the `[pipeline]`
//! section of the TOML config. Every fallible function returns [`PipelineError`].

pub mod compliance;
pub mod config;
pub mod dedup;
pub mod error;
pub mod jobs;
pub mod tags;
mod text;

pub use compliance::{
    ComplianceConfig, ComplianceFilter, ComplianceOutcome, ComplianceVerdict, Field,
    FrameClassifier, FrameFinding, FrameVerdict, ListKind, NoopClassifier, Severity, WordMatch,
    classify_frames, combine_verdicts, normalize,
};
pub use config::{DuplicateAction, PipelineConfig};
pub use dedup::{
    BkTree, ContentHash, DedupConfig, DedupIndex, DedupVerdict, clip_distance, hamming,
};
pub use error::{PipelineError, Result};
pub use tags::{TagExtractor, Tags, TagsConfig, extract_hashtags, normalize_tag};
