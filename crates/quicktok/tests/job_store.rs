//! The pipeline's `JobStore` contract suite on [`MetaJobStore`] over SQLite and (when
//! `QUICKTOK_TEST_POSTGRES_URL` is set) PostgreSQL, and the real runner driving jobs to
//! completion through it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quicktok::jobs::MetaJobStore;
use quicktok_core::{Clock, Id, Shutdown, SystemClock};
use quicktok_meta::testsuite::{TestDb, fresh_postgres_from_env, fresh_sqlite};
use quicktok_meta::{MetaConfig, MetaStore};
use quicktok_pipeline::jobs::{
    Job, JobStatus, JobStore, Runner, RunnerConfig, Stage, StageOutcome, Stages, testsuite,
};

/// Runs the suite with one fresh database per case. The databases are made up front (so
/// the factory needs no async state) and kept in `keep` (temp dirs, schemas) until the end.
async fn run_suite(fresh: impl AsyncFn() -> TestDb) {
    let mut keep = Vec::new();
    let mut stores = Vec::new();
    for _ in testsuite::CASES {
        let db = fresh().await;
        stores.push(Arc::new(MetaJobStore::new(db.store().clone())) as Arc<dyn JobStore>);
        keep.push(db);
    }
    stores.reverse();
    testsuite::run_all(|| {
        let store = stores.pop().expect("one store per case");
        async move { store }
    })
    .await;
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meta_job_store_passes_the_suite_on_sqlite() {
    run_suite(fresh_sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meta_job_store_passes_the_suite_on_postgres() {
    // Probe once so the skip message is printed once, not per case.
    let Some(probe) = fresh_postgres_from_env().await else { return };
    drop(probe);
    run_suite(async || fresh_postgres_from_env().await.expect("postgres is configured")).await;
    println!("postgres: job store suite passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_survives_reconnect() {
    // Jobs are durable: a second connection to the same file sees them.
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::connect(&MetaConfig::default(), dir.path()).await.unwrap();
    let store = MetaJobStore::new(meta.clone());
    assert!(store.enqueue(Job::new(Id(1), Id(2), 5, 1_000)).await.unwrap());
    let claimed = store.claim(1_000, 60_000).await.unwrap().unwrap();
    meta.close().await;
    let again = MetaStore::connect(&MetaConfig::default(), dir.path()).await.unwrap();
    let job = MetaJobStore::new(again).get(Id(1)).await.unwrap().unwrap();
    assert_eq!(job, claimed);
}

/// Stages that succeed at once, except a first transient failure of transcode for job 2
/// and a review at compliance for job 3.
#[derive(Default)]
struct Trivial {
    failed_once: Mutex<bool>,
}

#[async_trait::async_trait]
impl Stages for Trivial {
    async fn run(&self, stage: Stage, job: &Job) -> StageOutcome {
        if job.id == Id(2) && stage == Stage::Transcode {
            let mut failed = self.failed_once.lock().unwrap();
            if !*failed {
                *failed = true;
                return StageOutcome::Retry("transient".into());
            }
        }
        if job.id == Id(3) && stage == Stage::Compliance {
            return StageOutcome::Review("borderline".into());
        }
        let mut state = serde_json::Map::new();
        state.insert(stage.as_str().to_owned(), serde_json::json!(job.attempts));
        StageOutcome::Next(state)
    }
}

async fn wait_status(store: &MetaJobStore, id: u64, status: JobStatus) -> Job {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = store.get(Id(id)).await.unwrap().unwrap();
        if job.status == status {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {id} stuck: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runner_completes_jobs_on_sqlite() {
    let db = fresh_sqlite().await;
    let store = Arc::new(MetaJobStore::new(db.store().clone()));
    let now = SystemClock.now_ms();
    for (id, priority) in [(1, 0), (2, 10), (3, 5), (4, 1)] {
        assert!(store.enqueue(Job::new(Id(id), Id(9), priority, now)).await.unwrap());
    }
    let cfg = RunnerConfig {
        concurrency: 2,
        max_attempts: 3,
        backoff_base_ms: 20,
        backoff_max_ms: 100,
        lease_ms: 10_000,
        poll_interval_ms: 20,
    };
    let runner =
        Runner::new(store.clone(), Arc::new(Trivial::default()), Arc::new(SystemClock), cfg);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));

    for id in [1, 2, 4] {
        let job = wait_status(&store, id, JobStatus::Done).await;
        assert_eq!(job.stage, Stage::Ladder);
        assert_eq!(job.state.len(), Stage::ALL.len(), "every stage's output kept: {job:?}");
        assert_eq!((job.attempts, job.reason.as_deref()), (0, None));
    }
    // Job 2's transcode ran twice: the retry's attempt count reached the stage.
    let retried = store.get(Id(2)).await.unwrap().unwrap();
    assert_eq!(retried.state["transcode"], serde_json::json!(1));

    let parked = wait_status(&store, 3, JobStatus::Review).await;
    assert_eq!((parked.stage, parked.reason.as_deref()), (Stage::Compliance, Some("borderline")));
    assert_eq!(store.list(JobStatus::Review, 10).await.unwrap(), vec![parked]);
    store.resolve_review(Id(3), true, "fine", SystemClock.now_ms()).await.unwrap();
    let done = wait_status(&store, 3, JobStatus::Done).await;
    assert!(!done.state.contains_key("compliance"), "approved, not run: {done:?}");
    assert_eq!(done.state.len(), Stage::ALL.len() - 1);

    shutdown.cancel();
    task.await.unwrap();
}
