//! The `pipeline_jobs` table: durable pipeline jobs (one per video), claimed under leases.
//!
//! This crate knows nothing of the pipeline's types: stage and status are plain strings
//! (the pipeline's snake_case names) and the job state is JSON text. Every write that
//! could race is a single compare-and-set statement: [`PipelineJobs::claim`] picks and
//! takes a job in one `UPDATE`, [`PipelineJobs::save`] and [`PipelineJobs::renew`] match
//! the lease token, [`PipelineJobs::resolve_review`] matches the review status.

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};

/// A stored pipeline job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineJobRow {
    /// The video's id (one job per video).
    pub id: Id,
    pub owner_id: Id,
    /// Higher runs first; ties by older id.
    pub priority: i64,
    /// The current stage's name (`probe`, ..., `publish`).
    pub stage: String,
    /// `queued`, `running`, `review`, `done`, `rejected` or `dead`.
    pub status: String,
    /// Failed attempts of the current stage.
    pub attempts: u32,
    pub not_before_ms: i64,
    pub lease_until_ms: i64,
    pub lease_token: i64,
    pub reason: Option<String>,
    /// The stages' outputs as a JSON object.
    pub state_json: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    owner_id: i64,
    priority: i64,
    stage: String,
    status: String,
    attempts: i32,
    not_before_ms: i64,
    lease_until_ms: i64,
    lease_token: i64,
    reason: Option<String>,
    state: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<JobRow> for PipelineJobRow {
    fn from(r: JobRow) -> PipelineJobRow {
        PipelineJobRow {
            id: Id::from_i64(r.id),
            owner_id: Id::from_i64(r.owner_id),
            priority: r.priority,
            stage: r.stage,
            status: r.status,
            // The CHECK constraint keeps it non-negative.
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            not_before_ms: r.not_before_ms,
            lease_until_ms: r.lease_until_ms,
            lease_token: r.lease_token,
            reason: r.reason,
            state_json: r.state,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

const COLUMNS: &str = "id, owner_id, priority, stage, status, attempts, not_before_ms, \
     lease_until_ms, lease_token, reason, state, created_at_ms, updated_at_ms";

const INSERT: &str = "INSERT INTO pipeline_jobs (id, owner_id, priority, stage, status, \
     attempts, not_before_ms, lease_until_ms, lease_token, reason, state, created_at_ms, \
     updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (id) DO NOTHING";

/// Which jobs a worker may take at `$1`.
const CLAIMABLE: &str = "((status = 'queued' AND not_before_ms <= $1) \
     OR (status = 'running' AND lease_until_ms <= $1))";

/// Binds the row's columns as `$1..$13` in [`INSERT`]'s order (see [`bind_row`]), and the
/// expected token as `$14`.
const SAVE: &str = "UPDATE pipeline_jobs SET owner_id = $2, priority = $3, stage = $4, \
     status = $5, attempts = $6, not_before_ms = $7, lease_until_ms = $8, lease_token = $9, \
     reason = $10, state = $11, created_at_ms = $12, updated_at_ms = $13 \
     WHERE id = $1 AND lease_token = $14";

/// Binds every column of a row as `$1..$13` in table order, for [`INSERT`] and [`SAVE`]
/// (a macro because each dialect's query type differs inside `with_pool!`).
macro_rules! bind_row {
    ($query:expr, $row:expr) => {{
        let row: &PipelineJobRow = $row;
        $query
            .bind(row.id.as_i64())
            .bind(row.owner_id.as_i64())
            .bind(row.priority)
            .bind(&row.stage)
            .bind(&row.status)
            .bind(i32::try_from(row.attempts).unwrap_or(i32::MAX))
            .bind(row.not_before_ms)
            .bind(row.lease_until_ms)
            .bind(row.lease_token)
            .bind(&row.reason)
            .bind(&row.state_json)
            .bind(row.created_at_ms)
            .bind(row.updated_at_ms)
    }};
}

const RENEW: &str = "UPDATE pipeline_jobs SET lease_until_ms = $3 \
     WHERE id = $1 AND lease_token = $2 AND status = 'running'";

/// Repository for pipeline jobs; get one from [`MetaStore::pipeline_jobs`].
#[derive(Debug, Clone, Copy)]
pub struct PipelineJobs<'a> {
    store: &'a MetaStore,
}

impl<'a> PipelineJobs<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        PipelineJobs { store }
    }

    /// Stores a new job; `false` (and nothing changes) when a job with its id exists.
    pub async fn insert_if_absent(&self, row: &PipelineJobRow) -> Result<bool> {
        let inserted = with_pool!(self.store, |pool| {
            bind_row!(sqlx::query(INSERT), row).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(inserted > 0)
    }

    /// Takes the most urgent claimable job (highest priority, then lowest id): a `queued`
    /// job due at `now_ms` or a `running` job whose lease has expired. It becomes `running`
    /// until `now_ms + lease_ms` under `new_token`, and is returned as stored.
    ///
    /// One statement picks and takes the job, and re-checks that it is still claimable, so
    /// two claimers never get the same job. Under PostgreSQL a claimer that lost the race
    /// for the picked job gets `None` although other jobs may be claimable; callers poll.
    pub async fn claim(
        &self,
        now_ms: i64,
        lease_ms: i64,
        new_token: i64,
    ) -> Result<Option<PipelineJobRow>> {
        let sql = format!(
            "UPDATE pipeline_jobs SET status = 'running', lease_until_ms = $2, \
             lease_token = $3, updated_at_ms = $1 \
             WHERE id = (SELECT id FROM pipeline_jobs WHERE {CLAIMABLE} \
             ORDER BY priority DESC, id ASC LIMIT 1) AND {CLAIMABLE} \
             RETURNING {COLUMNS}"
        );
        let until = now_ms.saturating_add(lease_ms);
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, JobRow>(&sql)
                .bind(now_ms)
                .bind(until)
                .bind(new_token)
                .fetch_optional(pool)
                .await
        })
        .map_err(db)?;
        Ok(row.map(PipelineJobRow::from))
    }

    /// Overwrites the job `row.id` with `row` if its stored lease token is
    /// `expected_token`; `false` (and nothing changes) otherwise or when it does not exist.
    pub async fn save(&self, row: &PipelineJobRow, expected_token: i64) -> Result<bool> {
        let changed = with_pool!(self.store, |pool| {
            bind_row!(sqlx::query(SAVE), row)
                .bind(expected_token)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(changed > 0)
    }

    /// Moves a running job's lease to `lease_until_ms` if its token is still `token`;
    /// `false` otherwise (taken over, finished, or gone).
    pub async fn renew(&self, id: Id, token: i64, lease_until_ms: i64) -> Result<bool> {
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(RENEW)
                .bind(id.as_i64())
                .bind(token)
                .bind(lease_until_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(changed > 0)
    }

    /// The job with this id, if any.
    pub async fn get(&self, id: Id) -> Result<Option<PipelineJobRow>> {
        let sql = format!("SELECT {COLUMNS} FROM pipeline_jobs WHERE id = $1");
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, JobRow>(&sql).bind(id.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(row.map(PipelineJobRow::from))
    }

    /// Jobs in `status`, lowest (oldest) id first, at most `limit`.
    pub async fn list(&self, status: &str, limit: u32) -> Result<Vec<PipelineJobRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM pipeline_jobs WHERE status = $1 ORDER BY id LIMIT $2");
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, JobRow>(&sql)
                .bind(status)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(PipelineJobRow::from).collect())
    }

    /// A moderator's decision on a job in `review` whose token is `expected_token`: it
    /// moves to `new_stage`/`new_status` with `reason` under `new_token`. Unless the new
    /// status is `rejected`, the attempts restart and the job is due at `now_ms`. `false`
    /// (and nothing changes) when the job is not in review, the token differs, or it is
    /// gone.
    #[allow(clippy::too_many_arguments)] // one compare-and-set, every input a column
    pub async fn resolve_review(
        &self,
        id: Id,
        expected_token: i64,
        new_stage: &str,
        new_status: &str,
        reason: Option<&str>,
        new_token: i64,
        now_ms: i64,
    ) -> Result<bool> {
        // The cast fixes the parameter's type for PostgreSQL, which sees it twice.
        const RESOLVE: &str = "UPDATE pipeline_jobs SET stage = $3, \
             status = CAST($4 AS TEXT), reason = $5, lease_token = $6, updated_at_ms = $7, \
             attempts = CASE WHEN CAST($4 AS TEXT) = 'rejected' THEN attempts ELSE 0 END, \
             not_before_ms = CASE WHEN CAST($4 AS TEXT) = 'rejected' THEN not_before_ms \
             ELSE $7 END \
             WHERE id = $1 AND lease_token = $2 AND status = 'review'";
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(RESOLVE)
                .bind(id.as_i64())
                .bind(expected_token)
                .bind(new_stage)
                .bind(new_status)
                .bind(reason)
                .bind(new_token)
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(changed > 0)
    }

    /// An operator's retry of the dead-lettered job `id` whose token is `expected_token`:
    /// queued at its stage, due at `now_ms`, attempts and reason cleared, under `new_token`.
    /// `false` (and nothing changes) when it is not dead, the token differs, or it is gone.
    pub async fn requeue_dead(
        &self,
        id: Id,
        expected_token: i64,
        new_token: i64,
        now_ms: i64,
    ) -> Result<bool> {
        const REQUEUE: &str = "UPDATE pipeline_jobs SET status = 'queued', attempts = 0, \
             reason = NULL, not_before_ms = $4, lease_token = $3, updated_at_ms = $4 \
             WHERE id = $1 AND lease_token = $2 AND status = 'dead'";
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(REQUEUE)
                .bind(id.as_i64())
                .bind(expected_token)
                .bind(new_token)
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(changed > 0)
    }
}
