//! The simulation `make eval` reports: synthetic users with hidden interests watch what a
//! feed shows them (completing and liking by those interests), day after day; the For-You
//! feed (the real `Recommender`) against a trending-only feed over the same world, and how
//! fast a newly acquired interest shows up in the For-You feed.

use std::collections::{HashMap, HashSet};

use quicktok_recommend::interests::Signal;
use quicktok_recommend::{FeedRequest, Recommender, RecommenderParams, UserEvent, VideoInfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY: i64 = 86_400_000;
const START: i64 = 1_800_000_000_000;
const TOPICS: usize = 20;
const AUTHORS: u64 = 200;
const PAGE: usize = 20;

/// The world's settings.
#[derive(Debug, Clone, Copy)]
pub struct SimParams {
    pub users: usize,
    pub initial_clips: usize,
    pub clips_per_day: usize,
    pub days: usize,
    /// Pages each user watches per day, in one session (a page every five minutes).
    pub pages_per_day: usize,
    /// The day some users acquire a new interest (and the share of users who do).
    pub shift_day: usize,
    pub shift_users: usize,
    pub seed: u64,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            users: 600,
            initial_clips: 3000,
            clips_per_day: 300,
            days: 6,
            pages_per_day: 4,
            shift_day: 4,
            shift_users: 100,
            seed: 11,
        }
    }
}

#[derive(Debug, Clone)]
struct Clip {
    topic: usize,
    quality: f64,
    author: u64,
}

/// One policy's daily figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayFigures {
    pub impressions: u64,
    pub completions: u64,
    pub likes: u64,
}

impl DayFigures {
    pub fn completion_rate(&self) -> f64 {
        self.completions as f64 / self.impressions.max(1) as f64
    }
    pub fn like_rate(&self) -> f64 {
        self.likes as f64 / self.impressions.max(1) as f64
    }
}

/// What the simulation measured.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub for_you: Vec<DayFigures>,
    pub trending: Vec<DayFigures>,
    /// After the shift: the new topic's share of each successive page (For-You), averaged
    /// over the shifted users.
    pub new_interest_share: Vec<f64>,
    /// The new topic's share of all clips (what a feed blind to the shift would show).
    pub new_topic_base_share: f64,
}

struct World {
    clips: Vec<Clip>,
    /// Per user: interest weight per topic.
    interests: Vec<[f64; TOPICS]>,
    rng: StdRng,
}

fn interest_vector(rng: &mut StdRng) -> [f64; TOPICS] {
    let mut v = [0.02; TOPICS];
    for (n, w) in [0.6, 0.3, 0.15].into_iter().enumerate() {
        let t = rng.gen_range(0..TOPICS);
        v[t] += w * (1.0 - 0.1 * n as f64);
    }
    v
}

impl World {
    fn new(p: &SimParams) -> World {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let interests = (0..p.users).map(|_| interest_vector(&mut rng)).collect();
        let mut w = World { clips: Vec::new(), interests, rng };
        w.add_clips(p.initial_clips);
        w
    }

    fn add_clips(&mut self, n: usize) {
        for _ in 0..n {
            let author = self.rng.gen_range(0..AUTHORS);
            // Authors mostly stick to one topic.
            let topic = if self.rng.r#gen::<f64>() < 0.8 {
                (author as usize) % TOPICS
            } else {
                self.rng.gen_range(0..TOPICS)
            };
            let quality = self.rng.gen_range(0.3..1.0);
            self.clips.push(Clip { topic, quality, author: 10_000 + author });
        }
    }

    /// What user `u` does with clip `c`: (completed, liked).
    fn watch(&mut self, u: usize, c: usize) -> (bool, bool) {
        let clip = &self.clips[c];
        let interest = self.interests[u][clip.topic];
        let p_complete = (0.05 + 0.9 * interest * clip.quality).min(0.95);
        let completed = self.rng.r#gen::<f64>() < p_complete;
        let liked = completed && self.rng.r#gen::<f64>() < (0.5 * interest).min(0.5);
        (completed, liked)
    }
}

fn video_id(c: usize) -> u64 {
    c as u64 + 1
}

fn clip_of(video: u64) -> usize {
    (video - 1) as usize
}

fn user_id(u: usize) -> u64 {
    u as u64 + 1
}

/// Runs both policies over the same world (same seeds) and reports.
pub fn run(p: SimParams) -> SimReport {
    let mut report = SimReport::default();
    let (for_you, shares, base) = simulate(p, true);
    let (trending, _, _) = simulate(p, false);
    report.for_you = for_you;
    report.trending = trending;
    report.new_interest_share = shares;
    report.new_topic_base_share = base;
    report
}

/// One policy: `personal` uses the Recommender, otherwise the trending list minus seen.
fn simulate(p: SimParams, personal: bool) -> (Vec<DayFigures>, Vec<f64>, f64) {
    let mut world = World::new(&p);
    let params = RecommenderParams {
        degrade: quicktok_recommend::degrade::DegradeParams {
            page_size: PAGE,
            ..Default::default()
        },
        ..RecommenderParams::default()
    };
    let rec = Recommender::new(params);
    let mut published = 0usize;
    let mut days = Vec::new();
    let mut seen: Vec<HashSet<u64>> = vec![HashSet::new(); p.users];
    let mut completions_today: HashMap<u64, u64> = HashMap::new();
    let mut trending: Vec<u64> = Vec::new();
    let mut shares: Vec<f64> = Vec::new();
    let new_topic = TOPICS - 1;
    let mut base_share = 0.0;
    for day in 0..p.days {
        let day_start = START + day as i64 * DAY;
        if day > 0 {
            world.add_clips(p.clips_per_day);
        }
        while published < world.clips.len() {
            let c = &world.clips[published];
            rec.publish(VideoInfo {
                id: video_id(published),
                author: c.author,
                tags: vec![format!("topic{}", c.topic)],
                published_at_ms: day_start - 1,
            });
            published += 1;
        }
        let shifted = day >= p.shift_day;
        if day == p.shift_day {
            for u in 0..p.shift_users {
                let mut v = [0.02; TOPICS];
                v[new_topic] = 0.9;
                world.interests[u] = v;
            }
            base_share = world.clips.iter().filter(|c| c.topic == new_topic).count() as f64
                / world.clips.len() as f64;
        }
        let mut figures = DayFigures::default();
        let mut page_shares: Vec<(f64, u64)> = Vec::new();
        for page_no in 0..p.pages_per_day {
            for (u, seen_by_u) in seen.iter_mut().enumerate() {
                // One session a day: consecutive pages, 20 clips of about 15 s each.
                let now = day_start + 3_600_000 + u as i64 * 5_000 + page_no as i64 * 300_000;
                let items: Vec<u64> = if personal {
                    let req = FeedRequest {
                        user: Some(user_id(u)),
                        now_ms: now,
                        trending: trending.clone(),
                        candidates_healthy: true,
                        log_head_ms: now,
                        ..FeedRequest::default()
                    };
                    rec.for_you(&req).items.iter().map(|i| i.video).collect()
                } else {
                    let mut list: Vec<u64> = trending
                        .iter()
                        .copied()
                        .filter(|v| !seen_by_u.contains(v))
                        .take(PAGE)
                        .collect();
                    // Not enough trending clips yet: the newest ones the user has not seen.
                    let mut c = world.clips.len();
                    while list.len() < PAGE && c > 0 {
                        c -= 1;
                        let v = video_id(c);
                        if !seen_by_u.contains(&v) && !list.contains(&v) {
                            list.push(v);
                        }
                    }
                    list
                };
                if shifted && u < p.shift_users && day == p.shift_day {
                    let on_topic = items
                        .iter()
                        .filter(|v| world.clips[clip_of(**v)].topic == new_topic)
                        .count();
                    page_shares.push((on_topic as f64 / items.len().max(1) as f64, page_no as u64));
                }
                for (k, v) in items.iter().enumerate() {
                    let at = now + k as i64 * 15_000;
                    seen_by_u.insert(*v);
                    let (completed, liked) = world.watch(u, clip_of(*v));
                    figures.impressions += 1;
                    let signal = if completed { Signal::Completed } else { Signal::Skipped };
                    rec.record(UserEvent { user: user_id(u), video: *v, signal, at_ms: at });
                    if completed {
                        figures.completions += 1;
                        *completions_today.entry(*v).or_default() += 1;
                    }
                    if liked {
                        figures.likes += 1;
                        rec.record(UserEvent {
                            user: user_id(u),
                            video: *v,
                            signal: Signal::Liked,
                            at_ms: at + 1,
                        });
                    }
                }
            }
        }
        if day == p.shift_day {
            for page_no in 0..p.pages_per_day as u64 {
                let of_page: Vec<f64> =
                    page_shares.iter().filter(|s| s.1 == page_no).map(|s| s.0).collect();
                shares.push(of_page.iter().sum::<f64>() / of_page.len().max(1) as f64);
            }
        }
        days.push(figures);
        // End of day: the trending list (by completions today) and the daily training.
        let mut ranked: Vec<(u64, u64)> = completions_today.drain().map(|(v, n)| (n, v)).collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        trending = ranked.into_iter().take(1000).map(|(_, v)| v).collect();
        if personal {
            rec.train(day_start + DAY - 1);
        }
    }
    (days, shares, base_share)
}
