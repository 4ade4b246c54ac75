//! [`ViewQualifier`]: decides, in the API, whether a play counts as a view before it is
//! appended to the `views` topic. Pure logic over an injected [`quicktok_core::Clock`]; no IO.
//!
//! Rules, in order:
//! 1. **Watch time**: a play counts when `watched_ms >= min_watch_ms` (3 s), or, for a clip
//!    shorter than that, when the whole clip was watched (`watched_ms >= clip_ms`).
//! 2. **Dedup**: at most one counted view per (viewer, video) per `dedup_window_ms`
//!    (10 min), measured from the last *counted* view, so watching on a loop counts once
//!    per window rather than once per loop.
//!
//! Memory is bounded: at most `max_entries` (viewer, video) pairs are remembered, split over
//! independently locked stripes so concurrent requests rarely contend. Entries expire after
//! the window; when a stripe is full its oldest entry is evicted early, which can let one
//! duplicate through: the bound wins over perfect dedup, deliberately, so a flood of distinct
//! viewers cannot exhaust memory. Cost: about 60 bytes per remembered pair (map entry plus
//! expiry-queue entry).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use quicktok_core::Id;
use quicktok_core::clock::SharedClock;
use serde::{Deserialize, Serialize};

use crate::error::RankError;

const STRIPES: usize = 16;

/// Settings of [`ViewQualifier`]; every field optional in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualifierConfig {
    /// Minimum watch time for a play to count, milliseconds. Default 3000.
    pub min_watch_ms: u64,
    /// One counted view per (viewer, video) per this many milliseconds. Default 600000
    /// (10 minutes). 0 disables dedup.
    pub dedup_window_ms: u64,
    /// Most (viewer, video) pairs remembered for dedup. Default 1000000.
    pub max_entries: u64,
}

impl Default for QualifierConfig {
    fn default() -> Self {
        QualifierConfig { min_watch_ms: 3000, dedup_window_ms: 600_000, max_entries: 1_000_000 }
    }
}

impl QualifierConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<(), RankError> {
        if self.max_entries == 0 {
            return Err(RankError::Config("qualifier.max_entries must be at least 1".into()));
        }
        if i64::try_from(self.dedup_window_ms).is_err() {
            return Err(RankError::Config("qualifier.dedup_window_ms is too large".into()));
        }
        Ok(())
    }
}

/// The outcome of [`ViewQualifier::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counts: append it to the `views` topic.
    Qualified,
    /// Not watched long enough.
    TooShort,
    /// The same viewer's view of this video already counted within the dedup window.
    Duplicate,
}

type Key = (u64, Id);

#[derive(Default)]
struct Stripe {
    /// Time the pair's last view was counted.
    last: HashMap<Key, i64>,
    /// (counted at, key) in insertion order, for expiry and eviction; may hold stale entries
    /// for keys renewed since (checked against `last` when popped).
    queue: VecDeque<(i64, Key)>,
}

/// Decides whether plays count as views (see the module docs). Cheap to share: `&self`
/// methods, internally striped locks.
pub struct ViewQualifier {
    config: QualifierConfig,
    window_ms: i64,
    per_stripe: usize,
    clock: SharedClock,
    stripes: Box<[Mutex<Stripe>]>,
}

impl std::fmt::Debug for ViewQualifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewQualifier").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ViewQualifier {
    /// A qualifier reading time from `clock`.
    pub fn new(config: QualifierConfig, clock: SharedClock) -> Result<Self, RankError> {
        config.validate()?;
        let max = usize::try_from(config.max_entries).unwrap_or(usize::MAX);
        Ok(ViewQualifier {
            window_ms: i64::try_from(config.dedup_window_ms).unwrap_or(i64::MAX),
            per_stripe: max.div_ceil(STRIPES).max(1),
            config,
            clock,
            stripes: (0..STRIPES).map(|_| Mutex::new(Stripe::default())).collect(),
        })
    }

    /// Whether a play of `clip_ms` (if known) by `viewer` (a user id, or a stable hash of an
    /// anonymous device) of `video`, watched for `watched_ms`, counts. A qualified play is
    /// remembered, so asking twice within the window answers [`Verdict::Duplicate`].
    pub fn check(&self, viewer: u64, video: Id, watched_ms: u64, clip_ms: Option<u64>) -> Verdict {
        let needed = match clip_ms {
            Some(clip) if clip > 0 && clip < self.config.min_watch_ms => clip,
            _ => self.config.min_watch_ms,
        };
        if watched_ms < needed {
            return Verdict::TooShort;
        }
        if self.window_ms == 0 {
            return Verdict::Qualified;
        }
        let now = self.clock.now_ms();
        let key = (viewer, video);
        let mut stripe = self.stripe(&key);
        self.expire(&mut stripe, now);
        if let Some(&at) = stripe.last.get(&key) {
            // A clock that stepped back (now < at) also lands here: treat as a duplicate.
            if now.saturating_sub(at) < self.window_ms {
                return Verdict::Duplicate;
            }
        }
        while stripe.last.len() >= self.per_stripe || stripe.queue.len() >= 2 * self.per_stripe {
            let Some((at, old)) = stripe.queue.pop_front() else { break };
            if stripe.last.get(&old) == Some(&at) {
                stripe.last.remove(&old);
            }
        }
        stripe.last.insert(key, now);
        stripe.queue.push_back((now, key));
        Verdict::Qualified
    }

    /// Pairs currently remembered.
    pub fn len(&self) -> usize {
        self.stripes.iter().map(|s| lock(s).last.len()).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired entry now (otherwise done lazily per stripe on each check).
    pub fn purge_expired(&self) {
        let now = self.clock.now_ms();
        for s in self.stripes.iter() {
            self.expire(&mut lock(s), now);
        }
    }

    fn stripe(&self, key: &Key) -> MutexGuard<'_, Stripe> {
        let h = crate::topk::mix64(key.0 ^ key.1.0.rotate_left(32));
        lock(&self.stripes[(h % STRIPES as u64) as usize])
    }

    fn expire(&self, stripe: &mut Stripe, now: i64) {
        while let Some(&(at, key)) = stripe.queue.front() {
            if now.saturating_sub(at) < self.window_ms {
                break;
            }
            stripe.queue.pop_front();
            if stripe.last.get(&key) == Some(&at) {
                stripe.last.remove(&key);
            }
        }
    }
}

/// Locks a stripe, ignoring poisoning: every critical section leaves it consistent.
fn lock(m: &Mutex<Stripe>) -> MutexGuard<'_, Stripe> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quicktok_core::ManualClock;
    use std::sync::Arc;

    fn qualifier(config: QualifierConfig) -> (ViewQualifier, ManualClock) {
        let clock = ManualClock::new(1_000_000);
        (ViewQualifier::new(config, Arc::new(clock.clone())).unwrap(), clock)
    }

    #[test]
    fn watch_threshold() {
        let (q, _) = qualifier(QualifierConfig::default());
        assert_eq!(q.check(1, Id(1), 2999, None), Verdict::TooShort);
        assert_eq!(q.check(1, Id(1), 2999, Some(60_000)), Verdict::TooShort);
        assert_eq!(q.check(1, Id(1), 3000, Some(60_000)), Verdict::Qualified);
        assert_eq!(q.check(2, Id(1), 3000, None), Verdict::Qualified);
        // A too-short play is not remembered: it does not block a later real view.
        assert_eq!(q.check(3, Id(1), 10, None), Verdict::TooShort);
        assert_eq!(q.check(3, Id(1), 5000, None), Verdict::Qualified);
    }

    #[test]
    fn whole_clip_counts_for_short_clips() {
        let (q, _) = qualifier(QualifierConfig::default());
        assert_eq!(q.check(1, Id(1), 1999, Some(2000)), Verdict::TooShort);
        assert_eq!(q.check(1, Id(1), 2000, Some(2000)), Verdict::Qualified);
        assert_eq!(q.check(2, Id(2), 2500, Some(2000)), Verdict::Qualified);
        // Clips at or above the threshold need the threshold, not the whole clip.
        assert_eq!(q.check(3, Id(3), 2999, Some(3000)), Verdict::TooShort);
        // An unknown (0) duration falls back to the threshold.
        assert_eq!(q.check(4, Id(4), 0, Some(0)), Verdict::TooShort);
    }

    #[test]
    fn dedup_window_expires() {
        let (q, clock) = qualifier(QualifierConfig::default());
        assert_eq!(q.check(1, Id(9), 4000, None), Verdict::Qualified);
        clock.advance_ms(599_999);
        assert_eq!(q.check(1, Id(9), 4000, None), Verdict::Duplicate);
        assert_eq!(q.check(2, Id(9), 4000, None), Verdict::Qualified, "other viewer");
        assert_eq!(q.check(1, Id(8), 4000, None), Verdict::Qualified, "other video");
        clock.advance_ms(1);
        assert_eq!(q.check(1, Id(9), 4000, None), Verdict::Qualified, "window over");
        // The window restarts from the last counted view, not from the duplicate attempts.
        clock.advance_ms(300_000);
        assert_eq!(q.check(1, Id(9), 4000, None), Verdict::Duplicate);
        clock.advance_ms(300_000);
        assert_eq!(q.check(1, Id(9), 4000, None), Verdict::Qualified);
        // Expired entries are dropped, so memory follows the window.
        clock.advance_ms(600_000);
        q.purge_expired();
        assert!(q.is_empty());
    }

    #[test]
    fn clock_stepping_back_is_a_duplicate() {
        let (q, clock) = qualifier(QualifierConfig::default());
        assert_eq!(q.check(1, Id(1), 4000, None), Verdict::Qualified);
        clock.advance_ms(-60_000);
        assert_eq!(q.check(1, Id(1), 4000, None), Verdict::Duplicate);
    }

    #[test]
    fn memory_is_bounded() {
        let cfg = QualifierConfig { max_entries: 64, ..QualifierConfig::default() };
        let (q, clock) = qualifier(cfg);
        for viewer in 0..10_000u64 {
            clock.advance_ms(1);
            assert_eq!(q.check(viewer, Id(1), 4000, None), Verdict::Qualified);
        }
        assert!(q.len() <= 64 + STRIPES, "{} entries", q.len());
        // The most recent viewers are still remembered.
        assert_eq!(q.check(9_999, Id(1), 4000, None), Verdict::Duplicate);
    }

    #[test]
    fn dedup_can_be_disabled() {
        let cfg = QualifierConfig { dedup_window_ms: 0, ..QualifierConfig::default() };
        let (q, _) = qualifier(cfg);
        assert_eq!(q.check(1, Id(1), 4000, None), Verdict::Qualified);
        assert_eq!(q.check(1, Id(1), 4000, None), Verdict::Qualified);
        assert!(q.is_empty());
        assert!(
            QualifierConfig { max_entries: 0, ..QualifierConfig::default() }.validate().is_err()
        );
    }
}
