-- Stories (F6.6): a story is a video with `kind = 'story'`, live until `expires_at_ms`
-- (set when it is first published). Every read compares the expiry with the app clock, so
-- expiry is exact without a background job. `story_progress` keeps, per viewer and author,
-- the newest story the viewer has seen (story ids are time-ordered).
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.

ALTER TABLE videos ADD COLUMN kind TEXT NOT NULL DEFAULT 'video'
    CHECK (kind IN ('video', 'story'));
ALTER TABLE videos ADD COLUMN expires_at_ms INTEGER;

-- An author's live stories: the follower row joins followees to it by author and expiry.
CREATE INDEX videos_story_author_idx ON videos (author_id, expires_at_ms) WHERE kind = 'story';

CREATE TABLE story_progress (
    viewer_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_seen_story_id INTEGER NOT NULL, -- no foreign key: progress outlives the story
    updated_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (viewer_id, author_id)
) STRICT, WITHOUT ROWID;
