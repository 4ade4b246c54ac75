-- Every candidate cover of a video (the pipeline's choice of distinct, sharp frames), in
-- the pipeline's order: the recommender's bandit picks among them per audience (F7.4).
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.
CREATE TABLE video_covers (
    video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    blob_id  INTEGER NOT NULL,
    PRIMARY KEY (video_id, idx)
) STRICT, WITHOUT ROWID;
