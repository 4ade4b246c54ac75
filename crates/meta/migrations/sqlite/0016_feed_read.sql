-- The following feed's read path without per-row probes (F6.5): the celebrities (creators
-- with many followers, pulled at read time) are found through a small partial index instead
-- of a join per followee, and an inbox page is read from one covering index.

-- Only users' follower counts, the one counter the feed asks "at least N?" of.
CREATE INDEX counters_user_followers_idx ON counters (value)
    WHERE subject = 'user' AND metric = 'followers';

-- The inbox page with its author, read without touching the table.
CREATE INDEX feed_inbox_page_idx ON feed_inbox (user_id, at_ms DESC, video_id DESC, author_id);
DROP INDEX feed_inbox_user_at_idx;
