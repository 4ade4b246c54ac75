-- Recommender state that must survive a restart (issue #8): per-user seen filters and the
-- cover bandit's statistics per (video, audience segment), as opaque versioned bytes the
-- recommend crate writes and reads. `subject_id` is the user (seen) or the video (cover);
-- `segment` is 0 where the kind has none. Written write-behind by each API node.
CREATE TABLE recommend_state (
    kind          TEXT    NOT NULL,
    subject_id    INTEGER NOT NULL,
    segment       INTEGER NOT NULL,
    data          BLOB    NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, subject_id, segment)
) STRICT, WITHOUT ROWID;
-- Pruning and loading "what changed lately" scan by age.
CREATE INDEX recommend_state_by_age ON recommend_state (kind, updated_at_ms);
