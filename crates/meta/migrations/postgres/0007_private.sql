-- Private videos: only the author (and admins) may see or play them; public listings
-- (newest, by tag, trending lists built from them) leave them out.

ALTER TABLE videos ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;
