-- Every candidate cover of a video (the pipeline's choice of distinct, sharp frames), in
-- the pipeline's order: the recommender's bandit picks among them per audience (F7.4).
CREATE TABLE video_covers (
    video_id BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    blob_id  BIGINT NOT NULL,
    PRIMARY KEY (video_id, idx)
);
