//! The account flows: register, login, refresh (rotation with reuse detection) and logout.

use std::sync::Arc;

use quicktok_core::clock::SharedClock;
use quicktok_core::{ErrorCode, Event, Id, IdGenerator};
use quicktok_log::{EventLog, NewRecord};
use quicktok_meta::{ConsumeOutcome, MetaError, MetaStore, NewRefreshToken, NewUser};
use serde::Serialize;

use super::tokens::{new_refresh_token, refresh_token_digest};
use super::username::{check_password, normalize_username};
use super::{AccessClaims, AuthConfig, PasswordHasher, TokenKeys};
use crate::error::ApiError;

/// The public part of a user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicUser {
    pub id: Id,
    pub username: String,
}

/// A signed-in session as answered by register, login and refresh.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub user: PublicUser,
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Account flows over the metadata store, publishing account events to the log.
#[derive(Clone)]
pub struct AuthService {
    cfg: AuthConfig,
    meta: MetaStore,
    log: Arc<dyn EventLog>,
    clock: SharedClock,
    ids: Arc<IdGenerator>,
    hasher: PasswordHasher,
    keys: TokenKeys,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("cfg", &self.cfg.issuer).finish_non_exhaustive()
    }
}

impl AuthService {
    pub fn new(
        cfg: AuthConfig,
        keys: TokenKeys,
        meta: MetaStore,
        log: Arc<dyn EventLog>,
        clock: SharedClock,
        ids: Arc<IdGenerator>,
    ) -> Result<Self, ApiError> {
        let hasher = PasswordHasher::new(&cfg)?;
        Ok(AuthService { cfg, meta, log, clock, ids, hasher, keys })
    }

    /// Verifies an access token.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.keys.verify(token)
    }

    /// Creates an account and signs it in. Usernames listed in `auth.admins` are reserved:
    /// whoever registered one first would be an administrator, so only the operator creates
    /// them ([`AuthService::register_admin`], `quicktok user add-admin`).
    pub async fn register(&self, username: &str, password: String) -> Result<Session, ApiError> {
        let username = normalize_username(username).map_err(ApiError::validation)?;
        if self.cfg.admins.iter().any(|a| a.trim().eq_ignore_ascii_case(&username)) {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this username is reserved for an administrator",
            ));
        }
        self.create(username, password).await
    }

    /// Creates the account of an administrator listed in `auth.admins` (the operator's
    /// path: the CLI, the test kit) and signs it in.
    pub async fn register_admin(
        &self,
        username: &str,
        password: String,
    ) -> Result<Session, ApiError> {
        let username = normalize_username(username).map_err(ApiError::validation)?;
        if !self.cfg.admins.iter().any(|a| a.trim().eq_ignore_ascii_case(&username)) {
            return Err(ApiError::validation(format!("{username} is not listed in auth.admins")));
        }
        self.create(username, password).await
    }

    async fn create(&self, username: String, password: String) -> Result<Session, ApiError> {
        check_password(&password).map_err(ApiError::validation)?;
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now_ms();
        let id = self.ids.next(self.clock.as_ref());
        let user = self
            .meta
            .users()
            .create(NewUser { id, username: username.clone(), password_hash, created_at_ms: now })
            .await
            .map_err(|e| match e {
                MetaError::Conflict { .. } => {
                    ApiError::conflict(ErrorCode::UsernameTaken, "this username is taken")
                }
                other => other.into(),
            })?;
        self.publish(Event::UserRegistered { user_id: user.id, username, at_ms: now }).await?;
        self.new_session(user.id, user.username, self.ids.next(self.clock.as_ref())).await
    }

    /// Signs in with a password. Unknown users and wrong passwords take the same path (one
    /// argon2 evaluation) and get the same answer.
    pub async fn login(&self, username: &str, password: String) -> Result<Session, ApiError> {
        let user = match normalize_username(username) {
            Ok(name) => self.meta.users().by_username(&name).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password, stored).await?;
        let user = match user {
            Some(user) if ok => user,
            _ => {
                return Err(ApiError::unauthorized(
                    ErrorCode::InvalidCredentials,
                    "wrong username or password",
                ));
            }
        };
        let now = self.clock.now_ms();
        self.publish(Event::UserLoggedIn { user_id: user.id, at_ms: now }).await?;
        self.new_session(user.id, user.username, self.ids.next(self.clock.as_ref())).await
    }

    /// Trades a refresh token for a new pair. Each refresh token works once; presenting a
    /// used one again means it was stolen (or replayed), so its whole family is revoked.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, ApiError> {
        let now = self.clock.now_ms();
        let digest = refresh_token_digest(refresh_token);
        match self.meta.refresh_tokens().consume(&digest, now).await? {
            ConsumeOutcome::Valid { user_id, family_id } => {
                let user = self.meta.users().by_id(user_id).await?.ok_or_else(|| {
                    ApiError::unauthorized(ErrorCode::InvalidToken, "account no longer exists")
                })?;
                self.new_session(user.id, user.username, family_id).await
            }
            ConsumeOutcome::Reused { user_id, family_id } => {
                tracing::warn!(%user_id, %family_id, "refresh token reused: family revoked");
                self.publish(Event::RefreshTokenReused { user_id, family_id, at_ms: now }).await?;
                Err(ApiError::unauthorized(
                    ErrorCode::TokenReused,
                    "refresh token was already used; the session has been revoked",
                ))
            }
            ConsumeOutcome::Expired => {
                Err(ApiError::unauthorized(ErrorCode::TokenExpired, "refresh token has expired"))
            }
            ConsumeOutcome::Revoked | ConsumeOutcome::NotFound => {
                Err(ApiError::unauthorized(ErrorCode::InvalidToken, "invalid refresh token"))
            }
        }
    }

    /// Ends sessions: the family of `refresh_token` when given (it must belong to the user),
    /// otherwise every session of the user. Access tokens already issued stay valid until
    /// they expire (`access_ttl_secs`).
    pub async fn logout(&self, user_id: Id, refresh_token: Option<&str>) -> Result<(), ApiError> {
        let now = self.clock.now_ms();
        let tokens = self.meta.refresh_tokens();
        match refresh_token {
            Some(token) => {
                let digest = refresh_token_digest(token);
                // Someone else's token is ignored rather than revealed.
                if let Some(owner) = tokens.owner(&digest).await?
                    && owner.user_id == user_id
                {
                    tokens.revoke_family(owner.family_id, now).await?;
                }
            }
            None => {
                tokens.revoke_all_for_user(user_id, now).await?;
            }
        }
        Ok(())
    }

    async fn new_session(
        &self,
        user_id: Id,
        username: String,
        family_id: Id,
    ) -> Result<Session, ApiError> {
        let now = self.clock.now_ms();
        let (refresh_token, token_hash) = new_refresh_token();
        let ttl_ms =
            i64::try_from(self.cfg.refresh_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.meta
            .refresh_tokens()
            .insert(NewRefreshToken {
                token_hash,
                user_id,
                family_id,
                created_at_ms: now,
                expires_at_ms: now.saturating_add(ttl_ms),
            })
            .await?;
        let access_token =
            self.keys.issue(user_id, now.div_euclid(1000), self.cfg.access_ttl_secs)?;
        Ok(Session {
            user: PublicUser { id: user_id, username },
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_ttl_secs,
        })
    }

    async fn publish(&self, event: Event) -> Result<(), ApiError> {
        let record = NewRecord { timestamp_ms: event.at_ms(), payload: event.encode() };
        self.log.append(event.topic(), vec![record]).await?;
        Ok(())
    }
}
