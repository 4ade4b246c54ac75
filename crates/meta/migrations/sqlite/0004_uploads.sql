-- Resumable (tus) uploads: one row per upload, tied to the video it creates. The bytes live
-- in the API node's data directory; this row is the durable state that lets an upload
-- resume across restarts.
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.

CREATE TABLE uploads (
    id              INTEGER PRIMARY KEY,  -- rowid alias: the Snowflake id itself
    owner_id        INTEGER NOT NULL REFERENCES users (id),
    video_id        INTEGER NOT NULL UNIQUE REFERENCES videos (id) ON DELETE CASCADE,
    upload_length   INTEGER NOT NULL CHECK (upload_length >= 0),
    upload_offset   INTEGER NOT NULL DEFAULT 0
        CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    metadata        TEXT    NOT NULL DEFAULT '', -- the validated Upload-Metadata header, verbatim
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,     -- unfinished uploads are removed after this
    completed_at_ms INTEGER               -- set once every byte has arrived
) STRICT;

-- A user's unfinished uploads (quota checks).
CREATE INDEX uploads_owner_open_idx ON uploads (owner_id) WHERE completed_at_ms IS NULL;
-- Unfinished uploads by expiry (cleanup).
CREATE INDEX uploads_expires_open_idx ON uploads (expires_at_ms) WHERE completed_at_ms IS NULL;
