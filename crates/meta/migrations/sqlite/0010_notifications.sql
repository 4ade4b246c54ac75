-- Per-user notification inboxes (F6.4), filled by the notifications consumer of the event log.
-- `id` is assigned by the database in insertion order: the inbox's keyset cursor.
-- `source` names the log record a row came from (`{topic}:{offset}`): the consumer is
-- at-least-once, and the unique key makes a replayed batch insert nothing twice.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,   -- rowid alias, increasing
    recipient_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    actor_id      INTEGER,               -- no foreign key: a deleted actor leaves the row
    video_id      INTEGER,
    comment_id    INTEGER,
    text          TEXT,
    source        TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    read_at_ms    INTEGER
) STRICT;

CREATE INDEX notifications_recipient_idx ON notifications (recipient_id, id DESC);

-- Each user's unread count, kept in the transaction that inserts or reads notifications so
-- that requests never count rows.
CREATE TABLE notification_unread (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    unread  INTEGER NOT NULL DEFAULT 0 CHECK (unread >= 0)
) STRICT;
