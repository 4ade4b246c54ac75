//! An in-memory [`JobStore`]: the reference model for tests and single-process tools.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use quicktok_core::Id;

use super::{Job, JobError, JobStatus, JobStore};

/// Jobs in a map behind one lock.
#[derive(Debug, Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<Id, Job>>,
    tokens: AtomicU64,
}

impl MemoryJobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Id, Job>> {
        // A panic while holding the lock leaves whole jobs behind (each update is one
        // assignment), so the map is still consistent.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl JobStore for MemoryJobStore {
    async fn enqueue(&self, job: Job) -> Result<bool, JobError> {
        let mut jobs = self.lock();
        if jobs.contains_key(&job.id) {
            return Ok(false);
        }
        jobs.insert(job.id, job);
        Ok(true)
    }

    async fn claim(&self, now_ms: i64, lease_ms: i64) -> Result<Option<Job>, JobError> {
        let mut jobs = self.lock();
        let best = jobs
            .values()
            .filter(|j| j.claimable(now_ms))
            .max_by(|a, b| a.priority.cmp(&b.priority).then(b.id.cmp(&a.id)))
            .map(|j| j.id);
        let Some(id) = best else { return Ok(None) };
        let token = self.tokens.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(job) = jobs.get_mut(&id) else { return Ok(None) };
        job.status = JobStatus::Running;
        job.lease_until_ms = now_ms.saturating_add(lease_ms);
        job.lease_token = token;
        job.updated_at_ms = now_ms;
        Ok(Some(job.clone()))
    }

    async fn save(&self, job: &Job) -> Result<(), JobError> {
        let mut jobs = self.lock();
        let stored = jobs.get_mut(&job.id).ok_or(JobError::NotFound(job.id))?;
        if stored.lease_token != job.lease_token {
            return Err(JobError::LeaseLost(job.id));
        }
        *stored = job.clone();
        Ok(())
    }

    async fn renew(&self, id: Id, lease_token: u64, lease_until_ms: i64) -> Result<(), JobError> {
        let mut jobs = self.lock();
        let stored = jobs.get_mut(&id).ok_or(JobError::NotFound(id))?;
        if stored.lease_token != lease_token || stored.status != JobStatus::Running {
            return Err(JobError::LeaseLost(id));
        }
        stored.lease_until_ms = lease_until_ms;
        Ok(())
    }

    async fn get(&self, id: Id) -> Result<Option<Job>, JobError> {
        Ok(self.lock().get(&id).cloned())
    }

    async fn list(&self, status: JobStatus, limit: usize) -> Result<Vec<Job>, JobError> {
        Ok(self.lock().values().filter(|j| j.status == status).take(limit).cloned().collect())
    }

    async fn resolve_review(
        &self,
        id: Id,
        approve: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Job, JobError> {
        let mut jobs = self.lock();
        let job = jobs.get_mut(&id).ok_or(JobError::NotFound(id))?;
        if job.status != JobStatus::Review {
            return Err(JobError::NotInReview(id));
        }
        job.apply_review(approve, reason, now_ms);
        // A new token: nothing from before the decision may overwrite it.
        job.lease_token = self.tokens.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(job.clone())
    }

    async fn retry_dead(&self, id: Id, now_ms: i64) -> Result<Job, JobError> {
        let mut jobs = self.lock();
        let job = jobs.get_mut(&id).ok_or(JobError::NotFound(id))?;
        if job.status != JobStatus::Dead {
            return Err(JobError::NotDead(id));
        }
        job.requeue(now_ms);
        job.lease_token = self.tokens.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(job.clone())
    }
}
