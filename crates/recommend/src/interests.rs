//! Short-term interests: what a user engaged with in the last hour (completions, likes,
//! comments, shares, skips), turned into tag and creator weights and a list of recent
//! positive clips. Updated per event (the consumer applies each within a second); every
//! read is relative to a `now_ms` the caller passes, so expiry is exact and testable.

use std::collections::{HashMap, VecDeque};

/// What the user did with a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Watched to (nearly) the end.
    Completed,
    Liked,
    Commented,
    Shared,
    /// Swiped away early.
    Skipped,
    /// Watched part of it: no interest either way, but seen.
    Watched,
}

impl Signal {
    /// How much the signal says about interest (negative: disinterest).
    pub fn weight(self) -> f64 {
        match self {
            Signal::Completed => 1.0,
            Signal::Liked => 2.0,
            Signal::Commented => 1.5,
            Signal::Shared => 2.0,
            Signal::Skipped => -1.0,
            Signal::Watched => 0.0,
        }
    }
}

/// One engagement event as the interest tracker keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    pub video: u64,
    pub author: u64,
    pub tags: Vec<String>,
    pub signal: Signal,
    pub at_ms: i64,
}

/// Tracker settings.
#[derive(Debug, Clone, Copy)]
pub struct InterestParams {
    /// Events older than this are forgotten (the seed's "last hour").
    pub window_ms: i64,
    /// Weight halves every this many ms inside the window (recent events count more).
    pub half_life_ms: i64,
    /// Events kept per user (the newest).
    pub max_events: usize,
}

impl Default for InterestParams {
    fn default() -> Self {
        InterestParams { window_ms: 3_600_000, half_life_ms: 900_000, max_events: 200 }
    }
}

/// A user's interests right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interests {
    /// Decayed signal weight per tag (negative: skipped more than engaged).
    pub tags: HashMap<String, f64>,
    pub authors: HashMap<u64, f64>,
    /// Clips engaged with positively, newest first (seeds for item-item candidates).
    pub positives: Vec<u64>,
}

impl Interests {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.authors.is_empty() && self.positives.is_empty()
    }

    /// Affinity of a clip by `author` with `tags` under these interests.
    pub fn affinity(&self, author: u64, tags: &[String]) -> f64 {
        let tag: f64 = tags.iter().filter_map(|t| self.tags.get(t)).sum();
        tag + self.authors.get(&author).copied().unwrap_or(0.0)
    }
}

/// Every user's recent engagement.
#[derive(Debug, Default)]
pub struct ShortTermInterests {
    params: InterestParams,
    users: HashMap<u64, VecDeque<Engagement>>,
}

impl ShortTermInterests {
    pub fn new(params: InterestParams) -> Self {
        ShortTermInterests { params, users: HashMap::new() }
    }

    /// Records one event of `user`.
    pub fn record(&mut self, user: u64, event: Engagement) {
        let events = self.users.entry(user).or_default();
        // Events usually arrive in order; keep the deque sorted when they do not.
        let at = events.partition_point(|e| e.at_ms <= event.at_ms);
        events.insert(at, event);
        while events.len() > self.params.max_events {
            events.pop_front();
        }
    }

    /// The user's interests at `now_ms` (events in `(now - window, now]`).
    pub fn interests(&self, user: u64, now_ms: i64) -> Interests {
        let mut out = Interests::default();
        let Some(events) = self.users.get(&user) else { return out };
        let since = now_ms - self.params.window_ms;
        let half_life = self.params.half_life_ms.max(1) as f64;
        for e in events.iter().rev().filter(|e| e.at_ms > since && e.at_ms <= now_ms) {
            let age = (now_ms - e.at_ms) as f64;
            let w = e.signal.weight() * 0.5f64.powf(age / half_life);
            for t in &e.tags {
                *out.tags.entry(t.clone()).or_default() += w;
            }
            *out.authors.entry(e.author).or_default() += w;
            if w > 0.0 && !out.positives.contains(&e.video) {
                out.positives.push(e.video);
            }
        }
        out
    }

    /// Drops users whose newest event left the window (bounded memory).
    pub fn prune(&mut self, now_ms: i64) {
        let since = now_ms - self.params.window_ms;
        self.users.retain(|_, events| events.back().is_some_and(|e| e.at_ms > since));
    }

    /// Users tracked now.
    pub fn users(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(video: u64, author: u64, tag: &str, signal: Signal, at_ms: i64) -> Engagement {
        Engagement { video, author, tags: vec![tag.into()], signal, at_ms }
    }

    #[test]
    fn recent_engagement_becomes_interest_and_expires_exactly() {
        let mut t = ShortTermInterests::new(InterestParams::default());
        t.record(1, event(10, 100, "cats", Signal::Liked, 1_000));
        t.record(1, event(11, 101, "news", Signal::Skipped, 2_000));
        let now = 2_000;
        let i = t.interests(1, now);
        assert!(i.tags["cats"] > 0.0 && i.tags["news"] < 0.0);
        assert_eq!(i.positives, vec![10]);
        assert!(i.affinity(100, &["cats".into()]) > i.affinity(101, &["news".into()]));
        // The window is (now - window, now]: the like at 1 000 counts until 1 000 + window.
        let window = InterestParams::default().window_ms;
        assert!(t.interests(1, 1_000 + window - 1).tags.contains_key("cats"));
        assert!(!t.interests(1, 1_000 + window).tags.contains_key("cats"));
        t.prune(2_000 + window);
        assert_eq!(t.users(), 0);
    }

    #[test]
    fn newer_events_weigh_more_and_memory_is_bounded() {
        let params = InterestParams { max_events: 3, ..InterestParams::default() };
        let mut t = ShortTermInterests::new(params);
        t.record(1, event(1, 1, "old", Signal::Completed, 0));
        t.record(1, event(2, 2, "new", Signal::Completed, 1_800_000));
        let i = t.interests(1, 1_800_000);
        assert!(i.tags["new"] > i.tags["old"] * 3.0, "{:?}", i.tags);
        assert_eq!(i.positives, vec![2, 1]);
        for n in 0..10 {
            t.record(1, event(100 + n, 3, "x", Signal::Completed, 1_800_001 + n as i64));
        }
        let i = t.interests(1, 1_800_100);
        assert_eq!(i.positives.len(), 3);
        assert!(!i.tags.contains_key("old"));
    }
}
