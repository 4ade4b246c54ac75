-- Private videos: only the author (and admins) may see or play them; public listings
-- (newest, by tag, trending lists built from them) leave them out.
-- STRICT SQLite has no BOOLEAN: 0 or 1, enforced.

ALTER TABLE videos ADD COLUMN private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1));
