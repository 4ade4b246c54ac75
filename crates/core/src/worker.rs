//! The contract for background work and the one shutdown signal every task listens to.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// What a worker reports after one unit of work; the runner uses it to decide how soon to
/// call again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// More work is waiting: call again at once.
    Busy,
    /// Nothing to do: wait a little before asking again.
    Idle,
    /// Asked to slow down (a dependency is saturated): wait the given time.
    Throttled(Duration),
    /// Finished for good.
    Done,
}

/// A background worker: pipeline stages, consumers of the event log, periodic jobs.
#[async_trait::async_trait]
pub trait Worker: Send {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;
    /// Does one unit of work.
    async fn work(&mut self) -> WorkerState;
}

/// The process-wide shutdown signal: cancelled once on SIGTERM/SIGINT; clones share it.
pub type Shutdown = CancellationToken;

/// Runs `worker` until it reports [`WorkerState::Done`] or `shutdown` fires, sleeping
/// `idle_wait` whenever it is idle.
pub async fn run_worker<W: Worker + ?Sized>(
    worker: &mut W,
    shutdown: &Shutdown,
    idle_wait: Duration,
) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let wait = match worker.work().await {
            WorkerState::Busy => continue,
            WorkerState::Idle => idle_wait,
            WorkerState::Throttled(d) => d,
            WorkerState::Done => return,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio_sleep(wait) => {}
        }
    }
}

async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await
}
