//! The shared state every handler sees: configuration and the services behind the API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use quicktok_core::IdGenerator;
use quicktok_core::clock::SharedClock;
use quicktok_log::EventLog;
use quicktok_meta::MetaStore;

use crate::auth::AuthService;
use crate::config::{ApiConfig, AuthConfig, FlagsConfig, RateLimitConfig};
use crate::error::ApiError;
use crate::flags::Flags;
use crate::ratelimit::RateLimits;

/// Everything the API needs to run, assembled by the binary.
#[derive(Clone)]
pub struct ApiDeps {
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub flags: FlagsConfig,
    pub data_dir: PathBuf,
    pub meta: MetaStore,
    pub log: Arc<dyn EventLog>,
    pub clock: SharedClock,
    pub ids: Arc<IdGenerator>,
}

struct Inner {
    api: ApiConfig,
    meta: MetaStore,
    log: Arc<dyn EventLog>,
    auth: AuthService,
    rate_limits: RateLimits,
    flags: Flags,
    started: Instant,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(deps: ApiDeps) -> Result<Self, ApiError> {
        let auth = AuthService::new(
            deps.auth,
            &deps.data_dir,
            deps.meta.clone(),
            deps.log.clone(),
            deps.clock,
            deps.ids,
        )?;
        Ok(AppState(Arc::new(Inner {
            api: deps.api,
            meta: deps.meta,
            log: deps.log,
            auth,
            rate_limits: RateLimits::new(deps.rate_limit),
            flags: Flags::new(deps.flags),
            started: Instant::now(),
        })))
    }

    pub fn api_config(&self) -> &ApiConfig {
        &self.0.api
    }
    pub fn meta(&self) -> &MetaStore {
        &self.0.meta
    }
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.0.log
    }
    pub fn auth(&self) -> &AuthService {
        &self.0.auth
    }
    pub fn rate_limits(&self) -> &RateLimits {
        &self.0.rate_limits
    }
    pub fn flags(&self) -> &Flags {
        &self.0.flags
    }
    pub fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}
