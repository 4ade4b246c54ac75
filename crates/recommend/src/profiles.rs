//! Long-term interest profiles: per user, the tags and creators they engage with, from
//! their whole recorded engagement history (not just the last hour), computed by the daily
//! training job. Each signal counts with its [`Signal::weight`](crate::interests::Signal)
//! halved every `half_life_ms` of age, so old interests fade behind recent ones; skips count
//! against a tag or creator, and only net-positive ones enter the profile (top K each).

use std::collections::HashMap;

use crate::interests::Signal;

/// Settings of the profile job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileParams {
    /// Weight of an engagement halves every this many ms of age.
    pub half_life_ms: i64,
    /// Tags kept per user (the heaviest).
    pub top_tags: usize,
    /// Creators kept per user (the heaviest).
    pub top_creators: usize,
}

impl Default for ProfileParams {
    fn default() -> Self {
        ProfileParams { half_life_ms: 14 * 24 * 3_600_000, top_tags: 10, top_creators: 20 }
    }
}

/// One engagement as the profile job reads it.
#[derive(Debug, Clone, Copy)]
pub struct ProfileEvent<'a> {
    pub user: u64,
    pub author: u64,
    pub tags: &'a [String],
    pub signal: Signal,
    pub at_ms: i64,
}

/// One user's long-term interests, heaviest first, weights scaled so the heaviest is 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub tags: Vec<(String, f64)>,
    pub creators: Vec<(u64, f64)>,
}

impl Profile {
    /// How well a clip by `author` with `tags` fits the profile (0: not at all). Tag
    /// weights add up (a clip with two favourite tags fits better), capped with the creator's.
    pub fn affinity(&self, author: u64, tags: &[String]) -> f64 {
        let tag: f64 =
            self.tags.iter().filter(|(t, _)| tags.iter().any(|x| x == t)).map(|(_, w)| *w).sum();
        let creator = self.creators.iter().find(|(c, _)| *c == author).map_or(0.0, |(_, w)| *w);
        (tag + creator).min(3.0)
    }
}

/// Every user's profile at `now_ms` from `events` (in any order). Events after `now_ms`
/// count as if they happened now.
pub fn build<'a>(
    events: impl IntoIterator<Item = ProfileEvent<'a>>,
    now_ms: i64,
    params: ProfileParams,
) -> HashMap<u64, Profile> {
    let half_life = params.half_life_ms.max(1) as f64;
    let mut tags: HashMap<u64, HashMap<&'a str, f64>> = HashMap::new();
    let mut creators: HashMap<u64, HashMap<u64, f64>> = HashMap::new();
    for e in events {
        let age = (now_ms - e.at_ms).max(0) as f64;
        let w = e.signal.weight() * 0.5f64.powf(age / half_life);
        if w == 0.0 {
            continue;
        }
        let user_tags = tags.entry(e.user).or_default();
        for t in e.tags {
            *user_tags.entry(t.as_str()).or_default() += w;
        }
        // Author 0: a clip no longer in the catalogue (its author is unknown).
        if e.author != 0 {
            *creators.entry(e.user).or_default().entry(e.author).or_default() += w;
        }
    }
    let mut out: HashMap<u64, Profile> = HashMap::new();
    for (user, weights) in tags {
        let top = top_k(weights.into_iter().map(|(t, w)| (t.to_owned(), w)), params.top_tags);
        out.entry(user).or_default().tags = top;
    }
    for (user, weights) in creators {
        out.entry(user).or_default().creators = top_k(weights, params.top_creators);
    }
    out.retain(|_, p| !p.tags.is_empty() || !p.creators.is_empty());
    out
}

/// The `k` heaviest net-positive entries, heaviest first (ties by key), scaled to max 1.
fn top_k<K: Ord>(weights: impl IntoIterator<Item = (K, f64)>, k: usize) -> Vec<(K, f64)> {
    let mut v: Vec<(K, f64)> = weights.into_iter().filter(|(_, w)| *w > 1e-9).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(k);
    let max = v.first().map_or(1.0, |(_, w)| *w);
    for (_, w) in &mut v {
        *w /= max;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3_600_000;

    fn ev<'a>(
        user: u64,
        author: u64,
        tags: &'a [String],
        signal: Signal,
        at: i64,
    ) -> ProfileEvent<'a> {
        ProfileEvent { user, author, tags, signal, at_ms: at }
    }

    #[test]
    fn an_old_interest_decays_below_a_recent_one() {
        let old = vec!["knitting".to_owned()];
        let new = vec!["surfing".to_owned()];
        let now = 100 * DAY;
        // Three likes of knitting 60 days ago (about 2^-4.3 each) against one completion of
        // surfing yesterday.
        let mut events: Vec<ProfileEvent> =
            (0..3).map(|_| ev(1, 10, &old, Signal::Liked, now - 60 * DAY)).collect();
        events.push(ev(1, 11, &new, Signal::Completed, now - DAY));
        let p = &build(events, now, ProfileParams::default())[&1];
        assert_eq!(p.tags[0].0, "surfing", "{p:?}");
        assert_eq!(p.tags[0].1, 1.0);
        assert!(p.tags[1].1 < 0.5, "{p:?}");
        assert_eq!(p.creators[0].0, 11);
    }

    #[test]
    fn skipped_tags_and_creators_stay_out_and_k_is_kept() {
        let liked = vec!["cats".to_owned()];
        let skipped = vec!["news".to_owned()];
        let now = 10 * DAY;
        let mut events = vec![ev(1, 10, &liked, Signal::Completed, now)];
        for _ in 0..3 {
            events.push(ev(1, 20, &skipped, Signal::Skipped, now));
        }
        // Watched (weight 0) and a later skip: still nothing positive for news.
        events.push(ev(1, 20, &skipped, Signal::Watched, now));
        let p = &build(events, now, ProfileParams::default())[&1];
        assert_eq!(p.tags, vec![("cats".to_owned(), 1.0)]);
        assert_eq!(p.creators, vec![(10, 1.0)]);

        let many: Vec<Vec<String>> = (0..30).map(|i| vec![format!("t{i}")]).collect();
        let events = many
            .iter()
            .enumerate()
            .map(|(i, t)| ev(2, 100 + i as u64, t, Signal::Liked, now - i as i64));
        let params = ProfileParams { top_tags: 3, top_creators: 2, ..ProfileParams::default() };
        let p = &build(events, now, params)[&2];
        assert_eq!(p.tags.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["t0", "t1", "t2"]);
        assert_eq!(p.creators.len(), 2);
    }

    #[test]
    fn affinity_counts_tags_and_creator() {
        let p = Profile {
            tags: vec![("cats".into(), 1.0), ("dogs".into(), 0.5)],
            creators: vec![(7, 0.25)],
        };
        assert_eq!(p.affinity(7, &["cats".into(), "dogs".into()]), 1.75);
        assert_eq!(p.affinity(8, &["birds".into()]), 0.0);
    }
}
