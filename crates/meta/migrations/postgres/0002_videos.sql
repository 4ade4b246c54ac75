-- Videos and their tags (the foundation of the upload pipeline, feeds and search).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- Unqualified names: objects land in the first schema of the search_path.

CREATE TABLE videos (
    id              BIGINT  PRIMARY KEY,
    author_id       BIGINT  NOT NULL REFERENCES users (id),
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    reason          TEXT,                -- why it was rejected or removed
    duration_ms     BIGINT,              -- media info, known once processed
    width           INT,
    height          INT,
    created_at_ms   BIGINT  NOT NULL,
    published_at_ms BIGINT,              -- set the first time the video is published
    updated_at_ms   BIGINT  NOT NULL,
    CONSTRAINT videos_status_check CHECK (status IN
        ('uploading', 'processing', 'published', 'rejected', 'review', 'removed'))
);

-- An author's videos, newest first (keyset pagination on id).
CREATE INDEX videos_author_idx ON videos (author_id, id DESC);
-- Published videos by publication time (feeds, trending).
CREATE INDEX videos_status_published_idx ON videos (status, published_at_ms);

CREATE TABLE video_tags (
    video_id BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    tag      TEXT   NOT NULL,            -- stored as given; normalising is the caller's job
    PRIMARY KEY (video_id, tag)
);

-- Videos with a tag, newest first.
CREATE INDEX video_tags_tag_idx ON video_tags (tag, video_id);
