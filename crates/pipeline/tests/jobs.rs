//! The job runner against the in-memory store, on tokio's paused clock: the happy path,
//! retries with backoff, dead letters, reject and review, priority, the concurrency bound,
//! and a crash in the middle of a stage resumed by another worker at that stage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quicktok_core::{Clock, Id, Shutdown};
use quicktok_pipeline::jobs::{
    Job, JobStatus, JobStore, MemoryJobStore, Runner, RunnerConfig, Stage, StageOutcome, Stages,
};

/// Milliseconds of tokio's (pausable) clock.
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        1_000_000 + self.0.elapsed().as_millis() as i64
    }
}

/// Stages that follow a script: queued outcomes per (job, stage), `Next` otherwise.
#[derive(Default)]
struct Script {
    outcomes: Mutex<HashMap<(Id, Stage), VecDeque<StageOutcome>>>,
    runs: Mutex<Vec<(Id, Stage, i64)>>,
    hang: Mutex<HashSet<(Id, Stage)>>,
    /// Jobs the runner reported as settled, with the status it stored.
    settled: Mutex<Vec<(Id, JobStatus)>>,
    stage_ms: u64,
    running: AtomicUsize,
    max_running: AtomicUsize,
    clock: Option<Arc<TokioClock>>,
}

impl Script {
    fn push(&self, id: u64, stage: Stage, outcome: StageOutcome) {
        self.outcomes.lock().unwrap().entry((Id(id), stage)).or_default().push_back(outcome);
    }
    fn settled_of(&self, id: u64) -> Vec<JobStatus> {
        self.settled.lock().unwrap().iter().filter(|r| r.0 == Id(id)).map(|r| r.1).collect()
    }
    fn runs_of(&self, id: u64) -> Vec<Stage> {
        self.runs.lock().unwrap().iter().filter(|r| r.0 == Id(id)).map(|r| r.1).collect()
    }
}

#[async_trait::async_trait]
impl Stages for Script {
    async fn run(&self, stage: Stage, job: &Job) -> StageOutcome {
        let now = self.clock.as_ref().map(|c| c.now_ms()).unwrap_or(0);
        self.runs.lock().unwrap().push((job.id, stage, now));
        let n = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(n, Ordering::SeqCst);
        if self.hang.lock().unwrap().contains(&(job.id, stage)) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(self.stage_ms)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let scripted =
            self.outcomes.lock().unwrap().get_mut(&(job.id, stage)).and_then(|q| q.pop_front());
        scripted.unwrap_or_else(|| {
            let mut state = serde_json::Map::new();
            state.insert(stage.as_str().to_owned(), serde_json::json!(true));
            StageOutcome::Next(state)
        })
    }

    async fn settled(&self, job: &Job) {
        self.settled.lock().unwrap().push((job.id, job.status));
    }
}

struct Harness {
    store: Arc<MemoryJobStore>,
    script: Arc<Script>,
    clock: Arc<TokioClock>,
}

fn harness(stage_ms: u64) -> Harness {
    let clock = Arc::new(TokioClock(tokio::time::Instant::now()));
    let script = Arc::new(Script { stage_ms, clock: Some(clock.clone()), ..Default::default() });
    Harness { store: Arc::new(MemoryJobStore::new()), script, clock }
}

fn config(concurrency: u32) -> RunnerConfig {
    RunnerConfig {
        concurrency,
        max_attempts: 3,
        backoff_base_ms: 1_000,
        backoff_max_ms: 8_000,
        lease_ms: 30_000,
        poll_interval_ms: 100,
    }
}

impl Harness {
    fn start(&self, cfg: RunnerConfig) -> (Shutdown, tokio::task::JoinHandle<()>) {
        let runner = Runner::new(self.store.clone(), self.script.clone(), self.clock.clone(), cfg);
        let shutdown = Shutdown::new();
        let handle = tokio::spawn(runner.run(shutdown.clone()));
        (shutdown, handle)
    }

    async fn enqueue(&self, id: u64, priority: i64) {
        assert!(
            self.store
                .enqueue(Job::new(Id(id), Id(1), priority, self.clock.now_ms()))
                .await
                .unwrap()
        );
    }

    async fn wait_status(&self, id: u64, status: JobStatus) -> Job {
        for _ in 0..100_000 {
            let job = self.store.get(Id(id)).await.unwrap().unwrap();
            if job.status == status {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never reached {status:?}: {:?}", self.store.get(Id(id)).await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn every_stage_runs_in_order_and_state_accumulates() {
    let h = harness(10);
    h.enqueue(7, 0).await;
    assert!(!h.store.enqueue(Job::new(Id(7), Id(1), 0, 0)).await.unwrap(), "enqueue is idempotent");
    let (stop, task) = h.start(config(2));
    let job = h.wait_status(7, JobStatus::Done).await;
    assert_eq!(h.script.runs_of(7), Stage::ALL.to_vec());
    assert_eq!(job.state.len(), Stage::ALL.len());
    assert_eq!(job.attempts, 0);
    assert_eq!(h.script.settled_of(7), vec![JobStatus::Done], "settled once, when done");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_then_succeed_or_dead_letter() {
    let h = harness(0);
    h.script.push(1, Stage::Transcode, StageOutcome::Retry("ffmpeg crashed".into()));
    h.script.push(1, Stage::Transcode, StageOutcome::Retry("ffmpeg crashed again".into()));
    for _ in 0..3 {
        h.script.push(2, Stage::Covers, StageOutcome::Retry("disk full".into()));
    }
    h.enqueue(1, 0).await;
    h.enqueue(2, 0).await;
    let (stop, task) = h.start(config(2));
    h.wait_status(1, JobStatus::Done).await;
    let runs: Vec<i64> = h
        .script
        .runs
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == Id(1) && r.1 == Stage::Transcode)
        .map(|r| r.2)
        .collect();
    assert_eq!(runs.len(), 3);
    // 1 s then 2 s between attempts (exponential backoff), give or take the poll interval.
    assert!((1_000..1_300).contains(&(runs[1] - runs[0])), "{runs:?}");
    assert!((2_000..2_300).contains(&(runs[2] - runs[1])), "{runs:?}");
    let dead = h.wait_status(2, JobStatus::Dead).await;
    assert_eq!(dead.stage, Stage::Covers);
    assert!(dead.reason.unwrap().contains("covers failed 3 times; last error: disk full"));
    assert!(!h.script.runs_of(2).contains(&Stage::Publish));
    // Retries are not outcomes; the dead letter is.
    assert_eq!(h.script.settled_of(1), vec![JobStatus::Done]);
    assert_eq!(h.script.settled_of(2), vec![JobStatus::Dead]);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reject_ends_and_review_waits_for_a_moderator() {
    let h = harness(0);
    h.script.push(1, Stage::Probe, StageOutcome::Reject("not a video: text file".into()));
    h.script.push(2, Stage::Compliance, StageOutcome::Review("matched review word".into()));
    h.script.push(3, Stage::Compliance, StageOutcome::Review("matched review word".into()));
    for id in 1..=3 {
        h.enqueue(id, 0).await;
    }
    let (stop, task) = h.start(config(2));
    let rejected = h.wait_status(1, JobStatus::Rejected).await;
    assert_eq!(rejected.reason.as_deref(), Some("not a video: text file"));
    assert_eq!(h.script.runs_of(1), vec![Stage::Probe]);
    h.wait_status(2, JobStatus::Review).await;
    h.wait_status(3, JobStatus::Review).await;
    assert_eq!(h.store.list(JobStatus::Review, 10).await.unwrap().len(), 2);
    // Approved: continues at the stage after compliance. Refused: rejected with the reason.
    h.store.resolve_review(Id(2), true, "", h.clock.now_ms()).await.unwrap();
    h.store.resolve_review(Id(3), false, "moderator: spam", h.clock.now_ms()).await.unwrap();
    h.wait_status(2, JobStatus::Done).await;
    assert_eq!(h.script.runs_of(2), Stage::ALL.to_vec());
    let refused = h.wait_status(3, JobStatus::Rejected).await;
    assert_eq!(refused.reason.as_deref(), Some("moderator: spam"));
    assert!(h.store.resolve_review(Id(3), true, "", 0).await.is_err());
    assert_eq!(h.script.settled_of(1), vec![JobStatus::Rejected]);
    // Parked for review, then done after approval; a moderator's refusal is recorded by
    // whoever decided (the runner never sees job 3 again).
    assert_eq!(h.script.settled_of(2), vec![JobStatus::Review, JobStatus::Done]);
    assert_eq!(h.script.settled_of(3), vec![JobStatus::Review]);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn popular_creators_go_first_and_concurrency_is_bounded() {
    let h = harness(100);
    for id in 1..=6 {
        h.enqueue(id, 0).await;
    }
    h.enqueue(50, 1_000_000).await; // a creator with a million followers, queued last
    let (stop, task) = h.start(config(2));
    for id in [1, 2, 3, 4, 5, 6, 50] {
        h.wait_status(id, JobStatus::Done).await;
    }
    let first = h.script.runs.lock().unwrap()[0].0;
    assert_eq!(first, Id(50));
    assert_eq!(h.script.max_running.load(Ordering::SeqCst), 2);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_crashed_worker_is_resumed_at_its_stage() {
    let h = harness(10);
    h.script.hang.lock().unwrap().insert((Id(9), Stage::Transcode));
    h.enqueue(9, 0).await;
    let (stop_a, task_a) = h.start(config(1));
    // Wait until worker A is stuck in the transcode, then kill it without any cleanup.
    loop {
        if h.script.runs_of(9).contains(&Stage::Transcode) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task_a.abort();
    let _ = task_a.await;
    drop(stop_a);
    let stuck = h.store.get(Id(9)).await.unwrap().unwrap();
    assert_eq!((stuck.status, stuck.stage), (JobStatus::Running, Stage::Transcode));
    assert_eq!(stuck.state.len(), 3, "probe, compliance and tags results were saved");

    // Worker B takes it over once A's lease runs out, at the transcode stage.
    h.script.hang.lock().unwrap().clear();
    let (stop_b, task_b) = h.start(config(1));
    let job = h.wait_status(9, JobStatus::Done).await;
    let runs = h.script.runs_of(9);
    assert_eq!(
        runs.iter().filter(|s| **s == Stage::Probe).count(),
        1,
        "not restarted from the beginning"
    );
    assert_eq!(runs.iter().filter(|s| **s == Stage::Transcode).count(), 2);
    assert_eq!(job.state.len(), Stage::ALL.len());
    stop_b.cancel();
    task_b.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_lost_its_lease_cannot_overwrite() {
    let store = MemoryJobStore::new();
    store.enqueue(Job::new(Id(1), Id(1), 0, 0)).await.unwrap();
    let a = store.claim(0, 100).await.unwrap().unwrap();
    assert!(store.claim(50, 100).await.unwrap().is_none(), "held by a");
    let b = store.claim(200, 100).await.unwrap().unwrap();
    assert_ne!(a.lease_token, b.lease_token);
    let mut stale = a.clone();
    stale.stage = Stage::Publish;
    assert!(store.save(&stale).await.is_err());
    assert!(store.renew(Id(1), a.lease_token, 1_000).await.is_err());
    store.save(&b).await.unwrap();
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let cfg = config(1);
    let delays: Vec<u64> = (1..=6).map(|a| cfg.backoff_ms(a)).collect();
    assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
}

/// A job whose stages together outlast the lease is never run by two workers: each save
/// carries the renewed lease, not the one from the claim.
#[tokio::test(start_paused = true)]
async fn a_long_job_is_not_taken_over_while_it_runs() {
    // 8 stages of 20 s against a 30 s lease (renewed every 10 s while a stage runs).
    let h = harness(20_000);
    h.enqueue(1, 0).await;
    let (stop_a, task_a) = h.start(config(1));
    let (stop_b, task_b) = h.start(config(1));
    h.wait_status(1, JobStatus::Done).await;
    assert_eq!(h.script.runs_of(1), Stage::ALL.to_vec(), "every stage ran once");
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b)] {
        stop.cancel();
        task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_the_running_stage_and_requeues_the_job() {
    let h = harness(60_000);
    h.enqueue(5, 0).await;
    let (stop, task) = h.start(config(1));
    h.wait_status(5, JobStatus::Running).await;
    while h.script.runs_of(5).is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = tokio::time::Instant::now();
    stop.cancel();
    task.await.unwrap();
    // The minute-long stage was not waited for.
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    let job = h.store.get(Id(5)).await.unwrap().unwrap();
    assert_eq!((job.status, job.stage), (JobStatus::Queued, Stage::Probe), "{job:?}");
    assert!(job.not_before_ms <= h.clock.now_ms() && job.lease_until_ms <= h.clock.now_ms());
    assert!(h.script.settled_of(5).is_empty(), "not settled: it has not ended");

    // The next runner takes it over at once (no lease to wait out) and finishes it.
    let (stop, task) = h.start(config(1));
    let started = tokio::time::Instant::now();
    h.wait_status(5, JobStatus::Done).await;
    assert!(started.elapsed() < Duration::from_secs(60 * Stage::ALL.len() as u64 + 5));
    let runs = h.script.runs_of(5);
    assert_eq!(runs.iter().filter(|s| **s == Stage::Probe).count(), 2, "{runs:?}");
    stop.cancel();
    task.await.unwrap();
}
