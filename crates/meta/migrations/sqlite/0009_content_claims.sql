-- Exact-duplicate claims: the first video to claim a source's SHA-256 owns it, atomically
-- across every worker (the primary key decides), until it is refused or deleted.
CREATE TABLE video_content_claims (
    content_hash  TEXT     PRIMARY KEY,  -- SHA-256 of the source, hex
    video_id      INTEGER  NOT NULL REFERENCES videos (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX video_content_claims_video_idx ON video_content_claims (video_id);
