//! The pipeline's durable job storage on the metadata store: [`MetaJobStore`] adapts the
//! `pipeline_jobs` repository (plain strings and JSON text) to the pipeline's [`JobStore`].
//!
//! Stage and status are stored under their serde (snake_case) names, the state as JSON
//! text, and lease tokens (random `u64`s) bit-for-bit as `i64`s.

use quicktok_core::Id;
use quicktok_meta::{MetaError, MetaStore, PipelineJobRow};
use quicktok_pipeline::jobs::{Job, JobError, JobStatus, JobStore};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A [`JobStore`] in the metadata store's `pipeline_jobs` table.
#[derive(Debug, Clone)]
pub struct MetaJobStore {
    pub meta: MetaStore,
}

impl MetaJobStore {
    pub fn new(meta: MetaStore) -> Self {
        MetaJobStore { meta }
    }
}

fn store_err(e: MetaError) -> JobError {
    JobError::Store(e.to_string())
}

/// The serde name of a unit variant (`Stage::Probe` -> `"probe"`).
fn name_of<T: Serialize + std::fmt::Debug>(value: T) -> Result<String, JobError> {
    match serde_json::to_value(&value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(JobError::Store(format!("{value:?} has no name"))),
    }
}

fn parse_name<T: DeserializeOwned>(name: &str, what: &str) -> Result<T, JobError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| JobError::Store(format!("unknown {what} {name:?} in pipeline_jobs")))
}

/// A fresh lease token; never 0, which marks a job that was never claimed.
fn new_token() -> u64 {
    loop {
        let token = rand::random::<u64>();
        if token != 0 {
            return token;
        }
    }
}

fn to_row(job: &Job) -> Result<PipelineJobRow, JobError> {
    let state_json = serde_json::to_string(&job.state)
        .map_err(|e| JobError::Store(format!("job {} state: {e}", job.id)))?;
    Ok(PipelineJobRow {
        id: job.id,
        owner_id: job.owner,
        priority: job.priority,
        stage: name_of(job.stage)?,
        status: name_of(job.status)?,
        attempts: job.attempts,
        not_before_ms: job.not_before_ms,
        lease_until_ms: job.lease_until_ms,
        lease_token: job.lease_token as i64,
        reason: job.reason.clone(),
        state_json,
        created_at_ms: job.created_at_ms,
        updated_at_ms: job.updated_at_ms,
    })
}

fn from_row(row: PipelineJobRow) -> Result<Job, JobError> {
    let state = serde_json::from_str(&row.state_json)
        .map_err(|e| JobError::Store(format!("job {} state: {e}", row.id)))?;
    Ok(Job {
        id: row.id,
        owner: row.owner_id,
        priority: row.priority,
        stage: parse_name(&row.stage, "stage")?,
        status: parse_name(&row.status, "status")?,
        attempts: row.attempts,
        not_before_ms: row.not_before_ms,
        lease_until_ms: row.lease_until_ms,
        lease_token: row.lease_token as u64,
        reason: row.reason,
        state,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}

impl MetaJobStore {
    /// Why a compare-and-set on `id` matched nothing: the job is gone or its lease moved on.
    async fn lost_or_missing(&self, id: Id) -> JobError {
        match self.meta.pipeline_jobs().get(id).await {
            Ok(Some(_)) => JobError::LeaseLost(id),
            Ok(None) => JobError::NotFound(id),
            Err(e) => store_err(e),
        }
    }
}

#[async_trait::async_trait]
impl JobStore for MetaJobStore {
    async fn enqueue(&self, job: Job) -> Result<bool, JobError> {
        let row = to_row(&job)?;
        self.meta.pipeline_jobs().insert_if_absent(&row).await.map_err(store_err)
    }

    async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Job>, JobError> {
        let token = new_token() as i64;
        let row = self.meta.pipeline_jobs().claim(now_ms, lease_ms, token).await;
        row.map_err(store_err)?.map(from_row).transpose()
    }

    async fn save(&self, job: &Job) -> Result<(), JobError> {
        let row = to_row(job)?;
        if self.meta.pipeline_jobs().save(&row, row.lease_token).await.map_err(store_err)? {
            Ok(())
        } else {
            Err(self.lost_or_missing(job.id).await)
        }
    }

    async fn renew(&self, id: Id, lease_token: u64, lease_until_ms: i64) -> Result<(), JobError> {
        let jobs = self.meta.pipeline_jobs();
        if jobs.renew(id, lease_token as i64, lease_until_ms).await.map_err(store_err)? {
            Ok(())
        } else {
            Err(self.lost_or_missing(id).await)
        }
    }

    async fn get(&self, id: Id) -> Result<Option<Job>, JobError> {
        let row = self.meta.pipeline_jobs().get(id).await.map_err(store_err)?;
        row.map(from_row).transpose()
    }

    async fn list(&self, status: JobStatus, limit: usize) -> Result<Vec<Job>, JobError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows =
            self.meta.pipeline_jobs().list(&name_of(status)?, limit).await.map_err(store_err)?;
        rows.into_iter().map(from_row).collect()
    }

    async fn resolve_review(
        &self,
        id: Id,
        approve: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Job, JobError> {
        // Read, decide, then compare-and-set on the token read: a concurrent decision makes
        // the write miss, and the re-read then reports the job as no longer in review.
        for _ in 0..5 {
            let Some(mut job) = self.get(id).await? else { return Err(JobError::NotFound(id)) };
            if job.status != JobStatus::Review {
                return Err(JobError::NotInReview(id));
            }
            let expected = job.lease_token as i64;
            job.apply_review(approve, reason, now_ms);
            // A new token: nothing from before the decision may overwrite it.
            job.lease_token = new_token();
            let resolved = self
                .meta
                .pipeline_jobs()
                .resolve_review(
                    id,
                    expected,
                    &name_of(job.stage)?,
                    &name_of(job.status)?,
                    job.reason.as_deref(),
                    job.lease_token as i64,
                    now_ms,
                )
                .await
                .map_err(store_err)?;
            if resolved {
                return Ok(job);
            }
        }
        Err(JobError::Store(format!("job {id}: review decision kept colliding; try again")))
    }

    async fn retry_dead(&self, id: Id, now_ms: i64) -> Result<Job, JobError> {
        // Read, check, then compare-and-set on the token read, as for review decisions.
        for _ in 0..5 {
            let Some(mut job) = self.get(id).await? else { return Err(JobError::NotFound(id)) };
            if job.status != JobStatus::Dead {
                return Err(JobError::NotDead(id));
            }
            let expected = job.lease_token as i64;
            job.requeue(now_ms);
            job.lease_token = new_token();
            let jobs = self.meta.pipeline_jobs();
            if jobs
                .requeue_dead(id, expected, job.lease_token as i64, now_ms)
                .await
                .map_err(store_err)?
            {
                return Ok(job);
            }
        }
        Err(JobError::Store(format!("job {id}: retry kept colliding; try again")))
    }
}
