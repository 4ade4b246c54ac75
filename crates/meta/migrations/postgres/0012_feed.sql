-- The following feed (F6.5): when users were last seen, and per-user inboxes the fan-out
-- fills for active followers of ordinary creators (celebrities are pulled at read time).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- Unqualified names: objects land in the first schema of the search_path.

-- When a user was last seen (written at most once per interval per user). `stale` is true
-- when the user came back after being inactive (pushes skipped them meanwhile) or was never
-- seen: their next feed read rebuilds the inbox by pull first.
CREATE TABLE user_activity (
    user_id        BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_active_ms BIGINT  NOT NULL,
    stale          BOOLEAN NOT NULL DEFAULT TRUE
);

-- Pushed feed entries. A derived, rebuildable table: no foreign keys, so a fan-out batch
-- never fails on a user or video deleted meanwhile (reads join the live rows). `at_ms` is
-- the video's `published_at_ms`, the feed's order with the video id as tie-break.
CREATE TABLE feed_inbox (
    user_id   BIGINT  NOT NULL,
    video_id  BIGINT  NOT NULL,
    author_id BIGINT  NOT NULL,
    at_ms     BIGINT  NOT NULL,
    PRIMARY KEY (user_id, video_id)
);

-- A user's inbox newest first (reads, trims).
CREATE INDEX feed_inbox_user_at_idx ON feed_inbox (user_id, at_ms DESC, video_id DESC);
-- One author's rows in a user's inbox (unfollow).
CREATE INDEX feed_inbox_user_author_idx ON feed_inbox (user_id, author_id);

-- An author's published videos in publication order: the celebrities' outboxes, backfill
-- on follow and inbox rebuilds.
CREATE INDEX videos_author_published_idx ON videos (author_id, published_at_ms DESC, id DESC)
    WHERE status = 'published';
