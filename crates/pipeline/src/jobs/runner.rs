//! The worker loop: claims jobs in priority order, runs their stages with bounded
//! concurrency, renews leases while a stage runs, and records each outcome durably.

use std::sync::Arc;
use std::time::Duration;

use quicktok_core::Shutdown;
use quicktok_core::clock::SharedClock;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

use super::{Job, JobError, JobStatus, JobStore, StageOutcome, Stages};

/// The `[pipeline.runner]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Jobs processed at once; 0 means one per CPU core (transcoding is CPU-bound).
    pub concurrency: u32,
    /// Failed attempts of one stage before the job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// How long a claim lasts without renewal; a crashed worker's job is taken over after it.
    pub lease_ms: u64,
    /// How often to look for due jobs when nothing wakes the runner.
    pub poll_interval_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 0,
            max_attempts: 5,
            backoff_base_ms: 2_000,
            backoff_max_ms: 300_000,
            lease_ms: 60_000,
            poll_interval_ms: 1_000,
        }
    }
}

impl RunnerConfig {
    fn workers(&self) -> usize {
        match self.concurrency {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n as usize,
        }
    }

    /// Delay before retry number `attempt` (1-based).
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(30);
        self.backoff_base_ms.saturating_mul(1u64 << shift).min(self.backoff_max_ms)
    }
}

/// Runs jobs from a [`JobStore`] through [`Stages`].
pub struct Runner {
    store: Arc<dyn JobStore>,
    stages: Arc<dyn Stages>,
    clock: SharedClock,
    cfg: RunnerConfig,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Runner {
    pub fn new(
        store: Arc<dyn JobStore>,
        stages: Arc<dyn Stages>,
        clock: SharedClock,
        cfg: RunnerConfig,
    ) -> Self {
        Runner { store, stages, clock, cfg, wake: Arc::new(Notify::new()) }
    }

    /// A handle that wakes the runner at once (call it after enqueueing).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and processes jobs until `shutdown`. Running stages are abandoned then (they
    /// are idempotent and resumable, as after a crash) and their jobs put back in the queue
    /// at once, so a restart, or another worker, takes them over without waiting for a
    /// lease to run out.
    pub async fn run(self, shutdown: Shutdown) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.cfg.workers()));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let lease = i64::try_from(this.cfg.lease_ms).unwrap_or(i64::MAX);
            match this.store.claim(this.clock.now_ms(), lease).await {
                Ok(Some(job)) => {
                    let this = this.clone();
                    let stop = shutdown.clone();
                    tasks.spawn(async move {
                        this.process(job, &stop).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = this.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(this.cfg.poll_interval_ms.max(1))) => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "claiming a pipeline job failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(this.cfg.poll_interval_ms.max(1))) => {}
                    }
                }
            }
            // Reap finished tasks so the set does not grow.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Runs stages of one claimed job until it ends, waits, is parked, or `shutdown`.
    async fn process(&self, mut job: Job, shutdown: &Shutdown) {
        loop {
            let outcome = tokio::select! {
                outcome = self.run_stage_with_lease(&job) => outcome,
                _ = shutdown.cancelled() => {
                    self.release(job).await;
                    return;
                }
            };
            let Some(outcome) = outcome else { return };
            let now = self.clock.now_ms();
            job.updated_at_ms = now;
            // The lease as renewed while the stage ran, extended for the next stage: saving
            // the claim-time lease would hand a still-running job to another worker.
            let lease = i64::try_from(self.cfg.lease_ms).unwrap_or(i64::MAX);
            job.lease_until_ms = now.saturating_add(lease);
            let keep_going = match outcome {
                StageOutcome::Next(state) => {
                    job.state.extend(state);
                    job.attempts = 0;
                    job.reason = None;
                    match job.stage.next() {
                        Some(next) => {
                            job.stage = next;
                            true
                        }
                        None => {
                            job.status = JobStatus::Done;
                            false
                        }
                    }
                }
                StageOutcome::Reject(reason) => {
                    job.status = JobStatus::Rejected;
                    job.reason = Some(reason);
                    false
                }
                StageOutcome::Review(reason) => {
                    job.status = JobStatus::Review;
                    job.reason = Some(reason);
                    false
                }
                StageOutcome::Retry(error) => {
                    job.attempts += 1;
                    if job.attempts >= self.cfg.max_attempts {
                        job.status = JobStatus::Dead;
                        job.reason = Some(format!(
                            "{} failed {} times; last error: {error}",
                            job.stage.as_str(),
                            job.attempts
                        ));
                    } else {
                        let delay =
                            i64::try_from(self.cfg.backoff_ms(job.attempts)).unwrap_or(i64::MAX);
                        job.status = JobStatus::Queued;
                        job.not_before_ms = now.saturating_add(delay);
                        job.reason = Some(error);
                    }
                    false
                }
            };
            if let Err(e) = self.store.save(&job).await {
                // Lost lease: another worker owns the job now and will redo this stage.
                tracing::warn!(job = %job.id, error = %e, "could not record a pipeline stage");
                return;
            }
            if !keep_going {
                if job.status == JobStatus::Queued {
                    self.schedule_wake(job.not_before_ms - now);
                } else {
                    self.stages.settled(&job).await;
                }
                return;
            }
            if shutdown.is_cancelled() {
                self.release(job).await;
                return;
            }
        }
    }

    /// Puts a job this worker holds back in the queue, due now, its lease given up.
    async fn release(&self, mut job: Job) {
        let now = self.clock.now_ms();
        job.status = JobStatus::Queued;
        job.not_before_ms = now;
        job.lease_until_ms = now;
        job.updated_at_ms = now;
        match self.store.save(&job).await {
            Ok(()) => {
                tracing::info!(job = %job.id, stage = job.stage.as_str(), "shutting down: job put back in the queue")
            }
            // Another worker took it already: nothing to give back.
            Err(e) => tracing::warn!(job = %job.id, error = %e, "shutting down: job not released"),
        }
    }

    /// Runs the job's current stage while renewing its lease; `None` when the lease was
    /// lost (the job belongs to another worker now).
    async fn run_stage_with_lease(&self, job: &Job) -> Option<StageOutcome> {
        let lease = i64::try_from(self.cfg.lease_ms).unwrap_or(i64::MAX);
        let every = Duration::from_millis((self.cfg.lease_ms / 3).max(1));
        let stage = self.stages.run(job.stage, job);
        tokio::pin!(stage);
        loop {
            tokio::select! {
                outcome = &mut stage => return Some(outcome),
                _ = tokio::time::sleep(every) => {
                    let until = self.clock.now_ms().saturating_add(lease);
                    match self.store.renew(job.id, job.lease_token, until).await {
                        Ok(()) => {}
                        Err(JobError::LeaseLost(_)) => {
                            tracing::warn!(job = %job.id, "lease lost; abandoning the stage");
                            return None;
                        }
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "lease renewal failed"),
                    }
                }
            }
        }
    }

    fn schedule_wake(&self, delay_ms: i64) {
        let wake = self.wake.clone();
        let delay = Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            wake.notify_one();
        });
    }
}
