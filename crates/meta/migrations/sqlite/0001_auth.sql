-- Accounts and refresh tokens (the auth foundation).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- STRICT makes SQLite enforce the declared column types, as PostgreSQL does.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,   -- rowid alias: the Snowflake id itself, no extra index
    username      TEXT    NOT NULL,      -- stored normalised (lowercase)
    password_hash TEXT    NOT NULL,      -- PHC string
    display_name  TEXT,
    created_at_ms INTEGER NOT NULL
) STRICT;

-- Usernames are unique in their stored (normalised) form.
CREATE UNIQUE INDEX users_username_key ON users (username);

CREATE TABLE refresh_tokens (
    token_hash    BLOB    PRIMARY KEY,   -- SHA-256 of the token; the token itself is never stored
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id     INTEGER NOT NULL,      -- one login session: all tokens rotated from one sign-in
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,               -- set when rotated; a second use means theft
    revoked_at_ms INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
-- For housekeeping deletes of expired tokens.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at_ms);
