//! The shared state every handler sees: configuration and the services behind the API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use quicktok_blob::BlobStore;
use quicktok_core::IdGenerator;
use quicktok_core::clock::SharedClock;
use quicktok_log::EventLog;
use quicktok_meta::MetaStore;
use quicktok_pipeline::ComplianceFilter;
use quicktok_pipeline::jobs::JobStore;
use quicktok_rank::{RankerHandle, ViewQualifier};
use quicktok_recommend::Recommender;
use quicktok_social::{CounterService, FeedConfig};

use crate::auth::{AuthService, TokenKeys, load_secret};
use crate::config::{ApiConfig, AuthConfig, FlagsConfig, RateLimitConfig};
use crate::error::ApiError;
use crate::flags::Flags;
use crate::media::{MediaConfig, MediaSigner};
use crate::notify::NotificationHub;
use crate::ratelimit::RateLimits;
use crate::upload::{UploadConfig, UploadService};

/// Everything the API needs to run, assembled by the binary.
#[derive(Clone)]
pub struct ApiDeps {
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub flags: FlagsConfig,
    pub media: MediaConfig,
    pub uploads: UploadConfig,
    pub data_dir: PathBuf,
    pub meta: MetaStore,
    pub log: Arc<dyn EventLog>,
    pub blobs: Arc<dyn BlobStore>,
    /// The trending lists, when this process runs the ranker role.
    pub trending: Option<RankerHandle>,
    /// Decides which view reports count.
    pub views: Arc<ViewQualifier>,
    pub clock: SharedClock,
    pub ids: Arc<IdGenerator>,
    /// The pipeline's jobs (the review queue and dead letters).
    pub jobs: Arc<dyn JobStore>,
    /// Likes, comments, shares, plays, followers, following.
    pub counters: Arc<CounterService>,
    /// The sensitive-word filter comments must pass.
    pub comment_filter: Arc<ComplianceFilter>,
    /// The For-You recommender of this node (`None`: the feed answers 503).
    pub recommender: Option<Arc<Recommender>>,
    /// The following feed's thresholds and bounds.
    pub feed: FeedConfig,
    /// The search index (`None`: search answers 503).
    pub search: Option<Arc<quicktok_search::SearchIndex>>,
}

struct Inner {
    api: ApiConfig,
    media: MediaConfig,
    meta: MetaStore,
    log: Arc<dyn EventLog>,
    blobs: Arc<dyn BlobStore>,
    signer: MediaSigner,
    trending: Option<RankerHandle>,
    views: Arc<ViewQualifier>,
    clock: SharedClock,
    auth: AuthService,
    rate_limits: RateLimits,
    flags: Flags,
    uploads: UploadService,
    ids: Arc<IdGenerator>,
    jobs: Arc<dyn JobStore>,
    counters: Arc<CounterService>,
    comment_filter: Arc<ComplianceFilter>,
    recommender: Option<Arc<Recommender>>,
    feed: FeedConfig,
    outboxes: crate::feed::FeedCache,
    /// When this node last wrote each user's last-seen time (see [`AppState::note_activity`]).
    activity: std::sync::Mutex<std::collections::HashMap<quicktok_core::Id, i64>>,
    search: Option<Arc<quicktok_search::SearchIndex>>,
    admins: Vec<String>,
    notifications: NotificationHub,
    data_dir: PathBuf,
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
        let secret = load_secret(&deps.auth, &deps.data_dir)?;
        let keys = TokenKeys::from_secret(&deps.auth, &secret)?;
        let uploads = UploadService::new(deps.uploads, &deps.data_dir).map_err(|e| {
            ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                quicktok_core::ErrorCode::Internal,
                e,
            )
        })?;
        let ids = deps.ids.clone();
        let admins = deps.auth.admins.clone();
        let auth = AuthService::new(
            deps.auth,
            keys,
            deps.meta.clone(),
            deps.log.clone(),
            deps.clock.clone(),
            deps.ids,
        )?;
        Ok(AppState(Arc::new(Inner {
            api: deps.api,
            media: deps.media,
            meta: deps.meta,
            log: deps.log,
            blobs: deps.blobs,
            signer: MediaSigner::from_secret(&secret),
            trending: deps.trending,
            views: deps.views,
            clock: deps.clock,
            auth,
            rate_limits: RateLimits::new(deps.rate_limit),
            flags: Flags::new(deps.flags),
            uploads,
            ids,
            jobs: deps.jobs,
            counters: deps.counters,
            comment_filter: deps.comment_filter,
            recommender: deps.recommender,
            feed: deps.feed,
            outboxes: crate::feed::FeedCache::default(),
            activity: std::sync::Mutex::default(),
            search: deps.search,
            admins,
            notifications: NotificationHub::default(),
            data_dir: deps.data_dir,
            started: Instant::now(),
        })))
    }

    pub fn api_config(&self) -> &ApiConfig {
        &self.0.api
    }
    pub fn meta(&self) -> &MetaStore {
        &self.0.meta
    }
    /// Live notification delivery on this node.
    pub fn notification_hub(&self) -> &NotificationHub {
        &self.0.notifications
    }
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.0.log
    }
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.0.blobs
    }
    pub fn media_config(&self) -> &MediaConfig {
        &self.0.media
    }
    pub fn media_signer(&self) -> &MediaSigner {
        &self.0.signer
    }
    pub fn trending(&self) -> Option<&RankerHandle> {
        self.0.trending.as_ref()
    }
    pub fn view_qualifier(&self) -> &ViewQualifier {
        &self.0.views
    }
    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }
    /// When media URLs signed now expire: at least the configured lifetime from now,
    /// rounded up to the next full hour so a URL stays the same for an hour and caches
    /// (browsers, CDNs) keep hitting.
    pub fn media_expiry(&self) -> i64 {
        let ttl = i64::try_from(self.0.media.url_ttl_secs).unwrap_or(i64::MAX / 2);
        let at = self.0.clock.now_secs().saturating_add(ttl);
        at.div_euclid(3600).saturating_add(1).saturating_mul(3600)
    }
    /// A signed media path for blob `id` (see [`AppState::media_expiry`]).
    pub fn media_path(&self, id: quicktok_core::Id) -> String {
        self.0.signer.path(id, self.media_expiry())
    }
    /// The pipeline's job store.
    pub fn jobs(&self) -> &Arc<dyn JobStore> {
        &self.0.jobs
    }
    /// The counter service.
    pub fn counters(&self) -> &CounterService {
        &self.0.counters
    }
    /// The sensitive-word filter for comments.
    pub fn recommender(&self) -> Option<&Arc<Recommender>> {
        self.0.recommender.as_ref()
    }

    pub fn comment_filter(&self) -> &ComplianceFilter {
        &self.0.comment_filter
    }
    /// The following feed's configuration.
    pub fn feed_config(&self) -> &FeedConfig {
        &self.0.feed
    }
    /// What this node's feed readers share (outbox heads, users known fresh).
    pub fn feed_cache(&self) -> &crate::feed::FeedCache {
        &self.0.outboxes
    }
    /// Records that `user` was seen now (the feed pushes to users seen recently). The store
    /// is written at most once per `social.feed.activity_write_interval_ms` per user and
    /// node, so the hot path is a map lookup; a failed write is logged and retried on the
    /// user's next request.
    pub fn note_activity(&self, user: quicktok_core::Id) {
        /// Users remembered before the map starts over (a burst of writes, then quiet).
        const REMEMBERED: usize = 200_000;
        let now = self.0.clock.now_ms();
        let interval = i64::try_from(self.0.feed.activity_write_interval_ms).unwrap_or(i64::MAX);
        {
            let mut written = self.0.activity.lock().unwrap_or_else(|e| e.into_inner());
            if written.get(&user).is_some_and(|&at| now.saturating_sub(at) < interval) {
                return;
            }
            if written.len() >= REMEMBERED {
                written.clear();
            }
            written.insert(user, now);
        }
        // Written off the request path: the request does not wait for a durable write (a
        // commit and its fsync). A feed read that runs first sees the old last-seen time and
        // rebuilds the inbox itself, so nothing depends on the order.
        let state = self.clone();
        tokio::spawn(async move {
            let inactive_before = state.0.feed.active_since(now);
            if let Err(e) = state.0.meta.feed().touch(user, now, inactive_before).await {
                tracing::warn!(%user, error = %e, "recording activity failed");
                state.0.activity.lock().unwrap_or_else(|e| e.into_inner()).remove(&user);
            }
        });
    }
    /// The search index, when this node has one.
    pub fn search(&self) -> Option<&Arc<quicktok_search::SearchIndex>> {
        self.0.search.as_ref()
    }
    /// Whether any admin is configured.
    pub fn has_admins(&self) -> bool {
        !self.0.admins.is_empty()
    }
    /// Whether `username` may use the admin endpoints.
    pub fn is_admin_name(&self, username: &str) -> bool {
        self.0.admins.iter().any(|a| a.trim().eq_ignore_ascii_case(username))
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
    /// Resumable uploads: configuration, partial files, locks.
    pub fn uploads(&self) -> &UploadService {
        &self.0.uploads
    }
    /// A new time-ordered id.
    pub fn next_id(&self) -> quicktok_core::Id {
        self.0.ids.next(self.0.clock.as_ref())
    }
    /// The node's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.0.data_dir
    }
    /// Removes expired unfinished uploads as of `now_ms` (see
    /// [`UploadService::cleanup_expired`]); the scheduler calls it periodically.
    pub async fn cleanup_expired_uploads(
        &self,
        now_ms: i64,
    ) -> Result<crate::upload::CleanupReport, ApiError> {
        self.0.uploads.cleanup_expired(self, now_ms).await
    }
    pub fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}
