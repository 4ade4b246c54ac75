//! Token-bucket rate limits (GCRA, via `governor`) per client address, per signed-in user and
//! for the password endpoints; answers 429 with `Retry-After` and `RateLimit-*` headers.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderValue, StatusCode};
use quicktok_core::{ErrorCode, Id};

use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::extract::{AuthUser, bearer_token};
use crate::state::AppState;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One keyed bucket set with the numbers it reports in headers.
struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: Keyed<K>,
    burst: u32,
    /// Seconds a full bucket takes to refill, for `RateLimit-Reset`.
    refill_secs: u64,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(quota: Option<Quota>, burst: u32) -> Option<Self> {
        let quota = quota?;
        let refill = quota.replenish_interval().saturating_mul(burst);
        Some(Bucket {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            burst,
            refill_secs: refill.as_secs().max(1),
        })
    }

    fn check(&self, key: &K) -> Result<u32, Duration> {
        match self.limiter.check_key(key) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => Err(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

/// All rate limiters of one API node.
pub struct RateLimits {
    cfg: RateLimitConfig,
    per_ip: Option<Bucket<IpAddr>>,
    per_user: Option<Bucket<Id>>,
    auth: Option<Bucket<IpAddr>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("cfg", &self.cfg).finish()
    }
}

fn per_second(rate: u32, burst: u32) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(rate)?).allow_burst(NonZeroU32::new(burst.max(1))?))
}

fn per_minute(rate: u32, burst: u32) -> Option<Quota> {
    Some(Quota::per_minute(NonZeroU32::new(rate)?).allow_burst(NonZeroU32::new(burst.max(1))?))
}

impl RateLimits {
    pub fn new(cfg: RateLimitConfig) -> Self {
        let on = cfg.enabled;
        RateLimits {
            per_ip: on
                .then(|| Bucket::new(per_second(cfg.ip_per_second, cfg.ip_burst), cfg.ip_burst))
                .flatten(),
            per_user: on
                .then(|| {
                    Bucket::new(per_second(cfg.user_per_second, cfg.user_burst), cfg.user_burst)
                })
                .flatten(),
            auth: on
                .then(|| {
                    Bucket::new(per_minute(cfg.auth_per_minute, cfg.auth_burst), cfg.auth_burst)
                })
                .flatten(),
            cfg,
        }
    }

    /// Forgets buckets that are full again, bounding memory to recently active clients.
    pub fn housekeeping(&self) {
        if let Some(b) = &self.per_ip {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
        if let Some(b) = &self.per_user {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
        if let Some(b) = &self.auth {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
    }
}

/// The headers describing the bucket that decided a request.
struct Verdict {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

fn limited(limit: u32, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many requests, retry in {secs} s"),
    )
    .into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
    headers.insert("ratelimit-reset", HeaderValue::from(secs));
    response
}

fn check<K: std::hash::Hash + Eq + Clone>(
    bucket: &Option<Bucket<K>>,
    key: &K,
    verdict: &mut Option<Verdict>,
) -> Result<(), Box<Response>> {
    let Some(bucket) = bucket else { return Ok(()) };
    match bucket.check(key) {
        Ok(remaining) => {
            // Report the tightest bucket.
            if verdict.as_ref().is_none_or(|v| remaining < v.remaining) {
                *verdict = Some(Verdict {
                    limit: bucket.burst,
                    remaining,
                    reset_secs: bucket.refill_secs,
                });
            }
            Ok(())
        }
        Err(wait) => Err(Box::new(limited(bucket.burst, wait))),
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when the proxy
/// in front is trusted.
pub fn client_ip(
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Middleware applying the limits to every request.
pub async fn rate_limit(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = state.rate_limits();
    if !limits.cfg.enabled {
        return next.run(request).await;
    }
    let mut verdict = None;
    let ip =
        client_ip(request.headers(), request.extensions(), state.api_config().trust_forwarded_for);
    if let Some(ip) = ip {
        if let Err(r) = check(&limits.per_ip, &ip, &mut verdict) {
            return *r;
        }
        if request.uri().path().starts_with("/api/v1/auth/")
            && let Err(r) = check(&limits.auth, &ip, &mut verdict)
        {
            return *r;
        }
    }
    // A valid token puts the request in its user's bucket too; an invalid one is left for
    // the handler to refuse.
    let (mut parts, body) = request.into_parts();
    let user = bearer_token(&parts).and_then(|t| state.auth().verify_access_token(t).ok());
    if let Some(claims) = user {
        parts.extensions.insert(AuthUser { id: claims.user_id });
        if let Err(r) = check(&limits.per_user, &claims.user_id, &mut verdict) {
            return *r;
        }
    }
    request = Request::from_parts(parts, body);
    let mut response = next.run(request).await;
    if let Some(v) = verdict {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(v.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(v.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(v.reset_secs));
    }
    response
}
