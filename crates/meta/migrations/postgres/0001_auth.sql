-- Accounts and refresh tokens (the auth foundation).
-- Ids are Snowflake ids stored as signed 64-bit integers; times are Unix milliseconds.
-- Unqualified names: objects land in the first schema of the search_path, so tests (and
-- deployments) can keep the store in a schema of their own.

CREATE TABLE users (
    id            BIGINT PRIMARY KEY,
    username      TEXT   NOT NULL,       -- stored normalised (lowercase)
    password_hash TEXT   NOT NULL,       -- PHC string
    display_name  TEXT,
    created_at_ms BIGINT NOT NULL,
    -- Usernames are unique in their stored (normalised) form. The name is matched by the
    -- crate to report which value conflicted.
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE refresh_tokens (
    token_hash    BYTEA  PRIMARY KEY,    -- SHA-256 of the token; the token itself is never stored
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id     BIGINT NOT NULL,       -- one login session: all tokens rotated from one sign-in
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT,                -- set when rotated; a second use means theft
    revoked_at_ms BIGINT
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
-- For housekeeping deletes of expired tokens.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at_ms);
