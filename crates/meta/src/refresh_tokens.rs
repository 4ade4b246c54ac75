//! The `refresh_tokens` table: rotation of single-use refresh tokens with reuse detection.
//!
//! Each sign-in starts a family; every refresh consumes the presented token and the caller
//! inserts its successor in the same family. Presenting an already-used token means it was
//! copied, so the whole family (the thief's and the victim's sessions alike) is revoked.

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation, unique_violation};
use crate::store::{MetaStore, with_pool};

/// What [`RefreshTokens::insert`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// SHA-256 of the token (32 bytes); the token itself is never stored.
    pub token_hash: Vec<u8>,
    pub user_id: Id,
    pub family_id: Id,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The token was live and is now used: issue its successor in `family_id`.
    Valid { user_id: Id, family_id: Id },
    /// The token had been used before: the whole family has been revoked.
    Reused { user_id: Id, family_id: Id },
    /// The token (or its family) was revoked earlier.
    Revoked,
    /// The token expired unused.
    Expired,
    /// No such token (never issued, or deleted by housekeeping).
    NotFound,
}

/// Who a refresh token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: Id,
    pub family_id: Id,
}

#[derive(sqlx::FromRow)]
struct TokenState {
    user_id: i64,
    family_id: i64,
    used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    expires_at_ms: i64,
}

/// Repository for refresh tokens; get one from [`MetaStore::refresh_tokens`].
#[derive(Debug, Clone, Copy)]
pub struct RefreshTokens<'a> {
    store: &'a MetaStore,
}

impl<'a> RefreshTokens<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        RefreshTokens { store }
    }

    /// Stores a new token. [`MetaError::Conflict`] (`"token_hash"`) if the hash exists,
    /// [`MetaError::NotFound`] if the user does not.
    pub async fn insert(&self, new: NewRefreshToken) -> Result<()> {
        let result = with_pool!(self.store, |pool| {
            sqlx::query(
                "INSERT INTO refresh_tokens \
                 (token_hash, user_id, family_id, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.token_hash)
            .bind(new.user_id.as_i64())
            .bind(new.family_id.as_i64())
            .bind(new.created_at_ms)
            .bind(new.expires_at_ms)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if unique_violation(&e).is_some() => {
                Err(MetaError::Conflict { what: "token_hash" })
            }
            Err(e) if is_foreign_key_violation(&e) => Err(MetaError::NotFound),
            Err(e) => Err(db(e)),
        }
    }

    /// Presents a token: marks it used if it is live, and revokes its family if it had been
    /// used already. Of any number of concurrent calls with one live token, exactly one
    /// returns [`ConsumeOutcome::Valid`].
    ///
    /// A token that is both revoked and used reports `Revoked` (its family is already dead);
    /// one that is used and expired reports `Reused`, since replaying an old token is still
    /// a sign of theft.
    pub async fn consume(&self, token_hash: &[u8], now_ms: i64) -> Result<ConsumeOutcome> {
        // The conditional update is the whole check-and-set in one statement: PostgreSQL
        // row-locks and re-checks the WHERE clause for a concurrent updater, SQLite runs
        // writers one at a time. Only one caller can see the row come back.
        let claimed = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
                "UPDATE refresh_tokens SET used_at_ms = $1 \
                 WHERE token_hash = $2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL \
                 AND expires_at_ms > $1 \
                 RETURNING user_id, family_id",
            )
            .bind(now_ms)
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(db)?;
        if let Some((user_id, family_id)) = claimed {
            return Ok(ConsumeOutcome::Valid {
                user_id: Id::from_i64(user_id),
                family_id: Id::from_i64(family_id),
            });
        }

        // Not claimable: find out why. The flags only ever go from NULL to set, so what we
        // read now is at least as final as what made the update miss.
        let state = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, TokenState>(
                "SELECT user_id, family_id, used_at_ms, revoked_at_ms, expires_at_ms \
                 FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(db)?;
        let Some(state) = state else {
            return Ok(ConsumeOutcome::NotFound);
        };
        if state.revoked_at_ms.is_some() {
            return Ok(ConsumeOutcome::Revoked);
        }
        if state.used_at_ms.is_some() {
            let user_id = Id::from_i64(state.user_id);
            let family_id = Id::from_i64(state.family_id);
            let revoked = self.revoke_family(family_id, now_ms).await?;
            tracing::warn!(%user_id, %family_id, revoked, "refresh token reused; family revoked");
            return Ok(ConsumeOutcome::Reused { user_id, family_id });
        }
        if state.expires_at_ms <= now_ms {
            return Ok(ConsumeOutcome::Expired);
        }
        // Only reachable if the token was inserted between the two statements; it did not
        // exist when we tried to claim it.
        Ok(ConsumeOutcome::NotFound)
    }

    /// The owner and family of a token, whatever its state (logout uses it to end the
    /// session a token belongs to after checking it is the caller's).
    pub async fn owner(&self, token_hash: &[u8]) -> Result<Option<TokenOwner>> {
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(db)?;
        Ok(row.map(|(user_id, family_id)| TokenOwner {
            user_id: Id::from_i64(user_id),
            family_id: Id::from_i64(family_id),
        }))
    }

    /// Revokes every not-yet-revoked token of a family (sign-out of one session). Returns
    /// how many tokens were newly revoked.
    pub async fn revoke_family(&self, family_id: Id, now_ms: i64) -> Result<u64> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at_ms = $1 \
                 WHERE family_id = $2 AND revoked_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(family_id.as_i64())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        done.map_err(db)
    }

    /// Revokes every not-yet-revoked token of a user (sign-out everywhere, password change).
    /// Returns how many tokens were newly revoked.
    pub async fn revoke_all_for_user(&self, user_id: Id, now_ms: i64) -> Result<u64> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at_ms = $1 \
                 WHERE user_id = $2 AND revoked_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(user_id.as_i64())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        done.map_err(db)
    }

    /// Deletes tokens that expired before `before_ms`, used or not. Once deleted, replaying
    /// one reports `NotFound` rather than `Reused`, so callers may want to keep a margin.
    /// Returns how many were deleted.
    pub async fn delete_expired(&self, before_ms: i64) -> Result<u64> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        done.map_err(db)
    }
}
