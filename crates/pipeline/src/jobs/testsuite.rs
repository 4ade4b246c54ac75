//! The [`JobStore`] contract as a test suite, run unchanged on every implementation (the
//! in-memory model here, the metadata store in the `quicktok` crate).
//!
//! Each function takes a fresh, empty store and panics on failure; [`run_all`] runs the
//! whole list, one fresh store per case. Nothing here depends on a backend: tokens are only
//! compared, never predicted, and a claim that finds nothing while jobs are still claimable
//! is retried (a losing claimer may see `None` under contention).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use quicktok_core::Id;

use super::{Job, JobError, JobStatus, JobStore, Stage};

/// A fixed "now" for the cases (Unix ms).
const NOW: i64 = 1_750_000_000_000;
const LEASE: i64 = 30_000;

type Case = fn(Arc<dyn JobStore>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("enqueue_is_idempotent", |s| Box::pin(enqueue_is_idempotent(s))),
    ("claim_takes_highest_priority_then_oldest_id", |s| {
        Box::pin(claim_takes_highest_priority_then_oldest_id(s))
    }),
    ("claim_skips_not_due_leased_and_parked_jobs", |s| {
        Box::pin(claim_skips_not_due_leased_and_parked_jobs(s))
    }),
    ("expired_lease_is_taken_over", |s| Box::pin(expired_lease_is_taken_over(s))),
    ("save_and_renew_need_the_current_lease", |s| {
        Box::pin(save_and_renew_need_the_current_lease(s))
    }),
    ("save_round_trips_every_field", |s| Box::pin(save_round_trips_every_field(s))),
    ("get_and_list_oldest_first", |s| Box::pin(get_and_list_oldest_first(s))),
    ("missing_jobs_are_not_found", |s| Box::pin(missing_jobs_are_not_found(s))),
    ("resolve_review_approve_queues_the_next_stage", |s| {
        Box::pin(resolve_review_approve_queues_the_next_stage(s))
    }),
    ("resolve_review_refuse_rejects_with_reason", |s| {
        Box::pin(resolve_review_refuse_rejects_with_reason(s))
    }),
    ("resolve_review_needs_a_job_in_review", |s| Box::pin(resolve_review_needs_a_job_in_review(s))),
    ("concurrent_claims_never_share_a_job", |s| Box::pin(concurrent_claims_never_share_a_job(s))),
    ("retry_dead_requeues_at_the_failed_stage", |s| {
        Box::pin(retry_dead_requeues_at_the_failed_stage(s))
    }),
];

/// Runs every case, each on a store from `factory` (which must return a fresh, empty one).
pub async fn run_all<F, Fut>(mut factory: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn JobStore>>,
{
    for (name, case) in CASES {
        // Printed so a panic can be traced to its case (test output is shown on failure).
        println!("job store case: {name}");
        case(factory().await).await;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers. Panicking is the point of a test suite, so no error is propagated.

fn ok<T>(result: Result<T, JobError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn job(id: u64, priority: i64) -> Job {
    Job::new(Id(id), Id(1), priority, NOW)
}

async fn enqueue(store: &dyn JobStore, job: Job) {
    let id = job.id;
    assert!(ok(store.enqueue(job).await, "enqueue"), "job {id} was new");
}

async fn claim(store: &dyn JobStore, now_ms: i64) -> Option<Job> {
    ok(store.claim(now_ms, LEASE).await, "claim")
}

async fn get(store: &dyn JobStore, id: u64) -> Job {
    ok(store.get(Id(id)).await, "get").unwrap_or_else(|| panic!("job {id} is missing"))
}

/// Claims until something is returned (a contended claim may find nothing once).
async fn claim_some(store: &dyn JobStore, now_ms: i64) -> Job {
    for _ in 0..20 {
        if let Some(job) = claim(store, now_ms).await {
            return job;
        }
    }
    panic!("no claimable job at {now_ms}")
}

/// A job claimed and parked in review at `stage`.
async fn in_review(store: &dyn JobStore, id: u64, stage: Stage) -> Job {
    let mut j = job(id, 0);
    j.stage = stage;
    j.attempts = 1;
    enqueue(store, j).await;
    let mut claimed = claim_some(store, NOW).await;
    assert_eq!(claimed.id, Id(id));
    claimed.status = JobStatus::Review;
    claimed.reason = Some("needs a human".to_owned());
    ok(store.save(&claimed).await, "save into review");
    claimed
}

fn is_lease_lost(result: Result<(), JobError>, id: u64) -> bool {
    matches!(result, Err(JobError::LeaseLost(x)) if x == Id(id))
}

// ---------------------------------------------------------------------------------------
// Cases.

/// Enqueueing an existing id changes nothing and returns `false`.
pub async fn enqueue_is_idempotent(store: Arc<dyn JobStore>) {
    let store = &*store;
    let first = job(7, 3);
    enqueue(store, first.clone()).await;
    let mut again = job(7, 99);
    again.stage = Stage::Publish;
    assert!(!ok(store.enqueue(again).await, "enqueue again"), "second enqueue is a no-op");
    assert_eq!(get(store, 7).await, first);
    assert_eq!(ok(store.list(JobStatus::Queued, 10).await, "list").len(), 1);
}

/// Claims go by priority (highest first), then by id (lowest first), and mark the job
/// running under a lease with a fresh token.
pub async fn claim_takes_highest_priority_then_oldest_id(store: Arc<dyn JobStore>) {
    let store = &*store;
    for (id, priority) in [(3, 0), (2, 5), (1, 0), (4, 5), (5, -1)] {
        enqueue(store, job(id, priority)).await;
    }
    let mut order = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let claimed = claim_some(store, NOW).await;
        assert_eq!(claimed.status, JobStatus::Running);
        assert_eq!(claimed.lease_until_ms, NOW + LEASE);
        assert_ne!(claimed.lease_token, 0, "a claim issues a token");
        assert_eq!(get(store, claimed.id.0).await, claimed, "the claim is stored");
        order.push(claimed.id.0);
        tokens.push(claimed.lease_token);
    }
    assert_eq!(order, [2, 4, 1, 3, 5]);
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 5, "every claim has its own token");
    assert_eq!(claim(store, NOW).await, None, "everything is leased");
}

/// Only queued jobs that are due and running jobs whose lease expired are claimable.
pub async fn claim_skips_not_due_leased_and_parked_jobs(store: Arc<dyn JobStore>) {
    let store = &*store;
    let mut later = job(1, 100);
    later.not_before_ms = NOW + 1_000;
    enqueue(store, later).await;
    let parked = [
        (2, JobStatus::Review),
        (3, JobStatus::Done),
        (4, JobStatus::Rejected),
        (5, JobStatus::Dead),
    ];
    for (id, status) in parked {
        let mut j = job(id, 100);
        j.status = status;
        enqueue(store, j).await;
    }
    enqueue(store, job(6, 0)).await;

    assert_eq!(claim_some(store, NOW).await.id, Id(6), "only the due queued job");
    assert_eq!(claim(store, NOW + 999).await, None, "job 1 is not due, job 6 is leased");
    assert_eq!(claim_some(store, NOW + 1_000).await.id, Id(1));
    assert_eq!(claim(store, NOW + LEASE - 1).await, None);
    for (id, status) in parked {
        let mut untouched = job(id, 100);
        untouched.status = status;
        assert_eq!(get(store, id).await, untouched);
    }
}

/// A running job whose lease expired goes to the next claimer under a new token; the old
/// holder can neither save nor renew.
pub async fn expired_lease_is_taken_over(store: Arc<dyn JobStore>) {
    let store = &*store;
    enqueue(store, job(1, 0)).await;
    let first = claim_some(store, NOW).await;
    assert_eq!(claim(store, NOW + LEASE - 1).await, None, "lease still held");
    let second = claim_some(store, NOW + LEASE).await;
    assert_eq!(second.id, Id(1));
    assert_eq!(second.lease_until_ms, NOW + 2 * LEASE);
    assert_ne!(second.lease_token, first.lease_token);
    // The stage the first worker was in is kept (resumed, not restarted).
    assert_eq!(second.stage, first.stage);

    let mut stale = first.clone();
    stale.stage = Stage::Publish;
    assert!(is_lease_lost(store.save(&stale).await, 1));
    assert!(is_lease_lost(store.renew(Id(1), first.lease_token, NOW + 9 * LEASE).await, 1));
    assert_eq!(get(store, 1).await, second, "the loser changed nothing");
}

/// `save` and `renew` succeed with the current token only; `renew` only while running.
pub async fn save_and_renew_need_the_current_lease(store: Arc<dyn JobStore>) {
    let store = &*store;
    enqueue(store, job(1, 0)).await;
    let mut held = claim_some(store, NOW).await;
    ok(store.renew(Id(1), held.lease_token, NOW + 2 * LEASE).await, "renew");
    assert_eq!(get(store, 1).await.lease_until_ms, NOW + 2 * LEASE);
    // Renewal keeps the job out of other claimers' hands past the first lease.
    assert_eq!(claim(store, NOW + LEASE).await, None);

    let wrong = held.lease_token.wrapping_add(1);
    assert!(is_lease_lost(store.renew(Id(1), wrong, NOW + 3 * LEASE).await, 1));
    let mut forged = held.clone();
    forged.lease_token = wrong;
    forged.stage = Stage::Publish;
    assert!(is_lease_lost(store.save(&forged).await, 1));
    assert_eq!(get(store, 1).await.stage, Stage::Probe);

    held.stage = Stage::Compliance;
    held.lease_until_ms = NOW + 2 * LEASE;
    ok(store.save(&held).await, "save");
    assert_eq!(get(store, 1).await, held);

    // A job that is no longer running cannot be renewed, even with its token.
    held.status = JobStatus::Queued;
    ok(store.save(&held).await, "save queued");
    assert!(is_lease_lost(store.renew(Id(1), held.lease_token, NOW + 3 * LEASE).await, 1));
}

/// What is saved is what is read back: stage, status, attempts, times, reason, state.
pub async fn save_round_trips_every_field(store: Arc<dyn JobStore>) {
    let store = &*store;
    let mut j = job(u64::MAX - 1, i64::MIN + 1);
    j.owner = Id(u64::MAX);
    enqueue(store, j).await;
    let mut held = claim_some(store, NOW).await;
    assert_eq!(held.owner, Id(u64::MAX));
    held.stage = Stage::Transcode;
    held.status = JobStatus::Queued;
    held.attempts = 3;
    held.not_before_ms = NOW + 8_000;
    held.reason = Some("ffmpeg: exit 1 — \"retry\"".to_owned());
    held.state.insert("probe".to_owned(), serde_json::json!({"width": 720, "fps": 29.97}));
    held.state.insert("tags".to_owned(), serde_json::json!(["猫", "dance"]));
    held.state.insert("dedup".to_owned(), serde_json::json!(null));
    held.updated_at_ms = NOW + 5;
    ok(store.save(&held).await, "save");
    assert_eq!(get(store, u64::MAX - 1).await, held);
    for stage in Stage::ALL {
        held.stage = stage;
        ok(store.save(&held).await, "save stage");
        assert_eq!(get(store, u64::MAX - 1).await.stage, stage);
    }
}

/// `get` of an unknown id is `None`; `list` filters by status, oldest id first, limited.
pub async fn get_and_list_oldest_first(store: Arc<dyn JobStore>) {
    let store = &*store;
    assert_eq!(ok(store.get(Id(1)).await, "get"), None);
    for (id, status) in [
        (5, JobStatus::Review),
        (2, JobStatus::Dead),
        (3, JobStatus::Review),
        (9, JobStatus::Review),
        (1, JobStatus::Queued),
    ] {
        let mut j = job(id, i64::try_from(id).unwrap_or(0));
        j.status = status;
        enqueue(store, j).await;
    }
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id.0).collect::<Vec<_>>();
    assert_eq!(ids(ok(store.list(JobStatus::Review, 10).await, "list")), [3, 5, 9]);
    assert_eq!(ids(ok(store.list(JobStatus::Review, 2).await, "list")), [3, 5]);
    assert_eq!(ids(ok(store.list(JobStatus::Dead, 10).await, "list")), [2]);
    assert_eq!(ids(ok(store.list(JobStatus::Queued, 10).await, "list")), [1]);
    assert!(ok(store.list(JobStatus::Done, 10).await, "list").is_empty());
    assert!(ok(store.list(JobStatus::Review, 0).await, "list").is_empty());
}

/// Operations on an unknown id fail with `NotFound`.
pub async fn missing_jobs_are_not_found(store: Arc<dyn JobStore>) {
    let store = &*store;
    let ghost = job(42, 0);
    assert!(matches!(store.save(&ghost).await, Err(JobError::NotFound(Id(42)))));
    assert!(matches!(store.renew(Id(42), 1, NOW).await, Err(JobError::NotFound(Id(42)))));
    let resolved = store.resolve_review(Id(42), true, "", NOW).await;
    assert!(matches!(resolved, Err(JobError::NotFound(Id(42)))), "{resolved:?}");
    assert_eq!(ok(store.get(Id(42)).await, "get"), None, "nothing was created");
}

/// Approving continues at the next stage, due at once, with attempts and reason cleared;
/// approving at the last stage finishes the job. The pre-decision lease is void.
pub async fn resolve_review_approve_queues_the_next_stage(store: Arc<dyn JobStore>) {
    let store = &*store;
    let parked = in_review(store, 1, Stage::Compliance).await;
    let approved = ok(store.resolve_review(Id(1), true, "ok", NOW + 10).await, "approve");
    assert_eq!(approved.stage, Stage::Tags);
    assert_eq!(approved.status, JobStatus::Queued);
    assert_eq!((approved.attempts, approved.not_before_ms), (0, NOW + 10));
    assert_eq!(approved.reason, None);
    assert_eq!(approved.updated_at_ms, NOW + 10);
    assert_eq!(approved.state, parked.state);
    assert_eq!(get(store, 1).await, approved, "the decision is stored");
    // Whoever parked it cannot overwrite the decision.
    assert!(is_lease_lost(store.save(&parked).await, 1));
    let resumed = claim_some(store, NOW + 10).await;
    assert_eq!((resumed.id, resumed.stage), (Id(1), Stage::Tags));

    in_review(store, 2, Stage::Ladder).await;
    let done = ok(store.resolve_review(Id(2), true, "", NOW + 20).await, "approve last");
    assert_eq!((done.stage, done.status), (Stage::Ladder, JobStatus::Done));
    assert_eq!(get(store, 2).await.status, JobStatus::Done);
}

/// Refusing rejects the job with the moderator's reason; it is final.
pub async fn resolve_review_refuse_rejects_with_reason(store: Arc<dyn JobStore>) {
    let store = &*store;
    let parked = in_review(store, 1, Stage::Compliance).await;
    let refused = ok(store.resolve_review(Id(1), false, "nudity", NOW + 10).await, "refuse");
    assert_eq!(refused.status, JobStatus::Rejected);
    assert!(refused.status.is_final());
    assert_eq!(refused.reason.as_deref(), Some("nudity"));
    assert_eq!(refused.stage, Stage::Compliance);
    assert_eq!(get(store, 1).await, refused);
    assert!(is_lease_lost(store.save(&parked).await, 1));
    assert_eq!(claim(store, NOW + 10 * LEASE).await, None, "a rejected job never runs");
    assert_eq!(ok(store.list(JobStatus::Review, 10).await, "list"), Vec::<Job>::new());
}

/// Only a job in review can be resolved, and only once.
pub async fn resolve_review_needs_a_job_in_review(store: Arc<dyn JobStore>) {
    let store = &*store;
    enqueue(store, job(1, 0)).await;
    let queued = store.resolve_review(Id(1), true, "", NOW).await;
    assert!(matches!(queued, Err(JobError::NotInReview(Id(1)))), "{queued:?}");
    let running = claim_some(store, NOW).await;
    let refused = store.resolve_review(Id(1), false, "no", NOW).await;
    assert!(matches!(refused, Err(JobError::NotInReview(Id(1)))), "{refused:?}");
    assert_eq!(get(store, 1).await, running, "nothing changed");

    in_review(store, 2, Stage::Tags).await;
    ok(store.resolve_review(Id(2), true, "", NOW).await, "first decision");
    let again = store.resolve_review(Id(2), false, "changed my mind", NOW).await;
    assert!(matches!(again, Err(JobError::NotInReview(Id(2)))), "{again:?}");
    assert_eq!(get(store, 2).await.stage, Stage::Transcode);
}

/// Many workers claiming at once: every job goes to exactly one of them.
pub async fn concurrent_claims_never_share_a_job(store: Arc<dyn JobStore>) {
    const TASKS: usize = 8;
    const JOBS: u64 = 5;
    for id in 1..=JOBS {
        enqueue(&*store, job(id, 0)).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                // More claims than jobs: a claimer that lost a race may see nothing once.
                for _ in 0..2 * JOBS {
                    if let Some(j) = store.claim(NOW, LEASE).await? {
                        mine.push((j.id.0, j.lease_token));
                    }
                }
                Ok::<_, JobError>(mine)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap_or_else(|e| panic!("claimer panicked: {e}"));
        claimed.extend(ok(mine, "concurrent claim"));
    }
    let mut ids: Vec<u64> = claimed.iter().map(|c| c.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=JOBS).collect::<Vec<_>>(), "each job handed out exactly once");
    for (id, token) in claimed {
        assert_eq!(get(&*store, id).await.lease_token, token, "the winner holds job {id}");
    }
}

/// An operator's retry runs a dead letter's failed stage again, once, with fresh attempts;
/// nothing else can be retried, and the old holder cannot overwrite the retry.
pub async fn retry_dead_requeues_at_the_failed_stage(store: Arc<dyn JobStore>) {
    let store = store.as_ref();
    let mut j = job(1, 0);
    j.stage = Stage::Transcode;
    enqueue(store, j).await;
    let mut claimed = claim_some(store, NOW).await;
    claimed.status = JobStatus::Dead;
    claimed.attempts = 5;
    claimed.reason = Some("transcode failed 5 times".to_owned());
    ok(store.save(&claimed).await, "dead-letter");
    let retried = ok(store.retry_dead(Id(1), NOW + 50).await, "retry");
    assert_eq!((retried.stage, retried.status), (Stage::Transcode, JobStatus::Queued));
    assert_eq!(
        (retried.attempts, retried.not_before_ms, retried.reason.clone()),
        (0, NOW + 50, None)
    );
    assert_eq!(retried.state, claimed.state);
    assert_eq!(get(store, 1).await, retried, "the retry is stored");
    assert!(is_lease_lost(store.save(&claimed).await, 1), "the old holder is fenced off");
    let again = store.retry_dead(Id(1), NOW + 60).await;
    assert!(matches!(again, Err(JobError::NotDead(Id(1)))), "{again:?}");
    let resumed = claim_some(store, NOW + 50).await;
    assert_eq!((resumed.id, resumed.stage), (Id(1), Stage::Transcode));
    assert!(matches!(store.retry_dead(Id(9), NOW).await, Err(JobError::NotFound(Id(9)))));
}
