//! The pipeline's orchestration: durable jobs that walk a video through the stage chain
//! (probe -> compliance -> tags -> transcode -> dedup -> covers -> publish -> ladder) with persisted
//! progress, retries with exponential backoff, dead letters, a human review queue, leases
//! so a crashed worker's job is resumed (at the stage it was in, never from the start), a
//! priority order, and bounded concurrency.
//!
//! Storage is behind [`JobStore`] (the metadata store implements it for the running
//! platform; [`MemoryJobStore`] is the model used in tests). The work of each stage is
//! behind [`Stages`], so the runner knows nothing of ffmpeg or SQL.
//!
//! Every stage must be idempotent: after a crash the stage that was running runs again
//! with the job's last saved state.

mod memory;
mod runner;
pub mod testsuite;

use serde::{Deserialize, Serialize};

use quicktok_core::Id;

pub use memory::MemoryJobStore;
pub use runner::{Runner, RunnerConfig};

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Probe,
    Compliance,
    Tags,
    /// One decode of the source: the audio track, the lowest rung (what a first play
    /// needs), and the sampled frames dedup and covers judge.
    Transcode,
    Dedup,
    Covers,
    /// The video becomes playable.
    Publish,
    /// The higher rungs, each joining the manifests as it finishes.
    Ladder,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Probe,
        Stage::Compliance,
        Stage::Tags,
        Stage::Transcode,
        Stage::Dedup,
        Stage::Covers,
        Stage::Publish,
        Stage::Ladder,
    ];

    /// The stage after this one, `None` after publish.
    pub fn next(self) -> Option<Stage> {
        let i = Stage::ALL.iter().position(|s| *s == self)?;
        Stage::ALL.get(i + 1).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Probe => "probe",
            Stage::Compliance => "compliance",
            Stage::Dedup => "dedup",
            Stage::Tags => "tags",
            Stage::Covers => "covers",
            Stage::Transcode => "transcode",
            Stage::Publish => "publish",
            Stage::Ladder => "ladder",
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Ready to run its current stage (from `not_before_ms` on).
    Queued,
    /// A worker holds it until `lease_until_ms`; after that anyone may take it over.
    Running,
    /// Parked for a moderator; resumes at the next stage when approved.
    Review,
    /// Every stage done.
    Done,
    /// A stage refused the video (`reason`).
    Rejected,
    /// Failed `max_attempts` times in one stage (`reason`): a dead letter for operators.
    Dead,
}

impl JobStatus {
    /// Whether the job will never run again on its own.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Rejected | JobStatus::Dead)
    }
}

/// One video's trip through the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The video's id (one job per video).
    pub id: Id,
    pub owner: Id,
    /// Higher runs first (the creator's follower count, F3.8); ties by older id.
    pub priority: i64,
    pub stage: Stage,
    pub status: JobStatus,
    /// Failed attempts of the current stage.
    pub attempts: u32,
    /// Not to be run before this time (backoff).
    pub not_before_ms: i64,
    /// The current holder's lease.
    pub lease_until_ms: i64,
    /// Changes on every claim, so a worker that lost its lease cannot overwrite the job.
    pub lease_token: u64,
    /// Why the job was rejected, sent to review, or dead-lettered; the last error otherwise.
    pub reason: Option<String>,
    /// Stage outputs, persisted so later stages (and a resumed job) can use them.
    pub state: serde_json::Map<String, serde_json::Value>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Job {
    /// A new job at the first stage.
    pub fn new(id: Id, owner: Id, priority: i64, now_ms: i64) -> Job {
        Job {
            id,
            owner,
            priority,
            stage: Stage::Probe,
            status: JobStatus::Queued,
            attempts: 0,
            not_before_ms: now_ms,
            lease_until_ms: 0,
            lease_token: 0,
            reason: None,
            state: serde_json::Map::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// Applies a moderator's decision to a job in review: approval continues at the next
    /// stage (or finishes the job after the last one), refusal rejects it with `reason`.
    /// Every [`JobStore`] uses this, so stores agree on the outcome; the caller sets a new
    /// lease token.
    pub fn apply_review(&mut self, approve: bool, reason: &str, now_ms: i64) {
        if approve {
            match self.stage.next() {
                Some(next) => {
                    self.stage = next;
                    self.status = JobStatus::Queued;
                }
                None => self.status = JobStatus::Done,
            }
            self.attempts = 0;
            self.not_before_ms = now_ms;
            self.reason = None;
        } else {
            self.status = JobStatus::Rejected;
            self.reason = Some(reason.to_owned());
        }
        self.updated_at_ms = now_ms;
    }

    /// An operator's retry of a dead-lettered job: it runs its failed stage again at once,
    /// with fresh attempts. Every [`JobStore`] uses this; the caller sets a new lease token.
    pub fn requeue(&mut self, now_ms: i64) {
        self.status = JobStatus::Queued;
        self.attempts = 0;
        self.not_before_ms = now_ms;
        self.reason = None;
        self.updated_at_ms = now_ms;
    }

    /// Whether a worker may take the job at `now_ms`.
    pub fn claimable(&self, now_ms: i64) -> bool {
        match self.status {
            JobStatus::Queued => self.not_before_ms <= now_ms,
            JobStatus::Running => self.lease_until_ms <= now_ms,
            _ => false,
        }
    }
}

/// What a stage decided.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    /// Done: merge these keys into the job's state and go on.
    Next(serde_json::Map<String, serde_json::Value>),
    /// The video is refused; the job ends.
    Reject(String),
    /// A human must decide; the job waits in the review queue.
    Review(String),
    /// A transient failure: try the stage again after a backoff.
    Retry(String),
}

/// Errors of job storage.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// Another worker took the job over (this worker's lease expired).
    #[error("lease on job {0} was lost")]
    LeaseLost(Id),
    #[error("no job {0}")]
    NotFound(Id),
    #[error("job {0} is not waiting for review")]
    NotInReview(Id),
    #[error("job {0} is not dead-lettered")]
    NotDead(Id),
    #[error("job store: {0}")]
    Store(String),
}

/// Durable job storage. Implementations make `claim` atomic: two workers never hold the
/// same job, and `save` succeeds only with the current `lease_token`.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a job; `false` (and no change) when a job with this id exists, so enqueueing
    /// an upload-complete event twice is harmless.
    async fn enqueue(&self, job: Job) -> Result<bool, JobError>;
    /// Takes the most urgent claimable job (highest priority, then oldest id), marks it
    /// `Running` until `now_ms + lease_ms` under a fresh lease token, and returns it.
    async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Job>, JobError>;
    /// Stores `job` if its `lease_token` still matches; [`JobError::LeaseLost`] otherwise.
    async fn save(&self, job: &Job) -> Result<(), JobError>;
    /// Extends a running job's lease; [`JobError::LeaseLost`] if the token changed.
    async fn renew(&self, id: Id, lease_token: u64, lease_until_ms: i64) -> Result<(), JobError>;
    async fn get(&self, id: Id) -> Result<Option<Job>, JobError>;
    /// Jobs in `status`, oldest first (the review queue, dead letters).
    async fn list(&self, status: JobStatus, limit: usize) -> Result<Vec<Job>, JobError>;
    /// A moderator's decision on a job in review: approve continues at the next stage,
    /// refuse rejects it with `reason`.
    async fn resolve_review(
        &self,
        id: Id,
        approve: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Job, JobError>;
    /// An operator's retry of a dead-lettered job: queued again at its failed stage with
    /// fresh attempts ([`Job::requeue`]); [`JobError::NotDead`] for any other status.
    async fn retry_dead(&self, id: Id, now_ms: i64) -> Result<Job, JobError>;
}

/// The work of each stage.
#[async_trait::async_trait]
pub trait Stages: Send + Sync {
    /// Runs `stage` for `job` (idempotently: it may be a re-run after a crash).
    async fn run(&self, stage: Stage, job: &Job) -> StageOutcome;

    /// Called once the runner has durably stored a job that stopped running on its own:
    /// done, rejected, dead-lettered, or parked for review. The place to reflect the outcome
    /// elsewhere (the video's status) and to clean up; it may run again for the same outcome
    /// after a crash, so it must be idempotent too.
    async fn settled(&self, _job: &Job) {}
}
