//! The `[pipeline]` section: the runner, each decision stage's settings, and how much media
//! work the stages do per video (covers, fingerprint frames, the reviewer contact sheet).

use serde::{Deserialize, Serialize};

use crate::compliance::ComplianceConfig;
use crate::dedup::DedupConfig;
use crate::jobs::RunnerConfig;
use crate::tags::TagsConfig;

/// What happens to an upload that looks like a video already on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateAction {
    /// Refuse it.
    Reject,
    /// Let a moderator decide (re-uploads by the original creator, reaction videos...).
    Review,
    /// Publish it anyway (its fingerprint is still recorded).
    Allow,
}

/// Pipeline settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub runner: RunnerConfig,
    pub compliance: ComplianceConfig,
    pub dedup: DedupConfig,
    pub tags: TagsConfig,
    /// A byte-identical re-upload of another video. Default `reject`.
    pub exact_duplicate: DuplicateAction,
    /// A re-encoded, resized or trimmed copy of another video. Default `reject`.
    pub near_duplicate: DuplicateAction,
    /// Candidate covers kept per video (each in every client size). Default 3.
    pub covers: u32,
    /// Frames sampled for the perceptual fingerprint. Default 16.
    pub fingerprint_frames: u32,
    /// How often a worker settles again the ended jobs it still has a work dir for (an
    /// outcome it could not record, an admin's refusal). Default 60000 ms.
    pub sweep_interval_ms: u64,
    /// The reviewer contact sheet: columns x rows of tiles this wide. Default 4 x 4, 160 px.
    pub contact_sheet_cols: u32,
    pub contact_sheet_rows: u32,
    pub contact_sheet_tile_width: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            runner: RunnerConfig::default(),
            compliance: ComplianceConfig::default(),
            dedup: DedupConfig::default(),
            tags: TagsConfig::default(),
            exact_duplicate: DuplicateAction::Reject,
            near_duplicate: DuplicateAction::Reject,
            covers: 3,
            fingerprint_frames: 16,
            sweep_interval_ms: 60_000,
            contact_sheet_cols: 4,
            contact_sheet_rows: 4,
            contact_sheet_tile_width: 160,
        }
    }
}
