-- What the upload pipeline produces: the chosen cover and an all-time view count on videos,
-- the renditions of the encoding ladder, and the fingerprints duplicate detection compares.
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- Unqualified names: objects land in the first schema of the search_path.

-- The cover image's blob id. No foreign key: the blob store is not in this database.
ALTER TABLE videos ADD COLUMN cover_blob_id BIGINT NULL;
-- Plays recorded, all time; raised with each batch of plays (saturating).
ALTER TABLE videos ADD COLUMN view_count BIGINT NOT NULL DEFAULT 0;

-- Published videos, newest first (keyset pagination on id).
CREATE INDEX videos_status_id_idx ON videos (status, id DESC);

-- One row per rung of a video's encoding ladder; a re-run of the pipeline replaces it.
CREATE TABLE video_renditions (
    video_id      BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,      -- the rung ("480p", "720p_hevc")
    height        INTEGER NOT NULL,      -- pixels
    bandwidth     BIGINT  NOT NULL,      -- bits per second
    spec_json     TEXT    NOT NULL,      -- the caller's JSON (segments, codecs...), opaque here
    created_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (video_id, name)
);

-- Duplicate detection's view of a video: its exact hash and sampled frame hashes.
CREATE TABLE video_fingerprints (
    video_id      BIGINT  PRIMARY KEY REFERENCES videos (id) ON DELETE CASCADE,
    content_hash  TEXT    NOT NULL,      -- SHA-256 of the source, hex
    frame_hashes  TEXT    NOT NULL,      -- 64-bit frame hashes, each as 16 lowercase hex digits
    created_at_ms BIGINT  NOT NULL
);

-- Exact duplicates.
CREATE INDEX video_fingerprints_content_hash_idx ON video_fingerprints (content_hash);
