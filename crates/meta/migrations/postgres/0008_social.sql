-- The social graph and interactions (follows, blocks, likes, comments, shares, reports) and
-- the persisted side of the counter service (one row per subject, id and metric).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- Unqualified names: objects land in the first schema of the search_path.

-- One row per (follower, followee): the primary key makes follows idempotent. `id` is a
-- time-ordered id, the keyset cursor of follower / following lists (newest first).
CREATE TABLE follows (
    follower_id   BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id   BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id            BIGINT  NOT NULL UNIQUE,
    created_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);

CREATE INDEX follows_followee_idx ON follows (followee_id, id DESC);
CREATE INDEX follows_follower_idx ON follows (follower_id, id DESC);

-- `blocker_id` blocked `blocked_id`: no follow, like or comment between the two.
CREATE TABLE blocks (
    blocker_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);

-- One row per (video, user): the primary key makes likes idempotent under concurrency.
CREATE TABLE likes (
    video_id      BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

-- Comments with one level of replies: `parent_id` is the top-level comment a reply is
-- listed under, `reply_to_id` the comment it answers (itself or one of its replies).
-- `reply_count` is kept in the same transaction as the replies it counts.
CREATE TABLE comments (
    id            BIGINT  PRIMARY KEY,
    video_id      BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    author_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id     BIGINT  REFERENCES comments (id) ON DELETE CASCADE,
    reply_to_id   BIGINT,                -- no foreign key: the answered reply may go first
    text          TEXT    NOT NULL,
    reply_count   BIGINT  NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at_ms BIGINT  NOT NULL
);

-- A video's top-level comments, newest first; a comment's replies, oldest first.
CREATE INDEX comments_video_idx ON comments (video_id, id DESC) WHERE parent_id IS NULL;
CREATE INDEX comments_parent_idx ON comments (parent_id, id);

CREATE TABLE shares (
    id            BIGINT  PRIMARY KEY,
    video_id      BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel       TEXT,                  -- where to, when the client said (wechat, link...)
    created_at_ms BIGINT  NOT NULL
);

CREATE INDEX shares_video_idx ON shares (video_id);

-- Reports for moderators. No foreign key on the target: a report outlives what it reports.
CREATE TABLE reports (
    id            BIGINT  PRIMARY KEY,            -- newest first for the admin list
    reporter_id   BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_kind   TEXT    NOT NULL CHECK (target_kind IN ('video', 'comment', 'user')),
    target_id     BIGINT  NOT NULL,
    reason        TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL
);

-- Persisted counters: the counter service adds its batched deltas here and reads them back;
-- `quicktok counters repair` rebuilds the table from the tables above (and plays).
CREATE TABLE counters (
    id      BIGINT  NOT NULL,            -- the video's or user's id
    subject TEXT    NOT NULL CHECK (subject IN ('video', 'user')),
    metric  TEXT    NOT NULL,
    value   BIGINT  NOT NULL,
    PRIMARY KEY (id, subject, metric)
);

-- Plays counted before counters existed.
INSERT INTO counters (id, subject, metric, value)
    SELECT id, 'video', 'plays', view_count FROM videos WHERE view_count <> 0;
