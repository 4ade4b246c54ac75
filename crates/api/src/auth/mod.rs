//! Accounts and sessions: password hashing, access tokens (JWT), rotating refresh tokens and
//! the register / login / refresh / logout flows.

mod password;
pub mod service;
mod tokens;
pub mod username;

pub use password::PasswordHasher;
pub use service::{AuthService, Session};
pub use tokens::{AccessClaims, TokenKeys, load_secret};

use serde::{Deserialize, Serialize};

/// The `[auth]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `iss` claim of issued access tokens; tokens with another issuer are refused.
    pub issuer: String,
    /// `aud` claim of issued access tokens; tokens for another audience are refused.
    pub audience: String,
    /// Lifetime of an access token, seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, seconds (each refresh issues a new one).
    pub refresh_ttl_secs: u64,
    /// HMAC secret for HS256 access tokens (at least 32 bytes). Empty: a random secret is
    /// generated once and kept in `<data_dir>/jwt-secret` (set it explicitly when several
    /// API nodes must accept each other's tokens).
    pub jwt_secret: String,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// Argon2id parallelism (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; each holds `argon2_memory_kib` of memory, so this
    /// bounds memory under a login flood.
    pub max_concurrent_hashes: u32,
    /// Usernames allowed to use the moderation and operator endpoints (`/api/v1/admin`).
    pub admins: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "quicktok".into(),
            audience: "quicktok-api".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            jwt_secret: String::new(),
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 4,
            admins: Vec::new(),
        }
    }
}
