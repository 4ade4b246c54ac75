-- Each user's followees kept as one stored value (F6.5): a feed read needs the whole list,
-- and one short row is far cheaper to read than a range of the follows key joined into text
-- on every read. Comma-separated ids in ascending order; written in the same transaction as
-- every follow, unfollow and block that changes the list (see `Social`), and rebuilt from
-- `follows` by `quicktok counters repair`. A user who follows nobody may have no row.
CREATE TABLE following_lists (
    user_id   BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    followees TEXT    NOT NULL
);

INSERT INTO following_lists (user_id, followees)
SELECT follower_id, string_agg(CAST(followee_id AS TEXT), ',' ORDER BY followee_id)
FROM follows GROUP BY follower_id;
