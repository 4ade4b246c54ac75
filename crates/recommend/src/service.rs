//! The recommender as one in-process service: a catalogue of live clips, engagement as it
//! happens (short-term interests, per-clip statistics, labelled impressions for training),
//! per-user seen filters, the offline models (swapped in whole by [`Recommender::train`]),
//! and the two reads: [`Recommender::for_you`] and [`Recommender::related`].
//!
//! It does no IO: the binary feeds it from the event log and asks the metadata store for
//! follows and blocks, and every call takes the time from its caller.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::assemble::{Candidate, Source, assemble};
use crate::covers::CoverStats;
use crate::degrade::{DegradeParams, Health, Plan, plan};
use crate::error::RecommendError;
use crate::implicit::{AlsParams, Factors, Interactions};
use crate::interests::{Engagement, InterestParams, Interests, ShortTermInterests, Signal};
use crate::itemitem::{ItemItem, ItemItemParams};
use crate::profiles::{Profile, ProfileEvent, ProfileParams};
use crate::ranker::{Features, LogisticModel, TrainParams, TrainReport};
use crate::seen::{SeenFilter, SeenParams};

/// A clip the recommender may show.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub id: u64,
    pub author: u64,
    pub tags: Vec<String>,
    pub published_at_ms: i64,
}

/// Settings.
#[derive(Debug, Clone, Copy)]
pub struct RecommenderParams {
    /// Share of each page given to fresh uploads (exploration).
    pub explore_share: f64,
    /// Uploads younger than this count as fresh.
    pub fresh_window_ms: i64,
    /// Candidates taken from each source before ranking.
    pub per_source: usize,
    /// The cached trending list (the fallback when candidates are unhealthy) is refreshed
    /// after this long.
    pub trending_cache_ms: i64,
    /// Impressions without engagement after this long are negatives for the ranker.
    pub impression_label_ms: i64,
    /// Labelled impressions kept for training (the newest).
    pub max_training_examples: usize,
    pub seen: SeenParams,
    pub interests: InterestParams,
    /// The long-term interest profiles the training job computes.
    pub profiles: ProfileParams,
    pub degrade: DegradeParams,
    pub als: AlsParams,
    pub itemitem: ItemItemParams,
}

impl Default for RecommenderParams {
    fn default() -> Self {
        RecommenderParams {
            explore_share: 0.1,
            fresh_window_ms: 48 * 3_600_000,
            per_source: 200,
            trending_cache_ms: 600_000,
            impression_label_ms: 600_000,
            max_training_examples: 200_000,
            seen: SeenParams::default(),
            interests: InterestParams::default(),
            profiles: ProfileParams::default(),
            degrade: DegradeParams::default(),
            als: AlsParams::default(),
            itemitem: ItemItemParams::default(),
        }
    }
}

/// Engagement of one user with one clip, as the event log reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserEvent {
    pub user: u64,
    pub video: u64,
    pub signal: Signal,
    pub at_ms: i64,
}

/// Who asks and what the caller knows about them.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    /// `None`: anonymous (trending plus exploration).
    pub user: Option<u64>,
    pub now_ms: i64,
    pub followed: Vec<u64>,
    /// Authors the user blocked or who blocked the user.
    pub blocked: HashSet<u64>,
    /// The current trending list, best first (empty when the ranker cannot be reached).
    pub trending: Vec<u64>,
    /// The author of the last clip of the previous page (from the cursor).
    pub previous_author: Option<u64>,
    /// Whether the candidate sources answer (the binary's health checks say).
    pub candidates_healthy: bool,
    /// Newest event time in the log the interest consumer reads (for its lag).
    pub log_head_ms: i64,
}

/// One recommended clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommended {
    pub video: u64,
    pub author: u64,
    pub source: Source,
    pub score: f64,
}

/// A page of the For-You feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub items: Vec<Recommended>,
    /// The most severe active degradation.
    pub degraded: Option<&'static str>,
    pub plan: Plan,
}

/// What a related-videos request knows.
#[derive(Debug, Clone, Default)]
pub struct RelatedRequest {
    pub video: u64,
    pub user: Option<u64>,
    pub blocked: HashSet<u64>,
    pub limit: usize,
    pub log_head_ms: i64,
    pub candidates_healthy: bool,
}

/// What the training job did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSummary {
    pub users: usize,
    pub videos: usize,
    pub interactions: usize,
    /// Users with a long-term interest profile.
    pub profiles: usize,
    pub ranker: Option<TrainReport>,
}

#[derive(Debug, Default)]
struct Catalog {
    videos: HashMap<u64, VideoInfo>,
    /// Each author's clips, newest last.
    by_author: HashMap<u64, Vec<u64>>,
    /// (published_at, id) of every clip, for the fresh source.
    by_time: BTreeSet<(i64, u64)>,
    /// Clips per tag, newest last (bounded).
    by_tag: HashMap<String, VecDeque<u64>>,
}

const PER_TAG: usize = 500;

impl Catalog {
    fn insert(&mut self, v: VideoInfo) {
        self.remove(v.id);
        self.by_author.entry(v.author).or_default().push(v.id);
        self.by_time.insert((v.published_at_ms, v.id));
        for t in &v.tags {
            let list = self.by_tag.entry(t.clone()).or_default();
            list.push_back(v.id);
            if list.len() > PER_TAG {
                list.pop_front();
            }
        }
        self.videos.insert(v.id, v);
    }

    fn remove(&mut self, id: u64) {
        if let Some(v) = self.videos.remove(&id) {
            if let Some(list) = self.by_author.get_mut(&v.author) {
                list.retain(|x| *x != id);
            }
            self.by_time.remove(&(v.published_at_ms, id));
            for t in &v.tags {
                if let Some(list) = self.by_tag.get_mut(t) {
                    list.retain(|x| *x != id);
                }
            }
        }
    }
}

/// Per-clip statistics the ranker's features use.
#[derive(Debug, Clone, Copy, Default)]
struct ClipStats {
    impressions: u64,
    plays: u64,
    completions: u64,
}

/// The offline models and their id maps (replaced whole by training).
#[derive(Debug, Default)]
struct Offline {
    factors: Option<Factors>,
    itemitem: Option<ItemItem>,
    video_index: HashMap<u64, u32>,
    videos: Vec<u64>,
    user_index: HashMap<u64, u32>,
    /// Each trained user's most recent positives (model indices), for co-engagement.
    history: Vec<Vec<u32>>,
    ranker: Option<LogisticModel>,
    /// Each user's long-term tags and creators.
    profiles: HashMap<u64, Profile>,
    /// Per tag, the clips with the most (decayed) positive engagement, best first: the
    /// "good" half of the interest-tag source (the catalogue's `by_tag` gives the recent
    /// half).
    tag_popular: HashMap<String, Vec<u64>>,
}

/// Clips kept per tag in [`Offline::tag_popular`].
const TAG_POPULAR: usize = 100;

/// Entries that survive a restart, with the keys changed since the last
/// [`Recommender::take_changes`].
#[derive(Debug)]
struct Tracked<K, V> {
    map: HashMap<K, V>,
    dirty: HashSet<K>,
}

impl<K, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Tracked { map: HashMap::new(), dirty: HashSet::new() }
    }
}

/// The state changed since the last take, encoded for the store: the binary writes it
/// behind (every few seconds, and at shutdown) and hands it back to
/// [`Recommender::restore_seen`] / [`Recommender::restore_covers`] at the next start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChanges {
    /// (user, seen filter bytes).
    pub seen: Vec<(u64, Vec<u8>)>,
    /// (video, audience segment, cover statistics bytes).
    pub covers: Vec<(u64, u64, Vec<u8>)>,
}

impl StateChanges {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.covers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.seen.len() + self.covers.len()
    }
}

/// An impression waiting for its label.
#[derive(Debug, Clone, Copy)]
struct Impression {
    features: Features,
    at_ms: i64,
    engaged: bool,
    /// The audience segment and cover shown, when the bandit chose one.
    cover: Option<(u64, usize)>,
    /// Whether a play was already credited to that cover.
    played: bool,
}

/// The audience segment of a viewer for a clip: the clip's tag the viewer engaged with most
/// in the last hour (0: none, or anonymous). Covers are learned per segment, so people who
/// came for cats and people who came for cooking may each get the frame that speaks to them.
fn segment_of(interests: &Interests, tags: &[String]) -> u64 {
    let best = tags
        .iter()
        .filter_map(|t| interests.tags.get(t).filter(|w| **w > 0.0).map(|w| (*w, t)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        // FNV-1a: stable across nodes and restarts.
        Some((_, tag)) => tag
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
            .max(1),
        None => 0,
    }
}

/// The recommender service.
#[derive(Debug)]
pub struct Recommender {
    params: RecommenderParams,
    catalog: RwLock<Catalog>,
    offline: RwLock<Arc<Offline>>,
    short_term: Mutex<ShortTermInterests>,
    /// Each user's interests as of the last time real-time ones were fresh (stale mode).
    cached_short_term: Mutex<HashMap<u64, Interests>>,
    seen: Mutex<Tracked<u64, SeenFilter>>,
    stats: Mutex<HashMap<u64, ClipStats>>,
    /// Positive engagement (user, video) for the next training, bounded.
    positives: Mutex<VecDeque<(u64, u64)>>,
    /// Every signal with a weight, with its time, for the long-term profiles; bounded.
    engagement: Mutex<VecDeque<UserEvent>>,
    impressions: Mutex<HashMap<(u64, u64), Impression>>,
    examples: Mutex<VecDeque<(Features, bool)>>,
    trending_cache: Mutex<(Vec<u64>, i64)>,
    /// Cover bandit statistics per (video, audience segment), one entry per candidate.
    covers: Mutex<Tracked<(u64, u64), Vec<CoverStats>>>,
    /// Time of the newest event applied (for the real-time lag).
    applied_ms: AtomicI64,
    in_flight: AtomicUsize,
}

/// Counts a request in flight while alive.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const MAX_POSITIVES: usize = 2_000_000;

impl Recommender {
    pub fn new(params: RecommenderParams) -> Recommender {
        Recommender {
            params,
            catalog: RwLock::default(),
            offline: RwLock::default(),
            short_term: Mutex::new(ShortTermInterests::new(params.interests)),
            cached_short_term: Mutex::default(),
            seen: Mutex::default(),
            stats: Mutex::default(),
            positives: Mutex::default(),
            engagement: Mutex::default(),
            impressions: Mutex::default(),
            examples: Mutex::default(),
            trending_cache: Mutex::new((Vec::new(), i64::MIN)),
            covers: Mutex::default(),
            applied_ms: AtomicI64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn params(&self) -> &RecommenderParams {
        &self.params
    }

    /// A clip became (or is again) recommendable.
    pub fn publish(&self, video: VideoInfo) {
        self.catalog.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(video);
    }

    /// A clip was removed, rejected or made private: never recommended again.
    pub fn remove(&self, video: u64) {
        self.catalog.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(video);
    }

    /// Clips in the catalogue.
    pub fn catalog_len(&self) -> usize {
        self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner).videos.len()
    }

    /// Applies one engagement event (within a second of it entering the log).
    pub fn record(&self, event: UserEvent) {
        let (author, tags) = {
            let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            match catalog.videos.get(&event.video) {
                Some(v) => (v.author, v.tags.clone()),
                None => (0, Vec::new()),
            }
        };
        lock(&self.short_term).record(
            event.user,
            Engagement {
                video: event.video,
                author,
                tags,
                signal: event.signal,
                at_ms: event.at_ms,
            },
        );
        {
            let mut stats = lock(&self.stats);
            let s = stats.entry(event.video).or_default();
            match event.signal {
                Signal::Completed => {
                    s.plays += 1;
                    s.completions += 1;
                }
                Signal::Skipped | Signal::Watched => s.plays += 1,
                _ => {}
            }
        }
        let positive = event.signal.weight() > 0.0;
        if positive {
            let mut positives = lock(&self.positives);
            positives.push_back((event.user, event.video));
            if positives.len() > MAX_POSITIVES {
                positives.pop_front();
            }
        }
        if event.signal.weight() != 0.0 {
            let mut engagement = lock(&self.engagement);
            engagement.push_back(event);
            if engagement.len() > MAX_POSITIVES {
                engagement.pop_front();
            }
        }
        // One look at the impression: a positive signal labels it engaged, and any play (a
        // watch, a like, even a skip: the cover got the clip started) credits the cover shown
        // with it, once.
        let credit = match lock(&self.impressions).get_mut(&(event.user, event.video)) {
            Some(i) => {
                i.engaged |= positive;
                let credit = if i.played { None } else { i.cover };
                i.played |= credit.is_some();
                credit
            }
            None => None,
        };
        if let Some((segment, cover)) = credit {
            let mut covers = lock(&self.covers);
            if let Some(s) =
                covers.map.get_mut(&(event.video, segment)).and_then(|v| v.get_mut(cover))
            {
                s.plays += 1;
                covers.dirty.insert((event.video, segment));
            }
        }
        {
            let mut seen = lock(&self.seen);
            let changed = seen
                .map
                .entry(event.user)
                .or_insert_with(|| SeenFilter::new(self.params.seen))
                .insert(event.video);
            if changed {
                seen.dirty.insert(event.user);
            }
        }
        self.applied_ms.fetch_max(event.at_ms, Ordering::SeqCst);
    }

    /// Marks the consumer caught up with the log at `at_ms` (no events pending).
    pub fn caught_up(&self, at_ms: i64) {
        self.applied_ms.fetch_max(at_ms, Ordering::SeqCst);
    }

    /// Trains the offline models on the engagement recorded so far and the ranker on the
    /// labelled impressions (the daily job), then swaps them in.
    pub fn train(&self, now_ms: i64) -> TrainingSummary {
        self.label_impressions(now_ms);
        let pairs: Vec<(u64, u64)> = lock(&self.positives).iter().copied().collect();
        let mut user_index: HashMap<u64, u32> = HashMap::new();
        let mut video_index: HashMap<u64, u32> = HashMap::new();
        let mut videos = Vec::new();
        let mut dense = Vec::with_capacity(pairs.len());
        {
            let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (u, v) in pairs {
                if !catalog.videos.contains_key(&v) {
                    continue;
                }
                let next_user = user_index.len() as u32;
                let du = *user_index.entry(u).or_insert(next_user);
                let dv = *video_index.entry(v).or_insert_with(|| {
                    videos.push(v);
                    (videos.len() - 1) as u32
                });
                dense.push((du, dv));
            }
        }
        let data = Interactions::from_pairs(user_index.len(), videos.len(), dense.iter().copied());
        let (factors, itemitem) = if dense.is_empty() {
            (None, None)
        } else {
            (
                Some(Factors::train(&data, self.params.als)),
                Some(ItemItem::train(&data, self.params.itemitem)),
            )
        };
        let examples: Vec<(Features, bool)> = lock(&self.examples).iter().copied().collect();
        let has_both = examples.iter().any(|e| e.1) && examples.iter().any(|e| !e.1);
        let (ranker, report) = if examples.len() >= 200 && has_both {
            let (model, report) = LogisticModel::train(&examples, TrainParams::default());
            (Some(model), Some(report))
        } else {
            (None, None)
        };
        let (profiles, tag_popular) = self.build_profiles(now_ms);
        let summary = TrainingSummary {
            users: user_index.len(),
            videos: videos.len(),
            interactions: dense.len(),
            profiles: profiles.len(),
            ranker: report,
        };
        let history = (0..data.users() as u32)
            .map(|u| {
                let all = data.of_user(u);
                all[all.len().saturating_sub(50)..].to_vec()
            })
            .collect();
        let offline = Offline {
            factors,
            itemitem,
            video_index,
            videos,
            user_index,
            history,
            ranker,
            profiles,
            tag_popular,
        };
        *self.offline.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(offline);
        summary
    }

    /// The long-term profiles of every user from the recorded engagement (clips no longer
    /// in the catalogue are left out: their tags are unknown), and per tag its clips with the
    /// most decayed positive engagement.
    #[allow(clippy::type_complexity)]
    fn build_profiles(&self, now_ms: i64) -> (HashMap<u64, Profile>, HashMap<String, Vec<u64>>) {
        let params = self.params.profiles;
        // Past eight half-lives an event weighs under 1/256 of a new one: dropped, so the
        // history (and the training's work) stays bounded on a long-running node.
        let horizon = now_ms.saturating_sub(params.half_life_ms.saturating_mul(8));
        let events: Vec<UserEvent> = {
            let mut engagement = lock(&self.engagement);
            engagement.retain(|e| e.at_ms >= horizon);
            engagement.iter().copied().collect()
        };
        let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let profiles = crate::profiles::build(
            events.iter().filter_map(|e| {
                let v = catalog.videos.get(&e.video)?;
                Some(ProfileEvent {
                    user: e.user,
                    author: v.author,
                    tags: &v.tags,
                    signal: e.signal,
                    at_ms: e.at_ms,
                })
            }),
            now_ms,
            params,
        );
        let half_life = params.half_life_ms.max(1) as f64;
        let mut clip_score: HashMap<u64, f64> = HashMap::new();
        for e in events.iter().filter(|e| e.signal.weight() > 0.0) {
            let age = (now_ms - e.at_ms).max(0) as f64;
            *clip_score.entry(e.video).or_default() +=
                e.signal.weight() * 0.5f64.powf(age / half_life);
        }
        let mut by_tag: HashMap<String, Vec<(f64, u64)>> = HashMap::new();
        for (id, score) in clip_score {
            if let Some(v) = catalog.videos.get(&id) {
                for t in &v.tags {
                    by_tag.entry(t.clone()).or_default().push((score, id));
                }
            }
        }
        let tag_popular = by_tag
            .into_iter()
            .map(|(tag, mut clips)| {
                clips.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                (tag, clips.into_iter().take(TAG_POPULAR).map(|(_, id)| id).collect())
            })
            .collect();
        (profiles, tag_popular)
    }

    /// Impressions old enough become training examples (engaged or not).
    fn label_impressions(&self, now_ms: i64) {
        let cutoff = now_ms - self.params.impression_label_ms;
        let mut ready = Vec::new();
        lock(&self.impressions).retain(|_, i| {
            if i.at_ms <= cutoff {
                ready.push((i.features, i.engaged));
                false
            } else {
                true
            }
        });
        let mut examples = lock(&self.examples);
        examples.extend(ready);
        while examples.len() > self.params.max_training_examples {
            examples.pop_front();
        }
    }

    fn health(&self, req: &FeedRequest) -> Health {
        let applied = self.applied_ms.load(Ordering::SeqCst);
        Health {
            realtime_lag_ms: (req.log_head_ms - applied).max(0),
            candidates_healthy: req.candidates_healthy,
            in_flight: self.in_flight.load(Ordering::SeqCst),
        }
    }

    /// The user's short-term interests, live or (stale mode) as last cached.
    fn interests(&self, user: u64, now_ms: i64, live: bool) -> Interests {
        if live {
            let fresh = lock(&self.short_term).interests(user, now_ms);
            lock(&self.cached_short_term).insert(user, fresh.clone());
            fresh
        } else {
            lock(&self.cached_short_term).get(&user).cloned().unwrap_or_default()
        }
    }

    /// The trending list to fall back on: the request's when it has one (refreshing the
    /// cache every `trending_cache_ms`), else the cached one.
    fn trending(&self, req: &FeedRequest) -> Vec<u64> {
        let mut cache = lock(&self.trending_cache);
        let stale = req.now_ms.saturating_sub(cache.1) >= self.params.trending_cache_ms;
        if !req.trending.is_empty() && (stale || cache.0.is_empty()) {
            *cache = (req.trending.iter().copied().take(1000).collect(), req.now_ms);
        }
        if req.trending.is_empty() { cache.0.clone() } else { req.trending.clone() }
    }

    /// A page of the For-You feed. Served clips count as seen, so the next page never
    /// repeats them.
    pub fn for_you(&self, req: &FeedRequest) -> FeedPage {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        let plan = plan(&self.params.degrade, self.health(req));
        let trending = self.trending(req);
        let offline =
            self.offline.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = req.user.and_then(|u| lock(&self.seen).map.get(&u).cloned());
        let allowed = |id: u64| -> Option<&VideoInfo> {
            let v = catalog.videos.get(&id)?;
            let own = req.user == Some(v.author);
            let seen_it = seen.as_ref().is_some_and(|s| s.contains(id));
            (!own && !seen_it && !req.blocked.contains(&v.author)).then_some(v)
        };
        let n = self.params.per_source;
        let mut raw: Vec<(u64, Source, f64)> = Vec::new();
        for (rank, id) in trending.iter().enumerate().take(n) {
            raw.push((*id, Source::Trending, 1.0 / (1.0 + rank as f64)));
        }
        let interests = match req.user {
            Some(u) if plan.candidates => self.interests(u, req.now_ms, plan.live_short_term),
            _ => Interests::default(),
        };
        // Folding in the last hour's clips solves a small linear system: once per page.
        let user_vector = req.user.and_then(|u| self.user_vector(&offline, u, &interests));
        if plan.candidates {
            // Fresh uploads with the fewest impressions.
            let since = req.now_ms - self.params.fresh_window_ms;
            let stats = lock(&self.stats);
            let mut fresh: Vec<(u64, u64)> = catalog
                .by_time
                .range((since, 0)..)
                .rev()
                .take(n * 4)
                .map(|(_, id)| (stats.get(id).map_or(0, |s| s.impressions), *id))
                .collect();
            drop(stats);
            fresh.sort_unstable();
            raw.extend(
                fresh
                    .into_iter()
                    .take(n)
                    .map(|(imp, id)| (id, Source::Fresh, 1.0 / (1.0 + imp as f64))),
            );
            for author in &req.followed {
                if let Some(list) = catalog.by_author.get(author) {
                    raw.extend(list.iter().rev().take(10).map(|id| (*id, Source::Following, 1.0)));
                }
            }
            if let Some(user) = req.user {
                model_candidates(&offline, user, user_vector.as_deref(), &interests, n, &mut raw);
                // Clips carrying the tags the user engaged with in the last hour.
                let mut tags: Vec<(&String, &f64)> =
                    interests.tags.iter().filter(|(_, w)| **w > 0.0).collect();
                tags.sort_by(|a, b| b.1.total_cmp(a.1));
                for (tag, w) in tags.into_iter().take(5) {
                    if let Some(list) = catalog.by_tag.get(tag.as_str()) {
                        raw.extend(
                            list.iter().rev().take(n / 4).map(|id| (*id, Source::ShortTerm, *w)),
                        );
                    }
                }
                if let Some(profile) = offline.profiles.get(&user) {
                    profile_candidates(&catalog, &offline, profile, n, &mut raw);
                }
            }
        }
        let followed: HashSet<u64> = req.followed.iter().copied().collect();
        let ranker = offline.ranker.unwrap_or_else(LogisticModel::fallback);
        let profile = req.user.and_then(|u| offline.profiles.get(&u));
        let stats = lock(&self.stats).clone_subset(raw.iter().map(|r| r.0));
        let mut candidates = Vec::with_capacity(raw.len());
        let mut features_of: HashMap<u64, Features> = HashMap::new();
        for (id, source, source_score) in raw {
            let Some(v) = allowed(id) else { continue };
            let features = features_of.entry(id).or_insert_with(|| {
                let s = stats.get(&id).copied().unwrap_or_default();
                let long_term = match (&offline.factors, &user_vector, offline.video_index.get(&id))
                {
                    (Some(f), Some(u), Some(&i)) => f.score(u, i),
                    _ => 0.0,
                };
                let completion = (s.completions as f64 + 1.0) / (s.plays as f64 + 2.0);
                Features::new(
                    long_term,
                    if source == Source::ItemItem { source_score } else { 0.0 },
                    interests.affinity(v.author, &v.tags),
                    followed.contains(&v.author),
                    s.plays,
                    (req.now_ms - v.published_at_ms) as f64 / 3_600_000.0,
                    completion,
                    profile.map_or(0.0, |p| p.affinity(v.author, &v.tags)),
                )
            });
            candidates.push(Candidate {
                video: id,
                author: v.author,
                source,
                score: ranker.predict(features),
            });
        }
        drop(catalog);
        let share = if req.user.is_none() {
            self.params.explore_share.max(0.2)
        } else {
            self.params.explore_share
        };
        let page = assemble(&candidates, plan.page_size, share, req.previous_author);
        self.served(req, &page, &features_of);
        FeedPage {
            items: page
                .iter()
                .map(|c| Recommended {
                    video: c.video,
                    author: c.author,
                    source: c.source,
                    score: c.score,
                })
                .collect(),
            degraded: plan.degraded(),
            plan,
        }
    }

    /// The user's vector: trained, or folded in from the last hour's positives.
    fn user_vector(&self, offline: &Offline, user: u64, interests: &Interests) -> Option<Vec<f64>> {
        let factors = offline.factors.as_ref()?;
        if !interests.positives.is_empty() {
            let mut engaged: Vec<u32> = interests
                .positives
                .iter()
                .filter_map(|v| offline.video_index.get(v).copied())
                .collect();
            if let Some(u) = offline.user_index.get(&user).and_then(|u| factors.user_vector(*u)) {
                // Trained vector plus the recent clips: blend by folding both in.
                if engaged.is_empty() {
                    return Some(u.to_vec());
                }
                let recent = factors.fold_in(&engaged);
                return Some(u.iter().zip(&recent).map(|(a, b)| 0.5 * a + 0.5 * b).collect());
            }
            engaged.truncate(100);
            if !engaged.is_empty() {
                return Some(factors.fold_in(&engaged));
            }
        }
        offline.user_index.get(&user).and_then(|u| factors.user_vector(*u)).map(<[f64]>::to_vec)
    }

    /// Served clips: seen from now on, counted as impressions, kept for labelling.
    fn served(&self, req: &FeedRequest, page: &[Candidate], features: &HashMap<u64, Features>) {
        {
            let mut stats = lock(&self.stats);
            for c in page {
                stats.entry(c.video).or_default().impressions += 1;
            }
        }
        let Some(user) = req.user else { return };
        {
            let mut seen = lock(&self.seen);
            let filter = seen.map.entry(user).or_insert_with(|| SeenFilter::new(self.params.seen));
            let mut changed = false;
            for c in page {
                changed |= filter.insert(c.video);
            }
            if changed {
                seen.dirty.insert(user);
            }
        }
        let mut impressions = lock(&self.impressions);
        for c in page {
            if let Some(f) = features.get(&c.video) {
                impressions.insert(
                    (user, c.video),
                    Impression {
                        features: *f,
                        at_ms: req.now_ms,
                        engaged: false,
                        cover: None,
                        played: false,
                    },
                );
            }
        }
    }

    /// Which candidate cover to show with each served clip (`items`: clip and how many
    /// candidates it has), chosen by Thompson sampling per audience segment; `None` for
    /// clips with fewer than two. For a signed-in viewer the impression is counted and a
    /// later play of the clip credits the cover.
    pub fn choose_covers(
        &self,
        user: Option<u64>,
        now_ms: i64,
        items: &[(u64, usize)],
    ) -> Vec<Option<usize>> {
        let interests =
            user.map(|u| lock(&self.short_term).interests(u, now_ms)).unwrap_or_default();
        let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rng = rand::thread_rng();
        let mut covers = lock(&self.covers);
        let mut impressions = lock(&self.impressions);
        items
            .iter()
            .map(|&(video, candidates)| {
                if candidates < 2 {
                    return None;
                }
                let tags = catalog.videos.get(&video).map(|v| v.tags.as_slice()).unwrap_or(&[]);
                let segment = segment_of(&interests, tags);
                let covers = &mut *covers;
                let stats = covers.map.entry((video, segment)).or_default();
                stats.resize(candidates, CoverStats::default());
                let chosen = crate::covers::choose(stats, &mut rng)?;
                if let Some(i) = user.and_then(|u| impressions.get_mut(&(u, video)))
                    && i.cover.is_none()
                {
                    i.cover = Some((segment, chosen));
                    if let Some(s) = stats.get_mut(chosen) {
                        s.impressions += 1;
                    }
                    covers.dirty.insert((video, segment));
                }
                Some(chosen)
            })
            .collect()
    }

    /// The bandit's statistics of one clip's covers for one segment (for reports and tests).
    pub fn cover_stats(&self, video: u64, segment: u64) -> Vec<CoverStats> {
        lock(&self.covers).map.get(&(video, segment)).cloned().unwrap_or_default()
    }

    /// The persistent state changed since the last call, encoded, and forgotten as changed.
    /// When storing it fails, hand it to [`Recommender::mark_changed`] so the next flush
    /// retries (with whatever the entries hold by then).
    pub fn take_changes(&self) -> StateChanges {
        let mut out = StateChanges::default();
        let dirty = std::mem::take(&mut lock(&self.seen).dirty);
        // One user at a time: a flush of many filters never holds the lock the feed reads
        // take for longer than one encoding.
        out.seen = dirty
            .into_iter()
            .filter_map(|u| lock(&self.seen).map.get(&u).map(|f| (u, f.to_bytes())))
            .collect();
        let mut covers = lock(&self.covers);
        let dirty = std::mem::take(&mut covers.dirty);
        out.covers = dirty
            .into_iter()
            .filter_map(|k| covers.map.get(&k).map(|c| (k.0, k.1, crate::covers::to_bytes(c))))
            .collect();
        out
    }

    /// Marks the entries of `changes` changed again (their flush failed).
    pub fn mark_changed(&self, changes: &StateChanges) {
        lock(&self.seen).dirty.extend(changes.seen.iter().map(|(u, _)| *u));
        lock(&self.covers).dirty.extend(changes.covers.iter().map(|(v, s, _)| (*v, *s)));
    }

    /// Restores a user's stored seen filter (from [`StateChanges::seen`]), merged with what
    /// this node already recorded for them. Not marked changed: the store has it.
    pub fn restore_seen(&self, user: u64, bytes: &[u8]) -> Result<(), RecommendError> {
        let stored = SeenFilter::from_bytes(self.params.seen, bytes)?;
        let mut seen = lock(&self.seen);
        match seen.map.get_mut(&user) {
            Some(filter) => filter.merge(&stored),
            None => {
                seen.map.insert(user, stored);
            }
        }
        Ok(())
    }

    /// Restores one clip's stored cover statistics for one segment (from
    /// [`StateChanges::covers`]); counts this node already has are added.
    pub fn restore_covers(
        &self,
        video: u64,
        segment: u64,
        bytes: &[u8],
    ) -> Result<(), RecommendError> {
        let stored = crate::covers::from_bytes(bytes)?;
        let mut covers = lock(&self.covers);
        let stats = covers.map.entry((video, segment)).or_default();
        if stats.len() < stored.len() {
            stats.resize(stored.len(), CoverStats::default());
        }
        for (s, add) in stats.iter_mut().zip(stored) {
            s.impressions = s.impressions.saturating_add(add.impressions);
            s.plays = s.plays.saturating_add(add.plays);
        }
        Ok(())
    }

    /// `user`'s long-term profile as of the last training (for reports and tests).
    pub fn profile(&self, user: u64) -> Option<Profile> {
        self.offline
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .profiles
            .get(&user)
            .cloned()
    }

    /// Clips to play next after `video`: co-engaged ones first, then clips sharing its
    /// tags, then its author's; never seen, blocked, removed or the user's own.
    pub fn related(&self, req: &RelatedRequest) -> Result<Vec<u64>, RecommendError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        let health = Health {
            realtime_lag_ms: (req.log_head_ms - self.applied_ms.load(Ordering::SeqCst)).max(0),
            candidates_healthy: req.candidates_healthy,
            in_flight: self.in_flight.load(Ordering::SeqCst),
        };
        if !plan(&self.params.degrade, health).related {
            return Err(RecommendError::Shed);
        }
        let (video, user, blocked, n) = (req.video, req.user, &req.blocked, req.limit);
        let offline =
            self.offline.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let catalog = self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = user.and_then(|u| lock(&self.seen).map.get(&u).cloned());
        let mut out: Vec<u64> = Vec::with_capacity(n);
        let push = |id: u64, out: &mut Vec<u64>| {
            let Some(v) = catalog.videos.get(&id) else { return };
            if id == video
                || out.contains(&id)
                || user == Some(v.author)
                || blocked.contains(&v.author)
                || seen.as_ref().is_some_and(|s| s.contains(id))
            {
                return;
            }
            out.push(id);
        };
        if let (Some(itemitem), Some(&i)) = (&offline.itemitem, offline.video_index.get(&video)) {
            for (_, j) in itemitem.similar_scored(i, n * 2) {
                if let Some(id) = offline.videos.get(j as usize) {
                    push(*id, &mut out);
                }
            }
        }
        if let Some(v) = catalog.videos.get(&video) {
            for t in &v.tags {
                for id in catalog.by_tag.get(t).into_iter().flatten().rev().take(n * 2) {
                    push(*id, &mut out);
                }
            }
            for id in catalog.by_author.get(&v.author).into_iter().flatten().rev().take(n) {
                push(*id, &mut out);
            }
        }
        out.truncate(n);
        Ok(out)
    }
}

/// Long-term (user vector) and co-engagement candidates.
fn model_candidates(
    offline: &Offline,
    user: u64,
    user_vector: Option<&[f64]>,
    interests: &Interests,
    n: usize,
    raw: &mut Vec<(u64, Source, f64)>,
) {
    if let (Some(factors), Some(vector)) = (&offline.factors, user_vector) {
        for (score, i) in factors.top_scored(vector, n, |_| false) {
            if let Some(id) = offline.videos.get(i as usize) {
                raw.push((*id, Source::LongTerm, score));
            }
        }
    }
    if let Some(itemitem) = &offline.itemitem {
        let mut engaged: Vec<u32> = interests
            .positives
            .iter()
            .filter_map(|v| offline.video_index.get(v).copied())
            .collect();
        // Long-term positives fill up to 50 seeds after the last hour's.
        if let Some(history) =
            offline.user_index.get(&user).and_then(|u| offline.history.get(*u as usize))
        {
            engaged.extend(
                history
                    .iter()
                    .rev()
                    .filter(|i| !engaged.contains(i))
                    .take(50)
                    .copied()
                    .collect::<Vec<_>>(),
            );
        }
        engaged.truncate(50);
        if !engaged.is_empty() {
            for (score, i) in itemitem.top_scored(&engaged, n, |_| false) {
                if let Some(id) = offline.videos.get(i as usize) {
                    raw.push((*id, Source::ItemItem, score));
                }
            }
        }
    }
}

/// Candidates from a long-term profile: for each of the user's top tags its best clips (by
/// decayed engagement at the last training) and its newest ones, and the newest clips of
/// each of the user's creators (followed or not). The source score is the profile weight.
fn profile_candidates(
    catalog: &Catalog,
    offline: &Offline,
    profile: &Profile,
    n: usize,
    raw: &mut Vec<(u64, Source, f64)>,
) {
    let per_tag = (n / profile.tags.len().max(1)).clamp(4, 50);
    for (tag, w) in &profile.tags {
        let popular = offline.tag_popular.get(tag).into_iter().flatten().take(per_tag / 2);
        let recent = catalog.by_tag.get(tag).into_iter().flatten().rev().take(per_tag / 2);
        raw.extend(popular.chain(recent).map(|id| (*id, Source::InterestTags, *w)));
    }
    for (creator, w) in &profile.creators {
        if let Some(list) = catalog.by_author.get(creator) {
            raw.extend(list.iter().rev().take(10).map(|id| (*id, Source::InterestCreators, *w)));
        }
    }
}

trait CloneSubset {
    fn clone_subset(&self, ids: impl Iterator<Item = u64>) -> HashMap<u64, ClipStats>;
}

impl CloneSubset for HashMap<u64, ClipStats> {
    fn clone_subset(&self, ids: impl Iterator<Item = u64>) -> HashMap<u64, ClipStats> {
        ids.filter_map(|id| self.get(&id).map(|s| (id, *s))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const HOUR: i64 = 3_600_000;
    const NOW: i64 = 1_000 * HOUR;

    /// 200 clips by 20 authors, tagged by topic (`t0`..`t3`), published over the last day.
    fn world(params: RecommenderParams) -> Recommender {
        let r = Recommender::new(params);
        for id in 1..=200u64 {
            r.publish(VideoInfo {
                id,
                author: 1000 + id % 20,
                tags: vec![format!("t{}", id % 4)],
                published_at_ms: NOW - 24 * HOUR + id as i64 * 60_000,
            });
        }
        r
    }

    fn request(user: u64) -> FeedRequest {
        FeedRequest {
            user: Some(user),
            now_ms: NOW,
            trending: (1..=50).collect(),
            candidates_healthy: true,
            log_head_ms: NOW,
            ..FeedRequest::default()
        }
    }

    #[test]
    fn pages_never_repeat_and_respect_the_rules() {
        let r = world(RecommenderParams::default());
        r.caught_up(NOW);
        r.remove(7);
        let mut req = request(1003);
        req.blocked.insert(1005);
        let mut shown = HashSet::new();
        for _ in 0..3 {
            let page = r.for_you(&req);
            assert_eq!(page.degraded, None);
            assert!(!page.items.is_empty());
            for w in page.items.windows(2) {
                assert_ne!(w[0].author, w[1].author);
            }
            if let (Some(prev), Some(first)) = (req.previous_author, page.items.first()) {
                assert_ne!(prev, first.author);
            }
            for item in &page.items {
                assert!(shown.insert(item.video), "clip {} shown twice", item.video);
                assert_ne!(item.author, 1003, "own clip");
                assert_ne!(item.author, 1005, "blocked author");
                assert_ne!(item.video, 7, "removed clip");
            }
            req.previous_author = page.items.last().map(|i| i.author);
        }
    }

    #[test]
    fn short_term_interest_shows_up_on_the_next_page() {
        let r = world(RecommenderParams::default());
        let user = 1;
        let topic_share = |page: &FeedPage| {
            page.items.iter().filter(|i| i.video % 4 == 3).count() as f64
                / page.items.len().max(1) as f64
        };
        let before = topic_share(&r.for_you(&request(user)));
        // The user completes and likes a few `t3` clips: events applied at once.
        for (n, video) in [103u64, 107, 111, 115].into_iter().enumerate() {
            for signal in [Signal::Completed, Signal::Liked] {
                r.record(UserEvent { user, video, signal, at_ms: NOW - 1_000 + n as i64 });
            }
        }
        let after = topic_share(&r.for_you(&request(user)));
        assert!(after > before + 0.2, "t3 share {before} -> {after}");
    }

    #[test]
    fn degradation_levels_and_recovery() {
        let params = RecommenderParams {
            degrade: DegradeParams { max_in_flight: 1, ..DegradeParams::default() },
            ..RecommenderParams::default()
        };
        let r = world(params);
        r.caught_up(NOW - 10_000);
        let page = r.for_you(&request(1));
        assert_eq!(page.degraded, Some("realtime_stale"));
        r.caught_up(NOW);
        assert_eq!(r.for_you(&request(1)).degraded, None, "recovers when the consumer catches up");

        // Candidates down: only the cached trending list is served.
        let mut down = request(2);
        down.candidates_healthy = false;
        down.trending = Vec::new();
        let page = r.for_you(&down);
        assert_eq!(page.degraded, Some("trending_fallback"));
        assert!(
            page.items.iter().all(|i| i.source == Source::Trending && i.video <= 50),
            "{:?}",
            page.items
        );
        assert!(!page.items.is_empty(), "the cached list from the earlier requests is used");

        // Overload: a request while another is in flight gets the short list, related shed.
        r.in_flight.fetch_add(1, Ordering::SeqCst);
        let page = r.for_you(&request(3));
        assert_eq!(page.degraded, Some("overloaded"));
        assert!(page.items.len() <= 20);
        let related = RelatedRequest {
            video: 3,
            limit: 5,
            log_head_ms: NOW,
            candidates_healthy: true,
            ..Default::default()
        };
        assert_eq!(r.related(&related), Err(RecommendError::Shed));
        r.in_flight.fetch_sub(1, Ordering::SeqCst);
        assert!(r.related(&related).is_ok_and(|v| !v.is_empty()));
    }

    #[test]
    fn training_uses_the_platform_engagement() {
        let r = world(RecommenderParams::default());
        r.caught_up(NOW);
        // Users 1..=40 like the clips of "their" topic; each then gets feeds whose impressions
        // become ranker examples.
        for user in 1..=40u64 {
            for video in (1..=200u64).filter(|v| v % 4 == user % 4).take(20) {
                r.record(UserEvent { user, video, signal: Signal::Liked, at_ms: NOW - HOUR / 2 });
            }
            // They complete what they were shown of their topic and skip the rest.
            for item in r.for_you(&request(user)).items {
                let signal =
                    if item.video % 4 == user % 4 { Signal::Completed } else { Signal::Skipped };
                r.record(UserEvent { user, video: item.video, signal, at_ms: NOW });
            }
        }
        let summary = r.train(NOW + HOUR);
        assert_eq!(summary.users, 40);
        assert!(summary.interactions > 800, "likes plus completions: {summary:?}");
        let Some(report) = summary.ranker else { panic!("no ranker trained: {summary:?}") };
        assert!(report.examples >= 200, "{report:?}");
        // Completion followed the short-term topic signal, which the model must pick up.
        assert!(report.holdout_auc > 0.7, "{report:?}");
        // The trained models answer related-video requests by co-engagement: same topic.
        let req = RelatedRequest {
            video: 4,
            limit: 5,
            log_head_ms: NOW,
            candidates_healthy: true,
            ..Default::default()
        };
        let related = r.related(&req).unwrap_or_default();
        assert_eq!(related.len(), 5);
        assert!(related.iter().all(|v| v % 4 == 0), "{related:?}");
    }

    /// Viewers start clips more often under cover 2: the bandit ends up showing it most.
    #[test]
    fn covers_learn_from_plays() {
        let r = world(RecommenderParams::default());
        r.caught_up(NOW);
        let truth = [0.1, 0.1, 0.5];
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut late_choices = [0u32; 3];
        for user in 1..=1500u64 {
            let mut req = request(user);
            req.trending = vec![42];
            let page = r.for_you(&req);
            if !page.items.iter().any(|i| i.video == 42) {
                continue;
            }
            let Some(Some(c)) = r.choose_covers(Some(user), NOW, &[(42, 3)]).first().copied()
            else {
                panic!("no cover chosen")
            };
            if user > 1000 {
                late_choices[c] += 1;
            }
            if rng.r#gen::<f64>() < truth[c] {
                r.record(UserEvent { user, video: 42, signal: Signal::Completed, at_ms: NOW });
            }
        }
        let stats = r.cover_stats(42, 0);
        assert_eq!(stats.len(), 3);
        assert!(late_choices[2] > late_choices[0] + late_choices[1], "{late_choices:?} {stats:?}");
        // A second choice for the same impression is not counted twice.
        let before = r.cover_stats(42, 0).iter().map(|s| s.impressions).sum::<u64>();
        let _ = r.choose_covers(Some(1500), NOW, &[(42, 3)]);
        let after = r.cover_stats(42, 0).iter().map(|s| s.impressions).sum::<u64>();
        assert!(after - before <= 1);
        assert_eq!(r.choose_covers(None, NOW, &[(7, 1)]), vec![None]);
    }

    /// 200 clips by 20 authors published a week ago: every fourth tagged `cats`, the rest
    /// `dogs`, `news` or `food`.
    fn pet_world() -> Recommender {
        let r = Recommender::new(RecommenderParams::default());
        for id in 1..=200u64 {
            let tag = ["cats", "dogs", "news", "food"][(id % 4) as usize];
            r.publish(VideoInfo {
                id,
                author: 1000 + id % 20,
                tags: vec![tag.to_owned()],
                published_at_ms: NOW - 7 * 24 * HOUR + id as i64 * 60_000,
            });
        }
        r.caught_up(NOW);
        r
    }

    /// One user only (no collaborative signal at all) whose history, days old, is all cats
    /// clips, plus skipped news: the profile is cats (news stays out, skipped), and the
    /// interest-tag source brings cats clips to the page.
    #[test]
    fn a_cats_history_brings_cats_from_the_tag_source() {
        let r = pet_world();
        let user = 7;
        for (n, video) in (1..=200u64).filter(|v| v % 4 == 0).take(10).enumerate() {
            let at_ms = NOW - 3 * 24 * HOUR + n as i64;
            r.record(UserEvent { user, video, signal: Signal::Completed, at_ms });
            r.record(UserEvent { user, video: video + 2, signal: Signal::Skipped, at_ms });
        }
        let summary = r.train(NOW);
        assert_eq!((summary.users, summary.profiles), (1, 1), "{summary:?}");
        let Some(profile) = r.profile(user) else { panic!("no profile") };
        assert_eq!(profile.tags, vec![("cats".to_owned(), 1.0)]);
        let mut req = request(user);
        req.trending = Vec::new();
        let page = r.for_you(&req);
        let from_tags: Vec<u64> = page
            .items
            .iter()
            .filter(|i| i.source == Source::InterestTags)
            .map(|i| i.video)
            .collect();
        assert!(from_tags.len() >= 5, "{:?}", page.items);
        assert!(from_tags.iter().all(|v| v % 4 == 0), "{from_tags:?}");
        let cats = page.items.iter().take(10).filter(|i| i.video % 4 == 0).count();
        assert!(cats >= 5, "{:?}", page.items);
        // The creators of the completed clips (never followed) are in the profile too.
        assert!(profile.creators.iter().all(|(c, _)| [1000, 1004, 1008, 1012, 1016].contains(c)));
        assert!(!profile.creators.is_empty());
        assert_eq!(Source::InterestTags.as_str(), "interest_tags");
        assert_eq!(Source::InterestCreators.as_str(), "interest_creators");
    }

    /// Each training computes the profiles afresh: clips gone from the catalogue take their
    /// tags with them, and a user left with no known engagement has no profile.
    #[test]
    fn profiles_are_replaced_whole_by_each_training() {
        let r = pet_world();
        for video in [4u64, 8, 12] {
            r.record(UserEvent { user: 1, video, signal: Signal::Liked, at_ms: NOW - HOUR * 5 });
            r.record(UserEvent { user: 2, video, signal: Signal::Liked, at_ms: NOW - HOUR * 5 });
        }
        r.train(NOW);
        assert_eq!(r.profile(1).map(|p| p.tags), Some(vec![("cats".to_owned(), 1.0)]));
        assert!(r.profile(2).is_some());
        for video in [4u64, 8, 12] {
            r.remove(video);
        }
        r.record(UserEvent { user: 1, video: 5, signal: Signal::Liked, at_ms: NOW });
        r.train(NOW + HOUR);
        let Some(p) = r.profile(1) else { panic!("no profile") };
        assert_eq!(p.tags, vec![("dogs".to_owned(), 1.0)]);
        assert_eq!(p.creators, vec![(1005, 1.0)]);
        assert_eq!(r.profile(2), None);
    }

    /// What a restart must not forget: the served clips (seen filters) and the covers'
    /// statistics leave as changes, and a new recommender restored from them does not serve
    /// the same clips again and draws covers from the same counts.
    #[test]
    fn seen_filters_and_cover_stats_survive_as_changes() {
        let r = world(RecommenderParams::default());
        r.caught_up(NOW);
        assert!(r.take_changes().is_empty());
        let first = r.for_you(&request(5));
        assert!(!first.items.is_empty());
        let covered = first.items[0].video;
        let _ = r.choose_covers(Some(5), NOW, &[(covered, 3)]);
        r.record(UserEvent { user: 5, video: covered, signal: Signal::Completed, at_ms: NOW });
        let changes = r.take_changes();
        assert_eq!(changes.seen.len(), 1);
        assert_eq!(changes.covers.len(), 1);
        assert!(r.take_changes().is_empty(), "taken changes are no longer pending");
        let stats = r.cover_stats(covered, 0);
        let impressions: u64 = stats.iter().map(|s| s.impressions).sum();
        let plays: u64 = stats.iter().map(|s| s.plays).sum();
        assert_eq!((impressions, plays), (1, 1));

        let again = world(RecommenderParams::default());
        again.caught_up(NOW);
        for (user, bytes) in &changes.seen {
            assert_eq!(again.restore_seen(*user, bytes), Ok(()));
        }
        for (video, segment, bytes) in &changes.covers {
            assert_eq!(again.restore_covers(*video, *segment, bytes), Ok(()));
        }
        assert!(again.take_changes().is_empty(), "restored state is not written back");
        assert_eq!(again.cover_stats(covered, 0), stats);
        let second = again.for_you(&request(5));
        for item in &second.items {
            assert!(!first.items.iter().any(|f| f.video == item.video), "{} again", item.video);
        }
        // A failed flush puts the keys back.
        let pending = again.take_changes();
        assert_eq!(pending.seen.len(), 1);
        again.mark_changed(&pending);
        assert_eq!(again.take_changes().seen.len(), 1);
        assert!(again.restore_seen(9, b"junk").is_err());
    }

    #[test]
    fn anonymous_users_get_trending_and_exploration() {
        let r = world(RecommenderParams::default());
        let mut req = request(0);
        req.user = None;
        let page = r.for_you(&req);
        assert!(page.items.iter().any(|i| i.source == Source::Trending));
        assert!(page.items.iter().any(|i| i.source == Source::Fresh));
    }
}
