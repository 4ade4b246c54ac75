-- What blob tiering needs: the creator's archive flag and the last play time on videos,
-- which blobs make up each video, and hourly play counts (hot/warm/cold storage classes are
-- decided from them by a daily job).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.

ALTER TABLE videos ADD COLUMN archived_at_ms INTEGER; -- set while the creator has it archived
ALTER TABLE videos ADD COLUMN last_play_ms INTEGER;   -- latest play recorded; only moves forward

CREATE TABLE video_blobs (
    blob_id       INTEGER PRIMARY KEY,   -- rowid alias: the blob store's id itself
    video_id      INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,      -- what the blob holds (source, a rendition, a poster...)
    created_at_ms INTEGER NOT NULL
) STRICT;

-- A video's blobs (and the cascade from videos).
CREATE INDEX video_blobs_video_idx ON video_blobs (video_id);

-- Plays per video and hour. No foreign key: counting plays never waits on (or fails
-- because of) a video being deleted; rows of deleted videos age out with pruning.
CREATE TABLE video_plays_hourly (
    video_id INTEGER NOT NULL,
    hour     INTEGER NOT NULL,           -- Unix ms / 3 600 000 (floor)
    plays    INTEGER NOT NULL,
    PRIMARY KEY (video_id, hour)
) STRICT, WITHOUT ROWID;
-- No index on hour: pruning and the tiering report scan the table once a day, and it only
-- ever holds about 8 days of rows.
