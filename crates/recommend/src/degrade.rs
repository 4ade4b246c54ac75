//! Graceful degradation (F7.3): from the recommender's health right now, which parts a
//! request may use and what its answer's `degraded` field says. Nothing here latches:
//! every request is planned from the current health, so recovery is automatic.

/// Why an answer is degraded, most severe first (the answer names the most severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Degraded {
    /// The candidate index or the store is unhealthy: the cached trending list is served.
    TrendingFallback,
    /// Too many requests in flight: shorter lists, related videos shed.
    Overloaded,
    /// Real-time interests lag the event log: offline interests plus the cached
    /// short-term ones are used.
    RealtimeStale,
}

impl Degraded {
    /// The value of the answer's `degraded` field and the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::TrendingFallback => "trending_fallback",
            Degraded::Overloaded => "overloaded",
            Degraded::RealtimeStale => "realtime_stale",
        }
    }
}

/// Thresholds.
#[derive(Debug, Clone, Copy)]
pub struct DegradeParams {
    /// Real-time interests older than this (behind the log) count as stale.
    pub max_realtime_lag_ms: i64,
    /// Requests in flight above this mean overload.
    pub max_in_flight: usize,
    pub page_size: usize,
    pub overloaded_page_size: usize,
}

impl Default for DegradeParams {
    fn default() -> Self {
        DegradeParams {
            max_realtime_lag_ms: 5_000,
            max_in_flight: 64,
            page_size: 50,
            overloaded_page_size: 20,
        }
    }
}

/// The recommender's health as measured for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// How far the interest consumer is behind the newest event.
    pub realtime_lag_ms: i64,
    pub candidates_healthy: bool,
    /// Requests being served now, this one included.
    pub in_flight: usize,
}

/// What one request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every active degradation, most severe first.
    pub reasons: Vec<Degraded>,
    pub page_size: usize,
    /// Use the live short-term interests (else the last good copy).
    pub live_short_term: bool,
    /// Use the candidate sources (else the cached trending list only).
    pub candidates: bool,
    /// Serve related-video requests (shed first under overload).
    pub related: bool,
}

impl Plan {
    /// The answer's `degraded` field: the most severe reason, or none.
    pub fn degraded(&self) -> Option<&'static str> {
        self.reasons.first().map(|d| d.as_str())
    }
}

/// The plan for a request under `health`.
pub fn plan(params: &DegradeParams, health: Health) -> Plan {
    let mut reasons = Vec::new();
    if !health.candidates_healthy {
        reasons.push(Degraded::TrendingFallback);
    }
    let overloaded = health.in_flight > params.max_in_flight;
    if overloaded {
        reasons.push(Degraded::Overloaded);
    }
    let stale = health.realtime_lag_ms > params.max_realtime_lag_ms;
    if stale {
        reasons.push(Degraded::RealtimeStale);
    }
    Plan {
        reasons,
        page_size: if overloaded { params.overloaded_page_size } else { params.page_size },
        live_short_term: !stale,
        candidates: health.candidates_healthy,
        related: !overloaded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: Health = Health { realtime_lag_ms: 0, candidates_healthy: true, in_flight: 1 };

    #[test]
    fn healthy_is_not_degraded() {
        let p = plan(&DegradeParams::default(), HEALTHY);
        assert_eq!(p.degraded(), None);
        assert_eq!(p.page_size, 50);
        assert!(p.live_short_term && p.candidates && p.related);
    }

    #[test]
    fn each_level_and_its_recovery() {
        let params = DegradeParams::default();
        let stale = plan(&params, Health { realtime_lag_ms: 5_001, ..HEALTHY });
        assert_eq!(stale.degraded(), Some("realtime_stale"));
        assert!(!stale.live_short_term && stale.candidates);
        // Exactly at the threshold is still fresh.
        assert_eq!(plan(&params, Health { realtime_lag_ms: 5_000, ..HEALTHY }).degraded(), None);

        let down = plan(&params, Health { candidates_healthy: false, ..HEALTHY });
        assert_eq!(down.degraded(), Some("trending_fallback"));
        assert!(!down.candidates);

        let busy = plan(&params, Health { in_flight: 65, ..HEALTHY });
        assert_eq!(busy.degraded(), Some("overloaded"));
        assert_eq!(busy.page_size, 20);
        assert!(!busy.related);

        let all = plan(
            &params,
            Health { realtime_lag_ms: 9_000, candidates_healthy: false, in_flight: 100 },
        );
        assert_eq!(
            all.reasons,
            vec![Degraded::TrendingFallback, Degraded::Overloaded, Degraded::RealtimeStale]
        );
        // Recovery: the next request under good health is whole again.
        assert_eq!(plan(&params, HEALTHY).degraded(), None);
    }
}
