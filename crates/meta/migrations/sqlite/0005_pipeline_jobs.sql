-- Durable pipeline jobs: one row per video walking the processing stages (probe ->
-- publish), with the lease that lets a crashed worker's job be taken over and the JSON
-- state the stages accumulate. No foreign key to videos: the job store is usable (and
-- tested) on its own, and a job outliving a deleted video only ends in a rejected stage.
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.

CREATE TABLE pipeline_jobs (
    id             INTEGER PRIMARY KEY,  -- the video's id (one job per video)
    owner_id       INTEGER NOT NULL,
    priority       INTEGER NOT NULL,     -- higher runs first
    stage          TEXT    NOT NULL,     -- probe, compliance, ..., publish
    status         TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    not_before_ms  INTEGER NOT NULL,     -- backoff: not run before this
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    lease_token    INTEGER NOT NULL DEFAULT 0, -- changes on every claim (compare-and-set)
    reason         TEXT,
    state          TEXT    NOT NULL DEFAULT '{}', -- a JSON object of stage outputs
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    CONSTRAINT pipeline_jobs_status_check CHECK (status IN
        ('queued', 'running', 'review', 'done', 'rejected', 'dead'))
) STRICT;

-- The claim query: claimable statuses, most urgent first.
CREATE INDEX pipeline_jobs_claim_idx ON pipeline_jobs (status, priority DESC, id);
