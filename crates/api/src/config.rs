//! The API's configuration sections: `[api]`, `[rate_limit]` and `[flags]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::auth::AuthConfig;
pub use crate::flags::FlagRule;
pub use crate::media::MediaConfig;

/// The `[api]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest JSON request body accepted, bytes (uploads use tus, not JSON).
    pub max_json_body_bytes: usize,
    /// A request still running after this many seconds is answered 408.
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS. Empty: any origin (safe because the API authenticates with
    /// bearer tokens, never cookies).
    pub cors_allowed_origins: Vec<String>,
    /// Take the client address from the first `X-Forwarded-For` hop. Only enable behind a
    /// proxy that sets it, or clients can pick their own rate-limit bucket.
    pub trust_forwarded_for: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_json_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            cors_allowed_origins: Vec::new(),
            trust_forwarded_for: false,
        }
    }
}

/// The `[rate_limit]` section: token buckets per client address, per signed-in user, and a
/// stricter one per address for the password endpoints. A rate of 0 disables that bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Sustained requests per second per client address.
    pub ip_per_second: u32,
    /// Bucket size per client address.
    pub ip_burst: u32,
    /// Sustained requests per second per signed-in user.
    pub user_per_second: u32,
    /// Bucket size per signed-in user.
    pub user_burst: u32,
    /// Register / login / refresh attempts per minute per client address (slows password
    /// guessing).
    pub auth_per_minute: u32,
    /// Bucket size for the password endpoints.
    pub auth_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            ip_per_second: 50,
            ip_burst: 200,
            user_per_second: 20,
            user_burst: 100,
            auth_per_minute: 20,
            auth_burst: 10,
        }
    }
}

/// The `[flags]` section: gray-release flags by name.
pub type FlagsConfig = BTreeMap<String, FlagRule>;
